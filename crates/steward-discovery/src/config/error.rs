//! What can be wrong with `workspaceInfo.yaml` / `uploadInfo.yaml`: errors stop the run,
//! warnings are reported and the run goes on.

use std::fmt;
use std::path::{Path, PathBuf};

/// `file:line` when the line is known, else `file`.
fn at(file: &Path, line: &Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    }
}

/// A configuration file that cannot be used as written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not valid YAML.
    #[error("{}:{line}:{column}: not valid YAML: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key holds the wrong kind of value (including `null` where a section is expected, or a
    /// list where a mapping is expected).
    #[error("{}: `{key}` is {found}, expected {expected}; {hint}", at(file, line))]
    WrongType {
        file: PathBuf,
        line: Option<usize>,
        key: String,
        expected: &'static str,
        found: &'static str,
        hint: String,
    },
    /// A required key is absent.
    #[error("{}: required key `{key}` is missing; {hint}", file.display())]
    Missing {
        file: PathBuf,
        key: String,
        hint: String,
    },
    /// A value of the right kind that is still not acceptable (an unknown level of detail, a
    /// regex that does not compile...).
    #[error("{}: `{key}`: {message}", at(file, line))]
    Invalid {
        file: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. } => path,
            ConfigError::Syntax { file, .. }
            | ConfigError::WrongType { file, .. }
            | ConfigError::Missing { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// The key path the error is about (`cloudConfig.kubernetes.contexts`), if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::WrongType { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    /// The 1-based line, when it could be found.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } => Some(*line),
            ConfigError::WrongType { line, .. } | ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } | ConfigError::Missing { .. } => None,
        }
    }
}

/// A key that is ignored or has no effect, or a value that was accepted with a caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The configuration file.
    pub file: PathBuf,
    /// The 1-based line of the key, when found.
    pub line: Option<usize>,
    /// The key path, e.g. `cloudConfig.azure`.
    pub key: String,
    /// Why it is ignored or what to do.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}`: {}",
            at(&self.file, &self.line),
            self.key,
            self.message
        )
    }
}

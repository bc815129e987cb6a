use std::fmt;
use std::path::PathBuf;

/// One item of a workspace tree that could not be used: reported, skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoadProblem {
    /// Path of the file inside the tree (`slxs/web/sli.yaml`).
    pub path: String,
    /// 1-based line of the problem, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What was skipped because of it, e.g. "SLX web skipped".
    pub skipped: String,
}

impl LoadProblem {
    pub(crate) fn new(
        path: impl Into<String>,
        message: impl Into<String>,
        skipped: impl Into<String>,
    ) -> Self {
        LoadProblem {
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
            skipped: skipped.into(),
        }
    }

    pub(crate) fn from_yaml(
        path: &str,
        err: &serde_yaml::Error,
        skipped: impl Into<String>,
    ) -> Self {
        let location = err.location();
        // yaml errors end with " at line L column C"; the location is reported on its own.
        let mut message = err.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        LoadProblem {
            path: path.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
            skipped: skipped.into(),
        }
    }
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {} ({})", self.message, self.skipped)
    }
}

/// A workspace tree that cannot be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or a file in it could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// No `workspace.yaml` at the root.
    #[error(
        "{0}: no workspace.yaml here; a workspace tree holds workspace.yaml and slxs/<name>/slx.yaml"
    )]
    MissingWorkspaceFile(String),
    /// `workspace.yaml` itself is unusable.
    #[error("{0}")]
    Workspace(LoadProblem),
}

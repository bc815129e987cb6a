//! The name ledger: which name each SLX was given, kept next to the generated tree.

use super::{NameMode, SlxName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read the name ledger {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the name ledger {path} is not valid ({source}); fix it, or delete it to let names be computed again (existing SLXs may then be renamed)"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the name ledger {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    name: String,
    directory: String,
}

/// SLX identity → the name it was given. Serialized in key order, so the file is stable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    version: u32,
    workspace: String,
    mode: NameMode,
    entries: BTreeMap<String, Entry>,
}

impl Ledger {
    pub fn new(workspace: &str, mode: NameMode) -> Self {
        Ledger {
            version: 1,
            workspace: workspace.to_string(),
            mode,
            entries: BTreeMap::new(),
        }
    }

    /// Reads the ledger at `path`; a missing file is an empty ledger. A ledger written for
    /// another workspace does not apply and starts empty.
    pub fn load(path: &Path, workspace: &str, mode: NameMode) -> Result<Self, LedgerError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ledger::new(workspace, mode));
            }
            Err(source) => {
                return Err(LedgerError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let ledger: Ledger = serde_json::from_str(&text).map_err(|source| LedgerError::Parse {
            path: path.into(),
            source,
        })?;
        if ledger.workspace != workspace {
            return Ok(Ledger::new(workspace, mode));
        }
        Ok(ledger)
    }

    pub fn save(&self, path: &Path) -> Result<(), LedgerError> {
        let mut text = serde_json::to_string_pretty(self).expect("a ledger serializes");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| LedgerError::Write {
            path: path.into(),
            source,
        })
    }

    /// The mode names were first computed in (kept even when the mode changes later).
    pub fn mode(&self) -> NameMode {
        self.mode
    }

    pub fn get(&self, key: &str) -> Option<SlxName> {
        self.entries.get(key).map(|e| SlxName {
            full: e.name.clone(),
            directory: e.directory.clone(),
        })
    }

    pub fn record(&mut self, key: &str, name: SlxName) {
        self.entries.insert(
            key.to_string(),
            Entry {
                name: name.full,
                directory: name.directory,
            },
        );
    }

    /// Every recorded full name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|e| e.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

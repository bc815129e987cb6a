//! Default locations of state and caches (XDG conventions).

use std::path::PathBuf;

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$STEWARD_DATA_DIR`, `$XDG_DATA_HOME/steward` or `~/.local/share/steward`.
pub fn data_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".local/share"))
            .join("steward")
    })
}

/// `$STEWARD_CACHE_DIR`, `$XDG_CACHE_HOME/steward` or `~/.cache/steward`.
pub fn cache_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".cache"))
            .join("steward")
    })
}

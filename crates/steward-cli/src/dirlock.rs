//! One process per state directory: two platforms on one database, or two runners with one
//! credential, would fight over the same state without noticing.

use anyhow::{Result, anyhow};
use nix::fcntl::{Flock, FlockArg};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held for as long as the process uses the directory.
pub struct DirLock(#[allow(dead_code)] Flock<std::fs::File>);

/// Locks `dir` for `what` (e.g. "a steward platform"), or says which process holds it.
pub fn lock(dir: &Path, what: &str) -> Result<DirLock> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let _ = locked.set_len(0);
            let _ = locked.rewind();
            let _ = write!(locked, "{}", std::process::id());
            Ok(DirLock(locked))
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(anyhow!(
                "{} is in use by {what} (process {}); stop it, or give this one another directory with --data-dir",
                dir.display(),
                if pid.trim().is_empty() {
                    "unknown"
                } else {
                    pid.trim()
                }
            ))
        }
    }
}

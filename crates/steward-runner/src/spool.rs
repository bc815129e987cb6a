//! Results waiting to be delivered, on disk: a run's result and artifacts stay here until the
//! platform has acknowledged them, so a platform outage or a runner restart loses nothing.
//!
//! Layout: `<spool>/<run id>/delivery.json` and `<spool>/<run id>/artifacts/`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use steward_model::run::{RunResult, RunSpec};
use tokio::sync::Notify;
use uuid::Uuid;

/// One result to deliver.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The run.
    pub run_id: Uuid,
    /// Its lease, for leased runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<Uuid>,
    /// Its spec, for SLI runs the runner scheduled itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<RunSpec>,
    /// The result.
    pub result: RunResult,
}

/// The spool directory.
pub struct Spool {
    dir: PathBuf,
    wake: Notify,
}

impl Spool {
    /// Uses (and creates) `dir`.
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Spool {
            dir,
            wake: Notify::new(),
        })
    }

    /// Where a run's artifacts are written.
    pub fn artifacts_dir(&self, run: Uuid) -> PathBuf {
        self.dir.join(run.to_string()).join("artifacts")
    }

    /// Persists a delivery (atomically) and wakes the delivery loop.
    pub fn submit(&self, delivery: &Delivery) -> std::io::Result<()> {
        let dir = self.dir.join(delivery.run_id.to_string());
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("delivery.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(delivery).expect("delivery serializes"),
        )?;
        std::fs::rename(&tmp, dir.join("delivery.json"))?;
        self.wake.notify_one();
        Ok(())
    }

    /// Deliveries waiting, oldest first. Unreadable entries are reported and set aside (renamed
    /// `*.unreadable`) rather than blocking the rest.
    pub fn pending(&self) -> Vec<Delivery> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, Delivery)> = Vec::new();
        for entry in entries.flatten() {
            let file = entry.path().join("delivery.json");
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            match std::fs::read(&file).map(|b| serde_json::from_slice::<Delivery>(&b)) {
                Ok(Ok(delivery)) => {
                    found.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), delivery))
                }
                Ok(Err(error)) => {
                    tracing::error!(file = %file.display(), %error, "Spooled result is unreadable; set aside.");
                    let _ = std::fs::rename(&file, file.with_extension("unreadable"));
                }
                Err(error) => {
                    tracing::warn!(file = %file.display(), %error, "Cannot read spooled result.")
                }
            }
        }
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, d)| d).collect()
    }

    /// Forgets a run (after delivery, or when its result must not be reported).
    pub fn remove(&self, run: Uuid) {
        let dir = self.dir.join(run.to_string());
        if let Err(error) = std::fs::remove_dir_all(&dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %error, "Cannot remove a spool entry.");
        }
    }

    /// Waits until something is submitted.
    pub async fn submitted(&self) {
        self.wake.notified().await
    }

    /// How many results wait, and their bytes on disk (artifacts included).
    pub fn usage(&self) -> (u64, u64) {
        let mut entries = 0;
        let mut bytes = 0;
        for entry in walk(&self.dir) {
            if entry.file_name().is_some_and(|n| n == "delivery.json") {
                entries += 1;
            }
            bytes += std::fs::metadata(&entry).map(|m| m.len()).unwrap_or(0);
        }
        (entries, bytes)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::run::RunStatus;

    #[test]
    fn deliveries_survive_reopening_and_broken_entries_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().to_path_buf()).unwrap();
        let result = RunResult::error(RunStatus::Error, "x", chrono::Utc::now());
        let first = Delivery {
            run_id: Uuid::now_v7(),
            lease_id: Some(Uuid::now_v7()),
            spec: None,
            result: result.clone(),
        };
        spool.submit(&first).unwrap();
        std::fs::create_dir_all(dir.path().join("broken")).unwrap();
        std::fs::write(dir.path().join("broken/delivery.json"), "{not json").unwrap();
        let reopened = Spool::open(dir.path().to_path_buf()).unwrap();
        let pending = reopened.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].run_id, first.run_id);
        assert!(dir.path().join("broken/delivery.unreadable").exists());
        reopened.remove(first.run_id);
        assert!(reopened.pending().is_empty());
    }
}

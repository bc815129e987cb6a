//! Results waiting to be delivered, on disk: a run's result and artifacts stay here until the
//! platform has acknowledged them, so a platform outage or a runner restart loses nothing.
//!
//! Layout: `<spool>/<run id>/delivery.json` and `<spool>/<run id>/artifacts/`. A run writes its
//! artifacts to a staging directory beside the spool (`<staging>/<run id>/`) and they move into
//! the spool with the result, so a spool that cannot be written (a full disk) does not stop
//! tasks from running: their results go to the platform directly, or are dropped and counted
//! (see `deliver::hand_over`). The spool is *degraded* while its last write failed.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    staging: PathBuf,
    wake: Notify,
    degraded: AtomicBool,
    dropped: AtomicU64,
}

/// A result the spool could not take; its artifacts are still in `artifacts`.
#[derive(Debug)]
pub struct NotSpooled {
    /// Where the run's artifacts are.
    pub artifacts: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

impl Spool {
    /// Uses (and creates) `dir`, with `staging` for the artifacts of runs in progress (what a
    /// previous process left there is removed: those runs were not reported and run again).
    pub fn open(dir: PathBuf, staging: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        Ok(Spool {
            dir,
            staging,
            wake: Notify::new(),
            degraded: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        })
    }

    /// Where a run in progress writes its artifacts.
    pub fn staging_dir(&self, run: Uuid) -> PathBuf {
        self.staging.join(run.to_string())
    }

    /// Where a spooled run's artifacts are.
    pub fn artifacts_dir(&self, run: Uuid) -> PathBuf {
        self.dir.join(run.to_string()).join("artifacts")
    }

    /// Persists a delivery with the artifacts from its staging directory (atomically: a
    /// delivery is pending only once everything is written) and wakes the delivery loop.
    pub fn submit(&self, delivery: &Delivery) -> Result<(), NotSpooled> {
        let run = delivery.run_id;
        let dir = self.dir.join(run.to_string());
        let written = (|| {
            std::fs::create_dir_all(&dir)?;
            let staged = self.staging_dir(run);
            if staged.exists() {
                move_dir(&staged, &dir.join("artifacts"))?;
            }
            let tmp = dir.join("delivery.json.tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec(delivery).expect("delivery serializes"),
            )?;
            std::fs::rename(&tmp, dir.join("delivery.json"))
        })();
        match written {
            Ok(()) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.dir.display(), "The result spool is writable again.");
                }
                self.wake.notify_one();
                Ok(())
            }
            Err(error) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::error!(dir = %self.dir.display(), %error, "The result spool cannot be written (degraded): results go to the platform directly, or are dropped when it does not answer.");
                }
                let _ = std::fs::remove_file(dir.join("delivery.json.tmp"));
                let artifacts = if self.staging_dir(run).exists() {
                    self.staging_dir(run)
                } else {
                    self.artifacts_dir(run)
                };
                Err(NotSpooled { artifacts, error })
            }
        }
    }

    /// True while the last write to the spool failed.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Counts a result dropped because it could be neither spooled nor delivered.
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Results dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
        for dir in [self.dir.join(run.to_string()), self.staging_dir(run)] {
            if let Err(error) = std::fs::remove_dir_all(&dir)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), %error, "Cannot remove a spool entry.");
            }
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

/// Moves a directory: a rename on one file system, a copy and delete across two.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::create_dir_all(to)?;
            for entry in std::fs::read_dir(from)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    move_dir(&entry.path(), &to.join(entry.file_name()))?;
                } else {
                    std::fs::copy(entry.path(), to.join(entry.file_name()))?;
                }
            }
            std::fs::remove_dir_all(from)
        }
        Err(error) => Err(error),
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
        let staging = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().to_path_buf(), staging.path().into()).unwrap();
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
        let reopened = Spool::open(dir.path().to_path_buf(), staging.path().into()).unwrap();
        let pending = reopened.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].run_id, first.run_id);
        assert!(dir.path().join("broken/delivery.unreadable").exists());
        reopened.remove(first.run_id);
        assert!(reopened.pending().is_empty());
    }

    #[test]
    fn staged_artifacts_move_in_and_a_spool_that_cannot_be_written_is_degraded() {
        let root = tempfile::tempdir().unwrap();
        let (dir, staging) = (root.path().join("spool"), root.path().join("staging"));
        let spool = Spool::open(dir.clone(), staging.clone()).unwrap();
        let delivery = |run_id| Delivery {
            run_id,
            lease_id: None,
            spec: None,
            result: RunResult::error(RunStatus::Error, "x", chrono::Utc::now()),
        };
        let run = Uuid::now_v7();
        std::fs::create_dir_all(spool.staging_dir(run)).unwrap();
        std::fs::write(spool.staging_dir(run).join("log.html"), "log").unwrap();
        spool.submit(&delivery(run)).unwrap();
        assert_eq!(
            std::fs::read_to_string(spool.artifacts_dir(run).join("log.html")).unwrap(),
            "log"
        );
        assert!(!spool.staging_dir(run).exists());
        assert!(!spool.degraded());

        // The spool directory is gone and a file stands in its way: nothing can be written.
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, "in the way").unwrap();
        let other = Uuid::now_v7();
        std::fs::create_dir_all(spool.staging_dir(other)).unwrap();
        std::fs::write(spool.staging_dir(other).join("stdout.txt"), "out").unwrap();
        let refused = spool.submit(&delivery(other)).unwrap_err();
        assert_eq!(
            refused.artifacts,
            spool.staging_dir(other),
            "{:?}",
            refused.error
        );
        assert!(
            refused.artifacts.join("stdout.txt").is_file(),
            "artifacts kept"
        );
        assert!(spool.degraded());

        std::fs::remove_file(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        spool.submit(&delivery(other)).unwrap();
        assert!(
            !spool.degraded(),
            "a write that works again ends the degraded state"
        );
        assert_eq!(spool.pending().len(), 1);
    }
}

//! The metrics relay: points that reach the runner's loopback OTLP receiver outside any run
//! (other exporters on this host) are batched, spooled to disk and forwarded over the
//! runner's own connection, so they survive a platform outage or a runner restart.
//!
//! The spool is bounded: past its size the oldest batches are dropped first and counted.
//! Batches carry an id the platform stores once, so a retry after a lost answer is harmless.

use crate::Shared;
use crate::client::CallError;
use crate::poll::Backoff;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steward_model::metrics::MetricPoint;
use steward_model::wire::MetricsBatch;
use tokio::sync::Notify;
use uuid::Uuid;

/// Points gathered before a batch is written.
const BATCH_POINTS: usize = 2_000;
/// How long points wait to fill a batch.
const BATCH_WAIT: Duration = Duration::from_secs(1);

/// Gathers points and keeps the spool of batches.
pub(crate) struct Relay {
    dir: PathBuf,
    limit_bytes: u64,
    pending: Mutex<Vec<MetricPoint>>,
    wake: Notify,
    /// Points dropped because the spool was full.
    pub(crate) dropped: AtomicU64,
}

impl Relay {
    pub(crate) fn open(dir: PathBuf, limit_bytes: u64) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(Relay {
            dir,
            limit_bytes,
            pending: Mutex::new(Vec::new()),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Takes points from the receiver.
    pub(crate) fn accept(&self, points: Vec<MetricPoint>) {
        let mut pending = self.pending.lock().expect("poisoned");
        pending.extend(points);
        if pending.len() >= BATCH_POINTS {
            self.wake.notify_one();
        }
    }

    /// Spooled batches, oldest first (ids are time-ordered), with their sizes.
    pub(crate) fn spooled(&self) -> Vec<(PathBuf, u64)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<(PathBuf, u64)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect();
        files.sort();
        files
    }

    /// Writes what is pending as one batch file, then drops the oldest batches over the limit.
    fn flush(&self) {
        let points = std::mem::take(&mut *self.pending.lock().expect("poisoned"));
        if points.is_empty() {
            return;
        }
        let count = points.len();
        let batch = MetricsBatch {
            batch_id: Uuid::now_v7(),
            points,
        };
        let path = self.dir.join(format!("{}-{count}.json", batch.batch_id));
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, serde_json::to_vec(&batch).expect("batch serializes"))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(error) = written {
            // A full disk: count the points as dropped rather than stopping the relay.
            let _ = std::fs::remove_file(&tmp);
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            tracing::warn!(%error, points = count, "Cannot spool relayed metrics; dropped.");
        }
        let mut files = self.spooled();
        let mut total: u64 = files.iter().map(|(_, size)| size).sum();
        while total > self.limit_bytes && files.len() > 1 {
            let (oldest, size) = files.remove(0);
            let points = points_in(&oldest);
            if std::fs::remove_file(&oldest).is_ok() {
                total -= size;
                self.dropped.fetch_add(points, Ordering::Relaxed);
                tracing::warn!(points, "Metrics spool full; oldest batch dropped.");
            }
        }
    }
}

fn points_in(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Writes batches as points come in, and forwards spooled batches while the platform answers.
pub(crate) async fn relay_forever(shared: Arc<Shared>, relay: Arc<Relay>) {
    let mut backoff = Backoff::new();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                relay.flush();
                return;
            }
            _ = relay.wake.notified() => {}
            _ = tokio::time::sleep(BATCH_WAIT) => {}
        }
        relay.flush();
        for (path, _) in relay.spooled() {
            match forward(&shared, &path).await {
                Ok(()) => {
                    backoff.reset();
                    let _ = std::fs::remove_file(&path);
                }
                Err(CallError::Refused(code, message)) => {
                    tracing::warn!(code, %message, "The platform refused relayed metrics; dropped.");
                    relay.dropped.fetch_add(points_in(&path), Ordering::Relaxed);
                    let _ = std::fs::remove_file(&path);
                }
                Err(error) => {
                    tracing::debug!(%error, "Relayed metrics wait for the platform.");
                    tokio::select! {
                        _ = shared.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next()) => {}
                    }
                    break;
                }
            }
        }
    }
}

async fn forward(shared: &Shared, path: &Path) -> Result<(), CallError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CallError::Refused(0, format!("{}: {e}", path.display())))?;
    let batch: MetricsBatch = serde_json::from_slice(&bytes)
        .map_err(|e| CallError::Refused(0, format!("{}: {e}", path.display())))?;
    shared
        .client
        .relay_metrics(&shared.credential(), &batch)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::metrics::MetricKind;

    fn point(i: usize) -> MetricPoint {
        MetricPoint {
            name: format!("m{i}"),
            value: i as f64,
            kind: MetricKind::Gauge,
            count: None,
            attributes: Default::default(),
            time: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_spool_keeps_the_newest_batches_within_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::open(dir.path().to_path_buf(), 2_500).unwrap();
        for round in 0..10 {
            relay.accept((0..10).map(|i| point(round * 10 + i)).collect());
            relay.flush();
        }
        let files = relay.spooled();
        let total: u64 = files.iter().map(|(_, size)| size).sum();
        assert!(total <= 2_500, "{total} bytes spooled");
        let kept: u64 = files.iter().map(|(p, _)| points_in(p)).sum();
        assert_eq!(
            kept + relay.dropped.load(Ordering::Relaxed),
            100,
            "every point is kept or counted"
        );
        let newest: MetricsBatch =
            serde_json::from_slice(&std::fs::read(&files.last().unwrap().0).unwrap()).unwrap();
        assert_eq!(newest.points[0].name, "m90", "the newest batch survives");
    }
}

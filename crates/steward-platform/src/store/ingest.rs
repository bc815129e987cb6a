//! Group commit for pushed SLI points (OTLP pushes, relayed batches).
//!
//! Pushes that arrive while a transaction is being written wait and go into the next one
//! together. A commit costs the same for one batch as for many, and most of what it writes
//! is the same pages (the newest points of each series), so under load the cost per point
//! falls several times; a lone push pays nothing extra. Each push is still answered only
//! after the transaction holding it committed.

use super::db::Backend;
use super::now_ms;
use super::sli::{self, Batch, SeriesCache};
use crate::error::{ApiError, ApiResult};
use sqlx::AnyPool;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// A transaction takes at most this many points, so a burst does not become one huge write.
const MAX_POINTS_PER_COMMIT: usize = 100_000;

/// One push waiting to be written.
struct Job {
    id: Option<Uuid>,
    batch: Arc<Batch>,
    done: oneshot::Sender<ApiResult<bool>>,
}

/// The sending side; the writer task ends when every copy of it is gone.
#[derive(Clone)]
pub(crate) struct Ingest {
    jobs: mpsc::UnboundedSender<Job>,
}

/// What the writer writes with.
struct Writer {
    pool: AnyPool,
    backend: Backend,
    series: Arc<Mutex<SeriesCache>>,
}

impl Ingest {
    /// Starts the writer task.
    pub(crate) fn start(pool: AnyPool, backend: Backend, series: Arc<Mutex<SeriesCache>>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            pool,
            backend,
            series,
        };
        tokio::spawn(writer.run(rx));
        Ingest { jobs }
    }

    /// Writes `batch` (once per `id`, when given); `false` when that id was written before.
    pub(crate) async fn write(&self, id: Option<Uuid>, batch: Arc<Batch>) -> ApiResult<bool> {
        let (done, answer) = oneshot::channel();
        let stopped = || ApiError::Unavailable503("the platform is shutting down".into());
        self.jobs
            .send(Job { id, batch, done })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut points = first.batch.samples.len();
            let mut jobs = vec![first];
            while points < MAX_POINTS_PER_COMMIT {
                let Ok(job) = rx.try_recv() else { break };
                points += job.batch.samples.len();
                jobs.push(job);
            }
            match self.commit(&jobs).await {
                Ok(fresh) => {
                    for (job, fresh) in jobs.into_iter().zip(fresh) {
                        let _ = job.done.send(Ok(fresh));
                    }
                }
                // Each push on its own, so that each gets its own answer and one that cannot
                // be written does not fail the others.
                Err(_) if jobs.len() > 1 => {
                    for job in jobs {
                        let answer = self
                            .commit(std::slice::from_ref(&job))
                            .await
                            .map(|fresh| fresh[0]);
                        let _ = job.done.send(answer);
                    }
                }
                Err(error) => {
                    if let Some(job) = jobs.pop() {
                        let _ = job.done.send(Err(error));
                    }
                }
            }
        }
    }

    /// Writes `jobs` in one transaction; for each, whether it was new.
    async fn commit(&self, jobs: &[Job]) -> ApiResult<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut fresh = Vec::with_capacity(jobs.len());
        for job in jobs {
            let first_time = match job.id {
                None => true,
                Some(id) => {
                    sqlx::query(
                        "INSERT INTO metric_batches (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id.to_string())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
            };
            fresh.push(first_time);
        }
        let batches: Vec<&Batch> = jobs
            .iter()
            .zip(&fresh)
            .filter(|(_, fresh)| **fresh)
            .map(|(job, _)| job.batch.as_ref())
            .collect();
        sli::insert(&mut tx, self.backend, &self.series, &batches).await?;
        tx.commit().await?;
        Ok(fresh)
    }
}

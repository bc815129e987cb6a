//! Pushed SLI points (OTLP pushes, relayed batches), written by group commit
//! ([`super::group`]): most of what a commit writes is the same newest pages of each series,
//! so pushes that share one cost little more than one alone.

use super::db::Backend;
use super::group::Writer;
use super::now_ms;
use super::points::{self, SeriesCache};
use super::sli::Batch;
use crate::error::ApiResult;
use sqlx::AnyPool;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A transaction takes at most this many points, so a burst does not become one huge write.
pub(crate) const MAX_POINTS_PER_COMMIT: usize = 100_000;

/// One push: its points, and its id when it must be stored only once.
pub(crate) struct Push {
    pub(crate) id: Option<Uuid>,
    pub(crate) batch: Arc<Batch>,
}

/// Writes pushes; answers whether each was new (`false`: that id was stored before).
pub(crate) struct PointWriter {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) series: Arc<Mutex<SeriesCache>>,
}

impl Writer for PointWriter {
    type Job = Push;
    type Answer = bool;

    fn weight(push: &Push) -> usize {
        push.batch.samples.len().max(1)
    }

    async fn commit(&self, pushes: &[Push]) -> ApiResult<Vec<ApiResult<bool>>> {
        let mut tx = self.pool.begin().await?;
        let mut fresh = Vec::with_capacity(pushes.len());
        for push in pushes {
            let first_time = match push.id {
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
        let batches: Vec<&Batch> = pushes
            .iter()
            .zip(&fresh)
            .filter(|(_, fresh)| **fresh)
            .map(|(push, _)| push.batch.as_ref())
            .collect();
        points::insert(&mut tx, self.backend, &self.series, &batches).await?;
        tx.commit().await?;
        Ok(fresh.into_iter().map(Ok).collect())
    }
}

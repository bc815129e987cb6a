//! Which artifacts each run has.

use super::{Store, now_ms};
use crate::error::ApiResult;
use sqlx::Row;
use uuid::Uuid;

impl Store {
    /// Records an uploaded artifact (a repeated upload replaces the size).
    pub async fn record_artifact(&self, run: Uuid, name: &str, size: u64) -> ApiResult<()> {
        sqlx::query(
            "INSERT INTO artifacts (run_id, name, size, uploaded_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, name) DO UPDATE SET size = excluded.size, uploaded_at = excluded.uploaded_at",
        )
        .bind(run.to_string())
        .bind(name)
        .bind(size as i64)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// `(name, size)` of each artifact of a run.
    pub async fn artifacts(&self, run: Uuid) -> ApiResult<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT name, size FROM artifacts WHERE run_id = $1 ORDER BY name")
            .bind(run.to_string())
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    /// The runner holding a run and whether it is still running, if the run exists.
    pub async fn run_holder(
        &self,
        run: Uuid,
    ) -> ApiResult<Option<(Option<String>, Option<String>, String)>> {
        let row = sqlx::query("SELECT runner_id, lease_id, status FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }
}

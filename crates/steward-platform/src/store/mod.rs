//! Persistence: SQLite (embedded default) or PostgreSQL (several platform replicas) through
//! sqlx, migrations embedded in the binary. See [`db`] for what differs between the two.

mod alerts;
mod artifacts;
mod blocks;
mod completions;
pub mod db;
mod group;
mod ingest;
mod issues;
mod points;
mod runners;
mod runs;
pub(crate) mod sli;
mod workspaces;

pub use alerts::AlertState;
pub use completions::Completion;
pub use db::Backend;
pub use issues::IssueFilter;
pub use runners::{RunnerRecord, new_secret, secret_hash};
pub use runs::{LeaseOutcome, PollState, RunFilter};
pub use sli::{Batch, Bucket, ROLLUP_MS, Sample, SeriesKey, run_batch};
pub use workspaces::SlxRecord;

use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};
use std::sync::{Arc, Mutex};

/// The platform's database.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    ingest: group::Group<ingest::PointWriter>,
    completions: group::Group<completions::CompletionWriter>,
    credentials: Arc<runners::CredentialCache>,
    heartbeats: Arc<runners::Heartbeats>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://path`, `sqlite::memory:` or
    /// `postgres://user:password@host/db`), creating a SQLite file if needed, and applies the
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let backend = Backend::of_url(url)?;
        let pools = db::connect(url, backend).await?;
        points::move_legacy_points(&pools.write, backend).await?;
        let series: Arc<Mutex<points::SeriesCache>> = Arc::default();
        let ingest = group::Group::start(
            ingest::PointWriter {
                pool: pools.write.clone(),
                backend,
                series: series.clone(),
            },
            ingest::MAX_POINTS_PER_COMMIT,
        );
        let completions = group::Group::start(
            completions::CompletionWriter {
                pool: pools.write.clone(),
                backend,
                series: series.clone(),
            },
            completions::MAX_COMPLETIONS_PER_COMMIT,
        );
        Ok(Store {
            read: pools.read,
            write: pools.write,
            backend,
            ingest,
            completions,
            credentials: Arc::default(),
            heartbeats: Arc::default(),
        })
    }

    /// Sends `payload` on the PostgreSQL notification `channel` (nothing on SQLite, where
    /// one process is all there is).
    pub(crate) async fn notify(&self, channel: &str, payload: &str) -> ApiResult<()> {
        if self.backend == Backend::Postgres {
            // `pg_notify` returns `void`, which the Any driver cannot read: select around it.
            sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
                .bind(channel)
                .bind(payload)
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A setting, or `None`.
    pub async fn setting(&self, key: &str) -> ApiResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The setting's value, inserting `make()` first if there is none (first writer wins).
    pub async fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> ApiResult<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(make())
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await?;
        Ok(row.get(0))
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Now, in the store's time unit (milliseconds since the epoch).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch as a UTC time.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn uuid(text: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(text).unwrap_or_default()
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, "Stored JSON does not parse.");
            None
        }
    }
}

//! Persistence: SQLite through sqlx, migrations embedded in the binary.
//!
//! Writes go through a single connection, so SQLite never has to upgrade a read transaction
//! to a write one (which fails instead of waiting); reads use a pool of their own.

mod alerts;
mod artifacts;
mod issues;
mod runners;
mod runs;
pub(crate) mod sli;
mod workspaces;

pub use alerts::AlertState;
pub use issues::IssueFilter;
pub use runners::{RunnerRecord, new_secret, secret_hash};
pub use runs::{Completion, LeaseOutcome, PollState, RunFilter};
pub use sli::{Batch, Bucket, ROLLUP_MS, Sample, SeriesKey, run_batch};
pub use workspaces::SlxRecord;

use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The platform's database.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    series: Arc<Mutex<sli::SeriesCache>>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        // An in-memory database exists once per connection: share the writer for reads too.
        let read = if memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Store {
            read,
            write,
            series: Arc::default(),
        })
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

//! Registration tokens, runners and their credentials.

use super::{Store, now_ms, time, uuid};
use crate::error::{ApiError, ApiResult};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use steward_model::api::{RunnerHealth, RunnerView};
use uuid::Uuid;

/// A runner as the protocol handlers need it.
#[derive(Debug, Clone)]
pub struct RunnerRecord {
    /// Runner id.
    pub id: Uuid,
    /// Its location.
    pub location: String,
}

/// Tokens and credentials are stored as SHA-256: they are random and long, so a keyed slow
/// hash would add nothing but latency to every poll.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random secret with a readable prefix (`stw_reg_...`, `stw_run_...`).
pub fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}_{}", hex::encode(bytes))
}

/// Runner credentials recently seen, by hash.
#[derive(Default)]
pub(crate) struct CredentialCache {
    known: Mutex<HashMap<String, (RunnerRecord, Instant)>>,
}

impl CredentialCache {
    /// How long a credential is trusted without asking the database again.
    const TTL: Duration = Duration::from_secs(300);

    fn get(&self, hash: &str) -> Option<RunnerRecord> {
        let known = self.known.lock().expect("poisoned");
        known
            .get(hash)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(record, _)| record.clone())
    }

    fn insert(&self, hash: String, record: RunnerRecord) {
        let mut known = self.known.lock().expect("poisoned");
        // Expired entries go now and then, not on every insert.
        if known.len() % 1024 == 1023 {
            known.retain(|_, (_, at)| at.elapsed() < Self::TTL);
        }
        known.insert(hash, (record, Instant::now()));
    }
}

/// What a poll reports about the runner: its capacity, how many runs it holds, and whether it
/// declines SLIs.
pub(crate) type Beat = (u32, usize, bool);

/// When this replica last recorded each runner's poll, and what it reported then.
#[derive(Default)]
pub(crate) struct Heartbeats {
    seen: Mutex<HashMap<Uuid, (Instant, Beat)>>,
}

impl Heartbeats {
    /// Whether `runner` reported `beat` within `within`.
    pub(crate) fn recent(&self, runner: Uuid, beat: Beat, within: Duration) -> bool {
        let seen = self.seen.lock().expect("poisoned");
        seen.get(&runner)
            .is_some_and(|(at, last)| *last == beat && at.elapsed() < within)
    }

    pub(crate) fn record(&self, runner: Uuid, beat: Beat) {
        let mut seen = self.seen.lock().expect("poisoned");
        if seen.len() % 1024 == 1023 {
            seen.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(3600));
        }
        seen.insert(runner, (Instant::now(), beat));
    }
}

impl Store {
    /// Stores a registration token for `location` (idempotent).
    pub async fn add_registration_token(&self, token: &str, location: &str) -> ApiResult<()> {
        sqlx::query(
            "INSERT INTO registration_tokens (token_hash, location, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (token_hash) DO UPDATE SET location = excluded.location",
        )
        .bind(secret_hash(token))
        .bind(location)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Registers a runner with a registration token; returns its record and credential.
    pub async fn register_runner(
        &self,
        token: &str,
        name: &str,
        version: &str,
        capacity: u32,
    ) -> ApiResult<(RunnerRecord, String)> {
        let row = sqlx::query("SELECT location FROM registration_tokens WHERE token_hash = $1")
            .bind(secret_hash(token))
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "unknown registration token; create one with `steward token create`".into(),
                )
            })?;
        let location: String = row.get(0);
        let id = Uuid::now_v7();
        let credential = new_secret("stw_run");
        let now = now_ms();
        sqlx::query(
            "INSERT INTO runners (id, name, location, credential_hash, version, capacity, registered_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(&location)
        .bind(secret_hash(&credential))
        .bind(version)
        .bind(capacity as i64)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok((RunnerRecord { id, location }, credential))
    }

    /// The runner holding `credential`. Every runner call asks, so known credentials are
    /// kept in memory for a while (a runner's id and location never change).
    pub async fn runner_by_credential(&self, credential: &str) -> ApiResult<RunnerRecord> {
        let hash = secret_hash(credential);
        if let Some(known) = self.credentials.get(&hash) {
            return Ok(known);
        }
        let row = sqlx::query("SELECT id, location FROM runners WHERE credential_hash = $1")
            .bind(&hash)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "unknown runner credential; register the runner again".into(),
                )
            })?;
        let record = RunnerRecord {
            id: uuid(&row.get::<String, _>(0)),
            location: row.get(1),
        };
        self.credentials.insert(hash, record.clone());
        Ok(record)
    }

    /// Runners of `location` that polled within `within_ms`.
    pub async fn online_runners(
        &self,
        location: &str,
        within_ms: i64,
    ) -> ApiResult<Vec<(Uuid, bool)>> {
        let rows = sqlx::query(
            "SELECT id, no_slis FROM runners WHERE location = $1 AND last_seen_at >= $2",
        )
        .bind(location)
        .bind(now_ms() - within_ms)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (uuid(&r.get::<String, _>(0)), r.get::<i64, _>(1) == 0))
            .collect())
    }

    /// Every runner with its liveness: `online` within `online_ms` of its last poll, `stale`
    /// until `offline_ms`, `offline` after.
    pub async fn runners(&self, online_ms: i64, offline_ms: i64) -> ApiResult<Vec<RunnerView>> {
        let now = now_ms();
        let rows = sqlx::query("SELECT id, name, location, last_seen_at, capacity, running FROM runners ORDER BY location, name, id")
            .fetch_all(&self.read)
            .await?;
        let mut leased: HashMap<String, Vec<Uuid>> = HashMap::new();
        let running = sqlx::query(
            "SELECT runner_id, id FROM runs WHERE status = 'running' AND runner_id IS NOT NULL AND lease_id IS NOT NULL ORDER BY started_at, id",
        )
        .fetch_all(&self.read)
        .await?;
        for row in running {
            leased
                .entry(row.get(0))
                .or_default()
                .push(uuid(&row.get::<String, _>(1)));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let id: String = r.get(0);
                let last_seen: i64 = r.get(3);
                let age = now - last_seen;
                let health = if age <= online_ms {
                    RunnerHealth::Online
                } else if age <= offline_ms {
                    RunnerHealth::Stale
                } else {
                    RunnerHealth::Offline
                };
                RunnerView {
                    id: uuid(&id),
                    name: r.get(1),
                    location: r.get(2),
                    health,
                    last_seen_at: time(last_seen),
                    capacity: r.get::<i64, _>(4) as u32,
                    running: r.get::<i64, _>(5) as u32,
                    running_run_ids: leased.remove(&id).unwrap_or_default(),
                }
            })
            .collect())
    }
}

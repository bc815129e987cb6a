//! Run sessions, the run queue and its leases, and run completion.

use super::db::{Backend, Sql};
use super::{Store, json, now_ms, time, uuid};
use crate::error::{ApiError, ApiResult};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashSet;
use steward_model::api::{RunView, SessionView};
use steward_model::run::{RunKind, RunResult, RunSpec, RunStatus};
use steward_model::wire::{Lease, PollRequest};
use uuid::Uuid;

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this workspace.
    pub workspace: Option<String>,
    /// Only this SLX.
    pub slx: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only this kind.
    pub kind: Option<RunKind>,
    /// Only this session.
    pub session: Option<Uuid>,
    /// At most this many (newest first).
    pub limit: u32,
}

/// What a poll changed and found, besides new leases.
#[derive(Debug, Default)]
pub struct PollState {
    /// Runs to cancel (by run id).
    pub cancel: Vec<Uuid>,
    /// Leases the runner listed that are no longer valid.
    pub revoked: Vec<Uuid>,
}

/// Outcome of a lease attempt.
#[derive(Debug)]
pub struct LeaseOutcome {
    /// The new leases.
    pub leases: Vec<Lease>,
    /// For each lease, how long its run had waited in the queue, in seconds.
    pub waited: Vec<f64>,
}

const RUN_COLUMNS: &str = "id, session_id, workspace, slx, kind, status, location, spec_json, attempts, runner_id, created_at, started_at, finished_at, result_json";

fn run_view(row: &AnyRow) -> RunView {
    let spec: Option<RunSpec> = json(&row.get::<String, _>(7));
    RunView {
        id: uuid(&row.get::<String, _>(0)),
        session_id: row.get::<Option<String>, _>(1).map(|s| uuid(&s)),
        workspace: row.get(2),
        slx: row.get(3),
        kind: row.get::<String, _>(4).parse().unwrap_or(RunKind::Runbook),
        status: row.get::<String, _>(5).parse().unwrap_or(RunStatus::Error),
        location: row.get(6),
        task_titles: spec.map(|s| s.task_titles).unwrap_or_default(),
        attempts: row.get::<i64, _>(8) as u32,
        runner_id: row.get::<Option<String>, _>(9).map(|s| uuid(&s)),
        created_at: time(row.get(10)),
        started_at: row.get::<Option<i64>, _>(11).map(time),
        finished_at: row.get::<Option<i64>, _>(12).map(time),
        result: row.get::<Option<String>, _>(13).and_then(|j| json(&j)),
    }
}

impl Store {
    /// Creates a session and queues one run per spec.
    pub async fn create_session(
        &self,
        workspace: &str,
        source: &str,
        session_id: Uuid,
        runs: &[RunSpec],
        max_attempts: u32,
    ) -> ApiResult<SessionView> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, workspace, source, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session_id.to_string())
        .bind(workspace)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for chunk in runs.chunks(200) {
            let mut insert = Sql::new(
                self.backend,
                "INSERT INTO runs (id, session_id, workspace, slx, kind, location, spec_json, status, max_attempts, created_at) ",
            );
            insert.push_values(chunk, |row, spec| {
                row.bind(spec.run_id.to_string())
                    .bind(session_id.to_string())
                    .bind(spec.workspace.clone())
                    .bind(spec.slx.clone())
                    .bind(spec.kind.as_str())
                    .bind(spec.location.clone())
                    .bind(serde_json::to_string(spec).expect("spec serializes"))
                    .bind("queued")
                    .bind(max_attempts as i64)
                    .bind(now);
            });
            insert.build()?.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // What was just written, without reading it back.
        Ok(SessionView {
            id: session_id,
            workspace: workspace.to_string(),
            source: source.to_string(),
            created_at: time(now),
            runs: runs
                .iter()
                .rev()
                .map(|spec| RunView {
                    id: spec.run_id,
                    session_id: Some(session_id),
                    workspace: spec.workspace.clone(),
                    slx: spec.slx.clone(),
                    kind: spec.kind,
                    status: RunStatus::Queued,
                    location: spec.location.clone(),
                    task_titles: spec.task_titles.clone(),
                    attempts: 0,
                    runner_id: None,
                    created_at: time(now),
                    started_at: None,
                    finished_at: None,
                    result: None,
                })
                .collect(),
        })
    }

    /// A session with its runs.
    pub async fn session(&self, id: Uuid) -> ApiResult<SessionView> {
        let row = sqlx::query("SELECT workspace, source, created_at FROM sessions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no session {id}")))?;
        let runs = self
            .runs(&RunFilter {
                session: Some(id),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        Ok(SessionView {
            id,
            workspace: row.get(0),
            source: row.get(1),
            created_at: time(row.get(2)),
            runs,
        })
    }

    /// Recent sessions of a workspace, newest first.
    pub async fn sessions(&self, workspace: &str, limit: u32) -> ApiResult<Vec<SessionView>> {
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM sessions WHERE workspace = $1 ORDER BY created_at DESC LIMIT $2",
        )
        .bind(workspace)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.session(uuid(&id)).await?);
        }
        Ok(out)
    }

    /// One run.
    pub async fn run(&self, id: Uuid) -> ApiResult<RunView> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no run {id}")))?;
        Ok(run_view(&row))
    }

    /// Runs matching `filter`, newest first.
    pub async fn runs(&self, filter: &RunFilter) -> ApiResult<Vec<RunView>> {
        let mut query = Sql::new(
            self.backend,
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1"),
        );
        if let Some(workspace) = &filter.workspace {
            query.push(" AND workspace = ").push_bind(workspace.clone());
        }
        if let Some(slx) = &filter.slx {
            query.push(" AND slx = ").push_bind(slx.clone());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = filter.kind {
            query.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(session) = filter.session {
            query
                .push(" AND session_id = ")
                .push_bind(session.to_string());
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(filter.limit.clamp(1, 1000) as i64);
        let rows = query.build()?.fetch_all(&self.read).await?;
        Ok(rows.iter().map(run_view).collect())
    }

    /// Runs waiting and running.
    pub async fn queue_depth(&self) -> ApiResult<(u64, u64)> {
        let row = sqlx::query(
            // Two counts, each over its own partial index.
            "SELECT (SELECT COUNT(*) FROM runs WHERE status = 'queued'),
                    (SELECT COUNT(*) FROM runs WHERE status = 'running')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64))
    }

    /// Cancels a queued run at once, or asks the runner of a running one to stop it.
    /// Returns the run and its location (to wake that location's pollers).
    pub async fn request_cancel(&self, id: Uuid) -> ApiResult<(RunView, String)> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT status, location, started_at FROM runs WHERE id = $1{}",
            self.backend.for_update()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no run {id}")))?;
        let status: RunStatus = row.get::<String, _>(0).parse().unwrap_or(RunStatus::Error);
        let location: String = row.get(1);
        match status {
            RunStatus::Queued => {
                let result = RunResult::error(
                    RunStatus::Cancelled,
                    "cancelled before a runner took it",
                    time(now),
                );
                sqlx::query("UPDATE runs SET status = 'cancelled', finished_at = $2, result_json = $3 WHERE id = $1 AND status = 'queued'")
                    .bind(id.to_string())
                    .bind(now)
                    .bind(serde_json::to_string(&result).expect("result serializes"))
                    .execute(&mut *tx)
                    .await?;
            }
            RunStatus::Running => {
                sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            done => {
                return Err(ApiError::Conflict(format!(
                    "run {id} already ended ({done}); nothing to cancel"
                )));
            }
        }
        tx.commit().await?;
        Ok((self.run(id).await?, location))
    }

    /// Records a poll: liveness, lease renewal, cancellations and revoked leases.
    pub async fn poll_state(
        &self,
        runner: Uuid,
        request: &PollRequest,
        lease_ttl_ms: i64,
    ) -> ApiResult<PollState> {
        // A runner with nothing running that this replica recorded a moment ago, unchanged,
        // is not written again: idle polls would otherwise be a stream of writes. Its last
        // poll is then at most a quarter of a lease old in the database.
        let beat = (request.capacity, request.running.len(), request.no_slis);
        let recently = std::time::Duration::from_millis((lease_ttl_ms / 4).max(0) as u64);
        if request.running.is_empty() && self.heartbeats.recent(runner, beat, recently) {
            return Ok(PollState::default());
        }
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE runners SET last_seen_at = $2, capacity = $3, running = $4, no_slis = $5 WHERE id = $1",
        )
        .bind(runner.to_string())
        .bind(now)
        .bind(request.capacity as i64)
        .bind(request.running.len() as i64)
        .bind(i64::from(request.no_slis))
        .execute(&mut *tx)
        .await?;
        let mut state = PollState::default();
        if !request.running.is_empty() {
            let mut renew = Sql::new(self.backend, "UPDATE runs SET lease_expires_at = ");
            renew.push_bind(now + lease_ttl_ms);
            renew
                .push(" WHERE status = 'running' AND runner_id = ")
                .push_bind(runner.to_string());
            renew
                .push(" AND lease_id IN (")
                .push_list(request.running.iter().map(Uuid::to_string))
                .push(")");
            renew.build()?.execute(&mut *tx).await?;

            let held = sqlx::query("SELECT id, lease_id, cancel_requested FROM runs WHERE status = 'running' AND runner_id = $1")
                .bind(runner.to_string())
                .fetch_all(&mut *tx)
                .await?;
            let listed: HashSet<Uuid> = request.running.iter().copied().collect();
            let mut valid = HashSet::new();
            for row in held {
                let lease = uuid(&row.get::<String, _>(1));
                if listed.contains(&lease) {
                    valid.insert(lease);
                    if row.get::<i64, _>(2) != 0 {
                        state.cancel.push(uuid(&row.get::<String, _>(0)));
                    }
                }
            }
            state.revoked = request
                .running
                .iter()
                .filter(|l| !valid.contains(l))
                .copied()
                .collect();
        }
        tx.commit().await?;
        self.heartbeats.record(runner, beat);
        Ok(state)
    }

    /// Leases up to `max` queued runs of `location` to `runner`, oldest first.
    pub async fn lease(
        &self,
        runner: Uuid,
        location: &str,
        max: u32,
        lease_ttl_ms: i64,
    ) -> ApiResult<LeaseOutcome> {
        if max == 0 {
            return Ok(LeaseOutcome {
                leases: Vec::new(),
                waited: Vec::new(),
            });
        }
        let now = now_ms();
        let expires = now + lease_ttl_ms;
        let mut rows = match self.backend {
            Backend::Postgres => {
                self.lease_on_postgres(runner, location, max, now, expires)
                    .await?
            }
            Backend::Sqlite => {
                self.lease_on_sqlite(runner, location, max, now, expires)
                    .await?
            }
        };
        // Oldest first, as they were queued.
        rows.sort_by_key(|row| (row.get::<i64, _>(3), row.get::<String, _>(0)));
        let mut leases = Vec::with_capacity(rows.len());
        let mut waited = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(run) = json::<RunSpec>(&row.get::<String, _>(1)) else {
                continue;
            };
            leases.push(Lease {
                lease_id: uuid(&row.get::<String, _>(0)),
                expires_at: time(now + lease_ttl_ms),
                attempt: row.get::<i64, _>(2) as u32,
                run,
            });
            waited.push((now - row.get::<i64, _>(3)).max(0) as f64 / 1000.0);
        }
        Ok(LeaseOutcome { leases, waited })
    }

    /// One statement: the oldest queued runs that no other replica is leasing right now, each
    /// under a new lease id. Columns: lease id, spec, attempt, created at.
    async fn lease_on_postgres(
        &self,
        runner: Uuid,
        location: &str,
        max: u32,
        now: i64,
        expires: i64,
    ) -> ApiResult<Vec<AnyRow>> {
        Ok(sqlx::query(
            // The picked ids are collected into an array once (an init plan, so they are
            // picked and locked once, and re-checked as queued when locked) and the update
            // finds them by id. Plans that leave the choice to the table's statistics go
            // wrong on a young table, whose statistics say "one row": a join with the picked
            // rows scanned the whole queue once per picked run (170 ms for 64 runs behind
            // 12,000 queued), and a second `status = 'queued'` condition here made the queue's
            // partial index look like the way to find the ids (50 ms). Without it the primary
            // key is the only index that applies. The statement is planned at every call (not
            // prepared once): a plan cached while the table was small scans it whole.
            "UPDATE runs SET status = 'running', lease_id = gen_random_uuid()::text, runner_id = $1,
               lease_expires_at = $2, attempts = attempts + 1, started_at = $3
             WHERE id = ANY(ARRAY(
               SELECT id FROM runs WHERE location = $4 AND status = 'queued'
               ORDER BY created_at, id LIMIT $5 FOR UPDATE SKIP LOCKED))
             RETURNING lease_id, spec_json, attempts, created_at",
        )
        .bind(runner.to_string())
        .bind(expires)
        .bind(now)
        .bind(location)
        .bind(max as i64)
        .persistent(false)
        .fetch_all(&self.write)
        .await?)
    }

    /// The single writer already serialises leasing; most polls find nothing, which the read
    /// side can tell without taking the writer.
    async fn lease_on_sqlite(
        &self,
        runner: Uuid,
        location: &str,
        max: u32,
        now: i64,
        expires: i64,
    ) -> ApiResult<Vec<AnyRow>> {
        let queued =
            sqlx::query("SELECT 1 FROM runs WHERE location = $1 AND status = 'queued' LIMIT 1")
                .bind(location)
                .fetch_optional(&self.read)
                .await?;
        if queued.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write.begin().await?;
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM runs WHERE location = $1 AND status = 'queued' ORDER BY created_at, id LIMIT $2",
        )
        .bind(location)
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement leases them all, each under a lease id of its own.
        let mut update = Sql::new(
            self.backend,
            "UPDATE runs SET status = 'running', lease_id = CASE id",
        );
        for id in &ids {
            update
                .push(" WHEN ")
                .push_bind(id.clone())
                .push(" THEN ")
                .push_bind(Uuid::now_v7().to_string());
        }
        update
            .push(" END, runner_id = ")
            .push_bind(runner.to_string())
            .push(", lease_expires_at = ")
            .push_bind(expires)
            .push(", attempts = attempts + 1, started_at = ")
            .push_bind(now)
            .push(" WHERE status = 'queued' AND id IN (")
            .push_list(ids)
            .push(") RETURNING lease_id, spec_json, attempts, created_at");
        let rows = update.build()?.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Requeues the runs a stopping runner hands back; the attempt does not count. Returns the
    /// locations that got work back.
    pub async fn release(&self, runner: Uuid, leases: &[Uuid]) -> ApiResult<Vec<String>> {
        let mut tx = self.write.begin().await?;
        let mut locations = Vec::new();
        for lease in leases {
            let row = sqlx::query(
                "UPDATE runs SET status = 'queued', lease_id = NULL, runner_id = NULL, lease_expires_at = NULL,
                   attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                 WHERE lease_id = $1 AND runner_id = $2 AND status = 'running' AND cancel_requested = 0
                 RETURNING location",
            )
            .bind(lease.to_string())
            .bind(runner.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            locations.extend(row.map(|r| r.get::<String, _>(0)));
        }
        // A stopping runner holds nothing any more, whatever its last poll said.
        sqlx::query("UPDATE runners SET running = 0 WHERE id = $1")
            .bind(runner.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(locations)
    }

    /// Requeues runs whose lease lapsed (or ends them after too many attempts). Returns the
    /// locations that got work back.
    pub async fn expire_leases(&self) -> ApiResult<Vec<String>> {
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT id, location, attempts, max_attempts, cancel_requested, started_at FROM runs
             WHERE status = 'running' AND lease_expires_at < $1{}",
            self.backend.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let mut requeued = Vec::new();
        for row in rows {
            let id: String = row.get(0);
            let attempts = row.get::<i64, _>(2);
            let max_attempts = row.get::<i64, _>(3);
            let started = time(row.get::<Option<i64>, _>(5).unwrap_or(now));
            let finish = |status: RunStatus, message: String| {
                serde_json::to_string(&RunResult::error(status, message, started))
                    .expect("result serializes")
            };
            if row.get::<i64, _>(4) != 0 {
                let result = finish(
                    RunStatus::Cancelled,
                    "cancelled; the runner stopped answering before it confirmed".into(),
                );
                sqlx::query("UPDATE runs SET status = 'cancelled', lease_id = NULL, finished_at = $2, result_json = $3 WHERE id = $1 AND status = 'running'")
                    .bind(&id).bind(now).bind(result).execute(&mut *tx).await?;
            } else if attempts >= max_attempts {
                let result = finish(
                    RunStatus::Error,
                    format!(
                        "the runner stopped answering while running this {attempts} time(s) (lease expired); not retried again"
                    ),
                );
                sqlx::query("UPDATE runs SET status = 'error', lease_id = NULL, finished_at = $2, result_json = $3 WHERE id = $1 AND status = 'running'")
                    .bind(&id).bind(now).bind(result).execute(&mut *tx).await?;
            } else {
                sqlx::query(
                    "UPDATE runs SET status = 'queued', lease_id = NULL, runner_id = NULL, lease_expires_at = NULL WHERE id = $1 AND status = 'running'",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(run = %id, attempts, "Lease expired; run requeued.");
                requeued.push(row.get::<String, _>(1));
            }
        }
        tx.commit().await?;
        requeued.sort();
        requeued.dedup();
        Ok(requeued)
    }
}

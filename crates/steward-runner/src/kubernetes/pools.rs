//! Warm worker pools, the runner's side: a run of a pooled CodeCollection waits in its pool's
//! [`Queue`] instead of becoming a pod, and the pool's workers (`steward worker`, see
//! [`super::worker`]) take runs from this runner's in-cluster endpoint:
//!
//! - `POST /v1/pools/{pool}/lease` (the pool's bearer token; long poll) → 200 with a
//!   [`LeaseGrant`] (the run's [`Launch`] with its secret values inline, a lease id and its
//!   TTL), or 204 when nothing came in time;
//! - `POST /v1/pools/{pool}/leases/{lease}/renew` → 200, or 409 once the lease is not current
//!   (lapsed, or its run was cancelled): the worker then stops the run and reports nothing;
//! - `POST /v1/pools/{pool}/leases/{lease}/release` → 204: the run goes back to the queue at
//!   once, its attempt not counted (a worker that is stopping);
//! - artifacts and result go through [`Handoff`]'s routes with the lease's own token.
//!
//! Only the leader ([`super::election`]) queues runs: its pod IP is the address in the pool
//! Deployments ([`super::deployments`]). Another replica runs pooled collections in pods. A
//! run whose pool has had no worker in contact for `poolFallbackSeconds` leaves the queue and
//! runs in a pod too, so a pool that cannot start does not hold runs forever.

use super::handoff::{Handoff, no_delay};
use super::pod::Launch;
use super::queue::{Lapse, Queue, new_token};
use super::settings::PodSettings;
use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use steward_model::run::{RunResult, RunSpec, RunStatus};
use steward_runtime::SecretValue;
use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a lease request is held when no run waits.
const LONG_POLL: Duration = Duration::from_secs(20);

/// One `pools` entry of the runner's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolConfig {
    /// The CodeCollection whose runs the pool takes.
    pub repo_url: String,
    /// The ref the workers fetch when they start (runs still use their own ref).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Workers kept running.
    #[serde(default = "one")]
    pub replicas: u32,
}

fn one() -> u32 {
    1
}

/// Timings of the pools.
#[derive(Debug, Clone)]
pub struct PoolTiming {
    /// How long a worker holds a run without renewing.
    pub lease_ttl: Duration,
    /// Hand-outs of a run before it fails.
    pub attempts: u32,
    /// How long a run waits while no worker is in contact before it runs in a pod.
    pub fallback: Duration,
}

impl PoolTiming {
    /// From the `kubernetes` settings, with the defaults.
    pub fn from_settings(settings: &PodSettings) -> Self {
        PoolTiming {
            lease_ttl: Duration::from_secs(settings.pool_lease_ttl_seconds.unwrap_or(30).max(1)),
            attempts: settings.pool_attempts.unwrap_or(3).max(1),
            fallback: Duration::from_secs(settings.pool_fallback_seconds.unwrap_or(120)),
        }
    }
}

/// What a worker gets with a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseGrant {
    /// The lease, for renewing and releasing.
    pub lease_id: Uuid,
    /// Renew well within this.
    pub ttl_seconds: u64,
    /// Hand-out of the run, from 1.
    pub attempt: u32,
    /// The run, reported with `launch.token`.
    pub launch: Launch,
}

/// What the leader needs to keep one pool's Deployment.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Deployment, Secret and label value: `<prefix>-pool-<hash of repoUrl>`.
    pub name: String,
    /// The configuration entry.
    pub config: PoolConfig,
    /// The bearer token its workers lease with.
    pub token: String,
    /// Changes with the token, so the pods restart when it does.
    pub generation: String,
}

struct Waiter {
    out_dir: PathBuf,
    gave_up: Option<oneshot::Sender<String>>,
}

struct PoolState {
    queue: Queue,
    waiters: HashMap<Uuid, Waiter>,
}

struct Pool {
    spec: PoolSpec,
    state: Mutex<PoolState>,
    arrived: Notify,
    /// Workers in a lease request right now (in contact, though not for a while maybe).
    polling: AtomicUsize,
}

/// Counts a worker in a lease request while it lives.
struct Polling<'a>(&'a AtomicUsize);

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Inner {
    handoff: Handoff,
    runner_url: String,
    overrides: HashMap<String, PathBuf>,
    timing: PoolTiming,
    leading: watch::Receiver<bool>,
    pools: Vec<Pool>,
}

/// The runner's pools; cheap to clone.
#[derive(Clone)]
pub struct Pools {
    inner: Arc<Inner>,
}

/// Stable across builds and replicas (unlike `DefaultHasher`): FNV-1a, 64 bits.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A pool's name: `<prefix>-pool-` and ten hex digits of the repoUrl's hash.
pub fn pool_name(prefix: &str, repo_url: &str) -> String {
    let prefix: String = prefix.chars().take(40).collect();
    let hash = format!("{:016x}", fnv1a(repo_url.trim()));
    format!("{}-pool-{}", prefix.trim_end_matches('-'), &hash[..10])
}

impl Pools {
    /// Whether this runner is the elected leader of its group now.
    pub fn leading(&self) -> bool {
        *self.inner.leading.borrow()
    }

    /// Pools for `configs`, named after `prefix`, whose workers report to `runner_url` through
    /// `handoff`; runs are queued only while `leading` says so. Spawns the task that ends
    /// lapsed leases (it stops when the last clone is dropped).
    pub fn new(
        handoff: Handoff,
        runner_url: String,
        overrides: HashMap<String, PathBuf>,
        prefix: &str,
        configs: &[PoolConfig],
        timing: PoolTiming,
        leading: watch::Receiver<bool>,
    ) -> Pools {
        let now = Instant::now();
        let pools = configs
            .iter()
            .map(|config| Pool {
                spec: PoolSpec {
                    name: pool_name(prefix, &config.repo_url),
                    config: config.clone(),
                    token: new_token(),
                    generation: Uuid::new_v4().simple().to_string()[..12].to_string(),
                },
                state: Mutex::new(PoolState {
                    queue: Queue::new(timing.lease_ttl, timing.attempts, now),
                    waiters: HashMap::new(),
                }),
                arrived: Notify::new(),
                polling: AtomicUsize::new(0),
            })
            .collect();
        let pools = Pools {
            inner: Arc::new(Inner {
                handoff,
                runner_url,
                overrides,
                leading,
                pools,
                timing,
            }),
        };
        tokio::spawn(sweep_forever(Arc::downgrade(&pools.inner)));
        pools
    }

    /// What the leader keeps Deployments for.
    pub fn specs(&self) -> Vec<PoolSpec> {
        self.inner.pools.iter().map(|p| p.spec.clone()).collect()
    }

    /// Where workers reach this runner.
    pub fn runner_url(&self) -> &str {
        &self.inner.runner_url
    }

    /// The handoff reports go through.
    pub fn handoff(&self) -> &Handoff {
        &self.inner.handoff
    }

    /// The worker (its pod name) holding `run`, if a worker does.
    pub fn holder(&self, run: Uuid) -> Option<String> {
        self.inner.pools.iter().find_map(|p| {
            let state = p.state.lock().expect("poisoned");
            state.queue.holder(run).map(str::to_string)
        })
    }

    fn pool_for(&self, spec: &RunSpec) -> Option<&Pool> {
        let url = spec.code_bundle.repo_url.trim();
        self.inner
            .pools
            .iter()
            .find(|p| p.spec.config.repo_url.trim() == url)
    }

    /// Runs `spec` on a worker of its collection's pool. `None` when it is not for a pool,
    /// this runner does not lead, or the pool had no worker in contact for the fallback time:
    /// the caller then runs it in a pod.
    pub async fn run(
        &self,
        spec: &RunSpec,
        secrets: &[SecretValue],
        out_dir: &Path,
        cancel: &CancellationToken,
    ) -> Option<RunResult> {
        let pool = self.pool_for(spec)?;
        if !*self.inner.leading.borrow() {
            return None;
        }
        let started = chrono::Utc::now();
        let run = spec.run_id;
        let mut report = self
            .inner
            .handoff
            .expect(run, &new_token(), out_dir.to_path_buf());
        let (gave_up_tx, mut gave_up) = oneshot::channel();
        let launch = Launch {
            spec: spec.clone(),
            report_to: self.inner.runner_url.clone(),
            token: String::new(),
            secrets: BTreeMap::new(),
            secret_values: secrets
                .iter()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            collection_overrides: self.inner.overrides.clone(),
        };
        {
            let mut state = pool.state.lock().expect("poisoned");
            state.queue.push(launch);
            state.waiters.insert(
                run,
                Waiter {
                    out_dir: out_dir.to_path_buf(),
                    gave_up: Some(gave_up_tx),
                },
            );
        }
        pool.arrived.notify_waiters();
        tracing::info!(run = %run, pool = %pool.spec.name, "Run queued for a pool worker.");
        let check = Duration::from_millis(500);
        let outcome = loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    break Some(RunResult::error(RunStatus::Cancelled, "cancelled; the pool worker was told to stop", started));
                }
                result = &mut report => {
                    break Some(result.unwrap_or_else(|_| RunResult::error(RunStatus::Error, "the runner stopped waiting for the pool worker", started)));
                }
                reason = &mut gave_up => {
                    let reason = reason.unwrap_or_else(|_| "the pool stopped".into());
                    break Some(RunResult::error(RunStatus::Error, reason, started));
                }
                _ = tokio::time::sleep(check) => {
                    let state = pool.state.lock().expect("poisoned");
                    let idle = state.queue.idle(Instant::now());
                    let polling = pool.polling.load(Ordering::SeqCst) > 0;
                    if state.queue.is_waiting(run) && !polling && idle >= self.inner.timing.fallback {
                        tracing::warn!(run = %run, pool = %pool.spec.name, idle_seconds = idle.as_secs(), "No pool worker in contact; the run gets a pod of its own.");
                        break None;
                    }
                    // The workers move to the new leader: a run still waiting here gets a pod.
                    if state.queue.is_waiting(run) && !*self.inner.leading.borrow() {
                        tracing::info!(run = %run, pool = %pool.spec.name, "This runner no longer leads; the waiting run gets a pod of its own.");
                        break None;
                    }
                }
            }
        };
        {
            let mut state = pool.state.lock().expect("poisoned");
            state.queue.remove(run);
            state.waiters.remove(&run);
        }
        self.inner.handoff.forget(run);
        outcome
    }

    /// The routes workers use, with [`Handoff`]'s report routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/pools/{pool}/lease", post(lease))
            .route("/v1/pools/{pool}/leases/{lease}/renew", post(renew))
            .route("/v1/pools/{pool}/leases/{lease}/release", post(release))
            .with_state(self.clone())
            .merge(self.inner.handoff.router())
    }

    /// Serves [`Pools::router`] on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        let listener = listener.tap_io(no_delay);
        if let Err(error) = axum::serve(listener, self.router()).await {
            tracing::error!(%error, "The endpoint for task pods and pool workers stopped.");
        }
    }

    fn authorised(&self, name: &str, headers: &HeaderMap) -> Result<&Pool, (StatusCode, String)> {
        let Some(pool) = self.inner.pools.iter().find(|p| p.spec.name == name) else {
            return Err((
                StatusCode::NOT_FOUND,
                format!("this runner has no pool {name:?}"),
            ));
        };
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        use subtle::ConstantTimeEq;
        if !bool::from(given.as_bytes().ct_eq(pool.spec.token.as_bytes())) {
            return Err((
                StatusCode::UNAUTHORIZED,
                format!(
                    "wrong token for pool {name} (the pool's Secret is rewritten when another runner leads)"
                ),
            ));
        }
        Ok(pool)
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

/// Ends lapsed leases: the handoff stops taking the lapsed tokens, the run's partial
/// artifacts go, and the run waits again or fails.
fn sweep(inner: &Inner, pool: &Pool, now: Instant) {
    let mut state = pool.state.lock().expect("poisoned");
    let lapses = state.queue.sweep(now);
    if lapses.is_empty() {
        return;
    }
    for lapse in lapses {
        match lapse {
            Lapse::Requeued { run, .. } => {
                inner.handoff.rekey(run, &new_token());
                if let Some(waiter) = state.waiters.get(&run) {
                    clear_dir(&waiter.out_dir);
                }
                tracing::warn!(run = %run, pool = %pool.spec.name, "A pool worker's lease lapsed; the run is queued again.");
            }
            Lapse::GaveUp { run, reason, .. } => {
                inner.handoff.rekey(run, &new_token());
                if let Some(tx) = state.waiters.get_mut(&run).and_then(|w| w.gave_up.take()) {
                    let _ = tx.send(reason);
                }
            }
        }
    }
    drop(state);
    pool.arrived.notify_waiters();
}

/// Removes what an earlier attempt left in the run's staging directory.
fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

async fn sweep_forever(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => {
            (i.timing.lease_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(2))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        for pool in &inner.pools {
            sweep(&inner, pool, now);
        }
    }
}

#[derive(Deserialize, Default)]
struct LeaseRequest {
    #[serde(default)]
    worker: String,
}

async fn lease(
    State(pools): State<Pools>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Option<Json<LeaseRequest>>,
) -> Response {
    let pool = match pools.authorised(&name, &headers) {
        Ok(pool) => pool,
        Err((status, message)) => return refuse(status, message),
    };
    pool.polling.fetch_add(1, Ordering::SeqCst);
    let _polling = Polling(&pool.polling);
    let worker = body.map(|b| b.0.worker).unwrap_or_default();
    let worker = if worker.is_empty() {
        "a worker".to_string()
    } else {
        worker
    };
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let arrived = pool.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        sweep(&pools.inner, pool, Instant::now());
        let grant = {
            let mut state = pool.state.lock().expect("poisoned");
            let grant = state.queue.take(&worker, Instant::now());
            if let Some(grant) = &grant {
                pools
                    .inner
                    .handoff
                    .rekey(grant.launch.spec.run_id, &grant.launch.token);
            }
            grant.map(|g| (g, state.queue.ttl()))
        };
        if let Some((grant, ttl)) = grant {
            tracing::info!(run = %grant.launch.spec.run_id, pool = %name, %worker, attempt = grant.attempt, "Run leased to a pool worker.");
            return Json(LeaseGrant {
                lease_id: grant.lease,
                ttl_seconds: ttl.as_secs(),
                attempt: grant.attempt,
                launch: grant.launch,
            })
            .into_response();
        }
        tokio::select! {
            _ = &mut arrived => {}
            _ = tokio::time::sleep_until(deadline) => {
                pool.state.lock().expect("poisoned").queue.touch(Instant::now());
                return StatusCode::NO_CONTENT.into_response();
            }
        }
    }
}

async fn renew(
    State(pools): State<Pools>,
    UrlPath((name, lease)): UrlPath<(String, Uuid)>,
    headers: HeaderMap,
) -> Response {
    let pool = match pools.authorised(&name, &headers) {
        Ok(pool) => pool,
        Err((status, message)) => return refuse(status, message),
    };
    sweep(&pools.inner, pool, Instant::now());
    let mut state = pool.state.lock().expect("poisoned");
    let ttl = state.queue.ttl();
    match state.queue.renew(lease, Instant::now()) {
        Some(_) => Json(serde_json::json!({"ttlSeconds": ttl.as_secs()})).into_response(),
        None => refuse(
            StatusCode::CONFLICT,
            format!(
                "lease {lease} is no longer current (it lapsed, or its run ended or was cancelled); stop the run and report nothing"
            ),
        ),
    }
}

async fn release(
    State(pools): State<Pools>,
    UrlPath((name, lease)): UrlPath<(String, Uuid)>,
    headers: HeaderMap,
) -> Response {
    let pool = match pools.authorised(&name, &headers) {
        Ok(pool) => pool,
        Err((status, message)) => return refuse(status, message),
    };
    let released = {
        let mut state = pool.state.lock().expect("poisoned");
        let released = state.queue.release(lease, Instant::now());
        if let Some((run, _)) = &released {
            pools.inner.handoff.rekey(*run, &new_token());
            if let Some(waiter) = state.waiters.get(run) {
                clear_dir(&waiter.out_dir);
            }
        }
        released
    };
    match released {
        Some((run, _)) => {
            tracing::info!(run = %run, pool = %name, "A stopping pool worker handed its run back.");
            pool.arrived.notify_waiters();
            StatusCode::NO_CONTENT.into_response()
        }
        None => refuse(
            StatusCode::CONFLICT,
            format!("lease {lease} is no longer current"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_are_stable_short_and_distinct() {
        let a = pool_name(
            "steward",
            "https://github.com/runwhen-contrib/rw-cli-codecollection.git",
        );
        assert_eq!(
            a,
            pool_name(
                "steward",
                " https://github.com/runwhen-contrib/rw-cli-codecollection.git "
            )
        );
        assert!(
            a.starts_with("steward-pool-") && a.len() == "steward-pool-".len() + 10,
            "{a}"
        );
        assert_ne!(
            a,
            pool_name(
                "steward",
                "https://github.com/runwhen-contrib/rw-public-codecollection.git"
            )
        );
        // Known FNV-1a value, so the name does not change between builds.
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
        let long = pool_name(&"x".repeat(80), "u");
        assert!(long.len() <= 63, "{long}");
    }

    #[test]
    fn pool_entries_read_from_the_configuration() {
        let pools: Vec<PoolConfig> = serde_yaml::from_str(
            "- {repoUrl: 'https://example.com/a.git', ref: main, replicas: 2}\n- repoUrl: b\n",
        )
        .unwrap();
        assert_eq!(pools[0].git_ref.as_deref(), Some("main"));
        assert_eq!((pools[0].replicas, pools[1].replicas), (2, 1));
        let err = serde_yaml::from_str::<Vec<PoolConfig>>("- {repoUrl: a, replica: 2}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("replica"), "{err}");
    }
}

//! A warm pool worker (`steward worker`, one per pod of a pool Deployment): it prepares the
//! Python environment (and the pool's CodeCollection at its ref) once, then takes runs from
//! the leading runner's endpoint one at a time ([`super::pools`]), renewing each run's lease
//! while it works and reporting like a task pod does ([`super::launcher`]). A run whose lease
//! is no longer current is stopped and not reported; on SIGTERM the worker stops its run and
//! hands it back, so another worker takes it at once.

use super::launcher;
use super::pod::Launch;
use super::pools::LeaseGrant;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use steward_runtime::collection::CollectionResolver;
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use tokio_util::sync::CancellationToken;

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The runner's in-cluster endpoint.
    pub runner_url: String,
    /// The pool's name.
    pub pool: String,
    /// The pool's bearer token.
    pub token: String,
    /// This worker's name (its pod's), for the runner's logs.
    pub identity: String,
    /// Per-run scratch directories.
    pub work_dir: PathBuf,
    /// Python environments and checkouts.
    pub cache_dir: PathBuf,
    /// The pool's CodeCollection, fetched at `git_ref` on start.
    pub repo_url: Option<String>,
    /// See `repo_url`.
    pub git_ref: Option<String>,
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The runtime could not start.
    #[error("the task runtime cannot start: {0}")]
    Runtime(#[from] steward_runtime::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Runs the worker until SIGTERM or SIGINT.
pub async fn run_until_signal(options: WorkerOptions) -> Result<(), WorkerError> {
    let stop = CancellationToken::new();
    for kind in [
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::interrupt(),
    ] {
        if let Ok(mut signal) = tokio::signal::unix::signal(kind) {
            let stop = stop.clone();
            tokio::spawn(async move {
                signal.recv().await;
                stop.cancel();
            });
        }
    }
    run_worker(options, stop).await
}

/// The runtime for one set of collection overrides (the runner sends its own with each run).
struct Runtimes {
    cache_dir: PathBuf,
    work_dir: PathBuf,
    current: Option<(HashMap<String, PathBuf>, Arc<Runtime>)>,
}

impl Runtimes {
    async fn for_launch(
        &mut self,
        launch: &Launch,
    ) -> Result<Arc<Runtime>, steward_runtime::Error> {
        if let Some((overrides, runtime)) = &self.current
            && *overrides == launch.collection_overrides
        {
            return Ok(runtime.clone());
        }
        let config = RuntimeConfig {
            collection_overrides: launch.collection_overrides.clone(),
            ..RuntimeConfig::new(self.cache_dir.clone(), self.work_dir.join("runs"))
        };
        let runtime = Arc::new(Runtime::start(config, Arc::new(log_progress)).await?);
        self.current = Some((launch.collection_overrides.clone(), runtime.clone()));
        Ok(runtime)
    }
}

/// Takes runs until `stop`.
pub async fn run_worker(
    options: WorkerOptions,
    stop: CancellationToken,
) -> Result<(), WorkerError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| WorkerError::Client(e.to_string()))?;
    let mut runtimes = Runtimes {
        cache_dir: options.cache_dir.clone(),
        work_dir: options.work_dir.clone(),
        current: None,
    };
    warm_up(&options, &mut runtimes).await?;
    let base = format!(
        "{}/v1/pools/{}",
        options.runner_url.trim_end_matches('/'),
        options.pool
    );
    let mut delay = Duration::from_millis(500);
    tracing::info!(runner = %options.runner_url, pool = %options.pool, "Pool worker ready.");
    while !stop.is_cancelled() {
        let request = client
            .post(format!("{base}/lease"))
            .bearer_auth(&options.token)
            .json(&serde_json::json!({"worker": options.identity}))
            .send();
        let response = tokio::select! {
            _ = stop.cancelled() => break,
            response = request => response,
        };
        let grant = match response {
            Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => continue,
            Ok(r) if r.status().is_success() => match r.json::<LeaseGrant>().await {
                Ok(grant) => grant,
                Err(error) => {
                    tracing::warn!(%error, "The runner's lease answer is not understood.");
                    continue;
                }
            },
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                tracing::warn!(%status, answer = %text, "The runner refused a lease request; trying again.");
                pause(&stop, &mut delay).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, runner = %options.runner_url, "Cannot reach the runner; trying again.");
                pause(&stop, &mut delay).await;
                continue;
            }
        };
        delay = Duration::from_millis(500);
        work(&client, &base, &options, &mut runtimes, grant, &stop).await;
    }
    tracing::info!("Pool worker stopped.");
    Ok(())
}

async fn pause(stop: &CancellationToken, delay: &mut Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(*delay) => {}
    }
    *delay = (*delay * 2).min(Duration::from_secs(10));
}

/// Builds the Python environment and fetches the pool's collection before the first run.
async fn warm_up(options: &WorkerOptions, runtimes: &mut Runtimes) -> Result<(), WorkerError> {
    let config = RuntimeConfig::new(options.cache_dir.clone(), options.work_dir.join("runs"));
    let runtime = Runtime::start(config, Arc::new(log_progress)).await?;
    if let Err(error) = runtime.prepare().await {
        // Every run will say so in its result; the worker still serves.
        tracing::error!(%error, "The Python environment for tasks cannot be built.");
    }
    runtimes.current = Some((HashMap::new(), Arc::new(runtime)));
    if let (Some(url), Some(git_ref)) = (&options.repo_url, &options.git_ref) {
        let resolver = CollectionResolver::new(&options.cache_dir, HashMap::new());
        match resolver.resolve_collection(url, git_ref).await {
            Ok((root, commit, _)) => {
                tracing::info!(collection = %url, %git_ref, dir = %root.display(), commit = ?commit, "CodeCollection ready.")
            }
            Err(error) => {
                tracing::warn!(%error, collection = %url, "Cannot fetch the pool's CodeCollection ahead of its runs.")
            }
        }
    }
    Ok(())
}

/// Runs one leased run and reports it, unless the lease stops being current.
async fn work(
    client: &reqwest::Client,
    base: &str,
    options: &WorkerOptions,
    runtimes: &mut Runtimes,
    grant: LeaseGrant,
    stop: &CancellationToken,
) {
    let run = grant.launch.spec.run_id;
    tracing::info!(%run, attempt = grant.attempt, "Running a leased run.");
    let cancel = CancellationToken::new();
    let lost = Arc::new(AtomicBool::new(false));
    let renewing = tokio::spawn(renew_forever(
        client.clone(),
        format!("{base}/leases/{}/renew", grant.lease_id),
        options.token.clone(),
        Duration::from_secs(grant.ttl_seconds.max(1)),
        cancel.clone(),
        lost.clone(),
    ));
    let on_stop = {
        let (stop, cancel) = (stop.clone(), cancel.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            cancel.cancel();
        })
    };
    let out_dir = options.work_dir.join("out").join(run.to_string());
    let secrets: Vec<SecretValue> = grant
        .launch
        .secret_values
        .iter()
        .map(|(name, value)| SecretValue {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    let started = chrono::Utc::now();
    let result = match runtimes.for_launch(&grant.launch).await {
        Ok(runtime) => {
            runtime
                .execute(&grant.launch.spec, &secrets, &out_dir, &cancel)
                .await
                .result
        }
        Err(e) => steward_model::run::RunResult::error(
            steward_model::run::RunStatus::Error,
            format!("the task runtime cannot start: {e}"),
            started,
        ),
    };
    on_stop.abort();
    if lost.load(Ordering::SeqCst) {
        tracing::warn!(%run, "The lease on this run is no longer current; not reporting it.");
    } else if stop.is_cancelled() {
        let url = format!("{base}/leases/{}/release", grant.lease_id);
        match client.post(&url).bearer_auth(&options.token).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%run, "Stopping: handed the run back to the runner.")
            }
            Ok(r) => {
                tracing::warn!(%run, status = %r.status(), "Stopping: the runner did not take the run back; it is run again when its lease lapses.")
            }
            Err(error) => {
                tracing::warn!(%run, %error, "Stopping: cannot hand the run back; it is run again when its lease lapses.")
            }
        }
    } else {
        match launcher::report(&grant.launch, &out_dir, &result).await {
            Ok(()) => tracing::info!(%run, status = %result.status, "Run reported to the runner."),
            Err(error) => tracing::warn!(%run, %error, "The run's report was not taken."),
        }
    }
    renewing.abort();
    if let Err(error) = std::fs::remove_dir_all(&out_dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, dir = %out_dir.display(), "Cannot remove a run's output directory.");
    }
}

/// Renews every third of the TTL; a refusal (409: the lease is not current) stops the run.
async fn renew_forever(
    client: reqwest::Client,
    url: String,
    token: String,
    ttl: Duration,
    cancel: CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let period = (ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        match client
            .post(&url)
            .bearer_auth(&token)
            .timeout(period)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) if r.status().is_client_error() => {
                let text = r.text().await.unwrap_or_default();
                tracing::warn!(answer = %text, "The runner refused to renew the lease; stopping the run.");
                lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "Renewing the lease failed; trying again.")
            }
            Err(error) => tracing::warn!(%error, "Renewing the lease failed; trying again."),
        }
    }
}

fn log_progress(event: steward_runtime::ProvisionEvent) {
    tracing::info!(?event, "Python environment.");
}

//! The Steward runner: lives where the tasks must run, connects outbound only to a control
//! plane, and executes runs there.
//!
//! - registers once with a registration token and keeps its credential on disk;
//! - long-polls for leases over one HTTP/2 connection, renewing the leases of running runs
//!   with every poll (the poll is the heartbeat);
//! - executes runs with bounded concurrency through an [`executor::Executor`];
//! - schedules SLIs itself from the versioned desired state, so they keep running while the
//!   platform is unreachable;
//! - spools every result with its artifacts to disk and delivers it when the platform answers
//!   (artifacts first, through signed URLs, then the completion).
//!
//! ```no_run
//! # async fn demo() -> Result<(), steward_runner::Error> {
//! let mut config = steward_runner::RunnerConfig::new("http://127.0.0.1:8080", "/var/lib/steward-runner".into());
//! config.registration_token = Some("stw_reg_...".into());
//! let stop = tokio_util::sync::CancellationToken::new();
//! steward_runner::run(config, stop).await
//! # }
//! ```
#![deny(missing_docs)]

pub mod client;
pub mod config_file;
mod deliver;
pub mod executor;
pub mod kubernetes;
mod poll;
mod relay;
mod scheduler;
pub mod secrets;
pub mod spool;
mod telemetry;

use client::{PlatformClient, Registration};
use executor::{Executor, ProcessExecutor};
use secrets::SecretResolver;
use spool::Spool;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use steward_runtime::{Progress, Runtime, RuntimeConfig};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How a runner is set up.
#[derive(Clone)]
pub struct RunnerConfig {
    /// Base URL of the platform.
    pub platform_url: String,
    /// Registration token (needed the first time, and again if the platform forgets us).
    pub registration_token: Option<String>,
    /// Name shown in the platform (host name by default).
    pub name: String,
    /// Registration, spool and per-run work directories.
    pub state_dir: PathBuf,
    /// Python environments and CodeCollection checkouts (shareable between runners).
    pub cache_dir: PathBuf,
    /// Runs executed at once (leased runs and SLIs together).
    pub capacity: u32,
    /// Interpreter for task environments (`None`: `$STEWARD_PYTHON` or `python3`).
    pub python: Option<PathBuf>,
    /// `repoUrl` → local directory, for mirrors and air-gapped installs.
    pub collection_overrides: HashMap<String, PathBuf>,
    /// Directory with one file per bare secret key.
    pub secrets_dir: Option<PathBuf>,
    /// Custom secret providers and the deny-list (from the configuration file).
    pub secrets: secrets::config::SecretsConfig,
    /// Run tasks as Kubernetes pods with these settings (`None`: as local processes).
    pub kubernetes: Option<kubernetes::settings::PodSettings>,
    /// Warm worker pools (Kubernetes executor only).
    pub pools: Vec<kubernetes::pools::PoolConfig>,
    /// The runner's own Kubernetes namespace, for `k8s:` secret keys that name none
    /// (`None`: the Kubernetes client's default).
    pub namespace: Option<String>,
    /// Extra trusted CA (PEM) for the platform's TLS certificate.
    pub ca_cert: Option<PathBuf>,
    /// Use HTTP/1.1 instead of HTTP/2 towards the platform.
    pub http1_only: bool,
    /// Receives Python-environment build progress (logged when unset).
    pub progress: Option<Progress>,
    /// The loopback OTLP receiver tasks (and other local exporters) push to; port 0 picks one.
    pub otlp_listen: std::net::SocketAddr,
    /// Serve Prometheus `/metrics` here.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Largest size of the relayed-metrics spool; the oldest batches go beyond it.
    pub relay_spool_bytes: u64,
}

impl RunnerConfig {
    /// Defaults: capacity 4, caches under `state_dir/cache`, host name as name.
    pub fn new(platform_url: &str, state_dir: PathBuf) -> Self {
        RunnerConfig {
            platform_url: platform_url.to_string(),
            registration_token: None,
            name: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "runner".into()),
            cache_dir: state_dir.join("cache"),
            state_dir,
            capacity: 4,
            python: None,
            collection_overrides: HashMap::new(),
            secrets_dir: None,
            secrets: Default::default(),
            kubernetes: None,
            pools: Vec::new(),
            namespace: None,
            ca_cert: None,
            http1_only: false,
            progress: None,
            otlp_listen: ([127, 0, 0, 1], 0).into(),
            metrics_listen: None,
            relay_spool_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why the runner cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The platform refused registration.
    #[error("registration with {platform} failed: {message}")]
    Registration {
        /// Platform URL.
        platform: String,
        /// What it said.
        message: String,
    },
    /// A file operation failed.
    #[error("{path}: {cause}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(#[from] steward_runtime::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a running run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// The platform asked: report it as cancelled.
    Cancelled,
    /// The platform no longer honours the lease: report nothing.
    Revoked,
}

struct Active {
    run_id: Uuid,
    cancel: CancellationToken,
    reason: Option<StopReason>,
}

/// State shared by the poll loop, run tasks, the SLI scheduler and the delivery loop.
pub(crate) struct Shared {
    config: RunnerConfig,
    client: PlatformClient,
    registration: RwLock<Registration>,
    executor: Arc<dyn Executor>,
    spool: Spool,
    slots: Arc<Semaphore>,
    active: Mutex<HashMap<Uuid, Active>>,
    secrets: SecretResolver,
    shutdown: CancellationToken,
    /// Signalled when a run ends, so a poll made with no free slot can be redone with one.
    slot_freed: tokio::sync::Notify,
    telemetry: Arc<telemetry::Telemetry>,
    relay: Arc<relay::Relay>,
}

impl Shared {
    fn credential(&self) -> String {
        self.registration
            .read()
            .expect("poisoned")
            .credential
            .clone()
    }

    fn location(&self) -> String {
        self.registration.read().expect("poisoned").location.clone()
    }

    fn registration_path(&self) -> PathBuf {
        self.config.state_dir.join("registration.json")
    }
}

/// Runs the runner until `shutdown` is cancelled.
pub async fn run(config: RunnerConfig, shutdown: CancellationToken) -> Result<()> {
    if config.capacity == 0 {
        return Err(Error::Config("capacity must be at least 1".into()));
    }
    let secrets = SecretResolver::new(
        config.secrets_dir.clone(),
        &config.secrets,
        config.namespace.clone(),
    )
    .map_err(Error::Config)?;
    let client = PlatformClient::new(
        &config.platform_url,
        config.ca_cert.as_deref(),
        config.http1_only,
    )?;
    for dir in [&config.state_dir, &config.cache_dir] {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.clone(),
            cause: e,
        })?;
    }
    let progress = config
        .progress
        .clone()
        .unwrap_or_else(|| Arc::new(log_progress));
    let runtime = Runtime::start(
        RuntimeConfig {
            python: config.python.clone(),
            collection_overrides: config.collection_overrides.clone(),
            otlp_listen: config.otlp_listen,
            ..RuntimeConfig::new(config.cache_dir.clone(), config.state_dir.join("work"))
        },
        progress,
    )
    .await?;
    let runtime = Arc::new(runtime);
    let executor: Arc<dyn Executor> = match &config.kubernetes {
        Some(settings) => Arc::new(kubernetes::start(&config, settings, shutdown.clone()).await?),
        None => {
            // Build the Python environment now so the first task does not wait for it; a
            // failure is reported here and again, as the run's error, by every task.
            let prepare = runtime.clone();
            tokio::spawn(async move {
                if let Err(error) = prepare.prepare().await {
                    tracing::error!(%error, "The Python environment for tasks cannot be built.");
                }
            });
            Arc::new(ProcessExecutor::new(runtime.clone()))
        }
    };

    // Metrics answer from the start, so probes see a live runner while it waits for the
    // platform (steward_runner_connected stays 0 until it is registered and polling).
    let telemetry = Arc::new(telemetry::Telemetry::new());
    let metrics = telemetry::MetricsState::new(telemetry.clone());
    if let Some(addr) = config.metrics_listen {
        telemetry::serve(metrics.clone(), addr, shutdown.clone())
            .await
            .map_err(|e| {
                Error::Config(format!(
                    "the metrics endpoint cannot listen on {addr} (--metrics-listen): {e}"
                ))
            })?;
    }
    let Some(registration) = poll::register(&client, &config, &shutdown).await? else {
        return Ok(()); // shut down while waiting for the platform
    };
    tracing::info!(runner = %registration.runner_id, location = %registration.location, platform = %client.base(), "Runner registered.");
    let spool = Spool::open(
        config.state_dir.join("spool"),
        config.state_dir.join("staging"),
    )
    .map_err(|e| Error::Io {
        path: config.state_dir.join("spool"),
        cause: e,
    })?;
    let relay_dir = config.state_dir.join("relay");
    let relay =
        relay::Relay::open(relay_dir.clone(), config.relay_spool_bytes).map_err(|e| Error::Io {
            path: relay_dir,
            cause: e,
        })?;
    let runtime_for_relay = runtime.clone();
    let shared = Arc::new(Shared {
        secrets,
        slots: Arc::new(Semaphore::new(config.capacity as usize)),
        executor,
        registration: RwLock::new(registration),
        active: Mutex::new(HashMap::new()),
        spool,
        client,
        config,
        shutdown,
        slot_freed: tokio::sync::Notify::new(),
        telemetry,
        relay: relay.clone(),
    });
    let sink = relay.clone();
    runtime_for_relay
        .receiver()
        .set_unattributed_sink(Arc::new(move |points| sink.accept(points)));
    tokio::spawn(relay::relay_forever(shared.clone(), relay));
    metrics.attach(shared.clone());
    let delivery = tokio::spawn(deliver::deliver_forever(shared.clone()));
    poll::poll_forever(shared.clone()).await;
    // Stop what runs; unreported leases expire on the platform and are run again.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), delivery).await;
    Ok(())
}

fn log_progress(event: steward_runtime::ProvisionEvent) {
    match event {
        steward_runtime::ProvisionEvent::Started { dir } => {
            tracing::info!(dir = %dir.display(), "Building the Python environment for tasks (first use only).")
        }
        steward_runtime::ProvisionEvent::Step(step) => tracing::info!(%step, "Python environment."),
        steward_runtime::ProvisionEvent::Finished { seconds } => {
            tracing::info!(seconds, "Python environment ready.")
        }
    }
}

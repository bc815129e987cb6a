//! The Steward control plane: the HTTP API under `/api/v1`, the runner protocol, the store
//! (SQLite), the run queue and its leases, issues, SLI values, the local artifact store with
//! signed URLs, and a plain status page at `/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), steward_platform::StartError> {
//! use steward_platform::{Platform, PlatformConfig};
//! let mut config = PlatformConfig::new("/var/lib/steward".into());
//! config.registration_tokens.push(("stw_reg_example".into(), "local".into()));
//! let platform = Platform::start(config).await?;
//! println!("serving on {}", platform.addr());
//! platform.stop().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod alerting;
mod api;
pub mod artifacts;
mod assignment;
pub mod error;
mod remote_write;
mod series;
pub mod signing;
pub mod store;
mod telemetry;
mod ui;
pub mod wakeups;

use artifacts::{ArtifactBackend, ArtifactStore};
use axum::serve::ListenerExt;
pub use remote_write::RemoteWriteConfig;
use signing::UrlSigner;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio_util::sync::CancellationToken;
use wakeups::Wakeups;

/// Everything the platform is started with.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// Base URL runners and browsers reach the platform at (signed URLs are absolute);
    /// defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// State: the SQLite database and the artifact store.
    pub data_dir: PathBuf,
    /// `sqlite://...`; defaults to `<data_dir>/steward.db`.
    pub database_url: Option<String>,
    /// When set, every client API call needs `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// `(token, location)` registration tokens to accept (added to the stored ones).
    pub registration_tokens: Vec<(String, String)>,
    /// Location of SLIs and runbooks that name none.
    pub default_location: String,
    /// How long a lease lives without a poll renewing it.
    pub lease_ttl: Duration,
    /// How long a poll is held open when there is no work.
    pub poll_timeout: Duration,
    /// How many times a run is handed out before it is given up as `error`.
    pub max_attempts: u32,
    /// A runner is `online` while it polled within the lease TTL, `stale` until this long
    /// after its last poll, `offline` after.
    pub runner_offline_after: Duration,
    /// Largest artifact accepted (runners cut bigger ones to fit).
    pub artifact_max_bytes: u64,
    /// An object store for artifacts (`s3://bucket/prefix`, `gs://...`, `az://...`); `None`
    /// keeps them under the data directory.
    pub artifacts_url: Option<String>,
    /// Object-store settings on top of the environment, as `(key, value)` in `object_store`'s
    /// names (`aws_endpoint`, `aws_allow_http`, `google_service_account_key`, ...).
    pub artifacts_options: Vec<(String, String)>,
    /// Lifetime of signed artifact URLs.
    pub url_ttl: Duration,
    /// Also serve HTTPS with this certificate.
    pub tls: Option<TlsConfig>,
    /// How long raw SLI points are kept.
    pub sli_raw_retention: Duration,
    /// How long five-minute SLI rollups are kept.
    pub sli_rollup_retention: Duration,
    /// How often every SLI's alerts are re-evaluated (for `for` durations and missing data).
    pub alert_sweep: Duration,
    /// Send SLI points to a Prometheus remote-write endpoint.
    pub remote_write: Option<RemoteWriteConfig>,
}

/// An HTTPS listener.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
}

impl PlatformConfig {
    /// Defaults: 127.0.0.1:8080, location `local`, 60 s leases, 25 s polls, 3 attempts,
    /// 64 MiB artifacts, 1 h URLs.
    pub fn new(data_dir: PathBuf) -> Self {
        PlatformConfig {
            listen: ([127, 0, 0, 1], 8080).into(),
            public_url: None,
            data_dir,
            database_url: None,
            api_token: None,
            registration_tokens: Vec::new(),
            default_location: "local".into(),
            lease_ttl: Duration::from_secs(60),
            poll_timeout: Duration::from_secs(25),
            max_attempts: 3,
            runner_offline_after: Duration::from_secs(300),
            artifact_max_bytes: 64 * 1024 * 1024,
            artifacts_url: None,
            artifacts_options: Vec::new(),
            url_ttl: Duration::from_secs(3600),
            tls: None,
            sli_raw_retention: Duration::from_secs(14 * 86_400),
            sli_rollup_retention: Duration::from_secs(400 * 86_400),
            alert_sweep: Duration::from_secs(15),
            remote_write: None,
        }
    }
}

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the listener.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// The database.
    #[error("database {url}: {cause}")]
    Database {
        /// Where.
        url: String,
        /// The cause.
        cause: sqlx::Error,
    },
    /// The artifact store URL cannot be used.
    #[error(transparent)]
    Artifacts(#[from] artifacts::BackendError),
    /// A setting or token could not be stored.
    #[error("{0}")]
    Api(#[from] error::ApiError),
}

/// Shared by every handler.
pub(crate) struct AppState {
    store: Store,
    config: PlatformConfig,
    public_url: String,
    signer: UrlSigner,
    artifacts: ArtifactBackend,
    wakeups: Arc<Wakeups>,
    shutdown: CancellationToken,
    telemetry: Arc<telemetry::Telemetry>,
    metric_index: series::MetricIndex,
    remote_write: Option<Arc<remote_write::RemoteWrite>>,
    dirty: series::Dirty,
    assignments: assignment::Assignments,
}

/// A running platform.
pub struct Platform {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tls_handle: Option<axum_server::Handle<SocketAddr>>,
}

impl Platform {
    /// Opens the store, binds the listener(s) and serves in the background.
    pub async fn start(mut config: PlatformConfig) -> Result<Self, StartError> {
        // Runners renew leases by polling: a poll must end well before a lease would lapse.
        config.poll_timeout = config.poll_timeout.min(config.lease_ttl / 2);
        let io = |what: String| move |cause| StartError::Io { what, cause };
        std::fs::create_dir_all(&config.data_dir)
            .map_err(io(format!("creating {}", config.data_dir.display())))?;
        let url = config.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", config.data_dir.join("steward.db").display())
        });
        let store = Store::open(&url)
            .await
            .map_err(|cause| StartError::Database {
                url: store::db::redact(&url),
                cause,
            })?;
        let key = store
            .setting_or_insert(
                "url_signing_key",
                || hex::encode(rand::random::<[u8; 32]>()),
            )
            .await?;
        for (token, location) in &config.registration_tokens {
            store.add_registration_token(token, location).await?;
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("listening on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the bound address".into()))?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let signer = UrlSigner::new(hex::decode(&key).unwrap_or_default());
        let artifacts = match &config.artifacts_url {
            Some(url) => ArtifactBackend::object(url, &config.artifacts_options)?,
            None => ArtifactBackend::Local {
                store: ArtifactStore::new(
                    config.data_dir.join("artifacts"),
                    config.artifact_max_bytes,
                ),
                signer: signer.clone(),
                base_url: public_url.trim_end_matches('/').to_string(),
            },
        };
        let telemetry = Arc::new(telemetry::Telemetry::new());
        telemetry.observe_latest(store.latest_values().await?.iter().map(|(k, v)| (k, *v)));
        let shutdown = CancellationToken::new();
        let remote_write = config
            .remote_write
            .clone()
            .map(|rw| remote_write::RemoteWrite::start(rw, telemetry.clone(), shutdown.clone()));
        let state = Arc::new(AppState {
            artifacts,
            signer,
            public_url: public_url.trim_end_matches('/').to_string(),
            store,
            wakeups: Arc::default(),
            shutdown,
            telemetry,
            metric_index: series::MetricIndex::new(),
            remote_write,
            dirty: series::Dirty::default(),
            assignments: assignment::Assignments::default(),
            config: config.clone(),
        });
        let app = api::router(state.clone());
        let mut tasks = Vec::new();
        let stop = state.shutdown.clone();
        tasks.push(tokio::spawn(async move {
            // `into_make_service` resolves the router once; handing `serve` the router itself
            // would copy its whole route table for every connection (18 KB each). Replies go
            // out without Nagle's delay: an HTTP/2 reply is several small writes, and the
            // last one would otherwise wait for the client's delayed ACK (40 ms on Linux).
            let listener = listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "Cannot set TCP_NODELAY on a connection.");
                }
            });
            let serve = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(error) = serve.await {
                tracing::error!(%error, "HTTP server stopped.");
            }
        }));
        let (tls_addr, tls_handle) = match &config.tls {
            Some(tls) => {
                let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(
                    tls.cert_pem.clone(),
                    tls.key_pem.clone(),
                )
                .await
                .map_err(io("loading the TLS certificate".into()))?;
                // Bound here, so that a taken address is reported as such, not as a server that
                // quietly did not start.
                let listener = std::net::TcpListener::bind(tls.listen)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(io(format!("listening on {} (HTTPS)", tls.listen)))?;
                let handle = axum_server::Handle::new();
                let server = axum_server::from_tcp_rustls(listener, rustls)
                    .map_err(io(format!("listening on {} (HTTPS)", tls.listen)))?
                    .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor))
                    .handle(handle.clone());
                let app = api::router(state.clone());
                tasks.push(tokio::spawn(async move {
                    if let Err(error) = server.serve(app.into_make_service()).await {
                        tracing::error!(%error, "HTTPS server stopped.");
                    }
                }));
                let bound = handle.listening().await.ok_or_else(|| StartError::Io {
                    what: format!("listening on {} (HTTPS)", tls.listen),
                    cause: std::io::Error::other("the HTTPS listener did not start"),
                })?;
                (Some(bound), Some(handle))
            }
            None => (None, None),
        };
        if state.store.backend() == store::Backend::Postgres {
            tasks.extend(state.wakeups.join_replicas(
                url.clone(),
                state.store.clone(),
                state.shutdown.clone(),
            ));
        }
        tasks.push(tokio::spawn(sweep_leases(state.clone())));
        tasks.push(tokio::spawn(sweep_alerts(state.clone())));
        tasks.push(tokio::spawn(series::evaluate_dirty(state.clone())));
        tasks.push(tokio::spawn(prune_series(state.clone())));
        tracing::info!(%addr, public_url = %state.public_url, "Platform listening.");
        Ok(Platform {
            addr,
            tls_addr,
            state,
            tasks,
            tls_handle,
        })
    }

    /// The bound HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound HTTPS address, when TLS is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The base URL of the platform.
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// The store (for in-process wiring such as `steward up`'s first import).
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Stops accepting requests, ends open polls, and waits for the servers to finish.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        if let Some(handle) = &self.tls_handle {
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.state.store.close().await;
    }
}

/// Requeues runs whose runner stopped renewing its lease.
async fn sweep_leases(state: Arc<AppState>) {
    let period =
        (state.config.lease_ttl / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match state.store.expire_leases().await {
            Ok(locations) => locations.iter().for_each(|l| state.wakeups.wake(l)),
            Err(error) => tracing::warn!(%error, "Lease sweep failed; retrying."),
        }
    }
}

/// Re-evaluates alerts: `for` durations that elapsed without a new value, missing data.
async fn sweep_alerts(state: Arc<AppState>) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(state.config.alert_sweep) => {}
        }
        if let Err(error) = alerting::sweep(&state).await {
            tracing::warn!(%error, "Alert sweep failed; retrying.");
        }
    }
}

/// Drops SLI points and rollups past their retention.
async fn prune_series(state: Arc<AppState>) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
        let now = store::now_ms();
        let raw = now - state.config.sli_raw_retention.as_millis() as i64;
        let rollups = now - state.config.sli_rollup_retention.as_millis() as i64;
        match state.store.prune_series(raw, rollups).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "Old SLI points removed."),
            Err(error) => tracing::warn!(%error, "Pruning SLI points failed; retrying later."),
        }
    }
}

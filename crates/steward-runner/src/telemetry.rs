//! The runner's `/metrics` for Prometheus: SLI values it measured, runs, spool and relay.

use crate::Shared;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SliLabels {
    workspace: String,
    slx: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    status: String,
}

/// Every metric the runner exports.
pub(crate) struct Telemetry {
    registry: Registry,
    sli_values: Family<SliLabels, Gauge<f64, AtomicU64>>,
    runs: Family<RunLabels, Counter>,
    running: Gauge,
    connected: Gauge,
    spool_entries: Gauge,
    spool_bytes: Gauge,
    spool_degraded: Gauge,
    spool_dropped: Counter,
    relay_spool_bytes: Gauge,
    relay_dropped: Counter,
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("steward_runner");
        let sli_values = Family::<SliLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sli_value",
            "Latest SLI value (metric empty) and sub-metrics this runner measured",
            sli_values.clone(),
        );
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs",
            "Runs finished on this runner, by kind and status",
            runs.clone(),
        );
        let running = Gauge::default();
        registry.register("running", "Runs executing now", running.clone());
        let connected = Gauge::default();
        registry.register(
            "connected",
            "1 while the platform answers polls",
            connected.clone(),
        );
        let spool_entries = Gauge::default();
        registry.register(
            "spool_entries",
            "Results waiting to be delivered",
            spool_entries.clone(),
        );
        let spool_bytes = Gauge::default();
        registry.register(
            "spool_bytes",
            "Bytes of results and artifacts waiting to be delivered",
            spool_bytes.clone(),
        );
        let spool_degraded = Gauge::default();
        registry.register(
            "spool_degraded",
            "1 while the result spool cannot be written (results go to the platform directly)",
            spool_degraded.clone(),
        );
        let spool_dropped = Counter::default();
        registry.register(
            "spool_dropped_results",
            "Results dropped because they could be neither spooled nor delivered",
            spool_dropped.clone(),
        );
        let relay_spool_bytes = Gauge::default();
        registry.register(
            "relay_spool_bytes",
            "Bytes of relayed metric batches waiting",
            relay_spool_bytes.clone(),
        );
        let relay_dropped = Counter::default();
        registry.register(
            "relay_dropped_points",
            "Relayed metric points dropped (spool full, refused)",
            relay_dropped.clone(),
        );
        Telemetry {
            registry,
            sli_values,
            runs,
            running,
            connected,
            spool_entries,
            spool_bytes,
            spool_degraded,
            spool_dropped,
            relay_spool_bytes,
            relay_dropped,
        }
    }

    /// Records a finished run.
    pub(crate) fn finished(
        &self,
        kind: &str,
        status: &str,
        workspace: &str,
        slx: &str,
        result: &steward_model::run::RunResult,
    ) {
        self.runs
            .get_or_create(&RunLabels {
                kind: kind.into(),
                status: status.into(),
            })
            .inc();
        let base = steward_model::names::sli_metric_name(slx);
        for point in &result.metrics {
            if let Some(sub) = point.sub_name(&base) {
                let labels = SliLabels {
                    workspace: workspace.into(),
                    slx: slx.into(),
                    metric: sub.unwrap_or("").into(),
                };
                self.sli_values.get_or_create(&labels).set(point.value);
            }
        }
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.set(connected as i64);
    }
}

/// What `/metrics` reads: the counters from the start, the runner's state once it runs.
#[derive(Clone)]
pub(crate) struct MetricsState {
    telemetry: Arc<Telemetry>,
    shared: Arc<std::sync::OnceLock<Arc<Shared>>>,
}

impl MetricsState {
    pub(crate) fn new(telemetry: Arc<Telemetry>) -> Self {
        MetricsState {
            telemetry,
            shared: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// From now on the gauges of runs, spool and relay are read from `shared`.
    pub(crate) fn attach(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
    }
}

async fn exposition(State(state): State<MetricsState>) -> impl IntoResponse {
    let t = &state.telemetry;
    if let Some(shared) = state.shared.get() {
        t.running
            .set(shared.active.lock().expect("poisoned").len() as i64);
        let (entries, bytes) = shared.spool.usage();
        t.spool_entries.set(entries as i64);
        t.spool_bytes.set(bytes as i64);
        t.relay_spool_bytes.set(
            shared
                .relay
                .spooled()
                .iter()
                .map(|(_, size)| *size)
                .sum::<u64>() as i64,
        );
        t.spool_degraded.set(i64::from(shared.spool.degraded()));
        catch_up(&t.spool_dropped, shared.spool.dropped());
        catch_up(
            &t.relay_dropped,
            shared.relay.dropped.load(Ordering::Relaxed),
        );
    }
    let mut text = String::new();
    encode(&mut text, &t.registry).expect("writing to a String cannot fail");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Brings a counter up to a total kept elsewhere.
fn catch_up(counter: &Counter, total: u64) {
    let counted = counter.get();
    if total > counted {
        counter.inc_by(total - counted);
    }
}

/// Serves `/metrics` on `addr` until shutdown.
pub(crate) async fn serve(
    state: MetricsState,
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "Runner metrics listening.");
    let app = Router::new()
        .route("/metrics", get(exposition))
        .with_state(state);
    tokio::spawn(async move {
        let serve = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(error) = serve.await {
            tracing::warn!(%error, "Runner metrics stopped.");
        }
    });
    Ok(())
}

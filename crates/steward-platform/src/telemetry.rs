//! The platform's own metrics and the SLI values, for Prometheus to scrape at `/metrics`.

use crate::series::Mapped;
use crate::store::SeriesKey;
use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SliLabels {
    workspace: String,
    slx: String,
    /// Empty for the SLI value, the sub-metric name otherwise.
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Every metric the platform exports.
pub(crate) struct Telemetry {
    registry: Registry,
    sli_values: Family<SliLabels, Gauge<f64, AtomicU64>>,
    runs_completed: Family<RunLabels, Counter>,
    lease_latency: Histogram,
    poll_connections: Gauge,
    queued: Gauge,
    running: Gauge,
    alerts_active: Gauge,
    otlp_points: Family<OutcomeLabels, Counter>,
    remote_write_points: Family<OutcomeLabels, Counter>,
}

/// Decrements the poll gauge when the poll ends, however it ends.
pub(crate) struct PollGuard<'a>(&'a Gauge);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("steward");
        let sli_values = Family::<SliLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sli_value",
            "Latest SLI value (metric empty) and sub-metrics per SLX",
            sli_values.clone(),
        );
        let runs_completed = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs_completed",
            "Runs recorded, by kind and final status",
            runs_completed.clone(),
        );
        let lease_latency = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        registry.register(
            "lease_latency_seconds",
            "Time from a run being queued to being leased",
            lease_latency.clone(),
        );
        let poll_connections = Gauge::default();
        registry.register(
            "poll_connections",
            "Runner long polls being held open",
            poll_connections.clone(),
        );
        let queued = Gauge::default();
        registry.register("runs_queued", "Runs waiting for a runner", queued.clone());
        let running = Gauge::default();
        registry.register("runs_running", "Runs leased and executing", running.clone());
        let alerts_active = Gauge::default();
        registry.register("alerts_active", "Alerts firing now", alerts_active.clone());
        let otlp_points = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "otlp_points",
            "OTLP metric points received, by outcome",
            otlp_points.clone(),
        );
        let remote_write_points = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "remote_write_points",
            "SLI points sent to the remote-write endpoint, by outcome",
            remote_write_points.clone(),
        );
        Telemetry {
            registry,
            sli_values,
            runs_completed,
            lease_latency,
            poll_connections,
            queued,
            running,
            alerts_active,
            otlp_points,
            remote_write_points,
        }
    }

    /// Moves the SLI gauges to the latest value of each series.
    pub(crate) fn observe_latest<'a>(
        &self,
        latest: impl IntoIterator<Item = (&'a SeriesKey, f64)>,
    ) {
        for (key, value) in latest {
            let labels = SliLabels {
                workspace: key.workspace.clone(),
                slx: key.slx.clone(),
                metric: key.metric.clone(),
            };
            self.sli_values.get_or_create(&labels).set(value);
        }
    }

    pub(crate) fn run_completed(&self, kind: &str, status: &str) {
        self.runs_completed
            .get_or_create(&RunLabels {
                kind: kind.into(),
                status: status.into(),
            })
            .inc();
    }

    pub(crate) fn leased(&self, waited_seconds: f64) {
        self.lease_latency.observe(waited_seconds);
    }

    pub(crate) fn poll_started(&self) -> PollGuard<'_> {
        self.poll_connections.inc();
        PollGuard(&self.poll_connections)
    }

    pub(crate) fn otlp(&self, outcome: &str, points: usize) {
        self.otlp_points
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc_by(points as u64);
    }

    /// Counts what became of pushed points.
    pub(crate) fn mapped(&self, mapped: &Mapped) {
        self.otlp("stored", mapped.batch.samples.len());
        if mapped.skipped > 0 {
            self.otlp("unsupported_type", mapped.skipped);
        }
        for (reason, points) in &mapped.unmapped {
            self.otlp(reason, *points);
        }
    }

    pub(crate) fn remote_write(&self, outcome: &str, points: usize) {
        self.remote_write_points
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc_by(points as u64);
    }

    /// The exposition text, with the gauges that come from the database set first.
    pub(crate) fn render(&self, queued: u64, running: u64, alerts_active: u64) -> String {
        self.queued.set(queued as i64);
        self.running.set(running as i64);
        self.alerts_active.set(alerts_active as i64);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

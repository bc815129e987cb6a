//! SLI series beyond storage: which SLX a pushed metric belongs to, aggregation for range
//! queries, and what happens after points are stored (alerts, `/metrics` gauges, remote write).

mod index;
mod query;

pub(crate) use index::{Mapped, MetricIndex};
pub(crate) use query::{Aggregation, aggregate_raw, aggregate_rollups};

use crate::AppState;
use crate::store::Batch;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// How long new values gather before their SLXs' alerts are evaluated: a burst of pushes
/// costs one evaluation per SLX, and ingest never waits for one.
const ALERT_DELAY: Duration = Duration::from_millis(200);

/// SLXs with new SLI values whose alerts have not been evaluated yet.
#[derive(Default)]
pub(crate) struct Dirty {
    slxs: Mutex<BTreeSet<(String, String)>>,
    wake: Notify,
}

/// Called once points are committed, whatever path they came by.
pub(crate) fn committed(state: &AppState, batch: &Batch) {
    if batch.samples.is_empty() {
        return;
    }
    state.telemetry.observe_latest(batch.latest());
    if let Some(exporter) = &state.remote_write {
        exporter.push(batch);
    }
    let mut dirty = state.dirty.slxs.lock().expect("poisoned");
    let before = dirty.len();
    dirty.extend(
        batch
            .keys
            .iter()
            .filter(|k| k.metric.is_empty())
            .map(|k| (k.workspace.clone(), k.slx.clone())),
    );
    if dirty.len() > before {
        state.dirty.wake.notify_one();
    }
}

/// Evaluates the alerts of SLXs with new values, shortly after they arrive.
pub(crate) async fn evaluate_dirty(state: std::sync::Arc<AppState>) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.dirty.wake.notified() => {}
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(ALERT_DELAY) => {}
        }
        let slxs = std::mem::take(&mut *state.dirty.slxs.lock().expect("poisoned"));
        for (workspace, slx) in slxs {
            if let Err(error) = crate::alerting::evaluate_slx(&state, &workspace, &slx).await {
                tracing::warn!(%workspace, %slx, %error, "Alert evaluation failed; the next sweep retries.");
            }
        }
    }
}

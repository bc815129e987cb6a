//! SLI series beyond storage: which SLX a pushed metric belongs to, aggregation for range
//! queries, and what happens after points are stored (alerts, `/metrics` gauges, remote write).

mod index;
mod query;

pub(crate) use index::MetricIndex;
pub(crate) use query::{Aggregation, aggregate_raw, aggregate_rollups};

use crate::AppState;
use crate::store::SeriesPoint;
use std::collections::BTreeSet;

/// Called once points are committed, whatever path they came by.
pub(crate) async fn committed(state: &AppState, points: &[SeriesPoint]) {
    if points.is_empty() {
        return;
    }
    state.telemetry.observe_points(points);
    if let Some(exporter) = &state.remote_write {
        exporter.push(points);
    }
    let slxs: BTreeSet<(&str, &str)> = points
        .iter()
        .filter(|p| p.metric.is_empty())
        .map(|p| (p.workspace.as_str(), p.slx.as_str()))
        .collect();
    for (workspace, slx) in slxs {
        if let Err(error) = crate::alerting::evaluate_slx(state, workspace, slx).await {
            tracing::warn!(%workspace, %slx, %error, "Alert evaluation failed; the next sweep retries.");
        }
    }
}

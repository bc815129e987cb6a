//! Workspaces and SLXs: import, list, export, SLI values.

use super::{Json, Path, Query, parse_since};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::series::{Aggregation, aggregate_raw, aggregate_rollups};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use steward_model::api::{
    ImportReport, ImportRequest, MergeMode, SliValue, SlxView, WorkspaceView,
};
use steward_model::workspace::{SliSpec, WorkspaceTree, parse_duration};

/// Largest workspace tree an import accepts (the whole JSON body; for an upload, the
/// unpacked archive).
pub(super) const IMPORT_LIMIT: usize = 256 * 1024 * 1024;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/workspaces", get(list))
        .route(
            "/api/v1/workspaces/{ws}",
            axum::routing::put(import)
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT))
                .delete(delete),
        )
        .route("/api/v1/workspaces/{ws}/export", get(export))
        .route("/api/v1/workspaces/{ws}/slxs", get(slxs))
        .route("/api/v1/workspaces/{ws}/slxs/{slx}", get(slx))
        .route(
            "/api/v1/workspaces/{ws}/slxs/{slx}/sli-values",
            get(sli_values),
        )
}

async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<WorkspaceView>>> {
    Ok(Json(state.store.workspaces().await?))
}

async fn import(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
    Json(request): Json<ImportRequest>,
) -> ApiResult<(StatusCode, Json<ImportReport>)> {
    let tree = WorkspaceTree::from_files(request.files)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let report = import_tree(
        &state,
        &ws,
        &tree,
        &request.keep,
        request.prune,
        request.merge_mode,
    )
    .await?;
    Ok((StatusCode::OK, Json(report)))
}

/// Stores `tree` as workspace `ws` (which `workspace.yaml` must name) and tells whoever waits
/// on SLI sets; the one import path behind `PUT /api/v1/workspaces/{ws}` and the upload.
pub(super) async fn import_tree(
    state: &AppState,
    ws: &str,
    tree: &WorkspaceTree,
    keep: &[String],
    prune: bool,
    merge: MergeMode,
) -> ApiResult<ImportReport> {
    if tree.name() != ws {
        return Err(ApiError::Unprocessable(format!(
            "workspace.yaml names the workspace {:?}, but it is being imported as {ws:?}",
            tree.name()
        )));
    }
    let mut report = state
        .store
        .import_workspace(tree, prune, keep, merge, &state.config.default_location)
        .await?;
    report.warnings.extend(import_warnings(state, tree).await?);
    // SLI sets may have changed for any location, and metric names with them.
    state.wakeups.wake_all();
    state.metric_index.invalidate();
    tracing::info!(
        workspace = %ws,
        merge_mode = merge.as_str(),
        added = report.added.len(),
        updated = report.updated.len(),
        kept = report.kept.len(),
        removed = report.removed.len(),
        problems = report.problems.len(),
        "Workspace imported."
    );
    Ok(report)
}

async fn delete(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_workspace(&ws, &state.config.default_location)
        .await?;
    state.wakeups.wake_all();
    Ok(StatusCode::NO_CONTENT)
}

async fn export(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    Ok(Json(state.store.export_workspace(&ws).await?))
}

async fn slxs(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
) -> ApiResult<Json<Vec<SlxView>>> {
    state.store.require_workspace(&ws).await?;
    Ok(Json(state.store.slx_views(&ws).await?))
}

/// An SLX with its files.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SlxDetail {
    #[serde(flatten)]
    view: SlxView,
    files: BTreeMap<String, String>,
}

async fn slx(
    State(state): State<Arc<AppState>>,
    Path((ws, name)): Path<(String, String)>,
) -> ApiResult<Json<SlxDetail>> {
    let record = state.store.slx(&ws, &name).await?;
    let view = state
        .store
        .slx_views(&ws)
        .await?
        .into_iter()
        .find(|v| v.name == record.name)
        .ok_or_else(|| ApiError::NotFound(format!("no SLX named {name} in workspace {ws}")))?;
    Ok(Json(SlxDetail {
        view,
        files: record.files,
    }))
}

#[derive(Deserialize)]
struct SliQuery {
    since: Option<String>,
    until: Option<String>,
    metric: Option<String>,
    /// Bucket width (`5m`); without it the raw points come back.
    step: Option<String>,
    /// How a bucket's points become one value (default `avg`).
    agg: Option<Aggregation>,
    limit: Option<u32>,
}

/// Raw points, or one aggregate per `step`: from the raw points while the range is within
/// their retention, from the five-minute rollups beyond it.
async fn sli_values(
    State(state): State<Arc<AppState>>,
    Path((ws, name)): Path<(String, String)>,
    Query(query): Query<SliQuery>,
) -> ApiResult<Json<Vec<SliValue>>> {
    let record = state.store.slx(&ws, &name).await?;
    let since = parse_since(query.since.as_deref(), std::time::Duration::from_secs(3600))?
        .timestamp_millis();
    let until = match query.until.as_deref() {
        Some(text) => parse_since(Some(text), std::time::Duration::ZERO)?.timestamp_millis(),
        None => crate::store::now_ms(),
    };
    if until < since {
        return Err(ApiError::BadRequest("until is before since".into()));
    }
    let metric = query
        .metric
        .as_deref()
        .map(|m| if m == "value" { "" } else { m });
    let Some(step) = query.step.as_deref() else {
        let limit = query.limit.unwrap_or(10_000);
        return Ok(Json(
            state
                .store
                .sli_values(&ws, &record.name, metric, since, until, limit)
                .await?,
        ));
    };
    let step = parse_duration(step)
        .map_err(|e| ApiError::BadRequest(format!("step={step:?}: {e}")))?
        .as_millis() as i64;
    if step < 1000 || (until - since) / step > 100_000 {
        return Err(ApiError::BadRequest(
            "step must be at least 1s and give at most 100000 buckets".into(),
        ));
    }
    let agg = query.agg.unwrap_or(Aggregation::Avg);
    let raw_from = crate::store::now_ms() - state.config.sli_raw_retention.as_millis() as i64;
    let values = if since >= raw_from {
        let raw = state
            .store
            .sli_values(&ws, &record.name, metric, since, until, 1_000_000)
            .await?;
        aggregate_raw(&raw, since, step, agg)
    } else {
        let rollups = state
            .store
            .sli_rollups(&ws, &record.name, metric, since, until)
            .await?;
        aggregate_rollups(&rollups, since, step, agg)
    };
    Ok(Json(values))
}

/// What an import should point out although nothing was skipped.
async fn import_warnings(state: &AppState, tree: &WorkspaceTree) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    let mut locations = std::collections::BTreeSet::new();
    let default = &state.config.default_location;
    for (name, slx) in &tree.slxs {
        if let Some(sli) = &slx.sli {
            if let Some(seconds) = sli
                .spec
                .interval_seconds
                .filter(|s| *s < SliSpec::MIN_INTERVAL_SECONDS)
            {
                warnings.push(format!(
                    "slxs/{name}/sli.yaml: intervalSeconds {seconds} is below the minimum; it runs every {} s",
                    SliSpec::MIN_INTERVAL_SECONDS
                ));
            }
            let named: Vec<&String> = sli
                .spec
                .locations
                .iter()
                .filter(|l| !l.trim().is_empty())
                .collect();
            if named.is_empty() {
                locations.insert(default.clone());
            }
            locations.extend(named.into_iter().cloned());
        }
        if let Some(runbook) = &slx.runbook {
            locations.insert(
                runbook
                    .spec
                    .location
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or_else(|| default.clone()),
            );
        }
    }
    let served: std::collections::BTreeSet<String> = state
        .store
        .runners(
            state.config.lease_ttl.as_millis() as i64,
            state.config.runner_offline_after.as_millis() as i64,
        )
        .await?
        .into_iter()
        .map(|r| r.location)
        .collect();
    for location in locations.difference(&served) {
        warnings.push(format!(
            "no runner has registered for location {location} yet; its SLIs and runbooks wait until one does (steward token create --location {location})"
        ));
    }
    Ok(warnings)
}

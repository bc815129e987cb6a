//! Run sessions: creating runbook runs on demand.

use super::{Json, Path, Query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;
use steward_model::api::{SessionCreate, SessionView};
use steward_model::run::{RunKind, RunSpec};
use uuid::Uuid;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/workspaces/{ws}/sessions", get(list).post(create))
        .route("/api/v1/sessions/{id}", get(show))
}

/// Queues one runbook run per run request; refuses the whole session if any request names an
/// SLX that does not exist or has no runbook.
pub(crate) async fn create_session(
    state: &AppState,
    ws: &str,
    request: SessionCreate,
) -> ApiResult<SessionView> {
    state.store.require_workspace(ws).await?;
    if request.run_requests.is_empty() {
        return Err(ApiError::BadRequest(
            "runRequests is empty; name at least one SLX to run".into(),
        ));
    }
    let session_id = Uuid::now_v7();
    let mut specs = Vec::with_capacity(request.run_requests.len());
    // A session often runs one SLX many times: each is looked up once.
    let mut slxs = std::collections::HashMap::new();
    for run_request in &request.run_requests {
        if !slxs.contains_key(&run_request.slx) {
            let slx = state.store.slx(ws, &run_request.slx).await?;
            slxs.insert(run_request.slx.clone(), slx);
        }
        let slx = &slxs[&run_request.slx];
        let Some(runbook) = &slx.runbook else {
            return Err(ApiError::Unprocessable(format!(
                "SLX {} has no runbook.yaml; only SLXs with a runbook run on demand",
                slx.name
            )));
        };
        let titles: Vec<String> = run_request
            .task_titles
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        let titles = if titles.iter().any(|t| t == "*") {
            Vec::new()
        } else {
            titles
        };
        let location = runbook
            .location
            .clone()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| state.config.default_location.clone());
        specs.push(RunSpec {
            run_id: Uuid::now_v7(),
            kind: RunKind::Runbook,
            workspace: ws.to_string(),
            slx: slx.name.clone(),
            location,
            code_bundle: runbook.code_bundle.clone(),
            config: runbook.config_provided.clone(),
            secrets: runbook.secrets_provided.clone(),
            task_titles: titles,
            timeout_seconds: RunSpec::DEFAULT_RUNBOOK_TIMEOUT_SECONDS,
            session_id: Some(session_id),
            interval_seconds: None,
        });
    }
    let source = request.source.unwrap_or_else(|| "direct".into());
    let session = state
        .store
        .create_session(ws, &source, session_id, &specs, state.config.max_attempts)
        .await?;
    let locations: std::collections::BTreeSet<&str> =
        specs.iter().map(|s| s.location.as_str()).collect();
    for location in locations {
        state.wakeups.wake(location);
    }
    tracing::info!(session = %session.id, workspace = %ws, runs = specs.len(), "Run session created.");
    Ok(session)
}

async fn create(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
    Json(request): Json<SessionCreate>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    Ok((
        StatusCode::CREATED,
        Json(create_session(&state, &ws, request).await?),
    ))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Path(ws): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<SessionView>>> {
    state.store.require_workspace(&ws).await?;
    Ok(Json(
        state
            .store
            .sessions(&ws, query.limit.unwrap_or(20).min(200))
            .await?,
    ))
}

async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<SessionView>> {
    Ok(Json(state.store.session(id).await?))
}

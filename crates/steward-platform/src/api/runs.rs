//! Runs: listing, detail, cancellation, artifacts with signed download URLs.

use super::{Json, Path, Query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store::RunFilter;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use std::sync::Arc;
use steward_model::api::{ArtifactLink, RunView};
use steward_model::run::{RunKind, RunStatus};
use uuid::Uuid;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/runs", get(list))
        .route("/api/v1/runs/{id}", get(show))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route("/api/v1/runs/{id}/artifacts", get(artifacts))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    workspace: Option<String>,
    slx: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    session: Option<Uuid>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<RunView>>> {
    let status = query
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<RunKind>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let (workspace, slx) = super::resolve_filter(&state, query.workspace, query.slx).await?;
    let filter = RunFilter {
        workspace,
        slx,
        status,
        kind,
        session: query.session,
        limit: match query.limit {
            None => 50,
            Some(limit @ 1..=1000) => limit,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "limit={other}: runs are listed 1 to 1000 at a time"
                )));
            }
        },
    };
    Ok(Json(state.store.runs(&filter).await?))
}

async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(state.store.run(id).await?))
}

async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RunView>> {
    let (run, location) = state.store.request_cancel(id).await?;
    state.wakeups.wake(&location);
    Ok(Json(run))
}

/// Signed download links for every artifact of a run.
pub(crate) async fn artifact_links(state: &AppState, id: Uuid) -> ApiResult<Vec<ArtifactLink>> {
    let mut links = Vec::new();
    for (name, size) in state.store.artifacts(id).await? {
        let signed = state
            .artifacts
            .download_url(id, &name, state.config.url_ttl)
            .await
            .map_err(|e| ApiError::Unavailable503(e.to_string()))?;
        links.push(ArtifactLink {
            name,
            size,
            url: signed.url,
            expires_at: signed.expires_at,
        });
    }
    Ok(links)
}

async fn artifacts(
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Vec<ArtifactLink>>> {
    state.store.run(id).await?;
    Ok(Json(artifact_links(&state, id).await?))
}

//! Health, status, runners and registration tokens.

use super::{Json, Path};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store::new_secret;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use std::sync::Arc;
use steward_model::api::{RegistrationToken, RunnerView, StatusView};

pub(super) fn public_router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/health", get(health))
}

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/runners", get(runners))
        .route(
            "/api/v1/locations/{location}/registration-tokens",
            post(create_token),
        )
}

/// Liveness of the platform and its database.
async fn health(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    state.store.setting("url_signing_key").await?;
    Ok(Json(
        serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    ))
}

pub(crate) async fn status_view(state: &AppState) -> ApiResult<StatusView> {
    let (queued_runs, running_runs) = state.store.queue_depth().await?;
    Ok(StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        workspaces: state.store.workspaces().await?,
        runners: state
            .store
            .runners(
                state.config.lease_ttl.as_millis() as i64,
                state.config.runner_offline_after.as_millis() as i64,
            )
            .await?,
        queued_runs,
        running_runs,
        open_issues: state.store.open_issue_count().await?,
    })
}

async fn status(State(state): State<Arc<AppState>>) -> ApiResult<Json<StatusView>> {
    Ok(Json(status_view(&state).await?))
}

async fn runners(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<RunnerView>>> {
    Ok(Json(
        state
            .store
            .runners(
                state.config.lease_ttl.as_millis() as i64,
                state.config.runner_offline_after.as_millis() as i64,
            )
            .await?,
    ))
}

async fn create_token(
    State(state): State<Arc<AppState>>,
    Path(location): Path<String>,
) -> ApiResult<(StatusCode, Json<RegistrationToken>)> {
    if location.is_empty()
        || !location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::BadRequest(format!(
            "{location:?} is not a location name (letters, digits, '-', '_', '.')"
        )));
    }
    let token = new_secret("stw_reg");
    state
        .store
        .add_registration_token(&token, &location)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegistrationToken { token, location }),
    ))
}

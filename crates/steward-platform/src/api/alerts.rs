//! Alerts raised from SLI values.

use super::{Json, Query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use std::sync::Arc;
use steward_model::api::AlertView;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/alerts", get(list))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    /// `active` (default) or `all`.
    state: Option<String>,
    workspace: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<AlertView>>> {
    let active = match query.state.as_deref().unwrap_or("active") {
        "active" => true,
        "all" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "state={other:?}: use active or all"
            )));
        }
    };
    let (workspace, _) = super::resolve_filter(&state, query.workspace, None).await?;
    Ok(Json(
        state
            .store
            .alerts(active, workspace.as_deref(), query.limit.unwrap_or(100))
            .await?,
    ))
}

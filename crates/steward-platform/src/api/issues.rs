//! Issues.

use super::{Json, Query};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::store::IssueFilter;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use std::sync::Arc;
use steward_model::api::{IssueStatus, IssueView};

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/issues", get(list))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    workspace: Option<String>,
    slx: Option<String>,
    /// `open` (default), `resolved` or `all`.
    status: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<IssueView>>> {
    let status = match query.status.as_deref().unwrap_or("open") {
        "open" => Some(IssueStatus::Open),
        "resolved" => Some(IssueStatus::Resolved),
        "all" => None,
        other => {
            return Err(ApiError::BadRequest(format!(
                "status={other:?}: use open, resolved or all"
            )));
        }
    };
    let (workspace, slx) = super::resolve_filter(&state, query.workspace, query.slx).await?;
    let filter = IssueFilter {
        workspace,
        slx,
        status,
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(state.store.issues(&filter).await?))
}

//! HTTP routes: the client API, the runner protocol, signed artifact transfer and the page.

mod alerts;
mod artifacts;
mod issues;
mod metrics;
mod runner;
mod runs;
mod sessions;
mod status;
mod upload;
mod workspaces;

pub(crate) use runs::artifact_links;
pub(crate) use sessions::create_session;
pub(crate) use status::status_view;

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequest, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::{Router, middleware};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// JSON bodies whose rejections answer in the API's own error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub T);

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the request body is too large: {}",
                rejection.body_text()
            ))
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query strings whose rejections answer in the API's own error shape.
pub(crate) struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Query<T>
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// Path parameters whose rejections answer in the API's own error shape.
pub(crate) struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let client = Router::new()
        .merge(status::router())
        .merge(workspaces::router())
        .merge(sessions::router())
        .merge(runs::router())
        .merge(issues::router())
        .merge(alerts::router())
        .merge(metrics::exposition_router())
        .merge(crate::ui::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_token,
        ));
    Router::new()
        .merge(client)
        .merge(status::public_router())
        .merge(runner::router())
        .merge(artifacts::router())
        .merge(metrics::ingest_router())
        .merge(upload::router(state.clone()))
        .fallback(|| async {
            ApiError::NotFound(
                "no such endpoint; the API is under /api/v1 (see docs/api.md)".into(),
            )
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .with_state(state)
}

/// With an API token configured, client calls need it as a bearer token (or, for the page,
/// in the `steward_token` cookie set by `/login?token=...`).
async fn require_api_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.config.api_token.as_deref() else {
        return Ok(next.run(request).await);
    };
    if request.uri().path() == "/login" {
        return Ok(next.run(request).await);
    }
    let headers = request.headers();
    let bearer = bearer_token(headers);
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|cookies| {
            cookies
                .split(';')
                .filter_map(|c| c.trim().strip_prefix("steward_token="))
                .next()
        });
    let page = !request.uri().path().starts_with("/api/");
    match check_api_token(expected, bearer.or(cookie)) {
        Ok(()) => Ok(next.run(request).await),
        // A browser gets a page to enter the token on, not a JSON error.
        Err(_) if page => Ok(crate::ui::login_page()),
        Err(error) => Err(error),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Accepts `given` only if it is the configured API token (compared in constant time).
pub(crate) fn check_api_token(expected: &str, given: Option<&str>) -> Result<(), ApiError> {
    match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("wrong API token".into())),
        None => Err(ApiError::Unauthorized(
            "this platform needs an API token: send Authorization: Bearer <token> (steward --token / STEWARD_TOKEN)".into(),
        )),
    }
}

/// Checks a `workspace`/`slx` filter names something that exists, and turns a full SLX name
/// into the short one the store keys by (an empty list for a typo would look like "all good").
pub(crate) async fn resolve_filter(
    state: &AppState,
    workspace: Option<String>,
    slx: Option<String>,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let Some(ws) = workspace else {
        return Ok((None, slx));
    };
    state.store.require_workspace(&ws).await?;
    let slx = match slx {
        Some(name) => Some(state.store.slx(&ws, &name).await?.name),
        None => None,
    };
    Ok((Some(ws), slx))
}

/// Parses `since`: an RFC 3339 time, or a duration back from now (`90s`, `15m`, `1h`, `7d`).
pub(crate) fn parse_since(
    text: Option<&str>,
    default: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let now = chrono::Utc::now();
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(now - chrono::Duration::from_std(default).unwrap_or_default());
    };
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "since={text:?}: give an RFC 3339 time or a duration such as 15m, 1h, 7d"
            ))
        })
}

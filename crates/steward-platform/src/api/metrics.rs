//! Metrics in and out: OTLP/HTTP ingest at `/v1/metrics` and the Prometheus exposition at
//! `/metrics`.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use steward_model::otlp::{Encoding, decode_request, success_response};
use subtle::ConstantTimeEq;

/// OTLP allows bodies this large (after decompression).
const OTLP_LIMIT: usize = 64 * 1024 * 1024;

/// `/v1/metrics`: open when the platform has no API token, otherwise for the API token and
/// registered runners.
pub(super) fn ingest_router() -> Router<Arc<AppState>> {
    Router::new().route(
        "/v1/metrics",
        post(ingest).layer(axum::extract::DefaultBodyLimit::max(OTLP_LIMIT)),
    )
}

/// `/metrics` (behind the API token when there is one).
pub(super) fn exposition_router() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(exposition))
}

async fn authorized(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(expected) = state.config.api_token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "send the API token or a runner credential as a bearer token".into(),
            )
        })?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Ok(());
    }
    state.store.runner_by_credential(given).await.map(|_| ())
}

async fn ingest(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match ingest_inner(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn ingest_inner(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<Response> {
    authorized(state, headers).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = Encoding::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "content type {content_type:?}: send OTLP as application/x-protobuf or application/json"
        ))
    })?;
    let request =
        decode_request(body, encoding).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mapped = state
        .metric_index
        .map_request(&state.store, &request)
        .await?;
    state.store.insert_batch(None, &mapped.batch).await?;
    state.telemetry.mapped(&mapped);
    crate::series::committed(state, &mapped.batch);
    let rejected = mapped.rejected();
    let message = match &mapped.first_unmapped {
        Some((name, why)) => format!(
            "{rejected} points not stored: {name} ({}); SLI metrics are named <slx>__sli[__<sub>] with a workspace attribute",
            why.label()
        ),
        None if rejected > 0 => {
            format!("{rejected} summary or exponential-histogram points are not stored")
        }
        None => String::new(),
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        success_response(encoding, rejected, &message),
    )
        .into_response())
}

async fn exposition(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let (queued, running) = state.store.queue_depth().await?;
    let alerts = state.store.alerts(true, None, 1000).await?.len() as u64;
    let text = state.telemetry.render(queued, running, alerts);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

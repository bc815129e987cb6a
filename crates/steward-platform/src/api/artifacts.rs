//! Artifact transfer through signed URLs (no other credential: the signature is the grant).

use super::{Path, Query};
use crate::AppState;
use crate::artifacts::{check_name, content_type};
use crate::error::ApiResult;
use crate::signing::Signature;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use uuid::Uuid;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/artifacts/{run}/{name}", get(download).put(upload))
}

fn verify(
    state: &AppState,
    method: &str,
    run: Uuid,
    name: &str,
    signature: &Signature,
) -> ApiResult<()> {
    check_name(name)?;
    let path = format!("/api/v1/artifacts/{run}/{name}");
    state
        .signer
        .verify(method, &path, signature, chrono::Utc::now())
}

/// The platform serves artifacts itself only when they live under its data directory.
fn local_store(state: &AppState) -> ApiResult<&crate::artifacts::ArtifactStore> {
    state.artifacts.local().ok_or_else(|| {
        crate::error::ApiError::NotFound(
            "artifacts live in the object store; ask the API for a signed URL there".into(),
        )
    })
}

async fn upload(
    State(state): State<Arc<AppState>>,
    Path((run, name)): Path<(Uuid, String)>,
    Query(signature): Query<Signature>,
    body: Body,
) -> ApiResult<StatusCode> {
    verify(&state, "PUT", run, &name, &signature)?;
    let size = local_store(&state)?.write(run, &name, body).await?;
    state.store.record_artifact(run, &name, size).await?;
    Ok(StatusCode::CREATED)
}

async fn download(
    State(state): State<Arc<AppState>>,
    Path((run, name)): Path<(Uuid, String)>,
    Query(signature): Query<Signature>,
) -> ApiResult<Response> {
    verify(&state, "GET", run, &name, &signature)?;
    let file = local_store(&state)?.open(run, &name).await?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // log.html needs its scripts, but must not run with the platform's origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox allow-scripts"),
    );
    Ok(response)
}

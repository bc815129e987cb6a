//! `POST /api/v3/workspaces/{ws}/upload`: the call runwhen-local's `run.py --upload` makes.
//! The body carries the workspace directory as base64 of a `tar.gz`; its members become the
//! files of an ordinary import. Answers and errors are JSON; errors carry `detail` and `code`
//! (what runwhen-local prints) and `error` (what Steward's own clients read).

mod archive;

use super::workspaces::{IMPORT_LIMIT, import_tree};
use crate::AppState;
use crate::error::ApiError;
use archive::ArchiveError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use steward_model::api::{ImportReport, MergeMode};
use steward_model::workspace::WorkspaceTree;

/// The body may carry an archive of up to the import limit that did not compress at all:
/// base64 makes 4 bytes of 3, plus gzip and tar framing and the other JSON fields.
const UPLOAD_BODY_LIMIT: usize = IMPORT_LIMIT / 3 * 4 + 4 * 1024 * 1024;

pub(super) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v3/workspaces/{ws}/upload",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        // Checked before the body is read, so a caller without the token cannot make the
        // platform buffer hundreds of MiB.
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

/// The body runwhen-local sends. Other fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadRequest<'a> {
    /// base64 of the `tar.gz`; borrowed from the body, as it is most of it.
    #[serde(borrow)]
    output: Cow<'a, str>,
    /// Which version of an SLX both uploaded and stored wins.
    #[serde(default)]
    merge_mode: MergeMode,
    /// Remove stored SLXs the archive does not have.
    #[serde(default)]
    prune_stale_slxs: bool,
    /// The platform keeps no resource inventory, so there is nothing to prune; accepted.
    #[serde(default)]
    prune_stale_resources: bool,
    /// A note for the log ("Updated workspace from map builder.").
    #[serde(default)]
    message: Option<String>,
    /// RunWhen's platform applies an upload through a branch; here it takes effect at once,
    /// whatever this says.
    #[serde(default)]
    finalize_action: Option<String>,
}

/// What the upload hands to the import: the tree and the SLXs to keep as stored.
struct Prepared {
    tree: WorkspaceTree,
    keep: Vec<String>,
    merge: MergeMode,
    prune: bool,
}

async fn upload(
    State(state): State<Arc<AppState>>,
    super::Path(ws): super::Path<String>,
    request: Request,
) -> Result<Json<ImportReport>, UploadError> {
    let result = handle(&state, &ws, request).await;
    if let Err(error) = &result {
        tracing::info!(workspace = %ws, code = error.code, detail = %error.detail, "Workspace upload refused.");
    }
    result.map(Json)
}

async fn handle(state: &AppState, ws: &str, request: Request) -> Result<ImportReport, UploadError> {
    // Both checks come before the body is read: a client told no early is spared sending
    // hundreds of MiB.
    require_json(request.headers())?;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > UPLOAD_BODY_LIMIT as u64) {
        return Err(UploadError::body_too_large());
    }
    let body = Bytes::from_request(request, &())
        .await
        .map_err(UploadError::from_body)?;
    let owned_ws = ws.to_string();
    // Decoding, inflating and parsing a large tree is CPU work; keep it off the async threads.
    let prepared = tokio::task::spawn_blocking(move || prepare(&body, &owned_ws))
        .await
        .map_err(|error| {
            tracing::error!(%error, "Upload unpacking panicked.");
            UploadError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error while unpacking the upload",
            )
        })??;
    import_tree(
        state,
        ws,
        &prepared.tree,
        &prepared.keep,
        prepared.prune,
        prepared.merge,
    )
    .await
    .map_err(UploadError::from)
}

/// Parses the body and unpacks the archive into a workspace tree.
fn prepare(body: &[u8], ws: &str) -> Result<Prepared, UploadError> {
    let request: UploadRequest<'_> = serde_json::from_slice(body).map_err(|error| {
        UploadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("request body: {error}; expected {{output, mergeMode, pruneStaleSlxs, ...}}"),
        )
    })?;
    let unpacked = archive::unpack(&request.output, ws, IMPORT_LIMIT as u64)?;
    let files = unpacked.files.len();
    let mut tree = WorkspaceTree::from_files(unpacked.files).map_err(|error| {
        UploadError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_workspace",
            format!("{error} (in the uploaded archive)"),
        )
    })?;
    tree.problems.extend(unpacked.problems);
    tracing::info!(
        workspace = %ws,
        files,
        merge_mode = request.merge_mode.as_str(),
        prune_stale_slxs = request.prune_stale_slxs,
        prune_stale_resources = request.prune_stale_resources,
        message = request.message.as_deref().unwrap_or(""),
        finalize_action = request.finalize_action.as_deref().unwrap_or(""),
        "Workspace upload unpacked."
    );
    Ok(Prepared {
        tree,
        keep: unpacked.keep,
        merge: request.merge_mode,
        prune: request.prune_stale_slxs,
    })
}

/// A JSON content type makes a browser on another site ask first (CORS preflight), so a web
/// page cannot post a workspace to a platform that runs without an API token.
fn require_json(headers: &HeaderMap) -> Result<(), UploadError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(UploadError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type {content_type:?}: the upload is JSON, send Content-Type: application/json"
        ),
    ))
}

/// With an API token configured, the upload needs it as a bearer token (the one
/// runwhen-local reads from `uploadInfo.yaml`).
async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, UploadError> {
    if let Some(expected) = state.config.api_token.as_deref() {
        super::check_api_token(expected, super::bearer_token(request.headers()))?;
    }
    Ok(next.run(request).await)
}

/// An upload that was refused or failed: `{detail, code, error}` with the status.
#[derive(Debug)]
struct UploadError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl UploadError {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        UploadError {
            status,
            code,
            detail: detail.into(),
        }
    }

    fn body_too_large() -> Self {
        UploadError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is over {} MiB; the unpacked workspace may be at most {} MiB",
                UPLOAD_BODY_LIMIT / (1024 * 1024),
                IMPORT_LIMIT / (1024 * 1024)
            ),
        )
    }

    fn from_body(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return UploadError::body_too_large();
        }
        UploadError::new(
            rejection.status(),
            "invalid_request",
            format!("request body: {}", rejection.body_text()),
        )
    }
}

impl From<ArchiveError> for UploadError {
    fn from(error: ArchiveError) -> Self {
        let status = match &error {
            ArchiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ArchiveError::WorkspaceNotText(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        UploadError::new(status, error.code(), error.to_string())
    }
}

impl From<ApiError> for UploadError {
    fn from(error: ApiError) -> Self {
        let code = match &error {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unprocessable(_) => "invalid_workspace",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unauthorized(_) => "not_authenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unavailable(_) | ApiError::Unavailable503(_) => "unavailable",
            ApiError::Database(_) | ApiError::Storage(_) => "internal",
        };
        let detail = error.to_string();
        // The API's own answer decides the status and logs what must not reach the client;
        // only the body is shaped differently here.
        let status = error.into_response().status();
        UploadError::new(status, code, detail)
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "detail": self.detail,
            "code": self.code,
            "error": self.detail,
        });
        (self.status, Json(body)).into_response()
    }
}

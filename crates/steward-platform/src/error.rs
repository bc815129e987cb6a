//! Every error the platform answers with, and how each becomes an HTTP response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use steward_model::api::ErrorBody;

/// Errors of the API and the store.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed but not acceptable (an SLX without a runbook, a name mismatch).
    #[error("{0}")]
    Unprocessable(String),
    /// 409: conflicts with the current state (a lease that is no longer valid).
    #[error("{0}")]
    Conflict(String),
    /// 401: missing or wrong credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a signed URL that is expired, tampered with or for another method.
    #[error("{0}")]
    Forbidden(String),
    /// 415: a body in an encoding the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 405: the path exists, the method does not.
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    /// 413: an upload over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 503: the database cannot be reached; nothing was changed.
    #[error("the database is unavailable; nothing was changed, retry shortly")]
    Unavailable(#[source] sqlx::Error),
    /// 503: a dependency other than the database (the object store) failed.
    #[error("{0}")]
    Unavailable503(String),
    /// 500: a database error (details logged, not sent).
    #[error("internal database error")]
    Database(#[source] sqlx::Error),
    /// 500: an I/O error on the artifact store (details logged, not sent).
    #[error("internal storage error")]
    Storage(#[source] std::io::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if unavailable(&error) {
            ApiError::Unavailable(error)
        } else {
            ApiError::Database(error)
        }
    }
}

/// Whether `error` says the database cannot be reached right now (as opposed to a query it
/// refused): no connection to be had, a connection that broke, a server shutting down or
/// starting up. Such a transaction was rolled back, so retrying is safe.
pub(crate) fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08: connection exception; 57P01-57P03: the server is shutting
        // down, crashed, or is starting up.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        ApiError::Storage(error)
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::Unavailable503(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Database(_) | ApiError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Database(error) | ApiError::Unavailable(error) => {
                tracing::error!(%error, "Database error.");
            }
            ApiError::Storage(error) => tracing::error!(%error, "Artifact store error."),
            _ => {}
        }
        (
            self.status(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// Result with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

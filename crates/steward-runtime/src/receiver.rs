//! The loopback OTLP/HTTP metrics receiver that tasks push to.
//!
//! Each run gets its own endpoint, `http://127.0.0.1:<port>/runs/<run id>/v1/metrics`, set as
//! `RW_OTEL_COLLECTOR_ENDPOINT`: the OpenTelemetry exporter posts to that exact URL, so every
//! point is attributed to the run that pushed it without guessing from metric names. Points
//! posted to the plain `/v1/metrics` (other exporters on the host) are handed to an optional
//! sink.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use steward_model::metrics::MetricPoint;
use steward_model::otlp::{Encoding, decode_metrics, success_response};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Receives points that belong to no run.
pub type UnattributedSink = Arc<dyn Fn(Vec<MetricPoint>) + Send + Sync>;

#[derive(Default)]
struct Inner {
    runs: Mutex<HashMap<Uuid, Vec<MetricPoint>>>,
    sink: Mutex<Option<UnattributedSink>>,
}

/// A running receiver; stops when dropped.
pub struct MetricsReceiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl MetricsReceiver {
    /// Binds `addr` (use port 0 for any free port) and serves in the background.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/v1/metrics", post(unattributed))
            .route("/runs/{run}/v1/metrics", post(for_run))
            .layer(tower_http::decompression::RequestDecompressionLayer::new())
            .with_state(inner.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service())
                .with_graceful_shutdown(async move { stopped.cancelled().await });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "Metrics receiver stopped.");
            }
        });
        Ok(MetricsReceiver { addr, inner, stop })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens collection for `run` and returns the endpoint the task should push to.
    pub fn register(&self, run: Uuid) -> String {
        self.inner
            .runs
            .lock()
            .expect("poisoned")
            .entry(run)
            .or_default();
        format!("http://{}/runs/{run}/v1/metrics", self.addr)
    }

    /// Closes collection for `run` and returns what it pushed, in arrival order.
    pub fn take(&self, run: Uuid) -> Vec<MetricPoint> {
        self.inner
            .runs
            .lock()
            .expect("poisoned")
            .remove(&run)
            .unwrap_or_default()
    }

    /// Where points posted to the plain `/v1/metrics` go (dropped when unset).
    pub fn set_unattributed_sink(&self, sink: UnattributedSink) {
        *self.inner.sink.lock().expect("poisoned") = Some(sink);
    }
}

impl Drop for MetricsReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn decode(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Encoding, Vec<MetricPoint>), (StatusCode, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let message = format!(
            "unsupported content type {content_type:?}; send application/x-protobuf or application/json"
        );
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
    };
    match decode_metrics(body, encoding) {
        Ok((points, skipped)) => {
            if skipped > 0 {
                tracing::debug!(
                    skipped,
                    "Summary and exponential-histogram points are not kept."
                );
            }
            Ok((encoding, points))
        }
        Err(error) => Err((StatusCode::BAD_REQUEST, error.to_string())),
    }
}

fn ok(encoding: Encoding) -> Response {
    (
        [(header::CONTENT_TYPE, encoding.content_type())],
        success_response(encoding, 0, ""),
    )
        .into_response()
}

async fn for_run(
    State(inner): State<Arc<Inner>>,
    Path(run): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (encoding, points) = match decode(&headers, &body) {
        Ok(decoded) => decoded,
        Err(refusal) => return refusal.into_response(),
    };
    match inner.runs.lock().expect("poisoned").get_mut(&run) {
        Some(list) => list.extend(points),
        // A flush after the run was collected: acknowledged so the exporter does not retry.
        None => {
            tracing::debug!(%run, points = points.len(), "Metrics arrived after their run ended.")
        }
    }
    ok(encoding)
}

async fn unattributed(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (encoding, points) = match decode(&headers, &body) {
        Ok(decoded) => decoded,
        Err(refusal) => return refusal.into_response(),
    };
    let sink = inner.sink.lock().expect("poisoned").clone();
    match sink {
        Some(sink) => sink(points),
        None => tracing::debug!(points = points.len(), "Metrics without a run were dropped."),
    }
    ok(encoding)
}

//! The runner protocol (see `steward_model::wire`): register, long poll, desired state,
//! upload URLs, completion.

use super::{Json, Path};
use crate::AppState;
use crate::artifacts::check_name;
use crate::error::{ApiError, ApiResult};
use crate::store::{Completion, RunnerRecord};
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use steward_model::wire::{
    CompleteRequest, CompleteResponse, DesiredState, MetricsBatch, MetricsBatchResponse,
    PollRequest, PollResponse, RegisterRequest, RegisterResponse, ReleaseRequest, ReleaseResponse,
    SignedUrl, UploadUrlRequest,
};
use uuid::Uuid;

pub(super) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/runner/register", post(register))
        .route("/api/v1/runner/poll", post(poll))
        .route("/api/v1/runner/desired-state", get(desired_state))
        .route(
            "/api/v1/runner/runs/{run}/artifacts/{name}",
            post(upload_url),
        )
        .route("/api/v1/runner/runs/{run}/complete", post(complete))
        .route("/api/v1/runner/release", post(release))
        .route("/api/v1/runner/metrics", post(relay_metrics))
}

/// The runner authenticated by its bearer credential.
struct Runner(RunnerRecord);

impl FromRequestParts<Arc<AppState>> for Runner {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "runner calls need Authorization: Bearer <credential>".into(),
                )
            })?;
        Ok(Runner(
            state.store.runner_by_credential(credential.trim()).await?,
        ))
    }
}

async fn register(
    State(state): State<Arc<AppState>>,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    if request.capacity == 0 {
        return Err(ApiError::BadRequest("capacity must be at least 1".into()));
    }
    let name = if request.name.trim().is_empty() {
        "runner"
    } else {
        request.name.trim()
    };
    let (runner, credential) = state
        .store
        .register_runner(&request.token, name, &request.version, request.capacity)
        .await?;
    tracing::info!(runner = %runner.id, location = %runner.location, name, "Runner registered.");
    Ok(Json(RegisterResponse {
        runner_id: runner.id,
        credential,
        location: runner.location,
        poll_timeout_seconds: state.config.poll_timeout.as_secs(),
        lease_ttl_seconds: state.config.lease_ttl.as_secs(),
    }))
}

/// Renews leases, reports cancellations and revocations, and hands out work; without work it
/// waits (up to the poll timeout) until the location gets some.
async fn poll(
    State(state): State<Arc<AppState>>,
    Runner(runner): Runner,
    Json(request): Json<PollRequest>,
) -> ApiResult<Json<PollResponse>> {
    let _open = state.telemetry.poll_started();
    let ttl = state.config.lease_ttl.as_millis() as i64;
    let polled = state.store.poll_state(runner.id, &request, ttl).await?;
    let version = crate::assignment::version_for(&state, &runner).await?;
    let mut response = PollResponse {
        leases: Vec::new(),
        cancel: polled.cancel,
        revoked: polled.revoked,
        desired_state_version: version,
    };
    let answer_now = request.no_wait
        || !response.cancel.is_empty()
        || !response.revoked.is_empty()
        || request.desired_state_version.as_deref()
            != Some(response.desired_state_version.as_str());
    let deadline =
        tokio::time::Instant::now() + state.config.poll_timeout.min(Duration::from_secs(120));
    let notify = state.wakeups.for_location(&runner.location);
    let woken = notify.notified();
    tokio::pin!(woken);
    // Registered before looking for work, so work queued in between still wakes this poll.
    woken.as_mut().enable();
    response.leases = lease(&state, &runner, request.free_capacity, ttl).await?;
    if response.leases.is_empty() && !answer_now {
        tokio::select! {
            _ = &mut woken => {
                // Something changed for this location (work, a cancellation, a new SLI set):
                // answer so the runner's next poll sees it.
                response.desired_state_version = crate::assignment::version_for(&state, &runner).await?;
                response.leases = lease(&state, &runner, request.free_capacity, ttl).await?;
            }
            _ = tokio::time::sleep_until(deadline) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    for lease in &response.leases {
        tracing::info!(run = %lease.run.run_id, runner = %runner.id, attempt = lease.attempt, "Run leased.");
    }
    Ok(Json(response))
}

async fn desired_state(
    State(state): State<Arc<AppState>>,
    Runner(runner): Runner,
) -> ApiResult<Json<DesiredState>> {
    Ok(Json(
        crate::assignment::desired_state_for(&state, &runner).await?,
    ))
}

/// A signed PUT URL for one artifact of a run this runner holds (or of an SLI run it is about
/// to report).
async fn upload_url(
    State(state): State<Arc<AppState>>,
    Runner(runner): Runner,
    Path((run, name)): Path<(Uuid, String)>,
    Json(request): Json<UploadUrlRequest>,
) -> ApiResult<Json<SignedUrl>> {
    check_name(&name)?;
    // Only a run in progress takes artifacts: a leased run by its lease holder, an SLI run
    // before its completion is recorded. A finished run's artifacts are final.
    match state.store.run_holder(run).await? {
        Some((holder, lease, status)) => {
            let mine = holder.as_deref() == Some(runner.id.to_string().as_str());
            let same_lease =
                request.lease_id.is_some() && request.lease_id.map(|l| l.to_string()) == lease;
            if status != "running" {
                return Err(ApiError::Conflict(format!(
                    "run {run} has ended ({status}); its artifacts are final"
                )));
            }
            if !mine || !same_lease {
                return Err(ApiError::Conflict(format!(
                    "run {run} is not held by this runner under that lease"
                )));
            }
        }
        None if request.lease_id.is_some() => {
            return Err(ApiError::NotFound(format!("no run {run}")));
        }
        None => {}
    }
    let mut url = state
        .artifacts
        .upload_url(run, &name, state.config.url_ttl)
        .await
        .map_err(|e| ApiError::Unavailable503(e.to_string()))?;
    url.max_bytes = Some(state.config.artifact_max_bytes);
    Ok(Json(url))
}

async fn complete(
    State(state): State<Arc<AppState>>,
    Runner(runner): Runner,
    Path(run): Path<Uuid>,
    Json(request): Json<CompleteRequest>,
) -> ApiResult<Json<CompleteResponse>> {
    let request = Arc::new(request);
    let outcome = state
        .store
        .complete(runner.id, &runner.location, run, request.clone())
        .await?;
    let recorded = matches!(outcome, Completion::Recorded(_));
    if let Completion::Recorded(batch) = outcome {
        let kind = request
            .spec
            .as_ref()
            .map(|s| s.kind.as_str())
            .unwrap_or("runbook");
        state
            .telemetry
            .run_completed(kind, request.result.status.as_str());
        tracing::info!(run = %run, status = %request.result.status, issues = request.result.issues.len(), "Run completed.");
        crate::series::committed(&state, &batch);
    }
    Ok(Json(CompleteResponse { recorded }))
}

async fn release(
    State(state): State<Arc<AppState>>,
    Runner(runner): Runner,
    Json(request): Json<ReleaseRequest>,
) -> ApiResult<Json<ReleaseResponse>> {
    let locations = state.store.release(runner.id, &request.leases).await?;
    for location in &locations {
        state.wakeups.wake(location);
    }
    if !locations.is_empty() {
        tracing::info!(runner = %runner.id, runs = locations.len(), "Runs handed back by a stopping runner.");
    }
    Ok(Json(ReleaseResponse {
        requeued: locations.len() as u32,
    }))
}

/// Points a runner's loopback receiver got outside any run, stored once per batch.
async fn relay_metrics(
    State(state): State<Arc<AppState>>,
    Runner(_runner): Runner,
    Json(batch): Json<MetricsBatch>,
) -> ApiResult<Json<MetricsBatchResponse>> {
    let mapped = state
        .metric_index
        .map_points(&state.store, &batch.points)
        .await?;
    let fresh = state
        .store
        .insert_batch(Some(batch.batch_id), &mapped.batch)
        .await?;
    if fresh {
        state.telemetry.mapped(&mapped);
        crate::series::committed(&state, &mapped.batch);
    }
    Ok(Json(MetricsBatchResponse {
        accepted: mapped.batch.samples.len() as u32,
        rejected: mapped.rejected() as u32,
        duplicate: !fresh,
    }))
}

async fn lease(
    state: &AppState,
    runner: &RunnerRecord,
    free: u32,
    ttl: i64,
) -> ApiResult<Vec<steward_model::wire::Lease>> {
    let outcome = state
        .store
        .lease(runner.id, &runner.location, free, ttl)
        .await?;
    for waited in &outcome.waited {
        state.telemetry.leased(*waited);
    }
    Ok(outcome.leases)
}

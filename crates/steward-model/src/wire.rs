//! The runner ↔ platform wire protocol: JSON over HTTP(S), every call made by the runner.
//!
//! | call | path | auth |
//! |---|---|---|
//! | register | `POST /api/v1/runner/register` | registration token in the body |
//! | poll (long poll, heartbeat) | `POST /api/v1/runner/poll` | `Authorization: Bearer <credential>` |
//! | desired SLI set | `GET /api/v1/runner/desired-state` | bearer |
//! | artifact upload URL | `POST /api/v1/runner/runs/{run}/artifacts/{name}` | bearer |
//! | complete a run | `POST /api/v1/runner/runs/{run}/complete` | bearer |
//! | hand leases back (shutdown) | `POST /api/v1/runner/release` | bearer |
//! | relay metric points | `POST /api/v1/runner/metrics` | bearer |
//!
//! A lease expires unless a poll lists it in `running` before `expiresAt`; the platform then
//! requeues its run. Completion is idempotent per (run, lease).

use crate::run::{RunResult, RunSpec};
use crate::workspace::{CodeBundleRef, ConfigVar, SecretRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Path prefix of every runner call.
pub const RUNNER_API_PREFIX: &str = "/api/v1/runner";

/// `POST /api/v1/runner/register`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// A registration token issued by the platform for one location.
    pub token: String,
    /// A human name for this runner (host name by default).
    pub name: String,
    /// The runner's version.
    pub version: String,
    /// How many runs it executes at once.
    pub capacity: u32,
}

/// Answer to [`RegisterRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The runner's id.
    pub runner_id: Uuid,
    /// Bearer credential for every later call; shown once.
    pub credential: String,
    /// The location the token registered the runner for.
    pub location: String,
    /// How long the platform holds a poll open when there is no work.
    pub poll_timeout_seconds: u64,
    /// How long a lease lives without being renewed by a poll.
    pub lease_ttl_seconds: u64,
}

/// `POST /api/v1/runner/poll`: asks for work and renews the leases of running runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// Slots free for leased runs right now; 0 makes the poll a pure heartbeat.
    pub free_capacity: u32,
    /// Total slots.
    pub capacity: u32,
    /// Lease ids of the runs executing now (renewed by this poll).
    #[serde(default)]
    pub running: Vec<Uuid>,
    /// The desired-state version the runner has applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state_version: Option<String>,
    /// Ask the platform to answer at once (used right after start-up).
    #[serde(default)]
    pub no_wait: bool,
    /// This runner does not want SLIs: a replica that is not the elected leader of its group.
    /// The location's SLIs are shared among the online runners that take them (all of them
    /// when none does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_slis: bool,
}

/// Answer to [`PollRequest`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// New work.
    #[serde(default)]
    pub leases: Vec<Lease>,
    /// Runs (by id) the runner should stop; it completes them as `cancelled`.
    #[serde(default)]
    pub cancel: Vec<Uuid>,
    /// Leases (by id) listed in `running` that the platform no longer honours (expired and
    /// requeued, or the run was finished otherwise); the runner stops them without reporting.
    #[serde(default)]
    pub revoked: Vec<Uuid>,
    /// Current version of this runner's desired state; fetch it when it differs.
    pub desired_state_version: String,
}

/// A run handed to one runner until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// Identifies this hand-out; a requeued run gets a new one.
    pub lease_id: Uuid,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// 1 for the first hand-out of the run.
    pub attempt: u32,
    /// What to run.
    pub run: RunSpec,
}

/// `GET /api/v1/runner/desired-state`: the SLIs this runner's location should run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    /// Content version; equal versions mean equal SLI sets.
    pub version: String,
    /// The location.
    pub location: String,
    /// Every SLI to schedule.
    pub slis: Vec<SliAssignment>,
}

/// One SLI the runner schedules locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliAssignment {
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// Seconds between runs.
    pub interval_seconds: u64,
    /// The robot file.
    pub code_bundle: CodeBundleRef,
    /// `configProvided`.
    #[serde(default)]
    pub config: Vec<ConfigVar>,
    /// `secretsProvided` (references only).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Wall-clock limit of one run.
    pub timeout_seconds: u64,
}

impl SliAssignment {
    /// The spec of one run of this SLI.
    pub fn run_spec(&self, run_id: Uuid, location: &str) -> RunSpec {
        RunSpec {
            run_id,
            kind: crate::run::RunKind::Sli,
            workspace: self.workspace.clone(),
            slx: self.slx.clone(),
            location: location.to_string(),
            code_bundle: self.code_bundle.clone(),
            config: self.config.clone(),
            secrets: self.secrets.clone(),
            task_titles: Vec::new(),
            timeout_seconds: self.timeout_seconds,
            session_id: None,
            interval_seconds: Some(self.interval_seconds),
        }
    }
}

/// `POST /api/v1/runner/runs/{run}/artifacts/{name}`: asks for a signed upload URL.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadUrlRequest {
    /// The lease of a leased run; absent for SLI runs the runner scheduled itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<Uuid>,
}

/// A signed URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedUrl {
    /// Absolute URL; PUT the raw bytes to it (or GET them).
    pub url: String,
    /// The HTTP method it allows.
    pub method: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Headers the request must carry (Azure uploads need `x-ms-blob-type: BlockBlob`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// For uploads: the largest body accepted; a bigger file is cut to fit before upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// `POST /api/v1/runner/runs/{run}/complete`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteRequest {
    /// The lease of a leased run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<Uuid>,
    /// For a run the runner scheduled itself (an SLI): its spec, so the platform can record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<RunSpec>,
    /// What happened.
    pub result: RunResult,
}

/// Answer to [`CompleteRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResponse {
    /// False when this completion had already been recorded (a retry); nothing changed.
    pub recorded: bool,
}

/// `POST /api/v1/runner/release`: a runner that stops hands back the runs it had not finished,
/// so they are queued again at once instead of when their leases lapse.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequest {
    /// Leases held by this runner.
    pub leases: Vec<Uuid>,
}

/// Answer to [`ReleaseRequest`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseResponse {
    /// How many runs went back to the queue.
    pub requeued: u32,
}

/// `POST /api/v1/runner/metrics`: points the runner's loopback OTLP receiver got outside any
/// run, relayed in batches. A batch id is stored once, so a retried batch is not counted twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsBatch {
    /// Chosen by the runner, unique per batch.
    pub batch_id: Uuid,
    /// The points.
    pub points: Vec<crate::metrics::MetricPoint>,
}

/// Answer to [`MetricsBatch`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsBatchResponse {
    /// Points stored.
    pub accepted: u32,
    /// Points that belong to no SLX (dropped).
    pub rejected: u32,
    /// The batch had been stored before.
    pub duplicate: bool,
}

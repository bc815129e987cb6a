//! Bodies of the client API under `/api/v1` (everything that is not the runner protocol).

use crate::run::{RunKind, RunResult, RunStatus};
use crate::workspace::LoadProblem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Every error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and, where it helps, what to do.
    pub error: String,
}

/// `GET /api/v1/status`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// Platform version.
    pub version: String,
    /// Workspaces.
    pub workspaces: Vec<WorkspaceView>,
    /// Runners with their liveness.
    pub runners: Vec<RunnerView>,
    /// Runs waiting for a runner.
    pub queued_runs: u64,
    /// Runs executing.
    pub running_runs: u64,
    /// Open issues over all workspaces.
    pub open_issues: u64,
}

/// A workspace in lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    /// Short name.
    pub name: String,
    /// Number of SLXs.
    pub slx_count: u64,
    /// When the tree was last imported.
    pub imported_at: DateTime<Utc>,
}

/// `PUT /api/v1/workspaces/{name}`: a whole workspace tree, file by file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRequest {
    /// Path relative to the tree root → file text.
    pub files: BTreeMap<String, String>,
    /// Remove SLXs that are not in `files` (skipped SLXs are always kept).
    #[serde(default = "yes")]
    pub prune: bool,
    /// SLXs the client skipped (it could not read them): keep their stored version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// What happens to an SLX that is both in `files` and already stored (default
    /// `keepuploaded`).
    #[serde(default, skip_serializing_if = "MergeMode::is_default")]
    pub merge_mode: MergeMode,
}

/// Which version wins when an import brings an SLX (or `workspace.yaml`, or another file
/// outside `slxs/`) the platform already stores. New SLXs are added and pruning works the
/// same in both modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeMode {
    /// The imported files replace the stored ones.
    #[default]
    #[serde(
        rename = "keepuploaded",
        alias = "keep-uploaded",
        alias = "keepUploaded"
    )]
    KeepUploaded,
    /// Stored files stay as they are; only what is not stored yet is added.
    #[serde(
        rename = "keepexisting",
        alias = "keep-existing",
        alias = "keepExisting"
    )]
    KeepExisting,
}

impl MergeMode {
    /// The name on the wire (`keepuploaded`, `keepexisting`).
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::KeepUploaded => "keepuploaded",
            MergeMode::KeepExisting => "keepexisting",
        }
    }

    fn is_default(&self) -> bool {
        *self == MergeMode::default()
    }
}

fn yes() -> bool {
    true
}

impl ImportRequest {
    /// The request for a tree loaded on the client: SLXs the client had to skip are sent by
    /// name only, so the platform keeps their stored version instead of importing a partial one.
    pub fn from_tree(tree: &crate::workspace::WorkspaceTree, prune: bool) -> Self {
        let skipped: Vec<String> = tree.skipped_slxs.clone();
        let files = tree
            .files
            .iter()
            .filter(|(path, _)| {
                !skipped
                    .iter()
                    .any(|slx| path.starts_with(&format!("slxs/{slx}/")))
            })
            .map(|(path, text)| (path.clone(), text.clone()))
            .collect();
        ImportRequest {
            files,
            prune,
            keep: skipped,
            merge_mode: MergeMode::default(),
        }
    }
}

/// Answer to an import.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Workspace short name.
    pub workspace: String,
    /// SLXs that did not exist before.
    pub added: Vec<String>,
    /// SLXs whose files changed.
    pub updated: Vec<String>,
    /// SLXs whose files are the same.
    pub unchanged: Vec<String>,
    /// SLXs whose imported files differ from the stored ones, which were kept
    /// (`mergeMode: keepexisting`).
    #[serde(default)]
    pub kept: Vec<String>,
    /// SLXs removed because the tree no longer has them.
    pub removed: Vec<String>,
    /// Items reported and skipped (their previous version, if any, is kept).
    pub problems: Vec<LoadProblem>,
    /// Imported, but worth a look (an interval raised to the minimum, a location no runner
    /// serves yet).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// An SLX in lists and detail views.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlxView {
    /// Workspace short name.
    pub workspace: String,
    /// Short name (the directory under `slxs/`).
    pub name: String,
    /// `metadata.name`.
    pub full_name: String,
    /// `spec.alias`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// `spec.statement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Has an `sli.yaml`.
    pub has_sli: bool,
    /// Has a `runbook.yaml`.
    pub has_runbook: bool,
    /// SLI interval, when it has an SLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// The latest SLI value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_sli: Option<SliValue>,
    /// Open issues of this SLX.
    pub open_issues: u64,
}

/// One stored SLI value or sub-metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliValue {
    /// Empty for the SLI value itself, the sub-name otherwise.
    #[serde(default)]
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Observation time.
    pub time: DateTime<Utc>,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
}

/// One run request inside [`SessionCreate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRequestInput {
    /// SLX short or full name.
    #[serde(alias = "slxName")]
    pub slx: String,
    /// Raw task titles; `["*"]` (or empty) runs every task.
    #[serde(default)]
    pub task_titles: Vec<String>,
}

/// `POST /api/v1/workspaces/{ws}/sessions`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreate {
    /// What to run.
    pub run_requests: Vec<RunRequestInput>,
    /// Who asked (`direct`, `cli`, `ui`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A run session with its runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Session id.
    pub id: Uuid,
    /// Workspace short name.
    pub workspace: String,
    /// Who asked.
    pub source: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// One run per run request.
    pub runs: Vec<RunView>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Run id (also the run request id).
    pub id: Uuid,
    /// Its session, for runbook runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// SLI or runbook.
    pub kind: RunKind,
    /// Lifecycle status.
    pub status: RunStatus,
    /// Location that runs it.
    pub location: String,
    /// Requested raw task titles (empty: all).
    pub task_titles: Vec<String>,
    /// How many times it was leased.
    pub attempts: u32,
    /// The runner that ran (or runs) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<Uuid>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// When a runner took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The result, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
}

/// Lifecycle of an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    /// Raised by the latest run of its task.
    Open,
    /// The latest passing run of its task no longer raised it.
    Resolved,
}

impl IssueStatus {
    /// `open` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Open => "open",
            IssueStatus::Resolved => "resolved",
        }
    }
}

/// A deduplicated issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueView {
    /// Issue id.
    pub id: Uuid,
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// Resolved name of the task that raises it.
    pub task_name: String,
    /// Title.
    pub title: String,
    /// 1 (critical) to 4 (informational), from the latest occurrence.
    pub severity: u8,
    /// Open or resolved.
    pub status: IssueStatus,
    /// How many runs raised it.
    pub occurrences: u64,
    /// First raised.
    pub first_seen_at: DateTime<Utc>,
    /// Last raised.
    pub last_seen_at: DateTime<Utc>,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The latest run that raised (or resolved) it.
    pub last_run_id: Uuid,
    /// Expected, from the latest occurrence.
    #[serde(default)]
    pub expected: String,
    /// Actual, from the latest occurrence.
    #[serde(default)]
    pub actual: String,
    /// Next steps, from the latest occurrence.
    #[serde(default)]
    pub next_steps: String,
    /// Details, from the latest occurrence.
    #[serde(default)]
    pub details: String,
    /// Reproduce hint, from the latest occurrence.
    #[serde(default)]
    pub reproduce_hint: String,
}

/// Liveness of a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerHealth {
    /// Polled within the lease time.
    Online,
    /// Missed polls for longer than a lease but less than five minutes.
    Stale,
    /// Not heard from for five minutes or more.
    Offline,
}

/// A registered runner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerView {
    /// Runner id.
    pub id: Uuid,
    /// Name it registered with.
    pub name: String,
    /// Its location.
    pub location: String,
    /// Liveness.
    pub health: RunnerHealth,
    /// Last poll.
    pub last_seen_at: DateTime<Utc>,
    /// Slots.
    pub capacity: u32,
    /// Leased runs executing, as the runner last reported.
    pub running: u32,
    /// The runs the platform has leased to it and not seen end.
    #[serde(default)]
    pub running_run_ids: Vec<Uuid>,
}

/// An artifact of a run with a signed download URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLink {
    /// File name (`log.html`, `stdout.txt`, ...).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Signed GET URL.
    pub url: String,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/locations/{location}/registration-tokens`: answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationToken {
    /// The token; shown once.
    pub token: String,
    /// The location runners registering with it join.
    pub location: String,
}

/// An alert event: an SLI threshold (or missing data) that fired.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// Event id.
    pub id: Uuid,
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// `warning`, `ticket`, `page` or `no_data`.
    pub level: String,
    /// When it fired.
    pub started_at: DateTime<Utc>,
    /// When it resolved; absent while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The SLI value when it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The latest SLI value while it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// What happened.
    pub message: String,
}

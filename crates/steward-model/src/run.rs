//! Runs: what a runner is asked to execute and what it reports back.

use crate::issue::Issue;
use crate::metrics::MetricPoint;
use crate::workspace::{CodeBundleRef, ConfigVar, SecretRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which robot file of an SLX a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// The health check, scheduled on an interval by the runner.
    Sli,
    /// Troubleshooting tasks, run on demand through a run session.
    Runbook,
}

impl RunKind {
    /// `sli` or `runbook`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Sli => "sli",
            RunKind::Runbook => "runbook",
        }
    }
}

impl std::str::FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sli" => Ok(RunKind::Sli),
            "runbook" => Ok(RunKind::Runbook),
            other => Err(format!(
                "unknown run kind {other:?} (expected sli or runbook)"
            )),
        }
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a runner of its location.
    Queued,
    /// Leased by a runner and executing.
    Running,
    /// Every selected task passed (issues may still have been raised).
    Succeeded,
    /// At least one task failed.
    Failed,
    /// The task could not be executed (bad codebundle, no Python, runner lost too often, ...).
    Error,
    /// The wall-clock timeout stopped it.
    TimedOut,
    /// Cancelled before or while running.
    Cancelled,
}

impl RunStatus {
    /// Every status, in life order.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Error,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
    ];

    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// True once the run can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown run status {s:?}"))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a runner needs to execute one run; identical for leased and locally scheduled runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    /// The run's id (also `RW_RUNREQUEST_ID` for runbooks).
    pub run_id: Uuid,
    /// SLI or runbook.
    pub kind: RunKind,
    /// Workspace short name (`RW_WORKSPACE`).
    pub workspace: String,
    /// SLX short name (`RW_SLX`).
    pub slx: String,
    /// Location the run executes in (`RW_LOCATION`).
    pub location: String,
    /// The robot file.
    pub code_bundle: CodeBundleRef,
    /// `configProvided`, in order.
    #[serde(default)]
    pub config: Vec<ConfigVar>,
    /// `secretsProvided`: references only, never values.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Raw task titles to run; empty means every task of the file.
    #[serde(default)]
    pub task_titles: Vec<String>,
    /// Wall-clock limit for the whole robot process.
    pub timeout_seconds: u64,
    /// The run session, for runbooks (`RW_SESSION_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// For SLIs: the interval, from which `RW_LOOKBACK_WINDOW` is derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
}

impl RunSpec {
    /// Default wall-clock limit of a runbook run.
    pub const DEFAULT_RUNBOOK_TIMEOUT_SECONDS: u64 = 1800;

    /// The SLI timeout: the interval, bounded so a slow check cannot hold a slot for long.
    pub fn sli_timeout(interval_seconds: u64) -> u64 {
        interval_seconds.clamp(60, 900)
    }

    /// Task selection as robot sees it: `*` alone means every task.
    pub fn selects_all_tasks(&self) -> bool {
        self.task_titles.is_empty() || self.task_titles.iter().any(|t| t.trim() == "*")
    }
}

/// Outcome of one task (robot test) as recorded in `output.xml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    /// The task passed.
    Pass,
    /// The task failed.
    Fail,
    /// The task was skipped.
    Skip,
    /// Robot did not run it (`NOT RUN`).
    #[serde(rename = "NOT RUN")]
    NotRun,
}

/// One task's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutcome {
    /// The resolved task name (variables substituted).
    pub name: String,
    /// The raw title as written in the robot file (what `taskTitles` selects by); empty when
    /// it could not be matched to the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// PASS, FAIL, SKIP or NOT RUN.
    pub status: TaskStatus,
    /// Robot's failure or skip message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Milliseconds the task took.
    #[serde(default)]
    pub elapsed_ms: u64,
}

/// One artifact file of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    /// File name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Bytes cut from the middle to fit the store's limit (0: whole).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// Final status (never `queued` or `running`).
    pub status: RunStatus,
    /// Tasks in file order.
    #[serde(default)]
    pub tasks: Vec<TaskOutcome>,
    /// Issues raised, in the order they were raised.
    #[serde(default)]
    pub issues: Vec<Issue>,
    /// Metrics pushed by the task (the SLI value and its sub-metrics).
    #[serde(default)]
    pub metrics: Vec<MetricPoint>,
    /// The SLI value: the last metric pushed without a sub-name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sli_value: Option<f64>,
    /// Why the run ended in `error`, `timed_out` or `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Non-fatal oddities (a malformed `issues.jsonl` line, an unreadable artifact, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The artifact files produced (`log.html`, `stdout.txt`, ...).
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    /// When the robot process started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

impl RunResult {
    /// A result for a run that never reached robot.
    pub fn error(status: RunStatus, message: impl Into<String>, started_at: DateTime<Utc>) -> Self {
        RunResult {
            status,
            tasks: Vec::new(),
            issues: Vec::new(),
            metrics: Vec::new(),
            sli_value: None,
            error: Some(message.into()),
            warnings: Vec::new(),
            artifacts: Vec::new(),
            started_at,
            finished_at: Utc::now(),
        }
    }

    /// Names of the tasks with the given status.
    pub fn titles(&self, status: TaskStatus) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.status == status)
            .map(|t| t.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert!("done".parse::<RunStatus>().is_err());
    }

    #[test]
    fn task_status_uses_robot_spelling() {
        let parsed: TaskStatus = serde_json::from_str("\"NOT RUN\"").unwrap();
        assert_eq!(parsed, TaskStatus::NotRun);
        assert_eq!(
            serde_json::to_string(&TaskStatus::Pass).unwrap(),
            "\"PASS\""
        );
    }
}

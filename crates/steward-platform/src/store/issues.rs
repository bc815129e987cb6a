//! Issues: deduplicated by fingerprint (workspace, SLX, task, title), counted per run that
//! raises them, and resolved when a passing run of the same task no longer raises them.

use super::db::{Backend, Sql};
use super::{Store, json, now_ms, time, uuid};
use crate::error::ApiResult;
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeSet;
use steward_model::api::{IssueStatus, IssueView};
use steward_model::issue::Issue;
use steward_model::run::{RunResult, TaskStatus};
use uuid::Uuid;

/// Which issues to list.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    /// Only this workspace.
    pub workspace: Option<String>,
    /// Only this SLX.
    pub slx: Option<String>,
    /// Only this status (`None`: both).
    pub status: Option<IssueStatus>,
    /// At most this many.
    pub limit: u32,
}

/// The identity of an issue across runs.
pub fn fingerprint(workspace: &str, slx: &str, task: &str, title: &str) -> String {
    let mut hash = Sha256::new();
    for part in [workspace, slx, task, title] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// Records the issues of one run and resolves those its passing tasks no longer raise.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    workspace: &str,
    slx: &str,
    run: Uuid,
    result: &RunResult,
) -> ApiResult<()> {
    let now = now_ms();
    let mut raised = BTreeSet::new();
    for issue in &result.issues {
        let fp = fingerprint(workspace, slx, &issue.task_name, &issue.title);
        if !raised.insert(fp.clone()) {
            continue; // raised twice by one run: one occurrence
        }
        sqlx::query(
            "INSERT INTO issues (id, fingerprint, workspace, slx, task_name, title, severity, status, occurrences,
               first_seen_at, last_seen_at, last_run_id, issue_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', 1, $8, $8, $9, $10)
             ON CONFLICT (fingerprint) DO UPDATE SET severity = excluded.severity, status = 'open',
               occurrences = issues.occurrences + 1, last_seen_at = excluded.last_seen_at, resolved_at = NULL,
               last_run_id = excluded.last_run_id, issue_json = excluded.issue_json",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&fp)
        .bind(workspace)
        .bind(slx)
        .bind(&issue.task_name)
        .bind(&issue.title)
        .bind(issue.severity as i64)
        .bind(now)
        .bind(run.to_string())
        .bind(serde_json::to_string(issue).expect("issue serializes"))
        .execute(&mut **tx)
        .await?;
    }

    let passed = result.titles(TaskStatus::Pass);
    if passed.is_empty() {
        return Ok(());
    }
    let mut resolve = Sql::new(
        backend,
        "UPDATE issues SET status = 'resolved', resolved_at = ",
    );
    resolve
        .push_bind(now)
        .push(", last_run_id = ")
        .push_bind(run.to_string());
    resolve
        .push(" WHERE status = 'open' AND workspace = ")
        .push_bind(workspace);
    resolve.push(" AND slx = ").push_bind(slx);
    resolve
        .push(" AND task_name IN (")
        .push_list(passed)
        .push(")");
    if !raised.is_empty() {
        resolve
            .push(" AND fingerprint NOT IN (")
            .push_list(raised)
            .push(")");
    }
    resolve.build()?.execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// Issues matching `filter`: most severe first, then most recent.
    pub async fn issues(&self, filter: &IssueFilter) -> ApiResult<Vec<IssueView>> {
        let mut query = Sql::new(
            self.backend,
            "SELECT id, workspace, slx, task_name, title, severity, status, occurrences, first_seen_at, last_seen_at,
               resolved_at, last_run_id, issue_json FROM issues WHERE 1 = 1",
        );
        if let Some(workspace) = &filter.workspace {
            query.push(" AND workspace = ").push_bind(workspace.clone());
        }
        if let Some(slx) = &filter.slx {
            query.push(" AND slx = ").push_bind(slx.clone());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        query
            .push(" ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, severity, last_seen_at DESC LIMIT ")
            .push_bind(filter.limit.clamp(1, 1000) as i64);
        let rows = query.build()?.fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let issue: Option<Issue> = json(&r.get::<String, _>(12));
                let field = |f: fn(&Issue) -> &String| {
                    issue.as_ref().map(|i| f(i).clone()).unwrap_or_default()
                };
                IssueView {
                    id: uuid(&r.get::<String, _>(0)),
                    workspace: r.get(1),
                    slx: r.get(2),
                    task_name: r.get(3),
                    title: r.get(4),
                    severity: r.get::<i64, _>(5) as u8,
                    status: if r.get::<String, _>(6) == "open" {
                        IssueStatus::Open
                    } else {
                        IssueStatus::Resolved
                    },
                    occurrences: r.get::<i64, _>(7) as u64,
                    first_seen_at: time(r.get(8)),
                    last_seen_at: time(r.get(9)),
                    resolved_at: r.get::<Option<i64>, _>(10).map(time),
                    last_run_id: uuid(&r.get::<String, _>(11)),
                    expected: field(|i| &i.expected),
                    actual: field(|i| &i.actual),
                    next_steps: field(|i| &i.next_steps),
                    details: field(|i| &i.details),
                    reproduce_hint: field(|i| &i.reproduce_hint),
                }
            })
            .collect())
    }

    /// Open issues over all workspaces.
    pub async fn open_issue_count(&self) -> ApiResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM issues WHERE status = 'open'")
            .fetch_one(&self.read)
            .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_its_parts() {
        assert_ne!(
            fingerprint("a", "bc", "t", "x"),
            fingerprint("ab", "c", "t", "x")
        );
        assert_eq!(
            fingerprint("a", "b", "t", "x"),
            fingerprint("a", "b", "t", "x")
        );
    }
}

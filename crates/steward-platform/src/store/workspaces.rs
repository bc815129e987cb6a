//! Workspaces and SLXs: import with a diff, listing, export, and the desired SLI state per
//! location that follows from them.

use super::{Store, json, now_ms, time};
use crate::error::{ApiError, ApiResult};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use steward_model::api::{ImportReport, MergeMode, SliValue, SlxView, WorkspaceView};
use steward_model::run::{RunResult, RunSpec, RunStatus};
use steward_model::wire::{DesiredState, SliAssignment};
use steward_model::workspace::{RunbookSpec, SliSpec, WorkspaceTree};

/// An SLX as stored, with its parsed specs.
#[derive(Debug, Clone)]
pub struct SlxRecord {
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub name: String,
    /// `metadata.name`.
    pub full_name: String,
    /// The SLI spec, if it has one.
    pub sli: Option<SliSpec>,
    /// The runbook spec, if it has one.
    pub runbook: Option<RunbookSpec>,
    /// The directory's files.
    pub files: BTreeMap<String, String>,
}

impl Store {
    /// Imports a workspace tree: adds, updates and (with `prune`) removes SLXs, then
    /// recomputes the desired SLI state of every location. SLXs that were skipped because of
    /// a problem keep their previous version. With [`MergeMode::KeepExisting`] a stored SLX
    /// and stored files outside `slxs/` (`workspace.yaml`) win over the imported ones.
    pub async fn import_workspace(
        &self,
        tree: &WorkspaceTree,
        prune: bool,
        keep: &[String],
        merge: MergeMode,
        default_location: &str,
    ) -> ApiResult<ImportReport> {
        let name = tree.name().to_string();
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        self.backend.serialize_imports(&mut tx).await?;
        let mut other_files: BTreeMap<String, String> = tree
            .files
            .iter()
            .filter(|(path, _)| !path.starts_with("slxs/"))
            .map(|(path, text)| (path.clone(), text.clone()))
            .collect();
        let mut warnings = Vec::new();
        if merge == MergeMode::KeepExisting {
            let stored = sqlx::query("SELECT files_json FROM workspaces WHERE name = $1")
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|row| json::<BTreeMap<String, String>>(&row.get::<String, _>(0)));
            for (path, text) in stored.unwrap_or_default() {
                if other_files.get(&path).is_some_and(|new| *new != text) {
                    warnings.push(format!(
                        "{path}: the stored version was kept (mergeMode keepexisting)"
                    ));
                }
                other_files.insert(path, text);
            }
        }
        sqlx::query(
            "INSERT INTO workspaces (name, files_json, imported_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET files_json = excluded.files_json, imported_at = excluded.imported_at",
        )
        .bind(&name)
        .bind(serde_json::to_string(&other_files).expect("map serializes"))
        .bind(now)
        .execute(&mut *tx)
        .await?;

        let existing: BTreeMap<String, String> =
            sqlx::query("SELECT name, files_hash FROM slxs WHERE workspace = $1")
                .bind(&name)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();

        let mut report = ImportReport {
            workspace: name.clone(),
            problems: tree.problems.clone(),
            warnings,
            ..Default::default()
        };
        for (slx_name, docs) in &tree.slxs {
            let files_json = serde_json::to_string(&docs.files).expect("map serializes");
            let hash = hex::encode(Sha256::digest(files_json.as_bytes()));
            match existing.get(slx_name) {
                Some(old) if *old == hash => {
                    report.unchanged.push(slx_name.clone());
                    continue;
                }
                Some(_) if merge == MergeMode::KeepExisting => {
                    report.kept.push(slx_name.clone());
                    continue;
                }
                Some(_) => report.updated.push(slx_name.clone()),
                None => report.added.push(slx_name.clone()),
            }
            let sli = docs
                .sli
                .as_ref()
                .map(|d| serde_json::to_string(&d.spec).expect("spec serializes"));
            let runbook = docs
                .runbook
                .as_ref()
                .map(|d| serde_json::to_string(&d.spec).expect("spec serializes"));
            sqlx::query(
                "INSERT INTO slxs (workspace, name, full_name, alias, statement, files_json, files_hash, sli_json, runbook_json, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (workspace, name) DO UPDATE SET full_name = excluded.full_name, alias = excluded.alias,
                   statement = excluded.statement, files_json = excluded.files_json, files_hash = excluded.files_hash,
                   sli_json = excluded.sli_json, runbook_json = excluded.runbook_json, updated_at = excluded.updated_at",
            )
            .bind(&name)
            .bind(slx_name)
            .bind(docs.full_name())
            .bind(&docs.slx.spec.alias)
            .bind(&docs.slx.spec.statement)
            .bind(&files_json)
            .bind(&hash)
            .bind(sli)
            .bind(runbook)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if prune {
            let keep: BTreeSet<&String> = tree
                .slxs
                .keys()
                .chain(tree.skipped_slxs.iter())
                .chain(keep)
                .collect();
            for old in existing.keys().filter(|k| !keep.contains(k)) {
                sqlx::query("DELETE FROM slxs WHERE workspace = $1 AND name = $2")
                    .bind(&name)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
                report.removed.push(old.clone());
            }
        }
        recompute_desired_state(&mut tx, default_location).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Removes a workspace with its SLXs (runs and issues stay as history).
    pub async fn delete_workspace(&self, name: &str, default_location: &str) -> ApiResult<()> {
        let mut tx = self.write.begin().await?;
        self.backend.serialize_imports(&mut tx).await?;
        let deleted = sqlx::query("DELETE FROM workspaces WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(ApiError::NotFound(format!("no workspace named {name}")));
        }
        // Its queued runs go with it; running ones are stopped by their runners.
        let result = RunResult::error(
            RunStatus::Cancelled,
            format!("workspace {name} was deleted"),
            time(now_ms()),
        );
        sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_at = $2, result_json = $3 WHERE workspace = $1 AND status = 'queued'",
        )
        .bind(name)
        .bind(now_ms())
        .bind(serde_json::to_string(&result).expect("result serializes"))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE workspace = $1 AND status = 'running'",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        recompute_desired_state(&mut tx, default_location).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every workspace with its SLX count.
    pub async fn workspaces(&self) -> ApiResult<Vec<WorkspaceView>> {
        let rows = sqlx::query(
            "SELECT w.name, w.imported_at, (SELECT COUNT(*) FROM slxs s WHERE s.workspace = w.name)
             FROM workspaces w ORDER BY w.name",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| WorkspaceView {
                name: r.get(0),
                imported_at: time(r.get(1)),
                slx_count: r.get::<i64, _>(2) as u64,
            })
            .collect())
    }

    /// Fails with 404 unless the workspace exists.
    pub async fn require_workspace(&self, name: &str) -> ApiResult<()> {
        let found = sqlx::query("SELECT 1 FROM workspaces WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        found.map(|_| ()).ok_or_else(|| {
            ApiError::NotFound(format!("no workspace named {name}; import it first"))
        })
    }

    /// SLXs of a workspace with their latest SLI value and open issue count.
    pub async fn slx_views(&self, workspace: &str) -> ApiResult<Vec<SlxView>> {
        let rows = sqlx::query(
            "SELECT s.name, s.full_name, s.alias, s.statement, s.sli_json, CASE WHEN s.runbook_json IS NULL THEN 0 ELSE 1 END,
               (SELECT r.last FROM series x JOIN rollups r ON r.series = x.id
                  WHERE x.workspace = s.workspace AND x.slx = s.name AND x.metric = '' ORDER BY r.bucket DESC LIMIT 1),
               (SELECT r.last_time FROM series x JOIN rollups r ON r.series = x.id
                  WHERE x.workspace = s.workspace AND x.slx = s.name AND x.metric = '' ORDER BY r.bucket DESC LIMIT 1),
               (SELECT COUNT(*) FROM issues i WHERE i.workspace = s.workspace AND i.slx = s.name AND i.status = 'open')
             FROM slxs s WHERE s.workspace = $1 ORDER BY s.name",
        )
        .bind(workspace)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let sli: Option<SliSpec> = r.get::<Option<String>, _>(4).and_then(|j| json(&j));
                let value: Option<f64> = r.get(6);
                let at: Option<i64> = r.get(7);
                SlxView {
                    workspace: workspace.to_string(),
                    name: r.get(0),
                    full_name: r.get(1),
                    alias: r.get(2),
                    statement: r.get(3),
                    has_sli: sli.is_some(),
                    has_runbook: r.get::<i64, _>(5) != 0,
                    interval_seconds: sli.as_ref().map(SliSpec::interval),
                    latest_sli: value.zip(at).map(|(value, at)| SliValue {
                        metric: String::new(),
                        value,
                        time: time(at),
                        run_id: None,
                    }),
                    open_issues: r.get::<i64, _>(8) as u64,
                }
            })
            .collect())
    }

    /// One SLX, found by short name or by `metadata.name`.
    pub async fn slx(&self, workspace: &str, name: &str) -> ApiResult<SlxRecord> {
        let row = sqlx::query(
            "SELECT name, full_name, sli_json, runbook_json, files_json FROM slxs
             WHERE workspace = $1 AND (name = $2 OR full_name = $2) ORDER BY CASE WHEN name = $2 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(workspace)
        .bind(name)
        .fetch_optional(&self.read)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no SLX named {name} in workspace {workspace}")))?;
        Ok(SlxRecord {
            workspace: workspace.to_string(),
            name: row.get(0),
            full_name: row.get(1),
            sli: row.get::<Option<String>, _>(2).and_then(|j| json(&j)),
            runbook: row.get::<Option<String>, _>(3).and_then(|j| json(&j)),
            files: json(&row.get::<String, _>(4)).unwrap_or_default(),
        })
    }

    /// Every file of a workspace tree, as imported.
    pub async fn export_workspace(&self, workspace: &str) -> ApiResult<BTreeMap<String, String>> {
        let row = sqlx::query("SELECT files_json FROM workspaces WHERE name = $1")
            .bind(workspace)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no workspace named {workspace}")))?;
        let mut files: BTreeMap<String, String> =
            json(&row.get::<String, _>(0)).unwrap_or_default();
        for r in sqlx::query("SELECT name, files_json FROM slxs WHERE workspace = $1")
            .bind(workspace)
            .fetch_all(&self.read)
            .await?
        {
            let slx: String = r.get(0);
            let dir: BTreeMap<String, String> = json(&r.get::<String, _>(1)).unwrap_or_default();
            files.extend(
                dir.into_iter()
                    .map(|(file, text)| (format!("slxs/{slx}/{file}"), text)),
            );
        }
        Ok(files)
    }

    /// The desired SLI state of a location (empty when nothing runs there).
    pub async fn desired_state(&self, location: &str) -> ApiResult<DesiredState> {
        let row = sqlx::query("SELECT doc_json FROM desired_state WHERE location = $1")
            .bind(location)
            .fetch_optional(&self.read)
            .await?;
        Ok(row
            .and_then(|r| json(&r.get::<String, _>(0)))
            .unwrap_or_else(|| empty_state(location)))
    }

    /// Only the version of [`Store::desired_state`].
    pub async fn desired_state_version(&self, location: &str) -> ApiResult<String> {
        let row = sqlx::query("SELECT version FROM desired_state WHERE location = $1")
            .bind(location)
            .fetch_optional(&self.read)
            .await?;
        Ok(row
            .map(|r| r.get(0))
            .unwrap_or_else(|| empty_state(location).version))
    }
}

fn empty_state(location: &str) -> DesiredState {
    DesiredState {
        version: version_of(&[]),
        location: location.to_string(),
        slis: Vec::new(),
    }
}

fn version_of(slis: &[SliAssignment]) -> String {
    let text = serde_json::to_string(slis).expect("assignments serialize");
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// Rebuilds every location's SLI set from the SLXs, inside the import transaction, so a poll
/// never sees SLXs and desired state disagree.
async fn recompute_desired_state(
    tx: &mut Transaction<'_, Any>,
    default_location: &str,
) -> ApiResult<()> {
    let rows = sqlx::query("SELECT workspace, name, sli_json FROM slxs WHERE sli_json IS NOT NULL ORDER BY workspace, name")
        .fetch_all(&mut **tx)
        .await?;
    let mut by_location: BTreeMap<String, Vec<SliAssignment>> = BTreeMap::new();
    for row in rows {
        let Some(sli) = json::<SliSpec>(&row.get::<String, _>(2)) else {
            continue;
        };
        let interval = sli.interval();
        let assignment = SliAssignment {
            workspace: row.get(0),
            slx: row.get(1),
            interval_seconds: interval,
            code_bundle: sli.code_bundle.clone(),
            config: sli.config_provided.clone(),
            secrets: sli.secrets_provided.clone(),
            timeout_seconds: RunSpec::sli_timeout(interval),
        };
        let mut locations: Vec<String> = sli
            .locations
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect();
        if locations.is_empty() {
            locations.push(default_location.to_string());
        }
        locations.sort();
        locations.dedup();
        for location in locations {
            by_location
                .entry(location)
                .or_default()
                .push(assignment.clone());
        }
    }
    let known: Vec<String> = sqlx::query("SELECT location FROM desired_state")
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    for location in known {
        by_location.entry(location).or_default();
    }
    for (location, slis) in by_location {
        let state = DesiredState {
            version: version_of(&slis),
            location: location.clone(),
            slis,
        };
        sqlx::query(
            "INSERT INTO desired_state (location, version, doc_json) VALUES ($1, $2, $3)
             ON CONFLICT (location) DO UPDATE SET version = excluded.version, doc_json = excluded.doc_json",
        )
        .bind(&location)
        .bind(&state.version)
        .bind(serde_json::to_string(&state).expect("state serializes"))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

//! Run completion: a run's result with its issues, artifacts and SLI values, recorded once per
//! run. Completions that arrive together share a transaction ([`super::group`]).

use super::db::{Backend, Sql};
use super::group::Writer;
use super::points::{self, SeriesCache};
use super::sli::{self, Batch};
use super::{Store, issues};
use crate::error::{ApiError, ApiResult};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use steward_model::run::{RunKind, RunStatus};
use steward_model::wire::CompleteRequest;
use uuid::Uuid;

/// Outcome of a completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Recorded now, with the SLI points it added.
    Recorded(Batch),
    /// This completion had been recorded before; nothing changed.
    Duplicate,
}

/// One runner's report that a run ended.
pub(crate) struct Finish {
    runner: Uuid,
    run_id: Uuid,
    request: Arc<CompleteRequest>,
}

/// Records completions.
pub(crate) struct CompletionWriter {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) series: Arc<Mutex<SeriesCache>>,
}

/// A group takes at most this many completions.
pub(crate) const MAX_COMPLETIONS_PER_COMMIT: usize = 256;

impl Store {
    /// Records a run's result, its issues and its SLI values, once. Leased runs need the
    /// current lease of this runner; SLI runs (scheduled by the runner) carry their spec.
    pub async fn complete(
        &self,
        runner: Uuid,
        runner_location: &str,
        run_id: Uuid,
        request: Arc<CompleteRequest>,
    ) -> ApiResult<Completion> {
        let status = request.result.status;
        if !status.is_final() {
            return Err(ApiError::BadRequest(format!(
                "a completion needs a final status, not {status}"
            )));
        }
        match (request.lease_id, &request.spec) {
            (Some(_), _) => {}
            (None, Some(spec)) => {
                if spec.run_id != run_id || spec.kind != RunKind::Sli {
                    return Err(ApiError::BadRequest(
                        "a completion without a lease must carry the SLI run's own spec (same run id, kind sli)".into(),
                    ));
                }
                if spec.location != runner_location {
                    return Err(ApiError::Unprocessable(format!(
                        "this runner belongs to location {runner_location}, not {}",
                        spec.location
                    )));
                }
            }
            (None, None) => {
                return Err(ApiError::BadRequest(
                    "a completion needs leaseId (leased runs) or spec (SLI runs)".into(),
                ));
            }
        }
        self.completions
            .write(Finish {
                runner,
                run_id,
                request,
            })
            .await
    }
}

impl Writer for CompletionWriter {
    type Job = Finish;
    type Answer = Completion;

    fn weight(_: &Finish) -> usize {
        1
    }

    /// Records a group with a handful of statements whatever its size: one update for the
    /// leased runs, one insert for the SLI runs, one look for open issues, one insert for the
    /// artifacts, one for the SLI points. Only runs that raise issues, or may resolve some,
    /// and completions that were refused or repeated cost statements of their own.
    async fn commit(&self, jobs: &[Finish]) -> ApiResult<Vec<ApiResult<Completion>>> {
        let mut tx = self.pool.begin().await?;
        let mut answers: Vec<Option<ApiResult<Recorded>>> = jobs.iter().map(|_| None).collect();
        // A run reported twice in one group: the first report goes in the batch, the others
        // are looked at once it is written.
        let mut seen = HashSet::new();
        let (mut leased, mut sli, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for (i, job) in jobs.iter().enumerate() {
            if !seen.insert(job.run_id) {
                later.push(i);
            } else if job.request.lease_id.is_some() {
                leased.push(i);
            } else {
                sli.push(i);
            }
        }
        for chunk in leased.chunks(ROWS_PER_STATEMENT) {
            let written = record_leased(&mut tx, self.backend, jobs, chunk).await?;
            for &i in chunk {
                answers[i] = Some(match written.get(&jobs[i].run_id) {
                    Some(recorded) => Ok(recorded.clone()),
                    None => Err(ApiError::NotFound(String::new())), // looked at below
                });
            }
        }
        for chunk in sli.chunks(ROWS_PER_STATEMENT) {
            let inserted = record_sli(&mut tx, self.backend, jobs, chunk).await?;
            for &i in chunk {
                answers[i] = Some(Ok(Recorded::sli(&jobs[i], &inserted)));
            }
        }
        for &i in &leased {
            if !matches!(answers[i], Some(Ok(_))) {
                let job = &jobs[i];
                let lease = job.request.lease_id.expect("leased");
                answers[i] = Some(why_not_recorded(&mut tx, job.run_id, job.runner, lease).await);
            }
        }
        // Further reports of a run already in this group, one by one: each may be the one
        // that holds the lease (the first may have been refused) or a repeat.
        for i in later {
            let job = &jobs[i];
            answers[i] = Some(match job.request.lease_id {
                Some(lease) => {
                    let written = record_leased(&mut tx, self.backend, jobs, &[i]).await?;
                    match written.get(&job.run_id) {
                        Some(recorded) => Ok(recorded.clone()),
                        None => why_not_recorded(&mut tx, job.run_id, job.runner, lease).await,
                    }
                }
                None => {
                    let inserted = record_sli(&mut tx, self.backend, jobs, &[i]).await?;
                    Ok(Recorded::sli(job, &inserted))
                }
            });
        }
        let answers: Vec<ApiResult<Recorded>> = answers
            .into_iter()
            .map(|a| a.expect("every job answered"))
            .collect();
        let new: Vec<(&Finish, &str, &str, RunKind)> = jobs
            .iter()
            .zip(&answers)
            .filter_map(|(job, answer)| match answer {
                Ok(Recorded::New {
                    workspace,
                    slx,
                    kind,
                }) => Some((job, workspace.as_str(), slx.as_str(), *kind)),
                _ => None,
            })
            .collect();
        apply_issues(&mut tx, self.backend, &new).await?;
        record_artifacts(&mut tx, self.backend, &new).await?;
        let batches: Vec<Batch> = new
            .iter()
            .map(|(job, workspace, slx, kind)| {
                if *kind == RunKind::Sli {
                    sli::run_batch(workspace, slx, job.run_id, &job.request.result)
                } else {
                    Batch::default()
                }
            })
            .collect();
        let refs: Vec<&Batch> = batches.iter().collect();
        points::insert(&mut tx, self.backend, &self.series, &refs).await?;
        tx.commit().await?;
        let mut batches = batches.into_iter();
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.map(|recorded| match recorded {
                    Recorded::New { .. } => {
                        Completion::Recorded(batches.next().unwrap_or_default())
                    }
                    Recorded::Before => Completion::Duplicate,
                })
            })
            .collect())
    }
}

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 100;

/// What became of one completion in the group.
#[derive(Clone)]
enum Recorded {
    /// Written now, for this SLX.
    New {
        workspace: String,
        slx: String,
        kind: RunKind,
    },
    /// Written by an earlier completion.
    Before,
}

impl Recorded {
    /// What became of an SLI run's report, given the runs the insert wrote.
    fn sli(job: &Finish, inserted: &HashSet<Uuid>) -> Self {
        let spec = job.request.spec.as_ref().expect("checked before queueing");
        if inserted.contains(&job.run_id) {
            Recorded::New {
                workspace: spec.workspace.clone(),
                slx: spec.slx.clone(),
                kind: RunKind::Sli,
            }
        } else {
            Recorded::Before
        }
    }
}

/// Records the results of leased runs whose lease is still this runner's, in one statement;
/// returns what was written, by run.
async fn record_leased(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    jobs: &[Finish],
    chunk: &[usize],
) -> ApiResult<HashMap<Uuid, Recorded>> {
    let mut update = Sql::new(backend, "UPDATE runs SET lease_expires_at = NULL");
    let column = |update: &mut Sql, name: &str, value: &dyn Fn(&Finish, &mut Sql)| {
        update.push(", ").push(name).push(" = CASE id");
        for &i in chunk {
            update
                .push(" WHEN ")
                .push_bind(jobs[i].run_id.to_string())
                .push(" THEN ");
            value(&jobs[i], update);
        }
        update.push(" END");
    };
    column(&mut update, "status", &|job, sql| {
        sql.push_bind(job.request.result.status.as_str());
    });
    column(&mut update, "result_json", &|job, sql| {
        sql.push_bind(serde_json::to_string(&job.request.result).expect("result serializes"));
    });
    column(&mut update, "finished_at", &|job, sql| {
        sql.push_bind(job.request.result.finished_at.timestamp_millis());
    });
    column(&mut update, "sli_value", &|job, sql| {
        sql.push_bind(job.request.result.sli_value);
    });
    // `id IN` first, so the rows are found by key rather than among every running run.
    update
        .push(" WHERE id IN (")
        .push_list(chunk.iter().map(|&i| jobs[i].run_id.to_string()));
    update.push(") AND status = 'running' AND (id, lease_id, runner_id) IN (");
    for (n, &i) in chunk.iter().enumerate() {
        let job = &jobs[i];
        update.push(if n == 0 { "(" } else { ", (" });
        update
            .push_bind(job.run_id.to_string())
            .push(", ")
            .push_bind(job.request.lease_id.map(|l| l.to_string()))
            .push(", ")
            .push_bind(job.runner.to_string())
            .push(")");
    }
    update.push(") RETURNING id, workspace, slx, kind");
    let rows = update.build()?.fetch_all(&mut **tx).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let kind = row.get::<String, _>(3).parse().unwrap_or(RunKind::Runbook);
            let recorded = Recorded::New {
                workspace: row.get(1),
                slx: row.get(2),
                kind,
            };
            (super::uuid(&row.get::<String, _>(0)), recorded)
        })
        .collect())
}

/// Records SLI runs (which the runner scheduled itself) in one statement; returns the runs
/// that were new.
async fn record_sli(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    jobs: &[Finish],
    chunk: &[usize],
) -> ApiResult<HashSet<Uuid>> {
    let mut insert = Sql::new(
        backend,
        "INSERT INTO runs (id, workspace, slx, kind, location, spec_json, status, attempts, max_attempts, runner_id,
           created_at, started_at, finished_at, result_json, sli_value) ",
    );
    insert.push_values(chunk, |row, &i| {
        let job = &jobs[i];
        let spec = job.request.spec.as_ref().expect("checked before queueing");
        let result = &job.request.result;
        row.bind(job.run_id.to_string())
            .bind(spec.workspace.clone())
            .bind(spec.slx.clone())
            .bind("sli")
            .bind(spec.location.clone())
            .bind(serde_json::to_string(spec).expect("spec serializes"))
            .bind(result.status.as_str())
            .bind(1i64)
            .bind(1i64)
            .bind(job.runner.to_string())
            .bind(result.started_at.timestamp_millis())
            .bind(result.started_at.timestamp_millis())
            .bind(result.finished_at.timestamp_millis())
            .bind(serde_json::to_string(result).expect("result serializes"))
            .bind(result.sli_value);
    });
    insert.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let rows = insert.build()?.fetch_all(&mut **tx).await?;
    Ok(rows
        .into_iter()
        .map(|row| super::uuid(&row.get::<String, _>(0)))
        .collect())
}

/// Issues of the new results: raised ones are recorded; passing tasks resolve open ones,
/// which only SLXs that have some need to look at.
async fn apply_issues(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    new: &[(&Finish, &str, &str, RunKind)],
) -> ApiResult<()> {
    let quiet: BTreeSet<(&str, &str)> = new
        .iter()
        .filter(|(job, ..)| job.request.result.issues.is_empty())
        .map(|(_, workspace, slx, _)| (*workspace, *slx))
        .collect();
    let mut with_open = HashSet::new();
    for chunk in quiet
        .into_iter()
        .collect::<Vec<_>>()
        .chunks(ROWS_PER_STATEMENT)
    {
        let mut query = Sql::new(
            backend,
            "SELECT DISTINCT workspace, slx FROM issues WHERE status = 'open' AND (workspace, slx) IN (",
        );
        for (n, (workspace, slx)) in chunk.iter().enumerate() {
            query.push(if n == 0 { "(" } else { ", (" });
            query
                .push_bind(workspace.to_string())
                .push(", ")
                .push_bind(slx.to_string())
                .push(")");
        }
        query.push(")");
        for row in query.build()?.fetch_all(&mut **tx).await? {
            with_open.insert((row.get::<String, _>(0), row.get::<String, _>(1)));
        }
    }
    for (job, workspace, slx, _) in new {
        let result = &job.request.result;
        let resolves = with_open.contains(&(workspace.to_string(), slx.to_string()));
        if !result.issues.is_empty() || resolves {
            issues::apply(tx, backend, workspace, slx, job.run_id, result).await?;
        }
    }
    Ok(())
}

/// The artifacts the new results list (uploads to an object store never pass through the
/// platform, so the completion is where it learns of them), in one statement.
async fn record_artifacts(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    new: &[(&Finish, &str, &str, RunKind)],
) -> ApiResult<()> {
    // One row per (run, name): a statement may not update the same row twice.
    let mut artifacts = HashMap::new();
    for (job, ..) in new {
        for artifact in &job.request.result.artifacts {
            artifacts.insert((job.run_id, artifact.name.clone()), artifact.size);
        }
    }
    let now = super::now_ms();
    let rows: Vec<_> = artifacts.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Sql::new(
            backend,
            "INSERT INTO artifacts (run_id, name, size, uploaded_at) ",
        );
        insert.push_values(chunk, |row, ((run, name), size)| {
            row.bind(run.to_string())
                .bind(name.clone())
                .bind(*size as i64)
                .bind(now);
        });
        insert.push(" ON CONFLICT (run_id, name) DO UPDATE SET size = excluded.size");
        insert.build()?.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Why a leased completion matched no running run: none, a lease that is not (or no longer)
/// this runner's, or a result recorded before.
async fn why_not_recorded(
    tx: &mut Transaction<'_, Any>,
    run_id: Uuid,
    runner: Uuid,
    lease: Uuid,
) -> ApiResult<Recorded> {
    let row = sqlx::query("SELECT status, lease_id, runner_id FROM runs WHERE id = $1")
        .bind(run_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no run {run_id}")))?;
    let status: RunStatus = row.get::<String, _>(0).parse().unwrap_or(RunStatus::Error);
    let held = row.get::<Option<String>, _>(1).as_deref() == Some(lease.to_string().as_str())
        && row.get::<Option<String>, _>(2).as_deref() == Some(runner.to_string().as_str());
    if held && status.is_final() {
        return Ok(Recorded::Before);
    }
    Err(ApiError::Conflict(format!(
        "lease {lease} no longer holds run {run_id}: it expired and the run was handed out again or ended; this result was not recorded"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::run::{RunResult, RunSpec};
    use steward_model::workspace::CodeBundleRef;

    fn spec(run_id: Uuid) -> RunSpec {
        RunSpec {
            run_id,
            kind: RunKind::Runbook,
            workspace: "ws".into(),
            slx: "web".into(),
            location: "here".into(),
            code_bundle: CodeBundleRef::default(),
            config: vec![],
            secrets: vec![],
            task_titles: vec![],
            timeout_seconds: 60,
            session_id: None,
            interval_seconds: None,
        }
    }

    fn finish(runner: Uuid, run_id: Uuid, lease: Uuid) -> Finish {
        let now = chrono::Utc::now();
        Finish {
            runner,
            run_id,
            request: Arc::new(CompleteRequest {
                lease_id: Some(lease),
                spec: None,
                result: RunResult::error(RunStatus::Succeeded, "done", now),
            }),
        }
    }

    /// Reports of one run inside one group, in every order: a stale lease first must not
    /// keep the good report behind it from being recorded, and a repeat stays a repeat.
    #[tokio::test]
    async fn each_report_in_a_group_gets_its_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        store
            .create_session("ws", "test", Uuid::now_v7(), &[spec(a), spec(b)], 3)
            .await
            .unwrap();
        let runner = Uuid::now_v7();
        let leases = store.lease(runner, "here", 2, 60_000).await.unwrap().leases;
        let lease_of = |run: Uuid| {
            leases
                .iter()
                .find(|l| l.run.run_id == run)
                .unwrap()
                .lease_id
        };
        let writer = CompletionWriter {
            pool: store.write.clone(),
            backend: store.backend,
            series: Arc::default(),
        };
        let jobs = [
            finish(runner, a, Uuid::now_v7()),
            finish(runner, a, lease_of(a)),
            finish(runner, b, lease_of(b)),
            finish(runner, b, lease_of(b)),
        ];
        let answers = writer.commit(&jobs).await.unwrap();
        assert!(
            matches!(answers[0], Err(ApiError::Conflict(_))),
            "{:?}",
            answers[0]
        );
        assert!(
            matches!(answers[1], Ok(Completion::Recorded(_))),
            "{:?}",
            answers[1]
        );
        assert!(
            matches!(answers[2], Ok(Completion::Recorded(_))),
            "{:?}",
            answers[2]
        );
        assert!(
            matches!(answers[3], Ok(Completion::Duplicate)),
            "{:?}",
            answers[3]
        );
        assert_eq!(store.run(a).await.unwrap().status, RunStatus::Succeeded);
        assert_eq!(store.run(b).await.unwrap().status, RunStatus::Succeeded);
    }
}

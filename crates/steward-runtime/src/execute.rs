//! One run from spec to result: resolve the bundle, prepare the environment and private
//! directories, run robot, collect outcomes, issues, report and metrics, scrub secrets, clean up.

use crate::collection::{CollectionResolver, ResolvedBundle};
use crate::contract::{ContractInputs, RunDirs, build_env};
use crate::jsonl::{parse_issues, parse_report};
use crate::output_xml::OutputXml;
use crate::process::{self, Exit, Spawn};
use crate::python::{Progress, PythonEnv, PythonEnvs};
use crate::receiver::MetricsReceiver;
use crate::robot::{RobotFile, test_pattern};
use crate::secrets::{SecretValue, materialize, redact_file};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use steward_model::issue::ReportEntry;
use steward_model::metrics::sli_value;
use steward_model::names::sli_metric_name;
use steward_model::run::{
    ArtifactRef, RunKind, RunResult, RunSpec, RunStatus, TaskOutcome, TaskStatus,
};
use tokio_util::sync::CancellationToken;

/// Files a run leaves in its output directory for upload, in upload order.
pub const ARTIFACTS: &[&str] = &["log.html", "stdout.txt", "report.jsonl", "issues.jsonl"];

/// Where the runtime keeps things.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Python environments, git checkouts, the unpacked built-in collection, bytecode caches.
    pub cache_dir: PathBuf,
    /// Per-run private directories (deleted after each run).
    pub work_dir: PathBuf,
    /// Interpreter for the environments (`None`: `$STEWARD_PYTHON` or `python3`).
    pub python: Option<PathBuf>,
    /// `repoUrl` → local directory.
    pub collection_overrides: HashMap<String, PathBuf>,
    /// Where the loopback OTLP receiver listens (port 0: any free port).
    pub otlp_listen: std::net::SocketAddr,
}

impl RuntimeConfig {
    /// Caches and work under the given directories, `python3`, no overrides, OTLP receiver on
    /// any free loopback port.
    pub fn new(cache_dir: PathBuf, work_dir: PathBuf) -> Self {
        RuntimeConfig {
            cache_dir,
            work_dir,
            python: None,
            collection_overrides: HashMap::new(),
            otlp_listen: ([127, 0, 0, 1], 0).into(),
        }
    }
}

/// Executes runs; one per process, shared by every run.
pub struct Runtime {
    config: RuntimeConfig,
    python: PythonEnvs,
    collections: CollectionResolver,
    receiver: MetricsReceiver,
    progress: Progress,
}

/// A finished run.
#[derive(Debug)]
pub struct Execution {
    /// The result to report.
    pub result: RunResult,
    /// The report lines, parsed (also kept as `report.jsonl` among the artifacts).
    pub report: Vec<ReportEntry>,
    /// Where the artifact files are.
    pub out_dir: PathBuf,
}

impl Runtime {
    /// Starts the metrics receiver on loopback and prepares the caches.
    pub async fn start(config: RuntimeConfig, progress: Progress) -> Result<Self> {
        for dir in [&config.cache_dir, &config.work_dir] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let listen = config.otlp_listen;
        let receiver = MetricsReceiver::start(listen)
            .await
            .map_err(|e| Error::io(Path::new(&format!("OTLP receiver on {listen}")), e))?;
        Ok(Runtime {
            python: PythonEnvs::new(&config.cache_dir, config.python.clone()),
            collections: CollectionResolver::new(
                &config.cache_dir,
                config.collection_overrides.clone(),
            ),
            config,
            receiver,
            progress,
        })
    }

    /// The loopback metrics receiver (for attaching a sink for points that belong to no run).
    pub fn receiver(&self) -> &MetricsReceiver {
        &self.receiver
    }

    /// Builds the default Python environment now, so the first run does not wait for it.
    pub async fn prepare(&self) -> Result<PythonEnv> {
        self.python.ensure(None, &self.progress).await
    }

    /// Resolves a bundle without running it (for `steward run` and validation).
    pub async fn resolve(&self, spec: &RunSpec) -> Result<ResolvedBundle> {
        self.collections.resolve(&spec.code_bundle).await
    }

    /// Runs `spec` with these secret values, leaving the artifacts in `out_dir`.
    ///
    /// Never fails: whatever goes wrong becomes a result with status `error`, `timed_out` or
    /// `cancelled` and a message saying what happened.
    pub async fn execute(
        &self,
        spec: &RunSpec,
        secrets: &[SecretValue],
        out_dir: &Path,
        cancel: &CancellationToken,
    ) -> Execution {
        let started_at = Utc::now();
        // Robot runs in the bundle's directory: a relative output directory would land there.
        let out_dir = &std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
        let run_root = self.config.work_dir.join(spec.run_id.to_string());
        let outcome = self
            .execute_in(spec, secrets, out_dir, &run_root, cancel, started_at)
            .await;
        if let Err(error) = std::fs::remove_dir_all(&run_root)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run = %spec.run_id, %error, "Could not remove the run directory.");
        }
        let (result, report) = match outcome {
            Ok(done) => done,
            Err(error) => {
                let status = if cancel.is_cancelled() {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Error
                };
                (
                    RunResult::error(status, error.to_string(), started_at),
                    Vec::new(),
                )
            }
        };
        Execution {
            result,
            report,
            out_dir: out_dir.to_path_buf(),
        }
    }

    async fn execute_in(
        &self,
        spec: &RunSpec,
        secrets: &[SecretValue],
        out_dir: &Path,
        run_root: &Path,
        cancel: &CancellationToken,
        started_at: DateTime<Utc>,
    ) -> Result<(RunResult, Vec<ReportEntry>)> {
        let bundle = self.collections.resolve(&spec.code_bundle).await?;
        let source = std::fs::read_to_string(&bundle.robot_file)
            .map_err(|e| Error::io(&bundle.robot_file, e))?;
        let robot = RobotFile::parse(&source);
        let selected = select_tasks(spec, &robot)?;

        let requirements_path = bundle.collection_root.join("requirements.txt");
        let requirements = std::fs::read_to_string(&requirements_path)
            .ok()
            .filter(|r| !r.trim().is_empty());
        let python = self
            .python
            .ensure(requirements.as_deref(), &self.progress)
            .await?;

        let dirs = RunDirs::under(run_root);
        let _ = std::fs::remove_dir_all(run_root);
        for dir in [&dirs.cb_temp, &dirs.tmp, &dirs.home] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
        copy_dir(&bundle.bundle_dir, &dirs.codebundle)?;
        let robot_copy = dirs.codebundle.join(
            bundle
                .robot_file
                .file_name()
                .expect("robot file has a name"),
        );
        let secret_files = materialize(&dirs.secrets, secrets)?;

        let endpoint = self.receiver.register(spec.run_id);
        let pycache = self.config.cache_dir.join("pycache");
        let host_env = |name: &str| std::env::var(name).ok();
        let (env, mut warnings) = build_env(&ContractInputs {
            spec,
            robot_file: &robot_copy,
            collection_root: &bundle.collection_root,
            python_bin: python.python.parent().expect("python is in bin/"),
            pycache: &pycache,
            dirs: &dirs,
            secret_files: &secret_files,
            otel_endpoint: Some(&endpoint),
            host_env: &host_env,
        })?;
        warnings.extend(bundle.warning.clone());

        // With secrets in play, robot writes no log.html: robot compresses long log messages
        // in it, so a secret there cannot be scrubbed as text. The log is rebuilt below from the
        // scrubbed output.xml instead.
        let args = robot_args(out_dir, &dirs, &selected, &robot_copy, secrets.is_empty());
        tracing::debug!(run = %spec.run_id, robot = %bundle.robot_file.display(), "Starting robot.");
        let stdout_path = out_dir.join("stdout.txt");
        let limit = Duration::from_secs(spec.timeout_seconds.max(1));
        let exit = process::run(
            Spawn {
                program: &python.python,
                args,
                env: &env,
                cwd: &dirs.codebundle,
                output: &stdout_path,
            },
            limit,
            cancel,
        )
        .await;
        let metrics = self.receiver.take(spec.run_id);
        let exit = exit?;

        for name in ARTIFACTS.iter().chain(&["output.xml"]) {
            let path = out_dir.join(name);
            if path.is_file()
                && let Err(error) = redact_file(&path, secrets)
            {
                warnings.push(format!(
                    "{name}: could not scrub secrets ({error}); file removed"
                ));
                let _ = std::fs::remove_file(&path);
            }
        }
        if !secrets.is_empty() {
            rebuild_log(&python.python, &env, out_dir, &mut warnings).await;
        }
        let finished_at = Utc::now();
        let output = std::fs::read_to_string(out_dir.join("output.xml"))
            .map(|x| OutputXml::parse(&x))
            .ok();
        let issues = read_jsonl(out_dir, "issues.jsonl", parse_issues, &mut warnings);
        let report = read_jsonl(out_dir, "report.jsonl", parse_report, &mut warnings);
        let tasks = task_outcomes(output.as_ref(), &robot);
        let (status, error) = status_of(
            exit,
            &tasks,
            output.as_ref(),
            &stdout_path,
            spec.timeout_seconds,
        );
        let metric_name = sli_metric_name(&spec.slx);
        let sli = if spec.kind == RunKind::Sli {
            sli_value(&metrics, &metric_name)
        } else {
            None
        };
        if spec.kind == RunKind::Sli && sli.is_none() && status == RunStatus::Succeeded {
            warnings.push(format!(
                "the SLI pushed no value named {metric_name} (Push Metric without sub_name)"
            ));
        }
        let artifacts = ARTIFACTS
            .iter()
            .filter_map(|name| {
                let meta = std::fs::metadata(out_dir.join(name))
                    .ok()
                    .filter(|m| m.is_file())?;
                Some(ArtifactRef {
                    name: name.to_string(),
                    size: meta.len(),
                    truncated: 0,
                })
            })
            .collect();
        let result = RunResult {
            status,
            tasks,
            issues,
            metrics,
            sli_value: sli,
            error,
            warnings,
            artifacts,
            started_at,
            finished_at,
        };
        Ok((result, report))
    }
}

/// The robot command line (after `python`).
fn robot_args(
    out_dir: &Path,
    dirs: &RunDirs,
    titles: &[String],
    robot: &Path,
    write_log: bool,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-m".into(),
        "robot".into(),
        "--outputdir".into(),
        out_dir.display().to_string(),
    ];
    let log = if write_log { "log.html" } else { "NONE" };
    for (flag, value) in [
        ("--output", "output.xml"),
        ("--log", log),
        ("--report", "NONE"),
        ("--loglevel", "TRACE:INFO"),
        ("--consolecolors", "off"),
        ("--consolemarkers", "off"),
        ("--consolewidth", "100"),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    args.push("--variable".into());
    args.push(format!("CODEBUNDLE_TEMP_DIR:{}", dirs.cb_temp.display()));
    args.push("--variable".into());
    args.push(format!("KUBECONFIG:{}", dirs.kubeconfig().display()));
    for title in titles {
        args.push("--test".into());
        args.push(test_pattern(title));
    }
    args.push(robot.display().to_string());
    args
}

/// Writes `log.html` from the (already scrubbed) `output.xml` with robot's own `rebot`.
async fn rebuild_log(
    python: &Path,
    env: &BTreeMap<String, String>,
    out_dir: &Path,
    warnings: &mut Vec<String>,
) {
    if !out_dir.join("output.xml").is_file() {
        return;
    }
    let args: Vec<String> = [
        "-m",
        "robot.rebot",
        "--log",
        "log.html",
        "--report",
        "NONE",
        "--output",
        "NONE",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--outputdir".into(),
        out_dir.display().to_string(),
        out_dir.join("output.xml").display().to_string(),
    ])
    .collect();
    let console = out_dir.join(".rebot.txt");
    let spawn = Spawn {
        program: python,
        args,
        env,
        cwd: out_dir,
        output: &console,
    };
    let done = process::run(spawn, Duration::from_secs(120), &CancellationToken::new()).await;
    if !out_dir.join("log.html").is_file() {
        let why = std::fs::read_to_string(&console).unwrap_or_default();
        warnings.push(format!(
            "log.html could not be written ({:?}): {}",
            done.ok(),
            why.trim()
        ));
    }
    let _ = std::fs::remove_file(&console);
}

/// Raw titles to pass as `--test`; empty for all. Unknown titles are refused with the list of
/// titles the file has.
fn select_tasks(spec: &RunSpec, robot: &RobotFile) -> Result<Vec<String>> {
    if spec.selects_all_tasks() {
        return Ok(Vec::new());
    }
    let mut selected = Vec::new();
    for title in &spec.task_titles {
        if robot.task(title).is_none() {
            return Err(Error::UnknownTask {
                title: title.clone(),
                file: format!(
                    "{} of {}",
                    spec.code_bundle
                        .path_to_robot
                        .as_deref()
                        .unwrap_or_default(),
                    spec.code_bundle.repo_url
                ),
                available: robot.titles().iter().map(|t| t.to_string()).collect(),
            });
        }
        selected.push(title.clone());
    }
    Ok(selected)
}

fn task_outcomes(output: Option<&OutputXml>, robot: &RobotFile) -> Vec<TaskOutcome> {
    let Some(output) = output else {
        return Vec::new();
    };
    output
        .tasks
        .iter()
        .map(|recorded| {
            let mut outcome = recorded.outcome.clone();
            outcome.title = recorded
                .line
                .and_then(|line| robot.tasks.iter().find(|t| t.line == line))
                .map(|t| t.title.clone())
                .unwrap_or_default();
            outcome
        })
        .collect()
}

fn status_of(
    exit: Exit,
    tasks: &[TaskOutcome],
    output: Option<&OutputXml>,
    stdout: &Path,
    timeout_seconds: u64,
) -> (RunStatus, Option<String>) {
    match exit {
        Exit::TimedOut => {
            return (
                RunStatus::TimedOut,
                Some(format!(
                    "timed out after {timeout_seconds}s; the task's processes were killed"
                )),
            );
        }
        Exit::Cancelled => {
            return (
                RunStatus::Cancelled,
                Some("cancelled; the task's processes were killed".into()),
            );
        }
        Exit::Exited(_) => {}
    }
    if tasks.is_empty() {
        let mut reasons: Vec<String> = output.map(|o| o.errors.clone()).unwrap_or_default();
        if reasons.is_empty() {
            reasons.push(tail(stdout, 12));
        }
        return (
            RunStatus::Error,
            Some(format!("robot ran no task: {}", reasons.join("; "))),
        );
    }
    if tasks.iter().any(|t| t.status == TaskStatus::Fail) {
        (RunStatus::Failed, None)
    } else {
        (RunStatus::Succeeded, None)
    }
}

fn read_jsonl<T>(
    out_dir: &Path,
    name: &str,
    parse: fn(&str) -> crate::jsonl::Parsed<T>,
    warnings: &mut Vec<String>,
) -> Vec<T> {
    match std::fs::read_to_string(out_dir.join(name)) {
        Ok(text) => {
            let parsed = parse(&text);
            warnings.extend(parsed.warnings);
            parsed.items
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            warnings.push(format!("{name}: {e}"));
            Vec::new()
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        "no output".into()
    } else {
        all[start..].join(" | ")
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(|e| Error::io(from, e.into()))?;
        let relative = entry
            .path()
            .strip_prefix(from)
            .expect("walkdir stays below its root");
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).map_err(|e| Error::io(&target, e))?;
        }
    }
    Ok(())
}

/// A shared runtime.
pub type SharedRuntime = Arc<Runtime>;

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: TaskStatus) -> TaskOutcome {
        TaskOutcome {
            name: "t".into(),
            title: String::new(),
            status,
            message: String::new(),
            elapsed_ms: 0,
        }
    }

    #[test]
    fn status_follows_task_outcomes() {
        let stdout = Path::new("/nonexistent");
        assert_eq!(
            status_of(
                Exit::Exited(Some(0)),
                &[outcome(TaskStatus::Pass)],
                None,
                stdout,
                5
            )
            .0,
            RunStatus::Succeeded
        );
        assert_eq!(
            status_of(
                Exit::Exited(Some(1)),
                &[outcome(TaskStatus::Pass), outcome(TaskStatus::Fail)],
                None,
                stdout,
                5
            )
            .0,
            RunStatus::Failed
        );
        assert_eq!(
            status_of(
                Exit::Exited(Some(0)),
                &[outcome(TaskStatus::Skip)],
                None,
                stdout,
                5
            )
            .0,
            RunStatus::Succeeded
        );
        let (status, error) = status_of(Exit::TimedOut, &[], None, stdout, 5);
        assert_eq!(status, RunStatus::TimedOut);
        assert!(error.unwrap().contains("5s"));
    }

    #[test]
    fn no_tasks_is_an_error_that_quotes_robot() {
        let output = OutputXml {
            errors: vec!["Importing library 'RW.Nope' failed".into()],
            ..Default::default()
        };
        let (status, error) = status_of(
            Exit::Exited(Some(252)),
            &[],
            Some(&output),
            Path::new("/x"),
            5,
        );
        assert_eq!(status, RunStatus::Error);
        assert!(error.unwrap().contains("RW.Nope"));
    }
}

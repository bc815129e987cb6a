//! The task pod's side (`steward task-pod`): reads the run from its Secret, executes it with
//! the same runtime the process executor uses, and reports artifacts and result to the runner.
//! Whatever happens, it tries to report a result, so the platform sees the reason.

use super::pod::{Launch, RUN_MOUNT};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use steward_model::run::{RunResult, RunStatus};
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use tokio_util::sync::CancellationToken;

/// Why the launcher could not report.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The launch file is missing or unreadable.
    #[error("{path}: {message}")]
    Launch {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The runner did not take the report.
    #[error("reporting to the runner at {url} failed: {message}")]
    Report {
        /// The endpoint.
        url: String,
        /// What happened.
        message: String,
    },
}

/// Runs the launch described by `launch_file`, with the runtime's work and cache directories
/// under `work_dir` and `cache_dir`.
pub async fn run_task_pod(
    launch_file: &Path,
    work_dir: PathBuf,
    cache_dir: PathBuf,
) -> Result<RunStatus, LaunchError> {
    let bad = |message: String| LaunchError::Launch {
        path: launch_file.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(launch_file).map_err(|e| bad(e.to_string()))?;
    let launch: Launch = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let secrets_dir = launch_file.parent().unwrap_or(Path::new(RUN_MOUNT));
    let started = chrono::Utc::now();
    let out_dir = work_dir.join("out");
    let result = match read_secrets(&launch, secrets_dir) {
        Err(message) => RunResult::error(RunStatus::Error, message, started),
        Ok(secrets) => {
            let config = RuntimeConfig {
                collection_overrides: launch.collection_overrides.clone(),
                ..RuntimeConfig::new(cache_dir, work_dir.join("runs"))
            };
            match Runtime::start(config, Arc::new(log_progress)).await {
                Err(e) => RunResult::error(
                    RunStatus::Error,
                    format!("the task runtime cannot start: {e}"),
                    started,
                ),
                Ok(runtime) => {
                    // Deleting the pod (a cancelled run) sends SIGTERM: stop robot's process
                    // group and report, rather than leave it to the kubelet's SIGKILL.
                    let cancel = CancellationToken::new();
                    let on_term = cancel.clone();
                    if let Ok(mut term) =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        tokio::spawn(async move {
                            term.recv().await;
                            on_term.cancel();
                        });
                    }
                    runtime
                        .execute(&launch.spec, &secrets, &out_dir, &cancel)
                        .await
                        .result
                }
            }
        }
    };
    let status = result.status;
    report(&launch, &out_dir, &result).await?;
    Ok(status)
}

fn read_secrets(launch: &Launch, dir: &Path) -> Result<Vec<SecretValue>, String> {
    launch
        .secrets
        .iter()
        .map(|(name, key)| {
            let path = dir.join(key);
            std::fs::read_to_string(&path)
                .map(|value| SecretValue {
                    name: name.clone(),
                    value,
                })
                .map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display()))
        })
        .collect()
}

/// Sends every artifact named in the result, then the result; each request is retried for a
/// while, because the runner may be restarting.
pub(crate) async fn report(
    launch: &Launch,
    out_dir: &Path,
    result: &RunResult,
) -> Result<(), LaunchError> {
    let base = format!(
        "{}/v1/runs/{}",
        launch.report_to.trim_end_matches('/'),
        launch.spec.run_id
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| LaunchError::Report {
            url: base.clone(),
            message: e.to_string(),
        })?;
    for artifact in &result.artifacts {
        let path = out_dir.join(&artifact.name);
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue; // the result already says what could not be read
        };
        let url = format!("{base}/artifacts/{}", artifact.name);
        send(&url, || {
            client
                .put(&url)
                .bearer_auth(&launch.token)
                .body(bytes.clone())
        })
        .await?;
    }
    let url = format!("{base}/result");
    send(&url, || {
        client.post(&url).bearer_auth(&launch.token).json(result)
    })
    .await
}

async fn send(url: &str, request: impl Fn() -> reqwest::RequestBuilder) -> Result<(), LaunchError> {
    let mut delay = Duration::from_millis(250);
    let mut last = String::new();
    for _ in 0..12 {
        match request().send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().is_client_error() => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                return Err(LaunchError::Report {
                    url: url.to_string(),
                    message: format!("{status}: {text}"),
                });
            }
            Ok(response) => last = response.status().to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    Err(LaunchError::Report {
        url: url.to_string(),
        message: last,
    })
}

fn log_progress(event: steward_runtime::ProvisionEvent) {
    tracing::info!(?event, "Python environment.");
}

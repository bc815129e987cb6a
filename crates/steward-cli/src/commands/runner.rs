//! `steward runner`: a runner connected to a control plane.

use super::{StopSignal, pair};
use crate::cli::{RunnerArgs, TaskPodArgs, WorkerArgs};
use crate::dirs;
use crate::progress::init_logging;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use steward_runner::RunnerConfig;
use steward_runner::config_file::RunnerFile;
use tokio_util::sync::CancellationToken;

pub async fn runner(args: RunnerArgs) -> Result<ExitCode> {
    let signal = StopSignal::install()?;
    init_logging("info");
    let state_dir = dirs::data_dir(args.dirs.data_dir).join("runner");
    let _lock = crate::dirlock::lock(&state_dir, "a steward runner")?;
    let mut config = RunnerConfig::new(&args.platform, state_dir);
    config.cache_dir = dirs::cache_dir(args.dirs.cache_dir);
    config.registration_token = args.registration_token;
    if let Some(name) = args.name {
        config.name = name;
    }
    config.capacity = args.capacity;
    config.secrets_dir = args.secrets_dir;
    config.namespace = args.namespace.filter(|n| !n.is_empty());
    let mut file = RunnerFile::default();
    if let Some(path) = &args.config {
        let (read, warnings) = RunnerFile::load(path)?;
        for warning in warnings {
            tracing::warn!(file = %path.display(), "{warning}");
        }
        file = read;
    }
    if let Some(executor) = args.executor {
        file.executor = Some(executor);
    }
    config.secrets = file.secrets();
    config.kubernetes = file.pod_settings();
    config.pools = file.pools.clone();
    config.ca_cert = args.ca_cert;
    config.http1_only = args.http1;
    config.python = args.python;
    config.otlp_listen = args.otlp_listen;
    config.metrics_listen = args.metrics_listen;
    config.relay_spool_bytes = args.relay_spool_mb * 1024 * 1024;
    for entry in &args.collections {
        let (url, dir) = pair(entry, "--collection", "URL=DIRECTORY")?;
        config.collection_overrides.insert(url, PathBuf::from(dir));
    }
    let stop = CancellationToken::new();
    signal.cancel_on_signal(
        stop.clone(),
        "Stopping; runs in progress are handed back to the platform…",
    );
    steward_runner::run(config, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// `steward task-pod`: the launcher inside a task pod. Exits 0 when the run was reported
/// (whatever its status), 1 when the report could not be made.
pub async fn task_pod(args: TaskPodArgs) -> Result<ExitCode> {
    init_logging("info");
    let cache_dir = dirs::cache_dir(args.dirs.cache_dir);
    let status =
        steward_runner::kubernetes::launcher::run_task_pod(&args.launch, args.work_dir, cache_dir)
            .await?;
    tracing::info!(%status, "Run reported to the runner.");
    Ok(ExitCode::SUCCESS)
}

/// `steward worker`: a warm pool worker; runs until SIGTERM.
pub async fn worker(args: WorkerArgs) -> Result<ExitCode> {
    init_logging("info");
    let options = steward_runner::kubernetes::worker::WorkerOptions {
        runner_url: args.runner,
        pool: args.pool,
        token: args.token,
        identity: std::env::var("HOSTNAME").unwrap_or_default(),
        work_dir: args.work_dir,
        cache_dir: dirs::cache_dir(args.dirs.cache_dir),
        repo_url: args.repo_url,
        git_ref: args.git_ref,
    };
    steward_runner::kubernetes::worker::run_until_signal(options).await?;
    Ok(ExitCode::SUCCESS)
}

//! `steward run`: one robot file of a codebundle, here, with no platform. What a codebundle
//! author runs while writing it; the task sees exactly the environment a runner gives it.

use super::pair;
use crate::cli::{Output, RunArgs};
use crate::progress::{environment_progress, init_logging};
use crate::{dirs, output};
use anyhow::{Context, Result, anyhow};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use steward_model::run::{RunKind, RunSpec, RunStatus};
use steward_model::workspace::{CodeBundleRef, ConfigVar, SecretRef};
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let signal = super::StopSignal::install()?;
    init_logging("warn");
    let robot = args
        .robot
        .canonicalize()
        .with_context(|| format!("{}: no such robot file", args.robot.display()))?;
    if robot.extension().is_none_or(|e| e != "robot") {
        return Err(anyhow!("{}: not a .robot file", robot.display()));
    }
    let bundle_dir = robot.parent().expect("a file has a parent");
    let bundle = bundle_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let root = collection_root(bundle_dir);
    let path_to_robot = robot
        .strip_prefix(&root)
        .expect("root is an ancestor")
        .to_string_lossy()
        .into_owned();
    let file_name = robot
        .file_name()
        .expect("has a name")
        .to_string_lossy()
        .into_owned();
    let kind = if args.sli || file_name.starts_with("sli") {
        RunKind::Sli
    } else {
        RunKind::Runbook
    };

    let mut config: Vec<ConfigVar> = Vec::new();
    for entry in &args.vars {
        let (name, value) = pair(entry, "--var", "NAME=VALUE")?;
        if config.iter().any(|c| c.name == name) {
            return Err(anyhow!(
                "--var {name} is given twice; give each variable once"
            ));
        }
        config.push(ConfigVar { name, value });
    }
    let mut secret_refs = Vec::new();
    let mut secrets = Vec::new();
    for entry in &args.secrets {
        let (name, file) = pair(
            entry,
            "--secret",
            "NAME=FILE (a file that holds the secret)",
        )?;
        let value = std::fs::read_to_string(&file)
            .with_context(|| format!("--secret {name}: cannot read {file}"))?;
        secret_refs.push(SecretRef {
            name: name.clone(),
            workspace_key: format!("file@{file}"),
        });
        secrets.push(SecretValue { name, value });
    }
    let repo_url = root.to_string_lossy().into_owned();
    let spec = RunSpec {
        run_id: Uuid::now_v7(),
        kind,
        workspace: "local".into(),
        slx: bundle.clone(),
        location: "local".into(),
        code_bundle: CodeBundleRef {
            repo_url: repo_url.clone(),
            git_ref: String::new(),
            path_to_robot: Some(path_to_robot),
            path_to_yaml: None,
        },
        config,
        secrets: secret_refs,
        task_titles: args.tasks.clone(),
        timeout_seconds: args.timeout,
        session_id: (kind == RunKind::Runbook).then(Uuid::now_v7),
        interval_seconds: (kind == RunKind::Sli).then_some(args.interval),
    };
    let out = match args.out.clone() {
        Some(out) if out.exists() && !out.is_dir() => {
            return Err(anyhow!(
                "--out {}: that is a file; give a directory (it is created when missing)",
                out.display()
            ));
        }
        Some(out) => out,
        None => fresh_out_dir(&bundle)?,
    };
    let cache_dir = dirs::cache_dir(args.cache_dir.clone());
    let runtime = Runtime::start(
        RuntimeConfig {
            python: args.python.clone(),
            collection_overrides: HashMap::from([(repo_url, root.clone())]),
            ..RuntimeConfig::new(cache_dir.clone(), cache_dir.join("work"))
        },
        environment_progress(),
    )
    .await?;
    if args.output == Output::Text {
        say!("Running {} ({}) …", robot.display(), kind.as_str());
    }
    let cancel = CancellationToken::new();
    signal.cancel_on_signal(cancel.clone(), "");
    let tail = args
        .verbose
        .then(|| tokio::spawn(follow(out.join("stdout.txt"), cancel.clone())));
    let done = runtime.execute(&spec, &secrets, &out, &cancel).await;
    if let Some(tail) = tail {
        tail.abort();
    }
    match args.output {
        Output::Json => output::json(
            &serde_json::json!({ "result": done.result, "report": done.report, "outputDir": out }),
        ),
        Output::Text => {
            output::result(&done.result);
            output::report(&done.report);
            if !done.result.artifacts.is_empty() {
                println!();
                println!(
                    "Artifacts in {}: {}",
                    out.display(),
                    done.result
                        .artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(match done.result.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Failed => ExitCode::from(1),
        _ => ExitCode::from(2),
    })
}

/// The CodeCollection root: the directory above `codebundles/`, or the bundle itself when it
/// is not inside one.
fn collection_root(bundle_dir: &Path) -> PathBuf {
    bundle_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "codebundles"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| bundle_dir.to_path_buf())
}

/// Streams robot's console output while the task runs.
async fn follow(path: PathBuf, stop: CancellationToken) {
    use tokio::io::AsyncReadExt;
    let mut offset = 0u64;
    while !stop.is_cancelled() {
        if let Ok(mut file) = tokio::fs::File::open(&path).await {
            use tokio::io::AsyncSeekExt;
            if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                let mut buf = Vec::new();
                if let Ok(n) = file.read_to_end(&mut buf).await {
                    offset += n as u64;
                    use std::io::Write as _;
                    let _ = std::io::stderr().write_all(&buf);
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// `steward-out/<bundle>-<time>`, created now so that two runs started in the same second do
/// not share it (the second gets `-2`, and so on).
fn fresh_out_dir(bundle: &str) -> Result<PathBuf> {
    let base = PathBuf::from("steward-out");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let stem = format!("{bundle}-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    for n in 1.. {
        let dir = if n == 1 {
            base.join(&stem)
        } else {
            base.join(format!("{stem}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("creating {}", dir.display()));
            }
        }
    }
    unreachable!("some name is free")
}

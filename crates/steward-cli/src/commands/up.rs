//! `steward up`: the fully hosted model on one machine. The platform and a runner in one
//! process; the runner talks to the platform over HTTP exactly as a remote one would.

use super::StopSignal;
use crate::cli::UpArgs;
use crate::progress::{environment_progress, init_logging};
use crate::{api, dirs};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use steward_model::api::{ImportReport, ImportRequest};
use steward_model::workspace::WorkspaceTree;
use steward_platform::{Platform, PlatformConfig, TlsConfig};
use steward_runner::RunnerConfig;
use tokio_util::sync::CancellationToken;

/// The example workspace, as in `examples/local-workspace`.
static EXAMPLE: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../examples/local-workspace");

/// The location `up`'s runner registers for.
const LOCATION: &str = "local";

pub async fn up(args: UpArgs) -> Result<ExitCode> {
    let mut signal = StopSignal::install()?;
    init_logging("warn,steward_platform=info,steward_runner=info");
    let data_dir = dirs::data_dir(args.dirs.data_dir);
    let cache_dir = dirs::cache_dir(args.dirs.cache_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    // The same locks `steward platform` and `steward runner` take on these directories.
    let _locks = (
        crate::dirlock::lock(&data_dir.join("platform"), "a steward platform")?,
        crate::dirlock::lock(&data_dir.join("runner"), "a steward runner")?,
    );
    let token = read_or_create(&data_dir.join("up-registration-token"), || {
        format!("stw_reg_{}", uuid::Uuid::new_v4().simple())
    })?;
    let mut config = PlatformConfig::new(data_dir.join("platform"));
    config.listen = args.listen;
    config.default_location = LOCATION.into();
    config
        .registration_tokens
        .push((token.clone(), LOCATION.into()));
    if !args.no_tls {
        let (cert_pem, key_pem) = super::up_tls::certificate(&data_dir.join("tls"))?;
        config.tls = Some(TlsConfig {
            listen: args.tls_listen,
            cert_pem,
            key_pem,
        });
    }
    let platform = Platform::start(config)
        .await
        .map_err(|e| super::listen_hint(e, "--listen and --tls-listen (or --no-tls)"))?;
    let url = platform.public_url().to_string();

    let tree = match &args.workspace {
        Some(dir) => WorkspaceTree::load(dir),
        None => WorkspaceTree::from_files(example_files(platform.addr(), platform.tls_addr())),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = tree.name().to_string();
    // The bundled example is imported again on every start (the platform's addresses may have
    // changed) unless the user has changed it since `up` last imported it: then it is theirs.
    let imported_by_up = data_dir.join("up-example.json");
    let stored = platform.store().export_workspace(&name).await.ok();
    let changed_by_user = args.workspace.is_none()
        && stored.as_ref().is_some_and(|stored| {
            let last: Option<BTreeMap<String, String>> = std::fs::read(&imported_by_up)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            last.as_ref() != Some(stored)
        });
    let slxs = if changed_by_user {
        say!(
            "Workspace {name} has changed since steward up imported the example; it is kept as it is \
             (`steward workspace import examples/local-workspace` brings the example back)."
        );
        platform.store().slx_views(&name).await?.len()
    } else {
        let client = api::Api::new(&url, None)?;
        let report: ImportReport = client
            .put(
                &format!("/api/v1/workspaces/{}", api::encode(&name)),
                &ImportRequest::from_tree(&tree, true),
            )
            .await
            .context("importing the workspace")?;
        for problem in tree.problems.iter().chain(&report.problems) {
            say!("skipped: {problem}");
        }
        if args.workspace.is_none()
            && let Ok(now) = platform.store().export_workspace(&name).await
        {
            let _ = std::fs::write(
                &imported_by_up,
                serde_json::to_vec(&now).expect("files serialize"),
            );
        }
        report.added.len() + report.updated.len() + report.unchanged.len()
    };

    let stop = CancellationToken::new();
    let mut runner = RunnerConfig::new(&url, data_dir.join("runner"));
    runner.registration_token = Some(token);
    runner.name = "up".into();
    runner.cache_dir = cache_dir;
    runner.capacity = args.capacity;
    runner.progress = Some(environment_progress());
    let runner_task = tokio::spawn(steward_runner::run(runner, stop.clone()));

    say!();
    say!("Steward is up: workspace {name} with {slxs} SLXs.");
    say!("  Status page  {url}/");
    if let Some(tls) = platform.tls_addr() {
        say!("  HTTPS        https://{tls}/  (self-signed)");
    }
    say!("  Data         {}", data_dir.display());
    say!("SLI values appear within a minute or two. Then try:");
    let url_flag = if url == "http://127.0.0.1:8080" {
        String::new()
    } else {
        format!(" --url {url}")
    };
    say!("  steward status{url_flag}");
    say!("  steward session create --slx platform-tls{url_flag}");
    say!("  steward issues{url_flag}");
    say!("Ctrl-C stops everything.");

    let mut runner_task = runner_task;
    tokio::select! {
        _ = signal.wait() => {}
        outcome = &mut runner_task => {
            // The runner only ends early when it cannot work at all.
            platform.stop().await;
            return match outcome {
                Ok(Err(error)) => Err(error.into()),
                _ => Ok(ExitCode::from(1)),
            };
        }
    }
    say!("Stopping…");
    // The runner first, so it can hand unfinished runs back to the platform while it answers.
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), runner_task).await;
    platform.stop().await;
    say!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(path)
        && !text.trim().is_empty()
    {
        return Ok(text.trim().to_string());
    }
    let value = make();
    // A registration token: readable by this user only.
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(value)
}

/// The bundled example, with the platform's addresses put in when they are not the defaults.
fn example_files(
    http: std::net::SocketAddr,
    https: Option<std::net::SocketAddr>,
) -> Vec<(String, String)> {
    let mut files = BTreeMap::new();
    collect(&EXAMPLE, &mut files);
    files
        .into_iter()
        .map(|(path, text)| {
            let mut text = text.replace("127.0.0.1:8080", &http.to_string());
            if let Some(https) = https {
                text = text.replace("127.0.0.1:8443", &https.to_string());
            }
            (path, text)
        })
        .collect()
}

fn collect(dir: &include_dir::Dir<'_>, out: &mut BTreeMap<String, String>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            out.insert(file.path().to_string_lossy().into_owned(), text.to_string());
        }
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_example_loads_cleanly_and_follows_the_listen_addresses() {
        let files = example_files(
            "127.0.0.1:9999".parse().unwrap(),
            Some("127.0.0.1:9443".parse().unwrap()),
        );
        let tree = WorkspaceTree::from_files(files).unwrap();
        assert!(tree.problems.is_empty(), "{:?}", tree.problems);
        assert_eq!(tree.name(), "local");
        assert_eq!(tree.slxs.len(), 4);
        for (name, slx) in &tree.slxs {
            assert!(
                slx.sli.is_some() && slx.runbook.is_some(),
                "{name} lacks an SLI or a runbook"
            );
        }
        let http = &tree.slxs["platform-http"]
            .sli
            .as_ref()
            .unwrap()
            .spec
            .config_provided[0]
            .value;
        assert_eq!(http, "http://127.0.0.1:9999/api/v1/health");
        let tls = &tree.slxs["platform-tls"]
            .sli
            .as_ref()
            .unwrap()
            .spec
            .config_provided[0]
            .value;
        assert_eq!(tls, "127.0.0.1:9443");
    }
}

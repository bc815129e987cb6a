//! `steward platform`: the control plane alone.

use super::StopSignal;
use crate::cli::PlatformArgs;
use crate::dirs;
use crate::progress::init_logging;
use anyhow::{Context, Result};
use std::process::ExitCode;
use steward_platform::{Platform, PlatformConfig, TlsConfig};

pub async fn platform(args: PlatformArgs) -> Result<ExitCode> {
    let mut stop = StopSignal::install()?;
    init_logging("info");
    let data_dir = dirs::data_dir(args.dirs.data_dir);
    let _lock = crate::dirlock::lock(&data_dir.join("platform"), "a steward platform")?;
    let mut config = PlatformConfig::new(data_dir.join("platform"));
    config.listen = args.listen;
    config.public_url = args.public_url;
    config.api_token = args.api_token;
    config.default_location = args.location.clone();
    config.url_ttl = args.url_ttl;
    config.lease_ttl = args.lease_ttl;
    config.max_attempts = args.max_attempts;
    config.runner_offline_after = args.runner_offline_after;
    config.database_url = args.database_url;
    config.sli_raw_retention = args.sli_raw_retention;
    config.artifacts_url = args.artifacts;
    config.artifact_max_bytes = args.artifact_max_mb * 1024 * 1024;
    for option in &args.artifacts_options {
        config
            .artifacts_options
            .push(super::pair(option, "--artifacts-option", "KEY=VALUE")?);
    }
    config.sli_rollup_retention = args.sli_rollup_retention;
    config.remote_write = args
        .remote_write_url
        .map(|url| steward_platform::RemoteWriteConfig {
            url,
            bearer_token: args.remote_write_token,
        });
    if let Some(token) = args.registration_token {
        config.registration_tokens.push((token, args.location));
    }
    if let (Some(listen), Some(cert), Some(key)) = (args.tls_listen, args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig {
            listen,
            cert_pem: std::fs::read(&cert)
                .with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?,
        });
    }
    let platform = Platform::start(config)
        .await
        .map_err(|e| super::listen_hint(e, "--listen (and --tls-listen)"))?;
    say!(
        "Steward platform on {} (data in {}). Ctrl-C stops it.",
        platform.public_url(),
        data_dir.display()
    );
    stop.wait().await;
    say!("Stopping…");
    platform.stop().await;
    Ok(ExitCode::SUCCESS)
}

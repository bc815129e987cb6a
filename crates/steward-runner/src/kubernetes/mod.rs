//! Running tasks in Kubernetes: [`executor::KubernetesExecutor`] turns each run into a pod,
//! [`handoff::Handoff`] is the runner's endpoint those pods report to, and [`launcher`] is the
//! pod's side (`steward task-pod`).

pub mod executor;
pub mod handoff;
pub mod launcher;
pub mod pod;
pub mod settings;

use crate::{Error, RunnerConfig};
use settings::PodSettings;
use std::net::SocketAddr;

/// The default address of the endpoint task pods report to.
pub const DEFAULT_HANDOFF_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8000);

/// Connects to the cluster, starts the endpoint task pods report to and returns the executor.
pub async fn start(
    config: &RunnerConfig,
    settings: &PodSettings,
) -> Result<executor::KubernetesExecutor, Error> {
    let client = kube::Client::try_default().await.map_err(|e| {
        Error::Config(format!(
            "executor kubernetes needs the Kubernetes API (in-cluster service account or $KUBECONFIG): {e}"
        ))
    })?;
    let namespace = settings
        .namespace
        .clone()
        .or_else(|| config.namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let listen = settings.handoff_listen.unwrap_or(DEFAULT_HANDOFF_LISTEN);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Io {
            path: listen.to_string().into(),
            cause: e,
        })?;
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(listen.port());
    let runner_url = match (&settings.runner_url, std::env::var("STEWARD_POD_IP")) {
        (Some(url), _) => url.clone(),
        (None, Ok(ip)) if !ip.is_empty() => format!("http://{ip}:{port}"),
        _ => {
            return Err(Error::Config(
                "executor kubernetes: task pods need the runner's address; set kubernetes.runnerUrl in the runner's configuration or STEWARD_POD_IP (the Helm chart sets it)".into(),
            ));
        }
    };
    let handoff = handoff::Handoff::default();
    let serving = handoff.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    tracing::info!(%namespace, %runner_url, "Tasks run as Kubernetes pods.");
    executor::KubernetesExecutor::new(
        client,
        namespace,
        settings.clone(),
        runner_url,
        config.name.clone(),
        handoff,
        config.collection_overrides.clone(),
    )
    .map_err(Error::Config)
}

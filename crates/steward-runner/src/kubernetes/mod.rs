//! Running tasks in Kubernetes: [`executor::KubernetesExecutor`] turns each run into a pod,
//! [`handoff::Handoff`] is the runner's endpoint those pods report to, and [`launcher`] is the
//! pod's side (`steward task-pod`).
//!
//! Warm pools: [`pools::Pools`] queues the runs of pooled CodeCollections ([`queue`]) for the
//! workers of [`worker`] (`steward worker`), whose Deployments [`deployments`] keeps while this
//! replica leads ([`election`]).

pub mod admission;
pub mod deployments;
pub mod election;
pub mod executor;
pub mod handoff;
pub mod launcher;
pub mod pod;
pub mod pools;
pub mod queue;
pub mod settings;
pub mod worker;

use crate::{Error, RunnerConfig};
use election::{ElectionSettings, Elector};
use pools::{PoolConfig, PoolTiming, Pools};
use settings::PodSettings;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The default address of the endpoint task pods report to.
pub const DEFAULT_HANDOFF_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8000);

/// Connects to the cluster, starts the endpoint task pods and pool workers use, takes part in
/// the leader election and returns the executor.
pub async fn start(
    config: &RunnerConfig,
    settings: &PodSettings,
    stop: CancellationToken,
) -> Result<executor::KubernetesExecutor, Error> {
    let client = kube::Client::try_default().await.map_err(|e| {
        Error::Config(format!(
            "executor kubernetes needs the Kubernetes API: no in-cluster service account and no usable $KUBECONFIG ({e}); run the runner in a cluster, point KUBECONFIG at one, or use --executor process"
        ))
    })?;
    let namespace = settings
        .namespace
        .clone()
        .or_else(|| config.namespace.clone())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let listen = settings.handoff_listen.unwrap_or(DEFAULT_HANDOFF_LISTEN);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::Config(format!(
            "the endpoint task pods report to cannot listen on {listen}: {e}; choose another address with kubernetes.handoffListen (and kubernetes.runnerUrl to match)"
        ))
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
    let pools = start_pools(PoolsStart {
        client: client.clone(),
        namespace: namespace.clone(),
        settings: settings.clone(),
        handoff: handoff.clone(),
        runner_url: runner_url.clone(),
        identity: config.name.clone(),
        configs: config.pools.clone(),
        overrides: config.collection_overrides.clone(),
        stop,
    })
    .map_err(Error::Config)?;
    tokio::spawn(pools.clone().serve(listener));
    tracing::info!(%namespace, %runner_url, pools = config.pools.len(), "Tasks run as Kubernetes pods or on warm pool workers.");
    let owner = own_pod(&client, &namespace).await;
    let executor = executor::KubernetesExecutor::new(
        client,
        namespace,
        settings.clone(),
        runner_url,
        config.name.clone(),
        handoff,
        config.collection_overrides.clone(),
    )
    .map_err(Error::Config)?
    .with_pools(pools);
    Ok(match owner {
        Some(owner) => executor.with_owner(owner),
        None => executor,
    })
}

/// The runner's own Pod (`STEWARD_POD_NAME`, set by the chart), as the owner of the task
/// objects it creates; `None` outside a pod or without the right to read it.
async fn own_pod(
    client: &kube::Client,
    namespace: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    let name = std::env::var("STEWARD_POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())?;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client.clone(), namespace);
    match api.get(&name).await {
        Ok(pod) => Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name,
                uid: pod.metadata.uid?,
                ..Default::default()
            },
        ),
        Err(error) => {
            tracing::warn!(pod = %name, %namespace, %error, "Cannot read the runner's own Pod; task pods are not tied to it and outlive it if it is deleted.");
            None
        }
    }
}

/// What [`start_pools`] needs.
pub struct PoolsStart {
    /// The cluster.
    pub client: kube::Client,
    /// The runner's namespace (Lease, pool Deployments).
    pub namespace: String,
    /// The `kubernetes` settings (pod settings, Lease name and timings).
    pub settings: PodSettings,
    /// Where reports arrive.
    pub handoff: handoff::Handoff,
    /// Where workers reach this replica.
    pub runner_url: String,
    /// This replica's name in the Lease (its pod name).
    pub identity: String,
    /// The configured pools.
    pub configs: Vec<PoolConfig>,
    /// `repoUrl` → directory, handed to workers with each run.
    pub overrides: HashMap<String, PathBuf>,
    /// Ends the election (releasing the Lease) and the pool management.
    pub stop: CancellationToken,
}

/// Starts the election and the leader's pool management; the returned pools take runs while
/// this replica leads. The caller serves [`Pools::router`] at `runner_url`.
pub fn start_pools(start: PoolsStart) -> Result<Pools, String> {
    let settings = &start.settings;
    let image = settings.image.clone().ok_or(
        "kubernetes.image (the runtime image for task pods and pool workers) is not set in the runner's configuration",
    )?;
    let lease_name = settings
        .lease_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| election::DEFAULT_LEASE_NAME.into());
    // The chart names the Lease `<fullname>-leader`; pools are `<fullname>-pool-<hash>`.
    let prefix = match &settings.lease_name {
        Some(name) if !name.is_empty() => name.strip_suffix("-leader").unwrap_or(name).to_string(),
        _ => "steward".to_string(),
    };
    let elector = Elector::new(
        start.client.clone(),
        ElectionSettings {
            lease_name: lease_name.clone(),
            namespace: start.namespace.clone(),
            identity: start.identity,
            lease_duration: Duration::from_secs(settings.lease_duration_seconds.unwrap_or(15)),
        },
    );
    let leading = elector.subscribe();
    tokio::spawn(elector.run(start.stop.clone()));
    let pools = Pools::new(
        start.handoff,
        start.runner_url,
        start.overrides,
        &prefix,
        &start.configs,
        PoolTiming::from_settings(settings),
        leading.clone(),
    );
    let manager = deployments::PoolManager::new(
        start.client,
        start.namespace,
        settings.clone(),
        image,
        lease_name,
        pools.clone(),
    );
    tokio::spawn(manager.run(leading, start.stop));
    Ok(pools)
}

//! The leader's care of the pools: per pool a Secret with the workers' bearer token and a
//! Deployment of `steward worker` pods built like task pods ([`pod::pod_spec`]), pointed at the
//! leader's own endpoint. Every few seconds, while leading, it creates what is missing (a
//! deleted Deployment comes back), rewrites what differs from the configuration (replicas, the
//! pod template; a new leader's address and token roll the pods) and deletes the Deployments
//! of pools no longer configured.

use super::pod::{self, ContainerParts};
use super::pools::{PoolSpec, Pools, fnv1a};
use super::settings::PodSettings;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Label naming a pool's objects.
pub const POOL_LABEL: &str = "steward.dev/pool";
/// Label naming the group of runners (by their Lease) whose leader keeps the pool.
pub const GROUP_LABEL: &str = "steward.dev/pool-group";
/// Annotation with a hash of what the runner wrote, to notice configuration changes.
pub const SPEC_ANNOTATION: &str = "steward.dev/pool-spec";
/// The Secret key holding the workers' token.
pub const TOKEN_KEY: &str = "token";
/// How often the leader compares the pools with the cluster.
const SYNC: Duration = Duration::from_secs(2);

/// Labels of a pool's Deployment, Secret and pods.
pub fn pool_labels(
    settings: &PodSettings,
    pool: &PoolSpec,
    group: &str,
) -> BTreeMap<String, String> {
    let mut labels = settings.labels.clone();
    labels.insert("app.kubernetes.io/component".into(), "worker".into());
    labels.insert(POOL_LABEL.into(), pod::label_value(&pool.name));
    labels.insert(GROUP_LABEL.into(), pod::label_value(group));
    labels
}

/// The Secret holding the token workers lease with.
pub fn pool_secret(namespace: &str, pool: &PoolSpec, labels: &BTreeMap<String, String>) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": pool.name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {TOKEN_KEY: pool.token},
    }))
    .expect("a valid Secret")
}

/// The pool's Deployment: `replicas` workers leasing runs from `runner_url`.
pub fn pool_deployment(
    settings: &PodSettings,
    namespace: &str,
    image: &str,
    pool: &PoolSpec,
    runner_url: &str,
    labels: &BTreeMap<String, String>,
) -> Deployment {
    let mut args = vec![
        "worker".to_string(),
        "--runner".into(),
        runner_url.to_string(),
        "--pool".into(),
        pool.name.clone(),
        "--repo-url".into(),
        pool.config.repo_url.clone(),
        "--work-dir".into(),
        "/tmp/steward/work".into(),
    ];
    if let Some(git_ref) = &pool.config.git_ref {
        args.extend(["--ref".into(), git_ref.clone()]);
    }
    let parts = ContainerParts {
        name: "worker",
        args,
        env: vec![
            json!({"name": "STEWARD_POOL_TOKEN", "valueFrom": {"secretKeyRef": {"name": pool.name, "key": TOKEN_KEY}}}),
        ],
        mounts: vec![],
        volumes: vec![],
        restart_policy: "Always",
    };
    let spec = pod::pod_spec(settings, image, parts);
    let selector: BTreeMap<&str, String> = [
        (POOL_LABEL, pod::label_value(&pool.name)),
        ("app.kubernetes.io/component", "worker".into()),
    ]
    .into();
    let mut template_annotations = settings.annotations.clone();
    // The token is read at container start: a new one (a new leader) must restart the pods.
    template_annotations.insert(
        "steward.dev/pool-generation".into(),
        pool.generation.clone(),
    );
    let template =
        json!({"metadata": {"labels": labels, "annotations": template_annotations}, "spec": spec});
    let digest = format!(
        "{:016x}",
        fnv1a(&format!("{}|{}", pool.config.replicas, template))
    );
    let mut annotations = settings.annotations.clone();
    annotations.insert(SPEC_ANNOTATION.into(), digest);
    annotations.insert(
        "steward.dev/pool-repo-url".into(),
        pool.config.repo_url.clone(),
    );
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pool.name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": pool.config.replicas,
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }))
    .expect("a valid Deployment")
}

/// Keeps the pools' objects while this runner leads.
pub struct PoolManager {
    client: kube::Client,
    namespace: String,
    settings: PodSettings,
    image: String,
    group: String,
    pools: Pools,
}

impl PoolManager {
    /// A manager for `pools` in `namespace`; `group` (the Lease's name) tells this group's
    /// pools from others' in the same namespace.
    pub fn new(
        client: kube::Client,
        namespace: String,
        settings: PodSettings,
        image: String,
        group: String,
        pools: Pools,
    ) -> PoolManager {
        PoolManager {
            client,
            namespace,
            settings,
            image,
            group,
            pools,
        }
    }

    /// Reconciles every couple of seconds while `leading`, until `stop`.
    pub async fn run(self, mut leading: watch::Receiver<bool>, stop: CancellationToken) {
        loop {
            if *leading.borrow_and_update()
                && let Err(error) = self.reconcile().await
            {
                tracing::warn!(%error, "Cannot bring the warm pools in line with the configuration; trying again.");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = leading.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(SYNC) => {}
            }
        }
    }

    /// One pass: create, update or delete what differs.
    pub async fn reconcile(&self) -> Result<(), String> {
        let ns = &self.namespace;
        let deployments = Api::<Deployment>::namespaced(self.client.clone(), ns);
        let secrets = Api::<Secret>::namespaced(self.client.clone(), ns);
        let specs = self.pools.specs();
        for pool in &specs {
            let labels = pool_labels(&self.settings, pool, &self.group);
            let secret = pool_secret(ns, pool, &labels);
            ensure_secret(&secrets, &pool.name, secret)
                .await
                .map_err(|e| format!("pool Secret {ns}/{}: {}", pool.name, explain(&e)))?;
            let mut desired = pool_deployment(
                &self.settings,
                ns,
                &self.image,
                pool,
                self.pools.runner_url(),
                &labels,
            );
            let fail =
                |e: kube::Error| format!("pool Deployment {ns}/{}: {}", pool.name, explain(&e));
            match deployments.get_opt(&pool.name).await.map_err(fail)? {
                None => {
                    deployments
                        .create(&PostParams::default(), &desired)
                        .await
                        .map_err(fail)?;
                    tracing::info!(pool = %pool.name, repo = %pool.config.repo_url, replicas = pool.config.replicas, "Created a warm pool Deployment.");
                }
                Some(existing) => {
                    let wanted = desired
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(SPEC_ANNOTATION));
                    let have = existing
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(SPEC_ANNOTATION));
                    let replicas = existing.spec.as_ref().and_then(|s| s.replicas);
                    if wanted != have || replicas != Some(pool.config.replicas as i32) {
                        desired.metadata.resource_version =
                            existing.metadata.resource_version.clone();
                        deployments
                            .replace(&pool.name, &PostParams::default(), &desired)
                            .await
                            .map_err(fail)?;
                        tracing::info!(pool = %pool.name, replicas = pool.config.replicas, "Updated a warm pool Deployment.");
                    }
                }
            }
        }
        let selector = format!("{GROUP_LABEL}={}", pod::label_value(&self.group));
        let listed = deployments
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| format!("listing pool Deployments in {ns}: {}", explain(&e)))?;
        for stale in listed.items {
            let name = stale.metadata.name.unwrap_or_default();
            if specs.iter().any(|p| p.name == name) {
                continue;
            }
            for result in [
                deployments
                    .delete(&name, &DeleteParams::background())
                    .await
                    .map(drop),
                secrets
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(drop),
            ] {
                match result {
                    Ok(()) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => return Err(format!("removing pool {ns}/{name}: {}", explain(&e))),
                }
            }
            tracing::info!(pool = %name, "Removed a warm pool that is no longer configured.");
        }
        Ok(())
    }
}

/// Creates the Secret, or rewrites it when its token differs.
async fn ensure_secret(
    api: &Api<Secret>,
    name: &str,
    mut desired: Secret,
) -> Result<(), kube::Error> {
    let token = desired
        .string_data
        .as_ref()
        .and_then(|d| d.get(TOKEN_KEY))
        .cloned()
        .unwrap_or_default();
    match api.get_opt(name).await? {
        None => api.create(&PostParams::default(), &desired).await.map(drop),
        Some(existing) => {
            let current = existing
                .data
                .as_ref()
                .and_then(|d| d.get(TOKEN_KEY))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned());
            if current.as_deref() == Some(token.as_str()) {
                return Ok(());
            }
            desired.metadata.resource_version = existing.metadata.resource_version;
            api.replace(name, &PostParams::default(), &desired)
                .await
                .map(drop)
        }
    }
}

fn explain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

//! The `kubernetes` section of the runner's configuration file: how the pods of the Kubernetes
//! executor look. The Helm chart writes it from its values; every field is optional.

use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, PodSecurityContext, ResourceRequirements, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Settings of task pods. A key this version does not know is an error (with its line), so
/// a misspelt setting is not silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSettings {
    /// Namespace of task pods (default: the runner's).
    pub namespace: Option<String>,
    /// Service account of task pods.
    pub service_account_name: Option<String>,
    /// The runtime image (Python, Robot Framework, the RunWhen libraries, `steward`).
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: Option<String>,
    /// Names of pull secrets.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Run each task as a Job (one pod, no retries) instead of a bare Pod.
    #[serde(default)]
    pub run_as_job: bool,
    /// Requests and limits of the task container.
    pub resources: Option<ResourceRequirements>,
    /// Labels added to every task pod.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to every task pod.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Node selector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Affinity.
    pub affinity: Option<Affinity>,
    /// Pod security context (default: non-root, seccomp RuntimeDefault).
    pub pod_security_context: Option<PodSecurityContext>,
    /// Container security context (default: no privilege escalation, all capabilities
    /// dropped, non-root).
    pub security_context: Option<SecurityContext>,
    /// Extra environment of the task container (proxy and CA settings).
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Extra volumes of task pods (the chart's custom CA bundle).
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Where the task container mounts them.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// Init containers of task pods (the chart's CA bundle builder).
    #[serde(default)]
    pub init_containers: Vec<Container>,
    /// The URL task pods reach the runner at (default `http://$STEWARD_POD_IP:<handoff port>`).
    pub runner_url: Option<String>,
    /// Where the runner listens for task pods (default `0.0.0.0:8000`).
    pub handoff_listen: Option<std::net::SocketAddr>,
    /// How long a pod may stay Pending (unschedulable, image not pulled) before its run fails
    /// (default 300 s).
    pub pending_timeout_seconds: Option<u64>,
    /// How long an image may fail to pull before the run fails (default 60 s).
    pub image_pull_timeout_seconds: Option<u64>,
    /// Program that starts the launcher inside the image (default `steward`).
    pub launcher: Option<String>,
    /// The `coordination.k8s.io/v1` Lease the runner replicas elect the one managing warm
    /// pools with (default `steward-runner-leader`); without a `-leader` suffix stripped it
    /// also names the pools' Deployments (`<name>-pool-<hash>`; default prefix `steward`).
    pub lease_name: Option<String>,
    /// How long a leader's Lease holds without renewal (default 15 s; renewed every third).
    pub lease_duration_seconds: Option<u64>,
    /// How long a pool worker holds a run without renewing (default 30 s).
    pub pool_lease_ttl_seconds: Option<u64>,
    /// How many times a pool run is handed out before it fails (default 3).
    pub pool_attempts: Option<u32>,
    /// How long a pool run waits while no worker of its pool is in contact before it runs
    /// in a pod of its own instead (default 120 s).
    pub pool_fallback_seconds: Option<u64>,
}

impl PodSettings {
    /// Checks the values the API server or the runner would only refuse later, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(image) = &self.image
            && image.trim().is_empty()
        {
            return Err("kubernetes.image is empty; give the runtime image reference".into());
        }
        if let Some(policy) = &self.image_pull_policy
            && !matches!(policy.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            return Err(format!(
                "kubernetes.imagePullPolicy {policy:?} is not Always, IfNotPresent or Never"
            ));
        }
        if let Some(namespace) = &self.namespace
            && !is_dns_label(namespace)
        {
            return Err(format!(
                "kubernetes.namespace {namespace:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63)"
            ));
        }
        if let Some(url) = &self.runner_url {
            let parsed = url::Url::parse(url).map_err(|e| {
                format!(
                    "kubernetes.runnerUrl {url:?} is not a URL ({e}); e.g. http://10.0.0.5:8000"
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("kubernetes.runnerUrl {url:?} is not http(s)"));
            }
        }
        if let Some(resources) = &self.resources {
            for (part, map) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                for (name, quantity) in map.iter().flatten() {
                    if super::admission::parse_quantity(&quantity.0).is_none() {
                        return Err(format!(
                            "kubernetes.resources.{part}.{name} {:?} is not a Kubernetes quantity (e.g. 500m, 256Mi)",
                            quantity.0
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An RFC 1123 label, as namespace names must be.
fn is_dns_label(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 63
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

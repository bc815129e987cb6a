//! The objects one run becomes: a Secret with what the launcher needs (the run, the secret
//! values, the token it reports back with) and a Pod, or a Job around the same pod template.
//! [`pod_spec`] is shared with the pool workers' Deployments ([`super::deployments`]).

use super::settings::PodSettings;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use steward_model::run::RunSpec;
use steward_runtime::SecretValue;

/// Where the run Secret is mounted in the task container.
pub const RUN_MOUNT: &str = "/var/run/steward/run";
/// The Secret key holding [`Launch`].
pub const LAUNCH_KEY: &str = "launch.json";
/// Label on every object of a run.
pub const RUN_LABEL: &str = "steward.dev/run-id";
/// Label naming the runner that made the objects.
pub const RUNNER_LABEL: &str = "steward.dev/runner";
/// Seconds granted beyond the task timeout before Kubernetes stops the pod itself (the
/// runtime inside stops robot at the timeout and still has to report).
pub const DEADLINE_MARGIN_SECONDS: u64 = 120;

/// What the launcher in the pod reads from [`LAUNCH_KEY`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    /// The run.
    pub spec: RunSpec,
    /// Where to send artifacts and the result.
    pub report_to: String,
    /// Bearer token for the report (valid for this run only).
    pub token: String,
    /// Secret name → Secret key holding its value (task pods).
    pub secrets: BTreeMap<String, String>,
    /// Secret name → value, inline (pool workers, which get the launch over the in-cluster
    /// connection to the runner rather than from a Secret).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_values: BTreeMap<String, String>,
    /// `repoUrl` → directory, as the runner has them.
    #[serde(default)]
    pub collection_overrides: HashMap<String, PathBuf>,
}

/// The name of a run's objects: `steward-run-` and the run id.
pub fn object_name(spec: &RunSpec) -> String {
    format!("steward-run-{}", spec.run_id.simple())
}

/// A label value from free text: at most 63 characters of `[A-Za-z0-9._-]`, starting and
/// ending with an alphanumeric.
pub fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Labels of a run's objects.
pub fn labels(settings: &PodSettings, spec: &RunSpec, runner: &str) -> BTreeMap<String, String> {
    let mut labels = settings.labels.clone();
    labels.insert(RUN_LABEL.into(), spec.run_id.to_string());
    labels.insert(RUNNER_LABEL.into(), label_value(runner));
    labels.insert("steward.dev/workspace".into(), label_value(&spec.workspace));
    labels.insert("steward.dev/slx".into(), label_value(&spec.slx));
    labels.insert("steward.dev/kind".into(), spec.kind.as_str().into());
    labels
}

/// The run Secret: [`Launch`] plus one key per secret value.
pub fn run_secret(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    mut launch: Launch,
    values: &[SecretValue],
) -> Secret {
    let mut data = BTreeMap::new();
    for (index, value) in values.iter().enumerate() {
        let key = format!("secret-{index}");
        launch.secrets.insert(value.name.clone(), key.clone());
        data.insert(key, value.value.clone());
    }
    data.insert(
        LAUNCH_KEY.into(),
        serde_json::to_string(&launch).expect("serialisable"),
    );
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": object_name(&launch.spec), "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": data,
    }))
    .expect("a valid Secret")
}

/// What sets one kind of container the runner starts apart from another (a task pod's
/// launcher, a pool worker); everything else comes from [`PodSettings`] alike.
pub struct ContainerParts {
    /// Container name.
    pub name: &'static str,
    /// Arguments to the launcher program.
    pub args: Vec<String>,
    /// Environment before the settings' own `env`.
    pub env: Vec<Value>,
    /// Mounts besides `/tmp`.
    pub mounts: Vec<Value>,
    /// Volumes besides `tmp`.
    pub volumes: Vec<Value>,
    /// `Never` for task pods, `Always` for Deployment workers.
    pub restart_policy: &'static str,
}

/// A pod spec from the settings: security contexts (restricted unless set), resources, env,
/// extra volumes, mounts and init containers, pull secrets, service account, node selector,
/// tolerations and affinity.
pub fn pod_spec(settings: &PodSettings, image: &str, parts: ContainerParts) -> Value {
    let restricted_container = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    let restricted_pod = json!({
        "runAsNonRoot": true,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    // The image's own STEWARD_CACHE_DIR holds the prepared task venv; it is not overridden.
    let mut env = parts.env;
    env.extend(
        settings
            .env
            .iter()
            .map(|e| serde_json::to_value(e).expect("EnvVar")),
    );
    let launcher = settings
        .launcher
        .clone()
        .unwrap_or_else(|| "steward".into());
    let mut mounts = parts.mounts;
    mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    mounts.extend(
        settings
            .volume_mounts
            .iter()
            .map(|m| serde_json::to_value(m).expect("VolumeMount")),
    );
    let mut volumes = parts.volumes;
    volumes.push(json!({"name": "tmp", "emptyDir": {}}));
    volumes.extend(
        settings
            .volumes
            .iter()
            .map(|v| serde_json::to_value(v).expect("Volume")),
    );
    let mut pod = json!({
        "restartPolicy": parts.restart_policy,
        "terminationGracePeriodSeconds": 10,
        "securityContext": settings.pod_security_context.as_ref().map_or(restricted_pod, |c| serde_json::to_value(c).expect("valid")),
        "containers": [{
            "name": parts.name,
            "image": image,
            "command": [launcher],
            "args": parts.args,
            "env": env,
            "securityContext": settings.security_context.as_ref().map_or(restricted_container, |c| serde_json::to_value(c).expect("valid")),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    });
    let container = &mut pod["containers"][0];
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = policy.clone().into();
    }
    if let Some(resources) = &settings.resources {
        container["resources"] = serde_json::to_value(resources).expect("valid");
    }
    if let Some(account) = &settings.service_account_name {
        pod["serviceAccountName"] = account.clone().into();
    }
    if !settings.image_pull_secrets.is_empty() {
        pod["imagePullSecrets"] = settings
            .image_pull_secrets
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
    }
    if !settings.node_selector.is_empty() {
        pod["nodeSelector"] = serde_json::to_value(&settings.node_selector).expect("valid");
    }
    if !settings.tolerations.is_empty() {
        pod["tolerations"] = serde_json::to_value(&settings.tolerations).expect("valid");
    }
    if let Some(affinity) = &settings.affinity {
        pod["affinity"] = serde_json::to_value(affinity).expect("valid");
    }
    if !settings.init_containers.is_empty() {
        pod["initContainers"] = serde_json::to_value(&settings.init_containers).expect("valid");
    }
    pod
}

/// A task pod's spec: the launcher reading the run Secret, stopped by Kubernetes a margin
/// after the task's timeout.
fn task_pod_spec(settings: &PodSettings, spec: &RunSpec, image: &str) -> Value {
    let parts = ContainerParts {
        name: "task",
        args: vec![
            "task-pod".into(),
            "--launch".into(),
            format!("{RUN_MOUNT}/{LAUNCH_KEY}"),
            "--work-dir".into(),
            "/tmp/steward/work".into(),
        ],
        env: vec![json!({"name": "STEWARD_RUN_ID", "value": spec.run_id.to_string()})],
        mounts: vec![json!({"name": "run", "mountPath": RUN_MOUNT, "readOnly": true})],
        volumes: vec![
            json!({"name": "run", "secret": {"secretName": object_name(spec), "defaultMode": 0o400}}),
        ],
        restart_policy: "Never",
    };
    let mut pod = pod_spec(settings, image, parts);
    pod["activeDeadlineSeconds"] = (spec.timeout_seconds + DEADLINE_MARGIN_SECONDS).into();
    pod
}

/// The task Pod.
pub fn task_pod(
    settings: &PodSettings,
    spec: &RunSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    image: &str,
) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": object_name(spec), "namespace": namespace, "labels": labels, "annotations": settings.annotations},
        "spec": task_pod_spec(settings, spec, image),
    }))
    .expect("a valid Pod")
}

/// The task Job: one pod, never retried (a retry is the platform's decision), removed a
/// while after it ends if the runner could not remove it.
pub fn task_job(
    settings: &PodSettings,
    spec: &RunSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    image: &str,
) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": object_name(spec), "namespace": namespace, "labels": labels, "annotations": settings.annotations},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "activeDeadlineSeconds": spec.timeout_seconds + DEADLINE_MARGIN_SECONDS,
            "template": {
                "metadata": {"labels": labels, "annotations": settings.annotations},
                "spec": task_pod_spec(settings, spec, image),
            },
        },
    }))
    .expect("a valid Job")
}

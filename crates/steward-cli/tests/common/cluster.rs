//! A Kubernetes cluster for executor tests: the testkit's API server with its simulated node,
//! whose kubelet runs this build's `steward` for the runtime image, and runs to give it.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use steward_model::run::{RunKind, RunResult, RunSpec};
use steward_model::workspace::{CodeBundleRef, ConfigVar, SecretRef};
use steward_runner::executor::Executor;
use steward_runtime::SecretValue;
use steward_testkit::cache_dir;
use steward_testkit::kube::{ImageRun, KubeApiServer, SimulatedNode};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The runtime image task pods and pool workers use.
pub const RUNTIME_IMAGE: &str = "example.invalid/steward/runtime:test";
/// The namespace the runner works in.
pub const NAMESPACE: &str = "steward";

/// A started API server with a node that can pull [`RUNTIME_IMAGE`], and a client for it
/// (the directory holds its kubeconfig).
pub async fn simulated_cluster(
    objects: &[Value],
) -> (KubeApiServer, kube::Client, tempfile::TempDir) {
    let image = ImageRun::new()
        .program("steward", env!("CARGO_BIN_EXE_steward"))
        .env("STEWARD_CACHE_DIR", cache_dir().to_str().unwrap())
        .env("HOME", std::env::temp_dir().to_str().unwrap());
    let mut all =
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
    all.extend(objects.iter().cloned());
    let server = KubeApiServer::builder()
        .objects(all)
        .node(SimulatedNode::default().max_grace_period(Duration::from_secs(2)))
        .image(RUNTIME_IMAGE, image)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    (server, client, dir)
}

/// A runbook run of `repo`'s `robot` with these variables, task titles and secrets (each a
/// `file@` reference: the runner has resolved them already).
pub fn run_spec(
    repo: &str,
    robot: &str,
    config: &[(&str, &str)],
    tasks: &[&str],
    secrets: &[&str],
) -> RunSpec {
    RunSpec {
        run_id: Uuid::now_v7(),
        kind: RunKind::Runbook,
        workspace: "ws".into(),
        slx: "k8s-exec".into(),
        location: "cluster".into(),
        code_bundle: CodeBundleRef {
            repo_url: repo.into(),
            git_ref: "main".into(),
            path_to_robot: Some(robot.into()),
            path_to_yaml: None,
        },
        config: config
            .iter()
            .map(|(name, value)| ConfigVar {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        secrets: secrets
            .iter()
            .map(|name| SecretRef {
                name: name.to_string(),
                workspace_key: format!("file@/resolved/by/the/runner/{name}"),
            })
            .collect(),
        task_titles: tasks.iter().map(|t| t.to_string()).collect(),
        timeout_seconds: 300,
        session_id: Some(Uuid::now_v7()),
        interval_seconds: None,
    }
}

/// Runs `spec` to its end.
pub async fn execute(
    executor: &dyn Executor,
    spec: &RunSpec,
    secrets: &[SecretValue],
    out: &Path,
) -> RunResult {
    executor
        .execute(spec, secrets, out, &CancellationToken::new())
        .await
}

//! Objects and clients shared by the Kubernetes test-server tests.

// Each test binary uses only some of these.
#![allow(dead_code)]

use serde_json::{Value, json};
use steward_testkit::kube::{KubeApiServer, KubeContext, write_kubeconfig};

/// A running pod manifest.
pub fn pod(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}})
}

/// A CRD of group example.com served at v1 (with a status subresource) and v1beta1.
pub fn widget_crd(scope: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {"group": "example.com", "scope": scope,
                 "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "shortNames": [&plural[..2]]},
                 "versions": [
                     {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                     {"name": "v1beta1", "served": true, "storage": false,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

/// A kube-rs client for `context` of a kubeconfig holding `contexts`, read from a file as
/// a user's would be.
pub async fn client_for(contexts: &[KubeContext], context: &str) -> Result<kube::Client, String> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    write_kubeconfig(&path, contexts).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).map_err(|e| e.to_string())?;
    let options = kube::config::KubeConfigOptions {
        context: Some(context.into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// A kube-rs client on `server` with bearer token `token`.
pub async fn client(server: &KubeApiServer, token: &str) -> kube::Client {
    client_for(&[server.context("test", token)], "test")
        .await
        .unwrap()
}

/// The code, reason and message of the API error `result` must be.
pub fn api_code(result: Result<impl std::fmt::Debug, kube::Error>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The image the simulated-node tests run: host programs (`sh`, `sleep`) on PATH.
pub const TOOLS_IMAGE: &str = "example.invalid/steward/tools:1";

/// A server with a simulated node (grace periods capped at 2 s) and [`TOOLS_IMAGE`] registered.
pub fn node_server() -> KubeApiServer {
    KubeApiServer::builder()
        .node(
            steward_testkit::kube::SimulatedNode::default()
                .max_grace_period(std::time::Duration::from_secs(2)),
        )
        .image(
            TOOLS_IMAGE,
            steward_testkit::kube::ImageRun::new().env("FROM_IMAGE", "tools"),
        )
        .start()
}

/// A pod running `sh -c script` (with `args` after it) once, restartPolicy Never; `extra`
/// is merged into its spec.
pub fn sh_pod(name: &str, script: &str, args: &[&str], extra: Value) -> Value {
    let mut command = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    command.extend(args.iter().map(|a| a.to_string()));
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "main", "image": TOOLS_IMAGE, "command": command}]},
    });
    merge_into(&mut pod["spec"], extra);
    pod
}

/// JSON merge of `patch` into `target` (objects merged key by key, anything else replaced).
pub fn merge_into(target: &mut Value, patch: Value) {
    match (target.as_object_mut(), patch) {
        (Some(t), Value::Object(p)) => {
            for (k, v) in p {
                merge_into(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (_, p) => *target = p,
    }
}

/// The stored pod `default/name`, if any.
pub fn stored_pod(server: &KubeApiServer, name: &str) -> Option<Value> {
    server.get("v1", "pods", Some("default"), name)
}

/// Waits until pod `default/name` satisfies `check`, and returns it.
pub fn wait_pod(
    server: &KubeApiServer,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    steward_testkit::wait_until(
        &format!("pod {name}: {what}"),
        std::time::Duration::from_secs(20),
        || stored_pod(server, name).filter(&check),
    )
}

/// Waits until pod `default/name` is in `phase`.
pub fn wait_phase(server: &KubeApiServer, name: &str, phase: &str) -> Value {
    wait_pod(server, name, &format!("phase {phase}"), |p| {
        p["status"]["phase"] == phase
    })
}

/// Whether process `pid` still exists (a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

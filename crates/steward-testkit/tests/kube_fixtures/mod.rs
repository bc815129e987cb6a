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

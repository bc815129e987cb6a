//! Kubeconfig files for tests: one cluster, user (a bearer token) and context per entry, so a
//! test can mix contexts on the in-memory server with contexts on a port nothing listens on.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use std::path::Path;

/// One context of a kubeconfig: where the API server is and the bearer token to send.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeContext {
    /// The context name; its cluster and user get the same name.
    pub name: String,
    /// The API server URL.
    pub server: String,
    /// The bearer token of the context's user.
    pub token: String,
    /// The context's default namespace, if any.
    pub namespace: Option<String>,
    /// The CA certificate (PEM) to trust for an `https` server.
    pub certificate_authority: Option<String>,
}

impl KubeContext {
    /// A context on `server` authenticating with `token`.
    pub fn new(name: &str, server: &str, token: &str) -> Self {
        KubeContext {
            name: name.into(),
            server: server.into(),
            token: token.into(),
            namespace: None,
            certificate_authority: None,
        }
    }

    /// A context whose server refuses connections (port 1 on loopback, where nothing listens).
    pub fn unreachable(name: &str) -> Self {
        KubeContext::new(name, "http://127.0.0.1:1", "unreachable-token")
    }

    /// Sets the context's default namespace.
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

/// The kubeconfig text for `contexts`; the first one is the current context.
pub fn kubeconfig_yaml(contexts: &[KubeContext]) -> String {
    let clusters: Vec<_> = contexts
        .iter()
        .map(|c| {
            let mut cluster = json!({"server": c.server});
            if let Some(pem) = &c.certificate_authority {
                cluster["certificate-authority-data"] = STANDARD.encode(pem).into();
            }
            json!({"name": c.name, "cluster": cluster})
        })
        .collect();
    let users: Vec<_> = contexts
        .iter()
        .map(|c| json!({"name": c.name, "user": {"token": c.token}}))
        .collect();
    let entries: Vec<_> = contexts
        .iter()
        .map(|c| {
            let mut context = json!({"cluster": c.name, "user": c.name});
            if let Some(ns) = &c.namespace {
                context["namespace"] = ns.clone().into();
            }
            json!({"name": c.name, "context": context})
        })
        .collect();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": contexts.first().map(|c| c.name.clone()).unwrap_or_default(),
        "clusters": clusters,
        "users": users,
        "contexts": entries,
        "preferences": {},
    });
    serde_yaml::to_string(&config).expect("a JSON value always renders as YAML")
}

/// Writes [`kubeconfig_yaml`] to `path`.
pub fn write_kubeconfig(path: &Path, contexts: &[KubeContext]) -> std::io::Result<()> {
    std::fs::write(path, kubeconfig_yaml(contexts))
}

//! `k8s:file@` and `k8s:env@` keys: a key of a Secret or ConfigMap read through the Kubernetes
//! API with the runner's own identity (in-cluster service account, or `$KUBECONFIG`).

use super::key::{KubeKey, KubeObject};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use std::collections::BTreeMap;

/// A client made on first use, so runners that never read a Kubernetes secret need no cluster.
pub(super) struct KubeSecrets {
    client: tokio::sync::OnceCell<(kube::Client, String)>,
    namespace: Option<String>,
}

impl KubeSecrets {
    /// `namespace`: the runner's own (`STEWARD_NAMESPACE`); `None` takes the client's default.
    pub(super) fn new(namespace: Option<String>) -> KubeSecrets {
        KubeSecrets {
            client: tokio::sync::OnceCell::new(),
            namespace,
        }
    }

    async fn client(&self) -> Result<&(kube::Client, String), String> {
        self.client
            .get_or_try_init(|| async {
                let client = kube::Client::try_default().await.map_err(|e| {
                    format!(
                        "no Kubernetes API to read from (in-cluster service account or $KUBECONFIG): {e}"
                    )
                })?;
                let namespace = self
                    .namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string());
                Ok((client, namespace))
            })
            .await
    }

    pub(super) async fn read(&self, key: &KubeKey) -> Result<String, String> {
        let (client, own) = self.client().await?;
        let namespace = key.namespace.as_deref().unwrap_or(own);
        let what = format!("{} {namespace}/{}", key.object, key.name);
        let data: BTreeMap<String, Vec<u8>> = match key.object {
            KubeObject::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let secret = api
                    .get(&key.name)
                    .await
                    .map_err(|e| explain(&what, "secrets", namespace, e))?;
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()
            }
            KubeObject::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                let map = api
                    .get(&key.name)
                    .await
                    .map_err(|e| explain(&what, "configmaps", namespace, e))?;
                let mut data: BTreeMap<String, Vec<u8>> = map
                    .binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                data.extend(
                    map.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                );
                data
            }
        };
        let Some(bytes) = data.get(&key.key) else {
            let keys: Vec<&str> = data.keys().map(String::as_str).collect();
            return Err(format!(
                "{what} has no key {} (keys: {})",
                key.key,
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ));
        };
        String::from_utf8(bytes.clone())
            .map_err(|_| format!("{what} key {} is not UTF-8 text", key.key))
    }
}

fn explain(what: &str, resource: &str, namespace: &str, error: kube::Error) -> String {
    match &error {
        kube::Error::Api(status) if status.code == 404 => format!("{what} does not exist"),
        kube::Error::Api(status) if status.code == 403 => format!(
            "the runner may not read {what} ({}); grant its service account `get` on {resource} in namespace {namespace}",
            status.message
        ),
        _ => format!("cannot read {what}: {error}"),
    }
}

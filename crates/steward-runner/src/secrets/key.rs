//! The `workspaceKey` syntax of `secretsProvided`, as RunWhen's keyword library reads it:
//! `<provider>@<rest>`, or a bare key.

use std::fmt;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKey {
    /// `file@/abs/path`: a file on the runner's host or pod.
    File(String),
    /// `env@NAME`: an environment variable of the runner.
    Env(String),
    /// `k8s:file@…` / `k8s:env@…`: a key of a Secret or ConfigMap, read through the API.
    Kube(KubeKey),
    /// `<name>@<path>:<field>`: a named provider from the runner's configuration.
    Custom {
        /// Provider name.
        provider: String,
        /// Provider-specific path (for Vault, the KV v2 API path such as `dev/data/app`).
        path: String,
        /// Field inside the secret.
        field: Option<String>,
    },
    /// No provider: a file of that name in the runner's secrets directory.
    Bare(String),
}

/// Which kind of Kubernetes object holds a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeObject {
    /// `secret/…`
    Secret,
    /// `configmap/…`
    ConfigMap,
}

impl fmt::Display for KubeObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KubeObject::Secret => "secret",
            KubeObject::ConfigMap => "configmap",
        })
    }
}

/// `k8s:file@[namespace/]secret|configmap/<name>:<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeKey {
    /// Explicit namespace; `None` is the runner's own.
    pub namespace: Option<String>,
    /// Secret or ConfigMap.
    pub object: KubeObject,
    /// Object name.
    pub name: String,
    /// Key inside `data`.
    pub key: String,
}

impl SecretKey {
    /// Parses a `workspaceKey`; the error says what the accepted forms are.
    pub fn parse(raw: &str) -> Result<SecretKey, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("workspaceKey is empty".into());
        }
        let Some((provider, rest)) = raw.split_once('@') else {
            return Ok(SecretKey::Bare(raw.to_string()));
        };
        match provider {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(
                        "file@ needs an absolute path, as in file@/etc/steward/token".into(),
                    );
                }
                Ok(SecretKey::File(rest.to_string()))
            }
            "env" if rest.is_empty() => {
                Err("env@ needs a variable name, as in env@API_TOKEN".into())
            }
            "env" => Ok(SecretKey::Env(rest.to_string())),
            "k8s:file" | "k8s:env" => KubeKey::parse(rest).map(SecretKey::Kube),
            "" => Err("the provider before @ is empty".into()),
            provider if provider.starts_with("k8s:") => Err(format!(
                "unknown Kubernetes provider {provider}; use k8s:file@ or k8s:env@"
            )),
            provider => {
                let (path, field) = match rest.rsplit_once(':') {
                    Some((path, field)) => (path, Some(field.to_string())),
                    None => (rest, None),
                };
                let path = path.trim_start_matches('/');
                if path.is_empty() {
                    return Err(format!(
                        "{provider}@ needs a path, as in {provider}@/secret/data/app:password"
                    ));
                }
                Ok(SecretKey::Custom {
                    provider: provider.to_string(),
                    path: path.to_string(),
                    field: field.filter(|f| !f.is_empty()),
                })
            }
        }
    }
}

impl SecretKey {
    /// The key in one spelling per secret: file paths normalised (`//`, `.` and `..`
    /// resolved as text; symbolic links are not followed), provider paths without their
    /// leading `/`, Kubernetes kinds in lower case. What `blockedSecrets` entries are also
    /// compared with.
    pub fn canonical(&self) -> String {
        match self {
            SecretKey::File(path) => format!("file@{}", normalise_path(path)),
            SecretKey::Env(name) => format!("env@{name}"),
            SecretKey::Kube(k) => format!(
                "k8s:file@{}{}/{}:{}",
                k.namespace
                    .as_deref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                k.object,
                k.name,
                k.key
            ),
            SecretKey::Custom {
                provider,
                path,
                field,
            } => match field {
                Some(field) => format!("{provider}@{path}:{field}"),
                None => format!("{provider}@{path}"),
            },
            SecretKey::Bare(name) => name.clone(),
        }
    }
}

/// `/a//b/./c/../d` → `/a/b/d`.
fn normalise_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

impl KubeKey {
    fn parse(rest: &str) -> Result<KubeKey, String> {
        const FORM: &str = "use k8s:file@[namespace/]secret/<name>:<key> or k8s:file@[namespace/]configmap/<name>:<key>";
        let Some((path, key)) = rest.split_once(':') else {
            return Err(format!("no :<key> after the object name; {FORM}"));
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (namespace, kind, name) = match parts.as_slice() {
            [kind, name] => (None, *kind, *name),
            [namespace, kind, name] => (Some(namespace.to_string()), *kind, *name),
            _ => return Err(format!("cannot read object path {path:?}; {FORM}")),
        };
        let object = match kind.to_ascii_lowercase().as_str() {
            "secret" | "secrets" => KubeObject::Secret,
            "configmap" | "configmaps" | "cm" => KubeObject::ConfigMap,
            other => {
                return Err(format!(
                    "object kind {other:?} is neither secret nor configmap; {FORM}"
                ));
            }
        };
        if name.is_empty() || key.is_empty() || namespace.as_deref() == Some("") {
            return Err(format!("empty name, namespace or key; {FORM}"));
        }
        Ok(KubeKey {
            namespace,
            object,
            name: name.to_string(),
            key: key.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube(ns: Option<&str>, object: KubeObject, name: &str, key: &str) -> SecretKey {
        SecretKey::Kube(KubeKey {
            namespace: ns.map(str::to_string),
            object,
            name: name.into(),
            key: key.into(),
        })
    }

    #[test]
    fn every_upstream_form_parses() {
        let cases = [
            ("file@/etc/token", SecretKey::File("/etc/token".into())),
            ("env@API_TOKEN", SecretKey::Env("API_TOKEN".into())),
            ("token", SecretKey::Bare("token".into())),
            (
                "k8s:file@secret/kubeconfig:kubeconfig",
                kube(None, KubeObject::Secret, "kubeconfig", "kubeconfig"),
            ),
            (
                "k8s:env@shop/configmap/settings:url",
                kube(Some("shop"), KubeObject::ConfigMap, "settings", "url"),
            ),
            (
                "corp-vault@/dev/data/app:password",
                SecretKey::Custom {
                    provider: "corp-vault".into(),
                    path: "dev/data/app".into(),
                    field: Some("password".into()),
                },
            ),
            (
                "corp-vault@kv/data/app",
                SecretKey::Custom {
                    provider: "corp-vault".into(),
                    path: "kv/data/app".into(),
                    field: None,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(SecretKey::parse(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn canonical_forms() {
        for (raw, canonical) in [
            ("file@//etc/./shadow", "file@/etc/shadow"),
            ("file@/tmp/../etc/shadow", "file@/etc/shadow"),
            ("corp@/secret/data/prod/db:x", "corp@secret/data/prod/db:x"),
            (
                "k8s:env@kube-system/Secret/a:b",
                "k8s:file@kube-system/secret/a:b",
            ),
        ] {
            assert_eq!(
                SecretKey::parse(raw).unwrap().canonical(),
                canonical,
                "{raw}"
            );
        }
    }

    #[test]
    fn malformed_keys_say_what_is_accepted() {
        for (raw, needle) in [
            ("", "empty"),
            ("file@relative", "absolute"),
            ("env@", "variable name"),
            ("k8s:file@secret/kubeconfig", ":<key>"),
            ("k8s:file@a/b/c/d:k", "object path"),
            ("k8s:file@pod/x:k", "neither secret nor configmap"),
            ("k8s:file@secret/:k", "empty name"),
            ("k8s:vault@x", "k8s:file@ or k8s:env@"),
            ("@x", "provider before @"),
            ("corp@:field", "needs a path"),
        ] {
            let err = SecretKey::parse(raw).unwrap_err();
            assert!(err.contains(needle), "{raw}: {err}");
        }
    }
}

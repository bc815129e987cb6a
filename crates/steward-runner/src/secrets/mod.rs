//! Resolving `secretsProvided` references to values, on the runner, at execution time. The
//! platform only ever holds the references; values exist in the runner's memory and in the
//! run's private files, and are scrubbed from everything the run reports.
//!
//! | `workspaceKey` | value |
//! |---|---|
//! | `file@/abs/path` | the file's content |
//! | `env@NAME` | the runner's environment variable `NAME` |
//! | `k8s:file@[ns/]secret/<name>:<key>` (or `configmap/`, or `k8s:env@…`) | that key, read through the Kubernetes API |
//! | `<provider>@<path>:<field>` | a named provider from the runner's configuration (Vault KV v2) |
//! | `name` (no `@`) | the file `<secrets dir>/name` |
//!
//! Keys matching `blockedSecrets` are refused before any provider is asked.

pub mod config;
pub mod key;
mod kubernetes;
mod vault;

use config::{SecretsConfig, is_blocked};
use key::SecretKey;
use kubernetes::KubeSecrets;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steward_model::workspace::SecretRef;
use steward_runtime::SecretValue;
use vault::{Credentials, Vault};

/// How long resolving one run's secrets may take before the run fails.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Resolves references with the providers this runner has.
#[derive(Clone, Default)]
pub struct SecretResolver {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    secrets_dir: Option<PathBuf>,
    blocked: Vec<String>,
    vaults: HashMap<String, Vault>,
    kube: Option<KubeSecrets>,
    cache_ttl: Duration,
    /// Values read from remote providers, by `workspaceKey`.
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

/// Why a reference could not be resolved: names the secret, its key and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("secret {name} ({key}): {why}")]
pub struct SecretError {
    /// The robot-side name.
    pub name: String,
    /// The `workspaceKey`.
    pub key: String,
    /// What went wrong and what to do.
    pub why: String,
}

impl SecretResolver {
    /// A resolver with the runner's secrets directory, configuration and own namespace
    /// (for `k8s:` keys without one). A provider whose settings are wrong is an error here, at
    /// start, rather than at a run.
    pub fn new(
        secrets_dir: Option<PathBuf>,
        config: &SecretsConfig,
        namespace: Option<String>,
    ) -> Result<SecretResolver, String> {
        let mut vaults = HashMap::new();
        for (name, provider) in &config.secret_providers {
            let settings = provider
                .check(name)
                .map_err(|why| format!("secretProviders.{name}: {why}"))?;
            vaults.insert(name.clone(), Vault::new(name, settings.clone()));
        }
        // The keyword library's environment form works too, for providers not in the file.
        for (name, settings) in config::providers_from_env(std::env::vars()) {
            if vaults.keys().any(|k| k.eq_ignore_ascii_case(&name)) {
                tracing::warn!(provider = %name, "Secret provider {name} is configured in the file and in SECRET_PROVIDER_* variables; the file's settings are used.");
                continue;
            }
            vaults.insert(name.clone(), Vault::new(&name, settings?));
        }
        Ok(SecretResolver {
            inner: Arc::new(Inner {
                secrets_dir,
                blocked: config.blocked_secrets.clone(),
                vaults,
                kube: Some(KubeSecrets::new(namespace)),
                cache_ttl: Duration::from_secs(config.secret_cache_seconds.unwrap_or(60)),
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Only the local providers (file, env, secrets directory).
    pub fn local(secrets_dir: Option<PathBuf>) -> SecretResolver {
        SecretResolver {
            inner: Arc::new(Inner {
                secrets_dir,
                ..Inner::default()
            }),
        }
    }

    /// Names of the configured custom providers.
    pub fn providers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.vaults.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Resolves every reference; the first failure names the secret, the reference and what
    /// to do.
    pub async fn resolve(&self, refs: &[SecretRef]) -> Result<Vec<SecretValue>, SecretError> {
        let all = async {
            let mut values = Vec::with_capacity(refs.len());
            for secret in refs {
                values.push(self.resolve_one(secret).await?);
            }
            Ok(values)
        };
        match tokio::time::timeout(RESOLVE_TIMEOUT, all).await {
            Ok(result) => result,
            Err(_) => Err(SecretError {
                name: refs.first().map(|r| r.name.clone()).unwrap_or_default(),
                key: String::new(),
                why: format!(
                    "resolving the run's secrets took longer than {}s; check that the providers are reachable",
                    RESOLVE_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    async fn resolve_one(&self, secret: &SecretRef) -> Result<SecretValue, SecretError> {
        let key = secret.workspace_key.trim();
        let fail = |why: String| SecretError {
            name: secret.name.clone(),
            key: key.to_string(),
            why,
        };
        let parsed = SecretKey::parse(key);
        // Compared as written and in canonical form, so `file@//etc/x` or a Vault path with or
        // without its leading slash cannot slip past an entry.
        let canonical = parsed.as_ref().map(SecretKey::canonical).ok();
        if let Some(pattern) =
            self.inner.blocked.iter().find(|p| {
                is_blocked(p, key) || canonical.as_deref().is_some_and(|c| is_blocked(p, c))
            })
        {
            return Err(fail(format!(
                "refused by this runner's blockedSecrets entry {pattern:?}"
            )));
        }
        let parsed = parsed.map_err(&fail)?;
        let value = match &parsed {
            SecretKey::Custom {
                provider,
                path,
                field,
            } => {
                let Some(vault) = self.inner.vaults.get(provider) else {
                    let known = self.providers();
                    return Err(fail(format!(
                        "provider {provider} is not configured on this runner (configured: {}); add it under secretProviders in the runner's configuration, or use file@/path, env@NAME, k8s:file@… or a key in the secrets directory",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                };
                self.cached(key, || {
                    vault.read(path, field.as_deref(), || self.credentials(vault))
                })
                .await
                .map_err(fail)?
            }
            SecretKey::Kube(k) => {
                let Some(kube) = &self.inner.kube else {
                    return Err(fail("this runner reads no Kubernetes secrets".into()));
                };
                self.cached(key, || kube.read(k)).await.map_err(fail)?
            }
            _ => self.read_local(&parsed).await.map_err(fail)?,
        };
        Ok(SecretValue {
            name: secret.name.clone(),
            value,
        })
    }

    /// Values from file@, env@, k8s: and the secrets directory (what credentials may use).
    async fn read_local(&self, key: &SecretKey) -> Result<String, String> {
        match key {
            SecretKey::File(path) => {
                let path = Path::new(path);
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            SecretKey::Env(name) => std::env::var(name)
                .map_err(|_| format!("the runner has no environment variable {name}")),
            SecretKey::Kube(k) => match &self.inner.kube {
                Some(kube) => kube.read(k).await,
                None => Err("this runner reads no Kubernetes secrets".into()),
            },
            SecretKey::Bare(name) => {
                let Some(dir) = &self.inner.secrets_dir else {
                    return Err(
                        "this runner has no secrets directory (steward runner --secrets-dir DIR)"
                            .into(),
                    );
                };
                if name.contains('/') || name.starts_with('.') {
                    return Err("a secret key is a file name inside the secrets directory".into());
                }
                let path = dir.join(name);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            SecretKey::Custom { provider, .. } => Err(format!(
                "provider {provider} cannot hold another provider's credentials"
            )),
        }
    }

    /// A Vault provider's credentials: each is a literal, or a reference to a local or
    /// Kubernetes secret (`env@`, `file@`, `k8s:file@`, `k8s:env@`).
    async fn credentials(&self, vault: &Vault) -> Result<Credentials, String> {
        let config = vault.config();
        let read = |raw: Option<String>, field: &'static str| async move {
            let Some(raw) = raw else { return Ok(None) };
            match SecretKey::parse(&raw) {
                Ok(key @ (SecretKey::File(_) | SecretKey::Env(_) | SecretKey::Kube(_))) => self
                    .read_local(&key)
                    .await
                    .map(|v| Some(v.trim().to_string()))
                    .map_err(|e| format!("{field} ({raw}): {e}")),
                _ => Ok(Some(raw)),
            }
        };
        Ok(Credentials {
            role_id: read(config.role_id.clone(), "roleID").await?,
            secret_id: read(config.secret_id.clone(), "secretID").await?,
            token: read(config.token.clone(), "token").await?,
        })
    }

    async fn cached<F, Fut>(&self, key: &str, fetch: F) -> Result<String, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, String>>,
    {
        let ttl = self.inner.cache_ttl;
        if !ttl.is_zero()
            && let Some((at, value)) = self.inner.cache.lock().expect("poisoned").get(key)
            && at.elapsed() < ttl
        {
            return Ok(value.clone());
        }
        let value = fetch().await?;
        if !ttl.is_zero() {
            self.inner
                .cache
                .lock()
                .expect("poisoned")
                .insert(key.to_string(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, key: &str) -> SecretRef {
        SecretRef {
            name: name.into(),
            workspace_key: key.into(),
        }
    }

    #[tokio::test]
    async fn file_env_and_directory_keys_resolve() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "from-dir").unwrap();
        let file = dir.path().join("kubeconfig");
        std::fs::write(&file, "apiVersion: v1\n").unwrap();
        // SAFETY: tests in this module are the only users of this variable.
        unsafe { std::env::set_var("STEWARD_TEST_SECRET_VALUE", "from-env") };
        let resolver = SecretResolver::local(Some(dir.path().to_path_buf()));
        let values = resolver
            .resolve(&[
                r("kubeconfig", &format!("file@{}", file.display())),
                r("a", "env@STEWARD_TEST_SECRET_VALUE"),
                r("b", "token"),
            ])
            .await
            .unwrap();
        let got: Vec<(&str, &str)> = values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("kubeconfig", "apiVersion: v1\n"),
                ("a", "from-env"),
                ("b", "from-dir")
            ]
        );
    }

    async fn fails(resolver: &SecretResolver, name: &str, key: &str) -> String {
        resolver
            .resolve(&[r(name, key)])
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn failures_name_the_secret_and_what_to_do() {
        let resolver = SecretResolver::local(None);
        let err = fails(&resolver, "kc", "corp-vault@kv/data/kc:kubeconfig").await;
        assert!(
            err.starts_with("secret kc (corp-vault@kv/data/kc:kubeconfig)"),
            "{err}"
        );
        assert!(err.contains("secretProviders"), "{err}");
        let err = fails(&resolver, "kc", "k8s:file@secret/kubeconfig:kubeconfig").await;
        assert!(err.contains("no Kubernetes secrets"), "{err}");
        assert!(
            fails(&resolver, "t", "token")
                .await
                .contains("--secrets-dir")
        );
        assert!(
            fails(&resolver, "t", "file@relative")
                .await
                .contains("absolute")
        );
        let err = fails(&resolver, "t", "file@/nonexistent/x").await;
        assert!(err.contains("/nonexistent/x"), "{err}");
        let resolver = SecretResolver::local(Some("/tmp".into()));
        assert!(
            fails(&resolver, "t", "../etc/passwd")
                .await
                .contains("file name")
        );
    }

    #[tokio::test]
    async fn blocked_keys_are_refused_before_any_provider_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "value").unwrap();
        let config = SecretsConfig {
            blocked_secrets: vec!["k8s:file@".into(), "token".into()],
            ..SecretsConfig::default()
        };
        let resolver = SecretResolver::new(Some(dir.path().into()), &config, None).unwrap();
        let err = fails(&resolver, "t", "token").await;
        assert!(err.contains("blockedSecrets entry \"token\""), "{err}");
        // Refused without reaching for a cluster (there is none here).
        let err = fails(&resolver, "kc", "k8s:file@secret/kc:kc").await;
        assert!(err.contains("blockedSecrets"), "{err}");
    }

    #[test]
    fn bad_provider_settings_fail_at_start() {
        let parse = |yaml: &str| {
            let config: SecretsConfig = serde_yaml::from_str(yaml).unwrap();
            SecretResolver::new(None, &config, None)
                .err()
                .unwrap_or_default()
        };
        assert!(parse("secretProviders: {v: {type: aws}}").contains("type \"aws\""));
        assert!(parse("secretProviders: {v: {type: vault}}").contains("vaultSecretProvider"));
        assert!(
            parse("secretProviders: {v: {type: vault, vault: {addr: 'not a url', token: t}}}")
                .contains("not a URL")
        );
        assert!(
            parse("secretProviders: {v: {type: vault, vault: {addr: 'http://x'}}}")
                .contains("no credentials")
        );
        assert!(
            parse("secretProviders: {file: {type: vault, vault: {addr: 'http://x', token: t}}}")
                .contains("built-in")
        );
    }
}

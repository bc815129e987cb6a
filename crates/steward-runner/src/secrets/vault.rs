//! A named HashiCorp Vault provider: `<name>@<kv2 path>:<field>` reads `data.data[field]` of a
//! KV version 2 secret, logged in by AppRole, Kubernetes auth or a token. The token is kept
//! until its lease runs out and renewed by a new login when Vault refuses it.

use super::config::{VaultAuthMethod, VaultConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

/// How long a request to Vault may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Where Kubernetes mounts the pod's service account token.
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Credentials after their references were resolved.
pub(super) struct Credentials {
    pub role_id: Option<String>,
    pub secret_id: Option<String>,
    pub token: Option<String>,
}

/// One configured Vault.
pub(super) struct Vault {
    name: String,
    config: VaultConfig,
    session: tokio::sync::Mutex<Option<Session>>,
}

struct Session {
    client: Arc<VaultClient>,
    /// When to log in again; `None`: the token does not expire.
    renew_at: Option<Instant>,
}

impl Vault {
    /// A provider whose settings passed [`VaultConfig::check`].
    pub(super) fn new(name: &str, config: VaultConfig) -> Vault {
        Vault {
            name: name.to_string(),
            config,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// Which credential fields hold secret references to resolve before a login.
    pub(super) fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Reads `field` of the secret at `path` (a KV v2 API path such as `kv/data/app`). `login`
    /// resolves the credentials when a new token is needed.
    pub(super) async fn read<F, Fut>(
        &self,
        path: &str,
        field: Option<&str>,
        login: F,
    ) -> Result<String, String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Credentials, String>>,
    {
        let Some(field) = field else {
            return Err(format!(
                "a {name} key names a field: {name}@{path}:<field>",
                name = self.name
            ));
        };
        let (mount, secret) = split_kv2_path(path);
        for attempt in 0..2 {
            let client = self.client(&login, attempt > 0).await?;
            match vaultrs::kv2::read::<HashMap<String, Value>>(client.as_ref(), mount, secret).await
            {
                Ok(data) => {
                    return match data.get(field) {
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(other) => Ok(other.to_string()),
                        None => {
                            let mut fields: Vec<&str> = data.keys().map(String::as_str).collect();
                            fields.sort_unstable();
                            Err(format!(
                                "Vault {} has no field {field} at {path} (fields: {})",
                                self.name,
                                fields.join(", ")
                            ))
                        }
                    };
                }
                // An expired or revoked token: log in once more.
                Err(ClientError::APIError { code: 403, .. }) if attempt == 0 => continue,
                Err(e) => return Err(self.describe(&format!("reading {path}"), e)),
            }
        }
        unreachable!("the second attempt returns")
    }

    async fn client<F, Fut>(&self, login: &F, fresh: bool) -> Result<Arc<VaultClient>, String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Credentials, String>>,
    {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref()
            && !fresh
            && current.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(current.client.clone());
        }
        let credentials = login().await?;
        let anonymous = self.build_client(String::new())?;
        let mount = |default: &str| {
            self.config
                .auth_mount_path
                .clone()
                .unwrap_or_else(|| default.to_string())
        };
        let method = self.config.method()?;
        let (token, lease) = match method {
            VaultAuthMethod::Token => (
                credentials
                    .token
                    .ok_or_else(|| format!("Vault {}: token is not set", self.name))?,
                0,
            ),
            VaultAuthMethod::Approle => {
                let role_id = credentials
                    .role_id
                    .ok_or_else(|| format!("Vault {}: roleID is not set", self.name))?;
                let secret_id = credentials.secret_id.unwrap_or_default();
                let auth = vaultrs::auth::approle::login(
                    &anonymous,
                    &mount("approle"),
                    &role_id,
                    &secret_id,
                )
                .await
                .map_err(|e| self.describe("AppRole login", e))?;
                (auth.client_token, auth.lease_duration)
            }
            VaultAuthMethod::Kubernetes => {
                let role = self.config.role.clone().ok_or_else(|| {
                    format!("Vault {}: role is not set for Kubernetes auth", self.name)
                })?;
                let path = self
                    .config
                    .service_account_token_path
                    .clone()
                    .unwrap_or_else(|| SERVICE_ACCOUNT_TOKEN.into());
                let jwt = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "Vault {}: cannot read the service account token {}: {e}",
                        self.name,
                        path.display()
                    )
                })?;
                let auth = vaultrs::auth::kubernetes::login(
                    &anonymous,
                    &mount("kubernetes"),
                    &role,
                    jwt.trim(),
                )
                .await
                .map_err(|e| self.describe("Kubernetes login", e))?;
                (auth.client_token, auth.lease_duration)
            }
        };
        let client = Arc::new(self.build_client(token)?);
        // Renew when 80% of the lease is gone, so a read never races the expiry.
        let renew_at = (lease > 0).then(|| Instant::now() + Duration::from_secs(lease * 4 / 5));
        *session = Some(Session {
            client: client.clone(),
            renew_at,
        });
        Ok(client)
    }

    fn build_client(&self, token: String) -> Result<VaultClient, String> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.config.addr)
            .token(token)
            .timeout(Some(TIMEOUT))
            .verify(true)
            .namespace(self.config.namespace.clone())
            .ca_certs(
                self.config
                    .ca_file
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
            );
        let settings = settings
            .build()
            .map_err(|e| format!("Vault {}: {e}", self.name))?;
        VaultClient::new(settings).map_err(|e| self.describe("setting up the client", e))
    }

    fn describe(&self, what: &str, error: ClientError) -> String {
        let detail = match &error {
            ClientError::APIError { code, errors } => {
                let hint = match code {
                    400 | 401 | 403 => {
                        " (check the provider's credentials and the policy of its role)"
                    }
                    404 => " (no secret at that path: a KV v2 path reads <mount>/data/<path>)",
                    _ => "",
                };
                format!("HTTP {code}: {}{hint}", errors.join("; "))
            }
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(other);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        };
        format!(
            "Vault {} at {}: {what} failed: {detail}",
            self.name, self.config.addr
        )
    }
}

/// Splits a KV v2 API path into the engine's mount and the secret's path: at `/data/`
/// (`team/kv/data/app` → `team/kv`, `app`), else at the first `/` (`kv/app` → `kv`, `app`).
fn split_kv2_path(path: &str) -> (&str, &str) {
    let path = path.trim_matches('/');
    if let Some(at) = path.find("/data/") {
        return (&path[..at], &path[at + "/data/".len()..]);
    }
    path.split_once('/').unwrap_or((path, ""))
}

#[cfg(test)]
mod tests {
    use super::split_kv2_path;

    #[test]
    fn kv2_paths_split_at_data() {
        assert_eq!(split_kv2_path("dev/data/app"), ("dev", "app"));
        assert_eq!(
            split_kv2_path("/team/kv/data/db/main"),
            ("team/kv", "db/main")
        );
        assert_eq!(split_kv2_path("kv/app"), ("kv", "app"));
    }
}

//! The secret settings of the runner's configuration file: named custom providers and the
//! deny-list, in the upstream runner chart's shape (`secretProviders`, `blockedSecrets`).
//!
//! ```yaml
//! secretProviders:
//!   corp-vault:
//!     type: vault
//!     vaultSecretProvider:            # `vault:` is accepted too
//!       addr: https://vault.corp:8200
//!       authMountPath: approle        # default: approle, or kubernetes for Kubernetes auth
//!       roleID: env@VAULT_ROLE_ID      # literal, or a reference: file@, env@, k8s:file@, k8s:env@
//!       secretID: k8s:file@secret/vault-approle:secret-id
//! blockedSecrets: ["k8s:file@kube-system/"]
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Secret settings of the runner.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretsConfig {
    /// Named custom providers, used as `<name>@<path>:<field>`.
    #[serde(default)]
    pub secret_providers: BTreeMap<String, ProviderConfig>,
    /// Keys refused outright: a prefix of the `workspaceKey` (`k8s:file@` blocks every
    /// Kubernetes secret), where `*` matches any run of characters.
    #[serde(default)]
    pub blocked_secrets: Vec<String>,
    /// How long a value read from Kubernetes or Vault is reused (default 60 s; 0 disables).
    #[serde(default)]
    pub secret_cache_seconds: Option<u64>,
}

/// One named provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// Provider type; `vault` is the one there is.
    #[serde(rename = "type")]
    pub kind: String,
    /// Settings of a `vault` provider.
    #[serde(alias = "vaultSecretProvider")]
    pub vault: Option<VaultConfig>,
}

/// How to reach and log in to a HashiCorp Vault (KV v2).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultConfig {
    /// Base URL, e.g. `https://vault.corp:8200`.
    pub addr: String,
    /// `approle`, `kubernetes` or `token`; by default, whichever credentials are set.
    pub auth: Option<VaultAuthMethod>,
    /// Where the auth method is mounted (default: the method's name).
    pub auth_mount_path: Option<String>,
    /// AppRole role id (a literal or a secret reference).
    #[serde(rename = "roleID", alias = "roleId")]
    pub role_id: Option<String>,
    /// AppRole secret id (a literal or a secret reference).
    #[serde(rename = "secretID", alias = "secretId")]
    pub secret_id: Option<String>,
    /// Kubernetes auth role.
    pub role: Option<String>,
    /// Service account token for Kubernetes auth.
    pub service_account_token_path: Option<PathBuf>,
    /// A Vault token (a literal or a secret reference), for the `token` method.
    pub token: Option<String>,
    /// Vault Enterprise namespace.
    pub namespace: Option<String>,
    /// CA bundle (PEM) for Vault's certificate.
    pub ca_file: Option<PathBuf>,
}

/// Vault login methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    /// `POST /v1/auth/<mount>/login` with `role_id` and `secret_id`.
    Approle,
    /// `POST /v1/auth/<mount>/login` with `role` and the service account `jwt`.
    Kubernetes,
    /// A token given as is.
    Token,
}

impl VaultConfig {
    /// The method in use: the configured one, else inferred from the credentials present.
    pub fn method(&self) -> Result<VaultAuthMethod, String> {
        if let Some(method) = self.auth {
            return Ok(method);
        }
        match (&self.role_id, &self.role, &self.token) {
            (Some(_), _, _) => Ok(VaultAuthMethod::Approle),
            (None, Some(_), _) => Ok(VaultAuthMethod::Kubernetes),
            (None, None, Some(_)) => Ok(VaultAuthMethod::Token),
            (None, None, None) => Err(
                "no credentials: set roleID and secretID (AppRole), role (Kubernetes auth) or token"
                    .into(),
            ),
        }
    }

    /// The upstream keyword library's environment form of a custom provider:
    /// `SECRET_PROVIDER_<NAME>_TYPE=vault`, `…_VAULT_ADDR`, `…_AUTH_MOUNT_PATH`,
    /// `…_APPROLE_ROLE_ID`, `…_APPROLE_SECRET_ID` (`<NAME>` upper-cased, `-` as `_`).
    pub fn from_env(provider: &str, env: impl Fn(&str) -> Option<String>) -> Option<VaultConfig> {
        let prefix = format!(
            "SECRET_PROVIDER_{}_",
            provider.to_ascii_uppercase().replace(['-', '.'], "_")
        );
        let get = |suffix: &str| env(&format!("{prefix}{suffix}")).filter(|v| !v.is_empty());
        if !get("TYPE")?.eq_ignore_ascii_case("vault") {
            return None;
        }
        Some(VaultConfig {
            addr: get("VAULT_ADDR")?,
            auth: None,
            auth_mount_path: get("AUTH_MOUNT_PATH"),
            role_id: get("APPROLE_ROLE_ID"),
            secret_id: get("APPROLE_SECRET_ID"),
            role: get("KUBERNETES_ROLE"),
            service_account_token_path: None,
            token: get("VAULT_TOKEN"),
            namespace: get("VAULT_NAMESPACE"),
            ca_file: get("VAULT_CACERT").map(PathBuf::from),
        })
    }
}

/// Whether `key` is refused by `pattern`: the key starts with the pattern, where `*` in the
/// pattern matches any run of characters (`k8s:*@kube-system/` blocks both Kubernetes
/// providers in kube-system).
pub fn is_blocked(pattern: &str, key: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    let mut parts = pattern.split('*');
    let Some(rest) = key.strip_prefix(parts.next().unwrap_or_default()) else {
        return false;
    };
    let mut rest = rest;
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_chart_shape_parses() {
        let yaml = "secretProviders:\n  corp-vault:\n    type: vault\n    vaultSecretProvider:\n      addr: https://vault:8200\n      authMountPath: approle\n      roleID: env@ROLE\n      secretID: k8s:file@secret/approle:secret-id\nblockedSecrets: ['k8s:file@']\n";
        let config: SecretsConfig = serde_yaml::from_str(yaml).unwrap();
        let vault = config.secret_providers["corp-vault"].vault.clone().unwrap();
        assert_eq!(vault.role_id.as_deref(), Some("env@ROLE"));
        assert_eq!(vault.method().unwrap(), VaultAuthMethod::Approle);
        assert_eq!(config.blocked_secrets, ["k8s:file@"]);
        let err = serde_yaml::from_str::<SecretsConfig>(
            "secretProviders:\n  v:\n    type: vault\n    vault: {addr: x, roleId: a, sekretID: b}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sekretID"), "{err}");
    }

    #[test]
    fn environment_form_matches_the_keyword_library() {
        let env = |name: &str| {
            [
                ("SECRET_PROVIDER_CORP_VAULT_TYPE", "vault"),
                (
                    "SECRET_PROVIDER_CORP_VAULT_VAULT_ADDR",
                    "http://127.0.0.1:8200",
                ),
                ("SECRET_PROVIDER_CORP_VAULT_APPROLE_ROLE_ID", "r"),
                ("SECRET_PROVIDER_CORP_VAULT_APPROLE_SECRET_ID", "s"),
            ]
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
        };
        let config = VaultConfig::from_env("corp-vault", env).unwrap();
        assert_eq!(config.addr, "http://127.0.0.1:8200");
        assert_eq!(config.method().unwrap(), VaultAuthMethod::Approle);
        assert!(VaultConfig::from_env("other", env).is_none());
    }

    #[test]
    fn blocked_patterns() {
        assert!(is_blocked("k8s:file@", "k8s:file@secret/kc:kc"));
        assert!(!is_blocked("k8s:file@", "k8s:env@secret/kc:kc"));
        assert!(is_blocked(
            "k8s:*@kube-system/*",
            "k8s:env@kube-system/secret/a:b"
        ));
        assert!(!is_blocked(
            "k8s:*@kube-system/*",
            "k8s:env@shop/secret/a:b"
        ));
        assert!(is_blocked("*:password", "vault@kv/data/db:password"));
        assert!(!is_blocked("*:password", "vault@kv/data/db:user"));
        assert!(is_blocked("corp-*@*/prod/", "corp-vault@kv/data/prod/db:x"));
        assert!(!is_blocked("corp-*@*/prod/", "corp-vault@kv/data/dev/db:x"));
        assert!(!is_blocked("  ", "anything"));
    }
}

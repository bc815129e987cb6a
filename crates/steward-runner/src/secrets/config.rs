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
    /// `…_APPROLE_ROLE_ID`, `…_APPROLE_SECRET_ID`, and ours: `…_KUBERNETES_ROLE`,
    /// `…_VAULT_TOKEN`, `…_VAULT_NAMESPACE`, `…_VAULT_CACERT` (`<NAME>` upper-cased, `-` as
    /// `_`). `None` when `…_TYPE` is not set; an error names the variable to fix.
    pub fn from_env(
        provider: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<VaultConfig, String>> {
        let prefix = format!(
            "SECRET_PROVIDER_{}_",
            provider.to_ascii_uppercase().replace(['-', '.'], "_")
        );
        let get = |suffix: &str| env(&format!("{prefix}{suffix}")).filter(|v| !v.is_empty());
        let kind = get("TYPE")?;
        let fail = |why: String| {
            Some(Err(format!(
                "secret provider {provider} from the environment: {why}"
            )))
        };
        if !kind.eq_ignore_ascii_case("vault") {
            return fail(format!("{prefix}TYPE is {kind:?}; only vault is supported"));
        }
        if is_builtin(provider) {
            return fail("the name is taken by a built-in provider (file, env, k8s:...)".into());
        }
        let Some(addr) = get("VAULT_ADDR") else {
            return fail(format!("{prefix}VAULT_ADDR is not set"));
        };
        let config = VaultConfig {
            addr,
            auth: None,
            auth_mount_path: get("AUTH_MOUNT_PATH"),
            role_id: get("APPROLE_ROLE_ID"),
            secret_id: get("APPROLE_SECRET_ID"),
            role: get("KUBERNETES_ROLE"),
            service_account_token_path: None,
            token: get("VAULT_TOKEN"),
            namespace: get("VAULT_NAMESPACE"),
            ca_file: get("VAULT_CACERT").map(PathBuf::from),
        };
        Some(config.check().map(|()| config).map_err(|why| {
            // The check speaks of the file's keys; say which variables they are here.
            let why = [
                ("roleID", "APPROLE_ROLE_ID"),
                ("secretID", "APPROLE_SECRET_ID"),
                ("role", "KUBERNETES_ROLE"),
                ("token", "VAULT_TOKEN"),
                ("caFile", "VAULT_CACERT"),
                ("addr", "VAULT_ADDR"),
            ]
            .iter()
            .fold(why, |text, (key, var)| {
                text.replace(&format!("{key} "), &format!("{prefix}{var} "))
            });
            format!("secret provider {provider} from the environment: {why}")
        }))
    }
}

/// Every provider given in the environment (`SECRET_PROVIDER_<NAME>_TYPE`), by name.
pub fn providers_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> Vec<(String, Result<VaultConfig, String>)> {
    let vars: BTreeMap<String, String> = vars.collect();
    vars.keys()
        .filter_map(|var| {
            let name = var
                .strip_prefix("SECRET_PROVIDER_")?
                .strip_suffix("_TYPE")?;
            let name = name.to_ascii_lowercase().replace('_', "-");
            let config = VaultConfig::from_env(&name, |k| vars.get(k).cloned())?;
            Some((name, config))
        })
        .collect()
}

/// An entry spelt as canonical keys are ([`super::key::SecretKey::canonical`]): `//` in file
/// paths collapsed, no `/` after a named provider's `@`, `k8s:env@` as `k8s:file@`.
fn canonical_pattern(pattern: &str) -> String {
    let Some((provider, rest)) = pattern.split_once('@') else {
        return pattern.to_string();
    };
    match provider {
        "file" => {
            let mut path = rest.to_string();
            while path.contains("//") {
                path = path.replace("//", "/");
            }
            format!("file@{}", path.replace("/./", "/"))
        }
        "env" => pattern.to_string(),
        "k8s:env" => format!("k8s:file@{rest}"),
        p if p.starts_with("k8s") => pattern.to_string(),
        _ => format!("{provider}@{}", rest.trim_start_matches('/')),
    }
}

/// Names the built-in providers own.
fn is_builtin(name: &str) -> bool {
    name.starts_with("k8s") || matches!(name, "file" | "env")
}

impl SecretsConfig {
    /// Every provider's settings, checked as [`ProviderConfig::check`] does.
    pub fn check(&self) -> Result<(), String> {
        for (name, provider) in &self.secret_providers {
            provider
                .check(name)
                .map_err(|why| format!("secretProviders.{name}: {why}"))?;
        }
        Ok(())
    }
}

impl ProviderConfig {
    /// The provider's Vault settings, or why they cannot work: checked at start so that a
    /// mistake stops the runner rather than failing runs later.
    pub fn check(&self, name: &str) -> Result<&VaultConfig, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(
                "a provider name is letters, digits, '-', '_' and '.' (it is written before the @ of a key)"
                    .into(),
            );
        }
        if is_builtin(name) {
            return Err("the name is taken by a built-in provider (file, env, k8s:...)".into());
        }
        if !self.kind.eq_ignore_ascii_case("vault") {
            return Err(format!(
                "type {:?} is not supported; use type: vault",
                self.kind
            ));
        }
        let vault = self.vault.as_ref().ok_or(
            "type vault needs a vaultSecretProvider (or vault) section with addr and credentials",
        )?;
        vault.check()?;
        Ok(vault)
    }
}

impl VaultConfig {
    /// The address, the login method's credentials and the CA file.
    pub fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.addr).map_err(|e| {
            format!(
                "addr {:?} is not a URL ({e}); write it as https://vault.example.com:8200",
                self.addr
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "addr {:?} is not an http:// or https:// URL; write it as https://{}",
                self.addr, self.addr
            ));
        }
        let missing = |what: &str, method: &str| {
            Err(format!(
                "{what} is not set, and the {method} login needs it"
            ))
        };
        match self.method()? {
            VaultAuthMethod::Approle if self.role_id.is_none() => missing("roleID", "AppRole")?,
            VaultAuthMethod::Approle if self.secret_id.is_none() => missing("secretID", "AppRole")?,
            VaultAuthMethod::Kubernetes if self.role.is_none() => missing("role", "Kubernetes")?,
            VaultAuthMethod::Token if self.token.is_none() => missing("token", "token")?,
            _ => {}
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            return Err(format!("caFile {} does not exist", ca.display()));
        }
        Ok(())
    }
}

/// Whether `key` is refused by `pattern`: the key starts with the pattern, where `*` in the
/// pattern matches any run of characters (`k8s:*@kube-system/` blocks both Kubernetes
/// providers in kube-system).
pub fn is_blocked(pattern: &str, key: &str) -> bool {
    let pattern = canonical_pattern(pattern.trim());
    let pattern = pattern.as_str();
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
        let config = VaultConfig::from_env("corp-vault", env).unwrap().unwrap();
        assert_eq!(config.addr, "http://127.0.0.1:8200");
        assert_eq!(config.method().unwrap(), VaultAuthMethod::Approle);
        assert!(VaultConfig::from_env("other", env).is_none());
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        let found = providers_from_env(vars(&[
            ("SECRET_PROVIDER_A_TYPE", "vaultt"),
            ("SECRET_PROVIDER_B_TYPE", "vault"),
            ("SECRET_PROVIDER_C_TYPE", "vault"),
            ("SECRET_PROVIDER_C_VAULT_ADDR", "https://vault:8200"),
            ("SECRET_PROVIDER_C_APPROLE_ROLE_ID", "r"),
            ("SECRET_PROVIDER_FILE_TYPE", "vault"),
        ]));
        let errors: Vec<String> = found.into_iter().map(|(_, r)| r.unwrap_err()).collect();
        assert!(
            errors[0].contains("SECRET_PROVIDER_A_TYPE is \"vaultt\""),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("SECRET_PROVIDER_B_VAULT_ADDR is not set"),
            "{errors:?}"
        );
        assert!(
            errors[2].contains("SECRET_PROVIDER_C_APPROLE_SECRET_ID is not set"),
            "{errors:?}"
        );
        assert!(errors[3].contains("built-in"), "{errors:?}");
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
        // Entries are spelt like canonical keys too.
        assert!(is_blocked(
            "corp@/secret/data/prod/",
            "corp@secret/data/prod/db:x"
        ));
        assert!(is_blocked("file@//etc/", "file@/etc/shadow"));
    }
}

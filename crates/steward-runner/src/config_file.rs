//! The runner's configuration file (`--config`, `$STEWARD_RUNNER_CONFIG`; the Helm chart
//! mounts it at `/etc/steward/config/runner.yaml`): secret providers and the deny-list, and the
//! settings of the pods a Kubernetes executor starts.

use crate::kubernetes::pools::PoolConfig;
use crate::kubernetes::settings::PodSettings;
use crate::secrets::config::{ProviderConfig, SecretsConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Top-level keys this version reads; others are reported, not fatal.
const KNOWN: &[&str] = &[
    "executor",
    "kubernetes",
    "pools",
    "secretProviders",
    "blockedSecrets",
    "secretCacheSeconds",
];

/// What the file holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerFile {
    /// `process` (tasks run as child processes) or `kubernetes` (each task in a pod).
    #[serde(default)]
    pub executor: Option<String>,
    /// Named custom secret providers.
    #[serde(default)]
    pub secret_providers: BTreeMap<String, ProviderConfig>,
    /// Secret keys refused outright.
    #[serde(default)]
    pub blocked_secrets: Vec<String>,
    /// Reuse of values read from Kubernetes or Vault, in seconds.
    #[serde(default)]
    pub secret_cache_seconds: Option<u64>,
    /// Task pod settings for the Kubernetes executor.
    #[serde(default)]
    pub kubernetes: Option<PodSettings>,
    /// Warm worker pools.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
}

/// A file that cannot be used, with its path and (where the parser knows it) line.
#[derive(Debug, thiserror::Error)]
#[error("runner configuration {path}: {message}")]
pub struct ConfigFileError {
    /// The file.
    pub path: String,
    /// What is wrong and where.
    pub message: String,
}

impl RunnerFile {
    /// The Kubernetes executor's settings, when the file chooses it.
    pub fn pod_settings(&self) -> Option<PodSettings> {
        (self.executor.as_deref() == Some("kubernetes"))
            .then(|| self.kubernetes.clone().unwrap_or_default())
    }

    /// The secret settings. (They are fields of their own here rather than a flattened
    /// [`SecretsConfig`] because flattening loses the line numbers of errors inside.)
    pub fn secrets(&self) -> SecretsConfig {
        SecretsConfig {
            secret_providers: self.secret_providers.clone(),
            blocked_secrets: self.blocked_secrets.clone(),
            secret_cache_seconds: self.secret_cache_seconds,
        }
    }

    /// Reads and checks `path`; returns the settings and a warning per unknown key.
    pub fn load(path: &Path) -> Result<(RunnerFile, Vec<String>), ConfigFileError> {
        let fail = |message: String| ConfigFileError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// [`RunnerFile::load`] on text.
    pub fn parse(text: &str) -> Result<(RunnerFile, Vec<String>), String> {
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut warnings = Vec::new();
        match &value {
            serde_yaml::Value::Null => return Ok((RunnerFile::default(), warnings)),
            serde_yaml::Value::Mapping(map) => {
                for key in map.keys() {
                    let name = key.as_str().unwrap_or("<not a string>");
                    if !KNOWN.contains(&name) {
                        warnings.push(format!(
                            "unknown key {name:?} is ignored (known: {})",
                            KNOWN.join(", ")
                        ));
                    }
                }
                for section in ["secretProviders", "blockedSecrets"] {
                    if map.get(section).is_some_and(serde_yaml::Value::is_null) {
                        return Err(format!(
                            "{section} is empty (null); remove it or give it entries"
                        ));
                    }
                }
            }
            _ => return Err("the file must be a mapping of settings".into()),
        }
        // Parse the text again rather than the value, so errors keep their line numbers.
        let file: RunnerFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        match file.executor.as_deref() {
            None | Some("process") | Some("kubernetes") => {}
            Some(other) => {
                return Err(format!(
                    "executor {other:?} is unknown; use process or kubernetes"
                ));
            }
        }
        file.secrets().check()?;
        if let Some(settings) = &file.kubernetes {
            settings.check()?;
        }
        if file.executor.as_deref() != Some("kubernetes") && !file.pools.is_empty() {
            warnings.push(
                "pools are used only by the Kubernetes executor (executor: kubernetes); they are ignored".into(),
            );
        }
        for (index, pool) in file.pools.iter().enumerate() {
            let url = pool.repo_url.trim();
            if url.is_empty() {
                return Err(format!("pools[{index}]: repoUrl is empty"));
            }
            if file.pools[..index].iter().any(|p| p.repo_url.trim() == url) {
                return Err(format!(
                    "pools[{index}]: repoUrl {url} has a pool already; give each CodeCollection one pool"
                ));
            }
        }
        Ok((file, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_file_reads_and_unknown_keys_warn() {
        let (file, warnings) = RunnerFile::parse(
            "executor: process\nkubernetes: {namespace: steward}\npools: []\nblockedSecrets: ['k8s:file@kube-system/']\nsecretProviders:\n  corp:\n    type: vault\n    vault: {addr: 'http://127.0.0.1:8200', token: env@T}\nsecretsProvidd: {}\n",
        )
        .unwrap();
        assert_eq!(file.blocked_secrets, ["k8s:file@kube-system/"]);
        assert!(file.secret_providers.contains_key("corp"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("secretsProvidd"), "{warnings:?}");
    }

    #[test]
    fn bad_files_say_where() {
        let err = RunnerFile::parse("blockedSecrets: null\n").unwrap_err();
        assert!(err.contains("blockedSecrets is empty"), "{err}");
        let err = RunnerFile::parse("secretProviders:\n  corp:\n    type: vault\n    vault:\n      addr: x\n      roleIDD: y\n").unwrap_err();
        assert!(err.contains("roleIDD") && err.contains("line 6"), "{err}");
        let err = RunnerFile::parse("blockedSecrets: {a: b}\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(RunnerFile::parse("- a\n").unwrap_err().contains("mapping"));
        assert!(
            RunnerFile::parse("executor: docker\n")
                .unwrap_err()
                .contains("process or kubernetes")
        );
        let err = RunnerFile::parse("kubernetes:\n  runAsJob: maybe\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let (file, _) = RunnerFile::parse("executor: kubernetes\n").unwrap();
        assert!(file.pod_settings().is_some());
        assert!(RunnerFile::parse("").unwrap().1.is_empty());
        // Misspelt or impossible pod settings and providers stop the runner at start.
        let err = RunnerFile::parse("kubernetes:\n  runAsjob: true\n").unwrap_err();
        assert!(err.contains("runAsjob") && err.contains("line 2"), "{err}");
        for (yaml, needle) in [
            (
                "kubernetes: {imagePullPolicy: Sometimes}",
                "kubernetes.imagePullPolicy",
            ),
            (
                "kubernetes: {runnerUrl: 'not a url'}",
                "kubernetes.runnerUrl",
            ),
            ("kubernetes: {namespace: Bad_NS}", "kubernetes.namespace"),
            (
                "kubernetes: {resources: {requests: {memory: lots}}}",
                "resources.requests.memory",
            ),
            (
                "secretProviders: {v: {type: vaultt}}",
                "secretProviders.v: type",
            ),
            (
                "secretProviders: {v: {type: vault, vault: {addr: 'vault:8200', token: t}}}",
                "https://",
            ),
            (
                "secretProviders: {v: {type: vault, vault: {addr: 'https://v', roleID: r}}}",
                "secretID is not set",
            ),
            (
                "secretProviders: {v: {type: vault, vault: {addr: 'https://v', auth: kubernetes}}}",
                "role is not set",
            ),
            (
                "secretProviders: {v: {type: vault, vault: {addr: 'https://v', token: t, caFile: /nonexistent.pem}}}",
                "caFile",
            ),
            (
                "secretProviders: {'a@b': {type: vault, vault: {addr: 'https://v', token: t}}}",
                "provider name",
            ),
        ] {
            let err = RunnerFile::parse(yaml).unwrap_err();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
        let (_, warnings) = RunnerFile::parse("pools: [{repoUrl: a}]\n").unwrap();
        assert!(
            warnings[0].contains("only by the Kubernetes executor"),
            "{warnings:?}"
        );
        let (file, _) = RunnerFile::parse(
            "pools:\n  - {repoUrl: 'https://example.com/a.git', ref: v1, replicas: 2}\n",
        )
        .unwrap();
        assert_eq!(file.pools[0].replicas, 2);
        let err = RunnerFile::parse("pools:\n  - {repoUrl: a}\n  - {repoUrl: a}\n").unwrap_err();
        assert!(err.contains("pools[1]") && err.contains("a"), "{err}");
        let err = RunnerFile::parse("pools:\n  - {repoUrl: a, replcas: 2}\n").unwrap_err();
        assert!(err.contains("replcas") && err.contains("line 2"), "{err}");
    }
}

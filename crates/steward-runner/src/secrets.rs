//! Resolving `secretsProvided` references to values, on the runner, at execution time. The
//! platform only ever holds the references.
//!
//! | `workspaceKey` | value |
//! |---|---|
//! | `file@/abs/path` | the file's content |
//! | `env@NAME` | the runner's environment variable `NAME` |
//! | `name` (no `@`) | the file `<secrets dir>/name` |

use std::path::{Path, PathBuf};
use steward_model::workspace::SecretRef;
use steward_runtime::SecretValue;

/// Resolves references with the providers this runner has.
#[derive(Debug, Clone, Default)]
pub struct SecretResolver {
    /// Directory holding one file per bare secret key.
    pub secrets_dir: Option<PathBuf>,
}

impl SecretResolver {
    /// Resolves every reference; the first failure names the secret, the reference and what
    /// to do.
    pub fn resolve(&self, refs: &[SecretRef]) -> Result<Vec<SecretValue>, String> {
        refs.iter().map(|r| self.resolve_one(r)).collect()
    }

    fn resolve_one(&self, secret: &SecretRef) -> Result<SecretValue, String> {
        let key = secret.workspace_key.trim();
        let fail = |why: String| format!("secret {} ({key}): {why}", secret.name);
        let value = match key.split_once('@') {
            Some(("file", path)) => {
                let path = Path::new(path);
                if !path.is_absolute() {
                    return Err(fail("file@ needs an absolute path".into()));
                }
                std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
            }
            Some(("env", name)) => std::env::var(name)
                .map_err(|_| fail(format!("the runner has no environment variable {name}")))?,
            Some((provider, _)) => {
                return Err(fail(format!(
                    "provider {provider} is not available on this runner; use file@/path, env@NAME or a key in the runner's secrets directory"
                )));
            }
            None if key.is_empty() => return Err(fail("workspaceKey is empty".into())),
            None => {
                let Some(dir) = &self.secrets_dir else {
                    return Err(fail(
                        "this runner has no secrets directory (steward runner --secrets-dir DIR)"
                            .into(),
                    ));
                };
                if key.contains('/') || key.starts_with('.') {
                    return Err(fail(
                        "a secret key is a file name inside the secrets directory".into(),
                    ));
                }
                let path = dir.join(key);
                std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
            }
        };
        Ok(SecretValue {
            name: secret.name.clone(),
            value,
        })
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

    #[test]
    fn file_env_and_directory_keys_resolve() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "from-dir").unwrap();
        let file = dir.path().join("kubeconfig");
        std::fs::write(&file, "apiVersion: v1\n").unwrap();
        // SAFETY: tests in this module are the only users of this variable.
        unsafe { std::env::set_var("STEWARD_TEST_SECRET_VALUE", "from-env") };
        let resolver = SecretResolver {
            secrets_dir: Some(dir.path().to_path_buf()),
        };
        let values = resolver
            .resolve(&[
                r("kubeconfig", &format!("file@{}", file.display())),
                r("a", "env@STEWARD_TEST_SECRET_VALUE"),
                r("b", "token"),
            ])
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

    #[test]
    fn failures_name_the_secret_and_what_to_do() {
        let resolver = SecretResolver::default();
        let err = resolver
            .resolve(&[r("kc", "k8s:file@secret/kubeconfig:kubeconfig")])
            .unwrap_err();
        assert!(
            err.starts_with("secret kc (k8s:file@secret/kubeconfig:kubeconfig)"),
            "{err}"
        );
        assert!(err.contains("file@/path"), "{err}");
        let err = resolver.resolve(&[r("t", "token")]).unwrap_err();
        assert!(err.contains("--secrets-dir"), "{err}");
        let err = resolver.resolve(&[r("t", "file@relative")]).unwrap_err();
        assert!(err.contains("absolute"), "{err}");
        let err = resolver
            .resolve(&[r("t", "file@/nonexistent/x")])
            .unwrap_err();
        assert!(err.contains("/nonexistent/x"), "{err}");
        let resolver = SecretResolver {
            secrets_dir: Some("/tmp".into()),
        };
        assert!(
            resolver
                .resolve(&[r("t", "../etc/passwd")])
                .unwrap_err()
                .contains("file name")
        );
    }
}

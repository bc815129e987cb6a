//! The environment a task sees: the RunWhen runtime contract as environment variables.
//!
//! The robot process starts from an empty environment, so nothing of the runner's own
//! environment (its credentials, tokens) reaches a task unless listed in [`PASSED_THROUGH`].

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use steward_model::names::{robot_file_name, sli_metric_name};
use steward_model::run::{RunKind, RunSpec};

/// Variables copied from the runner's environment when set: proxies and trust bundles (which
/// `RW.CLI` passes on to shell commands), locale and time zone.
pub const PASSED_THROUGH: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "TZ",
    "PIP_INDEX_URL",
];

/// Variables the runtime sets itself; `configProvided` cannot override them.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "PYTHONPATH",
    "CODEBUNDLE_TEMP_DIR",
    "KUBECONFIG",
    "RW_SECRETS_KEYS",
    "RW_WORKSPACE",
    "RW_LOCATION",
    "RW_SLX",
    "RW_RFNS",
    "RW_PATH_TO_ROBOT",
    "RW_SLI_METRIC_NAME",
    "RW_RUNREQUEST_ID",
    "RW_SESSION_ID",
    "RW_OTEL_COLLECTOR_ENDPOINT",
    "RW_MODE",
];

/// The private directories of one run.
#[derive(Debug, Clone)]
pub struct RunDirs {
    /// Root of the run's directory.
    pub root: PathBuf,
    /// Copy of the bundle directory; the robot process's working directory.
    pub codebundle: PathBuf,
    /// `CODEBUNDLE_TEMP_DIR`: where `RW.CLI` runs shell commands and drops secret copies.
    pub cb_temp: PathBuf,
    /// Secret files (mode 0400) in a 0700 directory.
    pub secrets: PathBuf,
    /// Robot's `--outputdir`: `log.html`, `output.xml`, `issues.jsonl`, ...
    pub out: PathBuf,
    /// `TMPDIR` and `HOME` of the task.
    pub tmp: PathBuf,
    /// `HOME` of the task.
    pub home: PathBuf,
}

impl RunDirs {
    /// The layout under `root` (nothing is created).
    pub fn under(root: &Path) -> Self {
        RunDirs {
            root: root.to_path_buf(),
            codebundle: root.join("codebundle"),
            cb_temp: root.join("cb-temp"),
            secrets: root.join("secrets"),
            out: root.join("out"),
            tmp: root.join("tmp"),
            home: root.join("home"),
        }
    }

    /// `KUBECONFIG` path of the task (inside its temp dir, like the upstream runtime).
    pub fn kubeconfig(&self) -> PathBuf {
        self.cb_temp.join(".kube").join("config")
    }
}

/// Everything the environment is built from.
pub struct ContractInputs<'a> {
    /// The run.
    pub spec: &'a RunSpec,
    /// The robot file being run (inside `dirs.codebundle`).
    pub robot_file: &'a Path,
    /// CodeCollection root (for `PYTHONPATH`).
    pub collection_root: &'a Path,
    /// `bin` directory of the Python environment.
    pub python_bin: &'a Path,
    /// Where bytecode caches go (outside the collection, shared by runs).
    pub pycache: &'a Path,
    /// The run's directories.
    pub dirs: &'a RunDirs,
    /// Secret name → materialised file.
    pub secret_files: &'a [(String, PathBuf)],
    /// OTLP/HTTP metrics endpoint for this run.
    pub otel_endpoint: Option<&'a str>,
    /// Lookup into the runner's own environment (for [`PASSED_THROUGH`] and `PATH`).
    pub host_env: &'a dyn Fn(&str) -> Option<String>,
}

/// The environment, sorted by name, plus warnings about `configProvided` entries not used.
pub fn build_env(inputs: &ContractInputs<'_>) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let spec = inputs.spec;
    let mut env = BTreeMap::new();
    let mut warnings = Vec::new();
    let set = |env: &mut BTreeMap<String, String>, k: &str, v: String| {
        env.insert(k.to_string(), v);
    };

    for name in PASSED_THROUGH {
        if let Some(value) = (inputs.host_env)(name) {
            set(&mut env, name, value);
        }
    }
    let host_path =
        (inputs.host_env)("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    set(
        &mut env,
        "PATH",
        format!("{}:{host_path}", inputs.python_bin.display()),
    );
    set(&mut env, "HOME", inputs.dirs.home.display().to_string());
    set(&mut env, "TMPDIR", inputs.dirs.tmp.display().to_string());
    set(&mut env, "LANG", "C.UTF-8".into());
    set(&mut env, "PYTHONUTF8", "1".into());
    set(
        &mut env,
        "PYTHONPYCACHEPREFIX",
        inputs.pycache.display().to_string(),
    );
    set(
        &mut env,
        "PYTHONPATH",
        format!(
            "{}:{}",
            inputs.collection_root.join("libraries").display(),
            inputs.collection_root.display()
        ),
    );
    // The same defaults the upstream runtime sets: no telemetry from cloud CLIs.
    set(&mut env, "AZURE_CORE_COLLECT_TELEMETRY", "false".into());
    set(
        &mut env,
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING",
        "true".into(),
    );
    set(&mut env, "AWS_EC2_METADATA_DISABLED", "true".into());

    for var in &spec.config {
        check_name(&var.name)?;
        if RESERVED.contains(&var.name.as_str()) {
            warnings.push(format!(
                "configProvided {} is set by the runtime and was ignored",
                var.name
            ));
            continue;
        }
        if var.value.contains('\0') {
            return Err(Error::InvalidConfig {
                name: var.name.clone(),
                reason: "the value contains a NUL byte".into(),
            });
        }
        set(&mut env, &var.name, var.value.clone());
    }

    let secrets: serde_json::Map<String, serde_json::Value> = inputs
        .secret_files
        .iter()
        .map(|(name, path)| (name.clone(), format!("file@{}", path.display()).into()))
        .collect();
    set(
        &mut env,
        "RW_SECRETS_KEYS",
        serde_json::Value::Object(secrets).to_string(),
    );
    set(&mut env, "RW_MODE", "production".into());
    set(&mut env, "RW_WORKSPACE", spec.workspace.clone());
    set(&mut env, "RW_LOCATION", spec.location.clone());
    set(&mut env, "RW_SLX", spec.slx.clone());
    let path_to_robot = spec
        .code_bundle
        .path_to_robot
        .as_deref()
        .unwrap_or_default();
    set(
        &mut env,
        "RW_RFNS",
        robot_file_name(path_to_robot).to_string(),
    );
    set(
        &mut env,
        "RW_PATH_TO_ROBOT",
        inputs.robot_file.display().to_string(),
    );
    set(
        &mut env,
        "CODEBUNDLE_TEMP_DIR",
        inputs.dirs.cb_temp.display().to_string(),
    );
    set(
        &mut env,
        "KUBECONFIG",
        inputs.dirs.kubeconfig().display().to_string(),
    );
    if let Some(endpoint) = inputs.otel_endpoint {
        set(&mut env, "RW_OTEL_COLLECTOR_ENDPOINT", endpoint.to_string());
    }
    match spec.kind {
        RunKind::Sli => {
            set(&mut env, "RW_SLI_METRIC_NAME", sli_metric_name(&spec.slx));
            let interval = spec.interval_seconds.unwrap_or(300);
            set(
                &mut env,
                "RW_LOOKBACK_WINDOW",
                lookback_seconds(interval).to_string(),
            );
            // Runbook-only variables must not leak in from configProvided: RW.Core decides
            // "runbook context" by the presence of RW_RUNREQUEST_ID.
            env.remove("RW_RUNREQUEST_ID");
            env.remove("RW_SESSION_ID");
        }
        RunKind::Runbook => {
            set(&mut env, "RW_RUNREQUEST_ID", spec.run_id.to_string());
            if let Some(session) = spec.session_id {
                set(&mut env, "RW_SESSION_ID", session.to_string());
            }
        }
    }
    Ok((env, warnings))
}

/// `RW_LOOKBACK_WINDOW` of an SLI: one and a half intervals, so consecutive runs overlap.
pub fn lookback_seconds(interval_seconds: u64) -> u64 {
    interval_seconds.saturating_mul(3).div_ceil(2)
}

fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            name: name.into(),
            reason: "configProvided names become environment variables: use letters, digits and '_', not starting with a digit".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::workspace::{CodeBundleRef, ConfigVar};
    use uuid::Uuid;

    fn spec(kind: RunKind) -> RunSpec {
        RunSpec {
            run_id: Uuid::from_u128(7),
            kind,
            workspace: "ws".into(),
            slx: "web-check".into(),
            location: "local".into(),
            code_bundle: CodeBundleRef {
                repo_url: "builtin://steward".into(),
                git_ref: String::new(),
                path_to_robot: Some("codebundles/http/sli.robot".into()),
                path_to_yaml: None,
            },
            config: vec![
                ConfigVar {
                    name: "URL".into(),
                    value: "http://x/%{y}".into(),
                },
                ConfigVar {
                    name: "RW_WORKSPACE".into(),
                    value: "evil".into(),
                },
                ConfigVar {
                    name: "RW_RUNREQUEST_ID".into(),
                    value: "sneaky".into(),
                },
            ],
            secrets: vec![],
            task_titles: vec![],
            timeout_seconds: 60,
            session_id: Some(Uuid::from_u128(9)),
            interval_seconds: Some(60),
        }
    }

    fn build(spec: &RunSpec) -> Result<(BTreeMap<String, String>, Vec<String>)> {
        let dirs = RunDirs::under(Path::new("/run/1"));
        let secret_files = vec![(
            "kubeconfig".to_string(),
            PathBuf::from("/run/1/secrets/kubeconfig"),
        )];
        let host = |name: &str| match name {
            "PATH" => Some("/usr/bin:/bin".to_string()),
            "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
            "STEWARD_TOKEN" => Some("must-not-leak".to_string()),
            _ => None,
        };
        build_env(&ContractInputs {
            spec,
            robot_file: Path::new("/run/1/codebundle/sli.robot"),
            collection_root: Path::new("/cache/c"),
            python_bin: Path::new("/cache/py/bin"),
            pycache: Path::new("/cache/pycache"),
            dirs: &dirs,
            secret_files: &secret_files,
            otel_endpoint: Some("http://127.0.0.1:4318/runs/1/v1/metrics"),
            host_env: &host,
        })
    }

    #[test]
    fn sli_environment_follows_the_contract() {
        let (env, warnings) = build(&spec(RunKind::Sli)).unwrap();
        assert_eq!(env["URL"], "http://x/%{y}");
        assert_eq!(
            env["RW_WORKSPACE"], "ws",
            "runtime values win over configProvided"
        );
        assert_eq!(env["RW_SLX"], "web-check");
        assert_eq!(env["RW_RFNS"], "sli.robot");
        assert_eq!(env["RW_SLI_METRIC_NAME"], "web_check__sli");
        assert_eq!(env["RW_LOOKBACK_WINDOW"], "90");
        assert_eq!(
            env["RW_SECRETS_KEYS"],
            r#"{"kubeconfig":"file@/run/1/secrets/kubeconfig"}"#
        );
        assert_eq!(env["CODEBUNDLE_TEMP_DIR"], "/run/1/cb-temp");
        assert_eq!(env["PYTHONPATH"], "/cache/c/libraries:/cache/c");
        assert_eq!(env["PATH"], "/cache/py/bin:/usr/bin:/bin");
        assert_eq!(env["HTTPS_PROXY"], "http://proxy:3128");
        assert!(
            !env.contains_key("RW_RUNREQUEST_ID"),
            "SLIs must not look like runbooks"
        );
        assert!(!env.contains_key("RW_SESSION_ID"));
        assert!(!env.contains_key("STEWARD_TOKEN"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn runbook_environment_carries_request_and_session() {
        let (env, _) = build(&spec(RunKind::Runbook)).unwrap();
        assert_eq!(env["RW_RUNREQUEST_ID"], Uuid::from_u128(7).to_string());
        assert_eq!(env["RW_SESSION_ID"], Uuid::from_u128(9).to_string());
        assert!(!env.contains_key("RW_LOOKBACK_WINDOW"));
        assert!(!env.contains_key("RW_SLI_METRIC_NAME"));
    }

    #[test]
    fn bad_variable_names_are_refused_by_name() {
        let mut bad = spec(RunKind::Runbook);
        bad.config.push(ConfigVar {
            name: "MY VAR".into(),
            value: "x".into(),
        });
        let err = build(&bad).unwrap_err().to_string();
        assert!(err.contains("MY VAR"), "{err}");
    }

    #[test]
    fn lookback_is_one_and_a_half_intervals() {
        assert_eq!(lookback_seconds(300), 450);
        assert_eq!(lookback_seconds(5), 8);
    }
}

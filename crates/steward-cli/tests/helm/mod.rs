//! Rendering the charts under deploy/helm with the real Helm engine (Helm's Go SDK from PyPI's
//! helm-python-sdk, in a venv cached with the other test tools) and checking every rendered
//! object against its k8s-openapi type.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, LimitRange, PersistentVolumeClaim, PodSpec, ResourceQuota, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const HELM_SDK: &str = "helm-python-sdk==0.2.2";

/// Renders and lints a batch of charts in one Python process (loading the Go library once).
pub const RENDER_PY: &str = r#"
import json, sys
import helm_python as h
results = []
for r in json.load(sys.stdin):
    res = {}
    try:
        chart = h.Chart.load(r["chart"])
        res["manifests"] = chart.render(values=r["values"], name=r["release"],
                                        namespace=r["namespace"], is_install=True)
    except h.HelmError as e:
        res["error"] = f"{type(e).__name__}: {e}"
    if r["lint"]:
        res["lint"] = h.lint(r["chart"], r["values"], strict=True, namespace=r["namespace"])
    results.append(res)
json.dump(results, sys.stdout)
"#;

pub fn root() -> PathBuf {
    steward_testkit::workspace_root()
}

pub fn chart(name: &str) -> PathBuf {
    root().join("deploy/helm").join(name)
}

/// One chart rendering to ask for.
pub struct Case {
    pub chart: &'static str,
    pub release: &'static str,
    pub namespace: &'static str,
    pub values: Value,
}

pub fn case(chart: &'static str, release: &'static str, values: Value) -> Case {
    Case {
        chart,
        release,
        namespace: "ops",
        values,
    }
}

/// The smallest runner values that render.
pub fn runner_values(extra: Value) -> Value {
    let mut values = json!({
        "platformUrl": "https://steward.example.com",
        "registrationToken": {"value": "reg-token"},
    });
    merge(&mut values, extra);
    values
}

pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// One rendered Kubernetes object, already checked against its k8s-openapi type.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
}

#[derive(Debug)]
pub struct Rendered {
    pub objects: Vec<Object>,
}

/// Renders every case (and lints it, failing on any warning or error); `Err` holds Helm's
/// message when rendering failed.
pub fn render(cases: &[Case]) -> Vec<Result<Rendered, String>> {
    let python = steward_testkit::python_env("helm", &[HELM_SDK]);
    let request: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "chart": chart(c.chart),
                "release": c.release,
                "namespace": c.namespace,
                "values": c.values,
                "lint": true,
            })
        })
        .collect();
    let mut child = Command::new(&python)
        .args(["-c", RENDER_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&request).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the render script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    results
        .into_iter()
        .zip(cases)
        .map(|(result, case)| {
            let label = format!("{} (release {})", case.chart, case.release);
            let lint = &result["lint"];
            let findings: Vec<&Value> = lint["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["severity"].as_i64().unwrap_or(3) >= 2)
                .collect();
            if let Some(error) = result["error"].as_str() {
                return Err(error.to_string());
            }
            assert!(
                findings.is_empty() && lint["errors"].as_array().unwrap().is_empty(),
                "helm lint of {label} with {}: {lint:#}",
                case.values
            );
            let manifests = result["manifests"].as_object().unwrap();
            let mut objects = Vec::new();
            for (file, text) in manifests {
                if !file.ends_with(".yaml") {
                    continue;
                }
                for doc in serde_yaml::Deserializer::from_str(text.as_str().unwrap()) {
                    let value: Value = serde::Deserialize::deserialize(doc)
                        .unwrap_or_else(|e| panic!("{label}: {file} is not YAML: {e}"));
                    if value.is_null() {
                        continue;
                    }
                    objects.push(typed(&label, file, value));
                }
            }
            Ok(Rendered { objects })
        })
        .collect()
}

pub fn render_ok(cases: &[Case]) -> Vec<Rendered> {
    render(cases)
        .into_iter()
        .zip(cases)
        .map(|(r, c)| r.unwrap_or_else(|e| panic!("{} with {}: {e}", c.chart, c.values)))
        .collect()
}

/// Parses `value` as the k8s-openapi type of its kind and serializes it back: a field the type
/// does not have (misspelt, misplaced) or a wrong type makes the two differ.
pub fn typed(label: &str, file: &str, value: Value) -> Object {
    fn check<T: DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
        let parsed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let back = serde_json::to_value(&parsed).unwrap();
        if &back == value {
            Ok(())
        } else {
            Err(format!("fields lost when parsed: {back:#}"))
        }
    }
    let kind = value["kind"].as_str().unwrap_or_default().to_string();
    let checked = match kind.as_str() {
        "ConfigMap" => check::<ConfigMap>(&value),
        "Secret" => check::<Secret>(&value),
        "Service" => check::<Service>(&value),
        "ServiceAccount" => check::<ServiceAccount>(&value),
        "PersistentVolumeClaim" => check::<PersistentVolumeClaim>(&value),
        "ResourceQuota" => check::<ResourceQuota>(&value),
        "LimitRange" => check::<LimitRange>(&value),
        "Deployment" => check::<Deployment>(&value),
        "Role" => check::<Role>(&value),
        "RoleBinding" => check::<RoleBinding>(&value),
        "ClusterRoleBinding" => check::<ClusterRoleBinding>(&value),
        "NetworkPolicy" => check::<NetworkPolicy>(&value),
        "Ingress" => check::<Ingress>(&value),
        other => Err(format!(
            "kind {other:?} is not one the chart tests know; add its k8s-openapi type"
        )),
    };
    if let Err(e) = checked {
        panic!("{label}: {file}: {kind}: {e}\nrendered: {value:#}");
    }
    Object {
        name: value["metadata"]["name"].as_str().unwrap().to_string(),
        namespace: value["metadata"]["namespace"].as_str().map(str::to_string),
        kind,
        value,
    }
}

impl Rendered {
    pub fn kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for o in &self.objects {
            *kinds.entry(o.kind.clone()).or_default() += 1;
        }
        kinds
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Object> {
        self.objects.iter().filter(|o| o.kind == kind).collect()
    }

    pub fn deployment(&self) -> Deployment {
        let found = self.of_kind("Deployment");
        assert_eq!(found.len(), 1, "one Deployment");
        serde_json::from_value(found[0].value.clone()).unwrap()
    }

    pub fn pod_specs(&self) -> Vec<PodSpec> {
        self.of_kind("Deployment")
            .into_iter()
            .map(|o| {
                let d: Deployment = serde_json::from_value(o.value.clone()).unwrap();
                d.spec.unwrap().template.spec.unwrap()
            })
            .collect()
    }

    /// The runner's configuration file (settings for the pods it starts), parsed.
    pub fn runner_config(&self) -> Value {
        serde_yaml::from_str(&self.runner_config_text()).unwrap()
    }

    /// The runner's configuration file as the chart writes it.
    pub fn runner_config_text(&self) -> String {
        self.of_kind("ConfigMap")
            .into_iter()
            .find_map(|o| o.value["data"]["runner.yaml"].as_str().map(str::to_string))
            .expect("a ConfigMap with runner.yaml")
    }

    /// Every string under a key named `image`, in every object and in the runner's
    /// configuration.
    pub fn images(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("image", Value::String(s)) => out.push(s.clone()),
                            _ => walk(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for o in &self.objects {
            walk(&o.value, &mut out);
        }
        if self
            .objects
            .iter()
            .any(|o| o.name.ends_with("steward-runner"))
        {
            walk(&self.runner_config(), &mut out);
        }
        out
    }
}

pub fn env_of(container: &Container) -> BTreeMap<String, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

/// Every container of a pod, init containers included.
pub fn containers(spec: &PodSpec) -> Vec<&Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect()
}

/// The container's command line is one the steward binary accepts, and every STEWARD_*
/// variable it sets is read by the binary or listed in `not_read_yet`.
pub fn assert_binary_accepts(container: &Container, not_read_yet: &[&str]) {
    let steward = env!("CARGO_BIN_EXE_steward");
    assert_eq!(
        container.command.as_deref(),
        Some(&["/usr/local/bin/steward".to_string()][..])
    );
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| a.replace("$(STEWARD_POD_NAME)", "runner-0"))
        .collect();
    // Arguments are parsed (and their values checked) up to --help, which then ends the run.
    let output = Command::new(steward)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "steward refuses {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let help = String::from_utf8_lossy(&output.stdout);
    for name in env_of(container).keys() {
        if name.starts_with("STEWARD_") && !not_read_yet.contains(&name.as_str()) {
            assert!(
                help.contains(&format!("[env: {name}")),
                "{name} is set for `steward {}` but the binary does not read it",
                args[0]
            );
        }
    }
}

pub fn images_yaml() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/images.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

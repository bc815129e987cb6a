//! RunWhen-format workspace objects (`apiVersion: runwhen.com/v1`) and the workspace tree.
//!
//! Every document and spec keeps the fields this model does not know in an `extra` map, so a
//! document read and written back keeps them. Known scalar fields that RunWhen writes either
//! quoted or bare (`value: 80` or `value: "80"`) are read as strings.

mod error;
mod tree;

pub use error::{LoadError, LoadProblem};
pub use tree::{SlxDocuments, WorkspaceTree};

use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

/// The only `apiVersion` RunWhen workspace objects use.
pub const API_VERSION: &str = "runwhen.com/v1";

/// The kinds of document a workspace tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// `workspace.yaml`
    Workspace,
    /// `slx.yaml`
    ServiceLevelX,
    /// `sli.yaml`
    ServiceLevelIndicator,
    /// `slo.yaml`
    ServiceLevelObjective,
    /// `runbook.yaml`
    Runbook,
}

impl Kind {
    /// The kind's name as written in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Workspace => "Workspace",
            Kind::ServiceLevelX => "ServiceLevelX",
            Kind::ServiceLevelIndicator => "ServiceLevelIndicator",
            Kind::ServiceLevelObjective => "ServiceLevelObjective",
            Kind::Runbook => "Runbook",
        }
    }

    /// The file name a document of this kind has inside an SLX directory (or the tree root).
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Workspace => "workspace.yaml",
            Kind::ServiceLevelX => "slx.yaml",
            Kind::ServiceLevelIndicator => "sli.yaml",
            Kind::ServiceLevelObjective => "slo.yaml",
            Kind::Runbook => "runbook.yaml",
        }
    }
}

/// `metadata` of any workspace document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `metadata.name`: for SLX documents the full name `<workspace>--<slx>`.
    #[serde(default)]
    pub name: String,
    /// `metadata.labels`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "string_map")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Mapping,
}

/// One workspace document: `apiVersion`, `kind`, `metadata` and a typed `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<S> {
    /// Always [`API_VERSION`] for documents this model accepts.
    pub api_version: String,
    /// The kind as written (checked against the file it came from when a tree is loaded).
    pub kind: String,
    /// Name, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The kind-specific part.
    #[serde(default)]
    pub spec: S,
    /// Top-level fields this model does not know.
    #[serde(flatten)]
    pub extra: Mapping,
}

/// A `{name, value}` entry of `configProvided`: becomes one environment variable of the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVar {
    /// Variable name as the robot file imports it.
    pub name: String,
    /// Value; numbers and booleans written bare in YAML are read as their text.
    #[serde(default, deserialize_with = "scalar_string")]
    pub value: String,
}

/// A `{name, workspaceKey}` entry of `secretsProvided`.
///
/// `workspace_key` is a provider reference (`file@/path`, `env@VAR`, `k8s:file@secret/x:key`,
/// or a bare name looked up in the runner's own secret store). The platform only ever holds
/// this reference; the runner resolves the value where the task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name the robot file passes to `Import Secret`.
    pub name: String,
    /// Where the runner finds the value.
    #[serde(default, deserialize_with = "scalar_string")]
    pub workspace_key: String,
}

/// `spec.codeBundle`: where a task's robot file lives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeBundleRef {
    /// Git URL, `file://` URL, plain local path, or `builtin://steward`.
    #[serde(default)]
    pub repo_url: String,
    /// Branch, tag or commit; empty means the remote's default branch.
    #[serde(default, rename = "ref", deserialize_with = "scalar_string")]
    pub git_ref: String,
    /// Path of the `.robot` file from the collection root (SLIs and runbooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_to_robot: Option<String>,
    /// Fields this model does not know (SLOs use `pathToYaml`).
    #[serde(flatten)]
    pub extra: Mapping,
}

/// `{name, value}` tag of an SLX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Tag name, e.g. `access`.
    pub name: String,
    /// Tag value; RunWhen coerces every tag value to a string.
    #[serde(default, deserialize_with = "scalar_string")]
    pub value: String,
}

/// `spec` of `workspace.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// Workspace-wide configuration (RunWhen writes a placeholder here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_provided: Vec<ConfigVar>,
    /// Fields this model does not know (`slxGroups`, `permissions`, ...).
    #[serde(flatten)]
    pub extra: Mapping,
}

/// `spec` of `slx.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlxSpec {
    /// Human name shown in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// What the SLX promises, e.g. "Pods should be healthy".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Owner e-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// `{name, value}` tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Fields this model does not know (`imageURL`, `additionalContext`, ...).
    #[serde(flatten)]
    pub extra: Mapping,
}

/// `spec` of `sli.yaml`: a health check run on an interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliSpec {
    /// Locations (runners) that run this SLI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// The robot file to run.
    #[serde(default)]
    pub code_bundle: CodeBundleRef,
    /// Seconds between two runs.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "opt_u64")]
    pub interval_seconds: Option<u64>,
    /// Environment variables for the task.
    #[serde(default)]
    pub config_provided: Vec<ConfigVar>,
    /// Secret references for the task.
    #[serde(default)]
    pub secrets_provided: Vec<SecretRef>,
    /// What the SLI measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields this model does not know (`intervalStrategy`, `alerts`, `displayUnits*`, ...).
    #[serde(flatten)]
    pub extra: Mapping,
}

impl SliSpec {
    /// Interval used when `intervalSeconds` is absent (the RunWhen UI default).
    pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;
    /// Shortest interval accepted; shorter values are raised to it.
    pub const MIN_INTERVAL_SECONDS: u64 = 5;

    /// The interval to schedule with, defaulted and clamped.
    pub fn interval(&self) -> u64 {
        self.interval_seconds
            .unwrap_or(Self::DEFAULT_INTERVAL_SECONDS)
            .max(Self::MIN_INTERVAL_SECONDS)
    }
}

/// `spec` of `runbook.yaml`: troubleshooting tasks run on demand.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunbookSpec {
    /// The location (runner) that runs these tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The robot file to run.
    #[serde(default)]
    pub code_bundle: CodeBundleRef,
    /// Environment variables for the task.
    #[serde(default)]
    pub config_provided: Vec<ConfigVar>,
    /// Secret references for the task.
    #[serde(default)]
    pub secrets_provided: Vec<SecretRef>,
    /// What the runbook does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields this model does not know (`runtimeVarsProvided`, `servicesProvided`, ...).
    #[serde(flatten)]
    pub extra: Mapping,
}

/// `spec` of `slo.yaml`: kept and shown, not executed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloSpec {
    /// Everything; SLO evaluation is not part of the model yet.
    #[serde(flatten)]
    pub extra: Mapping,
}

/// `workspace.yaml`
pub type WorkspaceDoc = Document<WorkspaceSpec>;
/// `slx.yaml`
pub type SlxDoc = Document<SlxSpec>;
/// `sli.yaml`
pub type SliDoc = Document<SliSpec>;
/// `slo.yaml`
pub type SloDoc = Document<SloSpec>;
/// `runbook.yaml`
pub type RunbookDoc = Document<RunbookSpec>;

impl WorkspaceDoc {
    /// The workspace's short name (`metadata.name`).
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

fn scalar_to_string(value: Value) -> Result<String, String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s),
        Value::Tagged(t) => scalar_to_string(t.value),
        Value::Sequence(_) => Err("expected a string, found a list".into()),
        Value::Mapping(_) => Err("expected a string, found a map".into()),
    }
}

fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    scalar_to_string(Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| {
            scalar_to_string(v)
                .map(|v| (k.clone(), v))
                .map_err(|e| serde::de::Error::custom(format!("{k}: {e}")))
        })
        .collect()
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number of seconds, found {n}"))),
        Value::String(s) => s.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected a whole number of seconds, found {s:?}"))
        }),
        other => Err(serde::de::Error::custom(format!(
            "expected a whole number of seconds, found {}",
            serde_yaml::to_string(&other).unwrap_or_default().trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: ws--a\n  labels:\n    slx: ws--a\n  futureMeta: 1\nspec:\n  displayUnitsLong: OK\n  intervalStrategy: intermezzo\n  intervalSeconds: 60\n  codeBundle:\n    repoUrl: https://example.com/c.git\n    ref: main\n    pathToRobot: codebundles/x/sli.robot\n  configProvided:\n  - name: PORT\n    value: 80\n  alerts:\n    warning:\n      operator: <\n      threshold: '1'\n      for: 20m\nstatus: {seen: true}\n";
        let doc: SliDoc = serde_yaml::from_str(text).unwrap();
        assert_eq!(doc.spec.interval(), 60);
        assert_eq!(doc.spec.config_provided[0].value, "80");
        let written = serde_yaml::to_string(&doc).unwrap();
        let again: Value = serde_yaml::from_str(&written).unwrap();
        let original: Value = serde_yaml::from_str(text).unwrap();
        for path in [
            &["spec", "displayUnitsLong"][..],
            &["spec", "intervalStrategy"],
            &["spec", "alerts", "warning", "for"],
            &["metadata", "futureMeta"],
            &["status", "seen"],
        ] {
            let get = |v: &Value| path.iter().fold(Some(v.clone()), |v, k| v.and_then(|v| v.get(*k).cloned()));
            assert_eq!(get(&again), get(&original), "field {path:?} changed");
            assert!(get(&again).is_some(), "field {path:?} lost");
        }
    }

    #[test]
    fn interval_is_defaulted_and_clamped() {
        let mut spec = SliSpec::default();
        assert_eq!(spec.interval(), 300);
        spec.interval_seconds = Some(1);
        assert_eq!(spec.interval(), SliSpec::MIN_INTERVAL_SECONDS);
    }

    #[test]
    fn interval_as_quoted_string_is_accepted_and_garbage_is_refused() {
        let ok: SliSpec = serde_yaml::from_str("intervalSeconds: '120'\n").unwrap();
        assert_eq!(ok.interval(), 120);
        let err = serde_yaml::from_str::<SliSpec>("intervalSeconds: soon\n").unwrap_err();
        assert!(err.to_string().contains("whole number of seconds"), "{err}");
    }
}

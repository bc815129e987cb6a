//! RunWhen-format workspace objects (`apiVersion: runwhen.com/v1`) and the workspace tree.
//!
//! The typed structs hold the fields Steward uses. A [`Document`] also keeps the whole parsed
//! YAML, and writing it back overlays the typed fields on it, so fields the model does not know
//! survive a round trip. (The typed structs deliberately have no catch-all `flatten` map: serde
//! buffers flattened structs and then loses the line of a bad value.) Known scalar fields that
//! RunWhen writes either quoted or bare (`value: 80` or `value: "80"`) are read as strings.

mod alerts;
mod error;
mod tree;

pub use alerts::{AlertLevel, AlertRule, SliAlerts, parse_duration};
pub use error::{LoadError, LoadProblem};
pub use tree::{SlxDocuments, WorkspaceTree, is_valid_slx_name};

use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;
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
#[serde(expecting = "metadata: a map with name, labels and annotations")]
pub struct ObjectMeta {
    /// `metadata.name`: for SLX documents the full name `<workspace>--<slx>`.
    #[serde(default)]
    pub name: String,
    /// `metadata.labels`
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// One workspace document: `apiVersion`, `kind`, `metadata` and a typed `spec`, plus the
/// document as parsed so that unknown fields are written back.
#[derive(Debug, Clone, PartialEq)]
pub struct Document<S> {
    /// Always [`API_VERSION`] for documents this model accepts.
    pub api_version: String,
    /// The kind as written (checked against the file it came from when a tree is loaded).
    pub kind: String,
    /// Name, labels, annotations.
    pub metadata: ObjectMeta,
    /// The kind-specific part.
    pub spec: S,
    raw: Value,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a document: a map with apiVersion, kind, metadata and spec"
)]
struct Typed<S> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: S,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypedRef<'a, S> {
    api_version: &'a str,
    kind: &'a str,
    metadata: &'a ObjectMeta,
    spec: &'a S,
}

impl<S: serde::de::DeserializeOwned + Default> Document<S> {
    /// Parses YAML text. Errors carry the line and column of the offending value.
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        let typed: Typed<S> = serde_yaml::from_str(text)?;
        let raw: Value = serde_yaml::from_str(text)?;
        Ok(Document {
            api_version: typed.api_version,
            kind: typed.kind,
            metadata: typed.metadata,
            spec: typed.spec,
            raw,
        })
    }
}

impl<S> Document<S> {
    /// The document as parsed, unknown fields included.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl<S: Serialize> Serialize for Document<S> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let typed = TypedRef {
            api_version: &self.api_version,
            kind: &self.kind,
            metadata: &self.metadata,
            spec: &self.spec,
        };
        let typed = serde_yaml::to_value(typed).map_err(Z::Error::custom)?;
        let mut merged = self.raw.clone();
        overlay(&mut merged, typed);
        merged.serialize(serializer)
    }
}

impl<'de, S: serde::de::DeserializeOwned + Default> Deserialize<'de> for Document<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        let typed: Typed<S> =
            serde_yaml::from_value(raw.clone()).map_err(serde::de::Error::custom)?;
        Ok(Document {
            api_version: typed.api_version,
            kind: typed.kind,
            metadata: typed.metadata,
            spec: typed.spec,
            raw,
        })
    }
}

/// Writes `typed` over `base`: maps merge key by key (keys only `base` has are kept), lists of
/// the same length merge item by item, anything else is replaced.
fn overlay(base: &mut Value, typed: Value) {
    match (base, typed) {
        (Value::Mapping(base), Value::Mapping(typed)) => {
            for (key, value) in typed {
                match base.get_mut(&key) {
                    Some(existing) => overlay(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Sequence(base), Value::Sequence(typed)) if base.len() == typed.len() => {
            for (existing, value) in base.iter_mut().zip(typed) {
                overlay(existing, value);
            }
        }
        (base, typed) => *base = typed,
    }
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
    /// Path of the queries file (SLOs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_to_yaml: Option<String>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
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
    /// Thresholds that raise alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<SliAlerts>,
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
}

/// `spec` of `slo.yaml`: kept and shown, not executed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloSpec {
    /// `objective`, e.g. 99.9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<serde_yaml::Value>,
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

/// Reads any YAML scalar as text (`80`, `true`, `"80"`); lists and maps are refused while
/// the parser is still on them, so the error points at the value itself.
struct ScalarText;

impl<'de> serde::de::Visitor<'de> for ScalarText {
    type Value = String;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(ScalarText)
    }
}

fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(ScalarText)
}

fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarText).map(Text)
        }
    }
    let map = Option::<BTreeMap<String, Text>>::deserialize(d)?.unwrap_or_default();
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Whole seconds, written bare or quoted.
struct Seconds;

impl<'de> serde::de::Visitor<'de> for Seconds {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number of seconds")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse()
            .map(Some)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Seconds)
    }
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(Seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: ws--a\n  labels:\n    slx: ws--a\n  futureMeta: 1\nspec:\n  displayUnitsLong: OK\n  intervalStrategy: intermezzo\n  intervalSeconds: 60\n  codeBundle:\n    repoUrl: https://example.com/c.git\n    ref: main\n    pathToRobot: codebundles/x/sli.robot\n  configProvided:\n  - name: PORT\n    value: 80\n  alerts:\n    warning:\n      operator: <\n      threshold: '1'\n      for: 20m\nstatus: {seen: true}\n";
        let doc = SliDoc::parse(text).unwrap();
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
            let get = |v: &Value| path.iter().try_fold(v.clone(), |v, k| v.get(*k).cloned());
            assert_eq!(get(&again), get(&original), "field {path:?} changed");
            assert!(get(&again).is_some(), "field {path:?} lost");
        }
    }

    #[test]
    fn typed_edits_are_written_over_the_original() {
        let text = "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: a\nspec:\n  location: old\n  runtimeVarsProvided: [{name: X}]\n  configProvided:\n  - {name: A, value: '1', note: kept}\n";
        let mut doc = RunbookDoc::parse(text).unwrap();
        doc.spec.location = Some("new".into());
        doc.spec.config_provided[0].value = "2".into();
        let back: Value = serde_yaml::to_value(&doc).unwrap();
        assert_eq!(back["spec"]["location"], "new");
        assert_eq!(back["spec"]["configProvided"][0]["value"], "2");
        assert_eq!(back["spec"]["configProvided"][0]["note"], "kept");
        assert_eq!(back["spec"]["runtimeVarsProvided"][0]["name"], "X");
    }

    #[test]
    fn a_bad_value_in_a_spec_is_located_exactly() {
        let err = SliDoc::parse("apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nspec:\n  codeBundle: {repoUrl: x}\n  intervalSeconds: [30]\n").unwrap_err();
        assert_eq!(err.location().unwrap().line(), 5, "{err}");
        assert!(err.to_string().contains("spec.intervalSeconds"), "{err}");
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
        let err = serde_yaml::from_str::<SliSpec>("intervalSeconds: -5\n").unwrap_err();
        assert!(err.to_string().contains("whole number of seconds"), "{err}");
    }
}

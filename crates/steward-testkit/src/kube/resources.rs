//! The resource types the server serves: the built-in ones, OpenShift projects when asked for,
//! and whatever a stored CustomResourceDefinition declares.

use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One resource (a plural in a group), served at one or more versions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceType {
    pub group: String,
    /// The served versions, highest priority (the preferred one) first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether a `status` subresource exists (then the main endpoint keeps the stored status).
    pub status: bool,
    /// Built-in lists carry no per-item kind/apiVersion; custom resource lists do.
    pub builtin: bool,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }
}

pub(crate) const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// (group, version, plural, kind, namespaced, short names, status subresource, in category "all")
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
);

#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "Namespace", false, &["ns"], true, false),
    ("", "v1", "pods", "Pod", true, &["po"], true, true),
    ("", "v1", "services", "Service", true, &["svc"], true, true),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false),
    ("", "v1", "secrets", "Secret", true, &[], false, false),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"], true, false),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false, false),
    ("", "v1", "events", "Event", true, &["ev"], false, false),
    ("", "v1", "nodes", "Node", false, &["no"], true, false),
    ("", "v1", "resourcequotas", "ResourceQuota", true, &["quota"], true, false),
    ("", "v1", "limitranges", "LimitRange", true, &["limits"], false, false),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"], true, true),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"], true, true),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true, true),
    ("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], true, true),
    ("batch", "v1", "jobs", "Job", true, &[], true, true),
    ("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true, true),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, &["ing"], true, false),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, &["crd", "crds"], true, false),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, &[], false, false),
];

fn builtin(entry: &Builtin) -> ResourceType {
    let (group, version, plural, kind, namespaced, short, status, all) = *entry;
    ResourceType {
        group: group.into(),
        versions: vec![version.into()],
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        status,
        builtin: true,
    }
}

/// OpenShift's `project.openshift.io/v1` projects: cluster-scoped mirrors of namespaces.
pub(crate) fn openshift_projects() -> ResourceType {
    ResourceType {
        group: "project.openshift.io".into(),
        versions: vec!["v1".into()],
        plural: "projects".into(),
        singular: "project".into(),
        kind: "Project".into(),
        list_kind: "ProjectList".into(),
        namespaced: false,
        short_names: vec![],
        categories: vec![],
        status: false,
        builtin: true,
    }
}

/// Every resource served, keyed by (group, plural).
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: BTreeMap<(String, String), ResourceType>,
}

impl Registry {
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(builtin)
            .map(|rt| ((rt.group.clone(), rt.plural.clone()), rt))
            .collect();
        Registry { types }
    }

    pub fn insert(&mut self, rt: ResourceType) {
        self.types.insert((rt.group.clone(), rt.plural.clone()), rt);
    }

    pub fn remove(&mut self, group: &str, plural: &str) -> Option<ResourceType> {
        self.types.remove(&(group.to_string(), plural.to_string()))
    }

    /// The resource `plural` of `group`, at whatever versions it is served.
    pub fn resource(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types.get(&(group.to_string(), plural.to_string()))
    }

    /// The resource `plural` of `group` when it is served at `version`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_string(), plural.to_string()))
            .filter(|rt| rt.versions.iter().any(|v| v == version))
    }

    /// The resource whose kind is `kind` in `api_version` (`v1`, `apps/v1`).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<(&ResourceType, String)> {
        let (group, version) = split_api_version(api_version);
        self.types
            .values()
            .find(|rt| {
                rt.group == group && rt.kind == kind && rt.versions.iter().any(|v| v == version)
            })
            .map(|rt| (rt, version.to_string()))
    }

    /// The resources served at `group`/`version`.
    pub fn in_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> {
        self.types
            .values()
            .filter(move |rt| rt.group == group && rt.versions.iter().any(|v| v == version))
    }

    /// The named groups (not the core one) with their versions, highest priority first.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rt in self.types.values().filter(|rt| !rt.group.is_empty()) {
            let versions = groups.entry(rt.group.clone()).or_default();
            for v in &rt.versions {
                if !versions.contains(v) {
                    versions.push(v.clone());
                }
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by(|a, b| version_priority(a, b));
        }
        groups
    }
}

/// `apps/v1` → ("apps", "v1"); `v1` → ("", "v1").
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Kubernetes' version order: GA before beta before alpha, higher numbers first, then
/// anything that does not look like a Kubernetes version, alphabetically.
pub(crate) fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u32, u32)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u32 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        let (stability, minor) = if tail.is_empty() {
            (2, "0")
        } else if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((stability, major, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The resource a CustomResourceDefinition declares, or why it declares none.
pub(crate) fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let text = |path: &str| {
        crd.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let strings = |path: &str| -> Vec<String> {
        crd.pointer(path)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = text("/spec/group");
    let plural = text("/spec/names/plural");
    let kind = text("/spec/names/kind");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err("spec.group, spec.names.plural and spec.names.kind are required".into());
    }
    let name = text("/metadata/name");
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: must be spec.names.plural+\".\"+spec.group ({plural}.{group})"
        ));
    }
    let namespaced = match text("/spec/scope").as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(format!(
                "spec.scope: must be Namespaced or Cluster, not {other:?}"
            ));
        }
    };
    let served: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    let mut versions: Vec<String> = served
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    if versions.is_empty() {
        return Err("spec.versions: at least one version must be served".into());
    }
    versions.sort_by(|a, b| version_priority(a, b));
    let singular = Some(text("/spec/names/singular"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = Some(text("/spec/names/listKind"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{kind}List"));
    Ok(ResourceType {
        group,
        versions,
        plural,
        singular,
        kind,
        list_kind,
        namespaced,
        short_names: strings("/spec/names/shortNames"),
        categories: strings("/spec/names/categories"),
        status: served
            .iter()
            .any(|v| v.pointer("/subresources/status").is_some()),
        builtin: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_kubernetes_does() {
        let mut v = vec![
            "v1alpha1", "v1", "foo", "v2beta1", "v1beta2", "v2", "v1beta1",
        ];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            v,
            [
                "v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }
}

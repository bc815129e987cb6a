//! Indexed resources: what indexers produce and what rules match.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// Level of detail: how much is generated for a namespace (or cloud scope).
///
/// Ordered: an output item is emitted when its level is at most the resource's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lod {
    None,
    Basic,
    Detailed,
}

impl Lod {
    /// Parses `none`/`basic`/`detailed` (any case) or the integers 0/1/2, as runwhen-local does.
    pub fn parse(text: &str) -> Option<Lod> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "0" => Some(Lod::None),
            "basic" | "1" => Some(Lod::Basic),
            "detailed" | "2" => Some(Lod::Detailed),
            _ => None,
        }
    }

    /// Parses a YAML/JSON value: a string or an integer.
    pub fn from_value(value: &serde_json::Value) -> Option<Lod> {
        match value {
            serde_json::Value::String(s) => Lod::parse(s),
            serde_json::Value::Number(n) => Lod::parse(&n.to_string()),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lod::None => "none",
            Lod::Basic => "basic",
            Lod::Detailed => "detailed",
        }
    }
}

impl fmt::Display for Lod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One indexed resource.
///
/// `resource_type` uses runwhen-local's names: `cluster`, `namespace`, `deployment`,
/// `daemonset`, `statefulset`, `job`, `cronjob`, `ingress`, `service`,
/// `persistentvolumeclaim`, `pod`, and `<plural>.<group>` for custom resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `kubernetes` (clouds later).
    pub platform: String,
    pub resource_type: String,
    pub name: String,
    /// `<cluster>/<ns>/<name>`, `<cluster>/<ns>/<plural>.<group>/<name>`,
    /// `<cluster>/<plural>.<group>/<name>` (cluster-scoped), `<cluster>/<name>` for a
    /// namespace and `<cluster>` for a cluster.
    pub qualified_name: String,
    /// The kubeconfig cluster name the resource was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The kubeconfig context it was read through (the first one seen for a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The effective level of detail (the namespace's, or `detailed` for cluster-level
    /// resources).
    pub lod: Lod,
    /// The whole object as the API returned it (camelCase), label and annotation values as
    /// strings. For a `cluster` resource: `name`, `context`, `server` and any
    /// `workspace-builder` kubeconfig extension fields (`cluster_type`, `auth_type`, ...).
    pub payload: Payload,
}

impl Resource {
    /// `metadata.labels` as strings (empty when absent).
    pub fn labels(&self) -> BTreeMap<String, String> {
        string_map(self.payload.value().pointer("/metadata/labels"))
    }

    /// `metadata.annotations` as strings (empty when absent).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map(self.payload.value().pointer("/metadata/annotations"))
    }

    /// The identity used to order and de-duplicate resources.
    pub fn key(&self) -> (&str, &str, &str) {
        (&self.platform, &self.resource_type, &self.qualified_name)
    }
}

fn string_map(value: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    let Some(serde_json::Value::Object(map)) = value else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// A resource's object, kept as compact JSON text and parsed where it is read.
///
/// A registry holds every listed object for the whole run. As `serde_json::Value` (with
/// `preserve_order`, an index map per object) an object takes about eight times its JSON size;
/// as text it takes its size. Matching parses each candidate once and rendering parses the
/// objects it renders, so the parsed forms live only as long as they are used. The text is
/// written to and read from snapshots as it is, so a snapshot round trip is byte for byte.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The compact text of `value`.
    pub fn new(value: &serde_json::Value) -> Payload {
        Payload(serde_json::value::to_raw_value(value).expect("a JSON value serialises"))
    }

    /// The object, parsed.
    pub fn value(&self) -> serde_json::Value {
        self.parse()
    }

    /// The object parsed into any type that reads JSON (a template value, say).
    ///
    /// # Panics
    ///
    /// Never for the types this crate asks for: the text was valid JSON when it was stored.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(self.0.get()).expect("a stored payload is valid JSON")
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Payload {
        Payload::new(&value)
    }
}

impl PartialEq for Payload {
    /// Equal when the objects are, whatever the key order or spacing of the texts.
    fn eq(&self, other: &Payload) -> bool {
        self.as_str() == other.as_str() || self.value() == other.value()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every indexed resource, by type, in qualified-name order whatever order they were listed
/// in (so that generation is deterministic).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_type: BTreeMap<String, BTreeMap<String, Resource>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a resource; a resource with the same type and qualified name replaces the earlier
    /// one (the same object seen through two contexts of one cluster).
    pub fn insert(&mut self, resource: Resource) {
        self.by_type
            .entry(resource.resource_type.clone())
            .or_default()
            .insert(resource.qualified_name.clone(), resource);
    }

    /// Adds a resource unless one with the same identity is already there (the first context
    /// seen for a cluster wins, as upstream).
    pub fn insert_if_absent(&mut self, resource: Resource) {
        self.by_type
            .entry(resource.resource_type.clone())
            .or_default()
            .entry(resource.qualified_name.clone())
            .or_insert(resource);
    }

    /// The resources of one type, in qualified-name order.
    pub fn of_type<'a>(&'a self, resource_type: &str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(|m| m.values())
    }

    pub fn get(&self, resource_type: &str, qualified_name: &str) -> Option<&Resource> {
        self.by_type.get(resource_type)?.get(qualified_name)
    }

    /// Every resource, by type then qualified name.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.by_type.values().flat_map(|m| m.values())
    }

    /// Keeps the resources for which `keep` returns true; `keep` may change them (but not
    /// their type or qualified name).
    pub fn retain_mut(&mut self, mut keep: impl FnMut(&mut Resource) -> bool) {
        for by_name in self.by_type.values_mut() {
            by_name.retain(|_, r| keep(r));
        }
        self.by_type.retain(|_, m| !m.is_empty());
    }

    /// Resource count per type.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.by_type
            .iter()
            .map(|(t, m)| (t.clone(), m.len()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_type.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The namespace resource a namespaced resource belongs to.
    pub fn namespace_of(&self, resource: &Resource) -> Option<&Resource> {
        let cluster = resource.cluster.as_deref()?;
        let ns = resource.namespace.as_deref()?;
        self.get("namespace", &format!("{cluster}/{ns}"))
    }

    /// The cluster resource a resource belongs to.
    pub fn cluster_of(&self, resource: &Resource) -> Option<&Resource> {
        self.get("cluster", resource.cluster.as_deref()?)
    }
}

impl FromIterator<Resource> for Registry {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        let mut registry = Registry::new();
        for r in iter {
            registry.insert(r);
        }
        registry
    }
}

impl Extend<Resource> for Registry {
    fn extend<I: IntoIterator<Item = Resource>>(&mut self, iter: I) {
        for r in iter {
            self.insert(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_keep_their_text_and_compare_as_objects() {
        let a = Payload::from(json!({"b": 1, "a": [true, null]}));
        assert_eq!(a.as_str(), r#"{"b":1,"a":[true,null]}"#);
        let spaced: Payload = serde_json::from_str(r#"{ "a": [true, null], "b": 1 }"#).unwrap();
        assert_eq!(spaced.as_str(), r#"{ "a": [true, null], "b": 1 }"#);
        assert_eq!(a, spaced);
        assert_ne!(a, Payload::from(json!({"b": 1})));
        assert_eq!(a.value()["a"][0], true);
    }
}

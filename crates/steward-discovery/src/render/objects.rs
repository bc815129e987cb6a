//! Resources as templates see them: the attributes runwhen-local's `Resource` objects carry.
//!
//! A Kubernetes object (`match_resource` for a deployment, say) has `name`, `qualified_name`,
//! `resource` (the API object), `resource_type` (`.name`, `.platform.name`), `kind`, `uid`,
//! `labels`, `annotations`, `namespace` (the namespace resource) and `namespace_name`. A
//! namespace resource has `cluster` (the cluster resource) and `lod` instead of `namespace`; a
//! cluster resource has no `resource`, only its payload's fields (`name`, `context`, `server`,
//! kubeconfig extension fields such as `cluster_type` and `auth_type`). Resources of other
//! platforms expose their payload's top-level fields too, as upstream sets them as
//! attributes. An attribute upstream does not set is undefined here too, so `is defined`
//! tests come out the same.
//!
//! The payload is parsed into a template value when a template first reads something from it,
//! once per object. Namespaces and clusters, which thousands of SLXs share, are made once per
//! run ([`ObjectCache`]); any other resource once per SLX, so that its parsed payload is freed
//! with the SLX's context instead of living until the end of the run.

use crate::resource::{Payload, Registry, Resource};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// A resource as a template value.
#[derive(Debug)]
pub(crate) struct ResourceObject {
    resource: Resource,
    /// The namespace resource of a namespaced object.
    namespace: Option<Value>,
    /// The cluster resource of a namespace or cluster-scoped object.
    cluster: Option<Value>,
    payload: OnceLock<Value>,
}

impl ResourceObject {
    fn is_kubernetes(&self) -> bool {
        self.resource.platform == "kubernetes"
    }

    /// Cluster resources and other platforms' resources carry their fields as attributes.
    fn exposes_payload_fields(&self) -> bool {
        !self.is_kubernetes() || self.resource.resource_type == "cluster"
    }

    /// A namespaced Kubernetes object other than the namespace itself.
    fn in_namespace(&self) -> bool {
        self.is_kubernetes()
            && self.resource.namespace.is_some()
            && !matches!(
                self.resource.resource_type.as_str(),
                "namespace" | "cluster"
            )
    }

    fn payload(&self) -> Value {
        self.payload
            .get_or_init(|| self.resource.payload.parse())
            .clone()
    }

    /// A top-level field of the payload; `None` when it has no such field.
    fn payload_field(&self, key: &str) -> Option<Value> {
        field(&self.payload(), key)
    }

    fn metadata_field(&self, key: &str) -> Option<Value> {
        field(&self.payload_field("metadata")?, key)
    }

    fn metadata_map(&self, key: &str) -> Value {
        match self.metadata_field(key) {
            Some(map) if map.kind() == ValueKind::Map => map,
            _ => Value::from_pairs(std::iter::empty::<(Value, Value)>()),
        }
    }
}

/// `map[key]` when `map` is a mapping that has `key` (a null value included).
fn field(map: &Value, key: &str) -> Option<Value> {
    if map.kind() != ValueKind::Map {
        return None;
    }
    map.get_attr(key).ok().filter(|v| !v.is_undefined())
}

impl Object for ResourceObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let r = &self.resource;
        let is_cluster = self.is_kubernetes() && r.resource_type == "cluster";
        let known = match key {
            "name" => Some(Value::from(r.name.as_str())),
            "qualified_name" => Some(Value::from(r.qualified_name.as_str())),
            "resource_type" => Some(Value::from_object(ResourceType {
                name: r.resource_type.clone(),
                platform: r.platform.clone(),
            })),
            // A cluster resource is its kubeconfig entry; it has no API object.
            "resource" if !is_cluster => Some(self.payload()),
            _ => None,
        };
        if known.is_some() {
            return known;
        }
        if self.is_kubernetes() && !is_cluster {
            let value = match key {
                "kind" => self.payload_field("kind").filter(|k| k.as_str().is_some()),
                "uid" => self.metadata_field("uid").filter(|u| u.as_str().is_some()),
                "labels" => Some(self.metadata_map("labels")),
                "annotations" => Some(self.metadata_map("annotations")),
                "namespace" if self.in_namespace() => self.namespace.clone(),
                "namespace_name" if self.in_namespace() => r.namespace.as_deref().map(Value::from),
                "cluster" if !self.in_namespace() => self.cluster.clone(),
                "lod" if r.resource_type == "namespace" => Some(Value::from(r.lod.as_str())),
                _ => None,
            };
            if value.is_some() {
                return value;
            }
        }
        if self.exposes_payload_fields() {
            if let Some(v) = self.payload_field(key) {
                return Some(v);
            }
            if key == "context" {
                return r.context.as_deref().map(Value::from);
            }
        }
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource.name)
    }
}

/// `match_resource.resource_type`: prints as its name.
#[derive(Debug)]
struct ResourceType {
    name: String,
    platform: String,
}

impl Object for ResourceType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.name.as_str())),
            "platform" => Some(Value::from_pairs([("name", self.platform.as_str())])),
            _ => None,
        }
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

type Key = (String, String, String);

/// Template values of namespaces and clusters, made once per run and shared by every SLX that
/// refers to them (one is shared by thousands); other resources get a new value each time.
#[derive(Debug, Default)]
pub(crate) struct ObjectCache {
    objects: Mutex<HashMap<Key, Value>>,
}

impl ObjectCache {
    /// The value for `resource`, with its namespace and cluster found in `registry` (or made
    /// up from the resource's own fields when the registry lacks them).
    pub fn get(&self, resource: &Resource, registry: &Registry) -> Value {
        let shared = matches!(resource.resource_type.as_str(), "namespace" | "cluster");
        if shared && let Some(v) = self.lock().get(&key_of(resource)) {
            return v.clone();
        }
        let is_kubernetes = resource.platform == "kubernetes";
        let (namespace, cluster) = match resource.resource_type.as_str() {
            _ if !is_kubernetes => (None, None),
            "cluster" => (None, None),
            "namespace" => (None, self.cluster_of(resource, registry)),
            _ if resource.namespace.is_some() => (self.namespace_of(resource, registry), None),
            // A cluster-scoped custom resource points at its cluster directly.
            _ => (None, self.cluster_of(resource, registry)),
        };
        let value = Value::from_object(ResourceObject {
            resource: resource.clone(),
            namespace,
            cluster,
            payload: OnceLock::new(),
        });
        if shared {
            self.lock().insert(key_of(resource), value.clone());
        }
        value
    }

    /// The cluster resource's value for a Kubernetes resource (itself for a cluster).
    pub fn cluster_of(&self, resource: &Resource, registry: &Registry) -> Option<Value> {
        if resource.resource_type == "cluster" {
            return Some(self.get(resource, registry));
        }
        match registry.cluster_of(resource) {
            Some(cluster) => Some(self.get(cluster, registry)),
            None => {
                let name = resource.cluster.as_deref()?;
                let context = resource.context.clone().unwrap_or_default();
                let payload = serde_json::json!({"name": name, "context": context});
                Some(self.get(
                    &stand_in(resource, "cluster", name, name, payload),
                    registry,
                ))
            }
        }
    }

    /// The namespace resource's value for a namespaced Kubernetes resource (itself for a
    /// namespace).
    pub fn namespace_of(&self, resource: &Resource, registry: &Registry) -> Option<Value> {
        match resource.resource_type.as_str() {
            "namespace" => return Some(self.get(resource, registry)),
            "cluster" => return None,
            _ => {}
        }
        match registry.namespace_of(resource) {
            Some(ns) => Some(self.get(ns, registry)),
            None => {
                let ns = resource.namespace.as_deref()?;
                let qualified = match resource.cluster.as_deref() {
                    Some(c) => format!("{c}/{ns}"),
                    None => ns.to_string(),
                };
                let payload = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let mut stand_in = stand_in(resource, "namespace", ns, &qualified, payload);
                stand_in.namespace = Some(ns.to_string());
                Some(self.get(&stand_in, registry))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Value>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key_of(r: &Resource) -> Key {
    (
        r.platform.clone(),
        r.resource_type.clone(),
        r.qualified_name.clone(),
    )
}

/// A namespace or cluster the registry does not hold, made from what `resource` knows.
fn stand_in(
    resource: &Resource,
    resource_type: &str,
    name: &str,
    qualified: &str,
    payload: serde_json::Value,
) -> Resource {
    Resource {
        platform: resource.platform.clone(),
        resource_type: resource_type.into(),
        name: name.into(),
        qualified_name: qualified.into(),
        cluster: resource.cluster.clone(),
        context: resource.context.clone(),
        namespace: None,
        lod: resource.lod,
        payload: Payload::new(&payload),
    }
}

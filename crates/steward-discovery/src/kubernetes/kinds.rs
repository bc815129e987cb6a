//! The Kubernetes kinds discovery lists, and how API objects become [`Resource`]s.

use crate::resource::{Lod, Payload, Resource};
use serde_json::Value;

/// A listable kind: its registry type name and where the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind {
    /// The registry type: `deployment`, or `<plural>.<group>` for custom resources.
    pub resource_type: String,
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    /// `Deployment`; for custom resources found from a rule reference, filled from discovery.
    pub kind: String,
    pub namespaced: bool,
}

impl Kind {
    fn builtin(resource_type: &str, group: &str, version: &str, kind: &str) -> Kind {
        let plural = match resource_type {
            "ingress" => "ingresses".to_string(),
            other => format!("{other}s"),
        };
        Kind {
            resource_type: resource_type.into(),
            group: group.into(),
            version: version.into(),
            plural,
            kind: kind.into(),
            namespaced: true,
        }
    }

    pub fn is_custom(&self) -> bool {
        self.resource_type.contains('.')
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The built-in namespaced kinds, listed in every selected namespace whatever the rules
/// reference (as upstream), plus pods, which upstream accepts in rules but never lists.
pub fn builtin_kinds() -> Vec<Kind> {
    vec![
        Kind::builtin("deployment", "apps", "v1", "Deployment"),
        Kind::builtin("daemonset", "apps", "v1", "DaemonSet"),
        Kind::builtin("statefulset", "apps", "v1", "StatefulSet"),
        Kind::builtin("job", "batch", "v1", "Job"),
        Kind::builtin("cronjob", "batch", "v1", "CronJob"),
        Kind::builtin("ingress", "networking.k8s.io", "v1", "Ingress"),
        Kind::builtin("service", "", "v1", "Service"),
        Kind::builtin("persistentvolumeclaim", "", "v1", "PersistentVolumeClaim"),
        Kind::builtin("pod", "", "v1", "Pod"),
    ]
}

/// The built-in kind of an object (by `apiVersion` group and `kind`), if it is one.
pub fn builtin_kind_of(api_version: &str, kind: &str) -> Option<Kind> {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    builtin_kinds()
        .into_iter()
        .find(|k| k.kind == kind && k.group == group)
}

/// Qualified name as upstream forms it.
pub fn qualified_name(cluster: &str, kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match (namespace, kind.is_custom()) {
        (Some(ns), false) => format!("{cluster}/{ns}/{name}"),
        (Some(ns), true) => format!("{cluster}/{ns}/{}/{name}", kind.resource_type),
        (None, true) => format!("{cluster}/{}/{name}", kind.resource_type),
        (None, false) => format!("{cluster}/{name}"),
    }
}

/// Trims what rules and templates never need: `metadata.managedFields` (often half of an
/// object) and `metadata.resourceVersion` (the API server's write counter, which would make
/// two snapshots of an unchanged cluster differ). Label and annotation values become strings.
pub fn normalize(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
        for key in ["labels", "annotations"] {
            if let Some(Value::Object(map)) = meta.get_mut(key) {
                for v in map.values_mut() {
                    if !v.is_string() {
                        let text = match &*v {
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        *v = Value::String(text);
                    }
                }
            }
        }
    }
    object
}

fn meta_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str()
}

/// A listed object as a registry resource. `None` when it has no name.
pub fn object_resource(
    cluster: &str,
    context: &str,
    kind: &Kind,
    object: Value,
    lod: Lod,
) -> Option<Resource> {
    let name = meta_str(&object, "name")?.to_string();
    let namespace = if kind.namespaced {
        meta_str(&object, "namespace").map(str::to_string)
    } else {
        None
    };
    let mut object = normalize(object);
    if let Some(map) = object.as_object_mut() {
        map.entry("kind")
            .or_insert_with(|| Value::String(kind.kind.clone()));
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(kind.api_version()));
    }
    Some(Resource {
        platform: "kubernetes".into(),
        resource_type: kind.resource_type.clone(),
        qualified_name: qualified_name(cluster, kind, namespace.as_deref(), &name),
        name,
        cluster: Some(cluster.into()),
        context: Some(context.into()),
        namespace,
        lod,
        payload: Payload::new(&object),
    })
}

/// The `namespace` resource for a Namespace object.
pub fn namespace_resource(
    cluster: &str,
    context: &str,
    object: Value,
    lod: Lod,
) -> Option<Resource> {
    let name = meta_str(&object, "name")?.to_string();
    Some(Resource {
        platform: "kubernetes".into(),
        resource_type: "namespace".into(),
        qualified_name: format!("{cluster}/{name}"),
        namespace: Some(name.clone()),
        name,
        cluster: Some(cluster.into()),
        context: Some(context.into()),
        lod,
        payload: Payload::new(&normalize(object)),
    })
}

/// The `cluster` resource: its payload carries what templates read as `cluster.<field>`
/// (`name`, `context`, `server` and the kubeconfig's `workspace-builder` extension fields).
pub fn cluster_resource(
    name: &str,
    context: &str,
    server: &str,
    extension: Option<&Value>,
) -> Resource {
    let mut payload = serde_json::Map::new();
    if let Some(Value::Object(ext)) = extension {
        for (k, v) in ext {
            payload.insert(k.clone(), v.clone());
        }
    }
    payload.insert("name".into(), Value::String(name.into()));
    payload.insert("context".into(), Value::String(context.into()));
    payload.insert("server".into(), Value::String(server.into()));
    Resource {
        platform: "kubernetes".into(),
        resource_type: "cluster".into(),
        name: name.into(),
        qualified_name: name.into(),
        cluster: Some(name.into()),
        context: Some(context.into()),
        namespace: None,
        lod: Lod::Detailed,
        payload: Payload::new(&Value::Object(payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qualified_names_follow_upstream() {
        let deploy = builtin_kind_of("apps/v1", "Deployment").unwrap();
        assert_eq!(qualified_name("c", &deploy, Some("ns"), "web"), "c/ns/web");
        let crd = Kind {
            resource_type: "certificates.cert-manager.io".into(),
            group: "cert-manager.io".into(),
            version: "v1".into(),
            plural: "certificates".into(),
            kind: "Certificate".into(),
            namespaced: true,
        };
        assert_eq!(
            qualified_name("c", &crd, Some("ns"), "tls"),
            "c/ns/certificates.cert-manager.io/tls"
        );
        assert_eq!(
            qualified_name("c", &crd, None, "tls"),
            "c/certificates.cert-manager.io/tls"
        );
    }

    #[test]
    fn objects_lose_managed_fields_and_keep_string_labels() {
        let kind = builtin_kind_of("v1", "Service").unwrap();
        let object = json!({"metadata": {"name": "s", "namespace": "n",
            "labels": {"a": "b", "n": 1}, "managedFields": [{"x": 1}], "resourceVersion": "42"}});
        let r = object_resource("c", "ctx", &kind, object, Lod::Basic).unwrap();
        assert_eq!(r.qualified_name, "c/n/s");
        let payload = r.payload.value();
        assert!(payload["metadata"].get("managedFields").is_none());
        assert!(payload["metadata"].get("resourceVersion").is_none());
        assert_eq!(payload["metadata"]["labels"]["n"], "1");
        assert_eq!(payload["kind"], "Service");
        assert_eq!(payload["apiVersion"], "v1");
    }
}

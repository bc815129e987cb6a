//! Sample resources shaped the way the Kubernetes indexer stores them, shared by the render
//! tests.

#![allow(dead_code)]

use serde_json::{Value, json};
use steward_discovery::naming::{NameMode, SlxName, full_name, qualified_name};
use steward_discovery::{Lod, Registry, Resource};

pub const CLUSTER: &str = "prod-cluster";
pub const CONTEXT: &str = "prod-ctx";
pub const NAMESPACE: &str = "online-boutique";

fn object(kind: &str, api_version: &str, name: &str, namespaced: bool, spec: Value) -> Value {
    let mut metadata = json!({
        "name": name,
        "uid": format!("uid-{name}"),
        "labels": {"app": name, "app.kubernetes.io/instance": "boutique", "tier": "frontend"},
        "annotations": {"external-dns.alpha.kubernetes.io/hostname": "shop.example.com"},
    });
    if namespaced {
        metadata["namespace"] = json!(NAMESPACE);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})
}

pub fn resource(resource_type: &str, name: &str, payload: Value) -> Resource {
    let (namespace, qualified) = match resource_type {
        "cluster" => (None, name.to_string()),
        "namespace" => (Some(name.to_string()), format!("{CLUSTER}/{name}")),
        t if t.contains('.') && payload.pointer("/metadata/namespace").is_none() => {
            (None, format!("{CLUSTER}/{t}/{name}"))
        }
        t if t.contains('.') => (
            Some(NAMESPACE.to_string()),
            format!("{CLUSTER}/{NAMESPACE}/{t}/{name}"),
        ),
        _ => (
            Some(NAMESPACE.to_string()),
            format!("{CLUSTER}/{NAMESPACE}/{name}"),
        ),
    };
    Resource {
        platform: "kubernetes".into(),
        resource_type: resource_type.into(),
        name: name.into(),
        qualified_name: qualified,
        cluster: Some(CLUSTER.into()),
        context: Some(CONTEXT.into()),
        namespace,
        lod: Lod::Detailed,
        payload: payload.into(),
    }
}

/// The cluster resource, with kubeconfig extension fields merged in.
pub fn cluster(extension: Value) -> Resource {
    let mut payload =
        json!({"name": CLUSTER, "context": CONTEXT, "server": "https://10.0.0.1:6443"});
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extension.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    resource("cluster", CLUSTER, payload)
}

pub fn namespace() -> Resource {
    resource(
        "namespace",
        NAMESPACE,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "uid": "uid-ns", "labels": {"team": "shop"}}}),
    )
}

pub fn deployment(name: &str) -> Resource {
    let spec = json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": format!("example/{name}:1.0")}]}},
    });
    resource(
        "deployment",
        name,
        object("Deployment", "apps/v1", name, true, spec),
    )
}

pub fn statefulset(name: &str) -> Resource {
    let spec =
        json!({"serviceName": name, "replicas": 1, "selector": {"matchLabels": {"app": name}}});
    resource(
        "statefulset",
        name,
        object("StatefulSet", "apps/v1", name, true, spec),
    )
}

pub fn daemonset(name: &str) -> Resource {
    let spec = json!({"selector": {"matchLabels": {"app": name}}});
    resource(
        "daemonset",
        name,
        object("DaemonSet", "apps/v1", name, true, spec),
    )
}

pub fn service(name: &str) -> Resource {
    let spec = json!({"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], "type": "ClusterIP"});
    resource("service", name, object("Service", "v1", name, true, spec))
}

pub fn ingress(name: &str) -> Resource {
    let spec = json!({
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "rules": [{"host": "shop.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"number": 80}}}},
            {"path": "/api(/|$)(.*)", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "api", "port": {"number": 8080}}}}
        ]}}]
    });
    resource(
        "ingress",
        name,
        object("Ingress", "networking.k8s.io/v1", name, true, spec),
    )
}

pub fn persistentvolumeclaim(name: &str) -> Resource {
    let spec =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    resource(
        "persistentvolumeclaim",
        name,
        object("PersistentVolumeClaim", "v1", name, true, spec),
    )
}

pub fn job(name: &str, kind: &str) -> Resource {
    let spec = json!({"schedule": "*/5 * * * *"});
    resource(
        &kind.to_lowercase(),
        name,
        object(kind, "batch/v1", name, true, spec),
    )
}

/// A custom resource of `<plural>.<group>`, namespaced unless `cluster_scoped`.
pub fn custom(resource_type: &str, name: &str, cluster_scoped: bool) -> Resource {
    let (plural, group) = resource_type
        .split_once('.')
        .unwrap_or((resource_type, "example.com"));
    let kind = {
        let singular = plural.trim_end_matches('s');
        let mut c = singular.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let spec = json!({"destination": {"namespace": NAMESPACE, "server": "https://kubernetes.default.svc"}, "source": {"repoURL": "https://example.com/repo.git"}});
    resource(
        resource_type,
        name,
        object(&kind, &format!("{group}/v1"), name, !cluster_scoped, spec),
    )
}

/// The cluster, its namespace and one object of each built-in kind.
pub fn registry(cluster_extension: Value) -> Registry {
    Registry::from_iter([
        cluster(cluster_extension),
        namespace(),
        deployment("frontend"),
        statefulset("redis"),
        daemonset("node-agent"),
        service("frontend"),
        ingress("shop"),
        persistentvolumeclaim("data"),
        job("nightly", "CronJob"),
        job("migrate", "Job"),
    ])
}

/// What a qualifier resolves to for a sample resource.
pub fn qualifier_value(resource: &Resource, qualifier: &str) -> String {
    match qualifier {
        "resource" => resource.name.clone(),
        "namespace" => resource
            .namespace
            .clone()
            .unwrap_or_else(|| NAMESPACE.into()),
        "cluster" => CLUSTER.into(),
        "context" => CONTEXT.into(),
        other => format!("{other}-value"),
    }
}

/// The name naming would give (current mode, no collisions).
pub fn slx_name(workspace: &str, base: &str, values: &[String]) -> SlxName {
    let mode = NameMode::Current;
    let q = qualified_name(base, values, mode.max_qualified_length(workspace), mode);
    let (full, directory) = full_name(workspace, &q, mode).expect("name fits");
    SlxName { full, directory }
}

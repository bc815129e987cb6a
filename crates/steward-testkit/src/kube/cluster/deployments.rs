//! The Deployment and ReplicaSet controllers. A Deployment owns one ReplicaSet per pod
//! template, named `<deployment>-<pod-template-hash>`; the current one gets `spec.replicas`
//! and older ones are scaled to zero at once (a rollout does not wait for new pods to be
//! ready, whatever the strategy says). A ReplicaSet keeps `replicas` active pods, named
//! `<replicaset>-<random>`, replacing pods that are deleted or finish and deleting the
//! surplus (not-ready and newest first) on scale-down.

use super::super::objects::{now, random_suffix, text};
use super::super::store::Store;
use super::{
    controller_ref, create, delete, event, is_active, is_deleting, is_ready, owned, write,
    write_status,
};
use serde_json::{Map, Value, json};

const HASH_LABEL: &str = "pod-template-hash";

pub(super) fn sync(store: &mut Store) {
    let deployments: Vec<Value> = store
        .list("apps", "deployments", None)
        .map(|(_, d)| d.clone())
        .collect();
    for deployment in deployments.iter().filter(|d| !is_deleting(d)) {
        if deployment.pointer("/spec/template").is_some() {
            sync_deployment(store, deployment);
        }
    }
    let sets: Vec<Value> = store
        .list("apps", "replicasets", None)
        .map(|(_, r)| r.clone())
        .collect();
    for set in sets.iter().filter(|r| !is_deleting(r)) {
        if set.pointer("/spec/template").is_some() {
            sync_replica_set(store, set);
        }
    }
}

/// A JSON value with object keys sorted, so equal templates hash alike.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// FNV-1a of the template, spelled with the alphabet the controller uses for the hash.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c_9dc5;
    for byte in canonical(template).to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

fn replicas(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn status_int(object: &Value, field: &str) -> i64 {
    object
        .pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn sync_deployment(store: &mut Store, deployment: &Value) {
    let namespace = text(deployment, "/metadata/namespace").to_string();
    let name = text(deployment, "/metadata/name");
    let template = &deployment["spec"]["template"];
    let hash = template_hash(template);
    let wanted = replicas(deployment);
    let sets = owned(store, "apps", "replicasets", &namespace, deployment);
    let current_name = format!("{name}-{hash}");
    let revision = sets
        .iter()
        .filter_map(|s| {
            text(
                s,
                "/metadata/annotations/deployment.kubernetes.io~1revision",
            )
            .parse::<i64>()
            .ok()
        })
        .max()
        .unwrap_or(0);
    let current = match sets
        .iter()
        .find(|s| text(s, "/metadata/name") == current_name)
    {
        Some(set) if replicas(set) != wanted => {
            let mut next = set.clone();
            next["spec"]["replicas"] = wanted.into();
            write(store, "apps", "replicasets", next)
        }
        Some(set) => Some(set.clone()),
        None => {
            let mut labels = template["metadata"]["labels"].clone();
            labels[HASH_LABEL] = hash.clone().into();
            let mut selector = deployment["spec"]["selector"].clone();
            selector["matchLabels"][HASH_LABEL] = hash.clone().into();
            let mut pod_template = template.clone();
            pod_template["metadata"]["labels"] = labels.clone();
            let body = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": current_name, "namespace": namespace, "labels": labels,
                             "annotations": {"deployment.kubernetes.io/revision": (revision + 1).to_string(),
                                             "deployment.kubernetes.io/desired-replicas": wanted.to_string()},
                             "ownerReferences": [controller_ref(deployment)]},
                "spec": {"replicas": wanted, "selector": selector, "template": pod_template},
            });
            let created = create(store, "apps", "replicasets", &namespace, body).ok();
            if created.is_some() {
                event(
                    store,
                    deployment,
                    false,
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {current_name} from 0 to {wanted}"),
                    "deployment-controller",
                );
            }
            created
        }
    };
    for old in sets
        .iter()
        .filter(|s| text(s, "/metadata/name") != current_name && replicas(s) != 0)
    {
        let mut next = old.clone();
        next["spec"]["replicas"] = 0.into();
        write(store, "apps", "replicasets", next);
    }
    // Read back what the ReplicaSets report.
    let sets = owned(store, "apps", "replicasets", &namespace, deployment);
    let sum = |field: &str| sets.iter().map(|s| status_int(s, field)).sum::<i64>();
    let updated = current
        .and_then(|c| {
            sets.iter()
                .find(|s| s["metadata"]["uid"] == c["metadata"]["uid"])
                .map(|s| status_int(s, "replicas"))
        })
        .unwrap_or(0);
    let total = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let existing = deployment.get("status").cloned().unwrap_or(json!({}));
    let condition = |kind: &str, ok: bool, reason: &str, message: String| {
        let previous = existing
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == kind).cloned());
        let status = if ok { "True" } else { "False" };
        match previous {
            Some(p)
                if p["status"] == status
                    && p["reason"] == reason
                    && p["message"] == message.as_str() =>
            {
                p
            }
            Some(p) if p["status"] == status => {
                let mut p = p;
                p["reason"] = reason.into();
                p["message"] = message.into();
                p["lastUpdateTime"] = now().into();
                p
            }
            _ => json!({"type": kind, "status": status, "reason": reason, "message": message,
                        "lastUpdateTime": now(), "lastTransitionTime": now()}),
        }
    };
    let done = updated == wanted && total == wanted && available >= wanted;
    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": total, "updatedReplicas": updated, "readyReplicas": ready,
        "availableReplicas": available, "unavailableReplicas": (total - available).max(0),
        "conditions": [
            condition("Available", available >= wanted,
                      if available >= wanted { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                      if available >= wanted { "Deployment has minimum availability.".into() } else { "Deployment does not have minimum availability.".into() }),
            condition("Progressing", true,
                      if done { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                      if done { format!("ReplicaSet \"{current_name}\" has successfully progressed.") } else { format!("ReplicaSet \"{current_name}\" is progressing.") }),
        ],
    });
    let map = status.as_object_mut().expect("object");
    // As the real status: zero counts are left out.
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ] {
        if map.get(field) == Some(&json!(0)) {
            map.remove(field);
        }
    }
    write_status(store, "apps", "deployments", deployment, status);
}

fn sync_replica_set(store: &mut Store, set: &Value) {
    let namespace = text(set, "/metadata/namespace").to_string();
    let name = text(set, "/metadata/name").to_string();
    let wanted = replicas(set);
    let mut active: Vec<Value> = owned(store, "", "pods", &namespace, set)
        .into_iter()
        .filter(is_active)
        .collect();
    let count = active.len() as i64;
    if count < wanted {
        for _ in count..wanted {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": set.pointer("/spec/template/metadata").cloned().unwrap_or(json!({})),
                "spec": set.pointer("/spec/template/spec").cloned().unwrap_or(json!({})),
            });
            let m = pod["metadata"]
                .as_object_mut()
                .expect("metadata is an object");
            m.remove("generateName");
            m.insert("name".into(), format!("{name}-{}", random_suffix()).into());
            m.insert("ownerReferences".into(), json!([controller_ref(set)]));
            match create(store, "", "pods", &namespace, pod) {
                Ok(pod) => {
                    event(
                        store,
                        set,
                        false,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", text(&pod, "/metadata/name")),
                        "replicaset-controller",
                    );
                    active.push(pod);
                }
                Err(error) => {
                    event(
                        store,
                        set,
                        true,
                        "FailedCreate",
                        &format!("Error creating: {}", error.message),
                        "replicaset-controller",
                    );
                    break;
                }
            }
        }
    } else if count > wanted {
        // Not ready before ready, then the newest first.
        active.sort_by_key(|p| {
            (
                is_ready(p),
                std::cmp::Reverse(text(p, "/metadata/creationTimestamp").to_string()),
            )
        });
        for pod in active.drain(..(count - wanted) as usize) {
            delete(store, "", "pods", &pod, "Background");
            event(
                store,
                set,
                false,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", text(&pod, "/metadata/name")),
                "replicaset-controller",
            );
        }
    }
    let ready = active.iter().filter(|p| is_ready(p)).count() as i64;
    let mut status = json!({
        "replicas": active.len(), "fullyLabeledReplicas": active.len(),
        "readyReplicas": ready, "availableReplicas": ready,
        "observedGeneration": set["metadata"]["generation"],
    });
    let map = status.as_object_mut().expect("object");
    for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if map.get(field) == Some(&json!(0)) {
            map.remove(field);
        }
    }
    write_status(store, "apps", "replicasets", set, status);
}

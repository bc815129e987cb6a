//! Objects of the test cluster, shaped as the API server returns them (status included, as
//! the controllers and the kubelet would have written it), and the warning events about them.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use steward_testkit::kube::KubeApiServer;

/// `minutes` ago, as the API server writes times.
pub fn ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A deployment selecting `app: <name>`, with `available` of `desired` replicas and the
/// `Progressing` condition given.
pub fn deployment(ns: &str, name: &str, desired: u32, available: u32, progressing: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "generation": 2,
                     "labels": {"app": name}},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/{name}:1.4.2")}]}}},
        "status": {"observedGeneration": 2, "replicas": desired, "updatedReplicas": desired,
                   "readyReplicas": available, "availableReplicas": available,
                   "conditions": [progressing]},
    })
}

/// A rollout that completed an hour ago.
pub fn progressing() -> Value {
    json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
           "lastUpdateTime": ago(60), "lastTransitionTime": ago(60)})
}

/// The ReplicaSet `<deployment>-<hash>`, owned by the deployment.
pub fn replicaset(ns: &str, deployment: &str, hash: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{deployment}-{hash}"), "namespace": ns, "uid": format!("uid-{ns}-{deployment}-{hash}"),
                     "labels": {"app": deployment, "pod-template-hash": hash},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                          "uid": format!("uid-{ns}-{deployment}"), "controller": true}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": deployment, "pod-template-hash": hash}}},
    })
}

/// A pod of `owner` (a ReplicaSet name, or "" for a bare pod) with `status`.
pub fn pod(ns: &str, name: &str, app: &str, owner: &str, status: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}, "creationTimestamp": ago(120)},
        "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/{app}:1.4.2")}]},
        "status": status,
    });
    if !owner.is_empty() {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                                     "uid": format!("uid-{ns}-{owner}"), "controller": true}]);
    }
    pod
}

fn container(ready: bool, restarts: u32, state: Value, last: Value) -> Value {
    json!({"name": "app", "image": "registry.example.com/app:1.4.2", "ready": ready,
           "restartCount": restarts, "state": state, "lastState": last})
}

fn pod_status(phase: &str, ready: bool, ready_since: i64, containers: Value) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!({"phase": phase, "startTime": ago(120), "containerStatuses": containers, "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": ago(120)},
        {"type": "Ready", "status": ready, "lastTransitionTime": ago(ready_since)},
    ]})
}

/// Running and ready for 100 minutes.
pub fn healthy() -> Value {
    pod_status(
        "Running",
        true,
        100,
        json!([container(
            true,
            0,
            json!({"running": {"startedAt": ago(100)}}),
            json!({})
        )]),
    )
}

/// In CrashLoopBackOff after `restarts` restarts, the last a minute ago.
pub fn crash_looping(restarts: u32) -> Value {
    let last = json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(1)}});
    let waiting = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}});
    pod_status(
        "Running",
        false,
        90,
        json!([container(false, restarts, waiting, last)]),
    )
}

/// Pending in ImagePullBackOff.
pub fn image_pull_failing() -> Value {
    let waiting = json!({"waiting": {"reason": "ImagePullBackOff",
                                     "message": "Back-off pulling image \"registry.example.com/cart:9.9.9\""}});
    pod_status(
        "Pending",
        false,
        110,
        json!([container(false, 0, waiting, json!({}))]),
    )
}

/// Pending: no node has enough memory.
pub fn unschedulable() -> Value {
    json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
           "message": "0/3 nodes are available: 3 Insufficient memory.", "lastTransitionTime": ago(60)}]})
}

/// Running but not ready for `minutes`.
pub fn not_ready(minutes: i64) -> Value {
    pod_status(
        "Running",
        false,
        minutes,
        json!([container(
            false,
            0,
            json!({"running": {"startedAt": ago(100)}}),
            json!({})
        )]),
    )
}

/// Running and ready, after `restarts` OOM kills, the last `last_minutes` ago.
pub fn restarting(restarts: u32, last_minutes: i64) -> Value {
    let last = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(last_minutes)}});
    pod_status(
        "Running",
        true,
        last_minutes,
        json!([container(true, restarts, json!({"running": {}}), last)]),
    )
}

/// A warning event, in the core/v1 shape.
pub fn warning(
    ns: &str,
    kind: &str,
    name: &str,
    reason: &str,
    message: &str,
    count: u32,
    minutes: i64,
) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{reason}.{minutes}").to_lowercase(), "namespace": ns},
        "involvedObject": {"kind": kind, "name": name, "namespace": ns},
        "reason": reason, "message": message, "type": "Warning", "count": count,
        "firstTimestamp": ago(minutes + 10), "lastTimestamp": ago(minutes),
        "source": {"component": "kubelet"},
    })
}

/// The same event in the events.k8s.io/v1 shape.
fn as_events_api(event: &Value) -> Value {
    let count = event["count"].as_u64().unwrap_or(1);
    let mut new = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": event["metadata"].clone(),
        "regarding": event["involvedObject"].clone(),
        "reason": event["reason"].clone(), "note": event["message"].clone(), "type": "Warning",
        "eventTime": event["firstTimestamp"].clone(),
        "reportingController": "kubelet", "reportingInstance": "node-1", "action": "Observed",
    });
    if count > 1 {
        new["series"] = json!({"count": count, "lastObservedTime": event["lastTimestamp"].clone()});
    } else {
        new["deprecatedCount"] = json!(1);
        new["deprecatedLastTimestamp"] = event["lastTimestamp"].clone();
    }
    new
}

/// Makes `kubectl get events` work and says in which shape events are stored: core/v1 when
/// the server serves it (`true`); otherwise events.k8s.io/v1 Events are declared with a
/// CustomResourceDefinition, so `kubectl get events` resolves to them (`false`). The bundles
/// read both shapes.
pub fn serve_events(server: &KubeApiServer) -> bool {
    let probe = warning("default", "Pod", "probe", "Probe", "", 1, 0);
    let name = probe["metadata"]["name"].as_str().unwrap().to_string();
    if server.apply(probe).is_ok() {
        server.delete("v1", "events", Some("default"), &name);
        return true;
    }
    server
        .apply(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "events.events.k8s.io"},
            "spec": {"group": "events.k8s.io", "scope": "Namespaced",
                     "names": {"plural": "events", "singular": "event", "kind": "Event", "listKind": "EventList"},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
        }))
        .unwrap();
    false
}

/// Stores `events` (core/v1 shape) in the shape the server serves.
fn seed_events(server: &KubeApiServer, events: &[Value]) {
    let core = serve_events(server);
    for event in events {
        let event = if core {
            event.clone()
        } else {
            as_events_api(event)
        };
        server.apply(event).unwrap();
    }
}

/// A server holding `objects` and `events`.
pub fn start(objects: Vec<Value>, events: &[Value]) -> KubeApiServer {
    let server = KubeApiServer::start(&objects);
    assert!(
        server.seed_problems().is_empty(),
        "{:?}",
        server.seed_problems()
    );
    seed_events(&server, events);
    server
}

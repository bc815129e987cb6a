//! The scheduler of a one-node cluster: a pending pod without `spec.nodeName` is bound to the
//! simulated node when its `nodeSelector` and required node affinity match the node's labels,
//! and otherwise stays Pending with `PodScheduled=False`, reason `Unschedulable`. Resources,
//! taints and pod affinity are not considered.

use super::super::objects::{now, text};
use super::super::store::Store;
use super::{SimulatedNode, event, is_deleting, phase, write, write_status};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(super) fn sync(store: &mut Store, node: &SimulatedNode) {
    let pending: Vec<Value> = store
        .list("", "pods", None)
        .map(|(_, p)| p)
        .filter(|p| {
            text(p, "/spec/nodeName").is_empty()
                && matches!(phase(p), "" | "Pending")
                && !is_deleting(p)
        })
        .cloned()
        .collect();
    for pod in pending {
        if fits(&pod, &node.labels) {
            bind(store, pod, &node.name);
        } else {
            unschedulable(store, &pod);
        }
    }
}

fn bind(store: &mut Store, mut pod: Value, node: &str) {
    pod["spec"]["nodeName"] = node.into();
    let Some(bound) = write(store, "", "pods", pod) else {
        return;
    };
    let mut status = bound.get("status").cloned().unwrap_or(json!({}));
    status["phase"] = "Pending".into();
    set_condition(
        &mut status,
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}),
    );
    let namespace = text(&bound, "/metadata/namespace").to_string();
    let name = text(&bound, "/metadata/name").to_string();
    if let Some(bound) = write_status(store, "", "pods", &bound, status) {
        event(
            store,
            &bound,
            false,
            "Scheduled",
            &format!("Successfully assigned {namespace}/{name} to {node}"),
            "default-scheduler",
        );
    }
}

fn unschedulable(store: &mut Store, pod: &Value) {
    const MESSAGE: &str = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
        preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    let already = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
        });
    if already {
        return;
    }
    let mut status = pod.get("status").cloned().unwrap_or(json!({}));
    status["phase"] = "Pending".into();
    set_condition(
        &mut status,
        json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
               "message": MESSAGE, "lastProbeTime": null, "lastTransitionTime": now()}),
    );
    if let Some(pod) = write_status(store, "", "pods", pod, status) {
        event(
            store,
            &pod,
            true,
            "FailedScheduling",
            MESSAGE,
            "default-scheduler",
        );
    }
}

/// Replaces the condition of the same type, or adds it.
pub(super) fn set_condition(status: &mut Value, condition: Value) {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let list = status["conditions"].as_array_mut().expect("array");
    list.retain(|c| c["type"] != condition["type"]);
    list.push(condition);
}

fn fits(pod: &Value, labels: &BTreeMap<String, String>) -> bool {
    let selector_ok = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .is_none_or(|s| {
            s.iter().all(|(k, v)| {
                labels
                    .get(k)
                    .is_some_and(|l| Some(l.as_str()) == v.as_str())
            })
        });
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    // Terms are ORed, the expressions of a term ANDed.
    let affinity_ok = terms.is_none_or(|terms| {
        terms.iter().any(|term| {
            term.get("matchExpressions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .all(|e| expression_matches(e, labels))
        })
    });
    selector_ok && affinity_ok
}

fn expression_matches(expression: &Value, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(text(expression, "/key"));
    let values: Vec<&str> = expression
        .get("values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let number = |s: &str| s.parse::<i64>().ok();
    match text(expression, "/operator") {
        "In" => value.is_some_and(|v| values.contains(&v.as_str())),
        "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => value
            .and_then(|v| number(v))
            .zip(values.first().and_then(|v| number(v)))
            .is_some_and(|(v, limit)| v > limit),
        "Lt" => value
            .and_then(|v| number(v))
            .zip(values.first().and_then(|v| number(v)))
            .is_some_and(|(v, limit)| v < limit),
        _ => false,
    }
}

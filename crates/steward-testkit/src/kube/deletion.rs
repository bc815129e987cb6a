//! What a delete does while the simulated node and controllers run: a pod on the node gets
//! its grace period (the kubelet stops its containers, then removes it), and an owner deleted
//! with `propagationPolicy: Foreground` or `Orphan` gets the finalizer the garbage collector
//! acts on. Without the simulation every delete is immediate, as before.

use super::objects::{meta, text};
use super::resources::ResourceType;
use super::store::Store;
use serde_json::Value;

/// The default grace period of a pod (`terminationGracePeriodSeconds`).
const DEFAULT_GRACE_SECONDS: i64 = 30;

pub(crate) enum Plan {
    /// Delete as without the simulation (now, unless finalizers hold it).
    Remove,
    /// Already being deleted as asked: answer with the stored object.
    Keep,
    /// Store this (deletionTimestamp and finalizers set) and let the node or the GC finish.
    Mark(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Propagation {
    Background,
    Foreground,
    Orphan,
}

fn propagation(rt: &ResourceType, options: &Value) -> Propagation {
    match options.get("propagationPolicy").and_then(Value::as_str) {
        Some("Foreground") => return Propagation::Foreground,
        Some("Orphan") => return Propagation::Orphan,
        Some(_) => return Propagation::Background,
        None => {}
    }
    match options.get("orphanDependents").and_then(Value::as_bool) {
        Some(true) => Propagation::Orphan,
        Some(false) => Propagation::Background,
        // batch/v1 Jobs (and ReplicationControllers) still orphan their pods by default.
        None if matches!(
            (rt.group.as_str(), rt.plural.as_str()),
            ("batch", "jobs") | ("", "replicationcontrollers")
        ) =>
        {
            Propagation::Orphan
        }
        None => Propagation::Background,
    }
}

/// Whether any stored object names `uid` among its owners.
pub(crate) fn has_dependents(store: &Store, uid: &str) -> bool {
    store.all_objects().any(|(_, _, o)| owned_by(o, uid))
}

pub(crate) fn owned_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| text(r, "/uid") == uid))
}

pub(crate) fn plan(
    store: &Store,
    rt: &ResourceType,
    existing: &Value,
    options: &Value,
    node: &str,
) -> Plan {
    let uid = text(existing, "/metadata/uid");
    let finalizer = match propagation(rt, options) {
        Propagation::Background => None,
        Propagation::Foreground => Some("foregroundDeletion"),
        Propagation::Orphan => Some("orphan"),
    }
    .filter(|_| rt.namespaced && has_dependents(store, uid));

    let on_node = rt.group.is_empty()
        && rt.plural == "pods"
        && text(existing, "/spec/nodeName") == node
        && !matches!(text(existing, "/status/phase"), "Succeeded" | "Failed");
    let already = existing.pointer("/metadata/deletionTimestamp").is_some();
    let current_grace = existing
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let grace = options
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or(current_grace)
        .or_else(|| {
            existing
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0);
    let graceful = on_node && grace > 0;

    if finalizer.is_none() && !graceful {
        return Plan::Remove;
    }
    if already && current_grace.is_some_and(|g| g <= grace) && finalizer.is_none() {
        return Plan::Keep;
    }
    let mut marked = existing.clone();
    let m = meta(&mut marked);
    if !already {
        let at = chrono::Utc::now() + chrono::Duration::seconds(if graceful { grace } else { 0 });
        m.insert(
            "deletionTimestamp".into(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
        );
    }
    m.insert(
        "deletionGracePeriodSeconds".into(),
        (if graceful { grace } else { 0 }).into(),
    );
    if let Some(finalizer) = finalizer {
        let list = m
            .entry("finalizers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = list.as_array_mut()
            && !list.iter().any(|f| f == finalizer)
        {
            list.push(finalizer.into());
        }
    }
    if marked == *existing {
        Plan::Keep
    } else {
        Plan::Mark(marked)
    }
}

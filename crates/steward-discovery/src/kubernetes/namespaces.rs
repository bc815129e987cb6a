//! Which namespaces a context has, before configuration decides which are indexed.
//!
//! Listed when RBAC allows it. Otherwise (OpenShift users, users with RoleBindings in some
//! namespaces only; upstream issues #1 and #216) OpenShift projects stand in for them, and the
//! context's own namespace and the names the configuration lists are read one by one. A
//! configured name the cluster does not have is reported rather than indexed as if it existed.

use super::index::{IndexProblem, problem};
use super::list::{Lister, describe, status_code};
use serde_json::Value;
use std::collections::BTreeMap;

/// The namespaces found, by name (Namespace objects, possibly bare), and what went wrong.
pub(super) struct Found {
    pub objects: BTreeMap<String, Value>,
    pub problems: Vec<IndexProblem>,
}

/// A Namespace object with only its name: what stands in when it cannot be read.
pub(super) fn bare_namespace(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn insert_named(objects: &mut BTreeMap<String, Value>, mut object: Value) {
    let Some(name) = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return;
    };
    // List items carry no type, and projects are namespaces under another name.
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::String("v1".into()));
        map.insert("kind".into(), Value::String("Namespace".into()));
    }
    objects.insert(name, object);
}

/// The namespaces of the context. `own` is the context's namespace, `configured` the exact
/// names the configuration lists for it. `Err` when nothing can be indexed: namespaces
/// cannot be listed and no name is known.
pub(super) async fn gather(
    lister: &Lister<'_>,
    context: &str,
    own: Option<&str>,
    configured: &[String],
) -> Result<Found, IndexProblem> {
    let mut objects = BTreeMap::new();
    let mut problems = Vec::new();
    let refused = match lister.list_all("v1", "namespaces", None).await {
        Ok(items) => {
            for o in items {
                insert_named(&mut objects, o);
            }
            for name in configured.iter().filter(|n| !objects.contains_key(*n)) {
                problems.push(missing(context, name, "the configuration"));
            }
            return Ok(Found { objects, problems });
        }
        Err(e) => describe(&e),
    };
    problems.push(problem(
        context,
        "list namespaces",
        format!("{refused}; using OpenShift projects, the context's namespace and the configured namespaces instead"),
        false,
    ));
    match lister
        .list_all("project.openshift.io/v1", "projects", None)
        .await
    {
        Ok(items) => {
            for o in items {
                insert_named(&mut objects, o);
            }
        }
        // Not OpenShift, or projects are refused too: nothing to report beyond the above.
        Err(e) => tracing::debug!(context, error = %describe(&e), "No OpenShift projects."),
    }
    let mut names: Vec<(&str, &str)> = Vec::new();
    if let Some(ns) = own {
        names.push((ns, "the kubeconfig context"));
    }
    names.extend(configured.iter().map(|n| (n.as_str(), "the configuration")));
    let mut tried = Vec::new();
    for (name, source) in names {
        if objects.contains_key(name) {
            continue;
        }
        tried.push(name);
        match lister.get("v1", "namespaces", name).await {
            Ok(object) => insert_named(&mut objects, object),
            Err(e) if status_code(&e) == Some(404) => problems.push(missing(context, name, source)),
            // Reading it is refused too: index it without its labels and annotations.
            Err(_) => insert_named(&mut objects, bare_namespace(name)),
        }
    }
    if objects.is_empty() {
        let instead = if tried.is_empty() {
            "no namespace is known instead".to_string()
        } else {
            format!(
                "none of the namespaces named instead exists ({})",
                tried.join(", ")
            )
        };
        return Err(problem(
            context,
            "list namespaces",
            format!(
                "{refused}, and {instead}: set the context's namespace in the kubeconfig, or name the namespaces to \
                 index in cloudConfig.kubernetes.namespaces (or contexts.{context}.namespaces)"
            ),
            true,
        ));
    }
    Ok(Found { objects, problems })
}

fn missing(context: &str, name: &str, source: &str) -> IndexProblem {
    problem(
        context,
        format!("namespace {name}"),
        format!(
            "named by {source}, but the cluster has no namespace {name:?}; nothing is indexed for it"
        ),
        false,
    )
}

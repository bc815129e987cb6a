//! Lists: (namespace, name) order, selectors, `limit`/`continue` pages with opaque tokens,
//! and the server-side printed `Table` kubectl asks for.

use super::cluster::printing::pod_status;
use super::routes::{Scope, Shared};
use super::status::{ApiError, json_response};
use super::store::Key;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Where a paginated list resumes: the revision it was made at, the last key served, and the
/// collection it belongs to. Opaque to clients (base64 of JSON), as the real server's.
fn encode_continue(rv: u64, last: &Key, collection: &str) -> String {
    URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "ns": last.0, "name": last.1, "of": collection}).to_string())
}

/// The real server's message when a continue token's revision was compacted.
pub(crate) const TOO_OLD: &str = "The provided continue parameter is too old to display a \
     consistent list result. You can start a new list without the continue parameter.";

fn decode_continue(token: &str, collection: &str) -> Result<(u64, Key), ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "continue key is not valid for this list ({collection}); start a new list without it"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if value["of"] != json!(collection) {
        return Err(bad());
    }
    let field = |k: &str| value[k].as_str().map(str::to_string).ok_or_else(bad);
    Ok((
        value["rv"].as_u64().ok_or_else(bad)?,
        (field("ns")?, field("name")?),
    ))
}

pub(crate) fn list(
    shared: &Shared,
    scope: &Scope,
    query: &HashMap<String, String>,
    table: Option<&str>,
) -> Result<Response, ApiError> {
    if query.get("continue").is_some_and(|t| !t.is_empty()) {
        let mut gate = shared.gate.lock().expect("gate lock");
        if gate.expire_continues > 0 {
            gate.expire_continues -= 1;
            return Err(ApiError::expired(TOO_OLD));
        }
    }
    let store = shared.store.lock().expect("store lock");
    let collection = format!(
        "{}/{}/{}",
        scope.rt.group,
        scope.rt.plural,
        scope.namespace.as_deref().unwrap_or("")
    );
    let (list_rv, after) = match query.get("continue").filter(|t| !t.is_empty()) {
        Some(token) => {
            let (rv, after) = decode_continue(token, &collection)?;
            store.check_not_compacted(rv)?;
            (rv, Some(after))
        }
        None => (store.revision(), None),
    };
    let matching: Vec<(&Key, &Value)> = store
        .list(
            &scope.rt.group,
            &scope.rt.plural,
            scope.namespace.as_deref(),
        )
        .filter(|(key, _)| after.as_ref().is_none_or(|a| *key > a))
        .filter(|(_, object)| scope.matches(object))
        .collect();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let page = limit.map_or(matching.len(), |l| l.min(matching.len()));
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if page < matching.len() {
        metadata["continue"] = encode_continue(list_rv, matching[page - 1].0, &collection).into();
        // The real server can only count what is left when nothing is filtered out.
        if scope.labels.is_empty() && scope.fields.is_empty() {
            metadata["remainingItemCount"] = (matching.len() - page).into();
        }
    }
    let objects: Vec<&Value> = matching[..page].iter().map(|(_, o)| *o).collect();
    let body = match table {
        Some(version) => {
            let include = query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or_default();
            table_of(scope, &objects, metadata, version, include)
        }
        None => json!({
            "kind": scope.rt.list_kind,
            "apiVersion": scope.rt.api_version(&scope.version),
            "metadata": metadata,
            "items": objects.iter().map(|o| scope.present(o, false)).collect::<Vec<_>>(),
        }),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `meta.k8s.io/v1` or `v1beta1` when the client asks for `as=Table` (kubectl's `get` does).
pub(crate) fn table_version(accept: &str) -> Option<&'static str> {
    accept
        .split(',')
        .map(|part| part.split(';').map(str::trim).collect::<Vec<_>>())
        .filter(|params| params.contains(&"as=Table"))
        .find_map(|params| {
            if params.contains(&"v=v1") {
                Some("v1")
            } else if params.contains(&"v=v1beta1") {
                Some("v1beta1")
            } else {
                None
            }
        })
}

/// kubectl's short ages: `42s`, `5m`, `3h`, `12d`.
fn age(created: &str) -> String {
    let Ok(created) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let seconds = (chrono::Utc::now() - created.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A server-side printed table: Name, a Status column where the kind has a phase, and Age.
pub(crate) fn table_of(
    scope: &Scope,
    objects: &[&Value],
    metadata: Value,
    version: &str,
    include: &str,
) -> Value {
    let phased =
        scope.rt.group.is_empty() && matches!(scope.rt.plural.as_str(), "pods" | "namespaces");
    let column = |name: &str, format: &str| json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0});
    let mut columns = vec![column("Name", "name")];
    if phased {
        columns.push(column("Status", ""));
    }
    columns.push(column("Age", ""));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let text = |p: &str| {
                object
                    .pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let mut cells = vec![Value::from(text("/metadata/name"))];
            if phased && scope.rt.plural == "pods" {
                cells.push(pod_status(object).into());
            } else if phased {
                cells.push(text("/status/phase").into());
            }
            cells.push(age(&text("/metadata/creationTimestamp")).into());
            let mut row = json!({"cells": cells});
            match include {
                "None" => {}
                "Object" => row["object"] = scope.present(object, true),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": format!("meta.k8s.io/{version}"),
                        "metadata": object["metadata"],
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_accept_header() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(table_version(kubectl), Some("v1"));
        assert_eq!(table_version("application/json"), None);
    }
}

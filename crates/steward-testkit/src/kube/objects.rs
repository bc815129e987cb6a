//! What the server writes into an object besides what the client sent: kind, apiVersion,
//! name and namespace, timestamps, the status it owns on create, and the checks on a body's type,
//! name and namespace.

use super::resources::ResourceType;
use super::status::ApiError;
use serde_json::{Value, json};

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn meta(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// RFC 1123 subdomain, as the server demands of most names.
pub(crate) fn valid_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 253
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Five characters from the alphabet the server uses for `generateName` suffixes.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// What a resource's status looks like right after a create through the API.
pub(crate) fn initial_status(rt: &ResourceType, object: &Value) -> Option<Value> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => Some(json!({"phase": "Pending"})),
        ("", "namespaces") => Some(json!({"phase": "Active"})),
        ("apiextensions.k8s.io", "customresourcedefinitions") => Some(crd_status(object)),
        _ if rt.status => None,
        _ => object.get("status").cloned(),
    }
}

/// A CRD the server has accepted: names accepted and established at once.
pub(crate) fn crd_status(crd: &Value) -> Value {
    let condition = |kind: &str, reason: &str| json!({"type": kind, "status": "True", "reason": reason, "lastTransitionTime": now(), "message": ""});
    let stored: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| &v["name"])
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [condition("NamesAccepted", "NoConflicts"), condition("Established", "InitialNamesAccepted")],
        "storedVersions": stored,
    })
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
pub(crate) fn spec_of(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// The body's kind and apiVersion, when given, must be the endpoint's.
pub(crate) fn check_type(rt: &ResourceType, version: &str, body: &Value) -> Result<(), ApiError> {
    let kind = text(body, "/kind");
    let api_version = text(body, "/apiVersion");
    let expected = rt.api_version(version);
    if (!kind.is_empty() && kind != rt.kind) || (!api_version.is_empty() && api_version != expected)
    {
        return Err(ApiError::bad_request(format!(
            "the object's type ({api_version}, {kind}) does not match the endpoint's ({expected}, {})",
            rt.kind
        )));
    }
    Ok(())
}

/// The namespace the object lives in ("" when cluster-scoped); the body may not disagree with the URL.
pub(crate) fn check_namespace(
    rt: &ResourceType,
    from_path: Option<&str>,
    from_body: Option<&str>,
) -> Result<String, ApiError> {
    if !rt.namespaced {
        return Ok(String::new());
    }
    let path = from_path.unwrap_or_default();
    match from_body.filter(|ns| !ns.is_empty()) {
        Some(ns) if ns != path => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(path.to_string()),
    }
}

/// Fills in what every stored object carries: kind, apiVersion, name and namespace.
pub(crate) fn stamp(
    rt: &ResourceType,
    version: &str,
    object: &mut Value,
    name: &str,
    namespace: &str,
) {
    object["kind"] = rt.kind.clone().into();
    object["apiVersion"] = rt.api_version(version).into();
    let m = meta(object);
    m.insert("name".into(), name.into());
    if rt.namespaced {
        m.insert("namespace".into(), namespace.into());
    } else {
        m.remove("namespace");
    }
    if rt.group.is_empty() && rt.plural == "secrets" {
        merge_string_data(object);
    }
}

/// A Secret's `stringData` is write-only: the server encodes it into `data` (winning over a
/// `data` key of the same name) and never stores or returns it.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(Value::Object(plain)) = secret.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    if !secret.get("data").is_some_and(Value::is_object) {
        secret["data"] = json!({});
    }
    let data = secret["data"]
        .as_object_mut()
        .expect("made an object above");
    for (key, value) in plain {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        data.insert(
            key,
            base64::engine::general_purpose::STANDARD
                .encode(text)
                .into(),
        );
    }
}

//! The patch formats clients send: JSON merge patch (RFC 7386), JSON patch (RFC 6902, which
//! kube-runtime's finalizer helper uses), and approximations of strategic merge and server-side
//! apply (both applied as a merge patch: lists are replaced, no field ownership is tracked).

use super::status::ApiError;
use serde_json::Value;

/// How a PATCH body is to be applied, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    /// `application/apply-patch+yaml`: creates the object when it is missing.
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                Ok(PatchKind::Merge)
            }
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({other:?}); accepted media types \
                     include: application/json-patch+json, application/merge-patch+json, \
                     application/strategic-merge-patch+json, application/apply-patch+yaml"
                ),
            )),
        }
    }
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902 operations applied in order; any failure leaves `target` untouched.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(&mut doc, op).map_err(|why| {
            ApiError::new(
                422,
                "Invalid",
                format!("JSON patch operation {i} ({op}): {why}"),
            )
        })?;
    }
    *target = doc;
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| {
        op.get(name)
            .and_then(Value::as_str)
            .ok_or(format!("missing \"{name}\""))
    };
    let path = field("path")?;
    match field("op")? {
        "add" => add(
            doc,
            path,
            op.get("value").cloned().ok_or("missing \"value\"")?,
        ),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            remove(doc, path)?;
            add(
                doc,
                path,
                op.get("value").cloned().ok_or("missing \"value\"")?,
            )
        }
        "test" => match doc.pointer(path) {
            Some(v) if Some(v) == op.get("value") => Ok(()),
            _ => Err(format!("test failed at {path}")),
        },
        "move" => {
            let value = remove(doc, field("from")?)?;
            add(doc, path, value)
        }
        "copy" => {
            let value = doc
                .pointer(field("from")?)
                .cloned()
                .ok_or("\"from\" does not exist")?;
            add(doc, path, value)
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

/// The parent container of `path` and the last token, unescaped (`~1` is `/`, `~0` is `~`).
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let (parent, last) = path.rsplit_once('/').ok_or(format!("bad path {path:?}"))?;
    let container = doc
        .pointer_mut(parent)
        .ok_or(format!("{parent:?} does not exist"))?;
    Ok((container, last.replace("~1", "/").replace("~0", "~")))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, key) = parent(doc, path)?;
    match container {
        Value::Object(map) => {
            map.insert(key, value);
            Ok(())
        }
        Value::Array(items) if key == "-" => {
            items.push(value);
            Ok(())
        }
        Value::Array(items) => {
            let i: usize = key.parse().map_err(|_| format!("bad index {key:?}"))?;
            if i > items.len() {
                return Err(format!("index {i} out of range"));
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err(format!("{path:?}: parent is not a container")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (container, key) = parent(doc, path)?;
    let removed = match container {
        Value::Object(map) => map.remove(&key),
        Value::Array(items) => key
            .parse::<usize>()
            .ok()
            .filter(|i| *i < items.len())
            .map(|i| items.remove(i)),
        _ => None,
    };
    removed.ok_or(format!("{path:?} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge(
            &mut doc,
            &json!({"a": null, "b": {"c": 9}, "l": [3], "n": "x"}),
        );
        assert_eq!(doc, json!({"b": {"c": 9, "d": 3}, "l": [3], "n": "x"}));
    }

    #[test]
    fn json_patch_ops_and_atomicity() {
        let mut doc = json!({"metadata": {"finalizers": ["a", "b"]}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "b"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
                {"op": "replace", "path": "/metadata/finalizers/0", "value": "z"},
                {"op": "copy", "from": "/metadata/finalizers", "path": "/kept"},
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["z", "c"]}, "kept": ["z", "c"]})
        );
        let before = doc.clone();
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "remove", "path": "/kept"},
                {"op": "test", "path": "/metadata/finalizers/0", "value": "nope"},
            ]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(doc, before);
    }
}

//! Label and field selectors with the real server's grammar and its error for what it rejects.

use super::status::ApiError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Label {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: every requirement must hold (comma means AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Label>);

impl LabelSelector {
    /// Parses `app=web,tier!=db,env in (a,b),!legacy`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: {part:?} in labelSelector {text:?}"
                ))
            })?);
        }
        Ok(LabelSelector(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Label::Equals(k, v) => get(k) == Some(v),
            Label::NotEquals(k, v) => get(k) != Some(v),
            Label::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Label::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Label::Exists(k) => get(k).is_some(),
            Label::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Commas separate requirements except inside the parentheses of `in (...)`.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}

fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn parse_requirement(part: &str) -> Option<Label> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key).then(|| Label::NotExists(key.into()));
    }
    for (op, is_in) in [(" notin ", false), (" in ", true)] {
        if let Some((key, rest)) = part.split_once(op) {
            let key = key.trim();
            let list = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
            if !valid_key(key) || !values.iter().all(|v| valid_value(v)) {
                return None;
            }
            return Some(if is_in {
                Label::In(key.into(), values)
            } else {
                Label::NotIn(key.into(), values)
            });
        }
    }
    let equality = |op: &str| {
        part.split_once(op)
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    let requirement = if let Some((k, v)) = equality("!=") {
        Label::NotEquals(k, v)
    } else if let Some((k, v)) = equality("==").or_else(|| equality("=")) {
        Label::Equals(k, v)
    } else {
        Label::Exists(part.to_string())
    };
    let ok = match &requirement {
        Label::Equals(k, v) | Label::NotEquals(k, v) => valid_key(k) && valid_value(v),
        Label::Exists(k) => valid_key(k),
        _ => false,
    };
    ok.then_some(requirement)
}

/// A parsed `fieldSelector` over the fields the server indexes for this resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

/// Fields every resource can be selected on, and the extra ones some built-ins offer.
fn supported_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "pods" => &[
            "metadata.name",
            "metadata.namespace",
            "status.phase",
            "spec.nodeName",
            "spec.serviceAccountName",
        ],
        "secrets" => &["metadata.name", "metadata.namespace", "type"],
        "namespaces" => &["metadata.name", "metadata.namespace", "status.phase"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running` for resource `plural`.
    pub fn parse(text: &str, plural: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: {part:?}; expected field=value or field!=value"
                )));
            };
            let field = field.trim();
            let supported = supported_fields(plural);
            if !supported.contains(&field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field} (supported for {plural}: {})",
                    supported.join(", ")
                )));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "n", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = labelled(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web") && m("app==web") && m("app!=db") && m("app"));
        assert!(m("app in (web, api),tier notin (db)") && m("!legacy") && m(""));
        assert!(!m("app=db") && !m("!app") && !m("app notin (web)") && !m("app=web,tier=db"));
        assert!(m("missing!=x") && m("missing notin (x)") && !m("missing in (x)"));
    }

    #[test]
    fn bad_label_selector_is_400() {
        for s in ["app in web", "a=b=c", "=x", "app in (a", "!"] {
            let e = LabelSelector::parse(s).unwrap_err();
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{s}");
        }
    }

    #[test]
    fn field_selectors() {
        let pod =
            json!({"metadata": {"name": "a", "namespace": "n"}, "status": {"phase": "Running"}});
        let m = |s: &str| FieldSelector::parse(s, "pods").unwrap().matches(&pod);
        assert!(m("metadata.name=a") && m("status.phase!=Pending") && m("metadata.namespace==n"));
        assert!(!m("metadata.name=a,status.phase=Failed"));
        assert_eq!(
            FieldSelector::parse("spec.foo=x", "pods").unwrap_err().code,
            400
        );
        assert_eq!(
            FieldSelector::parse("status.phase=x", "services")
                .unwrap_err()
                .code,
            400
        );
    }
}

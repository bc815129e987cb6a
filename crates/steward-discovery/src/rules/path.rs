//! `/`-separated paths into a resource payload or the variable tree, walked the way
//! runwhen-local walks them.
//!
//! - `//` stands for a literal `/` inside one key
//!   (`metadata/annotations/service.beta.kubernetes.io//azure-load-balancer-internal`).
//! - A list met along the path is searched element by element with the rest of the path
//!   (`spec/tls/hosts` looks at the hosts of every TLS entry), and a list at the end of the path
//!   is searched element by element too.
//! - Scalar leaves are matched as Python's `str()` writes them: `True`/`False`, `None` for a
//!   `null` inside a list, `1.0` for a float. A mapping at the end of the path, or a `null`
//!   mapping value, never matches.

use serde_json::Value;
use std::borrow::Cow;

/// A parsed path: its keys, with `//` already turned into `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyPath {
    source: String,
    keys: Vec<String>,
}

impl PropertyPath {
    /// Parses a path as written in a rule.
    pub fn new(source: &str) -> PropertyPath {
        let mut keys = Vec::new();
        let mut current = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '/' {
                if chars.peek() == Some(&'/') {
                    chars.next();
                    current.push('/');
                } else {
                    keys.push(std::mem::take(&mut current));
                }
            } else {
                current.push(c);
            }
        }
        keys.push(current);
        PropertyPath {
            source: source.to_string(),
            keys,
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The keys, one per level.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether some leaf the path reaches satisfies `test`.
    pub fn any_leaf(&self, root: &Value, test: &mut dyn FnMut(&str) -> bool) -> bool {
        walk(root, &self.keys, test)
    }

    /// Whether the path reaches something. Upstream is true only for scalar leaves (defect e);
    /// Steward is also true for a non-empty mapping or list, and with `match_empty` for `null`
    /// and an empty mapping or list, as the rule schema documents `matchEmpty`. A present
    /// scalar (even an empty string) is true either way, as upstream.
    pub fn exists(&self, root: &Value, match_empty: bool) -> bool {
        exists(root, &self.keys, match_empty)
    }
}

fn walk(value: &Value, keys: &[String], test: &mut dyn FnMut(&str) -> bool) -> bool {
    match value {
        Value::Object(map) => match keys.split_first() {
            None => false,
            Some((key, rest)) => match map.get(key) {
                None | Some(Value::Null) => false,
                Some(child) => walk(child, rest, test),
            },
        },
        Value::Array(items) => items.iter().any(|item| walk(item, keys, test)),
        scalar => keys.is_empty() && test(&python_str(scalar)),
    }
}

fn exists(value: &Value, keys: &[String], match_empty: bool) -> bool {
    let Some((key, rest)) = keys.split_first() else {
        return match value {
            Value::Null => match_empty,
            Value::Object(m) => match_empty || !m.is_empty(),
            Value::Array(a) => match_empty || !a.is_empty(),
            _ => true,
        };
    };
    match value {
        Value::Object(map) => match map.get(key) {
            None => false,
            Some(Value::Null) => rest.is_empty() && match_empty,
            Some(child) => exists(child, rest, match_empty),
        },
        Value::Array(items) => items.iter().any(|item| exists(item, keys, match_empty)),
        _ => false,
    }
}

/// A JSON scalar as Python's `str()` writes the value PyYAML/json loaded it as.
pub fn python_str(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(true) => Cow::Borrowed("True"),
        Value::Bool(false) => Cow::Borrowed("False"),
        Value::Null => Cow::Borrowed("None"),
        Value::Number(n) => {
            if n.is_f64() {
                Cow::Owned(python_float(n.as_f64().unwrap_or_default()))
            } else {
                Cow::Owned(n.to_string())
            }
        }
        // Containers are never stringified by the walk; this keeps the function total.
        other => Cow::Owned(other.to_string()),
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits, in positional notation for
/// exponents -4..16 (with `.0` when integral), else scientific with a signed, two-digit
/// exponent (`1e+16`, `1.5e-05`).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn double_slash_is_a_literal_slash() {
        let p = PropertyPath::new("metadata/annotations/service.beta.kubernetes.io//azure-lb");
        assert_eq!(
            p.keys(),
            [
                "metadata",
                "annotations",
                "service.beta.kubernetes.io/azure-lb"
            ]
        );
        // Python's left-to-right replace: `///` is a literal slash then a separator.
        assert_eq!(PropertyPath::new("a///b").keys(), ["a/", "b"]);
        assert_eq!(PropertyPath::new("a////b").keys(), ["a//b"]);
        assert_eq!(PropertyPath::new("name").keys(), ["name"]);
    }

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1.2345e20, "1.2345e+20"),
            (f64::INFINITY, "inf"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float(f), want, "{f}");
        }
    }

    #[test]
    fn null_inside_a_list_is_none_but_a_null_value_never_matches() {
        let doc = json!({"a": [null, 1], "b": null});
        let mut seen = Vec::new();
        PropertyPath::new("a").any_leaf(&doc, &mut |s| {
            seen.push(s.to_string());
            false
        });
        assert_eq!(seen, ["None", "1"]);
        assert!(!PropertyPath::new("b").any_leaf(&doc, &mut |_| true));
    }
}

//! ResourceQuota and LimitRange admission, as the API server's plugins do it on create:
//! LimitRange defaults fill in container requests and limits, then every quota of the
//! namespace must still fit (`pods`, `count/<resource>`, `requests.*`, `limits.*` and the
//! bare `cpu`/`memory`), or the create is refused with the real 403 message. `status.used` is
//! recomputed from the stored objects whenever something in the namespace changes, rather
//! than charged incrementally (the same numbers, without drift).

use super::objects::text;
use super::status::{ApiError, qualified};
use super::store::Store;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The compute resources a quota can charge per container.
const COMPUTE: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

/// Resources whose quota keys predate `count/…`.
const LEGACY_COUNTS: [(&str, &str); 6] = [
    ("configmaps", "configmaps"),
    ("secrets", "secrets"),
    ("services", "services"),
    ("persistentvolumeclaims", "persistentvolumeclaims"),
    ("replicationcontrollers", "replicationcontrollers"),
    ("resourcequotas", "resourcequotas"),
];

/// A quantity in thousandths of its unit (`100m` CPU is 100, `1Ki` is 1 024 000).
pub(crate) fn parse_quantity(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (binary, exponent): (i128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        e if e.starts_with(['e', 'E']) => (1, e[1..].parse().ok()?),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let number = number.trim_start_matches(['+', '-']);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let shift = exponent + 3 - fraction.len() as i32;
    let scaled = if shift >= 0 {
        digits * binary * 10i128.checked_pow(shift as u32)?
    } else {
        // Rounded up, as the server rounds sub-milli quantities.
        let divisor = 10i128.checked_pow((-shift) as u32)?;
        (digits * binary + divisor - 1) / divisor
    };
    Some(if negative { -scaled } else { scaled })
}

/// How the server prints a quantity of `resource`: `500m`, `2`, `256Mi`, `1G`.
pub(crate) fn format_quantity(resource: &str, milli: i128) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let whole = milli / 1000;
    let bytes = resource.ends_with("memory") || resource.ends_with("storage");
    if bytes && whole != 0 {
        for (suffix, unit) in [
            ("Ei", 1i128 << 60),
            ("Pi", 1 << 50),
            ("Ti", 1 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if whole % unit == 0 {
                return format!("{}{suffix}", whole / unit);
            }
        }
        for (suffix, unit) in [
            ("E", 10i128.pow(18)),
            ("P", 10i128.pow(15)),
            ("T", 10i128.pow(12)),
            ("G", 10i128.pow(9)),
            ("M", 10i128.pow(6)),
            ("k", 1000),
        ] {
            if whole % unit == 0 {
                return format!("{}{suffix}", whole / unit);
            }
        }
    }
    whole.to_string()
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn quantity_at(container: &Value, kind: &str, resource: &str) -> Option<i128> {
    container
        .pointer(&format!("/resources/{kind}/{resource}"))
        .and_then(Value::as_str)
        .and_then(parse_quantity)
}

/// `requests.cpu` → ("requests", "cpu"); the bare `cpu` means requests too.
fn compute_key(key: &str) -> Option<(&'static str, &str)> {
    let (kind, resource) = match key.split_once('.') {
        Some(("requests", r)) => ("requests", r),
        Some(("limits", r)) => ("limits", r),
        _ => ("requests", key),
    };
    COMPUTE.contains(&resource).then_some((kind, resource))
}

/// What `key` of a quota charges for `object` of resource `plural` (`None`: nothing).
fn charge(key: &str, group: &str, plural: &str, object: &Value) -> Option<i128> {
    let counted = |want: &str| {
        let name = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        (key == format!("count/{name}") || (group.is_empty() && want == plural)).then_some(1000)
    };
    if group.is_empty() && plural == "pods" {
        let phase = text(object, "/status/phase");
        if matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        if key == "pods" || key == "count/pods" {
            return Some(1000);
        }
        if let Some((kind, resource)) = compute_key(key) {
            return Some(
                containers(object)
                    .filter_map(|c| quantity_at(c, kind, resource))
                    .sum(),
            );
        }
        return None;
    }
    LEGACY_COUNTS
        .iter()
        .find(|(legacy, _)| *legacy == key)
        .and_then(|(_, p)| counted(p))
        .or_else(|| counted(""))
}

fn hard_of(quota: &Value) -> BTreeMap<String, i128> {
    quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let q = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            Some((k.clone(), parse_quantity(&q)?))
        })
        .collect()
}

/// What the objects of `namespace` use of each key of `hard`.
fn used(store: &Store, namespace: &str, hard: &BTreeMap<String, i128>) -> BTreeMap<String, i128> {
    let mut used: BTreeMap<String, i128> = hard.keys().map(|k| (k.clone(), 0)).collect();
    for (group, plural, object) in store.all_objects() {
        if text(object, "/metadata/namespace") != namespace {
            continue;
        }
        for (key, total) in used.iter_mut() {
            *total += charge(key, group, plural, object).unwrap_or(0);
        }
    }
    used
}

fn pretty(values: &BTreeMap<String, i128>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", format_quantity(k, *v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Admission of `object` (already named) into `namespace`: LimitRange defaults for pods, then
/// every ResourceQuota of the namespace.
pub(crate) fn admit(
    store: &Store,
    group: &str,
    plural: &str,
    namespace: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    let is_pod = group.is_empty() && plural == "pods";
    if is_pod {
        apply_limit_ranges(store, namespace, object);
    }
    let name = text(object, "/metadata/name").to_string();
    let forbidden = |why: String| {
        let mut error = ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(group, plural)
            ),
        );
        error.details = Some(json!({"name": name, "group": group, "kind": plural}));
        error
    };
    for (_, quota) in store.list("", "resourcequotas", Some(namespace)) {
        let quota_name = text(quota, "/metadata/name");
        let hard = hard_of(quota);
        let requested: BTreeMap<String, i128> = hard
            .keys()
            .filter_map(|k| Some((k.clone(), charge(k, group, plural, object)?)))
            .collect();
        if requested.is_empty() {
            continue;
        }
        if is_pod {
            let mut missing: Vec<String> = Vec::new();
            for key in hard.keys() {
                let Some((kind, resource)) = compute_key(key) else {
                    continue;
                };
                let lacking: Vec<&str> = containers(object)
                    .filter(|c| quantity_at(c, kind, resource).is_none())
                    .map(|c| text(c, "/name"))
                    .collect();
                if !lacking.is_empty() {
                    missing.push(format!("{key} for: {}", lacking.join(",")));
                }
            }
            if !missing.is_empty() {
                return Err(forbidden(format!(
                    "failed quota: {quota_name}: must specify {}",
                    missing.join("; ")
                )));
            }
        }
        let used = used(store, namespace, &hard);
        let exceeded: Vec<&String> = requested
            .iter()
            .filter(|(k, r)| used[*k] + **r > hard[*k])
            .map(|(k, _)| k)
            .collect();
        if !exceeded.is_empty() {
            let mask = |m: &BTreeMap<String, i128>| -> BTreeMap<String, i128> {
                exceeded.iter().map(|k| ((*k).clone(), m[*k])).collect()
            };
            return Err(forbidden(format!(
                "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                pretty(&mask(&requested)),
                pretty(&mask(&used)),
                pretty(&mask(&hard))
            )));
        }
    }
    Ok(())
}

/// The `status` a quota should have now: its `hard` and what the namespace uses.
pub(crate) fn quota_status(store: &Store, quota: &Value) -> Value {
    let namespace = text(quota, "/metadata/namespace");
    let hard = hard_of(quota);
    let used = used(store, namespace, &hard);
    let used: Map<String, Value> = used
        .iter()
        .map(|(k, v)| (k.clone(), format_quantity(k, *v).into()))
        .collect();
    json!({
        "hard": quota.pointer("/spec/hard").cloned().unwrap_or(json!({})),
        "used": used,
    })
}

/// LimitRange `default` / `defaultRequest` for containers that set none, and the API's own
/// defaulting of requests to limits; notes what was set in the `kubernetes.io/limit-ranger`
/// annotation as the plugin does.
fn apply_limit_ranges(store: &Store, namespace: &str, pod: &mut Value) {
    let mut defaults: Vec<(&str, Map<String, Value>)> = Vec::new();
    for (_, range) in store.list("", "limitranges", Some(namespace)) {
        for limit in range
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| text(l, "/type") == "Container")
        {
            let map = |k: &str| limit.get(k).and_then(Value::as_object).cloned();
            if let Some(d) = map("default") {
                defaults.push(("limits", d.clone()));
                defaults.push(("requests", map("defaultRequest").unwrap_or(d)));
            } else if let Some(d) = map("defaultRequest") {
                defaults.push(("requests", d));
            }
        }
    }
    let mut notes: Vec<String> = Vec::new();
    let Some(list) = pod
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in list {
        let name = text(container, "/name").to_string();
        if !container.get("resources").is_some_and(Value::is_object) {
            container["resources"] = json!({});
        }
        let resources = &mut container["resources"];
        for (kind, values) in &defaults {
            if !resources.get(*kind).is_some_and(Value::is_object) {
                resources[*kind] = json!({});
            }
            let mut set: Vec<&str> = Vec::new();
            for (resource, quantity) in values {
                if resources[*kind].get(resource).is_none() {
                    resources[*kind][resource] = quantity.clone();
                    set.push(resource);
                }
            }
            if !set.is_empty() {
                let what = if *kind == "limits" {
                    "limit"
                } else {
                    "request"
                };
                notes.push(format!("{} {what} for container {name}", set.join(", ")));
            }
        }
        // The API defaults a missing request to the limit.
        if let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() {
            if !resources.get("requests").is_some_and(Value::is_object) {
                resources["requests"] = json!({});
            }
            for (resource, quantity) in limits {
                if resources["requests"].get(&resource).is_none() {
                    resources["requests"][resource] = quantity;
                }
            }
        }
        for kind in ["requests", "limits"] {
            if resources
                .get(kind)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                resources.as_object_mut().expect("object").remove(kind);
            }
        }
    }
    if !notes.is_empty() {
        let annotations = &mut pod["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations["kubernetes.io/limit-ranger"] =
            format!("LimitRanger plugin set: {}", notes.join("; ")).into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_print_as_the_server_does() {
        assert_eq!(parse_quantity("100m"), Some(100));
        assert_eq!(parse_quantity("1.5"), Some(1500));
        assert_eq!(parse_quantity("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse_quantity("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity("2G"), Some(2_000_000_000_000));
        assert_eq!(parse_quantity("lots"), None);
        assert_eq!(format_quantity("requests.cpu", 1500), "1500m");
        assert_eq!(format_quantity("requests.cpu", 2000), "2");
        assert_eq!(
            format_quantity("limits.memory", 256 * (1 << 20) * 1000),
            "256Mi"
        );
        assert_eq!(format_quantity("memory", 1_000_000_000_000), "1G");
        assert_eq!(format_quantity("pods", 3000), "3");
    }
}

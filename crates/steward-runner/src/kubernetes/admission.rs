//! Quota-aware admission: before a task pod is created, the namespace's LimitRange defaults
//! are applied to it and its ResourceQuotas checked, so a run that would be refused waits
//! (saying why) instead of failing on a rejected pod.

use k8s_openapi::api::core::v1::{LimitRange, Pod, ResourceQuota};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// Resources a quota can limit that a pod consumes, by quota key.
const TRACKED: &[(&str, Part, &str)] = &[
    ("requests.cpu", Part::Requests, "cpu"),
    ("cpu", Part::Requests, "cpu"),
    ("requests.memory", Part::Requests, "memory"),
    ("memory", Part::Requests, "memory"),
    ("limits.cpu", Part::Limits, "cpu"),
    ("limits.memory", Part::Limits, "memory"),
    (
        "requests.ephemeral-storage",
        Part::Requests,
        "ephemeral-storage",
    ),
    (
        "limits.ephemeral-storage",
        Part::Limits,
        "ephemeral-storage",
    ),
];

#[derive(Clone, Copy)]
enum Part {
    Requests,
    Limits,
}

/// Why the pod would be refused, or `Ok` when it fits (or the quotas cannot be read: the API
/// server then decides).
pub async fn check(client: &kube::Client, namespace: &str, pod: &Pod) -> Result<(), String> {
    let quotas = match Api::<ResourceQuota>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(error) => {
            tracing::debug!(%error, "Cannot read ResourceQuotas; the API server will decide.");
            return Ok(());
        }
    };
    if quotas.is_empty() {
        return Ok(());
    }
    let limits = Api::<LimitRange>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let demand = demand(pod, &limits);
    for quota in &quotas {
        fits(quota, &demand)?;
    }
    Ok(())
}

/// What the pod asks for, per (part, resource), after LimitRange defaults: a container without
/// a request gets the LimitRange's default request, else its own limit.
fn demand(pod: &Pod, ranges: &[LimitRange]) -> BTreeMap<(u8, String), Option<i128>> {
    let mut defaults: BTreeMap<(u8, String), String> = BTreeMap::new();
    for range in ranges {
        for item in range.spec.iter().flat_map(|s| &s.limits) {
            if item.type_ != "Container" {
                continue;
            }
            for (key, value) in item.default_request.iter().flatten() {
                defaults.insert((0, key.clone()), value.0.clone());
            }
            for (key, value) in item.default.iter().flatten() {
                defaults.insert((1, key.clone()), value.0.clone());
            }
        }
    }
    let mut total: BTreeMap<(u8, String), Option<i128>> = BTreeMap::new();
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    for container in containers {
        let resources = container.resources.clone().unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        for name in ["cpu", "memory", "ephemeral-storage"] {
            let limit = limits
                .get(name)
                .map(|q| q.0.clone())
                .or_else(|| defaults.get(&(1, name.into())).cloned());
            let request = requests
                .get(name)
                .map(|q| q.0.clone())
                .or_else(|| defaults.get(&(0, name.into())).cloned())
                .or_else(|| limit.clone());
            for (part, value) in [(0u8, request), (1u8, limit)] {
                let entry = total.entry((part, name.to_string())).or_insert(Some(0));
                *entry = match (*entry, value.as_deref().and_then(parse_quantity)) {
                    (Some(sum), Some(v)) => Some(sum + v),
                    _ => None, // a container without it: the quota cannot be checked for it
                };
            }
        }
    }
    total
}

fn fits(
    quota: &ResourceQuota,
    demand: &BTreeMap<(u8, String), Option<i128>>,
) -> Result<(), String> {
    let name = quota.metadata.name.clone().unwrap_or_default();
    let status = quota.status.clone().unwrap_or_default();
    let hard = status
        .hard
        .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.clone()))
        .unwrap_or_default();
    let used = status.used.unwrap_or_default();
    let used_of = |key: &str| {
        used.get(key)
            .and_then(|q| parse_quantity(&q.0))
            .unwrap_or(0)
    };
    for key in ["pods", "count/pods"] {
        if let Some(limit) = hard.get(key).and_then(|q| parse_quantity(&q.0))
            && used_of(key) + 1000 > limit
        {
            return Err(format!(
                "ResourceQuota {name} allows {} pods and {} are in use",
                limit / 1000,
                used_of(key) / 1000
            ));
        }
    }
    for (key, part, resource) in TRACKED {
        let Some(limit) = hard.get(*key).and_then(|q| parse_quantity(&q.0)) else {
            continue;
        };
        let part_index = match part {
            Part::Requests => 0,
            Part::Limits => 1,
        };
        match demand
            .get(&(part_index, resource.to_string()))
            .copied()
            .flatten()
        {
            None => {
                return Err(format!(
                    "ResourceQuota {name} limits {key}, so task pods must set it: give kubernetes.resources a {} {resource} (or add a LimitRange default)",
                    match part {
                        Part::Requests => "request for",
                        Part::Limits => "limit for",
                    }
                ));
            }
            Some(want) if used_of(key) + want > limit => {
                return Err(format!(
                    "ResourceQuota {name}: {key} would be {} of {} ({} in use, the task pod asks {})",
                    show(used_of(key) + want, resource),
                    show(limit, resource),
                    show(used_of(key), resource),
                    show(want, resource)
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn show(milli: i128, resource: &str) -> String {
    if resource == "cpu" {
        format!("{milli}m")
    } else {
        format!("{}", milli / 1000)
    }
}

/// A Kubernetes quantity in thousandths of its unit (`500m` → 500, `1Gi` → 1073741824000),
/// exactly, or `None` if it is not one.
pub fn parse_quantity(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (multiplier, divisor): (i128, i128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "k" => (1000_i128.pow(2), 1),
        "M" => (1000_i128.pow(3), 1),
        "G" => (1000_i128.pow(4), 1),
        "T" => (1000_i128.pow(5), 1),
        "P" => (1000_i128.pow(6), 1),
        "E" => (1000_i128.pow(7), 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (1000 * 10_i128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let negative = whole.starts_with('-');
    let whole: i128 = whole.trim_start_matches(['+', '-']).parse().unwrap_or(0);
    let scale = 10_i128.checked_pow(fraction.len() as u32)?;
    let fraction: i128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    // Round up, as Kubernetes does for sub-milli values.
    let value = (whole * scale + fraction) * multiplier;
    let value = (value + scale * divisor - 1) / (scale * divisor);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        for (text, milli) in [
            ("500m", 500),
            ("1", 1000),
            ("0.5", 500),
            ("2", 2000),
            ("128Mi", 128 * 1024 * 1024 * 1000),
            ("1Gi", 1024 * 1024 * 1024 * 1000),
            ("1G", 1_000_000_000_000),
            ("1.5Gi", 3 * 512 * 1024 * 1024 * 1000),
            ("1e3", 1_000_000),
            ("0.0001", 1),
        ] {
            assert_eq!(parse_quantity(text), Some(milli), "{text}");
        }
        assert_eq!(parse_quantity("ten"), None);
        assert_eq!(parse_quantity("1Zi"), None);
    }

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "task", "resources": resources}]}})).unwrap()
    }

    fn quota(hard: serde_json::Value, used: serde_json::Value) -> ResourceQuota {
        serde_json::from_value(json!({"metadata": {"name": "team"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}})).unwrap()
    }

    #[test]
    fn quotas_are_checked_after_limit_range_defaults() {
        let small = pod(
            json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
        );
        let q = quota(
            json!({"pods": "10", "requests.cpu": "1", "limits.memory": "1Gi"}),
            json!({"pods": "2", "requests.cpu": "800m", "limits.memory": "256Mi"}),
        );
        let err = fits(&q, &demand(&small, &[])).unwrap_err();
        assert!(
            err.contains(
                "requests.cpu would be 1050m of 1000m (800m in use, the task pod asks 250m)"
            ),
            "{err}"
        );
        let roomy = quota(
            json!({"pods": "10", "requests.cpu": "2"}),
            json!({"pods": "2", "requests.cpu": "800m"}),
        );
        assert!(fits(&roomy, &demand(&small, &[])).is_ok());
        let full = quota(json!({"pods": "2"}), json!({"pods": "2"}));
        assert!(
            fits(&full, &demand(&small, &[]))
                .unwrap_err()
                .contains("allows 2 pods and 2 are in use")
        );

        // No requests: refused unless a LimitRange gives defaults.
        let bare = pod(json!({}));
        let q = quota(json!({"requests.memory": "1Gi"}), json!({}));
        assert!(
            fits(&q, &demand(&bare, &[]))
                .unwrap_err()
                .contains("must set it")
        );
        let range: LimitRange = serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {"limits": [
            {"type": "Container", "defaultRequest": {"memory": "128Mi"}, "default": {"memory": "256Mi"}}]}})).unwrap();
        assert!(fits(&q, &demand(&bare, &[range])).is_ok());
    }
}

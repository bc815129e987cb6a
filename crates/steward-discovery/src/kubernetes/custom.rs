//! Finding where a cluster serves the custom resources rules refer to: version and scope,
//! from API discovery, asked once per context.

use super::index::CustomRef;
use super::kinds::Kind;
use super::list::describe;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList;
use std::collections::BTreeMap;

/// A reference that gives nothing in this cluster: what was looked for and why it failed.
pub(super) struct Unresolved {
    pub during: String,
    pub message: String,
}

/// The kinds to list for `refs`, one per `plural.group` whatever versions the rules name, and
/// the references that cannot be served here (or only partly).
///
/// Several references to one resource are listed once: at the version one of them pins
/// (rules that name no version accept any), else at the group's preferred version. Two
/// different pins cannot both be honoured by one list; the first is used and the choice is
/// reported.
pub(super) async fn resolve(
    client: &kube::Client,
    refs: &[CustomRef],
) -> (Vec<Kind>, Vec<Unresolved>) {
    let mut wanted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in refs {
        let versions = wanted
            .entry((r.plural.clone(), r.group.clone()))
            .or_default();
        if let Some(v) = r.version.as_deref().filter(|v| *v != "*")
            && !versions.iter().any(|known| known == v)
        {
            versions.push(v.to_string());
        }
    }
    let mut kinds = Vec::new();
    let mut problems = Vec::new();
    if wanted.is_empty() {
        return (kinds, problems);
    }
    let groups = match client.list_api_groups().await {
        Ok(groups) => groups,
        Err(e) => {
            for (plural, group) in wanted.keys() {
                problems.push(Unresolved {
                    during: format!("find {plural}.{group}"),
                    message: format!("API discovery failed: {}", describe(&e)),
                });
            }
            return (kinds, problems);
        }
    };
    for ((plural, group), pins) in wanted {
        let during = format!("find {plural}.{group}");
        if pins.len() > 1 {
            problems.push(Unresolved {
                during: during.clone(),
                message: format!(
                    "rules pin different versions ({}); it is listed at {} only, so rules written for the others see objects as {} returns them",
                    pins.join(", "),
                    pins[0],
                    pins[0]
                ),
            });
        }
        match find(
            client,
            &groups,
            &plural,
            &group,
            pins.first().map(String::as_str),
        )
        .await
        {
            Ok(kind) => kinds.push(kind),
            Err(message) => problems.push(Unresolved { during, message }),
        }
    }
    (kinds, problems)
}

/// The kind of `plural.group` at `version` (or the preferred one), or why there is none.
async fn find(
    client: &kube::Client,
    groups: &APIGroupList,
    plural: &str,
    group: &str,
    version: Option<&str>,
) -> Result<Kind, String> {
    let Some(served) = groups.groups.iter().find(|g| g.name == group) else {
        return Err(format!(
            "the cluster serves no API group {group} (its CustomResourceDefinition is not installed); rules on it match nothing here"
        ));
    };
    let version = match version {
        Some(v) if served.versions.iter().any(|gv| gv.version == v) => v.to_string(),
        Some(v) => {
            let offered: Vec<&str> = served
                .versions
                .iter()
                .map(|gv| gv.version.as_str())
                .collect();
            return Err(format!(
                "API group {group} is served at {}, not at the pinned {v}; rules pinned to {v} match nothing here",
                offered.join(", ")
            ));
        }
        None => match served
            .preferred_version
            .as_ref()
            .or(served.versions.first())
        {
            Some(gv) => gv.version.clone(),
            None => return Err(format!("API group {group} lists no version")),
        },
    };
    let resources = client
        .list_api_group_resources(&format!("{group}/{version}"))
        .await
        .map_err(|e| {
            format!(
                "API discovery of {group}/{version} failed: {}",
                describe(&e)
            )
        })?;
    let Some(found) = resources.resources.iter().find(|r| r.name == plural) else {
        return Err(format!(
            "{group}/{version} serves no resource {plural:?} (is the plural right?); rules on it match nothing here"
        ));
    };
    Ok(Kind {
        resource_type: format!("{plural}.{group}"),
        group: group.to_string(),
        version,
        plural: plural.to_string(),
        kind: found.kind.clone(),
        namespaced: found.namespaced,
    })
}

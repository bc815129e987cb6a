//! Applying the configured namespace levels of detail to a registry.
//!
//! Live indexing already skips unselected namespaces; a snapshot or kubectl output was taken
//! with whatever configuration, so every source goes through this once more and generation
//! always follows the configuration of the run.

use crate::config::WorkspaceInfo;
use crate::config::{NamespaceDecision, SkipReason};
use crate::kubernetes::NamespacePolicy;
use crate::output::Skipped;
use crate::resource::{Lod, Registry};
use std::collections::{BTreeMap, BTreeSet};

impl NamespacePolicy for WorkspaceInfo {
    fn namespace_lod(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Lod> {
        WorkspaceInfo::namespace_lod(self, context, namespace, labels, annotations)
    }

    fn configured_namespaces(&self, context: &str) -> Vec<String> {
        WorkspaceInfo::configured_namespaces(self, context)
    }
}

/// The reasons namespaces the live indexer left out were skipped.
pub fn report_skipped(info: &WorkspaceInfo, namespaces: &[crate::Resource]) -> Vec<Skipped> {
    namespaces
        .iter()
        .filter_map(|ns| {
            let name = ns.namespace.clone()?;
            let context = ns.context.clone().or_else(|| ns.cluster.clone())?;
            match info.namespace_decision(&context, &name, &ns.labels(), &ns.annotations()) {
                NamespaceDecision::Skip(reason) => Some(Skipped {
                    item: format!("namespace {name}"),
                    location: format!("context {context}"),
                    reason: describe(&reason),
                }),
                NamespaceDecision::Index { .. } => None,
            }
        })
        .collect()
}

/// Sets every Kubernetes resource's level of detail from its namespace's decision, and drops
/// namespaces that are not indexed together with their resources. Returns what was dropped.
pub fn apply(info: &WorkspaceInfo, registry: &mut Registry) -> Vec<Skipped> {
    let mut levels: BTreeMap<(String, String), Lod> = BTreeMap::new();
    let mut dropped: BTreeSet<(String, String)> = BTreeSet::new();
    let mut skipped = Vec::new();
    for ns in registry.of_type("namespace") {
        let (Some(cluster), Some(name)) = (ns.cluster.clone(), ns.namespace.clone()) else {
            continue;
        };
        let context = ns.context.clone().unwrap_or_else(|| cluster.clone());
        match info.namespace_decision(&context, &name, &ns.labels(), &ns.annotations()) {
            NamespaceDecision::Index { lod, .. } => {
                levels.insert((cluster, name), lod);
            }
            NamespaceDecision::Skip(reason) => {
                skipped.push(Skipped {
                    item: format!("namespace {name}"),
                    location: format!("context {context}"),
                    reason: describe(&reason),
                });
                dropped.insert((cluster, name));
            }
        }
    }
    registry.retain_mut(|r| {
        if r.platform != "kubernetes" {
            return true;
        }
        let (Some(cluster), Some(ns)) = (&r.cluster, &r.namespace) else {
            // Cluster-level resources.
            r.lod = Lod::Detailed;
            return true;
        };
        let key = (cluster.clone(), ns.clone());
        if dropped.contains(&key) {
            return false;
        }
        // A resource whose namespace object is missing gets the configured level.
        r.lod = match levels.get(&key) {
            Some(lod) => *lod,
            None => {
                info.configured_namespace_lod(r.context.as_deref().unwrap_or(cluster), ns)
                    .0
            }
        };
        r.lod != Lod::None
    });
    skipped
}

fn describe(reason: &SkipReason) -> String {
    match reason {
        SkipReason::NotSelected => "not in the configured `namespaces`".into(),
        SkipReason::Ignored { by } => format!("ignored by {by}"),
        SkipReason::Excluded { by } => format!("excluded by {by}"),
        SkipReason::NotIncluded => "matches none of the include labels or annotations".into(),
        SkipReason::LodNone(source) => format!("level of detail `none` (from {source:?})"),
    }
}

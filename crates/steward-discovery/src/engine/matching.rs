//! Every rule matched against the registry, one resource at a time.
//!
//! Upstream tries the rules in order and, inside each, the resources of its types. Payloads
//! are kept as text ([`crate::resource::Payload`]), so that order would parse a resource once
//! per rule that targets its type. Here each resource is parsed once at most, and only the
//! parts the rules of its type read ([`PayloadFilter`]; not at all when only its name is
//! tested), and every rule that targets its type is tried on it, on every core; the matches
//! are then sorted back into upstream's order (rule, its resource types, resources by
//! qualified name), which is the only order the steps after matching see.

use super::LoadedRule;
use crate::resource::{Registry, Resource};
use crate::rules::{MatchContext, PayloadFilter, PropertyPath, ResourceTypeSpec, Subject};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A rule that matched a resource.
pub(super) struct Hit<'a> {
    /// The rule's position in the rule set.
    pub rule: usize,
    /// The position, among the rule's distinct `resourceTypes`, of the type that made the
    /// resource a candidate.
    spec: usize,
    /// The resource's position in the list of resources tried (registry order).
    subject: usize,
    pub resource: &'a Resource,
    /// What templates see as `resources`.
    pub resources: BTreeMap<String, &'a Resource>,
}

/// Rules that try one registry type: (rule, position of the type in the rule, the type).
type Targets<'r> = Vec<(usize, usize, &'r ResourceTypeSpec)>;

/// What is tried on the resources of one registry type: the rules, and the parts of the
/// payload they read.
struct ForType<'r> {
    targets: Targets<'r>,
    filter: Arc<PayloadFilter>,
}

/// Resources a worker claims at a time: small enough to share the work evenly, large enough
/// that the shared counter is not contended.
const CHUNK: usize = 64;

/// Every (rule, resource) match, in upstream's order.
pub(super) fn match_all<'a>(
    rules: &[LoadedRule],
    registry: &'a Registry,
    variables: &'a serde_json::Value,
) -> Vec<Hit<'a>> {
    let mut targets: BTreeMap<String, Targets<'_>> = BTreeMap::new();
    let mut filters: BTreeMap<String, PayloadFilter> = BTreeMap::new();
    for (ri, loaded) in rules.iter().enumerate() {
        // A type listed twice in a rule is tried once, as `GenerationRule::candidates` does.
        let mut seen = BTreeSet::new();
        for spec in &loaded.rule.resource_types {
            if seen.insert(spec) {
                let registry_type = spec.reference.registry_type();
                let filter = filters.entry(registry_type.clone()).or_default();
                // A version-pinned type is told apart by its `apiVersion`.
                filter.add_path(&PropertyPath::new("apiVersion"));
                loaded
                    .rule
                    .match_rules
                    .iter()
                    .for_each(|p| filter.add_predicate(p));
                targets
                    .entry(registry_type)
                    .or_default()
                    .push((ri, seen.len() - 1, spec));
            }
        }
    }
    let by_type: BTreeMap<String, ForType<'_>> = targets
        .into_iter()
        .map(|(t, targets)| {
            let filter = Arc::new(filters.remove(&t).unwrap_or_default());
            (t, ForType { targets, filter })
        })
        .collect();
    let subjects: Vec<(&'a Resource, &ForType<'_>)> = by_type
        .iter()
        .flat_map(|(t, rules)| registry.of_type(t).map(move |r| (r, rules)))
        .collect();

    let next = AtomicUsize::new(0);
    let work = || {
        // One context per worker: it remembers cross-resource results for the whole run.
        let mut ctx = MatchContext::new(registry, variables);
        let mut hits = Vec::new();
        loop {
            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
            if start >= subjects.len() {
                return hits;
            }
            let end = (start + CHUNK).min(subjects.len());
            for (subject, &(resource, for_type)) in subjects[start..end].iter().enumerate() {
                try_rules(
                    rules,
                    start + subject,
                    resource,
                    for_type,
                    &mut ctx,
                    &mut hits,
                );
            }
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(subjects.len().div_ceil(CHUNK))
        .max(1);
    let mut hits = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut hits = work();
        for other in others {
            hits.extend(other.join().expect("a matching worker does not panic"));
        }
        hits
    });
    hits.sort_unstable_by_key(|h| (h.rule, h.spec, h.subject));
    hits
}

/// Tries every rule that targets the resource's type on it, parsing (the parts the rules read
/// of) its payload at most once.
fn try_rules<'a>(
    rules: &[LoadedRule],
    position: usize,
    resource: &'a Resource,
    for_type: &ForType<'_>,
    ctx: &mut MatchContext<'a>,
    hits: &mut Vec<Hit<'a>>,
) {
    let subject = Subject::filtered(resource, for_type.filter.clone());
    // The targets are in rule order, so a rule listing two types of this registry type is
    // evaluated once.
    let mut last: Option<(usize, Option<BTreeMap<String, &'a Resource>>)> = None;
    for &(rule, spec, spec_ref) in &for_type.targets {
        if !spec_ref.accepts_subject(&subject) {
            continue;
        }
        let outcome = match &last {
            Some((r, outcome)) if *r == rule => outcome.clone(),
            _ => {
                let outcome = rules[rule].rule.matches_subject(&subject, ctx);
                last = Some((rule, outcome.clone()));
                outcome
            }
        };
        if let Some(resources) = outcome {
            hits.push(Hit {
                rule,
                spec,
                subject: position,
                resource,
                resources,
            });
        }
    }
}

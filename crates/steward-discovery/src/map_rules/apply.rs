//! Applying map customization to the SLXs of a tree: groups, SLX relationships, and group
//! dependencies.

use super::{MapRules, Predicate, SlxProperty, SlxTest, Verb};
use crate::output::Skipped;
use crate::render::{SlxGroup, SlxRelationship};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the rules test of one SLX of the tree.
pub struct SlxFacts<'a> {
    /// `<workspace>--<directory>`.
    pub name: &'a str,
    /// The directory under `slxs/`, which groups and relationships name.
    pub directory: &'a str,
    /// Base name and qualifier values, before shortening.
    pub full_name: String,
    pub base_name: &'a str,
    pub qualifiers: &'a [(String, String)],
    /// The SLX's resource as JSON.
    pub resource: serde_json::Value,
}

impl SlxFacts<'_> {
    fn passes(&self, (property, pattern): &SlxTest) -> bool {
        let qualifier = |name: &str| {
            self.qualifiers
                .iter()
                .find(|(q, _)| q.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let value = match property {
            SlxProperty::Name => Some(self.name),
            SlxProperty::FullName => Some(self.full_name.as_str()),
            SlxProperty::BaseName => Some(self.base_name),
            SlxProperty::QualifiedName => Some(self.directory),
            SlxProperty::Namespace => qualifier("namespace"),
            SlxProperty::Cluster => qualifier("cluster"),
            SlxProperty::Path(path) => {
                return path.any_leaf(&self.resource, &mut |leaf| pattern.is_match(leaf));
            }
        };
        value.is_some_and(|v| pattern.is_match(v))
    }

    fn matches(&self, predicate: &Predicate<SlxTest>) -> bool {
        predicate.holds(&|test| self.passes(test))
    }
}

/// Groups and relationships for `workspace.yaml`.
#[derive(Debug, Default)]
pub struct Mapped {
    pub groups: Vec<SlxGroup>,
    pub relationships: Vec<SlxRelationship>,
    /// Templates that did not render, and relationships naming what is not in the tree.
    pub skipped: Vec<Skipped>,
}

/// Applies `rules` to `slxs` (in tree order). `render(i, label, template)` renders a group
/// name or relationship subject with the variables of SLX `i`; `label` names the rule.
pub fn map_slxs(
    rules: &MapRules,
    slxs: &[SlxFacts<'_>],
    render: &mut dyn FnMut(usize, &str, &str) -> Result<String, String>,
) -> Mapped {
    let mut mapped = Mapped::default();
    let mut group_index: HashMap<String, usize> = HashMap::new();
    // Relationships as written, with the rule that made each.
    let mut related: Vec<(String, String, &str)> = Vec::new();
    let mut seen = BTreeSet::new();
    // A template that fails, fails for every SLX: reported once per rule, with a count.
    let mut failed: BTreeMap<(&str, &str), (String, usize)> = BTreeMap::new();
    for (i, slx) in slxs.iter().enumerate() {
        // The first rule that matches decides, for groups and for relationships alike.
        if let Some(rule) = rules.groups.iter().find(|r| slx.matches(&r.predicate)) {
            let name = render(i, &rule.origin, &rule.group).and_then(|name| {
                if name.is_empty() {
                    Err(format!("the group name {:?} renders empty", rule.group))
                } else {
                    Ok(name)
                }
            });
            match name {
                Ok(name) => {
                    let at = *group_index.entry(name.clone()).or_insert_with(|| {
                        mapped.groups.push(SlxGroup {
                            name,
                            slxs: Vec::new(),
                            depends_on: Vec::new(),
                        });
                        mapped.groups.len() - 1
                    });
                    mapped.groups[at].slxs.push(slx.directory.to_string());
                }
                Err(reason) => {
                    failed
                        .entry(("group", &rule.origin))
                        .or_insert((reason, 0))
                        .1 += 1
                }
            }
        }
        let Some(rule) = rules
            .slx_relationships
            .iter()
            .find(|r| r.matches.iter().any(|m| slx.matches(m)))
        else {
            continue;
        };
        match render(i, &rule.origin, &rule.subject) {
            Ok(subject) => {
                let object = slx.directory.to_string();
                let (subject, object) = match rule.verb {
                    Verb::DependentOn => (subject, object),
                    Verb::DependedOnBy => (object, subject),
                };
                // An SLX depending on itself says nothing.
                if subject != object && seen.insert((subject.clone(), object.clone())) {
                    related.push((subject, object, &rule.origin));
                }
            }
            Err(reason) => {
                failed
                    .entry(("relationship", &rule.origin))
                    .or_insert((reason, 0))
                    .1 += 1
            }
        }
    }
    for ((what, origin), (reason, count)) in failed {
        mapped.skipped.push(Skipped {
            item: format!("{what} rule"),
            location: origin.to_string(),
            reason: format!("{reason} (for {count} SLXs, which it leaves out)"),
        });
    }
    // Relationships name SLXs by directory; one naming an SLX outside the tree goes,
    // reported once per rule with the first example.
    let in_tree: BTreeSet<&str> = slxs.iter().map(|s| s.directory).collect();
    let mut outside: BTreeMap<&str, (String, usize)> = BTreeMap::new();
    for (subject, object, origin) in related {
        if in_tree.contains(subject.as_str()) && in_tree.contains(object.as_str()) {
            mapped.relationships.push(SlxRelationship {
                subject,
                verb: "dependent-on".into(),
                object,
            });
        } else {
            let example = format!("{subject:?} dependent-on {object:?}");
            outside.entry(origin).or_insert((example, 0)).1 += 1;
        }
    }
    for (origin, (example, count)) in outside {
        mapped.skipped.push(Skipped {
            item: "relationship rule".into(),
            location: origin.to_string(),
            reason: format!(
                "{count} relationships name an SLX that is not in the tree, such as {example} \
                 (SLXs are named by their directory under slxs/)"
            ),
        });
    }
    depend_groups(rules, &mut mapped, &group_index);
    mapped
}

/// `groupRelationshipRules`: the first rule matching a group's name makes its subject group
/// depend on it (`dependent-on`) or it on the subject (`depended-on-by`).
fn depend_groups(rules: &MapRules, mapped: &mut Mapped, index: &HashMap<String, usize>) {
    let names: Vec<String> = mapped.groups.iter().map(|g| g.name.clone()).collect();
    for (at, name) in names.iter().enumerate() {
        let Some(rule) = rules.group_relationships.iter().find(|r| {
            r.matches
                .iter()
                .any(|m| m.holds(&|pattern| pattern.is_match(name)))
        }) else {
            continue;
        };
        let Some(&subject) = index.get(&rule.subject) else {
            mapped.skipped.push(Skipped {
                item: format!("dependency of group {name:?}"),
                location: rule.origin.clone(),
                reason: format!("there is no group {:?}", rule.subject),
            });
            continue;
        };
        if subject == at {
            continue;
        }
        let (dependent, on) = match rule.verb {
            Verb::DependentOn => (subject, at),
            Verb::DependedOnBy => (at, subject),
        };
        let on = names[on].clone();
        let list = &mut mapped.groups[dependent].depends_on;
        if !list.contains(&on) {
            list.push(on);
        }
    }
}

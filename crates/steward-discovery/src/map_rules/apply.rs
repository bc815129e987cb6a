//! Applying map customization to the SLXs of a tree: groups, SLX relationships, and group
//! dependencies.

use super::{MapRules, Predicate, SlxProperty, SlxTest, Verb};
use crate::output::Skipped;
use crate::render::{SlxGroup, SlxRelationship};
use std::collections::{BTreeSet, HashMap};

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
    /// What rendering the templates noticed (undefined variables).
    pub warnings: Vec<String>,
}

/// Applies `rules` to `slxs` (in tree order). `render(i, label, template)` renders a group
/// name or relationship subject with the variables of SLX `i`.
pub fn map_slxs(
    rules: &MapRules,
    slxs: &[SlxFacts<'_>],
    render: &mut dyn FnMut(usize, &str, &str) -> Result<String, String>,
) -> Mapped {
    let mut mapped = Mapped::default();
    let mut group_index: HashMap<String, usize> = HashMap::new();
    let mut related = BTreeSet::new();
    for (i, slx) in slxs.iter().enumerate() {
        if let Some(rule) = rules.groups.iter().find(|r| slx.matches(&r.predicate)) {
            match render(i, "group rule", &rule.group) {
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
                Err(reason) => mapped.skipped.push(Skipped {
                    item: format!("group of SLX {}", slx.name),
                    location: format!("group rule {:?}", rule.group),
                    reason,
                }),
            }
        }
        let Some(rule) = rules
            .slx_relationships
            .iter()
            .find(|r| r.matches.iter().any(|m| slx.matches(m)))
        else {
            continue;
        };
        match render(i, "relationship rule", &rule.subject) {
            Ok(subject) => {
                let object = slx.directory.to_string();
                let (subject, object) = match rule.verb {
                    Verb::DependentOn => (subject, object),
                    Verb::DependedOnBy => (object, subject),
                };
                if related.insert((subject.clone(), object.clone())) {
                    mapped.relationships.push(SlxRelationship {
                        subject,
                        verb: "dependent-on".into(),
                        object,
                    });
                }
            }
            Err(reason) => mapped.skipped.push(Skipped {
                item: format!("relationship of SLX {}", slx.name),
                location: format!("relationship rule {:?}", rule.subject),
                reason,
            }),
        }
    }
    // Relationships name SLXs by directory; one naming an SLX outside the tree goes.
    let in_tree: BTreeSet<&str> = slxs.iter().map(|s| s.directory).collect();
    mapped.relationships.retain(|r| {
        let kept = in_tree.contains(r.subject.as_str()) && in_tree.contains(r.object.as_str());
        if !kept {
            mapped.skipped.push(Skipped {
                item: format!("relationship {} dependent-on {}", r.subject, r.object),
                location: "map customization rules".into(),
                reason: "it names an SLX that is not in the tree".into(),
            });
        }
        kept
    });
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
                location: format!("group relationship rule {:?}", rule.subject),
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

//! `matchRules` predicates: parsed (regexes compiled) once, evaluated per resource.
//!
//! | type | meaning |
//! |---|---|
//! | `pattern` | the regex matches one of `properties` (OR); with `resourceType`, some resource of that other type matches instead |
//! | `exists` | `path` reaches something in the payload (see [`PropertyPath::exists`]) |
//! | `custom-variable` | the regex matches the variable tree at `path` (`custom/<key>`) |
//! | `and` / `or` | over `matches` |
//! | `not` | over `match` (or `matches`, `predicate`) |
//!
//! Pattern properties: `name` is the resource name; on Kubernetes resources `labels` and
//! `annotations` test every key and every value separately (not `key=value`), `label-keys`,
//! `label-values`, `annotation-keys`, `annotation-values` test only one side; on cloud
//! resources `tags`, `tag-keys`, `tag-values` do the same with the payload's `tags`. Anything
//! else is a [`PropertyPath`] into the payload.

use super::filter::PayloadFilter;
use super::path::PropertyPath;
use super::pyregex::{MatchMode, PyPattern};
use super::types::{self, ResourceTypeSpec};
use crate::config::yaml;
use crate::resource::{Registry, Resource};
use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Gives every cross-resource predicate an identity for [`MatchContext`]'s cache.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a `pattern` predicate tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    Name,
    /// `labels`, `annotations`, `tags` and their `-keys`/`-values` forms, by name.
    Special(Special),
    Path(PropertyPath),
}

/// Which keys/values of which metadata a special property tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Special {
    /// The property name as rules write it.
    pub name: &'static str,
    /// `metadata/labels`, `metadata/annotations` (Kubernetes) or `tags` (cloud).
    source: MetaSource,
    keys: bool,
    values: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetaSource {
    Labels,
    Annotations,
    Tags,
}

const SPECIALS: &[Special] = &[
    special("labels", MetaSource::Labels, true, true),
    special("label-keys", MetaSource::Labels, true, false),
    special("label-values", MetaSource::Labels, false, true),
    special("annotations", MetaSource::Annotations, true, true),
    special("annotation-keys", MetaSource::Annotations, true, false),
    special("annotation-values", MetaSource::Annotations, false, true),
    special("tags", MetaSource::Tags, true, true),
    special("tag-keys", MetaSource::Tags, true, false),
    special("tag-values", MetaSource::Tags, false, true),
];

const fn special(name: &'static str, source: MetaSource, keys: bool, values: bool) -> Special {
    Special {
        name,
        source,
        keys,
        values,
    }
}

impl Property {
    fn parse(text: &str) -> Property {
        if text == "name" {
            return Property::Name;
        }
        // Only the cloud handlers lower-case the property name upstream.
        let special = SPECIALS.iter().find(|s| {
            s.name == text || (s.source == MetaSource::Tags && s.name.eq_ignore_ascii_case(text))
        });
        match special {
            Some(s) => Property::Special(*s),
            None => Property::Path(PropertyPath::new(text)),
        }
    }
}

/// A `pattern` predicate.
#[derive(Debug, Clone)]
pub struct PatternPredicate {
    id: u64,
    /// The compiled `pattern` with its `mode`.
    pub pattern: PyPattern,
    /// `properties`, OR-ed.
    pub properties: Vec<Property>,
    /// Set for a cross-resource match.
    pub resource_type: Option<ResourceTypeSpec>,
}

/// One match predicate.
#[derive(Debug, Clone)]
pub enum Predicate {
    Pattern(PatternPredicate),
    Exists {
        path: PropertyPath,
        match_empty: bool,
    },
    CustomVariable {
        path: PropertyPath,
        pattern: PyPattern,
    },
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
}

/// A resource being matched. Its payload is parsed the first time a predicate reads it, so a
/// rule that a name pattern rejects costs no parsing, and several rules tried on one subject
/// share one parse.
pub struct Subject<'r> {
    pub resource: &'r Resource,
    /// When set, only what this filter keeps is parsed.
    filter: Option<Arc<PayloadFilter>>,
    payload: OnceCell<Json>,
}

impl<'r> Subject<'r> {
    pub fn new(resource: &'r Resource) -> Self {
        Subject {
            resource,
            filter: None,
            payload: OnceCell::new(),
        }
    }

    /// A subject whose payload is parsed through `filter`, which must keep everything the
    /// rules it is matched against read ([`PayloadFilter::add_predicate`] for each).
    pub fn filtered(resource: &'r Resource, filter: Arc<PayloadFilter>) -> Self {
        Subject {
            resource,
            filter: Some(filter),
            payload: OnceCell::new(),
        }
    }

    /// The payload, parsed.
    pub fn payload(&self) -> &Json {
        self.payload.get_or_init(|| match &self.filter {
            Some(filter) => filter.parse(self.resource.payload.as_str()),
            None => self.resource.payload.value(),
        })
    }
}

/// What predicates are evaluated against besides the resource: the registry (for
/// cross-resource predicates) and the variable tree (for `custom-variable`). It caches
/// cross-resource results (they do not depend on the resource being matched) and collects the
/// resources they matched, which templates see as `resources[<type>]`.
pub struct MatchContext<'a> {
    registry: &'a Registry,
    variables: &'a Json,
    cross_cache: HashMap<u64, Option<&'a Resource>>,
    matched: BTreeMap<String, &'a Resource>,
}

impl<'a> MatchContext<'a> {
    /// A context over `registry`; `variables` is the tree `custom-variable` paths start at.
    pub fn new(registry: &'a Registry, variables: &'a Json) -> Self {
        MatchContext {
            registry,
            variables,
            cross_cache: HashMap::new(),
            matched: BTreeMap::new(),
        }
    }

    /// The registry matched against.
    pub fn registry(&self) -> &'a Registry {
        self.registry
    }

    /// Resources matched by cross-resource predicates since the last [`Self::take_matched`],
    /// by registry type name.
    pub fn matched(&self) -> &BTreeMap<String, &'a Resource> {
        &self.matched
    }

    /// Returns and clears the cross-matched resources.
    pub fn take_matched(&mut self) -> BTreeMap<String, &'a Resource> {
        std::mem::take(&mut self.matched)
    }

    /// The first resource of `spec`'s type that `predicate` accepts. The answer does not
    /// depend on the resource being matched, so it is computed once per predicate for as long
    /// as the context lives: reuse one context for many resources.
    fn cross_match(
        &mut self,
        predicate: &PatternPredicate,
        spec: &ResourceTypeSpec,
    ) -> Option<&'a Resource> {
        if let Some(hit) = self.cross_cache.get(&predicate.id) {
            return *hit;
        }
        let registry = self.registry;
        let hit = registry.of_type(&spec.reference.registry_type()).find(|r| {
            let subject = Subject::new(r);
            spec.accepts_subject(&subject) && predicate.matches_resource(&subject)
        });
        self.cross_cache.insert(predicate.id, hit);
        hit
    }
}

impl Predicate {
    /// Whether `subject` satisfies the predicate. Cross-resource matches are recorded in
    /// `ctx` (also inside `not` and failed `and` branches, as upstream records them).
    pub fn evaluate<'a>(&self, subject: &Subject<'_>, ctx: &mut MatchContext<'a>) -> bool {
        match self {
            Predicate::Pattern(p) => match &p.resource_type {
                None => p.matches_resource(subject),
                Some(spec) => match ctx.cross_match(p, spec) {
                    Some(hit) => {
                        ctx.matched.insert(spec.reference.registry_type(), hit);
                        true
                    }
                    None => false,
                },
            },
            Predicate::Exists { path, match_empty } => path.exists(subject.payload(), *match_empty),
            Predicate::CustomVariable { path, pattern } => {
                path.any_leaf(ctx.variables, &mut |s| pattern.is_match(s))
            }
            Predicate::And(children) => children.iter().all(|c| c.evaluate(subject, ctx)),
            Predicate::Or(children) => children.iter().any(|c| c.evaluate(subject, ctx)),
            Predicate::Not(child) => !child.evaluate(subject, ctx),
        }
    }

    /// Every resource type a cross-resource predicate in this tree refers to.
    pub fn referenced_types(&self, out: &mut Vec<ResourceTypeSpec>) {
        match self {
            Predicate::Pattern(PatternPredicate {
                resource_type: Some(spec),
                ..
            }) => out.push(spec.clone()),
            Predicate::And(children) | Predicate::Or(children) => {
                children.iter().for_each(|c| c.referenced_types(out));
            }
            Predicate::Not(child) => child.referenced_types(out),
            _ => {}
        }
    }
}

impl PatternPredicate {
    fn matches_resource(&self, subject: &Subject<'_>) -> bool {
        self.properties.iter().any(|prop| match prop {
            Property::Name => self.pattern.is_match(&subject.resource.name),
            Property::Special(s) => match metadata(subject, s.source) {
                Some(Some(map)) => map.iter().any(|(k, v)| {
                    (s.keys && self.pattern.is_match(k))
                        || (s.values && self.pattern.is_match(&super::path::python_str(v)))
                }),
                // The special name does not apply to this platform: it is a payload path.
                None => PropertyPath::new(s.name)
                    .any_leaf(subject.payload(), &mut |v| self.pattern.is_match(v)),
                Some(None) => false,
            },
            Property::Path(path) => {
                path.any_leaf(subject.payload(), &mut |v| self.pattern.is_match(v))
            }
        })
    }
}

/// The labels/annotations/tags object of a resource: `None` when the special property does not
/// apply to its platform, `Some(None)` when the resource has none.
fn metadata<'p>(
    subject: &'p Subject<'_>,
    source: MetaSource,
) -> Option<Option<&'p serde_json::Map<String, Json>>> {
    let kubernetes = subject.resource.platform == "kubernetes";
    let payload = || subject.payload();
    let value = match source {
        MetaSource::Labels if kubernetes => payload().pointer("/metadata/labels"),
        MetaSource::Annotations if kubernetes => payload().pointer("/metadata/annotations"),
        MetaSource::Tags if !kubernetes => payload().get("tags"),
        _ => return None,
    };
    Some(value.and_then(Json::as_object))
}

/// Parses one predicate; `platform` is the rule's, for cross-resource types. Errors describe
/// the problem in the predicate (the caller adds the file and line).
pub(crate) fn parse(
    value: &Value,
    platform: &str,
    warnings: &mut Vec<String>,
) -> Result<Predicate, String> {
    let map = match value {
        Value::Mapping(m) => m,
        other => {
            return Err(format!(
                "a match rule is {}, expected a mapping with `type:`",
                yaml::describe(other)
            ));
        }
    };
    let kind = match map.get("type") {
        Some(Value::String(t)) if !t.is_empty() => t.as_str(),
        _ => {
            return Err(
                "a match rule needs `type:` (pattern, exists, custom-variable, and, or, not)"
                    .into(),
            );
        }
    };
    match kind {
        "pattern" => {
            let legacy_variables = matches!(map.get("resourceType"), Some(Value::String(t)) if t.eq_ignore_ascii_case("variables"));
            if legacy_variables {
                // The old spelling of `custom-variable`.
                let path = match map.get("properties") {
                    Some(Value::Sequence(p)) if p.len() == 1 => match &p[0] {
                        Value::String(s) => s.clone(),
                        _ => return Err("`properties` must hold one variable path".into()),
                    },
                    _ => {
                        return Err(
                            "a `resourceType: variables` pattern needs `properties:` with exactly one variable path (e.g. [custom/x])"
                                .into(),
                        );
                    }
                };
                return custom_variable(map, &path);
            }
            let pattern = compiled(map)?;
            let properties = match map.get("properties") {
                Some(Value::Sequence(items)) if !items.is_empty() => items
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(Property::parse(s)),
                        other => Err(format!(
                            "a property is {}, expected a name or path",
                            yaml::describe(other)
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(Value::String(s)) => vec![Property::parse(s)],
                _ => {
                    return Err(
                        "a pattern needs a non-empty `properties:` list (e.g. [name])".into(),
                    );
                }
            };
            let resource_type = match map.get("resourceType") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let (spec, warning) = types::parse_spec(v, platform)?;
                    warnings.extend(warning);
                    Some(spec)
                }
            };
            Ok(Predicate::Pattern(PatternPredicate {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                pattern,
                properties,
                resource_type,
            }))
        }
        "exists" => {
            let path = match map.get("path") {
                Some(Value::String(p)) if !p.is_empty() => PropertyPath::new(p),
                _ => return Err("an `exists` rule needs `path:`".into()),
            };
            let match_empty = match map.get("matchEmpty") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "`matchEmpty` is {}, expected true or false",
                        yaml::describe(other)
                    ));
                }
            };
            Ok(Predicate::Exists { path, match_empty })
        }
        "custom-variable" => {
            let path = match map.get("path") {
                Some(Value::String(p)) if !p.is_empty() => p.clone(),
                _ => {
                    return Err(
                        "a `custom-variable` rule needs `path:` (e.g. custom/my_key)".into(),
                    );
                }
            };
            custom_variable(map, &path)
        }
        "and" | "or" | "not" => {
            let mut parse = |c: &Value| parse(c, platform, warnings);
            Ok(match combined(kind, map)? {
                Combined::All(c) => {
                    Predicate::And(c.into_iter().map(&mut parse).collect::<Result<_, _>>()?)
                }
                Combined::Any(c) => {
                    Predicate::Or(c.into_iter().map(&mut parse).collect::<Result<_, _>>()?)
                }
                Combined::Not(c) => Predicate::Not(Box::new(parse(c)?)),
            })
        }
        other => Err(format!(
            "unknown match rule type {other:?} (expected pattern, exists, custom-variable, and, or, not)"
        )),
    }
}

/// What an `and`, `or` or `not` match combines, before its children are parsed.
pub(crate) enum Combined<'v> {
    All(Vec<&'v Value>),
    Any(Vec<&'v Value>),
    Not(&'v Value),
}

/// The children of an `and`/`or` match (`matches:`) or the child of a `not` (`match:`,
/// `predicate:`, or `matches:` with one item, for symmetry with and/or), as generation rules
/// and map customization rules both write them. `kind` is one of the three.
pub(crate) fn combined<'v>(kind: &str, map: &'v Mapping) -> Result<Combined<'v>, String> {
    if kind == "not" {
        let child = ["match", "matches", "predicate"]
            .iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()))
            .ok_or("a `not` match needs its child under `match:`")?;
        return match child {
            Value::Sequence(items) if items.len() == 1 => Ok(Combined::Not(&items[0])),
            Value::Sequence(_) => Err("a `not` match takes a single child".into()),
            other => Ok(Combined::Not(other)),
        };
    }
    let children = match map.get("matches") {
        Some(Value::Sequence(items)) => items.iter().collect(),
        _ => return Err(format!("an `{kind}` match needs a `matches:` list")),
    };
    Ok(if kind == "and" {
        Combined::All(children)
    } else {
        Combined::Any(children)
    })
}

fn custom_variable(map: &Mapping, path: &str) -> Result<Predicate, String> {
    Ok(Predicate::CustomVariable {
        path: PropertyPath::new(path),
        pattern: compiled(map)?,
    })
}

fn compiled(map: &Mapping) -> Result<PyPattern, String> {
    let source = match map.get("pattern") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("a non-empty `pattern:` is required".into()),
    };
    let mode = match map.get("mode") {
        None | Some(Value::Null) => MatchMode::Substring,
        Some(Value::String(m)) => {
            MatchMode::parse(m).ok_or_else(|| format!("mode {m:?} is not exact or substring"))?
        }
        Some(other) => {
            return Err(format!(
                "`mode` is {}, expected exact or substring",
                yaml::describe(other)
            ));
        }
    };
    PyPattern::new(&source, mode).map_err(|e| {
        let reason = e.to_string();
        let reason = reason
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        format!("pattern {source:?} does not compile: {reason}")
    })
}

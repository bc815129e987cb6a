//! Map customization: runwhen-local's `MapCustomizationRules` files, which put SLXs into groups
//! (`slxGroups` of `workspace.yaml`) and relate SLXs (`slxRelationships`) and groups
//! (`dependsOn`).
//!
//! A file holds `spec.groupRules` (`match`, `group` as a template, `priority`), and
//! `spec.slxRelationshipRules` and `spec.groupRelationshipRules` (`subject`, `verb`,
//! `matches`), with `slxRelationVerbDefault` and `groupRelationVerbDefault`. SLX predicates
//! are `pattern` on an SLX property (`matchProperty`, or its old name `matchType`: `name`,
//! `full-name`, `base-name`, `qualified-name`, `namespace`, `cluster`, else a path into the
//! resource) with `matchMode` (`substring` by default) and `and`/`or`/`not`; group predicates
//! are `pattern` on the group's name. Files of a directory are read in name order and their
//! rules merged; group rules are then ordered by priority, lowest first, ties in file order.
//! A file or rule that cannot be used is reported with its file and line and skipped.

mod apply;

pub use apply::{Mapped, SlxFacts, map_slxs};

use crate::config::yaml::{self, KeyPath};
use crate::output::Skipped;
use crate::rules::{Combined, MatchMode, PropertyPath, PyPattern, combined};
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// What a relationship rule says of its subject and the matched SLX or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// The subject depends on what matched.
    DependentOn,
    /// What matched depends on the subject.
    DependedOnBy,
}

impl Verb {
    fn parse(text: &str) -> Option<Verb> {
        match text.to_ascii_lowercase().as_str() {
            "dependent-on" => Some(Verb::DependentOn),
            "depended-on-by" => Some(Verb::DependedOnBy),
            _ => None,
        }
    }
}

/// An SLX property a `pattern` predicate tests.
#[derive(Debug, Clone)]
pub enum SlxProperty {
    /// The SLX's name (`<workspace>--<directory>`).
    Name,
    /// Base name and qualifier values, before shortening.
    FullName,
    BaseName,
    /// The directory name under `slxs/`.
    QualifiedName,
    /// The `namespace` qualifier's value (nothing when it is not a qualifier).
    Namespace,
    /// The `cluster` qualifier's value.
    Cluster,
    /// Any leaf at this path of the SLX's resource.
    Path(PropertyPath),
}

/// A predicate over `T` tests (`pattern`) combined with `and`/`or`/`not`.
#[derive(Debug, Clone)]
pub enum Predicate<T> {
    Test(T),
    And(Vec<Predicate<T>>),
    Or(Vec<Predicate<T>>),
    Not(Box<Predicate<T>>),
}

impl<T> Predicate<T> {
    pub(crate) fn holds(&self, test: &dyn Fn(&T) -> bool) -> bool {
        match self {
            Predicate::Test(t) => test(t),
            Predicate::And(all) => all.iter().all(|p| p.holds(test)),
            Predicate::Or(any) => any.iter().any(|p| p.holds(test)),
            Predicate::Not(p) => !p.holds(test),
        }
    }
}

/// A test of one SLX property.
pub type SlxTest = (SlxProperty, PyPattern);

/// An SLX goes to the group its first matching rule names.
#[derive(Debug, Clone)]
pub struct GroupRule {
    /// Where it is written (`file:line`), for what it causes to be skipped.
    pub origin: String,
    pub predicate: Predicate<SlxTest>,
    /// The group's name, a template rendered with the SLX's variables.
    pub group: String,
    pub priority: i64,
}

/// The first rule whose `matches` has a match relates the subject to what matched.
#[derive(Debug, Clone)]
pub struct RelationshipRule<T> {
    /// Where it is written (`file:line`).
    pub origin: String,
    /// A template (SLX rules) or a group name (group rules).
    pub subject: String,
    pub verb: Verb,
    pub matches: Vec<Predicate<T>>,
}

/// Every map customization rule, merged.
#[derive(Debug, Clone, Default)]
pub struct MapRules {
    pub groups: Vec<GroupRule>,
    pub slx_relationships: Vec<RelationshipRule<SlxTest>>,
    /// Tests of a group's name.
    pub group_relationships: Vec<RelationshipRule<PyPattern>>,
}

/// The rules path given to [`MapRules::load`] cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the map customization rules at {path}; check the --map-customization-rules path"
)]
pub struct LoadError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl MapRules {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.slx_relationships.is_empty()
    }

    /// Reads a rules file, or every `.yaml`/`.yml` file of a directory in name order (hidden
    /// files left out). Files and rules that cannot be used go to `skipped`, keys that have no
    /// effect to `warnings`; only a path that cannot be read at all is an error.
    pub fn load(
        path: &Path,
        skipped: &mut Vec<Skipped>,
        warnings: &mut Vec<String>,
    ) -> Result<MapRules, LoadError> {
        let error = |source| LoadError {
            path: path.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        if std::fs::metadata(path).map_err(error)?.is_dir() {
            for entry in std::fs::read_dir(path).map_err(error)? {
                let file = entry.map_err(error)?.path();
                let name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let extension = name.rsplit('.').next().unwrap_or_default();
                let yaml = ["yaml", "yml"]
                    .iter()
                    .any(|e| extension.eq_ignore_ascii_case(e));
                if yaml && !name.starts_with('.') && file.is_file() {
                    files.push(file);
                }
            }
            files.sort();
            if files.is_empty() {
                warnings.push(format!(
                    "{}: no .yaml or .yml file, so no map customization rules",
                    path.display()
                ));
            }
        } else {
            files.push(path.to_path_buf());
        }
        let mut rules = MapRules::default();
        for file in files {
            let origin = file.display().to_string();
            match std::fs::read(&file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => rules.add_file(
                        text.strip_prefix('\u{feff}').unwrap_or(&text),
                        &origin,
                        skipped,
                        warnings,
                    ),
                    Err(_) => skipped.push(Skipped {
                        item: "map customization rules".into(),
                        location: origin,
                        reason: "not UTF-8 text; save the file as UTF-8".into(),
                    }),
                },
                Err(e) => skipped.push(Skipped {
                    item: "map customization rules".into(),
                    location: origin,
                    reason: format!("cannot be read: {e}"),
                }),
            }
        }
        // Stable: rules of equal priority keep their file order.
        rules.groups.sort_by_key(|r| r.priority);
        Ok(rules)
    }

    /// Adds the rules of one file; `origin` names it in what is skipped.
    pub fn add_file(
        &mut self,
        text: &str,
        origin: &str,
        skipped: &mut Vec<Skipped>,
        warnings: &mut Vec<String>,
    ) {
        let skip = |line: Option<usize>, item: &str, reason: String| Skipped {
            item: item.to_string(),
            location: at(origin, line),
            reason,
        };
        let doc: Value = match serde_yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                let (line, column, message) = yaml::syntax_error(&e);
                skipped.push(skip(
                    Some(line),
                    "map customization rules",
                    format!("not valid YAML (column {column}): {message}"),
                ));
                return;
            }
        };
        let root = KeyPath::root();
        if doc.is_null() {
            skipped.push(skip(
                None,
                "map customization rules",
                "the file holds no rules".into(),
            ));
            return;
        }
        let Some(map) = doc.as_mapping() else {
            skipped.push(skip(
                None,
                "map customization rules",
                format!(
                    "the document is {}, expected `kind: MapCustomizationRules` with a `spec`",
                    yaml::describe(&doc)
                ),
            ));
            return;
        };
        match map.get("kind").and_then(Value::as_str) {
            Some("MapCustomizationRules") => {}
            Some(kind) => {
                skipped.push(skip(
                    yaml::locate(text, &root.key("kind")),
                    "map customization rules",
                    format!("`kind` is {kind:?}, expected \"MapCustomizationRules\""),
                ));
                return;
            }
            None => {
                skipped.push(skip(
                    None,
                    "map customization rules",
                    "no `kind: MapCustomizationRules`; add it if this is a rules file".into(),
                ));
                return;
            }
        }
        let spec_path = root.key("spec");
        let spec = match map.get("spec") {
            None | Some(Value::Null) => return,
            Some(Value::Mapping(spec)) => spec,
            Some(other) => {
                skipped.push(skip(
                    yaml::locate(text, &spec_path),
                    "map customization rules",
                    format!("`spec` is {}, expected a mapping", yaml::describe(other)),
                ));
                return;
            }
        };
        let mut verb_default = |key: &str| match spec.get(key).and_then(Value::as_str) {
            None => Verb::DependentOn,
            Some(v) => Verb::parse(v).unwrap_or_else(|| {
                skipped.push(skip(
                    yaml::locate(text, &spec_path.key(key)),
                    key,
                    format!("{v:?} is not dependent-on or depended-on-by; dependent-on is used"),
                ));
                Verb::DependentOn
            }),
        };
        let slx_verb = verb_default("slxRelationVerbDefault");
        let group_verb = verb_default("groupRelationVerbDefault");
        for (key, value) in spec {
            let key = yaml::key_string(key);
            let known = [
                "groupRules",
                "slxRelationshipRules",
                "groupRelationshipRules",
                "slxRelationVerbDefault",
                "groupRelationVerbDefault",
            ];
            if !known.contains(&key.as_str()) {
                let line = yaml::locate(text, &spec_path.key(&key));
                warnings.push(format!(
                    "{}: spec.{key} is not a map customization key; it has no effect",
                    at(origin, line)
                ));
                continue;
            }
            if key.ends_with("VerbDefault") || value.is_null() {
                continue;
            }
            let Some(entries) = value.as_sequence() else {
                skipped.push(skip(
                    yaml::locate(text, &spec_path.key(&key)),
                    &format!("spec.{key}"),
                    format!("{} where a list of rules belongs", yaml::describe(value)),
                ));
                continue;
            };
            for (i, entry) in entries.iter().enumerate() {
                let line = yaml::locate(text, &spec_path.key(&key).index(i));
                let here = at(origin, line);
                let mut unknown = Vec::new();
                let parsed = match key.as_str() {
                    "groupRules" => {
                        group_rule(entry, &here, &mut unknown).map(|r| self.groups.push(r))
                    }
                    "slxRelationshipRules" => {
                        relationship(entry, &here, slx_verb, &slx_test, &mut unknown)
                            .map(|r| self.slx_relationships.push(r))
                    }
                    _ => relationship(entry, &here, group_verb, &group_test, &mut unknown)
                        .map(|r| self.group_relationships.push(r)),
                };
                for name in unknown {
                    warnings.push(format!(
                        "{here}: `{name}` in a {key} entry has no effect (a misspelt key?)"
                    ));
                }
                if let Err(reason) = parsed {
                    skipped.push(skip(line, &format!("{key} entry {}", i + 1), reason));
                }
            }
        }
    }
}

/// `file:line`, or the file alone.
fn at(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{origin}:{l}"),
        None => origin.to_string(),
    }
}

/// Adds the keys of `map` outside `known` to `unknown`.
fn unknown_keys(map: &Mapping, known: &[&str], unknown: &mut Vec<String>) {
    for key in map.keys() {
        let key = yaml::key_string(key);
        if !known.contains(&key.as_str()) && !unknown.contains(&key) {
            unknown.push(key);
        }
    }
}

fn group_rule(entry: &Value, origin: &str, unknown: &mut Vec<String>) -> Result<GroupRule, String> {
    let map = mapping(entry, "a group rule")?;
    unknown_keys(map, &["match", "group", "priority"], unknown);
    let predicate = match map.get("match") {
        Some(m) if !m.is_null() => predicate(m, &slx_test, unknown)?,
        _ => return Err("a group rule needs `match:`".into()),
    };
    let group = match map.get("group") {
        Some(Value::String(g)) if !g.is_empty() => g.clone(),
        _ => return Err("a group rule needs `group:` (the group's name)".into()),
    };
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            return Err(format!(
                "`priority` {n} is out of range (from {} to {})",
                i64::MIN,
                i64::MAX
            ));
        }
        Some(other) => {
            return Err(format!(
                "`priority` is {}, expected a whole number",
                yaml::describe(other)
            ));
        }
    };
    Ok(GroupRule {
        origin: origin.to_string(),
        predicate,
        group,
        priority,
    })
}

fn relationship<T>(
    entry: &Value,
    origin: &str,
    default: Verb,
    test: &dyn Fn(&Mapping) -> Result<T, String>,
    unknown: &mut Vec<String>,
) -> Result<RelationshipRule<T>, String> {
    let map = mapping(entry, "a relationship rule")?;
    unknown_keys(map, &["subject", "verb", "matches"], unknown);
    let subject = match map.get("subject") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("a relationship rule needs `subject:`".into()),
    };
    let verb = match map.get("verb") {
        None | Some(Value::Null) => default,
        Some(Value::String(v)) => Verb::parse(v)
            .ok_or_else(|| format!("verb {v:?} is not dependent-on or depended-on-by"))?,
        Some(other) => return Err(format!("`verb` is {}", yaml::describe(other))),
    };
    let matches = match map.get("matches") {
        Some(Value::Sequence(items)) if !items.is_empty() => items
            .iter()
            .map(|m| predicate(m, test, unknown))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("a relationship rule needs a non-empty `matches:` list".into()),
    };
    Ok(RelationshipRule {
        origin: origin.to_string(),
        subject,
        verb,
        matches,
    })
}

fn mapping<'v>(value: &'v Value, what: &str) -> Result<&'v Mapping, String> {
    value
        .as_mapping()
        .ok_or_else(|| format!("{what} is {}, expected a mapping", yaml::describe(value)))
}

fn predicate<T>(
    value: &Value,
    test: &dyn Fn(&Mapping) -> Result<T, String>,
    unknown: &mut Vec<String>,
) -> Result<Predicate<T>, String> {
    let map = mapping(value, "a match")?;
    match map.get("type").and_then(Value::as_str) {
        Some("pattern") => {
            // `properties` appears in upstream's own rule files, where it has no effect either.
            let known = [
                "type",
                "matchProperty",
                "matchType",
                "pattern",
                "matchMode",
                "properties",
            ];
            unknown_keys(map, &known, unknown);
            test(map).map(Predicate::Test)
        }
        Some(kind @ ("and" | "or" | "not")) => {
            let mut parse = |c: &Value| predicate(c, test, unknown);
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
        Some(other) => Err(format!(
            "match type {other:?} is not supported in map customization (pattern, and, or, not)"
        )),
        None => Err("a match needs `type:` (pattern, and, or, not)".into()),
    }
}

/// The pattern and mode of a `pattern` match (`matchMode`, substring by default).
fn pattern(map: &Mapping) -> Result<PyPattern, String> {
    let source = match map.get("pattern") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("a pattern match needs a non-empty `pattern:`".into()),
    };
    let mode = match map.get("matchMode").and_then(Value::as_str) {
        None => MatchMode::Substring,
        Some(m) => MatchMode::parse(m)
            .ok_or_else(|| format!("matchMode {m:?} is not exact or substring"))?,
    };
    PyPattern::new(&source, mode).map_err(|e| {
        let reason = e.to_string();
        let reason = reason.lines().last().unwrap_or_default().to_string();
        format!("pattern {source:?} does not compile: {reason}")
    })
}

fn slx_test(map: &Mapping) -> Result<SlxTest, String> {
    let property = map
        .get("matchProperty")
        .or_else(|| map.get("matchType"))
        .and_then(Value::as_str)
        .ok_or("a pattern match needs `matchProperty:` (name, full-name, base-name, qualified-name, namespace, cluster or a resource path)")?;
    let property = match property.to_ascii_lowercase().as_str() {
        "name" => SlxProperty::Name,
        "full-name" => SlxProperty::FullName,
        "base-name" => SlxProperty::BaseName,
        "qualified-name" => SlxProperty::QualifiedName,
        "namespace" => SlxProperty::Namespace,
        "cluster" => SlxProperty::Cluster,
        _ => SlxProperty::Path(PropertyPath::new(property)),
    };
    Ok((property, pattern(map)?))
}

fn group_test(map: &Mapping) -> Result<PyPattern, String> {
    match map.get("matchProperty").and_then(Value::as_str) {
        None => {}
        Some(p) if p.eq_ignore_ascii_case("name") => {}
        Some(p) => {
            return Err(format!(
                "a group can only be matched by its name, not {p:?}"
            ));
        }
    }
    pattern(map)
}

//! One generation-rule file (`codebundles/<cb>/.runwhen/generation-rules/*.yaml`).
//!
//! A file that is not YAML, or whose top level is not a rule document, is a [`RuleError`]. A
//! rule entry that cannot be used (no `resourceTypes`, an SLX without `baseName`, a regex that
//! does not compile, an unknown level of detail...) is skipped with a [`RuleWarning`] naming
//! the file and line, as upstream skips it; the other rules of the file still load.

use super::items::{Issue, OutputItemSpec, SlxSpec, issue, output_items, parse_slx, unknown_keys};
use super::predicate::{self, MatchContext, Predicate, Subject};
use super::types::{self, DEFAULT_PLATFORM, INDEXED_PLATFORMS, KNOWN_PLATFORMS, ResourceTypeSpec};
use crate::config::yaml::{self, KeyPath};
use crate::resource::{Lod, Registry, Resource};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A rule file that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{origin}:{line}:{column}: not valid YAML: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid YAML, but not a generation-rules document.
    #[error("{}: {message}", at(origin, line))]
    Shape {
        origin: String,
        line: Option<usize>,
        message: String,
    },
}

/// Something skipped or doubtful in a rule file that still loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWarning {
    /// The file, as named to [`RuleFile::parse`].
    pub origin: String,
    /// The 1-based line of the entry concerned, when found.
    pub line: Option<usize>,
    /// What was skipped or is doubtful, and why.
    pub message: String,
}

impl fmt::Display for RuleWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", at(&self.origin, &self.line), self.message)
    }
}

fn at(origin: &str, line: &Option<usize>) -> String {
    match line {
        Some(l) => format!("{origin}:{l}"),
        None => origin.to_string(),
    }
}

/// One `generationRules` entry.
#[derive(Debug, Clone)]
pub struct GenerationRule {
    /// Position in the file's `generationRules`.
    pub index: usize,
    /// The 1-based line of the entry.
    pub line: Option<usize>,
    /// The rule's `platform`, else the file's.
    pub platform: String,
    /// `resourceTypes`: what the rule is tried on.
    pub resource_types: Vec<ResourceTypeSpec>,
    /// Implicitly AND-ed.
    pub match_rules: Vec<Predicate>,
    /// `slxs`.
    pub slxs: Vec<SlxSpec>,
    /// Rule-level items (emitted without SLX naming).
    pub output_items: Vec<OutputItemSpec>,
}

impl GenerationRule {
    /// Whether Steward indexes the rule's platform (other rules are kept but match nothing).
    pub fn is_indexed(&self) -> bool {
        INDEXED_PLATFORMS.contains(&self.platform.as_str())
    }

    /// The registry resources the rule is tried on, type by type in `resourceTypes` order
    /// (a type listed twice is tried once).
    pub fn candidates<'a>(&self, registry: &'a Registry) -> Vec<&'a Resource> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for spec in &self.resource_types {
            if !seen.insert(spec) {
                continue;
            }
            let type_name = spec.reference.registry_type();
            out.extend(registry.of_type(&type_name).filter(|r| spec.accepts(r)));
        }
        out
    }

    /// Whether `resource` satisfies every match rule. On a match, returns the resources
    /// templates see as `resources`: those matched by cross-resource predicates, plus
    /// `resource` itself under its type.
    pub fn matches<'a>(
        &self,
        resource: &'a Resource,
        ctx: &mut MatchContext<'a>,
    ) -> Option<BTreeMap<String, &'a Resource>> {
        self.matches_subject(&Subject::new(resource), ctx)
    }

    /// [`Self::matches`] for a resource being matched, so that several rules tried on it
    /// parse its payload once.
    pub fn matches_subject<'a>(
        &self,
        subject: &Subject<'a>,
        ctx: &mut MatchContext<'a>,
    ) -> Option<BTreeMap<String, &'a Resource>> {
        ctx.take_matched();
        if !self.match_rules.iter().all(|p| p.evaluate(subject, ctx)) {
            ctx.take_matched();
            return None;
        }
        let mut resources = ctx.take_matched();
        resources.insert(subject.resource.resource_type.clone(), subject.resource);
        Some(resources)
    }

    /// Resource types this rule lists or cross-matches.
    pub fn referenced_types(&self) -> Vec<ResourceTypeSpec> {
        let mut out = self.resource_types.clone();
        for p in &self.match_rules {
            p.referenced_types(&mut out);
        }
        out
    }
}

/// A parsed generation-rule file.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// The display path given to [`RuleFile::parse`].
    pub origin: String,
    /// `spec.platform` (default `kubernetes`).
    pub platform: String,
    /// The usable rules, in file order.
    pub rules: Vec<GenerationRule>,
    /// What was skipped or doubtful.
    pub warnings: Vec<RuleWarning>,
}

const RULE_KEYS: &[&str] = &[
    "resourceTypes",
    "matchRules",
    "slxs",
    "outputItems",
    "platform",
];
impl RuleFile {
    /// Parses a rule file; `origin` is how it is named in messages
    /// (`<collection>/codebundles/<cb>/.runwhen/generation-rules/<file>`).
    pub fn parse(text: &str, origin: &str) -> Result<RuleFile, RuleError> {
        let mut file = RuleFile {
            origin: origin.to_string(),
            platform: DEFAULT_PLATFORM.to_string(),
            rules: Vec::new(),
            warnings: Vec::new(),
        };
        let doc: Value = serde_yaml::from_str(text).map_err(|e| {
            let (line, column, message) = yaml::syntax_error(&e);
            RuleError::Syntax {
                origin: origin.to_string(),
                line,
                column,
                message,
            }
        })?;
        let shape = |path: &KeyPath, message: String| RuleError::Shape {
            origin: origin.to_string(),
            line: yaml::locate(text, path),
            message,
        };
        let root = KeyPath::root();
        let map = match &doc {
            Value::Null => {
                file.warn(text, &root, "the file holds no rules");
                return Ok(file);
            }
            Value::Mapping(m) => m,
            other => {
                return Err(shape(
                    &root,
                    format!(
                        "the document is {}, expected a mapping with `spec.generationRules`",
                        yaml::describe(other)
                    ),
                ));
            }
        };
        let spec_path = root.key("spec");
        let spec = match map.get("spec") {
            None => {
                file.warn(text, &root, "no `spec:`, so no rules");
                return Ok(file);
            }
            Some(Value::Mapping(m)) => m,
            Some(other) => {
                return Err(shape(
                    &spec_path,
                    format!(
                        "`spec` is {}, expected a mapping with `generationRules`",
                        yaml::describe(other)
                    ),
                ));
            }
        };
        match spec.get("platform") {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) => file.platform = p.clone(),
            Some(other) => {
                return Err(shape(
                    &spec_path.key("platform"),
                    format!(
                        "`spec.platform` is {}, expected a platform name",
                        yaml::describe(other)
                    ),
                ));
            }
        }
        let rules_path = spec_path.key("generationRules");
        let entries = match spec.get("generationRules") {
            None | Some(Value::Null) => {
                file.warn(text, &spec_path, "no `spec.generationRules`, so no rules");
                return Ok(file);
            }
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                return Err(shape(
                    &rules_path,
                    format!(
                        "`spec.generationRules` is {}, expected a list of rules",
                        yaml::describe(other)
                    ),
                ));
            }
        };

        for (index, entry) in entries.iter().enumerate() {
            let path = rules_path.index(index);
            let mut notes = Vec::new();
            match parse_rule(entry, &file.platform, &path, &mut notes) {
                Ok(mut rule) => {
                    rule.index = index;
                    rule.line = yaml::locate(text, &path);
                    for (j, slx) in rule.slxs.iter_mut().enumerate() {
                        slx.line = yaml::locate(text, &path.key("slxs").index(j));
                    }
                    file.rules.push(rule);
                }
                Err(e) => notes.push(issue(
                    &e.path,
                    format!("generation rule #{} skipped: {}", index + 1, e.message),
                )),
            }
            for note in notes {
                file.warn(text, &note.path, note.message);
            }
        }

        let mut unindexed: BTreeMap<&str, usize> = BTreeMap::new();
        for rule in &file.rules {
            if !rule.is_indexed() {
                *unindexed.entry(rule.platform.as_str()).or_default() += 1;
            }
        }
        let notes: Vec<String> = unindexed
            .into_iter()
            .map(|(platform, n)| {
                let what = if KNOWN_PLATFORMS.contains(&platform) {
                    "is not indexed by Steward yet"
                } else {
                    "is not a platform Steward or runwhen-local knows"
                };
                format!("platform {platform:?} {what}; its {n} rule(s) are kept but match nothing")
            })
            .collect();
        for note in notes {
            file.warn(text, &spec_path, note);
        }
        Ok(file)
    }

    /// Every (platform, resource type) the file's rules list or cross-match, so that the
    /// indexer lists only what is needed.
    pub fn referenced_types(&self) -> BTreeSet<ResourceTypeSpec> {
        self.rules
            .iter()
            .flat_map(GenerationRule::referenced_types)
            .collect()
    }

    fn warn(&mut self, text: &str, path: &KeyPath, message: impl Into<String>) {
        let warning = RuleWarning {
            origin: self.origin.clone(),
            line: yaml::locate(text, path),
            message: message.into(),
        };
        tracing::warn!(file = %warning.origin, line = ?warning.line, "{}", warning.message);
        self.warnings.push(warning);
    }
}

/// The types every file references, merged.
pub fn referenced_types<'a>(
    files: impl IntoIterator<Item = &'a RuleFile>,
) -> BTreeSet<ResourceTypeSpec> {
    files
        .into_iter()
        .flat_map(RuleFile::referenced_types)
        .collect()
}

fn parse_rule(
    entry: &Value,
    file_platform: &str,
    path: &KeyPath,
    notes: &mut Vec<Issue>,
) -> Result<GenerationRule, Issue> {
    let map = match entry {
        Value::Mapping(m) => m,
        other => {
            return Err(issue(
                path,
                format!("it is {}, expected a mapping", yaml::describe(other)),
            ));
        }
    };
    unknown_keys(map, RULE_KEYS, path, "rule", notes);
    // The rule's platform is the default for its resource types and predicates (upstream
    // applied it to predicates only, which made `platform:` on a rule useless).
    let platform = match map.get("platform") {
        None | Some(Value::Null) => file_platform.to_string(),
        Some(Value::String(p)) => p.clone(),
        Some(other) => {
            return Err(issue(
                &path.key("platform"),
                format!("`platform` is {}", yaml::describe(other)),
            ));
        }
    };

    let types_path = path.key("resourceTypes");
    let type_values: Vec<&Value> = match map.get("resourceTypes") {
        Some(Value::Sequence(items)) if !items.is_empty() => items.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        _ => return Err(issue(path, "it needs a non-empty `resourceTypes:` list")),
    };
    let mut resource_types = Vec::new();
    for (i, v) in type_values.into_iter().enumerate() {
        let (spec, warning) =
            types::parse_spec(v, &platform).map_err(|m| issue(&types_path.index(i), m))?;
        if let Some(w) = warning {
            notes.push(issue(&types_path.index(i), w));
        }
        resource_types.push(spec);
    }

    let match_path = path.key("matchRules");
    let match_rules = match map.get("matchRules") {
        Some(Value::Sequence(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut warnings = Vec::new();
                let p = predicate::parse(item, &platform, &mut warnings)
                    .map_err(|m| issue(&match_path.index(i), m))?;
                notes.extend(warnings.into_iter().map(|w| issue(&match_path.index(i), w)));
                out.push(p);
            }
            out
        }
        // Upstream fails on a rule without matchRules; loading it would match every resource.
        None | Some(Value::Null) => {
            return Err(issue(
                path,
                "it has no `matchRules:` (write `matchRules: []` to match every resource)",
            ));
        }
        Some(other) => {
            return Err(issue(
                &match_path,
                format!("`matchRules` is {}, expected a list", yaml::describe(other)),
            ));
        }
    };

    let slxs = match map.get("slxs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_slx(item, &path.key("slxs").index(i), notes))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(issue(
                &path.key("slxs"),
                format!("`slxs` is {}, expected a list", yaml::describe(other)),
            ));
        }
    };
    let output_items = output_items(map, &path.key("outputItems"), Lod::Basic, notes)?;
    for (i, item) in output_items.iter().enumerate() {
        if item.path.is_none() || item.template_name.is_none() {
            notes.push(issue(
                &path.key("outputItems").index(i),
                "a rule-level output item needs both `path` and `templateName` (there is no SLX to derive them from)",
            ));
        }
    }
    if slxs.is_empty() && output_items.is_empty() {
        notes.push(issue(
            path,
            "the rule has neither `slxs` nor `outputItems`, so it generates nothing",
        ));
    }
    Ok(GenerationRule {
        index: 0,
        line: None,
        platform,
        resource_types,
        match_rules,
        slxs,
        output_items,
    })
}

//! The `slxs` and `outputItems` of a generation rule.

use crate::config::yaml::{self, KeyPath};
use crate::resource::Lod;
use serde_yaml::{Mapping, Value};

/// The type of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputKind {
    Slx,
    Sli,
    Slo,
    Runbook,
    TaskSet,
    Workflow,
}

impl OutputKind {
    /// Reads `type:` case-insensitively (the schema spells `taskSet`).
    pub fn parse(text: &str) -> Option<OutputKind> {
        Some(match text.to_ascii_lowercase().as_str() {
            "slx" => OutputKind::Slx,
            "sli" => OutputKind::Sli,
            "slo" => OutputKind::Slo,
            "runbook" => OutputKind::Runbook,
            "taskset" => OutputKind::TaskSet,
            "workflow" => OutputKind::Workflow,
            _ => return None,
        })
    }

    /// The `kind` templates see.
    pub fn kind_name(self) -> &'static str {
        match self {
            OutputKind::Slx => "ServiceLevelX",
            OutputKind::Sli => "ServiceLevelIndicator",
            OutputKind::Slo => "ServiceLevelObjective",
            OutputKind::Runbook => "Runbook",
            OutputKind::TaskSet => "TaskSet",
            OutputKind::Workflow => "Workflow",
        }
    }
}

/// One `outputItems` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputItemSpec {
    /// `type` as written (it forms default file names as written).
    pub item_type: Option<String>,
    /// `type` understood; `None` for an absent or unknown type.
    pub kind: Option<OutputKind>,
    /// The template file. For SLX items it defaults to `<baseTemplateName|baseName>-<type>.yaml`.
    pub template_name: Option<String>,
    /// Values as written; each string is itself rendered as a template upstream.
    pub template_variables: serde_json::Map<String, serde_json::Value>,
    /// The lowest resource level it is emitted at (defaults to its SLX's).
    pub level_of_detail: Lod,
    /// The output path template. For SLX items it defaults to
    /// `{{slx_directory_path}}/<type>.yaml` (workflow items are placed by the renderer).
    pub path: Option<String>,
}

impl OutputItemSpec {
    /// Emitted for a resource at `lod`.
    pub fn emitted_at(&self, lod: Lod) -> bool {
        self.level_of_detail <= lod
    }
}

/// One `slxs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SlxSpec {
    /// `baseName` (may be empty, with a warning).
    pub base_name: String,
    /// `shortenedBaseName`, when given.
    pub shortened_base_name: Option<String>,
    /// `qualifiers`, in order (`resource`, `namespace`, `cluster`...).
    pub qualifiers: Vec<String>,
    /// `baseTemplateName`; template names default to it, else to `baseName`.
    pub base_template_name: Option<String>,
    /// Default `basic`.
    pub level_of_detail: Lod,
    /// `outputItems`, with default paths and template names filled in.
    pub output_items: Vec<OutputItemSpec>,
    /// The 1-based line of the entry.
    pub line: Option<usize>,
}

impl SlxSpec {
    /// Whether a resource at `lod` gets this SLX: some item is emitted at that level.
    pub fn emitted_at(&self, lod: Lod) -> bool {
        self.output_items.iter().any(|i| i.emitted_at(lod))
    }

    /// The items emitted for a resource at `lod`.
    pub fn items_at(&self, lod: Lod) -> impl Iterator<Item = &OutputItemSpec> {
        self.output_items.iter().filter(move |i| i.emitted_at(lod))
    }
}

const SLX_KEYS: &[&str] = &[
    "baseName",
    "shortenedBaseName",
    "qualifiers",
    "baseTemplateName",
    "levelOfDetail",
    "outputItems",
];
const ITEM_KEYS: &[&str] = &[
    "type",
    "templateName",
    "templateVariables",
    "levelOfDetail",
    "path",
];

/// A problem at a key path of the document.
pub(super) struct Issue {
    pub path: KeyPath,
    pub message: String,
}

pub(super) fn issue(path: &KeyPath, message: impl Into<String>) -> Issue {
    Issue {
        path: path.clone(),
        message: message.into(),
    }
}

pub(super) fn unknown_keys(
    map: &Mapping,
    known: &[&str],
    path: &KeyPath,
    what: &str,
    notes: &mut Vec<Issue>,
) {
    for k in map.keys() {
        let name = yaml::key_string(k);
        if !known.contains(&name.as_str()) {
            notes.push(issue(
                &path.key(&name),
                format!("unknown {what} key `{name}` ignored"),
            ));
        }
    }
}

pub(super) fn string_field(
    map: &Mapping,
    key: &str,
    path: &KeyPath,
) -> Result<Option<String>, Issue> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(issue(
            &path.key(key),
            format!("`{key}` is {}, expected a string", yaml::describe(other)),
        )),
    }
}

fn lod_field(map: &Mapping, key: &str, path: &KeyPath) -> Result<Option<Lod>, Issue> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        // Strings and integers both (upstream skipped rules with an integer SLX level, defect d).
        Some(v) => Lod::from_value(&yaml::to_json(v)).map(Some).ok_or_else(|| {
            issue(
                &path.key(key),
                format!(
                    "`{key}` {:?} is not none, basic or detailed (or 0, 1, 2)",
                    yaml::to_json(v)
                ),
            )
        }),
    }
}

pub(super) fn parse_slx(
    entry: &Value,
    path: &KeyPath,
    notes: &mut Vec<Issue>,
) -> Result<SlxSpec, Issue> {
    let map = match entry {
        Value::Mapping(m) => m,
        other => {
            return Err(issue(
                path,
                format!(
                    "an slxs entry is {}, expected a mapping",
                    yaml::describe(other)
                ),
            ));
        }
    };
    unknown_keys(map, SLX_KEYS, path, "slx", notes);
    let base_name = string_field(map, "baseName", path)?
        .ok_or_else(|| issue(path, "an slxs entry needs `baseName:`"))?;
    if base_name.is_empty() {
        notes.push(issue(
            &path.key("baseName"),
            "empty baseName: SLXs of different rules for the same resource will collide",
        ));
    }
    let qualifiers = match map.get("qualifiers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, q)| match q {
                Value::String(s) => Ok(s.clone()),
                other => Err(issue(
                    &path.key("qualifiers").index(i),
                    format!("a qualifier is {}", yaml::describe(other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(issue(
                &path.key("qualifiers"),
                format!(
                    "`qualifiers` is {}, expected a list such as [resource, namespace, cluster]",
                    yaml::describe(other)
                ),
            ));
        }
    };
    let level_of_detail = lod_field(map, "levelOfDetail", path)?.unwrap_or(Lod::Basic);
    let base_template_name = string_field(map, "baseTemplateName", path)?.filter(|s| !s.is_empty());
    let mut output_items = output_items(map, &path.key("outputItems"), level_of_detail, notes)?;
    let template_base = base_template_name
        .clone()
        .unwrap_or_else(|| base_name.clone());
    for (i, item) in output_items.iter_mut().enumerate() {
        let Some(item_type) = item.item_type.clone().filter(|t| !t.is_empty()) else {
            if item.path.is_none() || item.template_name.is_none() {
                return Err(issue(
                    &path.key("outputItems").index(i),
                    "an output item needs `type:` (or both `path` and `templateName`)",
                ));
            }
            continue;
        };
        item.path
            .get_or_insert_with(|| format!("{{{{slx_directory_path}}}}/{item_type}.yaml"));
        item.template_name
            .get_or_insert_with(|| format!("{template_base}-{item_type}.yaml"));
    }
    Ok(SlxSpec {
        base_name,
        shortened_base_name: string_field(map, "shortenedBaseName", path)?
            .filter(|s| !s.is_empty()),
        qualifiers,
        base_template_name,
        level_of_detail,
        output_items,
        line: None,
    })
}

pub(super) fn output_items(
    map: &Mapping,
    path: &KeyPath,
    default_lod: Lod,
    notes: &mut Vec<Issue>,
) -> Result<Vec<OutputItemSpec>, Issue> {
    let items = match map.get("outputItems") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            return Err(issue(
                path,
                format!(
                    "`outputItems` is {}, expected a list",
                    yaml::describe(other)
                ),
            ));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let m = match item {
            Value::Mapping(m) => m,
            other => {
                return Err(issue(
                    &p,
                    format!(
                        "an output item is {}, expected a mapping",
                        yaml::describe(other)
                    ),
                ));
            }
        };
        unknown_keys(m, ITEM_KEYS, &p, "output item", notes);
        let item_type = string_field(m, "type", &p)?;
        let kind = item_type.as_deref().and_then(OutputKind::parse);
        if let (Some(t), None) = (&item_type, kind) {
            notes.push(issue(
                &p.key("type"),
                format!("output item type {t:?} is not slx, sli, slo, runbook, taskset or workflow; templates get no `kind`"),
            ));
        }
        let template_variables = match m.get("templateVariables") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Mapping(vars)) => vars
                .iter()
                .map(|(k, v)| (yaml::key_string(k), yaml::to_json(v)))
                .collect(),
            Some(other) => {
                return Err(issue(
                    &p.key("templateVariables"),
                    format!(
                        "`templateVariables` is {}, expected a mapping",
                        yaml::describe(other)
                    ),
                ));
            }
        };
        out.push(OutputItemSpec {
            item_type,
            kind,
            template_name: string_field(m, "templateName", &p)?.filter(|s| !s.is_empty()),
            template_variables,
            level_of_detail: lod_field(m, "levelOfDetail", &p)?.unwrap_or(default_lod),
            path: string_field(m, "path", &p)?.filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

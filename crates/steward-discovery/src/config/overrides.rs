//! `overrides.codebundles[]`: values forced into the SLIs or runbooks of one codebundle.

use super::error::ConfigError;
use super::reader::{Reader, untag};
use super::yaml::{self, KeyPath};
use serde_yaml::{Mapping, Value};

/// Output item types an override can name.
const ITEM_TYPES: &[&str] = &["slx", "sli", "slo", "runbook", "taskset", "workflow"];

/// One `overrides.codebundles[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CodebundleOverride {
    /// Must equal the collection's `repoURL` exactly.
    pub repo_url: String,
    /// The codebundle directory name.
    pub codebundle_directory: String,
    /// The output item type it applies to, lower-cased (`sli` or `runbook` in practice).
    pub item_type: String,
    /// `configProvided` name → value; values are kept as written (templates and the
    /// post-render patch turn them into strings).
    pub config_provided: serde_json::Map<String, serde_json::Value>,
}

impl CodebundleOverride {
    /// Whether this override applies to an output item of `item_type` rendered from
    /// `codebundle` of the collection at `repo_url`.
    pub fn applies_to(&self, repo_url: &str, codebundle: &str, item_type: &str) -> bool {
        self.repo_url == repo_url
            && self.codebundle_directory == codebundle
            && self.item_type.eq_ignore_ascii_case(item_type)
    }
}

const KNOWN_KEYS: &[&str] = &["repoURL", "codebundleDirectory", "type", "configProvided"];

pub(crate) fn parse(
    reader: &mut Reader,
    map: &Mapping,
    path: &KeyPath,
) -> Result<Vec<CodebundleOverride>, ConfigError> {
    reader.check_keys(map, path, &["codebundles"], &[]);
    let list_path = path.key("codebundles");
    let items = match map.get("codebundles").map(untag) {
        None => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            return Err(reader.wrong_type(
                &list_path,
                other,
                "a list",
                "write each override as a `- ` item with repoURL, codebundleDirectory, type and configProvided",
            ));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = list_path.index(i);
        let entry = reader.mapping(
            item,
            &p,
            "write repoURL, codebundleDirectory, type and configProvided",
        )?;
        reader.check_keys(entry, &p, KNOWN_KEYS, &[]);
        let required = |reader: &Reader, key: &str| -> Result<String, ConfigError> {
            reader
                .string(entry, key, &p)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| reader.invalid(&p, format!("an override needs `{key}:`")))
        };
        let repo_url = required(reader, "repoURL")?;
        let codebundle_directory = required(reader, "codebundleDirectory")?;
        let item_type = required(reader, "type")?.to_ascii_lowercase();
        if !ITEM_TYPES.contains(&item_type.as_str()) {
            reader.warn(
                &p.key("type"),
                format!("{item_type:?} is not an output item type (sli, runbook, ...); this override never applies"),
            );
        }
        let config_provided = match reader.section(entry, "configProvided", &p)? {
            None => serde_json::Map::new(),
            Some(m) => m
                .iter()
                .map(|(k, v)| (yaml::key_string(k), yaml::to_json(v)))
                .collect(),
        };
        out.push(CodebundleOverride {
            repo_url,
            codebundle_directory,
            item_type,
            config_provided,
        });
    }
    Ok(out)
}

//! Typed reads from a parsed YAML document that turn every surprise into a [`ConfigError`]
//! naming the file, the line and the key path, or into a [`ConfigWarning`].

use super::error::{ConfigError, ConfigWarning};
use super::yaml::{self, KeyPath};
use crate::resource::Lod;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One configuration file being read.
pub(crate) struct Reader {
    pub file: PathBuf,
    text: String,
    pub warnings: Vec<ConfigWarning>,
}

impl Reader {
    pub fn new(text: &str, file: &Path) -> Self {
        Reader {
            file: file.to_path_buf(),
            text: text.to_string(),
            warnings: Vec::new(),
        }
    }

    /// Parses the text; an empty document is an empty mapping.
    pub fn document(&self) -> Result<Value, ConfigError> {
        if self.text.trim().is_empty() {
            return Ok(Value::Mapping(Mapping::new()));
        }
        serde_yaml::from_str(&self.text).map_err(|e| {
            let (line, column, message) = yaml::syntax_error(&e);
            ConfigError::Syntax {
                file: self.file.clone(),
                line,
                column,
                message,
            }
        })
    }

    pub fn line(&self, path: &KeyPath) -> Option<usize> {
        yaml::locate(&self.text, path)
    }

    pub fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        let warning = ConfigWarning {
            file: self.file.clone(),
            line: self.line(path),
            key: path.to_string(),
            message: message.into(),
        };
        tracing::warn!(file = %warning.file.display(), key = %warning.key, "{}", warning.message);
        self.warnings.push(warning);
    }

    pub fn wrong_type(
        &self,
        path: &KeyPath,
        value: &Value,
        expected: &'static str,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::WrongType {
            file: self.file.clone(),
            line: self.line(path),
            key: path.to_string(),
            expected,
            found: yaml::describe(value),
            hint: hint.into(),
        }
    }

    pub fn invalid(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line(path),
            key: path.to_string(),
            message: message.into(),
        }
    }

    pub fn missing(&self, key: &str, hint: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            file: self.file.clone(),
            key: key.to_string(),
            hint: hint.into(),
        }
    }

    /// A value that must be a mapping.
    pub fn mapping<'v>(
        &self,
        value: &'v Value,
        path: &KeyPath,
        hint: &str,
    ) -> Result<&'v Mapping, ConfigError> {
        match untag(value) {
            Value::Mapping(m) => Ok(m),
            other => Err(self.wrong_type(path, other, "a mapping", hint)),
        }
    }

    /// An optional section: absent is `None`; present, it must be a mapping (`null` included is
    /// an error: runwhen-local crashed on it, issue #533).
    pub fn section<'v>(
        &self,
        map: &'v Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<Option<&'v Mapping>, ConfigError> {
        let Some(value) = map.get(key) else {
            return Ok(None);
        };
        let p = path.key(key);
        match untag(value) {
            Value::Mapping(m) => Ok(Some(m)),
            Value::Null => Err(self.wrong_type(
                &p,
                value,
                "a mapping",
                format!("remove `{key}:` if there is nothing to configure, or write `{key}: {{}}`"),
            )),
            Value::Sequence(_) => Err(self.wrong_type(
                &p,
                value,
                "a mapping",
                format!(
                    "write the entries of `{key}` as `name: value` pairs, not as `- ` list items"
                ),
            )),
            other => Err(self.wrong_type(&p, other, "a mapping", "write a nested block of keys")),
        }
    }

    /// A scalar read as text (numbers and booleans are accepted and written out); absent or
    /// `null` is `None`.
    pub fn string(
        &self,
        map: &Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<Option<String>, ConfigError> {
        match map.get(key).map(untag) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => scalar_text(v).map(Some).ok_or_else(|| {
                self.wrong_type(&path.key(key), v, "a string", "write a single value")
            }),
        }
    }

    pub fn bool(
        &self,
        map: &Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<Option<bool>, ConfigError> {
        match map.get(key).map(untag) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // YAML 1.1 (what runwhen-local's PyYAML reads) spells booleans in more ways.
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "y" => Ok(Some(true)),
                "false" | "no" | "off" | "n" => Ok(Some(false)),
                _ => Err(self.invalid(
                    &path.key(key),
                    format!("{s:?} is not a boolean; write true or false"),
                )),
            },
            Some(v) => Err(self.wrong_type(&path.key(key), v, "a boolean", "write true or false")),
        }
    }

    /// A level of detail: `none`/`basic`/`detailed` or 0/1/2.
    pub fn lod_value(&self, value: &Value, path: &KeyPath) -> Result<Lod, ConfigError> {
        Lod::from_value(&yaml::to_json(value)).ok_or_else(|| {
            self.invalid(
                path,
                format!(
                    "{} is not a level of detail; write none, basic or detailed (or 0, 1, 2)",
                    show(value)
                ),
            )
        })
    }

    pub fn lod(
        &self,
        map: &Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<Option<Lod>, ConfigError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.lod_value(v, &path.key(key)).map(Some),
        }
    }

    /// `name: lod` pairs.
    pub fn lod_map(
        &self,
        map: &Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<BTreeMap<String, Lod>, ConfigError> {
        let mut out = BTreeMap::new();
        if let Some(section) = self.section(map, key, path)? {
            let p = path.key(key);
            for (k, v) in section {
                let name = yaml::key_string(k);
                let lod = self.lod_value(v, &p.key(&name))?;
                out.insert(name, lod);
            }
        }
        Ok(out)
    }

    /// A list of scalars; absent is empty.
    pub fn string_list(
        &self,
        map: &Mapping,
        key: &str,
        path: &KeyPath,
    ) -> Result<Vec<String>, ConfigError> {
        let p = path.key(key);
        match map.get(key).map(untag) {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    scalar_text(untag(item)).ok_or_else(|| {
                        self.wrong_type(&p.index(i), item, "a string", "each list item is one name")
                    })
                })
                .collect(),
            Some(Value::Null) => Err(self.wrong_type(
                &p,
                &Value::Null,
                "a list",
                format!("remove `{key}:` or write `{key}: []`"),
            )),
            Some(v) => Err(self.wrong_type(
                &p,
                v,
                "a list",
                format!(
                    "write `{key}: [{}]`",
                    scalar_text(v).unwrap_or_else(|| "...".into())
                ),
            )),
        }
    }

    /// Warns about every key of `map` that is neither in `known` nor in `ignored` (which says
    /// why it has no effect).
    pub fn check_keys(
        &mut self,
        map: &Mapping,
        path: &KeyPath,
        known: &[&str],
        ignored: &[(&str, &str)],
    ) {
        for k in map.keys() {
            let name = yaml::key_string(k);
            if known.contains(&name.as_str()) {
                continue;
            }
            let p = path.key(&name);
            if let Some((_, why)) = ignored.iter().find(|(key, _)| *key == name) {
                self.warn(&p, format!("ignored: {why}"));
                continue;
            }
            let suggestion = known
                .iter()
                .find(|candidate| candidate.eq_ignore_ascii_case(&name))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            self.warn(&p, format!("unknown key, ignored{suggestion}"));
        }
    }
}

/// Looks through a YAML tag (`!Thing value`): configuration never gives tags a meaning.
pub(crate) fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// A scalar as text: strings as they are, numbers and booleans written out.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match untag(value) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A short rendering of a value for messages.
fn show(value: &Value) -> String {
    match scalar_text(value) {
        Some(s) => format!("{s:?}"),
        None => yaml::describe(value).to_string(),
    }
}

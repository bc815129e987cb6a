//! Fixtures: multi-document YAML (or JSON) text and folders of such files, with `kind: List`
//! documents (what `kubectl get -A -o yaml` prints) flattened into their items.

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A fixture that could not be read or an object in it that could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A document is not valid YAML; nothing from this source is stored.
    #[error("{origin}: document {document}: not valid YAML ({message}); fix the fixture")]
    Yaml {
        /// The file or source the text came from.
        origin: String,
        /// The 1-based document number within the text.
        document: usize,
        /// The parser's message, with its line and column.
        message: String,
    },
    /// A fixture file or folder could not be read.
    #[error("{path}: cannot read the fixture: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One object was skipped (the rest were stored).
    #[error("{origin}: {object}: {message}")]
    Object {
        /// Where the object came from: file, document and list item.
        origin: String,
        /// `apiVersion kind namespace/name`, as far as the object says.
        object: String,
        /// What is wrong and what to do about it.
        message: String,
    },
}

/// One object and where it came from, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct SeedObject {
    pub origin: String,
    pub value: Value,
}

impl SeedObject {
    /// How an error names the object: `apps/v1 Deployment shop/web`.
    pub fn describe(&self) -> String {
        let text = |p: &str| self.value.pointer(p).and_then(Value::as_str).unwrap_or("?");
        let ns = self
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let name = match ns {
            Some(ns) => format!("{ns}/{}", text("/metadata/name")),
            None => text("/metadata/name").to_string(),
        };
        format!("{} {} {name}", text("/apiVersion"), text("/kind"))
    }

    /// Stores CRDs first, then namespaces, then the rest, so each finds what it needs.
    pub fn rank(&self) -> u8 {
        match self.value.get("kind").and_then(Value::as_str) {
            Some("CustomResourceDefinition") => 0,
            Some("Namespace") => 1,
            _ => 2,
        }
    }
}

/// The objects in `text`; `origin` names the source in errors.
pub(crate) fn parse_yaml(text: &str, origin: &str) -> Result<Vec<SeedObject>, SeedError> {
    let mut objects = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| SeedError::Yaml {
            origin: origin.to_string(),
            document: i + 1,
            message: e.to_string(),
        })?;
        flatten(value, format!("{origin}: document {}", i + 1), &mut objects);
    }
    Ok(objects)
}

fn flatten(value: Value, origin: String, out: &mut Vec<SeedObject>) {
    if value.is_null() {
        return;
    }
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match value.get("items").and_then(Value::as_array) {
        Some(items) if is_list => {
            for (i, item) in items.iter().enumerate() {
                flatten(item.clone(), format!("{origin}, item {}", i + 1), out);
            }
        }
        _ => out.push(SeedObject { origin, value }),
    }
}

/// Every `.yaml`, `.yml` and `.json` file under `dir`, in path order.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<SeedObject>, SeedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Io { path, source }
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let path = entry.map_err(io(&folder))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        objects.extend(parse_yaml(&text, &file.display().to_string())?);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n\
                    - {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: a}}\n---\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let objects = parse_yaml(text, "fixture.yaml").unwrap();
        let names: Vec<String> = objects.iter().map(SeedObject::describe).collect();
        assert_eq!(names, ["v1 Namespace a", "v1 Pod a/p", "v1 ConfigMap c"]);
        assert_eq!(objects[1].origin, "fixture.yaml: document 1, item 2");
        let err = parse_yaml("a: b\n---\nkey: [unclosed\n", "bad.yaml").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.yaml: document 2: not valid YAML"),
            "{err}"
        );
    }
}

//! Snapshots: the indexed resources on disk, so generation can run without a cluster.
//!
//! A snapshot is JSON Lines: a header line `{"stewardSnapshot":1,"resources":N}`, then one
//! [`Resource`] per line in registry order. Writing a registry and reading it back gives the
//! same registry. A directory of `kubectl get ... -o yaml` (or `-o json`) output is accepted
//! as input too ([`read_kubectl_output`]).

use crate::kubernetes::kinds::{self, Kind};
use crate::resource::{Lod, Registry, Resource};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const SNAPSHOT_VERSION: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Writes every resource of the registry.
pub fn write(registry: &Registry, path: &Path) -> Result<(), SnapshotError> {
    let err = |source| SnapshotError::Write {
        path: path.into(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let file = std::fs::File::create(path).map_err(err)?;
    let mut out = BufWriter::new(file);
    let header =
        serde_json::json!({"stewardSnapshot": SNAPSHOT_VERSION, "resources": registry.len()});
    writeln!(out, "{header}").map_err(err)?;
    for r in registry.iter() {
        serde_json::to_writer(&mut out, r).map_err(|e| err(e.into()))?;
        out.write_all(b"\n").map_err(err)?;
    }
    out.flush().map_err(err)
}

/// Reads a snapshot written by [`write`]. A line that is not a resource fails the read with
/// its line number: a snapshot is produced by Steward, so a damaged one should be noticed.
pub fn read(path: &Path) -> Result<Registry, SnapshotError> {
    let file = std::fs::File::open(path).map_err(|source| SnapshotError::Read {
        path: path.into(),
        source,
    })?;
    let invalid = |line: usize, message: String| SnapshotError::Invalid {
        path: path.into(),
        line,
        message,
    };
    let mut registry = Registry::new();
    let mut lines = BufReader::new(file).lines().enumerate();
    let header = match lines.next() {
        Some((_, Ok(h))) => h,
        Some((_, Err(source))) => {
            return Err(SnapshotError::Read {
                path: path.into(),
                source,
            });
        }
        None => {
            return Err(invalid(
                1,
                "empty file; expected a Steward snapshot header".into(),
            ));
        }
    };
    let header: Value = serde_json::from_str(&header).map_err(|e| {
        invalid(1, format!("not a Steward snapshot ({e}); write one with `steward discover --snapshot-out`, or pass a directory of kubectl output"))
    })?;
    match header.get("stewardSnapshot").and_then(Value::as_u64) {
        Some(SNAPSHOT_VERSION) => {}
        Some(v) => {
            return Err(invalid(
                1,
                format!(
                    "snapshot version {v} is not supported (this Steward reads version {SNAPSHOT_VERSION})"
                ),
            ));
        }
        None => {
            return Err(invalid(
                1,
                "the first line is not a Steward snapshot header".into(),
            ));
        }
    }
    for (i, line) in lines {
        let line = line.map_err(|source| SnapshotError::Read {
            path: path.into(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let resource: Resource = serde_json::from_str(&line)
            .map_err(|e| invalid(i + 1, format!("not a resource: {e}")))?;
        registry.insert(resource);
    }
    Ok(registry)
}

/// What reading kubectl output found besides resources.
#[derive(Debug, Default)]
pub struct DumpReport {
    /// Files or objects that could not be used, with the reason.
    pub skipped: Vec<String>,
}

/// True when the file starts with a snapshot header (rather than kubectl output).
pub fn is_snapshot_file(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    let _ = BufReader::new(file).read_line(&mut first);
    first.trim_start().starts_with("{\"stewardSnapshot\"")
}

/// Reads `kubectl get -A -o yaml` output: one file, or a directory of them (List documents
/// or single objects, YAML or JSON). A file given directly, and files directly in a
/// directory, belong to the cluster `default_cluster`; each subdirectory is a cluster of
/// that name. Custom resources are kept when their kind is in
/// `custom` (the kinds the rules reference); CustomResourceDefinitions in the dump tell their
/// plural. Namespaces get [`Lod::Detailed`]; the caller applies the configured levels.
pub fn read_kubectl_output(
    dir: &Path,
    default_cluster: &str,
    custom: &[Kind],
) -> Result<(Registry, DumpReport), SnapshotError> {
    let mut registry = Registry::new();
    let mut report = DumpReport::default();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if dir.is_file() {
        files.push((default_cluster.to_string(), dir.to_path_buf()));
    }
    for entry in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(2)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| SnapshotError::Read {
            path: dir.into(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) {
            continue;
        }
        let cluster = if entry.depth() == 2 {
            entry
                .path()
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
        } else {
            None
        };
        files.push((
            cluster.unwrap_or_else(|| default_cluster.to_string()),
            entry.into_path(),
        ));
    }
    let mut objects: Vec<(String, PathBuf, Value)> = Vec::new();
    for (cluster, path) in files {
        let text = std::fs::read_to_string(&path).map_err(|source| SnapshotError::Read {
            path: path.clone(),
            source,
        })?;
        match parse_documents(&text) {
            Ok(docs) => {
                objects.extend(docs.into_iter().map(|d| (cluster.clone(), path.clone(), d)))
            }
            Err(e) => report.skipped.push(format!("{}: {e}", path.display())),
        }
    }
    let plurals = crd_plurals(objects.iter().map(|(_, _, o)| o));
    let mut namespaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut clusters = BTreeSet::new();
    for (cluster, path, object) in objects {
        clusters.insert(cluster.clone());
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind_name == "Namespace" && api_version == "v1" {
            if let Some(r) = kinds::namespace_resource(&cluster, &cluster, object, Lod::Detailed) {
                registry.insert(r);
            }
            continue;
        }
        let kind = kinds::builtin_kind_of(&api_version, &kind_name)
            .or_else(|| custom_kind(custom, &plurals, &api_version, &kind_name, &object));
        let Some(kind) = kind else {
            continue;
        };
        match kinds::object_resource(&cluster, &cluster, &kind, object, Lod::Detailed) {
            Some(r) => {
                if let Some(ns) = &r.namespace {
                    namespaces
                        .entry(cluster.clone())
                        .or_default()
                        .insert(ns.clone());
                }
                registry.insert(r);
            }
            None => report.skipped.push(format!(
                "{}: a {kind_name} without metadata.name",
                path.display()
            )),
        }
    }
    // Namespaces seen only through their objects still need a namespace resource.
    for (cluster, names) in namespaces {
        for ns in names {
            if registry
                .get("namespace", &format!("{cluster}/{ns}"))
                .is_none()
            {
                let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                registry.extend(kinds::namespace_resource(
                    &cluster,
                    &cluster,
                    object,
                    Lod::Detailed,
                ));
            }
        }
    }
    for cluster in clusters {
        registry.insert_if_absent(kinds::cluster_resource(&cluster, &cluster, "", None));
    }
    Ok((registry, report))
}

/// YAML or JSON documents; `List` documents are flattened into their items.
fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        match value {
            Value::Null => {}
            Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                if let Some(Value::Array(items)) = map.get("items") {
                    out.extend(items.iter().cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// (group, kind) → plural, from CustomResourceDefinitions in the dump.
fn crd_plurals<'a>(objects: impl Iterator<Item = &'a Value>) -> BTreeMap<(String, String), String> {
    objects
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .filter_map(|o| {
            let spec = o.get("spec")?;
            let group = spec.get("group")?.as_str()?.to_string();
            let kind = spec.pointer("/names/kind")?.as_str()?.to_string();
            let plural = spec.pointer("/names/plural")?.as_str()?.to_string();
            Some(((group, kind), plural))
        })
        .collect()
}

fn custom_kind(
    custom: &[Kind],
    plurals: &BTreeMap<(String, String), String>,
    api_version: &str,
    kind_name: &str,
    object: &Value,
) -> Option<Kind> {
    let (group, version) = api_version.rsplit_once('/')?;
    let lower = kind_name.to_ascii_lowercase();
    let plural = plurals.get(&(group.to_string(), kind_name.to_string()));
    let wanted = custom.iter().find(|k| {
        k.group == group
            && (k.version.is_empty() || k.version == version)
            && match plural {
                Some(p) => *p == k.plural,
                None => (k.kind.is_empty() || k.kind == kind_name) && k.plural.starts_with(&lower),
            }
    })?;
    let namespaced = object.pointer("/metadata/namespace").is_some();
    Some(Kind {
        version: version.to_string(),
        kind: kind_name.to_string(),
        namespaced,
        ..wanted.clone()
    })
}

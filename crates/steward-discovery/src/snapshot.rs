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
use std::sync::atomic::{AtomicUsize, Ordering};

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
    // Files are parsed on every core, and built-in objects become (compact) resources in the
    // same pass, so that the JSON values of a whole dump are never held at once. Objects that
    // may be custom resources wait for the CustomResourceDefinitions of every file.
    let parsed = parse_files(&files)?;
    let plurals = crd_plurals(parsed.iter().flat_map(|(_, _, docs)| {
        docs.iter().flatten().filter_map(|d| match d {
            Parsed::Other(o) => Some(o),
            _ => None,
        })
    }));
    let mut namespaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut clusters = BTreeSet::new();
    // Files that do not parse are reported before objects that cannot be used.
    let mut unusable = Vec::new();
    for (cluster, path, docs) in parsed {
        let docs = match docs {
            Ok(docs) => docs,
            Err(e) => {
                report.skipped.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        for doc in docs {
            clusters.insert(cluster.clone());
            let object = match doc {
                Parsed::Namespace(r) => {
                    registry.extend(r);
                    continue;
                }
                Parsed::Object(r) => Ok(r),
                Parsed::Other(object) => {
                    let (api_version, kind_name) = kind_of(&object);
                    match custom_kind(custom, &plurals, &api_version, &kind_name, &object) {
                        Some(kind) => {
                            kinds::object_resource(&cluster, &cluster, &kind, object, Lod::Detailed)
                                .ok_or(kind_name)
                        }
                        None => continue,
                    }
                }
                Parsed::Unnamed(kind_name) => Err(kind_name),
            };
            match object {
                Ok(r) => {
                    if let Some(ns) = &r.namespace {
                        namespaces
                            .entry(cluster.clone())
                            .or_default()
                            .insert(ns.clone());
                    }
                    registry.insert(r);
                }
                Err(kind_name) => unusable.push(format!(
                    "{}: a {kind_name} without metadata.name",
                    path.display()
                )),
            }
        }
    }
    report.skipped.append(&mut unusable);
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

/// One document of a kubectl dump, after the first pass.
enum Parsed {
    /// A Namespace (`None` without a name, which is left out).
    Namespace(Option<Resource>),
    /// An object of a built-in kind.
    Object(Resource),
    /// An object of a built-in kind without `metadata.name`: its kind.
    Unnamed(String),
    /// Anything else: maybe a custom resource the rules want, or a CustomResourceDefinition.
    Other(Value),
}

/// A file's cluster, path and documents (or why it could not be parsed).
type ParsedFile = (String, PathBuf, Result<Vec<Parsed>, String>);

/// Parses `files` (cluster, path) on every core; the result is in the order of `files`.
fn parse_files(files: &[(String, PathBuf)]) -> Result<Vec<ParsedFile>, SnapshotError> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((cluster, path)) = files.get(i) else {
                return done;
            };
            let parsed = std::fs::read_to_string(path)
                .map_err(|source| SnapshotError::Read {
                    path: path.clone(),
                    source,
                })
                .map(|text| {
                    parse_documents(&text).map(|docs| {
                        docs.into_iter()
                            .map(|d| first_pass(cluster, d))
                            .collect::<Vec<_>>()
                    })
                });
            done.push((i, parsed));
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let mut done = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut done = work();
        for other in others {
            done.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter()
        .map(|(i, parsed)| {
            let (cluster, path) = files[i].clone();
            parsed.map(|docs| (cluster, path, docs))
        })
        .collect()
}

/// `apiVersion` and `kind` of an object (empty when absent).
fn kind_of(object: &Value) -> (String, String) {
    let field = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (field("apiVersion"), field("kind"))
}

/// Namespaces and built-in objects become resources; the rest waits for the second pass.
fn first_pass(cluster: &str, object: Value) -> Parsed {
    let (api_version, kind_name) = kind_of(&object);
    if kind_name == "Namespace" && api_version == "v1" {
        return Parsed::Namespace(kinds::namespace_resource(
            cluster,
            cluster,
            object,
            Lod::Detailed,
        ));
    }
    match kinds::builtin_kind_of(&api_version, &kind_name) {
        Some(kind) => {
            match kinds::object_resource(cluster, cluster, &kind, object, Lod::Detailed) {
                Some(r) => Parsed::Object(r),
                None => Parsed::Unnamed(kind_name),
            }
        }
        None => Parsed::Other(object),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_read_and_written_again_is_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let kind = kinds::builtin_kind_of("apps/v1", "Deployment").unwrap();
        // Key order, escapes, numbers and unicode kept exactly as indexed.
        let object = serde_json::json!({"metadata": {"name": "web", "namespace": "shop",
            "labels": {"z": "1", "a": "x\"y"}}, "spec": {"replicas": 2, "ratio": 0.5, "note": "é"}});
        let mut registry = Registry::new();
        registry.extend(kinds::object_resource("c", "c", &kind, object, Lod::Basic));
        registry.insert(kinds::cluster_resource("c", "c", "https://c", None));
        let (first, second) = (dir.path().join("1.jsonl"), dir.path().join("2.jsonl"));
        write(&registry, &first).unwrap();
        let read_back = read(&first).unwrap();
        assert_eq!(read_back.len(), registry.len());
        for (a, b) in registry.iter().zip(read_back.iter()) {
            assert_eq!(a, b);
            assert_eq!(a.payload.as_str(), b.payload.as_str());
        }
        write(&read_back, &second).unwrap();
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );
        let web = read_back.get("deployment", "c/shop/web").unwrap();
        assert_eq!(web.payload.value()["metadata"]["labels"]["a"], "x\"y");
        assert_eq!(web.labels().keys().collect::<Vec<_>>(), ["a", "z"]);
    }
}

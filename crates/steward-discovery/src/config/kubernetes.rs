//! `cloudConfig.kubernetes`: which kubeconfig to use, which namespaces to index and at which
//! level of detail.

use super::error::ConfigError;
use super::reader::{Reader, scalar_text, untag};
use super::yaml::{self, KeyPath};
use crate::resource::Lod;
use regex::Regex;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Characters that make a namespace filter entry a regular expression (runwhen-local's rule).
const REGEX_METACHARS: &[char] = &[
    '.', '*', '+', '?', '^', '$', '[', ']', '{', '}', '(', ')', '\\',
];

/// One entry of a `namespaces` filter.
#[derive(Debug, Clone)]
pub enum NamespacePattern {
    /// A plain name, compared exactly.
    Exact(String),
    /// An entry containing a regex metacharacter; it must match the whole namespace name.
    Regex { source: String, regex: Regex },
}

impl NamespacePattern {
    /// Builds the pattern the way runwhen-local reads it. An entry with metacharacters that is
    /// not a valid regex is compared literally (as upstream); the error is returned so the
    /// caller can report it.
    pub fn new(entry: &str) -> (NamespacePattern, Option<regex::Error>) {
        if !entry.contains(REGEX_METACHARS) {
            return (NamespacePattern::Exact(entry.to_string()), None);
        }
        match Regex::new(&format!("^(?:{entry})$")) {
            Ok(regex) => (
                NamespacePattern::Regex {
                    source: entry.to_string(),
                    regex,
                },
                None,
            ),
            Err(e) => (NamespacePattern::Exact(entry.to_string()), Some(e)),
        }
    }

    /// Whether `namespace` passes this entry.
    pub fn matches(&self, namespace: &str) -> bool {
        match self {
            NamespacePattern::Exact(name) => name == namespace,
            NamespacePattern::Regex { regex, .. } => regex.is_match(namespace),
        }
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        match self {
            NamespacePattern::Exact(s) | NamespacePattern::Regex { source: s, .. } => s,
        }
    }
}

impl PartialEq for NamespacePattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// `contexts.<name>`: settings for one kubeconfig context.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextConfig {
    /// The level of namespaces this context's `namespaceLODs` and the global ones do not name.
    pub default_namespace_lod: Option<Lod>,
    /// Levels for named namespaces in this context only (they win over the global ones).
    pub namespace_lods: BTreeMap<String, Lod>,
    /// When not empty, only these namespaces are indexed in this context (instead of the
    /// global `namespaces`).
    pub namespaces: Vec<NamespacePattern>,
}

/// Label or annotation filters: key → accepted values.
pub type MetadataFilter = BTreeMap<String, Vec<String>>;

/// `cloudConfig.kubernetes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubernetesConfig {
    /// `kubeconfigFile`, resolved against the directory of the configuration file. `None`
    /// (with `in_cluster_auth` false) means the default kubeconfig (`$KUBECONFIG` or
    /// `~/.kube/config`).
    pub kubeconfig_file: Option<PathBuf>,
    /// Use the pod's service account instead of a kubeconfig.
    pub in_cluster_auth: bool,
    /// When not empty, only these namespaces are indexed (contexts with their own
    /// `namespaces` use theirs instead).
    pub namespaces: Vec<NamespacePattern>,
    /// Per-context settings, by context name.
    pub contexts: BTreeMap<String, ContextConfig>,
    /// A namespace is indexed only if it carries one of these labels (when any include
    /// filter is set)...
    pub include_labels: MetadataFilter,
    /// ...or one of these annotations.
    pub include_annotations: MetadataFilter,
    /// A namespace carrying one of these labels is not indexed.
    pub exclude_labels: MetadataFilter,
    /// A namespace carrying one of these annotations is not indexed.
    pub exclude_annotations: MetadataFilter,
}

const KNOWN_KEYS: &[&str] = &[
    "kubeconfigFile",
    "inClusterAuth",
    "namespaces",
    "namespaceLODs",
    "contexts",
    "includeLabels",
    "includeAnnotations",
    "excludeLabels",
    "excludeAnnotations",
];

const CONTEXT_KEYS: &[&str] = &["defaultNamespaceLOD", "namespaceLODs", "namespaces"];

/// Reads `cloudConfig.kubernetes`; returns the config and its own `namespaceLODs` (which the
/// caller merges into the global map, as upstream does).
pub(crate) fn parse(
    reader: &mut Reader,
    map: &Mapping,
    path: &KeyPath,
    base_dir: &Path,
) -> Result<(KubernetesConfig, BTreeMap<String, Lod>), ConfigError> {
    reader.check_keys(map, path, KNOWN_KEYS, &[]);
    let mut config = KubernetesConfig {
        kubeconfig_file: reader
            .string(map, "kubeconfigFile", path)?
            .filter(|s| !s.trim().is_empty())
            .map(|s| resolve_path(&s, base_dir)),
        in_cluster_auth: reader.bool(map, "inClusterAuth", path)?.unwrap_or(false),
        namespaces: namespace_patterns(reader, map, "namespaces", path)?,
        ..KubernetesConfig::default()
    };
    let namespace_lods = reader.lod_map(map, "namespaceLODs", path)?;

    let contexts_path = path.key("contexts");
    if let Some(contexts) = map.get("contexts") {
        let contexts = match untag(contexts) {
            Value::Mapping(m) => m,
            Value::Sequence(_) => {
                return Err(reader.wrong_type(
                    &contexts_path,
                    contexts,
                    "a mapping of context name to settings",
                    "write `contexts:` followed by `<context-name>:` keys (for example \
                     `prod: {defaultNamespaceLOD: basic}`), not `- ` list items",
                ));
            }
            Value::Null => {
                return Err(reader.wrong_type(
                    &contexts_path,
                    contexts,
                    "a mapping of context name to settings",
                    "remove `contexts:` or list the contexts under it",
                ));
            }
            other => {
                return Err(reader.wrong_type(
                    &contexts_path,
                    other,
                    "a mapping of context name to settings",
                    "write `<context-name>:` keys under `contexts:`",
                ));
            }
        };
        for (name, settings) in contexts {
            let name = yaml::key_string(name);
            let p = contexts_path.key(&name);
            let settings = match untag(settings) {
                // `prod:` with nothing under it: the context is named but keeps the defaults.
                Value::Null => &Mapping::new(),
                _ => reader.mapping(
                    settings,
                    &p,
                    "write defaultNamespaceLOD, namespaceLODs or namespaces under the context name",
                )?,
            };
            reader.check_keys(settings, &p, CONTEXT_KEYS, &[]);
            let context = ContextConfig {
                default_namespace_lod: reader.lod(settings, "defaultNamespaceLOD", &p)?,
                namespace_lods: reader.lod_map(settings, "namespaceLODs", &p)?,
                namespaces: namespace_patterns(reader, settings, "namespaces", &p)?,
            };
            config.contexts.insert(name, context);
        }
    }

    config.include_labels = metadata_filter(reader, map, "includeLabels", path)?;
    config.include_annotations = metadata_filter(reader, map, "includeAnnotations", path)?;
    config.exclude_labels = metadata_filter(reader, map, "excludeLabels", path)?;
    config.exclude_annotations = metadata_filter(reader, map, "excludeAnnotations", path)?;

    if config.kubeconfig_file.is_none() && !config.in_cluster_auth {
        // runwhen-local failed with HTTP 500 here (issue #500); Steward falls back instead.
        reader.warn(
            path,
            "neither kubeconfigFile nor inClusterAuth is set: the default kubeconfig \
             ($KUBECONFIG, else ~/.kube/config) is used",
        );
    }
    Ok((config, namespace_lods))
}

/// A relative path is relative to the configuration file's directory; `~/` is the home
/// directory.
fn resolve_path(text: &str, base_dir: &Path) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(text);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

fn namespace_patterns(
    reader: &mut Reader,
    map: &Mapping,
    key: &str,
    path: &KeyPath,
) -> Result<Vec<NamespacePattern>, ConfigError> {
    let entries = reader.string_list(map, key, path)?;
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            continue;
        }
        let (pattern, error) = NamespacePattern::new(entry);
        if let Some(e) = error {
            reader.warn(
                &path.key(key).index(i),
                format!("{entry:?} looks like a regex but does not compile ({e}); it is compared as a plain name"),
            );
        }
        out.push(pattern);
    }
    Ok(out)
}

/// `key: value` or `key: [values]`; values are compared as text.
fn metadata_filter(
    reader: &mut Reader,
    map: &Mapping,
    key: &str,
    path: &KeyPath,
) -> Result<MetadataFilter, ConfigError> {
    let mut out = MetadataFilter::new();
    let Some(section) = reader.section(map, key, path)? else {
        return Ok(out);
    };
    let p = path.key(key);
    for (k, v) in section {
        let name = yaml::key_string(k);
        let values = match untag(v) {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    scalar_text(item).ok_or_else(|| {
                        reader.wrong_type(
                            &p.key(&name).index(i),
                            item,
                            "a string",
                            "list the accepted values",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar_text(other).ok_or_else(|| {
                reader.wrong_type(
                    &p.key(&name),
                    other,
                    "a value or a list of values",
                    "write `key: value` or `key: [v1, v2]`",
                )
            })?],
        };
        out.insert(name, values);
    }
    Ok(out)
}

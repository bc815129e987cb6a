//! Which namespaces of a context are indexed, and at which level of detail.
//!
//! Precedence for the configured level (runwhen-local's, for ordinary kubeconfig contexts):
//! the context's `namespaceLODs` > the global `namespaceLODs` (top-level merged with
//! `cloudConfig.kubernetes.namespaceLODs`) > the context's `defaultNamespaceLOD` > the global
//! `defaultLOD`. The namespace annotation `config.runwhen.com/lod` overrides all of them, and
//! a level of `none` skips the namespace.
//!
//! Two upstream defects are deliberately not reproduced: per-cluster levels never leak into
//! other contexts (every context reads only its own block, defect §6.2c), and naming some
//! namespaces in `namespaceLODs` never excludes the others (issue #543).

use super::WorkspaceInfo;
use super::kubernetes::{MetadataFilter, NamespacePattern};
use crate::resource::Lod;
use std::collections::BTreeMap;

/// Annotation that sets a namespace's level of detail, whatever the configuration says.
pub const LOD_ANNOTATION: &str = "config.runwhen.com/lod";
/// Annotation that, set to `"true"`, keeps a namespace out of discovery.
pub const IGNORE_ANNOTATION: &str = "config.runwhen.com/ignore";
/// Label that, set to `ignore`, keeps a namespace out of discovery.
pub const IGNORE_LABEL: &str = "runwhen-local";

/// Where a namespace's level of detail came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LodSource {
    /// `cloudConfig.kubernetes.contexts.<ctx>.namespaceLODs`.
    ContextNamespaceLods,
    /// The global `namespaceLODs`.
    GlobalNamespaceLods,
    /// `cloudConfig.kubernetes.contexts.<ctx>.defaultNamespaceLOD`.
    ContextDefault,
    /// `defaultLOD`.
    GlobalDefault,
    /// The namespace's `config.runwhen.com/lod` annotation.
    Annotation,
}

/// Why a namespace is not indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not in the context's (or the global) `namespaces` filter.
    NotSelected,
    /// Carries the ignore annotation or label.
    Ignored { by: String },
    /// Carries a label or annotation of `excludeLabels`/`excludeAnnotations`.
    Excluded { by: String },
    /// Include filters are set and the namespace matches none of them.
    NotIncluded,
    /// Its level of detail is `none`.
    LodNone(LodSource),
}

/// The outcome for one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceDecision {
    Index { lod: Lod, source: LodSource },
    Skip(SkipReason),
}

impl NamespaceDecision {
    /// The level the namespace is indexed at; `None` when it is skipped.
    pub fn lod(&self) -> Option<Lod> {
        match self {
            NamespaceDecision::Index { lod, .. } => Some(*lod),
            NamespaceDecision::Skip(_) => None,
        }
    }
}

impl WorkspaceInfo {
    /// The namespace filter that applies in `context`: its own `namespaces` when set, else the
    /// global `cloudConfig.kubernetes.namespaces`; empty means every namespace.
    fn namespace_filter(&self, context: &str) -> &[NamespacePattern] {
        let Some(k8s) = &self.kubernetes else {
            return &[];
        };
        match k8s.contexts.get(context) {
            Some(c) if !c.namespaces.is_empty() => &c.namespaces,
            _ => &k8s.namespaces,
        }
    }

    /// Whether the `namespaces` filters let `namespace` of `context` through (labels and
    /// annotations are not considered here).
    pub fn namespace_selected(&self, context: &str, namespace: &str) -> bool {
        let filter = self.namespace_filter(context);
        filter.is_empty() || filter.iter().any(|p| p.matches(namespace))
    }

    /// Namespaces named (not by regex) in the filter for `context`: they are considered even
    /// when the context cannot list namespaces.
    pub fn configured_namespaces(&self, context: &str) -> Vec<String> {
        self.namespace_filter(context)
            .iter()
            .filter_map(|p| match p {
                NamespacePattern::Exact(name) => Some(name.clone()),
                NamespacePattern::Regex { .. } => None,
            })
            .collect()
    }

    /// The configured level of detail of a namespace, before its annotations are looked at.
    pub fn configured_namespace_lod(&self, context: &str, namespace: &str) -> (Lod, LodSource) {
        let ctx = self
            .kubernetes
            .as_ref()
            .and_then(|k| k.contexts.get(context));
        if let Some(lod) = ctx.and_then(|c| c.namespace_lods.get(namespace)) {
            return (*lod, LodSource::ContextNamespaceLods);
        }
        if let Some(lod) = self.namespace_lods.get(namespace) {
            return (*lod, LodSource::GlobalNamespaceLods);
        }
        if let Some(lod) = ctx.and_then(|c| c.default_namespace_lod) {
            return (lod, LodSource::ContextDefault);
        }
        (self.default_lod, LodSource::GlobalDefault)
    }

    /// Decides whether a namespace is indexed and at which level, and says why.
    pub fn namespace_decision(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> NamespaceDecision {
        if !self.namespace_selected(context, namespace) {
            return NamespaceDecision::Skip(SkipReason::NotSelected);
        }
        if annotations.get(IGNORE_ANNOTATION).map(String::as_str) == Some("true") {
            return NamespaceDecision::Skip(SkipReason::Ignored {
                by: format!("annotation {IGNORE_ANNOTATION}=true"),
            });
        }
        if labels.get(IGNORE_LABEL).map(String::as_str) == Some("ignore") {
            return NamespaceDecision::Skip(SkipReason::Ignored {
                by: format!("label {IGNORE_LABEL}=ignore"),
            });
        }
        if let Some(k8s) = &self.kubernetes {
            if let Some(by) = first_match(&k8s.exclude_labels, labels, "label")
                .or_else(|| first_match(&k8s.exclude_annotations, annotations, "annotation"))
            {
                return NamespaceDecision::Skip(SkipReason::Excluded { by });
            }
            let filtered = !k8s.include_labels.is_empty() || !k8s.include_annotations.is_empty();
            if filtered
                && first_match(&k8s.include_labels, labels, "label").is_none()
                && first_match(&k8s.include_annotations, annotations, "annotation").is_none()
            {
                return NamespaceDecision::Skip(SkipReason::NotIncluded);
            }
        }
        let (mut lod, mut source) = self.configured_namespace_lod(context, namespace);
        if let Some(annotated) = annotations
            .get(LOD_ANNOTATION)
            .and_then(|v| annotation_lod(v))
        {
            lod = annotated;
            source = LodSource::Annotation;
        }
        if lod == Lod::None {
            return NamespaceDecision::Skip(SkipReason::LodNone(source));
        }
        NamespaceDecision::Index { lod, source }
    }

    /// The level of detail `namespace` of `context` is indexed at; `None` skips it.
    pub fn namespace_lod(
        &self,
        context: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Lod> {
        self.namespace_decision(context, namespace, labels, annotations)
            .lod()
    }
}

/// Only the three words count, as upstream; any other annotation value is ignored.
fn annotation_lod(value: &str) -> Option<Lod> {
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Some(Lod::None),
        "basic" => Some(Lod::Basic),
        "detailed" => Some(Lod::Detailed),
        _ => None,
    }
}

/// The first `key=value` of `filter` that `metadata` carries.
fn first_match(
    filter: &MetadataFilter,
    metadata: &BTreeMap<String, String>,
    what: &str,
) -> Option<String> {
    filter.iter().find_map(|(key, values)| {
        let actual = metadata.get(key)?;
        values
            .iter()
            .any(|v| v == actual)
            .then(|| format!("{what} {key}={actual}"))
    })
}

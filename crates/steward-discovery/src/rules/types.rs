//! Resource types named by generation rules (`resourceTypes` and the `resourceType` of
//! cross-resource predicates).

use super::predicate::Subject;
use crate::config::yaml;
use crate::resource::Resource;
use serde_yaml::Value;
use std::fmt;

/// The platform rules default to when they name none (the rules written before platforms
/// existed are Kubernetes rules).
pub const DEFAULT_PLATFORM: &str = "kubernetes";

/// Platforms Steward indexes; rules for others are kept but cannot match anything yet.
pub const INDEXED_PLATFORMS: &[&str] = &["kubernetes"];

/// Platforms runwhen-local knows (rules for them are valid, just not indexed here yet).
pub const KNOWN_PLATFORMS: &[&str] = &[
    "kubernetes",
    "azure",
    "aws",
    "gcp",
    "azure_devops",
    "runwhen",
];

/// Kubernetes types with a fixed name; anything else is a custom resource.
pub const KUBERNETES_BUILTINS: &[&str] = &[
    "cluster",
    "namespace",
    "deployment",
    "daemonset",
    "statefulset",
    "job",
    "cronjob",
    "ingress",
    "service",
    "pod",
    "persistentvolumeclaim",
];

/// A resource type, without its platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceTypeRef {
    /// A built-in Kubernetes type (`deployment`) or a cloud type name as written.
    Builtin(String),
    /// A Kubernetes custom resource: `plural.group[/version]`.
    Custom {
        plural: String,
        group: String,
        /// `None` (or `*` in the rule): any version.
        version: Option<String>,
    },
}

impl ResourceTypeRef {
    /// The type name resources are registered under: `deployment`, `<plural>.<group>` (just
    /// `<plural>` for an empty group).
    pub fn registry_type(&self) -> String {
        match self {
            ResourceTypeRef::Builtin(name) => name.clone(),
            ResourceTypeRef::Custom { plural, group, .. } if group.is_empty() => plural.clone(),
            ResourceTypeRef::Custom { plural, group, .. } => format!("{plural}.{group}"),
        }
    }

    /// Whether a resource registered under [`Self::registry_type`] is of this reference: a
    /// version-pinned custom reference accepts only objects of that version.
    pub fn accepts(&self, resource: &Resource) -> bool {
        !self.is_version_pinned() || self.accepts_object(&resource.payload.value())
    }

    /// A custom reference with a version: only [`Self::accepts_object`] can tell whether a
    /// resource of its registry type is one.
    pub fn is_version_pinned(&self) -> bool {
        matches!(
            self,
            ResourceTypeRef::Custom {
                version: Some(_),
                ..
            }
        )
    }

    /// [`Self::accepts`] for a payload already parsed.
    pub fn accepts_object(&self, payload: &serde_json::Value) -> bool {
        match self {
            ResourceTypeRef::Custom {
                group,
                version: Some(version),
                ..
            } => {
                let api_version = payload
                    .get("apiVersion")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                let expected = if group.is_empty() {
                    version.clone()
                } else {
                    format!("{group}/{version}")
                };
                api_version == expected
            }
            _ => true,
        }
    }
}

impl fmt::Display for ResourceTypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceTypeRef::Builtin(name) => f.write_str(name),
            ResourceTypeRef::Custom { version: None, .. } => f.write_str(&self.registry_type()),
            ResourceTypeRef::Custom {
                version: Some(v), ..
            } => write!(f, "{}/{v}", self.registry_type()),
        }
    }
}

/// A resource type with its platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceTypeSpec {
    /// `kubernetes`, `azure`, ...
    pub platform: String,
    /// The type within the platform.
    pub reference: ResourceTypeRef,
}

impl ResourceTypeSpec {
    /// Whether Steward indexes this spec's platform.
    pub fn is_indexed(&self) -> bool {
        INDEXED_PLATFORMS.contains(&self.platform.as_str())
    }

    /// Whether a registry resource is of this type.
    pub fn accepts(&self, resource: &Resource) -> bool {
        self.accepts_kind(resource) && self.reference.accepts(resource)
    }

    /// [`Self::accepts`] for a resource being matched (its payload parsed only when the
    /// reference is version-pinned).
    pub fn accepts_subject(&self, subject: &Subject<'_>) -> bool {
        self.accepts_kind(subject.resource)
            && (!self.reference.is_version_pinned()
                || self.reference.accepts_object(subject.payload()))
    }

    /// The part of [`Self::accepts`] that does not read the payload.
    fn accepts_kind(&self, resource: &Resource) -> bool {
        resource.platform == self.platform
            && resource.resource_type == self.reference.registry_type()
    }
}

impl fmt::Display for ResourceTypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.reference)
    }
}

/// Reads one `resourceTypes` entry (or a predicate's `resourceType`):
/// `name`, `platform:name` (split at the first `:`), `{platform?, resourceType}`, or for
/// Kubernetes `plural.group[/version]` and `{resourceType: custom, group, version, kind}`.
/// Returns the spec and an optional warning.
pub(crate) fn parse_spec(
    value: &Value,
    default_platform: &str,
) -> Result<(ResourceTypeSpec, Option<String>), String> {
    match value {
        Value::String(text) => {
            let (platform, name) = match text.find(':') {
                Some(i) if i > 0 => (&text[..i], &text[i + 1..]),
                _ => (default_platform, text.as_str()),
            };
            typed(platform, name)
        }
        Value::Mapping(map) => {
            let platform = match map.get("platform") {
                None | Some(Value::Null) => default_platform.to_string(),
                Some(Value::String(p)) => p.clone(),
                Some(other) => {
                    return Err(format!(
                        "`platform` is {}, expected a string",
                        yaml::describe(other)
                    ));
                }
            };
            let name = match map.get("resourceType") {
                Some(Value::String(n)) if !n.is_empty() => n.as_str(),
                _ => {
                    return Err(
                        "a resource type written as a mapping needs `resourceType: <name>`".into(),
                    );
                }
            };
            if platform == "kubernetes" && name == "custom" {
                let field = |key: &str| match map.get(key) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                };
                let plural = field("kind").ok_or(
                    "a `resourceType: custom` entry needs `kind: <plural>` (for example `kind: certificates`)",
                )?;
                let group = field("group").unwrap_or_default();
                let version = field("version").filter(|v| v != "*");
                return Ok(custom(platform, plural, group, version));
            }
            typed(&platform, name)
        }
        other => Err(format!(
            "a resource type is {}, expected a name or a mapping",
            yaml::describe(other)
        )),
    }
}

fn typed(platform: &str, name: &str) -> Result<(ResourceTypeSpec, Option<String>), String> {
    if name.is_empty() {
        return Err("empty resource type".into());
    }
    if platform != "kubernetes" || KUBERNETES_BUILTINS.contains(&name) {
        return Ok((
            ResourceTypeSpec {
                platform: platform.to_string(),
                reference: ResourceTypeRef::Builtin(name.to_string()),
            },
            None,
        ));
    }
    if name == "custom" {
        return Err(
            "`custom` needs the mapping form: {resourceType: custom, group, version, kind}".into(),
        );
    }
    let (type_part, version) = match name.split('/').collect::<Vec<_>>()[..] {
        [t] => (t, None),
        [t, v] => (t, Some(v.to_string()).filter(|v| !v.is_empty() && v != "*")),
        _ => return Err(format!("{name:?} is not `plural.group[/version]`")),
    };
    let (plural, group) = match type_part.find('.') {
        Some(0) => return Err(format!("{name:?} must start with the plural resource name")),
        Some(i) => (&type_part[..i], &type_part[i + 1..]),
        None => (type_part, ""),
    };
    Ok(custom(
        platform.to_string(),
        plural.to_string(),
        group.to_string(),
        version,
    ))
}

fn custom(
    platform: String,
    plural: String,
    group: String,
    version: Option<String>,
) -> (ResourceTypeSpec, Option<String>) {
    let warning = group.is_empty().then(|| {
        format!(
            "kubernetes resource type {plural:?} is neither a built-in kind ({}) nor `plural.group`; it matches nothing unless resources are registered under that exact name",
            KUBERNETES_BUILTINS.join(", ")
        )
    });
    (
        ResourceTypeSpec {
            platform,
            reference: ResourceTypeRef::Custom {
                plural,
                group,
                version,
            },
        },
        warning,
    )
}

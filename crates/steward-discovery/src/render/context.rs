//! The variables templates see, named as runwhen-local names them.
//!
//! They come in layers, each built once and shared by everything below it:
//! - workspace-wide ([`WorkspaceContext`]): `workspace{name, short_name, owner_email}`,
//!   `workspace_path`, `slxs_path`, `wb_version`, `location_id`, `location_name`,
//!   `default_location`, `generated_by`, `custom`, `secrets`, and the functions
//!   `shorten_name`, `make_slx_name`, `make_slx_directory_name`;
//! - per SLX ([`SlxContext`]): `slx_name`, `full_slx_name`, `base_name`, `slx_directory_path`,
//!   `match_resource`, `qualifiers`, `child_resource_names`, `resources`, and for Kubernetes
//!   `cluster`, `context`, `namespace`, `subscription_id`, `subscription_name`;
//! - per output item (see `item`): `kind`, `is_workflow`, `repo_url`, `ref`,
//!   `generation_rule_file_path`, the rule's `templateVariables` and the workspace's
//!   `overrides`.
//!
//! A later layer hides an earlier one's variable of the same name, in upstream's order.

use super::objects::ObjectCache;
use crate::config::CodebundleOverride;
use crate::naming::{self, NameMode, SlxName};
use crate::resource::{Registry, Resource};
use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{Error, ErrorKind};
use std::collections::BTreeMap;

/// Workspace-wide settings, from `workspaceInfo.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceVars {
    /// `workspaceName`: prefix of every SLX name.
    pub workspace_name: String,
    /// `workspaceOwnerEmail`: the workspace admin and SLX owner.
    pub owner_email: String,
    /// `defaultLocation`/`locationId`: the runner location.
    pub location_id: String,
    /// `locationName`; the location id when absent.
    pub location_name: Option<String>,
    /// `wb_version`. Templates only use the kubeconfig include when it is non-empty.
    pub wb_version: String,
    /// Where upstream writes the workspace (`workspaces/<name>`). Templates see it (and
    /// `slxs_path` below it); output paths under it are made relative to the workspace tree.
    pub workspace_path: String,
    /// `custom`: free-form values templates read as `custom.<key>`.
    pub custom: serde_json::Value,
    /// `secrets`: templates read `secrets.<key>`.
    pub secrets: serde_json::Value,
    /// `overrides.codebundles`: injected as variables into the items they apply to, and
    /// patched into their rendered `configProvided`.
    pub overrides: Vec<CodebundleOverride>,
    /// Which SLX naming `make_slx_name` and `make_slx_directory_name` follow.
    pub name_mode: NameMode,
}

impl WorkspaceVars {
    /// Settings with upstream's defaults for everything but the required keys.
    pub fn new(
        workspace_name: impl Into<String>,
        owner_email: impl Into<String>,
        location_id: impl Into<String>,
    ) -> WorkspaceVars {
        let workspace_name = workspace_name.into();
        WorkspaceVars {
            workspace_path: format!("workspaces/{workspace_name}"),
            workspace_name,
            owner_email: owner_email.into(),
            location_id: location_id.into(),
            location_name: None,
            wb_version: format!("steward-{}", env!("CARGO_PKG_VERSION")),
            custom: serde_json::Value::Object(Default::default()),
            secrets: serde_json::Value::Object(Default::default()),
            overrides: Vec::new(),
            name_mode: NameMode::default(),
        }
    }

    /// `location_name` as templates see it: the name, else the id.
    pub fn location_name(&self) -> &str {
        match self.location_name.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => &self.location_id,
        }
    }

    /// `internal.runwhen.com/generated-by`: `workspace-builder:<location>`.
    pub fn generated_by(&self) -> String {
        let location = self.location_name();
        let location = if location.is_empty() {
            "unspecified-location"
        } else {
            location
        };
        format!("workspace-builder:{location}")
    }

    /// `slxs_path`: `<workspace_path>/slxs`.
    pub fn slxs_path(&self) -> String {
        format!("{}/slxs", self.workspace_path)
    }
}

/// Where an SLX's generation rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The CodeCollection's URL as configured (`repo_url`).
    pub repo_url: String,
    /// The ref it was read at (`ref`).
    pub git_ref: String,
    /// The codebundle's directory name under `codebundles/`.
    pub codebundle: String,
    /// The rule file, relative to the collection root (`generation_rule_file_path`).
    pub rule_file_path: String,
}

impl RuleSource {
    /// The name the codebundle's templates are registered under ([`codebundle_id`]).
    pub fn codebundle_id(&self) -> String {
        codebundle_id(&self.repo_url, &self.git_ref, &self.codebundle)
    }
}

/// The id to pass to `Renderer::add_codebundle` for a codebundle:
/// `<repo_url>@<ref>/codebundles/<codebundle>`. Its templates are then reported as
/// `<id>/.runwhen/templates/<file>`.
pub fn codebundle_id(repo_url: &str, git_ref: &str, codebundle: &str) -> String {
    format!("{repo_url}@{git_ref}/codebundles/{codebundle}")
}

/// What the orchestrator knows about one named SLX.
#[derive(Debug, Clone)]
pub struct SlxRenderInput<'a> {
    /// The resource the SLX was made for.
    pub resource: &'a Resource,
    /// Where its namespace and cluster are looked up.
    pub registry: &'a Registry,
    /// `baseName` as the rule writes it.
    pub base_name: String,
    /// The name naming gave it: `slx_name` and the directory under `slxs/`.
    pub name: SlxName,
    /// Qualifier names and values, in the rule's order.
    pub qualifiers: Vec<(String, String)>,
    /// Every resource folded into the SLX when `resource` is not a qualifier; empty otherwise.
    pub child_resource_names: Vec<String>,
    /// Resources matched by cross-resource predicates, by the type the predicate names.
    pub resources: BTreeMap<String, &'a Resource>,
    /// The rule the SLX comes from.
    pub source: RuleSource,
}

/// The workspace-wide layer, built once per run.
#[derive(Debug)]
pub struct WorkspaceContext {
    vars: WorkspaceVars,
    base: Value,
    /// The same variables, copied into each SLX's map: one map lookup per variable is what
    /// keeps rendering fast.
    base_entries: Vec<(&'static str, Value)>,
    objects: ObjectCache,
}

impl WorkspaceContext {
    /// Builds the workspace-wide variables once for the run.
    pub fn new(vars: WorkspaceVars) -> WorkspaceContext {
        let mode = vars.name_mode;
        let object_or_empty = |v: &serde_json::Value| match v {
            serde_json::Value::Null => Value::from_pairs(std::iter::empty::<(Value, Value)>()),
            other => Value::from(Serde(other)),
        };
        let base_entries: Vec<(&'static str, Value)> = vec![
            (
                "workspace",
                Value::from_pairs([
                    ("name", vars.workspace_name.as_str()),
                    ("short_name", vars.workspace_name.as_str()),
                    ("owner_email", vars.owner_email.as_str()),
                ]),
            ),
            ("workspace_path", Value::from(vars.workspace_path.as_str())),
            ("slxs_path", Value::from(vars.slxs_path())),
            ("wb_version", Value::from(vars.wb_version.as_str())),
            ("location_id", Value::from(vars.location_id.as_str())),
            ("location_name", Value::from(vars.location_name())),
            ("default_location", Value::from(vars.location_id.as_str())),
            ("generated_by", Value::from(vars.generated_by())),
            ("custom", object_or_empty(&vars.custom)),
            ("secrets", object_or_empty(&vars.secrets)),
            ("shorten_name", Value::from_function(shorten_name)),
            (
                "make_slx_name",
                Value::from_function(move |workspace: String, qualified: String| {
                    naming::full_name(&workspace, &qualified, mode)
                        .map(|(full, _)| full)
                        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
                }),
            ),
            (
                "make_slx_directory_name",
                Value::from_function(
                    move |base: String, qualifiers: Vec<Value>, max_length: Option<i64>| {
                        let values: Vec<String> = qualifiers.iter().map(python_str).collect();
                        naming::qualified_name(&base, &values, max_length.unwrap_or(0), mode)
                    },
                ),
            ),
        ];
        WorkspaceContext {
            vars,
            base: Value::from_pairs(base_entries.clone()),
            base_entries,
            objects: ObjectCache::default(),
        }
    }

    /// The settings it was built from.
    pub fn vars(&self) -> &WorkspaceVars {
        &self.vars
    }

    pub(crate) fn base(&self) -> &Value {
        &self.base
    }

    /// The layer of one SLX, shared by its output items.
    pub fn slx(&self, input: &SlxRenderInput<'_>) -> SlxContext<'_> {
        let resource = input.resource;
        let match_resource = self.objects.get(resource, input.registry);
        let directory = format!("{}/{}", self.vars.slxs_path(), input.name.directory);
        let values: Vec<String> = input.qualifiers.iter().map(|(_, v)| v.clone()).collect();
        let full_slx_name =
            naming::qualified_name(&input.base_name, &values, 0, self.vars.name_mode);
        let qualifiers = Value::from_pairs(
            input
                .qualifiers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let resources = Value::from_pairs(
            input
                .resources
                .iter()
                .map(|(t, r)| (t.as_str(), self.objects.get(r, input.registry))),
        );
        let child_resource_names = Value::from(input.child_resource_names.clone());
        // Upstream's order: workspace variables, then the SLX's, then the platform's, each
        // replacing an earlier one of the same name.
        let mut entries = self.base_entries.clone();
        entries.extend([
            ("base_name", Value::from(input.base_name.as_str())),
            ("slx_name", Value::from(input.name.full.as_str())),
            ("full_slx_name", Value::from(full_slx_name)),
            ("slx_directory_path", Value::from(directory.as_str())),
            ("match_resource", match_resource),
            ("qualifiers", qualifiers.clone()),
            ("child_resource_names", child_resource_names.clone()),
            ("resources", resources),
        ]);
        let platform_values = if resource.platform == "kubernetes" {
            self.kubernetes_layer(resource, input.registry, &mut entries)
        } else {
            BTreeMap::new()
        };
        SlxContext {
            workspace: self,
            layers: Value::from_pairs(entries),
            platform_values,
            source: input.source.clone(),
            slx_name: input.name.full.clone(),
            directory,
            qualifiers,
            child_resource_names,
        }
    }

    /// `cluster`, `context`, `subscription_id`, `subscription_name`, `namespace`, and their
    /// plain values for `templateVariables` that name one of them.
    fn kubernetes_layer(
        &self,
        resource: &Resource,
        registry: &Registry,
        layer: &mut Vec<(&'static str, Value)>,
    ) -> BTreeMap<&'static str, String> {
        let mut plain = BTreeMap::new();
        if let Some(cluster) = self.objects.cluster_of(resource, registry) {
            let field = |name: &str| -> Option<String> {
                let v = cluster.get_attr(name).ok()?;
                (!v.is_undefined() && !v.is_none() && v.is_true()).then(|| v.to_string())
            };
            if let Some(name) = field("name") {
                plain.insert("cluster", name);
            }
            for key in ["context", "subscription_id", "subscription_name"] {
                if let Some(value) = field(key) {
                    layer.push((key, Value::from(value.as_str())));
                    plain.insert(key, value);
                }
            }
            layer.push(("cluster", cluster));
        }
        if let Some(namespace) = self.objects.namespace_of(resource, registry) {
            if let Ok(name) = namespace.get_attr("name") {
                plain.insert("namespace", name.to_string());
            }
            layer.push(("namespace", namespace));
        }
        plain
    }
}

/// The variables of one SLX (and the workspace's beneath them).
#[derive(Debug)]
pub struct SlxContext<'w> {
    pub(crate) workspace: &'w WorkspaceContext,
    pub(crate) layers: Value,
    /// `cluster`, `context`, `namespace`, `subscription_*` as text (Kubernetes only).
    pub(crate) platform_values: BTreeMap<&'static str, String>,
    pub(crate) source: RuleSource,
    pub(crate) slx_name: String,
    pub(crate) directory: String,
    pub(crate) qualifiers: Value,
    pub(crate) child_resource_names: Value,
}

impl SlxContext<'_> {
    /// Every variable of the SLX as one template value.
    pub fn variables(&self) -> &Value {
        &self.layers
    }

    /// The rule the SLX comes from.
    pub fn source(&self) -> &RuleSource {
        &self.source
    }
}

/// Python's `str()` of a template value (strings as they are).
pub(crate) fn python_str(value: &Value) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    }
}

/// `shorten_name(name, max_chars=3)`, as upstream's template function. Upstream also takes a
/// `separator`; no template uses it, and naming always picks upstream's default, so passing one
/// is an error rather than a silently different name.
fn shorten_name(
    name: String,
    max_chars: Option<i64>,
    separator: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let max = match max_chars {
        Some(m) => m,
        None => kwargs.get::<Option<i64>>("max_chars")?.unwrap_or(3),
    };
    let separator = match separator {
        Some(s) => Some(s),
        None => kwargs.get::<Option<Value>>("separator")?,
    };
    kwargs.assert_all_used()?;
    if let Some(sep) = separator.filter(|s| !s.is_none()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("shorten_name: an explicit separator ({sep}) is not supported; leave it out"),
        ));
    }
    Ok(naming::shorten_name(&name, max))
}

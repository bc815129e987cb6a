//! Rendering generation-rule templates into workspace YAML, compatible with runwhen-local's
//! Jinja2 rendering so that existing CodeCollections render unchanged.
//!
//! - [`engine`]: one minijinja environment per run, Jinja2-compatible, templates compiled once
//!   per codebundle ([`Renderer`]).
//! - [`context`]: the variables templates see, in upstream's names ([`WorkspaceContext`],
//!   [`SlxContext`]); `objects` turns resources into `match_resource`, `cluster`, ...
//! - `includes`: Steward's own built-in includes (`common-labels.yaml`,
//!   `kubernetes-auth.yaml`, `workspace.yaml`, ...).
//! - [`item`]: one output item end to end ([`Renderer::render_item`]).
//! - [`postprocess`]: what is done to each rendered document before it is written.
//!
//! Where Steward differs from runwhen-local, on purpose:
//! - a tag whose value is null becomes `""`, not Python's `"None"`;
//! - strings YAML 1.1 would read as something else (`YES`, `on`, `1:20`) are written quoted;
//! - a key repeated in a rendered mapping keeps its last value, as PyYAML does, but is reported;
//! - a document without `spec` is kept (upstream fails on it and skips the item);
//! - `workspace.yaml` writes groups' `dependsOn` and relationship verbs as plain names
//!   (contract defect h);
//! - upstream's Azure, AWS and GCP includes are not provided yet: they render as nothing and
//!   the item carries a warning;
//! - an include inside a built-in include finds only built-ins (upstream would look in the
//!   codebundle first); `shorten_name` refuses an explicit `separator`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use steward_discovery::naming::SlxName;
//! use steward_discovery::render::*;
//! use steward_discovery::{Lod, Registry, Resource};
//!
//! let source = RuleSource {
//!     repo_url: "https://example.com/cc.git".into(),
//!     git_ref: "main".into(),
//!     codebundle: "ns-check".into(),
//!     rule_file_path: "codebundles/ns-check/.runwhen/generation-rules/ns.yaml".into(),
//! };
//! let mut renderer = Renderer::new();
//! let templates = BTreeMap::from([(
//!     "ns-check-slx.yaml".to_string(),
//!     "{% include 'standard-header.yaml' %}\nspec:\n  alias: {{ match_resource.name }} health\n".to_string(),
//! )]);
//! assert!(renderer.add_codebundle(&source.codebundle_id(), &templates).is_empty());
//!
//! let namespace = Resource {
//!     platform: "kubernetes".into(),
//!     resource_type: "namespace".into(),
//!     name: "shop".into(),
//!     qualified_name: "prod/shop".into(),
//!     cluster: Some("prod".into()),
//!     context: Some("prod-ctx".into()),
//!     namespace: Some("shop".into()),
//!     lod: Lod::Detailed,
//!     payload: serde_json::json!({"metadata": {"name": "shop"}}).into(),
//! };
//! let registry = Registry::from_iter([namespace.clone()]);
//! let workspace = WorkspaceContext::new(WorkspaceVars::new("ws", "me@example.com", "loc-1"));
//! let slx = workspace.slx(&SlxRenderInput {
//!     resource: &namespace,
//!     registry: &registry,
//!     base_name: "ns-check".into(),
//!     name: SlxName { full: "ws--shop-prod-ns-check-1a2b3c4d".into(), directory: "shop-prod-ns-check-1a2b3c4d".into() },
//!     qualifiers: vec![("namespace".into(), "shop".into()), ("cluster".into(), "prod".into())],
//!     child_resource_names: vec![],
//!     resources: BTreeMap::new(),
//!     source,
//! });
//! let item = ItemInput {
//!     output_type: "slx".into(),
//!     template_name: "ns-check-slx.yaml".into(),
//!     path: None,
//!     template_variables: Default::default(),
//! };
//! let rendered = renderer.render_item(&slx, &item).unwrap();
//! assert_eq!(rendered.path, "slxs/shop-prod-ns-check-1a2b3c4d/slx.yaml");
//! assert!(rendered.text.contains("alias: shop health"));
//! ```

pub mod context;
mod dom;
mod emit;
pub mod engine;
mod error;
mod includes;
pub mod item;
mod objects;
pub mod postprocess;
mod undefined;
mod yaml;
mod yaml_block;

pub use context::{
    RuleSource, SlxContext, SlxRenderInput, WorkspaceContext, WorkspaceVars, codebundle_id,
};
pub use engine::{Rendered, Renderer, TEMPLATE_DIR, template_key};
pub use error::{RenderError, RenderWarning, WarningKind};
pub use item::{ItemInput, PreparedItem, RenderedItem, SlxGroup, SlxRelationship};
pub use postprocess::{Processed, postprocess};
pub use undefined::MISSING_PLACEHOLDER;

/// Names of the built-in includes (upstream's cloud includes, which render as nothing for now,
/// included).
pub fn builtin_includes() -> impl Iterator<Item = &'static str> {
    includes::BUILTIN
        .iter()
        .map(|(name, _)| *name)
        .chain(includes::NOT_YET.iter().copied())
}

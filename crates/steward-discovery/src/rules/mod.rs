//! Generation rules: which resources get which SLXs.
//!
//! A CodeCollection's `codebundles/<cb>/.runwhen/generation-rules/*.yaml` files are parsed
//! once ([`RuleFile::parse`]): every regex is compiled then, and a rule that cannot be used is
//! skipped with a warning naming the file and line. [`RuleFile::referenced_types`] tells the
//! indexer which (platform, resource type) pairs to list, custom resources included. Matching
//! ([`GenerationRule::matches`]) evaluates the `matchRules` against one resource with a
//! [`MatchContext`] holding the registry (for cross-resource predicates) and the variable tree
//! (for `custom-variable`).
//!
//! The predicate semantics are runwhen-local's, quirks included, so existing rules select the
//! same resources: `exact` is anchored at the start only, `//` escapes a `/` in a path, lists
//! are searched element-wise, booleans read as `True`/`False`, `labels` tests keys and values
//! separately. Where upstream has a defect the rules module does better and says so: `exists`
//! is true for non-empty mappings and lists (defect e), an integer `levelOfDetail` on an SLX is
//! accepted (defect d), a rule's own `platform` applies to its resource types.
//!
//! ```
//! use steward_discovery::rules::{MatchContext, RuleFile};
//! use steward_discovery::{Lod, Registry, Resource};
//!
//! let text = r#"
//! spec:
//!   generationRules:
//!   - resourceTypes: [deployment]
//!     matchRules: [{type: pattern, pattern: "^web", properties: [name], mode: exact}]
//!     slxs:
//!     - baseName: web-health
//!       qualifiers: [resource, namespace]
//!       outputItems: [{type: slx}, {type: sli, levelOfDetail: detailed}]
//! "#;
//! let file = RuleFile::parse(text, "cc/codebundles/web/.runwhen/generation-rules/web.yaml").unwrap();
//! let rule = &file.rules[0];
//!
//! let resource = Resource {
//!     platform: "kubernetes".into(),
//!     resource_type: "deployment".into(),
//!     name: "web-frontend".into(),
//!     qualified_name: "c1/shop/web-frontend".into(),
//!     cluster: Some("c1".into()),
//!     context: Some("c1".into()),
//!     namespace: Some("shop".into()),
//!     lod: Lod::Basic,
//!     payload: serde_json::json!({"metadata": {"name": "web-frontend"}}).into(),
//! };
//! let registry: Registry = [resource].into_iter().collect();
//! let variables = serde_json::json!({"custom": {}});
//! let mut ctx = MatchContext::new(&registry, &variables);
//! let r = rule.candidates(&registry)[0];
//! assert!(rule.matches(r, &mut ctx).is_some());
//! // At `basic`, the SLI (detailed) is not emitted.
//! assert_eq!(rule.slxs[0].items_at(r.lod).count(), 1);
//! ```

mod file;
mod filter;
mod items;
mod path;
mod predicate;
mod pyregex;
mod robot;
mod types;

pub use file::{GenerationRule, RuleError, RuleFile, RuleWarning, referenced_types};
pub use filter::PayloadFilter;
pub use items::{OutputItemSpec, OutputKind, SlxSpec};
pub use path::{PropertyPath, python_float, python_str};
pub(crate) use predicate::{Combined, combined};
pub use predicate::{MatchContext, PatternPredicate, Predicate, Property, Special, Subject};
pub use pyregex::{MatchMode, PyPattern};
pub use robot::{tag_key, task_tags};
pub use types::{
    DEFAULT_PLATFORM, INDEXED_PLATFORMS, KNOWN_PLATFORMS, KUBERNETES_BUILTINS, ResourceTypeRef,
    ResourceTypeSpec,
};

//! Rendering one output item of an SLX (`slx.yaml`, `sli.yaml`, a runbook...) and the
//! workspace document.
//!
//! [`Renderer::prepare`] settles an item's variables and path; the caller can drop an item
//! whose path another item already took (upstream keeps the first) before
//! [`Renderer::render_prepared`] renders and post-processes it. Render an SLX's `slx.yaml`
//! first: when it fails, upstream skips the rest of that SLX directory, and so should the
//! caller.

use super::context::{SlxContext, WorkspaceContext, python_str};
use super::engine::{Rendered, Renderer};
use super::error::{RenderError, RenderWarning, WarningKind};
use super::postprocess::postprocess;
use crate::config::CodebundleOverride;
use minijinja::value::{Serde, Value, merge_maps};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One output item of a generation rule's SLX.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemInput {
    /// `slx`, `sli`, `slo`, `runbook`, `taskset` or `workflow`.
    pub output_type: String,
    /// The template file in the codebundle's `.runwhen/templates/` (the rule's `templateName`,
    /// or `<baseTemplateName or baseName>-<type>.yaml`).
    pub template_name: String,
    /// The rule's `path` (a template); `{{slx_directory_path}}/<type>.yaml` when absent.
    pub path: Option<String>,
    /// `templateVariables` in the order written; each string value is itself rendered as a
    /// template that sees the variables before it.
    pub template_variables: serde_json::Map<String, serde_json::Value>,
}

/// An item whose variables and path are known.
#[derive(Debug, Clone)]
pub struct PreparedItem {
    /// Where it goes, relative to the workspace tree (`slxs/<name>/slx.yaml`).
    pub path: String,
    /// The registered template (`<codebundle>/.runwhen/templates/<file>`).
    pub template: String,
    /// Warnings from rendering `templateVariables` and the path.
    pub warnings: Vec<RenderWarning>,
    variables: Value,
    overrides: Vec<CodebundleOverride>,
}

impl PreparedItem {
    /// Every variable the template will see.
    pub fn variables(&self) -> &Value {
        &self.variables
    }
}

/// A rendered, post-processed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedItem {
    /// Relative to the workspace tree.
    pub path: String,
    /// The YAML to write.
    pub text: String,
    /// What was noticed while rendering it (undefined values, placeholder includes, repeated
    /// keys, template variables that failed).
    pub warnings: Vec<RenderWarning>,
}

/// A `slxGroups` entry of `workspace.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlxGroup {
    /// The group's display name.
    pub name: String,
    /// Qualified SLX names (directory names).
    pub slxs: Vec<String>,
    /// Names of the groups this one depends on.
    pub depends_on: Vec<String>,
}

/// A `slxRelationships` entry of `workspace.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlxRelationship {
    /// The qualified name of the SLX that depends.
    pub subject: String,
    /// `dependent-on`.
    pub verb: String,
    /// The qualified name of the SLX depended on.
    pub object: String,
}

/// Kubernetes `templateVariables` whose value is one of these names take the SLX's value of it
/// instead of being rendered (upstream's platform handler does this).
const PLATFORM_VALUE_NAMES: &[&str] = &[
    "cluster",
    "context",
    "namespace",
    "subscription_id",
    "subscription_name",
];

/// `top`'s variables, and `below`'s where `top` lacks them. (minijinja's `merge_maps` gives
/// the last map precedence.)
fn over(below: &Value, top: Value) -> Value {
    merge_maps([below.clone(), top])
}

fn kind_of(output_type: &str) -> Option<&'static str> {
    Some(match output_type {
        "slx" => "ServiceLevelX",
        "sli" => "ServiceLevelIndicator",
        "slo" => "ServiceLevelObjective",
        "runbook" => "Runbook",
        "taskset" => "TaskSet",
        "workflow" => "Workflow",
        _ => return None,
    })
}

fn repeated(template: &str, keys: Vec<String>) -> impl Iterator<Item = RenderWarning> + '_ {
    keys.into_iter().map(move |key| RenderWarning {
        template: template.to_string(),
        line: None,
        kind: WarningKind::RepeatedKey { key },
    })
}

impl Renderer {
    /// Works out an item's variables and path.
    pub fn prepare(
        &self,
        slx: &SlxContext<'_>,
        item: &ItemInput,
    ) -> Result<PreparedItem, RenderError> {
        let workspace = slx.workspace.vars();
        let source = &slx.source;
        let template = self.resolve(&source.codebundle_id(), &item.template_name)?;
        let output_type = item.output_type.to_lowercase();
        let mut basics: Vec<(&str, Value)> = vec![
            ("is_workflow", Value::from(output_type == "workflow")),
            ("repo_url", Value::from(source.repo_url.as_str())),
            ("ref", Value::from(source.git_ref.as_str())),
            (
                "generation_rule_file_path",
                Value::from(source.rule_file_path.as_str()),
            ),
        ];
        if let Some(kind) = kind_of(&output_type) {
            basics.push(("kind", Value::from(kind)));
        }
        let mut warnings = Vec::new();
        let mut rendered: Vec<(String, Value)> = basics
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mut qualifier_names: Option<Vec<Value>> = None;
        for (name, raw) in &item.template_variables {
            if name == "qualifiers"
                && let serde_json::Value::Array(names) = raw
            {
                qualifier_names = Some(names.iter().map(|n| Value::from(Serde(n))).collect());
                continue;
            }
            let value = self.template_variable(slx, &template, name, raw, &rendered, &mut warnings);
            rendered.push((name.clone(), value));
        }
        let so_far = over(&slx.layers, Value::from_pairs(rendered.clone()));
        let qualifiers = match qualifier_names {
            // A `qualifiers` list among templateVariables selects variables into the dict.
            Some(names) => Value::from_pairs(names.iter().map(|q| {
                let q = python_str(q);
                let v = so_far.get_attr(&q).unwrap_or_default();
                let v = if v.is_undefined() {
                    Value::from(format!("undefined_{q}"))
                } else {
                    v
                };
                (q, v)
            })),
            None => slx.qualifiers.clone(),
        };
        rendered.push(("qualifiers".into(), qualifiers));
        rendered.push((
            "child_resource_names".into(),
            slx.child_resource_names.clone(),
        ));
        let targeted: Vec<&CodebundleOverride> = workspace
            .overrides
            .iter()
            .filter(|o| {
                o.repo_url == source.repo_url && o.codebundle_directory == source.codebundle
            })
            .collect();
        if let Some(o) = targeted
            .iter()
            .find(|o| o.applies_to(&source.repo_url, &source.codebundle, &output_type))
        {
            rendered.extend(
                o.config_provided
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(Serde(v)))),
            );
        }
        // Later entries replace earlier ones of the same name: the item's own variables, then
        // templateVariables, then the qualifiers and child names, then the overrides.
        let variables = over(&slx.layers, Value::from_pairs(rendered));

        let path = self.item_path(
            slx,
            item,
            &output_type,
            &template,
            &variables,
            &mut warnings,
        )?;
        Ok(PreparedItem {
            path,
            template,
            warnings,
            variables,
            overrides: targeted.into_iter().cloned().collect(),
        })
    }

    /// Renders and post-processes a prepared item.
    pub fn render_prepared(&self, item: &PreparedItem) -> Result<RenderedItem, RenderError> {
        let out = self.render_named(&item.template, &item.variables)?;
        let overrides: Vec<&CodebundleOverride> = item.overrides.iter().collect();
        let processed = postprocess(&item.template, &out.text, &overrides)?;
        let mut warnings = item.warnings.clone();
        warnings.extend(out.warnings);
        warnings.extend(repeated(&item.template, processed.repeated_keys));
        Ok(RenderedItem {
            path: item.path.clone(),
            text: processed.text,
            warnings,
        })
    }

    /// [`Renderer::prepare`] then [`Renderer::render_prepared`].
    pub fn render_item(
        &self,
        slx: &SlxContext<'_>,
        item: &ItemInput,
    ) -> Result<RenderedItem, RenderError> {
        self.render_prepared(&self.prepare(slx, item)?)
    }

    /// Renders prepared items on all cores; results come back in the order of `items`. Items
    /// are independent once prepared (their variables and paths are settled), so the caller
    /// prepares in order (to keep upstream's first-wins choice of paths) and renders here.
    pub fn render_many(&self, items: &[&PreparedItem]) -> Vec<Result<RenderedItem, RenderError>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || items.len() < 64 {
            return items
                .iter()
                .map(|item| self.render_prepared(item))
                .collect();
        }
        // Workers take a few items at a time, so that a core that drew cheap items is not left
        // idle while the other renders expensive ones.
        const CLAIM: usize = 8;
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let start = next.fetch_add(CLAIM, Ordering::Relaxed);
                if start >= items.len() {
                    return done;
                }
                let end = (start + CLAIM).min(items.len());
                for (i, item) in items[start..end].iter().enumerate() {
                    done.push((start + i, self.render_prepared(item)));
                }
            }
        };
        let mut done = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            workers
                .into_iter()
                .flat_map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Vec<_>>()
        });
        done.sort_unstable_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, result)| result).collect()
    }

    /// Renders `workspace.yaml` with the groups and relationships map customization produced.
    pub fn render_workspace(
        &self,
        workspace: &WorkspaceContext,
        groups: &[SlxGroup],
        relationships: &[SlxRelationship],
    ) -> Result<RenderedItem, RenderError> {
        let ctx = over(
            workspace.base(),
            Value::from_pairs([
                ("groups", Value::from(Serde(groups))),
                ("slx_relationships", Value::from(Serde(relationships))),
            ]),
        );
        let out = self.render_named("workspace.yaml", &ctx)?;
        let processed = postprocess("workspace.yaml", &out.text, &[])?;
        let mut warnings = out.warnings;
        warnings.extend(repeated("workspace.yaml", processed.repeated_keys));
        Ok(RenderedItem {
            path: "workspace.yaml".into(),
            text: processed.text,
            warnings,
        })
    }

    /// Renders a map customization template (a group's name, a relationship's subject) with
    /// the variables of `slx`, plus `resource` (its resource) and `slx-info` as upstream
    /// names them there.
    pub fn render_map_text(
        &self,
        slx: &SlxContext<'_>,
        label: &str,
        source: &str,
    ) -> Result<Rendered, RenderError> {
        let resource = slx.layers.get_attr("match_resource").unwrap_or_default();
        let info = Value::from_pairs([
            ("name", Value::from(slx.slx_name.as_str())),
            (
                "qualified_name",
                Value::from(slx.directory.rsplit('/').next().unwrap_or_default()),
            ),
            ("qualifiers", slx.qualifiers.clone()),
            ("child_resource_names", slx.child_resource_names.clone()),
        ]);
        let ctx = over(
            &slx.layers,
            Value::from_pairs([("resource", resource), ("slx-info", info)]),
        );
        self.render_str(label, source, &ctx)
    }

    #[allow(clippy::too_many_arguments)]
    fn template_variable(
        &self,
        slx: &SlxContext<'_>,
        template: &str,
        name: &str,
        raw: &serde_json::Value,
        earlier: &[(String, Value)],
        warnings: &mut Vec<RenderWarning>,
    ) -> Value {
        if let serde_json::Value::String(s) = raw
            && PLATFORM_VALUE_NAMES.contains(&s.as_str())
            && let Some(v) = slx
                .platform_values
                .get(s.as_str())
                .filter(|v| !v.is_empty())
        {
            return Value::from(v.as_str());
        }
        // Upstream renders `str(value)`: 5 becomes "5", true "True".
        let source = match raw {
            serde_json::Value::String(s) => s.clone(),
            other => python_str(&Value::from(Serde(other))),
        };
        let label = format!("{template} templateVariables.{name}");
        let ctx = over(&slx.layers, Value::from_pairs(earlier.to_vec()));
        match self.render_str(&label, &source, &ctx) {
            Ok(out) => {
                warnings.extend(out.warnings);
                Value::from(out.text)
            }
            Err(e) => {
                tracing::debug!(template = %label, error = %e, "Template variable did not render.");
                warnings.push(RenderWarning {
                    template: template.to_string(),
                    line: None,
                    kind: WarningKind::TemplateVariable {
                        name: name.to_string(),
                        message: e.to_string(),
                    },
                });
                Value::from(format!("error_processing_template_variable_{name}"))
            }
        }
    }

    fn item_path(
        &self,
        slx: &SlxContext<'_>,
        item: &ItemInput,
        output_type: &str,
        template: &str,
        variables: &Value,
        warnings: &mut Vec<RenderWarning>,
    ) -> Result<String, RenderError> {
        let workspace_path = &slx.workspace.vars().workspace_path;
        let full = if output_type == "workflow" {
            let last = slx.slx_name.rsplit("--").next().unwrap_or_default();
            format!("{workspace_path}/workflows/{last}.yaml")
        } else {
            match &item.path {
                None => format!("{}/{output_type}.yaml", slx.directory),
                Some(path) => {
                    let out = self.render_str(&format!("{template} path"), path, variables)?;
                    warnings.extend(out.warnings);
                    out.text
                }
            }
        };
        let relative = full
            .strip_prefix(workspace_path.as_str())
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(&full);
        let bad = |why: &str| RenderError::BadPath {
            template: template.to_string(),
            path: full.clone(),
            why: why.to_string(),
        };
        if relative.starts_with('/') {
            return Err(bad("is absolute; give a path inside the workspace tree"));
        }
        if relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(bad(
                "has an empty, '.' or '..' part; give a plain relative path",
            ));
        }
        Ok(relative.to_string())
    }
}

//! Map customization over the SLXs written to the tree: the facts its rules test, and its
//! templates rendered with each SLX's variables.

use super::{Emitted, LoadedRule};
use crate::map_rules::{MapRules, Mapped, SlxFacts, map_slxs};
use crate::naming::{self, NameMode, SlxName};
use crate::render::{Renderer, SlxRenderInput, WarningKind, WorkspaceContext};
use crate::resource::Registry;
use std::collections::HashSet;

/// Groups and relationships of the `named` SLXs that were `written` to the tree (by
/// directory), in tree order.
pub(super) fn apply(
    map: &MapRules,
    renderer: &Renderer,
    workspace: &WorkspaceContext,
    registry: &Registry,
    rules: &[LoadedRule],
    named: &[(&Emitted<'_>, SlxName)],
    written: &HashSet<String>,
) -> Mapped {
    if map.is_empty() {
        return Mapped::default();
    }
    let named: Vec<&(&Emitted<'_>, SlxName)> = named
        .iter()
        .filter(|(_, name)| written.contains(&name.directory))
        .collect();
    let facts: Vec<SlxFacts> = named
        .iter()
        .map(|(e, name)| {
            let base_name = rules[e.rule].rule.slxs[e.slx].base_name.as_str();
            let values: Vec<String> = e.qualifiers.iter().map(|(_, v)| v.clone()).collect();
            SlxFacts {
                name: &name.full,
                directory: &name.directory,
                full_name: naming::qualified_name(base_name, &values, 0, NameMode::Current),
                base_name,
                qualifiers: &e.qualifiers,
                resource: e.resource.payload.value(),
            }
        })
        .collect();
    map_slxs(map, &facts, &mut |i, label, template| {
        let (e, name) = named[i];
        let loaded = &rules[e.rule];
        let context = workspace.slx(&SlxRenderInput {
            resource: e.resource,
            registry,
            base_name: loaded.rule.slxs[e.slx].base_name.clone(),
            name: name.clone(),
            qualifiers: e.qualifiers.clone(),
            child_resource_names: e.child_resource_names.clone(),
            resources: e.resources.clone(),
            source: loaded.source.clone(),
        });
        let rendered = renderer
            .render_map_text(&context, label, template)
            .map_err(|e| e.to_string())?;
        // A name with a placeholder in it would make a group of its own: none is better.
        match rendered.warnings.first().map(|w| &w.kind) {
            None => Ok(rendered.text.trim().to_string()),
            Some(WarningKind::Undefined {
                expression: Some(expression),
            }) => Err(format!(
                "the template {template:?} uses `{expression}`, which is not defined for the SLX"
            )),
            Some(_) => Err(format!(
                "the template {template:?} uses a value that is not defined for the SLX"
            )),
        }
    })
}

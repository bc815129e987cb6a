//! What happens to a rendered item before it is written, as runwhen-local does it:
//!
//! 1. parse it as YAML (an item that does not parse is skipped); a key repeated in a mapping
//!    keeps its last value, as PyYAML does;
//! 2. check that `spec.additionalContext.hierarchy` holds strings and `spec.tags` holds
//!    `{name, value}` maps with a scalar value;
//! 3. drop repeated `spec.secretsProvided` entries by `name` (the first keeps its place, the
//!    last its content, as a Python dict does);
//! 4. make every tag value a string, then drop repeated tags by (name, value);
//! 5. set `spec.additionalContext.resourcePath` to the values of the tags the hierarchy names,
//!    joined with `/`;
//! 6. apply the workspace's `configProvided` overrides to SLIs and runbooks;
//! 7. write the YAML back out, keys in the order they were rendered (see `emit` for why
//!    strings YAML 1.1 would misread are quoted).
//!
//! One deliberate difference: a tag whose value is null becomes `""`, where upstream writes
//! Python's `"None"` (and then puts "None" into resourcePath).

use super::dom::{Map, Node};
use super::error::RenderError;
use crate::config::CodebundleOverride;
use minijinja::value::Serde;
use std::borrow::Cow;

/// A post-processed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The YAML to write.
    pub text: String,
    /// Keys that were repeated in a mapping (the last value was kept).
    pub repeated_keys: Vec<String>,
}

/// Post-processes one rendered item. `overrides` are the workspace's overrides for the item's
/// CodeCollection and codebundle; the document's kind (`Runbook`, `ServiceLevelIndicator`)
/// picks the one that applies, as upstream does after rendering.
pub fn postprocess(
    template: &str,
    rendered: &str,
    overrides: &[&CodebundleOverride],
) -> Result<Processed, RenderError> {
    let (mut doc, repeated_keys) =
        super::yaml::parse(rendered).map_err(|e| yaml_error(template, rendered, &e))?;
    let Node::Map(root) = &mut doc else {
        return Err(RenderError::Invalid {
            template: template.to_string(),
            message: format!(
                "the rendered document is {}, not a mapping with apiVersion, kind, metadata and spec",
                describe(&doc)
            ),
        });
    };
    validate(template, root)?;
    if let Some(Node::Map(spec)) = root.get_mut("spec") {
        dedupe_secrets(spec);
        normalize_tags(spec);
        set_resource_path(spec);
    }
    apply_overrides(root, overrides);
    let text = super::emit::to_yaml(&doc);
    Ok(Processed {
        text,
        repeated_keys,
    })
}

fn yaml_error(template: &str, rendered: &str, e: &serde_yaml::Error) -> RenderError {
    let line = e.location().map(|l| l.line()).unwrap_or(1);
    let message = e.to_string();
    // The location is reported on its own; keep the parser's words.
    let message = match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message,
    };
    RenderError::Yaml {
        template: template.to_string(),
        line,
        message,
        snippet: rendered
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .to_string(),
    }
}

fn describe(v: &Node<'_>) -> String {
    match v {
        Node::Null => "empty".into(),
        Node::Bool(b) => format!("the boolean {b}"),
        Node::Number(n) => format!("the number {n}"),
        Node::Str(s) => format!("the string {s:?}"),
        Node::Seq(_) => "a list".into(),
        Node::Map(_) => "a mapping".into(),
        Node::Tagged(tag, _) => format!("a value tagged {tag}"),
    }
}

fn kind_name(v: &Node<'_>) -> &'static str {
    match v {
        Node::Null => "null",
        Node::Bool(_) => "a boolean",
        Node::Number(_) => "a number",
        Node::Str(_) => "a string",
        Node::Seq(_) => "a list",
        Node::Map(_) => "a mapping",
        Node::Tagged(..) => "a tagged value",
    }
}

fn short(v: &Node<'_>) -> String {
    let text = super::emit::to_yaml(v);
    let text = text.trim().replace('\n', " ");
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn validate(template: &str, root: &Map<'_>) -> Result<(), RenderError> {
    let invalid = |message: String| RenderError::Invalid {
        template: template.to_string(),
        message,
    };
    let Some(Node::Map(spec)) = root.get("spec") else {
        return Ok(());
    };
    if let Some(Node::Seq(hierarchy)) = spec
        .get("additionalContext")
        .and_then(|c| c.get("hierarchy"))
    {
        for (i, entry) in hierarchy.iter().enumerate() {
            if entry.as_str().is_none() {
                return Err(invalid(format!(
                    "spec.additionalContext.hierarchy[{i}] is {} ({}), not a string; a hierarchy include followed by another key on the same line (a missing trailing newline) causes this",
                    kind_name(entry),
                    short(entry)
                )));
            }
        }
    }
    if let Some(Node::Seq(tags)) = spec.get("tags") {
        for (i, tag) in tags.iter().enumerate() {
            let Node::Map(tag) = tag else {
                return Err(invalid(format!(
                    "spec.tags[{i}] is {} ({}), not a {{name, value}} mapping",
                    kind_name(tag),
                    short(tag)
                )));
            };
            if let Some(name) = tag.get("name")
                && !matches!(name, Node::Str(_) | Node::Null)
            {
                return Err(invalid(format!(
                    "spec.tags[{i}].name is {} ({}), not a string",
                    kind_name(name),
                    short(name)
                )));
            }
            if let Some(value @ (Node::Seq(_) | Node::Map(_))) = tag.get("value") {
                return Err(invalid(format!(
                    "spec.tags[{i}].value is {} ({}), not a scalar; quote the value in the template",
                    kind_name(value),
                    short(value)
                )));
            }
        }
    }
    Ok(())
}

/// Python's `str()` of a YAML scalar; null becomes empty (see the module docs).
fn scalar_text<'a>(v: &Node<'a>) -> Option<Cow<'a, str>> {
    Some(match v {
        Node::Null => Cow::Borrowed(""),
        Node::Bool(true) => Cow::Borrowed("True"),
        Node::Bool(false) => Cow::Borrowed("False"),
        Node::Number(n) => Cow::Owned(n.to_string()),
        Node::Str(s) => s.clone(),
        Node::Tagged(_, inner) => return scalar_text(inner),
        Node::Seq(_) | Node::Map(_) => return None,
    })
}

fn dedupe_secrets(spec: &mut Map<'_>) {
    let Some(Node::Seq(secrets)) = spec.get_mut("secretsProvided") else {
        return;
    };
    let mut kept: Vec<Node<'_>> = Vec::with_capacity(secrets.len());
    for secret in secrets.drain(..) {
        let earlier = secret
            .get("name")
            .and_then(|n| kept.iter().position(|k| k.get("name") == Some(n)));
        match earlier {
            Some(at) => kept[at] = secret,
            None => kept.push(secret),
        }
    }
    *secrets = kept;
}

fn normalize_tags(spec: &mut Map<'_>) {
    let Some(Node::Seq(tags)) = spec.get_mut("tags") else {
        return;
    };
    for tag in tags.iter_mut() {
        if let Some(value) = tag.get_mut("value")
            && !matches!(value, Node::Str(_))
            && let Some(text) = scalar_text(value)
        {
            *value = Node::Str(Cow::Owned(text.into_owned()));
        }
    }
    let mut kept: Vec<Node<'_>> = Vec::with_capacity(tags.len());
    for tag in tags.drain(..) {
        let same =
            |k: &Node<'_>| k.get("name") == tag.get("name") && k.get("value") == tag.get("value");
        if !kept.iter().any(same) {
            kept.push(tag);
        }
    }
    *tags = kept;
}

fn set_resource_path(spec: &mut Map<'_>) {
    let Some(Node::Seq(tags)) = spec.get("tags") else {
        return;
    };
    // The first value of each tag name.
    let mut lookup: Vec<(&str, Cow<'_, str>)> = Vec::new();
    for tag in tags {
        let (Some(Node::Str(name)), Some(value)) = (tag.get("name"), tag.get("value")) else {
            continue;
        };
        if !name.is_empty()
            && !matches!(value, Node::Null)
            && !lookup.iter().any(|(n, _)| *n == name.as_ref())
            && let Some(text) = scalar_text(value)
        {
            lookup.push((name.as_ref(), text));
        }
    }
    let Some(Node::Map(context)) = spec.get("additionalContext") else {
        return;
    };
    let Some(Node::Seq(hierarchy)) = context.get("hierarchy") else {
        return;
    };
    let parts: Vec<&str> = hierarchy
        .iter()
        .filter_map(Node::as_str)
        .filter_map(|level| lookup.iter().find(|(n, _)| *n == level))
        .map(|(_, v)| v.as_ref())
        .filter(|v| !v.is_empty())
        .collect();
    if parts.is_empty() {
        return;
    }
    let path = parts.join("/");
    if let Some(Node::Map(context)) = spec.get_mut("additionalContext") {
        context.insert(Node::str("resourcePath"), Node::Str(Cow::Owned(path)));
    }
}

fn apply_overrides(root: &mut Map<'_>, overrides: &[&CodebundleOverride]) {
    let output_type = match root
        .get("kind")
        .and_then(Node::as_str)
        .map(str::to_lowercase)
        .as_deref()
    {
        Some("runbook") => "runbook",
        Some("servicelevelindicator") => "sli",
        _ => return,
    };
    let Some(found) = overrides
        .iter()
        .find(|o| o.item_type.eq_ignore_ascii_case(output_type))
    else {
        return;
    };
    let Some(Node::Seq(config)) = root
        .get_mut("spec")
        .and_then(|s| s.get_mut("configProvided"))
    else {
        return;
    };
    for (name, value) in &found.config_provided {
        if let Some(Node::Map(entry)) = config
            .iter_mut()
            .find(|c| c.get("name").and_then(Node::as_str) == Some(name.as_str()))
        {
            let text = super::context::python_str(&minijinja::Value::from(Serde(value)));
            entry.insert(Node::str("value"), Node::Str(Cow::Owned(text)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, RenderError> {
        postprocess("t.yaml", text, &[]).map(|p| p.text)
    }

    #[test]
    fn secrets_keep_the_first_place_and_the_last_content() {
        let out = run("spec:\n  secretsProvided:\n  - {name: a, workspaceKey: one}\n  - {name: b, workspaceKey: two}\n  - {name: a, workspaceKey: three}\n").unwrap();
        assert_eq!(
            out,
            "spec:\n  secretsProvided:\n  - name: a\n    workspaceKey: three\n  - name: b\n    workspaceKey: two\n"
        );
    }

    #[test]
    fn resource_path_follows_the_hierarchy_and_first_tag_values() {
        let out = run("spec:\n  additionalContext:\n    hierarchy: [platform, cluster, namespace, resource_name]\n  tags:\n  - {name: platform, value: kubernetes}\n  - {name: cluster, value: c1}\n  - {name: cluster, value: c2}\n  - {name: resource_name, value: web}\n").unwrap();
        assert!(out.contains("resourcePath: kubernetes/c1/web\n"), "{out}");
    }

    #[test]
    fn non_mapping_documents_and_bad_tags_are_refused() {
        assert!(matches!(run(""), Err(RenderError::Invalid { .. })));
        assert!(matches!(run("- a\n"), Err(RenderError::Invalid { .. })));
        let e = run("spec:\n  tags:\n  - {name: a, value: [1]}\n").unwrap_err();
        assert!(
            e.to_string().contains("spec.tags[0].value is a list"),
            "{e}"
        );
        let e = run("spec:\n  additionalContext:\n    hierarchy:\n    - platform\n    - {resource_name: x}\n").unwrap_err();
        assert!(e.to_string().contains("hierarchy[1] is a mapping"), "{e}");
    }
}

//! What can go wrong while rendering, and what is only worth a warning.

use std::fmt;

/// A template or a rendered document that could not be used; the item is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template does not compile (syntax error, unknown tag).
    #[error("{template}{}: {message}; fix the template", at_line(*line))]
    Syntax {
        /// The template's name: `<codebundle>/.runwhen/templates/<file>` or a built-in include.
        template: String,
        line: Option<usize>,
        message: String,
    },
    /// Rendering failed (undefined attribute of an undefined value, unknown filter, bad call).
    /// `template`/`line` say where it failed, which may be an included file.
    #[error("{template}{}: {message}", at_line(*line))]
    Runtime {
        template: String,
        line: Option<usize>,
        message: String,
    },
    /// No template of that name in the codebundle (nor among the built-in includes).
    #[error(
        "{codebundle}: no template {name} in .runwhen/templates; check the rule's templateName or baseTemplateName"
    )]
    NotFound { codebundle: String, name: String },
    /// The rendered text is not YAML.
    #[error(
        "{template}: the rendered text is not valid YAML at line {line}: {message} (line {line} reads {snippet:?})"
    )]
    Yaml {
        template: String,
        line: usize,
        message: String,
        /// The rendered line the parser stopped at.
        snippet: String,
    },
    /// The YAML parsed but breaks a rule of the generated objects (hierarchy entries must be
    /// strings, tags `{name, value}` with a scalar value, the document a mapping).
    #[error("{template}: {message}")]
    Invalid { template: String, message: String },
    /// The item's path is not a relative path inside the workspace tree.
    #[error("{template}: the output path {path:?} {why}")]
    BadPath {
        template: String,
        path: String,
        why: String,
    },
}

impl RenderError {
    /// The template the error is about.
    pub fn template(&self) -> &str {
        match self {
            RenderError::Syntax { template, .. }
            | RenderError::Runtime { template, .. }
            | RenderError::Yaml { template, .. }
            | RenderError::Invalid { template, .. }
            | RenderError::BadPath { template, .. } => template,
            RenderError::NotFound { name, .. } => name,
        }
    }

    /// The line in the template (or, for [`RenderError::Yaml`], in the rendered text).
    pub fn line(&self) -> Option<usize> {
        match self {
            RenderError::Syntax { line, .. } | RenderError::Runtime { line, .. } => *line,
            RenderError::Yaml { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// Something worth telling the user about an item that was still rendered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RenderWarning {
    /// The template (or `templateVariables.<name>` of one) the warning is about.
    pub template: String,
    /// The line in that template, when known.
    pub line: Option<usize>,
    /// What happened.
    pub kind: WarningKind,
}

/// The kinds of [`RenderWarning`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarningKind {
    /// An undefined value was printed (or stringified by a filter) and rendered as
    /// [`super::MISSING_PLACEHOLDER`]. `expression` names it when it could be found out.
    Undefined { expression: Option<String> },
    /// A template includes one of upstream's cloud includes Steward does not provide yet; it
    /// rendered as nothing.
    UnsupportedInclude { name: String },
    /// A `templateVariables` entry failed to render; its value is upstream's error marker.
    TemplateVariable { name: String, message: String },
    /// A mapping of the rendered YAML repeats `key`; the last value was kept (as PyYAML).
    RepeatedKey { key: String },
}

impl fmt::Display for RenderWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}: ", self.template, at_line(self.line))?;
        match &self.kind {
            WarningKind::Undefined {
                expression: Some(e),
            } => write!(
                f,
                "`{e}` is undefined and was rendered as {}; define it (for custom.* in workspaceInfo.yaml `custom`)",
                super::MISSING_PLACEHOLDER
            ),
            WarningKind::Undefined { expression: None } => write!(
                f,
                "an undefined value was rendered as {}",
                super::MISSING_PLACEHOLDER
            ),
            WarningKind::UnsupportedInclude { name } => write!(
                f,
                "includes {name}, which Steward does not provide yet; it rendered as nothing"
            ),
            WarningKind::RepeatedKey { key } => write!(
                f,
                "the rendered YAML repeats the key {key:?}; the last value was kept, the earlier ones are lost"
            ),
            WarningKind::TemplateVariable { name, message } => write!(
                f,
                "templateVariables.{name} did not render ({message}); it was set to error_processing_template_variable_{name}"
            ),
        }
    }
}

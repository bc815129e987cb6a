//! The built-in includes: Steward's own versions of the templates runwhen-local ships in
//! `src/templates/`, under the same names and producing the same YAML, so that codebundle
//! templates written for runwhen-local can include them unchanged. The texts live in
//! `includes/`.

use minijinja::Environment;

/// The name of the function the placeholder includes call to report themselves.
pub(crate) const UNSUPPORTED_FUNCTION: &str = "_steward_unsupported_include";

/// Include name → text.
pub(crate) const BUILTIN: &[(&str, &str)] = &[
    (
        "common-labels.yaml",
        include_str!("includes/common-labels.yaml"),
    ),
    (
        "common-annotations.yaml",
        include_str!("includes/common-annotations.yaml"),
    ),
    (
        "standard-header.yaml",
        include_str!("includes/standard-header.yaml"),
    ),
    (
        "kubernetes-auth.yaml",
        include_str!("includes/kubernetes-auth.yaml"),
    ),
    (
        "kubernetes-hierarchy.yaml",
        include_str!("includes/kubernetes-hierarchy.yaml"),
    ),
    (
        "kubernetes-tags.yaml",
        include_str!("includes/kubernetes-tags.yaml"),
    ),
    ("workspace.yaml", include_str!("includes/workspace.yaml")),
];

/// Upstream includes for cloud platforms Steward does not discover yet. Templates include them
/// with `ignore missing`; they render as nothing and the render reports which one it was.
pub(crate) const NOT_YET: &[&str] = &[
    "aws-auth.yaml",
    "aws-hierarchy.yaml",
    "aws-tags.yaml",
    "azure-auth.yaml",
    "azure-devops-auth.yaml",
    "azure-hierarchy.yaml",
    "azure-tags.yaml",
    "gcp-auth.yaml",
    "gcp-hierarchy.yaml",
    "gcp-kubernetes-auth.yaml",
    "gcp-tags.yaml",
];

/// Whether `name` is one of the built-in includes (placeholders included).
pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTIN.iter().any(|(n, _)| *n == name) || NOT_YET.contains(&name)
}

/// Adds every built-in include to `env`.
///
/// # Panics
///
/// If a built-in include does not compile: they are part of the binary, and the tests render
/// each of them.
pub(crate) fn register(env: &mut Environment<'static>) {
    for (name, text) in BUILTIN {
        env.add_template(name, text)
            .unwrap_or_else(|e| panic!("built-in include {name} does not compile: {e}"));
    }
    for name in NOT_YET {
        env.add_template_owned(*name, format!("{{{{ {UNSUPPORTED_FUNCTION}({name:?}) }}}}"))
            .unwrap_or_else(|e| panic!("placeholder include {name} does not compile: {e}"));
    }
}

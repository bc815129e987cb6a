//! One minijinja environment for a whole run, configured to render Jinja2 templates written
//! for runwhen-local the way Jinja2 does.
//!
//! - `trim_blocks` and `lstrip_blocks` as upstream sets them; one trailing newline of a
//!   template is dropped (Jinja2's `keep_trailing_newline=False`), which is why includes that
//!   end in a variable need a blank last line.
//! - No autoescaping (minijinja would otherwise JSON-escape `.yaml` templates).
//! - Python methods on strings, lists and maps (`.split()`, `.items()`, `.get()`) through
//!   minijinja-contrib's pycompat; values print the way Python prints them (`True`, `None`,
//!   `{'a': 'b'}`).
//! - An undefined value that is printed renders as [`MISSING_PLACEHOLDER`] and is reported
//!   ([`super::undefined`]); in conditions it is false, and looking up an attribute of it is an
//!   error, as in Jinja2.
//!
//! Templates are compiled once, when added. A codebundle's templates are named
//! `<codebundle>/.runwhen/templates/<file>` ([`template_key`]); an `{% include %}` in one of
//! them finds the codebundle's own file first, then the built-in include of that name.

use super::error::{RenderError, RenderWarning, WarningKind};
use super::includes;
use super::undefined::{self, MISSING_PLACEHOLDER, Session};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error as _;
use std::sync::{Arc, Mutex, RwLock};

/// Where a codebundle keeps its templates.
pub const TEMPLATE_DIR: &str = ".runwhen/templates";

/// `/<TEMPLATE_DIR>/`: what separates a codebundle id from a file name in a template key.
const KEY_SEPARATOR: &str = "/.runwhen/templates/";

/// Undefined values named per template render; more are reported without a name.
const MAX_NAMED_UNDEFINED: usize = 16;

/// The name a codebundle template is registered (and reported) under.
pub fn template_key(codebundle: &str, name: &str) -> String {
    format!("{codebundle}/{TEMPLATE_DIR}/{name}")
}

/// Rendered text and what was noticed along the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The output, before any post-processing.
    pub text: String,
    /// Undefined values printed, placeholder includes used.
    pub warnings: Vec<RenderWarning>,
}

/// Compiles and renders templates. Build one per run, add every codebundle's templates, then
/// render from as many threads as you like (`Renderer` is `Sync`).
pub struct Renderer {
    env: Environment<'static>,
    /// Names of the codebundle templates that compiled; the include resolver reads it.
    codebundle_templates: Arc<RwLock<HashSet<String>>>,
    /// Templates that did not compile, with why; rendering them returns the error.
    broken: HashMap<String, RenderError>,
    /// Undefined values already named, by (template, number of undefined uses): items of one
    /// template almost always miss the same variables, so each case is diagnosed once.
    diagnosed: Mutex<HashMap<(String, usize), Vec<RenderWarning>>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("templates", &self.env.templates().count())
            .field("broken", &self.broken.len())
            .finish()
    }
}

impl Renderer {
    /// An environment with the built-in includes and nothing else.
    pub fn new() -> Renderer {
        let mut env = Environment::new();
        // Debug mode makes minijinja remember where undefined values come from, which is what
        // names them in warnings; it costs nothing until an error is raised.
        env.set_debug(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are a valid syntax"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(undefined::format);
        env.add_filter("string", undefined::filters::string);
        env.add_filter("lower", undefined::filters::lower);
        env.add_filter("upper", undefined::filters::upper);
        env.add_filter("trim", undefined::filters::trim);
        env.add_filter("replace", undefined::filters::replace);
        env.add_function(includes::UNSUPPORTED_FUNCTION, |name: String| {
            undefined::note_unsupported_include(name);
            String::new()
        });
        let codebundle_templates: Arc<RwLock<HashSet<String>>> = Arc::default();
        let known = Arc::clone(&codebundle_templates);
        env.set_path_join_callback(move |name, parent| resolve_include(&known, name, parent));
        includes::register(&mut env);
        Renderer {
            env,
            codebundle_templates,
            broken: HashMap::new(),
            diagnosed: Mutex::default(),
        }
    }

    /// Compiles a codebundle's templates (file name → text). A template that does not compile
    /// is returned as an error and left out; the others are added.
    pub fn add_codebundle(
        &mut self,
        codebundle: &str,
        templates: &BTreeMap<String, String>,
    ) -> Vec<RenderError> {
        let mut errors = Vec::new();
        for (name, text) in templates {
            let key = template_key(codebundle, name);
            match self.env.add_template_owned(key.clone(), text.clone()) {
                Ok(()) => {
                    self.broken.remove(&key);
                    write_lock(&self.codebundle_templates).insert(key);
                }
                Err(e) => {
                    let error = syntax_error(&key, &e);
                    tracing::warn!(template = %key, error = %error, "Template does not compile.");
                    self.broken.insert(key, error.clone());
                    errors.push(error);
                }
            }
        }
        errors
    }

    /// The registered name `name` resolves to when a codebundle item asks for it: the
    /// codebundle's own template, else a built-in include of that name.
    pub fn resolve(&self, codebundle: &str, name: &str) -> Result<String, RenderError> {
        let key = template_key(codebundle, name);
        if self.broken.contains_key(&key) || read_lock(&self.codebundle_templates).contains(&key) {
            return Ok(key);
        }
        if includes::is_builtin(name) {
            return Ok(name.to_string());
        }
        Err(RenderError::NotFound {
            codebundle: codebundle.to_string(),
            name: name.to_string(),
        })
    }

    /// Renders a registered template (a [`template_key`] or a built-in include name).
    pub fn render_named(&self, key: &str, ctx: &Value) -> Result<Rendered, RenderError> {
        if let Some(error) = self.broken.get(key) {
            return Err(error.clone());
        }
        let template = self
            .env
            .get_template(key)
            .map_err(|e| runtime_error(key, &e))?;
        self.run(key, key, || template.render(ctx.clone()))
    }

    /// Renders a codebundle's template by file name (see [`Renderer::resolve`]).
    pub fn render_template(
        &self,
        codebundle: &str,
        name: &str,
        ctx: &Value,
    ) -> Result<Rendered, RenderError> {
        self.render_named(&self.resolve(codebundle, name)?, ctx)
    }

    /// Renders a template given as text (a `templateVariables` value, an item `path`);
    /// `label` names it in errors and warnings. It can include the built-in includes.
    pub fn render_str(
        &self,
        label: &str,
        source: &str,
        ctx: &Value,
    ) -> Result<Rendered, RenderError> {
        let template = self
            .env
            .template_from_named_str(label, source)
            .map_err(|e| syntax_error(label, &e))?;
        self.run(label, source, || template.render(ctx.clone()))
    }

    fn run(
        &self,
        label: &str,
        cache_key: &str,
        render: impl Fn() -> Result<String, minijinja::Error>,
    ) -> Result<Rendered, RenderError> {
        let session = Session::start(None);
        let result = render();
        let log = session.finish();
        let text = result.map_err(|e| runtime_error(label, &e))?;
        let mut warnings: Vec<RenderWarning> = log
            .unsupported_includes
            .into_iter()
            .map(|name| RenderWarning {
                template: label.to_string(),
                line: None,
                kind: WarningKind::UnsupportedInclude { name },
            })
            .collect();
        if log.uses > 0 {
            warnings.extend(self.name_undefined(label, cache_key, log.uses, &render));
        }
        Ok(Rendered { text, warnings })
    }

    /// Renders again, failing at each undefined use in turn, to learn what each one was.
    fn name_undefined(
        &self,
        label: &str,
        cache_key: &str,
        uses: usize,
        render: &impl Fn() -> Result<String, minijinja::Error>,
    ) -> Vec<RenderWarning> {
        let key = (cache_key.to_string(), uses);
        if let Some(known) = lock(&self.diagnosed).get(&key) {
            return known.clone();
        }
        let warnings: Vec<RenderWarning> = (1..=uses)
            .map(|n| {
                let (template, line, expression) = if n <= MAX_NAMED_UNDEFINED {
                    let session = Session::start(Some(n));
                    let outcome = render();
                    drop(session);
                    match outcome {
                        Err(e) => {
                            let (inner, _) = innermost(&e);
                            (
                                inner.name().unwrap_or(label).to_string(),
                                inner.line(),
                                inner.detail().and_then(undefined_expression),
                            )
                        }
                        Ok(_) => (label.to_string(), None, None),
                    }
                } else {
                    (label.to_string(), None, None)
                };
                RenderWarning {
                    template,
                    line,
                    kind: WarningKind::Undefined { expression },
                }
            })
            .collect();
        for w in &warnings {
            tracing::debug!(warning = %w, placeholder = MISSING_PLACEHOLDER, "Undefined value rendered.");
        }
        lock(&self.diagnosed).insert(key, warnings.clone());
        warnings
    }
}

/// `{% include name %}` from `parent`: a codebundle template looks in its own codebundle first.
fn resolve_include<'s>(
    known: &RwLock<HashSet<String>>,
    name: &'s str,
    parent: &'s str,
) -> Cow<'s, str> {
    if let Some(at) = parent.rfind(KEY_SEPARATOR) {
        let candidate = format!("{}{KEY_SEPARATOR}{name}", &parent[..at]);
        if read_lock(known).contains(&candidate) {
            return Cow::Owned(candidate);
        }
    }
    Cow::Borrowed(name)
}

/// The error that caused `e` (an error inside an include is wrapped by the include's error),
/// and whether it differs from `e`.
fn innermost(e: &minijinja::Error) -> (&minijinja::Error, bool) {
    let mut current = e;
    while let Some(inner) = current
        .source()
        .and_then(|s| s.downcast_ref::<minijinja::Error>())
    {
        current = inner;
    }
    (current, !std::ptr::eq(current, e))
}

/// `custom.x` out of minijinja's "`custom.x` is undefined".
fn undefined_expression(detail: &str) -> Option<String> {
    let start = detail.find('`')? + 1;
    let end = start + detail[start..].find('`')?;
    detail[end..]
        .starts_with("` is undefined")
        .then(|| detail[start..end].to_string())
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn syntax_error(template: &str, e: &minijinja::Error) -> RenderError {
    RenderError::Syntax {
        template: e.name().unwrap_or(template).to_string(),
        line: e.line(),
        message: describe(e),
    }
}

fn runtime_error(template: &str, e: &minijinja::Error) -> RenderError {
    let (inner, nested) = innermost(e);
    let mut message = describe(inner);
    if nested {
        message.push_str(&format!(
            " (included from {}{})",
            e.name().unwrap_or(template),
            e.line().map(|l| format!(":{l}")).unwrap_or_default()
        ));
    }
    RenderError::Runtime {
        template: inner.name().unwrap_or(template).to_string(),
        line: inner.line(),
        message,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn renderer_with(templates: &[(&str, &str)]) -> Renderer {
        let mut r = Renderer::new();
        let map = templates
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert!(r.add_codebundle("cc/codebundles/cb", &map).is_empty());
        r
    }

    #[test]
    fn the_key_separator_is_the_template_dir() {
        assert_eq!(KEY_SEPARATOR, format!("/{TEMPLATE_DIR}/"));
    }

    #[test]
    fn undefined_values_are_named_with_their_line() {
        let r = renderer_with(&[(
            "t.yaml",
            "a: {{ custom.one }}\nb: {{ custom.two | lower }}\nc: {{ custom.three | default('x') }}\n",
        )]);
        let out = r
            .render_template(
                "cc/codebundles/cb",
                "t.yaml",
                &context! { custom => context!{} },
            )
            .unwrap();
        assert_eq!(
            out.text,
            format!(
                "a: {MISSING_PLACEHOLDER}\nb: {}\nc: x",
                MISSING_PLACEHOLDER.to_lowercase()
            )
        );
        let named: Vec<_> = out
            .warnings
            .iter()
            .map(|w| (w.line, w.kind.clone()))
            .collect();
        assert_eq!(
            named,
            vec![
                (
                    Some(1),
                    WarningKind::Undefined {
                        expression: Some("custom.one".into())
                    }
                ),
                (
                    Some(2),
                    WarningKind::Undefined {
                        expression: Some("custom.two".into())
                    }
                ),
            ]
        );
    }

    #[test]
    fn includes_prefer_the_codebundle_then_the_builtins() {
        let r = renderer_with(&[
            (
                "t.yaml",
                "{% include 'own.yaml' %}|{% include 'common-labels.yaml' %}",
            ),
            ("own.yaml", "mine"),
        ]);
        let ctx = context! { slx_name => "ws--x", workspace => context!{ short_name => "ws" }, location_id => "loc" };
        let out = r
            .render_template("cc/codebundles/cb", "t.yaml", &ctx)
            .unwrap();
        assert_eq!(
            out.text,
            "mine|    slx: \"ws--x\"\n    workspace: \"ws\"\n    locationId: \"loc\"\n"
        );
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn errors_name_the_file_and_line_that_failed() {
        let mut r = Renderer::new();
        let map: BTreeMap<String, String> = [
            ("bad.yaml".to_string(), "a\n{% if x %}\nb\n".to_string()),
            (
                "inc.yaml".to_string(),
                "x\n{{ nothing.here }}\n".to_string(),
            ),
            (
                "top.yaml".to_string(),
                "{% include 'inc.yaml' %}".to_string(),
            ),
        ]
        .into();
        let errors = r.add_codebundle("cb", &map);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].template(), "cb/.runwhen/templates/bad.yaml");
        assert_eq!(errors[0].line(), Some(3));
        let again = r
            .render_template("cb", "bad.yaml", &context! {})
            .unwrap_err();
        assert_eq!(again, errors[0]);
        let e = r
            .render_template("cb", "top.yaml", &context! {})
            .unwrap_err();
        assert_eq!(e.template(), "cb/.runwhen/templates/inc.yaml");
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("`nothing` is undefined"), "{e}");
        assert!(
            e.to_string()
                .contains("included from cb/.runwhen/templates/top.yaml:1"),
            "{e}"
        );
        let missing = r
            .render_template("cb", "nope.yaml", &context! {})
            .unwrap_err();
        assert!(
            matches!(missing, RenderError::NotFound { .. }),
            "{missing:?}"
        );
    }

    #[test]
    fn upstream_cloud_includes_render_empty_with_a_warning() {
        let r = renderer_with(&[(
            "t.yaml",
            "a\n  {% include 'gcp-auth.yaml' ignore missing %}\nb\n",
        )]);
        let out = r
            .render_template("cc/codebundles/cb", "t.yaml", &context! {})
            .unwrap();
        assert_eq!(out.text, "a\nb");
        assert_eq!(
            out.warnings[0].kind,
            WarningKind::UnsupportedInclude {
                name: "gcp-auth.yaml".into()
            }
        );
    }
}

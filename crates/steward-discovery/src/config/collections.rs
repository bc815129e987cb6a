//! `codeCollections`: which CodeCollections to read, at which ref, which of their codebundles,
//! with which credentials.

use super::error::ConfigError;
use super::reader::{Reader, scalar_text, untag};
use super::yaml::KeyPath;
use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};
use serde_yaml::{Mapping, Value};

/// The `repoURL` that stands for runwhen-local's built-in list of collections.
pub const DEFAULTS_URL: &str = "defaults";

/// Whether an entry adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Include,
    Exclude,
}

/// How a `codeBundles` pattern is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    Glob,
    Regex,
    Literal,
}

/// `exact` compares the whole name (a regex: from the start only); `substring` finds the
/// pattern anywhere in the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    Exact,
    Substring,
}

/// One `codeBundles` entry.
#[derive(Debug, Clone)]
pub struct CodeBundlePattern {
    /// The pattern as written (without a leading `!`).
    pub pattern: String,
    /// `patternType` (default glob).
    pub pattern_type: PatternType,
    /// `matchMode` (default substring).
    pub match_mode: MatchMode,
    /// `ignoreCase` (default true; always true for the string form).
    pub ignore_case: bool,
    /// Include, or exclude (`action: exclude` or a leading `!`).
    pub action: Action,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Glob(GlobMatcher),
    Regex(Regex),
    Literal(String),
}

impl CodeBundlePattern {
    fn new(
        pattern: &str,
        pattern_type: PatternType,
        match_mode: MatchMode,
        ignore_case: bool,
        action: Action,
    ) -> Result<Self, String> {
        let matcher = match pattern_type {
            PatternType::Glob => {
                // As upstream (fnmatch): `substring` wraps the glob in `*...*`.
                let glob = match match_mode {
                    MatchMode::Substring => format!("*{pattern}*"),
                    MatchMode::Exact => pattern.to_string(),
                };
                let glob = GlobBuilder::new(&glob)
                    .case_insensitive(ignore_case)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| format!("{pattern:?} is not a valid glob: {e}"))?;
                Matcher::Glob(glob.compile_matcher())
            }
            PatternType::Regex => {
                let source = match match_mode {
                    MatchMode::Exact => format!(r"\A(?:{pattern})"),
                    MatchMode::Substring => pattern.to_string(),
                };
                let regex = RegexBuilder::new(&source)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("{pattern:?} is not a valid regex: {e}"))?;
                Matcher::Regex(regex)
            }
            PatternType::Literal => Matcher::Literal(if ignore_case {
                pattern.to_lowercase()
            } else {
                pattern.to_string()
            }),
        };
        Ok(CodeBundlePattern {
            pattern: pattern.to_string(),
            pattern_type,
            match_mode,
            ignore_case,
            action,
            matcher,
        })
    }

    /// Whether the pattern matches a codebundle directory name.
    pub fn matches(&self, bundle: &str) -> bool {
        match &self.matcher {
            Matcher::Glob(g) => g.is_match(bundle),
            Matcher::Regex(r) => r.is_match(bundle),
            Matcher::Literal(text) => {
                let name = if self.ignore_case {
                    bundle.to_lowercase()
                } else {
                    bundle.to_string()
                };
                match self.match_mode {
                    MatchMode::Exact => name == *text,
                    MatchMode::Substring => name.contains(text.as_str()),
                }
            }
        }
    }
}

/// Credentials for a private collection, kept for the git layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionAuth {
    /// `authUser`.
    pub user: Option<String>,
    /// An inline token (`authToken`).
    pub token: Option<String>,
    /// A Kubernetes secret holding the token (`authTokenSecretName`).
    pub token_secret_name: Option<String>,
    /// The key in that secret (`authTokenSecretKey`, default `token`).
    pub token_secret_key: String,
    /// An environment variable holding the token (`authTokenFromEnv`).
    pub token_from_env: Option<String>,
}

/// One `codeCollections` entry.
#[derive(Debug, Clone)]
pub struct CodeCollectionConfig {
    /// The repository URL, or `defaults` for runwhen-local's built-in list.
    pub repo_url: String,
    /// `ref`, else `tag`, else `branch`, else `main`.
    pub git_ref: String,
    /// Subdirectory of the repository that holds `codebundles/`.
    pub repo_path: Option<String>,
    /// `exclude` removes a collection listed earlier (typically one of `defaults`).
    pub action: Action,
    /// In order; the first that matches a codebundle decides (see [`Self::includes_bundle`]).
    pub code_bundles: Vec<CodeBundlePattern>,
    /// Credentials for a private repository.
    pub auth: CollectionAuth,
}

/// runwhen-local's default CodeCollections, used when `codeCollections` is absent and for
/// `repoURL: defaults`.
pub const DEFAULT_COLLECTIONS: &[&str] = &[
    "https://github.com/runwhen-contrib/rw-public-codecollection.git",
    "https://github.com/runwhen-contrib/rw-cli-codecollection.git",
    "https://github.com/runwhen-contrib/rw-workspace-utils.git",
    "https://github.com/runwhen-contrib/rw-generic-codecollection.git",
    "https://github.com/runwhen-contrib/azure-c7n-codecollection.git",
    "https://github.com/runwhen-contrib/aws-c7n-codecollection.git",
];

impl CodeCollectionConfig {
    /// A collection written as a bare URL: ref `main`, every codebundle.
    pub fn from_url(url: &str) -> CodeCollectionConfig {
        CodeCollectionConfig {
            repo_url: url.to_string(),
            git_ref: "main".into(),
            repo_path: None,
            action: Action::Include,
            code_bundles: vec![
                CodeBundlePattern::new(
                    "*",
                    PatternType::Glob,
                    MatchMode::Exact,
                    true,
                    Action::Include,
                )
                .expect("`*` is a valid glob"),
            ],
            auth: CollectionAuth {
                token_secret_key: "token".into(),
                ..CollectionAuth::default()
            },
        }
    }

    /// The collections a run reads: the configured ones with `defaults` expanded, or
    /// runwhen-local's defaults when none are configured.
    pub fn effective(configured: Option<&[CodeCollectionConfig]>) -> Vec<CodeCollectionConfig> {
        let defaults = || {
            DEFAULT_COLLECTIONS
                .iter()
                .map(|u| CodeCollectionConfig::from_url(u))
        };
        match configured {
            None => defaults().collect(),
            Some(list) => list
                .iter()
                .flat_map(|c| -> Vec<CodeCollectionConfig> {
                    if c.is_defaults() {
                        defaults().collect()
                    } else {
                        vec![c.clone()]
                    }
                })
                .collect(),
        }
    }

    /// Whether this entry stands for runwhen-local's built-in collections.
    pub fn is_defaults(&self) -> bool {
        self.repo_url == DEFAULTS_URL
    }

    /// Whether a codebundle is used. As upstream, the first pattern that matches decides, by
    /// its action; a name no pattern matches is not used. So `["*", "!x"]` keeps `x` (the `*`
    /// matches first) while `["!x", "*"]` drops it.
    pub fn includes_bundle(&self, bundle: &str) -> bool {
        self.code_bundles
            .iter()
            .find(|p| p.matches(bundle))
            .is_some_and(|p| p.action == Action::Include)
    }
}

const KNOWN_KEYS: &[&str] = &[
    "repoURL",
    "ref",
    "tag",
    "branch",
    "codeBundles",
    "codeBundleMatchDefaults",
    "action",
    "repoPath",
    "authUser",
    "authToken",
    "authTokenSecretName",
    "authTokenSecretKey",
    "authTokenFromEnv",
];

/// Defaults that `codeBundles` entries inherit.
#[derive(Clone, Copy)]
struct Defaults {
    pattern_type: PatternType,
    match_mode: MatchMode,
    ignore_case: bool,
    action: Action,
}

const UPSTREAM_DEFAULTS: Defaults = Defaults {
    pattern_type: PatternType::Glob,
    match_mode: MatchMode::Substring,
    ignore_case: true,
    action: Action::Include,
};

pub(crate) fn parse(
    reader: &mut Reader,
    value: &Value,
    path: &KeyPath,
) -> Result<Vec<CodeCollectionConfig>, ConfigError> {
    let items = match untag(value) {
        Value::Sequence(items) => items,
        Value::Null => {
            return Err(reader.wrong_type(
                path,
                value,
                "a list",
                "remove `codeCollections:` to use the default collections, or write `codeCollections: []` for none",
            ));
        }
        other => {
            return Err(reader.wrong_type(
                path,
                other,
                "a list",
                "write each collection as a `- ` item: a URL or a mapping with repoURL",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_entry(reader, item, &path.index(i)))
        .collect()
}

fn parse_entry(
    reader: &mut Reader,
    item: &Value,
    path: &KeyPath,
) -> Result<CodeCollectionConfig, ConfigError> {
    let map = match untag(item) {
        Value::String(url) => return Ok(CodeCollectionConfig::from_url(url)),
        Value::Mapping(m) => m,
        other => {
            return Err(reader.wrong_type(
                path,
                other,
                "a URL or a mapping",
                "write the repository URL, or `repoURL: <url>`",
            ));
        }
    };
    reader.check_keys(map, path, KNOWN_KEYS, &[]);
    let repo_url = reader
        .string(map, "repoURL", path)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| reader.invalid(path, "a code collection needs `repoURL: <git URL>`"))?;
    let git_ref = [
        reader.string(map, "ref", path)?,
        reader.string(map, "tag", path)?,
        reader.string(map, "branch", path)?,
    ]
    .into_iter()
    .flatten()
    .find(|s| !s.is_empty())
    .unwrap_or_else(|| "main".into());
    let action = action(reader, map, "action", path)?.unwrap_or_default();

    let defaults = match reader.section(map, "codeBundleMatchDefaults", path)? {
        Some(d) => bundle_defaults(
            reader,
            d,
            &path.key("codeBundleMatchDefaults"),
            UPSTREAM_DEFAULTS,
        )?,
        None => UPSTREAM_DEFAULTS,
    };
    let bundles_path = path.key("codeBundles");
    let code_bundles = match map.get("codeBundles").map(untag) {
        None => vec![bundle_from_string(reader, "*", defaults, &bundles_path)?],
        Some(Value::Sequence(entries)) => {
            let mut out = Vec::new();
            for (i, entry) in entries.iter().enumerate() {
                let p = bundles_path.index(i);
                out.push(match untag(entry) {
                    Value::Mapping(m) => bundle_from_map(reader, m, defaults, &p)?,
                    other => match scalar_text(other) {
                        Some(text) => bundle_from_string(reader, &text, defaults, &p)?,
                        None => {
                            return Err(reader.wrong_type(
                                &p,
                                other,
                                "a pattern",
                                "write a glob such as `k8s-*`",
                            ));
                        }
                    },
                });
            }
            out
        }
        Some(other) => {
            return Err(reader.wrong_type(
                &bundles_path,
                other,
                "a list",
                "write `codeBundles: [pattern, ...]`",
            ));
        }
    };

    Ok(CodeCollectionConfig {
        repo_url,
        git_ref,
        repo_path: reader
            .string(map, "repoPath", path)?
            .filter(|s| !s.is_empty()),
        action,
        code_bundles,
        auth: CollectionAuth {
            user: reader.string(map, "authUser", path)?,
            token: reader.string(map, "authToken", path)?,
            token_secret_name: reader.string(map, "authTokenSecretName", path)?,
            token_secret_key: reader
                .string(map, "authTokenSecretKey", path)?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "token".into()),
            token_from_env: reader.string(map, "authTokenFromEnv", path)?,
        },
    })
}

fn action(
    reader: &Reader,
    map: &Mapping,
    key: &str,
    path: &KeyPath,
) -> Result<Option<Action>, ConfigError> {
    Ok(match reader.string(map, key, path)? {
        None => None,
        Some(s) => Some(match s.to_ascii_lowercase().as_str() {
            "include" => Action::Include,
            "exclude" => Action::Exclude,
            _ => {
                return Err(reader.invalid(
                    &path.key(key),
                    format!("{s:?} is not an action; write include or exclude"),
                ));
            }
        }),
    })
}

fn bundle_defaults(
    reader: &Reader,
    map: &Mapping,
    path: &KeyPath,
    base: Defaults,
) -> Result<Defaults, ConfigError> {
    Ok(Defaults {
        pattern_type: match reader.string(map, "patternType", path)? {
            None => base.pattern_type,
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "glob" => PatternType::Glob,
                "regex" => PatternType::Regex,
                "literal" => PatternType::Literal,
                _ => {
                    return Err(reader.invalid(
                        &path.key("patternType"),
                        format!("{s:?} is not a pattern type; write glob, regex or literal"),
                    ));
                }
            },
        },
        match_mode: match reader.string(map, "matchMode", path)? {
            None => base.match_mode,
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "exact" => MatchMode::Exact,
                "substring" => MatchMode::Substring,
                _ => {
                    return Err(reader.invalid(
                        &path.key("matchMode"),
                        format!("{s:?} is not a match mode; write exact or substring"),
                    ));
                }
            },
        },
        ignore_case: reader
            .bool(map, "ignoreCase", path)?
            .unwrap_or(base.ignore_case),
        action: action(reader, map, "action", path)?.unwrap_or(base.action),
    })
}

fn bundle_from_string(
    reader: &Reader,
    text: &str,
    d: Defaults,
    path: &KeyPath,
) -> Result<CodeBundlePattern, ConfigError> {
    // A leading `!` flips the default action (upstream's shorthand for exclusions). The string
    // form always ignores case, whatever the defaults say, as upstream.
    let (pattern, action) = match text.strip_prefix('!') {
        Some(rest) => (
            rest,
            match d.action {
                Action::Include => Action::Exclude,
                Action::Exclude => Action::Include,
            },
        ),
        None => (text, d.action),
    };
    CodeBundlePattern::new(pattern, d.pattern_type, d.match_mode, true, action)
        .map_err(|e| reader.invalid(path, e))
}

fn bundle_from_map(
    reader: &Reader,
    map: &Mapping,
    d: Defaults,
    path: &KeyPath,
) -> Result<CodeBundlePattern, ConfigError> {
    let d = bundle_defaults(reader, map, path, d)?;
    let pattern = reader.string(map, "pattern", path)?.ok_or_else(|| {
        reader.invalid(
            path,
            "a codeBundles entry written as a mapping needs `pattern:`",
        )
    })?;
    CodeBundlePattern::new(
        &pattern,
        d.pattern_type,
        d.match_mode,
        d.ignore_case,
        d.action,
    )
    .map_err(|e| reader.invalid(&path.key("pattern"), e))
}

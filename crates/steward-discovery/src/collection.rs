//! Reading CodeCollections: each codebundle's generation rules, templates, robot files and
//! `SKILL.md`.
//!
//! Collections are found the way the runner finds them (`steward_runtime::collection`): a
//! git URL is fetched at its ref into the cache, a plain directory is read as it is (an
//! improvement on runwhen-local, which needs a git repository), `builtin://steward` is the
//! collection compiled into the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use steward_runtime::collection::CollectionResolver;

#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("CodeCollection {repo_url} ({git_ref}): {source}")]
    Resolve {
        repo_url: String,
        git_ref: String,
        source: Box<steward_runtime::Error>,
    },
    #[error(
        "CodeCollection {repo_url}: {path} has no codebundles/ directory; set repoPath if the codebundles are in a subdirectory"
    )]
    NoCodebundles { repo_url: String, path: PathBuf },
    #[error("CodeCollection {repo_url}: cannot read {path}: {source}")]
    Read {
        repo_url: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A text file of a codebundle, with its path relative to the collection root (as upstream
/// reports it in `sourceGenerationRulePath`).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct CodeBundle {
    /// The directory name under `codebundles/`.
    pub name: String,
    /// `.runwhen/generation-rules/*`, in file-name order.
    pub rule_files: Vec<SourceFile>,
    /// `.runwhen/templates/<name>` → text.
    pub templates: BTreeMap<String, String>,
    /// Every `*.robot` file of the bundle (for `taskTagExclusions`).
    pub robot_files: Vec<SourceFile>,
    /// `SKILL.md` in any case, copied into every SLX made from the bundle.
    pub skill: Option<String>,
    /// Something the user should know about this bundle (unreadable files, subdirectories
    /// among the rules).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CodeCollection {
    pub repo_url: String,
    pub git_ref: String,
    /// The commit the ref resolved to (git collections).
    pub commit: Option<String>,
    pub root: PathBuf,
    /// Bundles with generation rules, in directory-name order.
    pub bundles: Vec<CodeBundle>,
    pub warnings: Vec<String>,
}

/// Fetches (or finds) a collection and reads its codebundles.
pub async fn load(
    resolver: &CollectionResolver,
    repo_url: &str,
    git_ref: &str,
    repo_path: Option<&str>,
    accepts: &(dyn Fn(&str) -> bool + Sync),
) -> Result<CodeCollection, CollectionError> {
    let (root, commit, warning) = resolver
        .resolve_collection(repo_url, git_ref)
        .await
        .map_err(|source| CollectionError::Resolve {
            repo_url: repo_url.into(),
            git_ref: git_ref.into(),
            source: Box::new(source),
        })?;
    let base = match repo_path {
        Some(p) if !p.trim_matches('/').is_empty() => root.join(p.trim_matches('/')),
        _ => root.clone(),
    };
    let repo_url_owned = repo_url.to_string();
    let mut collection = tokio::task::spawn_blocking(move || read_tree(&repo_url_owned, &base))
        .await
        .expect("reading a collection does not panic")?;
    collection.bundles.retain(|b| accepts(&b.name));
    collection.git_ref = git_ref.to_string();
    collection.commit = commit;
    collection.root = root;
    collection.warnings.extend(warning);
    Ok(collection)
}

/// Reads `<base>/codebundles/*` from disk.
pub fn read_tree(repo_url: &str, base: &Path) -> Result<CodeCollection, CollectionError> {
    let codebundles = base.join("codebundles");
    if !codebundles.is_dir() {
        return Err(CollectionError::NoCodebundles {
            repo_url: repo_url.into(),
            path: base.into(),
        });
    }
    let read_err = |path: &Path, source| CollectionError::Read {
        repo_url: repo_url.into(),
        path: path.into(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(&codebundles)
        .map_err(|e| read_err(&codebundles, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut bundles = Vec::new();
    for name in names {
        let dir = codebundles.join(&name);
        if let Some(bundle) = read_bundle(&name, &dir, base) {
            bundles.push(bundle);
        }
    }
    Ok(CodeCollection {
        repo_url: repo_url.into(),
        git_ref: String::new(),
        commit: None,
        root: base.into(),
        bundles,
        warnings: Vec::new(),
    })
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// A bundle without generation rules produces nothing and is left out.
fn read_bundle(name: &str, dir: &Path, base: &Path) -> Option<CodeBundle> {
    let rules_dir = dir.join(".runwhen").join("generation-rules");
    if !rules_dir.is_dir() {
        return None;
    }
    let mut warnings = Vec::new();
    let mut read = |path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => Some(SourceFile {
            path: relative(base, path),
            text,
        }),
        Err(e) => {
            warnings.push(format!("{}: cannot read: {e}", relative(base, path)));
            None
        }
    };
    let mut rule_paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&rules_dir).ok()?.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            // Upstream fails the bundle on a directory here; it holds no rules, so skip it.
            continue;
        }
        rule_paths.push(path);
    }
    rule_paths.sort();
    let rule_files: Vec<SourceFile> = rule_paths.iter().filter_map(|p| read(p)).collect();

    let mut templates = BTreeMap::new();
    let templates_dir = dir.join(".runwhen").join("templates");
    if templates_dir.is_dir() {
        for entry in walkdir::WalkDir::new(&templates_dir)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
        {
            if let Some(file) = read(entry.path()) {
                let key = relative(&templates_dir, entry.path());
                templates.insert(key, file.text);
            }
        }
    }
    let mut robot_files = Vec::new();
    let mut skill = None;
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".runwhen" && e.file_name() != ".git")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
    {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy();
        if file_name.ends_with(".robot") {
            robot_files.extend(read(path));
        } else if path.parent() == Some(dir) && file_name.eq_ignore_ascii_case("skill.md") {
            skill = read(path).map(|f| f.text);
        }
    }
    Some(CodeBundle {
        name: name.to_string(),
        rule_files,
        templates,
        robot_files,
        skill,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rules_templates_robots_and_skill() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("codebundles/one");
        std::fs::create_dir_all(b.join(".runwhen/generation-rules/sub")).unwrap();
        std::fs::create_dir_all(b.join(".runwhen/templates")).unwrap();
        std::fs::write(b.join(".runwhen/generation-rules/b.yaml"), "b").unwrap();
        std::fs::write(b.join(".runwhen/generation-rules/a.yaml"), "a").unwrap();
        std::fs::write(b.join(".runwhen/templates/one-slx.yaml"), "t").unwrap();
        std::fs::write(b.join("runbook.robot"), "r").unwrap();
        std::fs::write(b.join("Skill.md"), "skill").unwrap();
        std::fs::create_dir_all(dir.path().join("codebundles/no-rules")).unwrap();
        let c = read_tree("x", dir.path()).unwrap();
        assert_eq!(c.bundles.len(), 1);
        let one = &c.bundles[0];
        let rules: Vec<&str> = one.rule_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            rules,
            [
                "codebundles/one/.runwhen/generation-rules/a.yaml",
                "codebundles/one/.runwhen/generation-rules/b.yaml"
            ]
        );
        assert_eq!(one.templates["one-slx.yaml"], "t");
        assert_eq!(one.robot_files[0].path, "codebundles/one/runbook.robot");
        assert_eq!(one.skill.as_deref(), Some("skill"));
    }

    #[test]
    fn a_tree_without_codebundles_is_an_error_naming_repo_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_tree("https://x/y", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("repoPath"), "{err}");
    }
}

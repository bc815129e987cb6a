//! Resolving `codeBundle {repoUrl, ref, pathToRobot}` to a robot file on disk.
//!
//! | `repoUrl` | resolved to |
//! |---|---|
//! | a key of the override map | that directory, as it is (air-gapped mirrors, local checkouts) |
//! | `builtin://steward` | the CodeCollection compiled into this binary, unpacked into the cache |
//! | a plain path (`/x`, `./x`, `../x`) | that directory, as it is; `ref` is not used |
//! | `file://`, `https://`, `http://`, `ssh://`, `git@host:path` | a git checkout of the commit `ref` resolves to, one per commit, in the cache |
//!
//! Resolved refs are remembered for [`REF_TTL`] so that SLIs running every few seconds do not
//! ask the remote each time; when the remote cannot be reached, the last resolved commit is
//! used and a warning says so.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steward_model::workspace::CodeBundleRef;
use tokio::process::Command;

/// How long a resolved ref is trusted before the remote is asked again.
pub const REF_TTL: Duration = Duration::from_secs(300);

/// `repoUrl` of the CodeCollection compiled into the binary.
pub const BUILTIN_URL: &str = "builtin://steward";

static BUILTIN: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../codecollections");

/// A robot file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBundle {
    /// Root of the CodeCollection (holds `codebundles/` and `libraries/`).
    pub collection_root: PathBuf,
    /// The directory of the robot file.
    pub bundle_dir: PathBuf,
    /// The robot file.
    pub robot_file: PathBuf,
    /// The commit, for git collections.
    pub commit: Option<String>,
    /// Something the caller should report (a stale ref used offline).
    pub warning: Option<String>,
}

/// Resolves bundles; one per process, shared by every run.
pub struct CollectionResolver {
    cache_dir: PathBuf,
    overrides: HashMap<String, PathBuf>,
    refs: Mutex<HashMap<(String, String), (String, Instant)>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl CollectionResolver {
    /// Git checkouts and the unpacked built-in collection live under `cache_dir/collections`.
    /// `overrides` maps a `repoUrl` exactly as workspaces write it to a local directory.
    pub fn new(cache_dir: &Path, overrides: HashMap<String, PathBuf>) -> Self {
        CollectionResolver {
            cache_dir: cache_dir.join("collections"),
            overrides,
            refs: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Finds the bundle's robot file, fetching the collection if needed.
    pub async fn resolve(&self, bundle: &CodeBundleRef) -> Result<ResolvedBundle> {
        let url = bundle.repo_url.trim();
        let path_to_robot = bundle
            .path_to_robot
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if path_to_robot.is_empty() {
            return Err(Error::Collection {
                repo_url: url.to_string(),
                reason: "codeBundle.pathToRobot is empty".into(),
            });
        }
        let (root, commit, warning) = self.resolve_collection(url, &bundle.git_ref).await?;
        locate(url, root, path_to_robot, commit, warning)
    }

    /// Finds a whole CodeCollection on disk: its root directory, the commit for git
    /// collections, and a warning to report (a stale ref used offline). Resolved as
    /// [`CollectionResolver::resolve`] resolves a bundle's collection.
    pub async fn resolve_collection(
        &self,
        repo_url: &str,
        git_ref: &str,
    ) -> Result<(PathBuf, Option<String>, Option<String>)> {
        let url = repo_url.trim();
        if let Some(dir) = self.overrides.get(url) {
            return Ok((dir.clone(), None, None));
        }
        if url.starts_with("builtin://") {
            if url != BUILTIN_URL {
                return Err(Error::Collection {
                    repo_url: url.into(),
                    reason: format!("the only built-in collection is {BUILTIN_URL}"),
                });
            }
            return Ok((self.builtin().await?, None, None));
        }
        if is_git_url(url) {
            let (root, commit, warning) = self.git_checkout(url, git_ref.trim()).await?;
            return Ok((root, Some(commit), warning));
        }
        let dir = PathBuf::from(url);
        if !dir.is_dir() {
            return Err(Error::Collection {
                repo_url: url.into(),
                reason: "not a directory, a git URL (https://, ssh://, file://, git@host:path) or builtin://steward".into(),
            });
        }
        let root = dir.canonicalize().map_err(|e| Error::io(&dir, e))?;
        Ok((root, None, None))
    }

    async fn builtin(&self) -> Result<PathBuf> {
        let hash = builtin_hash();
        let dir = self
            .cache_dir
            .join(format!("builtin-steward-{}", &hash[..16]));
        if dir.join(".steward-ready").is_file() {
            return Ok(dir);
        }
        let lock = self.lock_for(&dir.to_string_lossy());
        let _guard = lock.lock().await;
        if dir.join(".steward-ready").is_file() {
            return Ok(dir);
        }
        let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        BUILTIN.extract(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::fs::write(tmp.join(".steward-ready"), &hash).map_err(|e| Error::io(&tmp, e))?;
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => Ok(dir),
            // Another process unpacked it first.
            Err(_) if dir.join(".steward-ready").is_file() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(dir)
            }
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("poisoned")
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    async fn git_checkout(
        &self,
        url: &str,
        git_ref: &str,
    ) -> Result<(PathBuf, String, Option<String>)> {
        let git_ref = if git_ref.is_empty() { "HEAD" } else { git_ref };
        let key = hex::encode(Sha256::digest(url.as_bytes()))[..16].to_string();
        let lock = self.lock_for(&key);
        let _guard = lock.lock().await;
        let mirror = self.cache_dir.join("git").join(format!("{key}.git"));
        let (commit, warning) = self.resolve_ref(url, git_ref, &mirror).await?;
        let checkout = self
            .cache_dir
            .join(format!("{}-{key}", repo_slug(url)))
            .join(&commit);
        if checkout.join(".steward-ready").is_file() {
            return Ok((checkout, commit, warning));
        }
        let _ = std::fs::remove_dir_all(&checkout);
        std::fs::create_dir_all(&checkout).map_err(|e| Error::io(&checkout, e))?;
        let index = checkout.with_extension("index");
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&mirror)
            .arg("--work-tree")
            .arg(&checkout);
        cmd.args(["checkout", "--force", &commit, "--", "."])
            .env("GIT_INDEX_FILE", &index);
        let result = git(url, cmd).await;
        let _ = std::fs::remove_file(&index);
        result?;
        std::fs::write(checkout.join(".steward-ready"), &commit)
            .map_err(|e| Error::io(&checkout, e))?;
        Ok((checkout, commit, warning))
    }

    /// Resolves `git_ref` to a commit, fetching it into the bare mirror.
    async fn resolve_ref(
        &self,
        url: &str,
        git_ref: &str,
        mirror: &Path,
    ) -> Result<(String, Option<String>)> {
        let cache_key = (url.to_string(), git_ref.to_string());
        if let Some((commit, at)) = self.refs.lock().expect("poisoned").get(&cache_key)
            && at.elapsed() < REF_TTL
        {
            return Ok((commit.clone(), None));
        }
        if !mirror.join("HEAD").is_file() {
            std::fs::create_dir_all(mirror).map_err(|e| Error::io(mirror, e))?;
            let mut init = Command::new("git");
            init.args(["init", "--bare", "--quiet"]).arg(mirror);
            git(url, init).await?;
        }
        // A full commit id already in the mirror needs no fetch: commits never move.
        if git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut has = Command::new("git");
            has.arg("--git-dir").arg(mirror).args([
                "cat-file",
                "-e",
                &format!("{git_ref}^{{commit}}"),
            ]);
            if git(url, has).await.is_ok() {
                return Ok((git_ref.to_ascii_lowercase(), None));
            }
        }
        let mut fetch = Command::new("git");
        fetch.arg("--git-dir").arg(mirror);
        fetch.args([
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth",
            "1",
            url,
            git_ref,
        ]);
        let fetched = git(url, fetch).await;
        let commit = match fetched {
            Ok(_) => {
                let mut rev = Command::new("git");
                rev.arg("--git-dir")
                    .arg(mirror)
                    .args(["rev-parse", "FETCH_HEAD^{commit}"]);
                git(url, rev).await?.trim().to_string()
            }
            Err(err) => {
                // Offline or the remote is down: fall back to what was resolved before.
                let known = self
                    .refs
                    .lock()
                    .expect("poisoned")
                    .get(&cache_key)
                    .map(|(c, _)| c.clone());
                let known = known.or_else(|| read_ref_file(mirror, git_ref));
                return match known {
                    Some(commit) => {
                        let warning = format!(
                            "could not update {url} {git_ref} ({err}); using {commit}, resolved earlier"
                        );
                        Ok((commit, Some(warning)))
                    }
                    None => Err(err),
                };
            }
        };
        write_ref_file(mirror, git_ref, &commit);
        self.refs
            .lock()
            .expect("poisoned")
            .insert(cache_key, (commit.clone(), Instant::now()));
        Ok((commit, None))
    }
}

fn locate(
    url: &str,
    root: PathBuf,
    path_to_robot: &str,
    commit: Option<String>,
    warning: Option<String>,
) -> Result<ResolvedBundle> {
    let relative = Path::new(path_to_robot);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Collection {
            repo_url: url.into(),
            reason: format!("pathToRobot {path_to_robot:?} must be a path inside the collection"),
        });
    }
    let robot_file = root.join(relative);
    if !robot_file.is_file() {
        return Err(Error::RobotFileMissing {
            path: path_to_robot.into(),
            collection: url.to_string(),
        });
    }
    let bundle_dir = robot_file
        .parent()
        .expect("a file has a parent")
        .to_path_buf();
    Ok(ResolvedBundle {
        collection_root: root,
        bundle_dir,
        robot_file,
        commit,
        warning,
    })
}

fn is_git_url(url: &str) -> bool {
    ["file://", "https://", "http://", "ssh://", "git://"]
        .iter()
        .any(|p| url.starts_with(p))
        || (url.contains('@') && url.contains(':') && !url.contains("://") && !url.starts_with('/'))
}

fn repo_slug(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn ref_file(mirror: &Path, git_ref: &str) -> PathBuf {
    mirror
        .join("steward-refs")
        .join(hex::encode(git_ref.as_bytes()))
}

fn read_ref_file(mirror: &Path, git_ref: &str) -> Option<String> {
    std::fs::read_to_string(ref_file(mirror, git_ref))
        .ok()
        .map(|s| s.trim().to_string())
}

fn write_ref_file(mirror: &Path, git_ref: &str, commit: &str) {
    let path = ref_file(mirror, git_ref);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, commit);
}

async fn git(url: &str, mut cmd: Command) -> Result<String> {
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    let output = cmd.output().await.map_err(|e| Error::Git {
        repo_url: url.into(),
        detail: format!("git cannot be started ({e}); install git"),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Git {
            repo_url: url.into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn builtin_hash() -> String {
    fn walk(dir: &include_dir::Dir<'_>, hash: &mut Sha256) {
        for file in dir.files() {
            hash.update(file.path().to_string_lossy().as_bytes());
            hash.update(b"\0");
            hash.update(file.contents());
        }
        for sub in dir.dirs() {
            walk(sub, hash);
        }
    }
    let mut hash = Sha256::new();
    walk(&BUILTIN, &mut hash);
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(url: &str, git_ref: &str, path: &str) -> CodeBundleRef {
        CodeBundleRef {
            repo_url: url.into(),
            git_ref: git_ref.into(),
            path_to_robot: Some(path.into()),
            path_to_yaml: None,
        }
    }

    fn sh(dir: &Path, script: &str) {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    #[tokio::test]
    async fn builtin_collection_unpacks_once() {
        let cache = tempfile::tempdir().unwrap();
        let resolver = CollectionResolver::new(cache.path(), HashMap::new());
        let found = resolver
            .resolve(&bundle(
                BUILTIN_URL,
                "",
                "codebundles/http-endpoint-health/sli.robot",
            ))
            .await
            .unwrap();
        assert!(found.robot_file.is_file());
        assert!(found.collection_root.join("codebundles").is_dir());
        let again = resolver
            .resolve(&bundle(
                BUILTIN_URL,
                "",
                "codebundles/http-endpoint-health/runbook.robot",
            ))
            .await
            .unwrap();
        assert_eq!(again.collection_root, found.collection_root);
    }

    #[tokio::test]
    async fn plain_paths_and_overrides_are_used_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("codebundles/b")).unwrap();
        std::fs::write(
            dir.path().join("codebundles/b/sli.robot"),
            "*** Tasks ***\nT\n  Log  x\n",
        )
        .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let overrides = HashMap::from([(
            "https://example.com/c.git".to_string(),
            dir.path().to_path_buf(),
        )]);
        let resolver = CollectionResolver::new(cache.path(), overrides);
        let by_path = resolver
            .resolve(&bundle(
                dir.path().to_str().unwrap(),
                "main",
                "codebundles/b/sli.robot",
            ))
            .await
            .unwrap();
        assert_eq!(
            by_path.bundle_dir,
            dir.path().canonicalize().unwrap().join("codebundles/b")
        );
        let by_override = resolver
            .resolve(&bundle(
                "https://example.com/c.git",
                "main",
                "codebundles/b/sli.robot",
            ))
            .await
            .unwrap();
        assert!(by_override.robot_file.ends_with("codebundles/b/sli.robot"));
        let err = resolver
            .resolve(&bundle(
                dir.path().to_str().unwrap(),
                "",
                "codebundles/nope/sli.robot",
            ))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("codebundles/nope/sli.robot"),
            "{err}"
        );
        let err = resolver
            .resolve(&bundle(
                dir.path().to_str().unwrap(),
                "",
                "../../etc/passwd.robot",
            ))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("inside the collection"), "{err}");
    }

    #[tokio::test]
    async fn git_urls_are_checked_out_per_commit_and_refs_follow_branches() {
        let repo = tempfile::tempdir().unwrap();
        sh(
            repo.path(),
            "git init -q -b main . && mkdir -p codebundles/b && echo one > codebundles/b/sli.robot \
             && git add . && git -c user.name=t -c user.email=t@t commit -qm one",
        );
        let url = format!("file://{}", repo.path().display());
        let cache = tempfile::tempdir().unwrap();
        let resolver = CollectionResolver::new(cache.path(), HashMap::new());
        let first = resolver
            .resolve(&bundle(&url, "main", "codebundles/b/sli.robot"))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&first.robot_file).unwrap(), "one\n");
        let commit_one = first.commit.clone().unwrap();

        sh(
            repo.path(),
            "echo two > codebundles/b/sli.robot && git -c user.name=t -c user.email=t@t commit -qam two && git tag v1 HEAD~1",
        );
        // Within the TTL the cached commit is used; a fresh resolver sees the new one.
        let cached = resolver
            .resolve(&bundle(&url, "main", "codebundles/b/sli.robot"))
            .await
            .unwrap();
        assert_eq!(cached.commit.as_deref(), Some(commit_one.as_str()));
        let fresh = CollectionResolver::new(cache.path(), HashMap::new());
        let second = fresh
            .resolve(&bundle(&url, "main", "codebundles/b/sli.robot"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&second.robot_file).unwrap(),
            "two\n"
        );
        assert_ne!(second.commit.as_deref(), Some(commit_one.as_str()));
        let tagged = fresh
            .resolve(&bundle(&url, "v1", "codebundles/b/sli.robot"))
            .await
            .unwrap();
        assert_eq!(tagged.commit.as_deref(), Some(commit_one.as_str()));

        // The remote disappears: the last resolved commit is used, with a warning.
        drop(repo);
        let offline = CollectionResolver::new(cache.path(), HashMap::new());
        let stale = offline
            .resolve(&bundle(&url, "main", "codebundles/b/sli.robot"))
            .await
            .unwrap();
        assert_eq!(stale.commit, second.commit);
        assert!(stale.warning.unwrap().contains("resolved earlier"));
        let err = offline
            .resolve(&bundle(&url, "never-fetched", "codebundles/b/sli.robot"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&url), "{err}");
    }

    #[test]
    fn git_url_shapes() {
        assert!(is_git_url(
            "https://github.com/runwhen-contrib/rw-cli-codecollection.git"
        ));
        assert!(is_git_url("git@github.com:org/repo.git"));
        assert!(is_git_url("file:///srv/repo"));
        assert!(!is_git_url("/srv/collection"));
        assert!(!is_git_url("./collection"));
        assert_eq!(
            repo_slug("https://github.com/runwhen-contrib/rw-cli-codecollection.git"),
            "rw-cli-codecollection"
        );
    }
}

//! The managed Python environment tasks run in: a venv with pinned Robot Framework and the
//! RunWhen keyword libraries (plus a collection's `requirements.txt`), created on first use
//! and cached by the hash of everything that goes into it.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// The packages every environment holds, pinned.
pub const PINS: &[&str] = &[
    "robotframework==7.5",
    "rw-core-keywords==2026.8.11.2",
    "rw-cli-keywords==2026.3.25.1",
];

/// The oldest Python the pinned packages install on.
const MIN_PYTHON: (u32, u32) = (3, 9);

/// Marker written last, so a half-built environment is never used.
const READY_MARKER: &str = ".steward-ready";

/// After a failed build, runs report that failure for this long before a build is tried
/// again (an SLI every 30 s must not start pip every 30 s on a machine without PyPI).
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// What happens while an environment is being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionEvent {
    /// Building starts in this directory (only sent when a build is needed).
    Started {
        /// The environment's directory.
        dir: PathBuf,
    },
    /// A step: "creating venv", "Collecting robotframework==7.5", ...
    Step(String),
    /// Ready after this many seconds.
    Finished {
        /// Wall time of the build.
        seconds: u64,
    },
}

/// Receives [`ProvisionEvent`]s.
pub type Progress = Arc<dyn Fn(ProvisionEvent) + Send + Sync>;

/// A ready environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    /// The venv directory.
    pub dir: PathBuf,
    /// `<dir>/bin/python`.
    pub python: PathBuf,
}

/// Builds and caches environments under one directory.
pub struct PythonEnvs {
    cache_dir: PathBuf,
    base_python: Option<PathBuf>,
    ready: Mutex<HashMap<String, Arc<OnceCell<PythonEnv>>>>,
    failed: Mutex<HashMap<String, (Instant, String)>>,
}

impl PythonEnvs {
    /// Environments live under `cache_dir/python/<hash>`. `base_python` is the interpreter the
    /// venvs are made from; `None` means `$STEWARD_PYTHON`, else `python3` on `PATH`.
    pub fn new(cache_dir: &Path, base_python: Option<PathBuf>) -> Self {
        PythonEnvs {
            cache_dir: cache_dir.join("python"),
            base_python,
            ready: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The environment for a collection with this `requirements.txt` text (or none), built
    /// if needed. Concurrent callers, in this process or others, wait for one build.
    pub async fn ensure(
        &self,
        requirements: Option<&str>,
        progress: &Progress,
    ) -> Result<PythonEnv> {
        let base = self.base_python()?;
        let version = python_version(&base).await?;
        let key = env_key(&base, &version, requirements);
        if let Some((at, message)) = self.failed.lock().expect("poisoned").get(&key)
            && at.elapsed() < RETRY_AFTER
        {
            return Err(Error::PythonSetup {
                dir: self.cache_dir.join(&key),
                step: format!(
                    "an attempt {}s ago (tried again {}s after it)",
                    at.elapsed().as_secs(),
                    RETRY_AFTER.as_secs()
                ),
                detail: message.clone(),
            });
        }
        let cell = self
            .ready
            .lock()
            .expect("poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let dir = self.cache_dir.join(&key);
        let built = cell
            .get_or_try_init(|| build(dir, base, requirements.map(str::to_owned), progress.clone()))
            .await
            .cloned();
        if let Err(error) = &built {
            self.failed
                .lock()
                .expect("poisoned")
                .insert(key, (Instant::now(), error.to_string()));
        }
        built
    }

    fn base_python(&self) -> Result<PathBuf> {
        if let Some(p) = &self.base_python {
            return Ok(p.clone());
        }
        if let Some(p) = std::env::var_os("STEWARD_PYTHON").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        find_on_path("python3").ok_or(Error::PythonMissing {
            detail: "python3 is not on PATH".into(),
        })
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

async fn python_version(python: &Path) -> Result<String> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .output()
        .await
        .map_err(|e| Error::PythonMissing {
            detail: format!("{} cannot be started: {e}", python.display()),
        })?;
    if !output.status.success() {
        return Err(Error::PythonMissing {
            detail: format!(
                "{} failed: {}",
                python.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_PYTHON {
        return Err(Error::PythonMissing {
            detail: format!(
                "{} is Python {version}; Robot Framework and the RunWhen keywords need {}.{} or newer",
                python.display(),
                MIN_PYTHON.0,
                MIN_PYTHON.1
            ),
        });
    }
    Ok(version)
}

/// The cache key: everything that changes what the environment holds.
fn env_key(python: &Path, version: &str, requirements: Option<&str>) -> String {
    let mut hash = Sha256::new();
    hash.update(python.to_string_lossy().as_bytes());
    hash.update(b"\0");
    hash.update(version.as_bytes());
    for pin in PINS {
        hash.update(b"\0");
        hash.update(pin.as_bytes());
    }
    if let Some(req) = requirements {
        hash.update(b"\0requirements\0");
        hash.update(req.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("py{version}-{}", &digest[..16])
}

async fn build(
    dir: PathBuf,
    base: PathBuf,
    requirements: Option<String>,
    progress: Progress,
) -> Result<PythonEnv> {
    let env = PythonEnv {
        python: dir.join("bin").join("python"),
        dir: dir.clone(),
    };
    if dir.join(READY_MARKER).is_file() {
        return Ok(env);
    }
    let parent = dir.parent().expect("env dir has a parent").to_path_buf();
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(|e| Error::io(&parent, e))?;
    // Other processes (a second runner, a parallel test) may build the same environment.
    let lock_path = dir.with_extension("lock");
    let _lock = FileLock::acquire(lock_path).await?;
    if dir.join(READY_MARKER).is_file() {
        return Ok(env);
    }
    let started = Instant::now();
    progress(ProvisionEvent::Started { dir: dir.clone() });
    if dir.exists() {
        tokio::fs::remove_dir_all(&dir)
            .await
            .map_err(|e| Error::io(&dir, e))?;
    }

    progress(ProvisionEvent::Step(format!(
        "creating a virtual environment with {}",
        base.display()
    )));
    let output = Command::new(&base)
        .kill_on_drop(true)
        .args(["-m", "venv"])
        .arg(&dir)
        .output()
        .await
        .map_err(|e| Error::PythonMissing {
            detail: format!("{} cannot be started: {e}", base.display()),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(
            if stderr.contains("ensurepip") || stderr.contains("No module named venv") {
                Error::VenvMissing {
                    python: base,
                    detail: last_lines(&stderr, 3),
                }
            } else {
                Error::PythonSetup {
                    dir,
                    step: "python -m venv".into(),
                    detail: last_lines(&stderr, 10),
                }
            },
        );
    }

    let mut pip = Command::new(&env.python);
    pip.kill_on_drop(true);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ]);
    pip.args(PINS);
    let requirements_file = dir.join("collection-requirements.txt");
    if let Some(req) = &requirements {
        tokio::fs::write(&requirements_file, req)
            .await
            .map_err(|e| Error::io(&requirements_file, e))?;
        pip.arg("-r").arg(&requirements_file);
    }
    progress(ProvisionEvent::Step(format!(
        "installing {}",
        PINS.join(" ")
    )));
    let log = run_streaming(pip, &progress)
        .await
        .map_err(|e| Error::io(&env.python, e))?;
    if !log.0 {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(Error::PythonSetup {
            dir,
            step: "pip install".into(),
            detail: format!(
                "{}\n(pip needs PyPI or a mirror: set PIP_INDEX_URL for an internal index)",
                last_lines(&log.1, 15)
            ),
        });
    }
    let marker = dir.join(READY_MARKER);
    tokio::fs::write(&marker, PINS.join("\n"))
        .await
        .map_err(|e| Error::io(&marker, e))?;
    progress(ProvisionEvent::Finished {
        seconds: started.elapsed().as_secs(),
    });
    Ok(env)
}

/// Runs `cmd`, reporting each "Collecting"/"Installing" line; returns success and the output.
async fn run_streaming(mut cmd: Command, progress: &Progress) -> std::io::Result<(bool, String)> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut all = String::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("Collecting ") || line.starts_with("Installing collected") {
            progress(ProvisionEvent::Step(line.trim().to_string()));
        }
        all.push_str(&line);
        all.push('\n');
    }
    let status = child.wait().await?;
    all.push_str(&err_task.await.unwrap_or_default());
    Ok((status.success(), all))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An exclusive `flock` on a file, released on drop.
struct FileLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl FileLock {
    async fn acquire(path: PathBuf) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                .map(FileLock)
                .map_err(|(_, errno)| Error::io(&path, std::io::Error::from(errno)))
        })
        .await
        .expect("lock task panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_requirements_and_python() {
        let a = env_key(Path::new("/usr/bin/python3"), "3.11.7", None);
        assert_eq!(a, env_key(Path::new("/usr/bin/python3"), "3.11.7", None));
        assert_ne!(
            a,
            env_key(Path::new("/usr/bin/python3"), "3.11.7", Some("jmespath\n"))
        );
        assert_ne!(a, env_key(Path::new("/usr/bin/python3"), "3.12.1", None));
        assert!(a.starts_with("py3.11.7-"));
    }

    #[tokio::test]
    async fn a_missing_interpreter_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let envs = PythonEnvs::new(dir.path(), Some(dir.path().join("no-such-python")));
        let progress: Progress = Arc::new(|_| {});
        let err = envs.ensure(None, &progress).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no-such-python"), "{text}");
        assert!(text.contains("STEWARD_PYTHON"), "{text}");
    }

    #[tokio::test]
    async fn an_interpreter_without_venv_gets_the_package_to_install_named() {
        // A fake python that reports a version but has no working venv module, like Debian's
        // python3 without python3-venv.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("python3");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$*\" in *version_info*) echo 3.11.2;; *venv*) echo 'The virtual environment was not created successfully because ensurepip is not available.' >&2; exit 1;; esac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let envs = PythonEnvs::new(dir.path(), Some(fake));
        let progress: Progress = Arc::new(|_| {});
        let text = envs.ensure(None, &progress).await.unwrap_err().to_string();
        assert!(text.contains("python3-venv"), "{text}");
        // The failure is remembered for a while instead of being retried by every run.
        let again = envs.ensure(None, &progress).await.unwrap_err().to_string();
        assert!(
            again.contains("an attempt") && again.contains("python3-venv"),
            "{again}"
        );
    }
}

//! Test support for Steward (dev-dependency only, never linked into the binary).
//!
//! - [`cache_dir`]: one cache shared by every test process, so the Python environment with
//!   Robot Framework and the RunWhen keywords is built once per machine, not once per test.
//! - [`HttpTarget`]: a real HTTP server on loopback whose health endpoint can be switched
//!   between healthy and failing, for checks to probe.
//! - [`Process`]: a child process killed by its process id when the guard drops.
//! - [`wait_until`]: polling with a deadline, for asserting on eventually-true state.
//! - [`TestDb`] and [`on_both_databases!`]: one test body run on SQLite and on PostgreSQL
//!   ([`postgres`] provides the server).
//! - [`proxy::TcpProxy`]: a loopback TCP proxy a test can cut, to fail the network.
//! - [`kube::KubeApiServer`]: an in-memory Kubernetes API server that kube-rs and kubectl use.
//! - [`vault::VaultServer`]: a HashiCorp Vault stand-in (KV v2, AppRole and Kubernetes login).

pub mod kube;
pub mod postgres;
pub mod proxy;
pub mod vault;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The database a platform test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDb {
    /// The embedded default: a SQLite file in the platform's data directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server ([`postgres::database`]).
    Postgres,
}

impl TestDb {
    /// The database URL to give the platform: `None` keeps its SQLite default. Blocking (it
    /// may start the PostgreSQL server and creates a database).
    pub fn url(&self) -> Option<String> {
        match self {
            TestDb::Sqlite => None,
            TestDb::Postgres => Some(postgres::database()),
        }
    }
}

/// For each `async fn name(db: TestDb)` listed, generates the tests `name::sqlite` and
/// `name::postgres`, so every store and API test runs on both databases.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread")]
                async fn sqlite() {
                    super::$name($crate::TestDb::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread")]
                async fn postgres() {
                    super::$name($crate::TestDb::Postgres).await
                }
            }
        )*
    };
}

/// The cache shared by tests: `$STEWARD_TEST_CACHE`, else `target/steward-test-cache` of the
/// workspace.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STEWARD_TEST_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    workspace_root().join("target").join("steward-test-cache")
}

/// The repository root (where the workspace `Cargo.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> layout")
        .to_path_buf()
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
///
/// # Panics
/// When the deadline passes; the message names `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`wait_until`] that, when the deadline passes, adds what `explain` says (a log's tail, a
/// metrics page) to the panic message.
///
/// # Panics
/// When the deadline passes.
pub fn wait_until_explained<T>(
    what: &str,
    timeout: Duration,
    explain: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                explain()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `lines` lines of a text file (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Async flavour of [`wait_until`].
///
/// # Panics
/// When the deadline passes; the message names `what`.
pub async fn wait_until_async<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Serves `app` on a free loopback port from a thread of its own (usable from sync and async
/// tests alike); sending on (or dropping) the returned sender stops it.
pub fn serve_on_thread(app: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    (addr, stop)
}

/// A loopback HTTP server for checks to probe.
///
/// - `/health` answers with the status set by [`HttpTarget::set_health`] (200 at first);
/// - `/status/{code}` answers with that code;
/// - `/slow/{millis}` answers 200 after that many milliseconds.
pub struct HttpTarget {
    addr: SocketAddr,
    health: Arc<AtomicU16>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HttpTarget {
    /// Starts the server on a thread of its own (usable from sync and async tests alike).
    pub fn start() -> Self {
        let health = Arc::new(AtomicU16::new(200));
        let app =
            Router::new()
                .route(
                    "/health",
                    get(|State(h): State<Arc<AtomicU16>>| async move {
                        status(h.load(Ordering::SeqCst))
                    }),
                )
                .route(
                    "/status/{code}",
                    get(|UrlPath(code): UrlPath<u16>| async move { status(code) }),
                )
                .route(
                    "/slow/{millis}",
                    get(|UrlPath(ms): UrlPath<u64>| async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        "slow but fine"
                    }),
                )
                .with_state(health.clone());
        let (addr, stop) = serve_on_thread(app);
        HttpTarget {
            addr,
            health,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes `/health` answer with `code` from now on.
    pub fn set_health(&self, code: u16) {
        self.health.store(code, Ordering::SeqCst);
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn status(code: u16) -> (StatusCode, String) {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, format!("{code}\n"))
}

/// A child process that is killed (by pid) and reaped when dropped.
pub struct Process {
    child: Child,
    name: String,
}

impl Process {
    /// Spawns `cmd`, its output going to `log` (stdout and stderr together).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).unwrap();
        cmd.stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(std::process::Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            child,
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by pid (SIGINT for a clean stop, SIGKILL for a crash).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal);
    }

    /// Waits up to `timeout` for the process to exit; returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Blocking GET returning the status and the body as JSON (or `Null` when not JSON).
pub fn get_json(url: &str) -> Option<(u16, serde_json::Value)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let response = client.get(url).send().ok()?;
    let status = response.status().as_u16();
    let text = response.text().ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    ))
}

/// A Python virtual environment with `packages` installed, built once per machine under the
/// shared cache (tests that drive real clients: the OpenTelemetry SDK, emulators from PyPI).
/// Returns the environment's `python`.
///
/// # Panics
/// When the environment cannot be built; the message holds pip's output.
pub fn python_env(name: &str, packages: &[&str]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    packages.hash(&mut hasher);
    let dir = cache_dir()
        .join("tools")
        .join(format!("{name}-{:016x}", hasher.finish()));
    let python = dir.join("bin").join("python");
    let ready = dir.join(".ready");
    if ready.is_file() {
        return python;
    }
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    // One builder at a time across test processes.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))
        .unwrap();
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    if ready.is_file() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let run = |cmd: &mut Command| {
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages));
    std::fs::write(&ready, packages.join("\n")).unwrap();
    python
}

/// An npm package installed once per machine under the shared cache; returns its
/// `node_modules/.bin` directory.
///
/// # Panics
/// When npm fails; the message holds its output.
pub fn npm_tool(package: &str, version: &str) -> PathBuf {
    let dir = cache_dir().join("npm").join(format!("{package}-{version}"));
    let bin = dir.join("node_modules").join(".bin");
    let ready = dir.join(".ready");
    if ready.is_file() {
        return bin;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))
        .unwrap();
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    if ready.is_file() {
        return bin;
    }
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            &format!("{package}@{version}"),
        ])
        .current_dir(&dir)
        .output()
        .expect("npm is needed (Debian: apt-get install npm)");
    assert!(
        output.status.success(),
        "npm install {package}@{version} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&ready, version).unwrap();
    bin
}

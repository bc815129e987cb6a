//! Real PostgreSQL for tests.
//!
//! [`database`] hands out a fresh, empty database per call. The server behind it is the one
//! `STEWARD_TEST_POSTGRES_URL` names (an admin URL such as
//! `postgres://postgres@127.0.0.1:55432/postgres`; `.ci/run` starts one), or else a throwaway
//! cluster this test process starts on first use and that stops when the process ends.
//! [`PostgresServer`] is a cluster of a test's own, for tests that stop and restart the
//! database.

use crate::{free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A PostgreSQL cluster in a temporary directory, serving on 127.0.0.1; stopped (by pid) when
/// dropped.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    settings: Vec<(String, String)>,
}

/// Settings for throwaway data: durability only costs test time.
const FAST: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

impl PostgresServer {
    /// Creates the cluster (`initdb`) and starts it, without durability (tests).
    ///
    /// # Panics
    /// When PostgreSQL is not installed (the message says what to install) or does not start.
    pub fn start() -> Self {
        Self::start_with(FAST)
    }

    /// Like [`PostgresServer::start`] with these server settings (`-c name=value`) on top of
    /// PostgreSQL's defaults: a benchmark passes its own.
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("steward-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        hand_to_postgres_user(dir.path());
        let output = as_postgres_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("running initdb");
        assert!(
            output.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = PostgresServer {
            port: free_port(),
            dir,
            child: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.resume();
        server
    }

    /// Starts the server again after [`PostgresServer::stop`] (same port, same data).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).unwrap();
        let mut cmd = as_postgres_user(&bin_dir().join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=400",
            ]);
        for (name, value) in &self.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        self.child = Some(child);
        let url = self.admin_url();
        wait_until(
            "PostgreSQL to accept connections",
            Duration::from_secs(30),
            || psql(&url, "SELECT 1").ok(),
        );
    }

    /// Stops the server (fast shutdown: open connections are ended).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }

    /// The URL of the `postgres` database as the `postgres` superuser.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database on this server.
    pub fn database(&self) -> String {
        create_database(&self.admin_url())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A URL to a new, empty database on the shared test server.
///
/// # Panics
/// When no server can be had; the message says what to install or set.
pub fn database() -> String {
    static ADMIN: OnceLock<String> = OnceLock::new();
    let admin = ADMIN.get_or_init(|| {
        if let Some(url) = std::env::var("STEWARD_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return url;
        }
        let server = PostgresServer::start();
        let url = server.admin_url();
        watch_parent(&server);
        // Lives as long as the test process; the watcher stops it after the process ends.
        std::mem::forget(server);
        url
    });
    create_database(admin)
}

fn create_database(admin: &str) -> String {
    let name = format!("steward_{:016x}", rand_u64());
    psql(admin, &format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("creating a test database on {admin}: {e}"));
    let (base, _) = admin
        .rsplit_once('/')
        .expect("an admin URL ends in /DATABASE");
    format!("{base}/{name}")
}

/// Runs one SQL command with `psql`.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .map_err(|e| format!("psql: {e} (install postgresql-client)"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    RandomState::new().hash_one((nanos, std::process::id(), std::thread::current().id()))
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect(
        "PostgreSQL is needed for the PostgreSQL tests: install it (Debian: apt-get install \
         postgresql) or set STEWARD_TEST_POSTGRES_URL to an admin URL of a server to use",
    )
}

/// PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
fn as_postgres_user(program: &Path) -> Command {
    if nix::unistd::Uid::effective().is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn hand_to_postgres_user(dir: &Path) {
    if nix::unistd::Uid::effective().is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown postgres {}", dir.display());
    }
}

/// Stops `server` and removes its directory once this process has exited: statics are never
/// dropped, so a shared server needs a watcher outside the process.
fn watch_parent(server: &PostgresServer) {
    let Some(child) = &server.child else { return };
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -INT {pg}; \
         while kill -0 {pg} 2>/dev/null; do sleep 0.2; done; rm -rf '{dir}'",
        me = std::process::id(),
        pg = child.id(),
        dir = server.dir.path().display(),
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

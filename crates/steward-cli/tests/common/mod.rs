//! Starting real `steward` processes for end-to-end tests.
#![allow(dead_code)]

pub mod cluster;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use steward_testkit::{Process, cache_dir, free_port, get_json, wait_until};

pub fn steward() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env("STEWARD_CACHE_DIR", cache_dir())
        .env("STEWARD_LOG", "info")
        .env_remove("STEWARD_URL")
        .env_remove("STEWARD_TOKEN");
    cmd
}

/// Runs a client command to its end; returns (exit code, stdout, stderr).
pub fn client(url: &str, args: &[&str]) -> (i32, String, String) {
    let output = steward()
        .args(args)
        .env("STEWARD_URL", url)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Like [`client`], parsing stdout as JSON (the command is given `--output json`).
pub fn client_json(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (code, stdout, stderr) = client(url, &all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("{args:?} exited {code}: {e}\nstdout: {stdout}\nstderr: {stderr}")
    })
}

pub struct Platform {
    pub process: Process,
    pub url: String,
    pub dir: PathBuf,
}

/// `steward platform` on a free port with its own data directory.
pub fn start_platform(dir: &Path, token: &str, extra: &[&str]) -> Platform {
    start_platform_on(dir, free_port(), token, extra, "platform.log")
}

/// `steward platform` on `port` (the same data directory every time for one `dir`).
pub fn start_platform_on(
    dir: &Path,
    port: u16,
    token: &str,
    extra: &[&str],
    log_name: &str,
) -> Platform {
    let mut cmd = steward();
    cmd.args([
        "platform",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--registration-token",
        token,
    ])
    .args(extra)
    .env("STEWARD_DATA_DIR", dir.join("platform-data"));
    let process = Process::spawn("platform", cmd, &dir.join(log_name));
    let url = format!("http://127.0.0.1:{port}");
    wait_until("the platform to answer", Duration::from_secs(30), || {
        get_json(&format!("{url}/api/v1/health")).filter(|(status, _)| *status == 200)
    });
    Platform {
        process,
        url,
        dir: dir.to_path_buf(),
    }
}

/// `steward runner` for `url`, with its own state directory.
pub fn start_runner(dir: &Path, url: &str, token: &str, name: &str) -> Process {
    start_runner_with(dir, url, token, name, &[])
}

/// [`start_runner`] with extra flags.
pub fn start_runner_with(
    dir: &Path,
    url: &str,
    token: &str,
    name: &str,
    extra: &[&str],
) -> Process {
    start_runner_with_env(dir, url, token, name, extra, &[])
}

/// [`start_runner_with`] with extra environment variables.
pub fn start_runner_with_env(
    dir: &Path,
    url: &str,
    token: &str,
    name: &str,
    extra: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> Process {
    let mut cmd = steward();
    cmd.args([
        "runner",
        "--platform",
        url,
        "--registration-token",
        token,
        "--name",
        name,
    ])
    .args(extra)
    .env("STEWARD_DATA_DIR", dir.join(format!("{name}-data")));
    for (key, value) in env {
        cmd.env(key, value);
    }
    if !extra.contains(&"--capacity") {
        cmd.args(["--capacity", "3"]);
    }
    Process::spawn(name, cmd, &dir.join(format!("{name}.log")))
}

/// GET returning JSON, panicking with the platform's answer on failure.
pub fn api(url: &str, path: &str) -> Value {
    let (status, body) = get_json(&format!("{url}{path}")).expect("platform reachable");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

pub fn log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

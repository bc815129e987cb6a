//! `steward run`: a codebundle run locally, the author's loop.

mod common;

use common::*;
use std::path::PathBuf;
use steward_testkit::{HttpTarget, workspace_root};

fn bundle(path: &str) -> String {
    workspace_root().join(path).to_string_lossy().into_owned()
}

#[test]
fn a_runbook_runs_locally_and_prints_tasks_issues_and_report() {
    let target = HttpTarget::start();
    target.set_health(500);
    let out = tempfile::tempdir().unwrap();
    let urls = format!("URLS={}/health", target.base_url());
    let output = steward()
        .args([
            "run",
            &bundle("codecollections/codebundles/http-endpoint-health/runbook.robot"),
            "--var",
            &urls,
        ])
        // The default output directory is relative to where the command runs.
        .current_dir(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("PASS    Check HTTP Endpoint Availability and Latency"),
        "{stdout}"
    );
    assert!(stdout.contains("[sev2 major] HTTP endpoint"), "{stdout}");
    assert!(stdout.contains("next steps:"), "{stdout}");
    assert!(
        stdout.contains("## Inspect HTTP Response Headers"),
        "report grouped by task: {stdout}"
    );
    let runs: Vec<_> = std::fs::read_dir(out.path().join("steward-out"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].path().join("log.html").is_file());

    let json = {
        let output = steward()
            .args([
                "run",
                &bundle("codecollections/codebundles/http-endpoint-health/sli.robot"),
                "--var",
                &urls,
                "--output",
                "json",
            ])
            .args(["--out", out.path().join("sli").to_str().unwrap()])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    assert_eq!(json["result"]["sliValue"], 0.0, "{json:#}");
}

#[test]
fn secrets_from_files_reach_the_task_and_are_gone_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "tok-local-7a7a7a").unwrap();
    let robot: PathBuf = workspace_root().join(
        "crates/steward-runtime/tests/fixtures/collection/codebundles/secret-check/runbook.robot",
    );
    let output = steward()
        .args([
            "run",
            robot.to_str().unwrap(),
            "--var",
            "SERVICE=billing",
            "--secret",
            &format!("api_token={}", secret.display()),
        ])
        .args([
            "--task",
            "Use The Token For `${SERVICE}`",
            "--output",
            "json",
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["result"]["status"], "succeeded", "{json:#}");
    let report = serde_json::to_string(&json["report"]).unwrap();
    assert!(
        !report.contains("tok-local-7a7a7a"),
        "secret value leaked into the report"
    );
    let keys = report
        .split("file@")
        .nth(1)
        .unwrap()
        .split(['"', '\\'])
        .next()
        .unwrap();
    assert!(!std::path::Path::new(keys).exists(), "{keys} left behind");
}

#[test]
fn bad_input_is_named() {
    let (code, _, stderr) = client("http://127.0.0.1:1", &["run", "/nonexistent/runbook.robot"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/runbook.robot"), "{stderr}");
    let robot = bundle("codecollections/codebundles/dns-resolution/runbook.robot");
    let (code, _, stderr) = client("http://127.0.0.1:1", &["run", &robot, "--var", "NOEQUALS"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("NOEQUALS") && stderr.contains("NAME=VALUE"),
        "{stderr}"
    );
    let (code, stdout, _) = client(
        "http://127.0.0.1:1",
        &[
            "run",
            &robot,
            "--task",
            "Nope",
            "--var",
            "HOSTNAMES=localhost",
        ],
    );
    assert_eq!(code, 2);
    assert!(stdout.contains("no task titled \"Nope\""), "{stdout}");
    let (code, _, stderr) = client("http://127.0.0.1:1", &["status"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot reach the platform at http://127.0.0.1:1")
            && stderr.contains("refused"),
        "the cause is said: {stderr}"
    );
    let (code, _, stderr) = client("http://127.0.0.1:1", &["run", &robot, "--secret", "token"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("NAME=FILE"), "{stderr}");
    let (code, _, stderr) = client("127.0.0.1:8080", &["status"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a platform URL"), "{stderr}");
    let (code, _, stderr) = client("http://127.0.0.1:1/api/v1", &["status"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("without /api/v1"), "{stderr}");
    // A directory without slxs/ is refused before anything is sent.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("workspace.yaml"),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: w\n",
    )
    .unwrap();
    let (code, _, stderr) = client(
        "http://127.0.0.1:1",
        &["workspace", "import", dir.path().to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("has no slxs/ directory"), "{stderr}");
}

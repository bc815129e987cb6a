//! Real runs: Robot Framework with the RunWhen keyword libraries from PyPI, against a real HTTP
//! server on loopback. The first run builds the shared Python environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward_model::run::{RunKind, RunSpec, RunStatus, TaskStatus};
use steward_model::workspace::{CodeBundleRef, ConfigVar};
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use steward_testkit::{HttpTarget, cache_dir};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn fixture_collection() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/collection")
}

async fn runtime(work: &Path) -> Runtime {
    let config = RuntimeConfig {
        collection_overrides: HashMap::from([(
            "https://example.com/fixtures.git".to_string(),
            fixture_collection(),
        )]),
        ..RuntimeConfig::new(cache_dir(), work.join("work"))
    };
    Runtime::start(config, Arc::new(|event| eprintln!("python env: {event:?}")))
        .await
        .unwrap()
}

fn spec(
    kind: RunKind,
    repo: &str,
    path: &str,
    config: &[(&str, &str)],
    titles: &[&str],
) -> RunSpec {
    RunSpec {
        run_id: Uuid::now_v7(),
        kind,
        workspace: "ws".into(),
        slx: "web-check".into(),
        location: "test".into(),
        code_bundle: CodeBundleRef {
            repo_url: repo.into(),
            git_ref: "main".into(),
            path_to_robot: Some(path.into()),
            path_to_yaml: None,
        },
        config: config
            .iter()
            .map(|(n, v)| ConfigVar {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        secrets: vec![],
        task_titles: titles.iter().map(|t| t.to_string()).collect(),
        timeout_seconds: 120,
        session_id: Some(Uuid::now_v7()),
        interval_seconds: Some(30),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_sli_pushes_its_value_and_sub_metrics_over_otlp() {
    let target = HttpTarget::start();
    target.set_health(500);
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path()).await;
    let urls = format!("{0}/status/200,{0}/health", target.base_url());
    let spec = spec(
        RunKind::Sli,
        "builtin://steward",
        "codebundles/http-endpoint-health/sli.robot",
        &[("URLS", &urls)],
        &[],
    );
    let done = runtime
        .execute(
            &spec,
            &[],
            &dir.path().join("out"),
            &CancellationToken::new(),
        )
        .await;
    let result = done.result;
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    assert_eq!(result.sli_value, Some(0.5), "{result:#?}");
    let sub: Vec<&str> = result.metrics.iter().map(|m| m.name.as_str()).collect();
    assert!(
        sub.contains(&"web_check__sli__healthy_endpoints"),
        "{sub:?}"
    );
    let healthy = result
        .metrics
        .iter()
        .find(|m| m.name == "web_check__sli__healthy_endpoints")
        .unwrap();
    assert_eq!(healthy.value, 1.0);
    assert_eq!(healthy.attributes["workspace"], "ws");
    for artifact in ["log.html", "stdout.txt", "report.jsonl"] {
        assert!(
            result
                .artifacts
                .iter()
                .any(|a| a.name == artifact && a.size > 0),
            "{artifact} missing from {:?}",
            result.artifacts
        );
        assert!(done.out_dir.join(artifact).is_file());
    }
    assert!(
        !dir.path()
            .join("work")
            .join(spec.run_id.to_string())
            .exists(),
        "run directory left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_runbook_raises_issues_and_runs_only_the_selected_task() {
    let target = HttpTarget::start();
    target.set_health(503);
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path()).await;
    let urls = format!("{0}/health,http://127.0.0.1:1/", target.base_url());
    let all = spec(
        RunKind::Runbook,
        "builtin://steward",
        "codebundles/http-endpoint-health/runbook.robot",
        &[("URLS", &urls)],
        &["*"],
    );
    let result = runtime
        .execute(
            &all,
            &[],
            &dir.path().join("all"),
            &CancellationToken::new(),
        )
        .await
        .result;
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    assert_eq!(result.tasks.len(), 2);
    let titles: Vec<(u8, &str)> = result
        .issues
        .iter()
        .map(|i| (i.severity, i.title.as_str()))
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    let server_error = result
        .issues
        .iter()
        .find(|i| i.title.ends_with("answered 503"))
        .expect("issue for the 503");
    assert_eq!(server_error.severity, 2);
    assert!(
        server_error.next_steps.contains("logs"),
        "{server_error:#?}"
    );
    assert_eq!(
        server_error.task_name,
        "Check HTTP Endpoint Availability and Latency"
    );
    let refused = result
        .issues
        .iter()
        .find(|i| i.title.contains("unreachable"))
        .expect("issue for the refused port");
    assert!(refused.actual.contains("exit code 7"), "{refused:#?}");
    assert!(done_report_mentions(&dir.path().join("all"), "503"));

    let one = spec(
        RunKind::Runbook,
        "builtin://steward",
        "codebundles/http-endpoint-health/runbook.robot",
        &[("URLS", &urls)],
        &["Inspect HTTP Response Headers"],
    );
    let result = runtime
        .execute(
            &one,
            &[],
            &dir.path().join("one"),
            &CancellationToken::new(),
        )
        .await
        .result;
    let ran: Vec<&str> = result.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(ran, vec!["Inspect HTTP Response Headers"]);
    assert!(result.issues.is_empty());
}

fn done_report_mentions(out: &Path, needle: &str) -> bool {
    std::fs::read_to_string(out.join("report.jsonl"))
        .unwrap_or_default()
        .contains(needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn import_secret_reads_a_private_file_that_is_gone_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path()).await;
    let mut spec = spec(
        RunKind::Runbook,
        "https://example.com/fixtures.git",
        "codebundles/secret-check/runbook.robot",
        &[("SERVICE", "billing")],
        &["Use The Token For `${SERVICE}`"],
    );
    spec.secrets = vec![steward_model::workspace::SecretRef {
        name: "api_token".into(),
        workspace_key: "file@/wherever/the/runner/found/it".into(),
    }];
    let token = "tok-9f8e7d6c5b4a";
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: format!("{token}\n"),
    }];
    let out = dir.path().join("out");
    let done = runtime
        .execute(&spec, &secrets, &out, &CancellationToken::new())
        .await;
    let result = done.result;
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    assert_eq!(result.tasks[0].name, "Use The Token For `billing`");
    assert_eq!(result.tasks[0].title, "Use The Token For `${SERVICE}`");
    assert_eq!(result.issues[0].title, "Token checked for billing");

    let report = std::fs::read_to_string(out.join("report.jsonl")).unwrap();
    // The keyword library's copy of the secret was made and read inside the run...
    let copy = report
        .split("copy=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("copy path in report");
    assert!(report.contains("sha="), "{report}");
    // ...and RW_SECRETS_KEYS pointed at a file in the run's private directory.
    let keys = report.split("keys=").nth(1).unwrap();
    let secret_path = keys
        .split("file@")
        .nth(1)
        .unwrap()
        .split(['"', '\\'])
        .next()
        .unwrap();
    assert!(
        secret_path.contains(&spec.run_id.to_string()),
        "{secret_path}"
    );
    // Both are gone now.
    assert!(
        !Path::new(secret_path).exists(),
        "{secret_path} left behind"
    );
    assert!(!Path::new(copy).exists(), "{copy} left behind");
    // The value never reaches what is uploaded.
    for artifact in ["report.jsonl", "stdout.txt", "log.html", "issues.jsonl"] {
        let text = std::fs::read_to_string(out.join(artifact)).unwrap_or_default();
        assert!(!text.contains(token), "{artifact} holds the secret");
    }
    assert!(report.contains("leaked: ********"), "{report}");
    assert!(
        !log_html_text(&out.join("log.html")).contains(token),
        "log.html holds the secret, compressed"
    );
    assert!(log_html_text(&out.join("log.html")).contains("the key is ********"));
}

/// The text of log.html with robot's compressed strings expanded (in its string table, raw
/// strings start with `*`; the others are base64 of zlib-compressed text).
fn log_html_text(path: &Path) -> String {
    let script = r#"
import base64, re, sys, zlib
html = open(sys.argv[1], encoding="utf-8").read()
parts = [html]
for blob in re.findall(r'"([A-Za-z0-9+/]{16,}={0,2})"', html):
    try:
        parts.append(zlib.decompress(base64.b64decode(blob)).decode("utf-8", "replace"))
    except Exception:
        pass
print("\n".join(parts))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_past_its_time_limit_is_killed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path()).await;
    let mut spec = spec(
        RunKind::Runbook,
        "https://example.com/fixtures.git",
        "codebundles/secret-check/runbook.robot",
        &[("SERVICE", "billing")],
        &["Sleep Past The Timeout"],
    );
    spec.timeout_seconds = 4;
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: "x".into(),
    }];
    let started = std::time::Instant::now();
    let result = runtime
        .execute(
            &spec,
            &secrets,
            &dir.path().join("out"),
            &CancellationToken::new(),
        )
        .await
        .result;
    assert_eq!(result.status, RunStatus::TimedOut, "{result:#?}");
    assert!(result.error.as_deref().unwrap().contains("4s"));
    assert!(started.elapsed().as_secs() < 40);
    assert!(result.tasks.iter().all(|t| t.status != TaskStatus::Pass));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_titles_and_missing_bundles_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path()).await;
    let bad_title = spec(
        RunKind::Runbook,
        "builtin://steward",
        "codebundles/dns-resolution/runbook.robot",
        &[],
        &["Nope"],
    );
    let result = runtime
        .execute(
            &bad_title,
            &[],
            &dir.path().join("a"),
            &CancellationToken::new(),
        )
        .await
        .result;
    assert_eq!(result.status, RunStatus::Error);
    let error = result.error.unwrap();
    assert!(
        error.contains("\"Nope\"") && error.contains("Check DNS Resolution of `${HOSTNAMES}`"),
        "{error}"
    );

    let missing = spec(
        RunKind::Runbook,
        "builtin://steward",
        "codebundles/nope/runbook.robot",
        &[],
        &[],
    );
    let result = runtime
        .execute(
            &missing,
            &[],
            &dir.path().join("b"),
            &CancellationToken::new(),
        )
        .await
        .result;
    assert_eq!(result.status, RunStatus::Error);
    assert!(
        result
            .error
            .unwrap()
            .contains("codebundles/nope/runbook.robot")
    );

    // A required variable that is not configured fails the suite setup, visibly.
    let unset = spec(
        RunKind::Runbook,
        "builtin://steward",
        "codebundles/dns-resolution/runbook.robot",
        &[],
        &[],
    );
    let result = runtime
        .execute(
            &unset,
            &[],
            &dir.path().join("c"),
            &CancellationToken::new(),
        )
        .await
        .result;
    assert_eq!(result.status, RunStatus::Failed, "{result:#?}");
    assert!(
        result.tasks[0].message.contains("HOSTNAMES"),
        "{:?}",
        result.tasks[0]
    );
}

//! End to end over the hybrid path: `steward platform` and `steward runner` as separate
//! processes, real Robot Framework with the RunWhen keyword libraries, a real HTTP server that
//! the checks probe.

mod common;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;
use steward_testkit::{HttpTarget, wait_until};

fn workspace(dir: &std::path::Path, target: &str) -> std::path::PathBuf {
    let root = dir.join("workspace");
    let slx = root.join("slxs/web");
    std::fs::create_dir_all(&slx).unwrap();
    std::fs::write(
        root.join("workspace.yaml"),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: e2e\n",
    )
    .unwrap();
    std::fs::write(
        slx.join("slx.yaml"),
        "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: e2e--web\nspec:\n  alias: Web\n  statement: The web target is healthy.\n",
    )
    .unwrap();
    let bundle = |file: &str| {
        format!(
            "  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/{file}\n"
        )
    };
    let config = format!(
        "  configProvided:\n  - name: URLS\n    value: {target}/health\n  - name: REQUEST_TIMEOUT\n    value: '5'\n"
    );
    std::fs::write(
        slx.join("sli.yaml"),
        format!(
            "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: e2e--web\nspec:\n  locations: [edge]\n  intervalSeconds: 5\n{}{config}",
            bundle("sli.robot")
        ),
    )
    .unwrap();
    std::fs::write(
        slx.join("runbook.yaml"),
        format!("apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: e2e--web\nspec:\n  location: edge\n{}{config}", bundle("runbook.robot")),
    )
    .unwrap();
    root
}

fn run_session(url: &str) -> Value {
    let session = client_json(
        url,
        &[
            "session",
            "create",
            "--slx",
            "web",
            "--task",
            "Check HTTP Endpoint Availability and Latency",
        ],
    );
    let run = session["runs"][0].clone();
    assert_eq!(run["status"], "succeeded", "{session:#}");
    run
}

#[test]
fn platform_and_runner_processes_run_slis_and_runbooks_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::start();
    let token = "stw_reg_e2e";
    let mut platform = start_platform(
        dir.path(),
        token,
        &["--location", "edge", "--url-ttl", "3s"],
    );
    let url = platform.url.clone();
    let mut runner = start_runner(dir.path(), &url, token, "edge-runner");

    let tree = workspace(dir.path(), &target.base_url());
    let (code, stdout, stderr) = client(&url, &["workspace", "import", tree.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1 added"), "{stdout}");

    // SLI values arrive from the runner's own schedule.
    let values = wait_until("SLI values", Duration::from_secs(180), || {
        let values = api(
            &url,
            "/api/v1/workspaces/e2e/slxs/web/sli-values?metric=value",
        );
        (values.as_array().unwrap().len() >= 2).then_some(values)
    });
    assert_eq!(values[0]["value"], 1.0, "{values}");
    let status = client_json(&url, &["status"]);
    assert_eq!(status["status"]["runners"][0]["location"], "edge");
    assert_eq!(status["slxs"][0]["latestSli"]["value"], 1.0);

    // The endpoint fails: the runbook raises the issue, with severity and next steps.
    target.set_health(503);
    let failing = run_session(&url);
    let issues = client_json(&url, &["issues"]);
    let issue = issues
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap().contains("answered 503"))
        .expect("503 issue");
    assert_eq!(issue["severity"], 2);
    assert_eq!(issue["status"], "open");
    assert!(
        issue["nextSteps"].as_str().unwrap().contains("logs"),
        "{issue}"
    );
    assert_eq!(issue["lastRunId"], failing["id"]);
    // The SLI notices too.
    wait_until("the SLI to drop", Duration::from_secs(60), || {
        let slxs = api(&url, "/api/v1/workspaces/e2e/slxs");
        (slxs[0]["latestSli"]["value"] == 0.0).then_some(())
    });

    // Artifacts of the run download through signed URLs.
    let artifacts = api(
        &url,
        &format!("/api/v1/runs/{}/artifacts", failing["id"].as_str().unwrap()),
    );
    let names: Vec<&str> = artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in ["log.html", "stdout.txt", "report.jsonl", "issues.jsonl"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let issues_url = artifacts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "issues.jsonl")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let body = reqwest::blocking::get(&issues_url).unwrap();
    assert_eq!(body.status(), 200);
    assert!(body.text().unwrap().contains("answered 503"));
    let tampered = issues_url.replace("issues.jsonl", "stdout.txt");
    assert_eq!(reqwest::blocking::get(&tampered).unwrap().status(), 403);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        reqwest::blocking::get(&issues_url).unwrap().status(),
        403,
        "expired URL still works"
    );

    // The endpoint recovers: the next run of the task resolves the issue.
    target.set_health(200);
    run_session(&url);
    let open = client_json(&url, &["issues"]);
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|i| !i["title"].as_str().unwrap().contains("answered 503")),
        "{open:#}"
    );
    let all = client_json(&url, &["issues", "--all"]);
    let resolved = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap().contains("answered 503"))
        .unwrap();
    assert_eq!(resolved["status"], "resolved");

    // Cancelling what cannot be cancelled says why, per run.
    let (code, _, stderr) = client(&url, &["cancel", "not-a-run"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a run id"), "{stderr}");
    let (code, stdout, _) = client(
        &url,
        &[
            "cancel",
            failing["id"].as_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 1);
    let refused: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        refused[0]["error"]
            .as_str()
            .unwrap()
            .contains("already ended"),
        "{refused}"
    );

    // Both stop cleanly on SIGINT.
    runner.signal(Signal::SIGINT);
    platform.process.signal(Signal::SIGINT);
    let runner_exit = runner
        .wait_exit(Duration::from_secs(30))
        .expect("runner stops");
    let platform_exit = platform
        .process
        .wait_exit(Duration::from_secs(30))
        .expect("platform stops");
    assert!(
        runner_exit.success(),
        "runner: {}",
        log(&dir.path().join("edge-runner.log"))
    );
    assert!(
        platform_exit.success(),
        "platform: {}",
        log(&dir.path().join("platform.log"))
    );
}

#[test]
fn a_runner_without_a_valid_token_says_why_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let platform = start_platform(dir.path(), "stw_reg_right", &[]);
    let mut runner = start_runner(dir.path(), &platform.url, "stw_reg_wrong", "bad-runner");
    let exit = runner
        .wait_exit(Duration::from_secs(60))
        .expect("runner exits");
    assert!(!exit.success());
    let output = log(&dir.path().join("bad-runner.log"));
    assert!(
        output.contains("registration") && output.contains("unknown registration token"),
        "{output}"
    );
}

#[test]
fn slis_keep_running_while_the_platform_is_down_and_their_results_arrive_later() {
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::start();
    let token = "stw_reg_outage";
    let port = steward_testkit::free_port();
    let mut platform = start_platform_on(
        dir.path(),
        port,
        token,
        &["--location", "edge"],
        "platform-1.log",
    );
    let url = platform.url.clone();
    let (otlp, metrics) = (steward_testkit::free_port(), steward_testkit::free_port());
    let otlp_listen = format!("127.0.0.1:{otlp}");
    let metrics_listen = format!("127.0.0.1:{metrics}");
    let _runner = start_runner_with(
        dir.path(),
        &url,
        token,
        "edge-runner",
        &[
            "--otlp-listen",
            &otlp_listen,
            "--metrics-listen",
            &metrics_listen,
        ],
    );
    let tree = workspace(dir.path(), &target.base_url());
    assert_eq!(
        client(&url, &["workspace", "import", tree.to_str().unwrap()]).0,
        0
    );
    // An exporter on the runner's host pushes to its OTLP receiver: relayed to the platform.
    let python = steward_testkit::python_env(
        "otel-proto",
        &[
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ],
    );
    let push = |value: f64| push_external(&python, otlp, value);
    push(1.0);
    wait_until("a first SLI value", Duration::from_secs(180), || {
        let values = api(
            &url,
            "/api/v1/workspaces/e2e/slxs/web/sli-values?metric=value",
        );
        (!values.as_array().unwrap().is_empty()).then_some(())
    });

    // The platform goes away for a while; the runner keeps measuring.
    platform.process.signal(Signal::SIGKILL);
    platform
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("killed");
    let down_from = chrono::Utc::now();
    push(2.0);
    push(3.0);
    std::thread::sleep(Duration::from_secs(3));
    let runner_metrics = reqwest::blocking::get(format!("http://{metrics_listen}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        runner_metrics.contains("steward_runner_connected 0"),
        "{runner_metrics}"
    );
    let spooled: f64 = runner_metrics
        .lines()
        .find_map(|l| l.strip_prefix("steward_runner_relay_spool_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        spooled > 0.0,
        "relayed points are spooled while the platform is away"
    );
    std::thread::sleep(Duration::from_secs(12));
    let down_until = chrono::Utc::now();
    let platform = start_platform_on(
        dir.path(),
        port,
        token,
        &["--location", "edge"],
        "platform-2.log",
    );

    // What was measured while it was down arrives once it is back.
    let during = wait_until(
        "values measured during the outage",
        Duration::from_secs(90),
        || {
            let values = api(
                &platform.url,
                "/api/v1/workspaces/e2e/slxs/web/sli-values?metric=value&since=10m",
            );
            let during: Vec<Value> = values
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| {
                    let at: chrono::DateTime<chrono::Utc> =
                        v["time"].as_str().unwrap().parse().unwrap();
                    at > down_from && at < down_until
                })
                .cloned()
                .collect();
            (during.len() >= 2).then_some(during)
        },
    );
    let runs: std::collections::HashSet<&str> = during
        .iter()
        .map(|v| v["runId"].as_str().unwrap())
        .collect();
    assert_eq!(
        runs.len(),
        during.len(),
        "one value per run, each delivered once"
    );
    // The relayed points pushed during the outage came out of the runner's spool, once each.
    let external = wait_until("relayed points", Duration::from_secs(60), || {
        let values = api(
            &platform.url,
            "/api/v1/workspaces/e2e/slxs/web/sli-values?metric=external&since=10m",
        );
        let mut got: Vec<f64> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["value"].as_f64().unwrap())
            .collect();
        got.sort_by(f64::total_cmp);
        (got.len() >= 3).then_some(got)
    });
    assert_eq!(external, vec![1.0, 2.0, 3.0], "every relayed value once");
}

/// Pushes `web__sli__external = value` with the real OpenTelemetry SDK to a runner's receiver.
fn push_external(python: &std::path::Path, port: u16, value: f64) {
    let script = format!(
        r#"
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint="http://127.0.0.1:{port}/v1/metrics"), export_interval_millis=60000)
provider = MeterProvider(metric_readers=[reader])
provider.get_meter("t").create_gauge("web__sli__external").set({value}, {{"workspace": "e2e"}})
provider.shutdown()
"#
    );
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

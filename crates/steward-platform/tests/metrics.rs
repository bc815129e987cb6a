//! Metrics: OTLP ingest from the real OpenTelemetry Python SDK, runner relay batches, range
//! queries with steps, alerts, and the Prometheus exposition.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const ALERTING_SLI: &str = "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: demo--web\nspec:\n  locations: [local]\n  intervalSeconds: 5\n  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/sli.robot\n  configProvided: []\n  alerts:\n    warning:\n      operator: <\n      threshold: '1'\n    page:\n      operator: <\n      threshold: 0.5\n      for: 2s\n";

fn point(name: &str, value: f64, at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({ "name": name, "value": value, "kind": "gauge", "attributes": { "workspace": "demo" }, "time": at })
}

async fn relay(runner: &TestRunner, points: Vec<Value>) -> Value {
    let (status, body) = runner
        .post(
            "/api/v1/runner/metrics",
            &json!({ "batchId": Uuid::now_v7(), "points": points }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Runs a Python script with the real OpenTelemetry SDK against `url`.
fn export_with_sdk(
    python: &std::path::Path,
    module: &str,
    url: &str,
    compression: &str,
    value: f64,
) {
    let script = format!(
        r#"
import time
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from {module} import OTLPMetricExporter
kwargs = {{"endpoint": "{url}/v1/metrics"}}
if "{compression}" == "gzip":
    from opentelemetry.exporter.otlp.proto.http import Compression
    kwargs["compression"] = Compression.Gzip
reader = PeriodicExportingMetricReader(OTLPMetricExporter(**kwargs), export_interval_millis=60000)
provider = MeterProvider(metric_readers=[reader])
meter = provider.get_meter("test")
attrs = {{"workspace": "demo"}}
meter.create_gauge("web__sli").set({value}, attrs)
meter.create_histogram("web__sli__latency").record(0.25, attrs)
meter.create_histogram("web__sli__latency").record(0.75, attrs)
meter.create_counter("web__sli__requests").add(3, attrs)
meter.create_gauge("cpu_usage").set(0.9, attrs)
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

async fn the_real_opentelemetry_sdk_pushes_protobuf_gzip_and_json(db: TestDb) {
    let proto = steward_testkit::python_env(
        "otel-proto",
        &[
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ],
    );
    let json_env = steward_testkit::python_env(
        "otel-json",
        &[
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-json-http==0.66b1",
        ],
    );
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let url = p.url.clone();
    let (proto2, json2, url2) = (proto.clone(), json_env.clone(), url.clone());
    tokio::task::spawn_blocking(move || {
        export_with_sdk(
            &proto2,
            "opentelemetry.exporter.otlp.proto.http.metric_exporter",
            &url2,
            "none",
            0.5,
        );
        export_with_sdk(
            &proto2,
            "opentelemetry.exporter.otlp.proto.http.metric_exporter",
            &url2,
            "gzip",
            0.75,
        );
        export_with_sdk(
            &json2,
            "opentelemetry.exporter.otlp.json.http.metric_exporter",
            &url2,
            "none",
            1.0,
        );
    })
    .await
    .unwrap();

    let (_, values) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?metric=value")
        .await;
    let got: Vec<f64> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    assert_eq!(got, vec![0.5, 0.75, 1.0], "{values}");
    let (_, all) = p.get("/api/v1/workspaces/demo/slxs/web/sli-values").await;
    let latency: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["metric"] == "latency")
        .collect();
    assert_eq!(latency.len(), 3);
    assert_eq!(
        latency[0]["value"], 1.0,
        "a histogram point is stored as the sum of its observations"
    );
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|v| v["metric"] == "requests" && v["value"] == 3.0)
    );

    let metrics = p
        .http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"steward_otlp_points_total{outcome="unknown_metric"} 3"#),
        "{metrics}"
    );
}

async fn otlp_bodies_in_other_encodings_or_broken_are_refused(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let response = p
        .http
        .post(format!("{}/v1/metrics", p.url))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = p
        .http
        .post(format!("{}/v1/metrics", p.url))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff; 8])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("protobuf"));
}

async fn relayed_batches_are_stored_once_and_queried_by_step(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    let base = chrono::Utc::now() - chrono::Duration::minutes(30);
    let at = |minutes: i64| base + chrono::Duration::minutes(minutes);
    let batch = json!({
        "batchId": Uuid::now_v7(),
        "points": [point("web__sli", 1.0, at(0)), point("web__sli", 0.0, at(1)), point("web__sli", 0.5, at(11)),
                   point("web__sli__latency", 3.0, at(1)), point("other__sli", 1.0, at(1))],
    });
    let (_, first) = runner.post("/api/v1/runner/metrics", &batch).await;
    assert_eq!(
        (
            first["accepted"].clone(),
            first["rejected"].clone(),
            first["duplicate"].clone()
        ),
        (json!(4), json!(1), json!(false))
    );
    let (_, again) = runner.post("/api/v1/runner/metrics", &batch).await;
    assert_eq!(again["duplicate"], true);

    let since = base.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let path = format!(
        "/api/v1/workspaces/demo/slxs/web/sli-values?metric=value&since={}&step=10m&agg=avg",
        urlencode(&since)
    );
    let (status, buckets) = p.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{buckets}");
    let got: Vec<f64> = buckets
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        got,
        vec![0.5, 0.5],
        "two 10-minute buckets: avg(1, 0) and 0.5 — the retried batch counted once"
    );
    let path = format!(
        "/api/v1/workspaces/demo/slxs/web/sli-values?since={}&step=1h&agg=count",
        urlencode(&since)
    );
    let (_, counts) = p.get(&path).await;
    let value = counts
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["metric"] == "")
        .unwrap();
    assert_eq!(value["value"], 3.0);
    let (status, _) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?step=1ms")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?step=5m&agg=median")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Pushes arriving together share commits: every distinct point is stored once, every
/// batch id counts once however many copies race, and each push hears its own answer.
async fn concurrent_pushes_are_each_stored_once(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = std::sync::Arc::new(p.runner().await);
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    let mut sends = Vec::new();
    for b in 0..20i64 {
        let batch_id = Uuid::now_v7();
        let points: Vec<Value> = (0..50)
            .map(|i| {
                point(
                    "web__sli",
                    (b * 50 + i) as f64,
                    base + chrono::Duration::milliseconds(b * 50 + i),
                )
            })
            .collect();
        let body = json!({ "batchId": batch_id, "points": points });
        // Each batch is sent three times at once, as a relay retrying a lost answer would.
        for _ in 0..3 {
            let (runner, body) = (runner.clone(), body.clone());
            sends.push(tokio::spawn(async move {
                let (status, answer) = runner.post("/api/v1/runner/metrics", &body).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                (body["batchId"].clone(), answer["duplicate"] == false)
            }));
        }
    }
    let mut fresh_per_batch: std::collections::HashMap<String, usize> = Default::default();
    for send in sends {
        let (id, fresh) = send.await.unwrap();
        *fresh_per_batch.entry(id.to_string()).or_default() += usize::from(fresh);
    }
    assert_eq!(fresh_per_batch.len(), 20);
    assert!(
        fresh_per_batch.values().all(|n| *n == 1),
        "each batch id stored by exactly one of its copies: {fresh_per_batch:?}"
    );
    let since = urlencode(&base.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let (_, counts) = p
        .get(&format!(
            "/api/v1/workspaces/demo/slxs/web/sli-values?metric=value&since={since}&step=1h&agg=count"
        ))
        .await;
    let total: f64 = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .sum();
    assert_eq!(
        total, 1000.0,
        "20 batches of 50 points, none twice: {counts}"
    );
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}

/// The active alerts once `ready` holds for them: alerts are evaluated shortly after values
/// arrive, not within the push.
async fn alerts_when(p: &TestPlatform, what: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    steward_testkit::wait_until_async(what, Duration::from_secs(10), || async {
        let (_, active) = p.get("/api/v1/alerts").await;
        let active = active.as_array().unwrap().clone();
        ready(&active).then_some(active)
    })
    .await
}

fn levels(active: &[Value]) -> Vec<&str> {
    active
        .iter()
        .map(|a| a["level"].as_str().unwrap())
        .collect()
}

async fn thresholds_fire_after_their_hold_and_resolve(db: TestDb) {
    let p = start(&db, |c| c.alert_sweep = Duration::from_millis(300)).await;
    let mut files = web_files();
    files[2] = ("slxs/web/sli.yaml", ALERTING_SLI);
    p.import(&files).await;
    let runner = p.runner().await;
    let now = chrono::Utc::now;

    relay(&runner, vec![point("web__sli", 0.8, now())]).await;
    let active = alerts_when(&p, "the warning", |a| !a.is_empty()).await;
    assert_eq!(
        levels(&active),
        vec!["warning"],
        "a rule without `for` fires with the value"
    );
    assert_eq!(active[0]["value"], 0.8);

    relay(&runner, vec![point("web__sli", 0.3, now())]).await;
    let active = alerts_when(&p, "the warning to see 0.3", |a| {
        a.iter()
            .any(|a| a["level"] == "warning" && a["lastValue"] == 0.3)
    })
    .await;
    assert_eq!(
        levels(&active),
        vec!["warning"],
        "page holds only 2s later: {active:?}"
    );
    let active = alerts_when(&p, "the page alert", |a| {
        a.iter().any(|a| a["level"] == "page")
    })
    .await;
    let page = active.iter().find(|a| a["level"] == "page").unwrap();
    assert!(
        page["message"].as_str().unwrap().contains("< 0.5"),
        "{page}"
    );
    let warning = active.iter().find(|a| a["level"] == "warning").unwrap();
    assert_eq!(warning["lastValue"], 0.3);

    relay(&runner, vec![point("web__sli", 1.0, now())]).await;
    alerts_when(&p, "a healthy value to resolve both", <[Value]>::is_empty).await;
    let (_, all) = p.get("/api/v1/alerts?state=all").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|a| a["endedAt"].is_string())
    );
}

async fn an_sli_without_values_for_three_intervals_raises_no_data(db: TestDb) {
    let p = start(&db, |c| c.alert_sweep = Duration::from_millis(300)).await;
    let mut files = web_files();
    files[2] = ("slxs/web/sli.yaml", ALERTING_SLI);
    p.import(&files).await;
    let runner = p.runner().await;
    relay(&runner, vec![point("web__sli", 1.0, chrono::Utc::now())]).await;
    let active =
        steward_testkit::wait_until_async("a no-data alert", Duration::from_secs(30), || async {
            let (_, active) = p.get("/api/v1/alerts").await;
            let active = active.as_array().unwrap().clone();
            active
                .iter()
                .any(|a| a["level"] == "no_data")
                .then_some(active)
        })
        .await;
    let alert = active.iter().find(|a| a["level"] == "no_data").unwrap();
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("3 intervals of 5s"),
        "{alert}"
    );
    relay(&runner, vec![point("web__sli", 1.0, chrono::Utc::now())]).await;
    alerts_when(&p, "fresh data to resolve it", <[Value]>::is_empty).await;
}

async fn prometheus_exposition_has_sli_values_and_platform_gauges(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    relay(
        &runner,
        vec![
            point("web__sli", 0.25, chrono::Utc::now()),
            point("web__sli__latency", 12.0, chrono::Utc::now()),
        ],
    )
    .await;
    p.session("web", &[]).await;
    let response = p
        .http
        .get(format!("{}/metrics", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for needle in [
        r#"steward_sli_value{workspace="demo",slx="web",metric=""} 0.25"#,
        r#"steward_sli_value{workspace="demo",slx="web",metric="latency"} 12.0"#,
        "steward_runs_queued 1",
        "steward_runs_running 0",
        "# TYPE steward_lease_latency_seconds histogram",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

steward_testkit::on_both_databases!(
    the_real_opentelemetry_sdk_pushes_protobuf_gzip_and_json,
    otlp_bodies_in_other_encodings_or_broken_are_refused,
    relayed_batches_are_stored_once_and_queried_by_step,
    thresholds_fire_after_their_hold_and_resolve,
    an_sli_without_values_for_three_intervals_raises_no_data,
    prometheus_exposition_has_sli_values_and_platform_gauges,
    concurrent_pushes_are_each_stored_once,
);

//! The real Prometheus server (Debian's `prometheus` package) scrapes the platform's
//! `/metrics` and receives its remote write; the test asks Prometheus for the values.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use steward_platform::RemoteWriteConfig;
use steward_testkit::{Process, free_port, wait_until_async};
use uuid::Uuid;

fn prometheus_binary() -> PathBuf {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("the prometheus server is needed: apt-get install prometheus (.ci/run installs it)")
}

async fn query(http: &reqwest::Client, prometheus: &str, promql: &str) -> Vec<Value> {
    let response = http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await;
    let Ok(response) = response else {
        return Vec::new();
    };
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_metrics_and_receives_remote_write() {
    let binary = prometheus_binary();
    let prom_port = free_port();
    let prometheus = format!("http://127.0.0.1:{prom_port}");
    let p = start(&TestDb::Sqlite, |c| {
        c.remote_write = Some(RemoteWriteConfig {
            url: format!("{prometheus}/api/v1/write"),
            bearer_token: None,
        })
    })
    .await;
    p.import(&web_files()).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let target = p.url.trim_start_matches("http://");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: steward\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(binary);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg("--web.enable-remote-write-receiver");
    let _server = Process::spawn("prometheus", cmd, &dir.path().join("prometheus.log"));

    let runner = p.runner().await;
    let now = chrono::Utc::now();
    let points = json!([
        { "name": "web__sli", "value": 0.75, "kind": "gauge", "attributes": { "workspace": "demo" }, "time": now },
        { "name": "web__sli__latency", "value": 42.0, "kind": "gauge", "attributes": { "workspace": "demo" }, "time": now },
    ]);
    let (status, _) = runner
        .post(
            "/api/v1/runner/metrics",
            &json!({ "batchId": Uuid::now_v7(), "points": points }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);

    let http = reqwest::Client::new();
    let scraped = wait_until_async(
        "Prometheus to scrape the platform",
        Duration::from_secs(60),
        || {
            let http = http.clone();
            let prometheus = prometheus.clone();
            async move {
                let result = query(
                    &http,
                    &prometheus,
                    r#"steward_sli_value{job="steward",slx="web",metric=""}"#,
                )
                .await;
                result.first().cloned()
            }
        },
    )
    .await;
    assert_eq!(scraped["value"][1], "0.75", "{scraped}");
    assert_eq!(scraped["metric"]["workspace"], "demo");

    let written = wait_until_async("remote-written samples", Duration::from_secs(60), || {
        let http = http.clone();
        let prometheus = prometheus.clone();
        async move {
            let result = query(
                &http,
                &prometheus,
                r#"steward_sli_value{job="",slx="web",metric="latency"}"#,
            )
            .await;
            result.first().cloned()
        }
    })
    .await;
    assert_eq!(written["value"][1], "42", "{written}");

    let text = http
        .get(format!("{}/metrics", p.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"steward_remote_write_points_total{outcome="sent"} 2"#),
        "{text}"
    );
}

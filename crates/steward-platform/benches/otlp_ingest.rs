//! OTLP ingest benchmark: points per second through the platform's `/v1/metrics` (decode,
//! map to SLI series, store in SQLite with rollups), and the latency from a push to the value
//! being returned by the query API.
//!
//!     cargo bench -p steward-platform --bench otlp_ingest
//!
//! The platform runs on a single-threaded runtime (one core for the HTTP server and the
//! ingest path; SQLite's own worker thread does the writing), the load comes from another
//! thread over loopback.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use prost::Message;
use std::time::{Duration, Instant};
use steward_model::otlp::{Encoding, decode_request, for_each_point};
use steward_platform::store::{Batch, Sample, SeriesKey, Store};
use steward_platform::{Platform, PlatformConfig};

const SLXS: usize = 100;
const POINTS_PER_REQUEST: usize = 2_000;

fn workspace() -> std::collections::BTreeMap<String, String> {
    let mut files = std::collections::BTreeMap::new();
    files.insert(
        "workspace.yaml".into(),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: bench\n".into(),
    );
    for i in 0..SLXS {
        files.insert(
            format!("slxs/slx{i}/slx.yaml"),
            format!("apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: bench--slx{i}\n"),
        );
        files.insert(
            format!("slxs/slx{i}/sli.yaml"),
            format!("apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: bench--slx{i}\nspec:\n  locations: [nowhere]\n  intervalSeconds: 60\n  codeBundle: {{repoUrl: builtin://steward, pathToRobot: codebundles/x/sli.robot}}\n"),
        );
    }
    files
}

/// One export request: `POINTS_PER_REQUEST` gauge points spread over the SLXs, value and
/// sub-metrics, one millisecond apart from `t0` (nanoseconds) on, so no point repeats another.
fn request(t0: u64) -> Vec<u8> {
    let workspace = KeyValue {
        key: "workspace".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("bench".into())),
        }),
        ..Default::default()
    };
    let mut metrics = Vec::new();
    let per_metric = 10;
    for m in 0..POINTS_PER_REQUEST / per_metric {
        let slx = m % SLXS;
        let name = if m % 2 == 0 {
            format!("slx{slx}__sli")
        } else {
            format!("slx{slx}__sli__latency")
        };
        let data_points = (0..per_metric)
            .map(|i| NumberDataPoint {
                attributes: vec![workspace.clone()],
                time_unix_nano: t0 + (m * per_metric + i) as u64 * 1_000_000,
                value: Some(number_data_point::Value::AsDouble((m + i) as f64 / 7.0)),
                ..Default::default()
            })
            .collect();
        metrics.push(Metric {
            name,
            data: Some(metric::Data::Gauge(Gauge { data_points })),
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The batch the mapping of `request(t0 * 1_000_000)` gives, built directly.
fn batch(t0_ms: i64) -> Batch {
    let mut batch = Batch::default();
    let mut index = std::collections::HashMap::new();
    let per_metric = 10;
    for m in 0..POINTS_PER_REQUEST / per_metric {
        let metric = if m % 2 == 0 { "" } else { "latency" };
        let key = SeriesKey {
            workspace: "bench".into(),
            slx: format!("slx{}", m % SLXS),
            metric: metric.into(),
        };
        let key = batch.key_index(key, &mut index);
        for i in 0..per_metric {
            // One point per millisecond apart so that none repeats a stored one.
            let time = t0_ms + (m * per_metric + i) as i64;
            batch.samples.push(Sample {
                key,
                time,
                value: (m + i) as f64 / 7.0,
                run: None,
            });
        }
    }
    batch
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let data_dir = dir.path().to_path_buf();
    let server = std::thread::Builder::new()
        .name("platform".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut config = PlatformConfig::new(data_dir);
                config.listen = ([127, 0, 0, 1], 0).into();
                let platform = Platform::start(config).await.unwrap();
                addr_tx.send(platform.addr()).unwrap();
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    let addr = addr_rx.recv().unwrap();
    let url = format!("http://{addr}");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async move {
        let http = reqwest::Client::new();
        let import = serde_json::json!({ "files": workspace() });
        let response = http.put(format!("{url}/api/v1/workspaces/bench")).json(&import).send().await.unwrap();
        assert!(response.status().is_success());

        // The stages alone, for reference: decoding a request and walking its points, and
        // storing prepared batches.
        let body = request(1_700_000_000_000_000_000);
        let started = Instant::now();
        let mut decoded = 0;
        while started.elapsed() < Duration::from_secs(2) {
            let request = decode_request(&body, Encoding::Protobuf).unwrap();
            for_each_point(&request, |p| {
                decoded += 1;
                std::hint::black_box(p.attribute("workspace"));
            });
        }
        println!("decode only:        {:>10.0} points/s", decoded as f64 / started.elapsed().as_secs_f64());
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", store_dir.path().join("s.db").display()))
            .await
            .unwrap();
        let batches: Vec<Batch> = (0..200).map(|r| batch(1_700_000_000_000 + r * 2_000)).collect();
        let started = Instant::now();
        for batch in &batches {
            store.insert_batch(None, batch).await.unwrap();
        }
        let stored = batches.len() * POINTS_PER_REQUEST;
        println!(
            "store only:         {:>10.0} points/s",
            stored as f64 / started.elapsed().as_secs_f64()
        );
        store.close().await;

        // Full ingest over HTTP, requests prepared beforehand: one sender waiting for each
        // answer, then several at once (as many runners pushing), whose pushes share commits.
        let mut next = 0u64;
        for senders in [1usize, 8] {
            let bodies: Vec<Vec<u8>> = (0..400)
                .map(|_| {
                    next += 1;
                    request(1_700_000_000_000_000_000 + next * 2_000_000_000)
                })
                .collect();
            // Sent oldest first, as pushes arrive.
            let queue = std::sync::Arc::new(std::sync::Mutex::new(
                bodies.into_iter().rev().collect::<Vec<_>>(),
            ));
            let cpu_before = platform_cpu_seconds();
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..senders {
                let (queue, http, url) = (queue.clone(), http.clone(), url.clone());
                tasks.push(tokio::spawn(async move {
                    let mut sent = 0;
                    loop {
                        let Some(body) = queue.lock().unwrap().pop() else { break };
                        let response = http
                            .post(format!("{url}/v1/metrics"))
                            .header("content-type", "application/x-protobuf")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert!(response.status().is_success());
                        sent += POINTS_PER_REQUEST;
                    }
                    sent
                }));
            }
            let mut sent = 0;
            for task in tasks {
                sent += task.await.unwrap();
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cores = (platform_cpu_seconds() - cpu_before) / elapsed;
            println!(
                "ingest, {senders} sender(s): {:>10.0} points/s  ({sent} points, {POINTS_PER_REQUEST} per request, {elapsed:.2} s; platform busy {cores:.2} cores)",
                sent as f64 / elapsed
            );
        }

        // Push-to-queryable latency: one point, then poll the query API until it is there.
        let mut latencies = Vec::new();
        for i in 0..200u64 {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
            let mut one = ExportMetricsServiceRequest::decode(request(now).as_slice()).unwrap();
            let metric = &mut one.resource_metrics[0].scope_metrics[0].metrics;
            metric.truncate(1);
            if let Some(metric::Data::Gauge(g)) = &mut metric[0].data {
                g.data_points.truncate(1);
                g.data_points[0].value = Some(number_data_point::Value::AsDouble(1000.0 + i as f64));
            }
            let started = Instant::now();
            http.post(format!("{url}/v1/metrics"))
                .header("content-type", "application/x-protobuf")
                .body(one.encode_to_vec())
                .send()
                .await
                .unwrap();
            loop {
                let values: serde_json::Value = http
                    .get(format!("{url}/api/v1/workspaces/bench/slxs/slx0/sli-values?metric=value&since=10s"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if values.as_array().unwrap().iter().any(|v| v["value"] == 1000.0 + i as f64) {
                    break;
                }
            }
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!("push to queryable:  p50 {:?}  p99 {:?}", pct(50), pct(99));
    });
    drop(server);
}

/// CPU seconds used so far by the platform's threads: its runtime thread and SQLite's worker
/// threads (the senders' threads are not counted).
fn platform_cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ").and_then(|(head, rest)| {
            head.split_once(" (")
                .map(|(_, name)| (name.to_string(), rest))
        }) else {
            continue;
        };
        if name == "platform" || name.starts_with("sqlx-sqlite") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name.
            ticks +=
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        }
    }
    ticks as f64 / ticks_per_second
}

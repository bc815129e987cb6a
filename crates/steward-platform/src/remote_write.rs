//! Prometheus remote write (protocol 1.0: protobuf `WriteRequest`, snappy block compression)
//! of SLI points as `steward_sli_value{workspace, slx, metric}`, to any compatible endpoint
//! (Prometheus with `--web.enable-remote-write-receiver`, Mimir, Thanos, VictoriaMetrics...).
//!
//! Points are buffered (bounded: the oldest are dropped first and counted) and sent every few
//! seconds; a failed send is retried with backoff, a refused one (4xx) is dropped.

use crate::store::{Batch, SeriesKey};
use crate::telemetry::Telemetry;
use prost::Message;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// The endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer_token: Option<String>,
}

/// Points waiting; more than this and the oldest go.
const BUFFER: usize = 200_000;
/// Points per request.
const BATCH: usize = 5_000;
/// How often the buffer is flushed.
const PERIOD: Duration = Duration::from_secs(2);

#[derive(Clone, PartialEq, Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

/// A point waiting to be sent.
#[derive(Debug, Clone)]
struct Pending {
    key: Arc<SeriesKey>,
    value: f64,
    time: i64,
}

/// The exporter's handle: push points, they go out in the background.
pub(crate) struct RemoteWrite {
    buffer: Mutex<VecDeque<Pending>>,
    wake: Notify,
    telemetry: Arc<Telemetry>,
}

impl RemoteWrite {
    /// Starts the sender; it stops with `stop`.
    pub(crate) fn start(
        config: RemoteWriteConfig,
        telemetry: Arc<Telemetry>,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let exporter = Arc::new(RemoteWrite {
            buffer: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            telemetry,
        });
        tokio::spawn(send_forever(exporter.clone(), config, stop));
        exporter
    }

    /// Queues points for sending.
    pub(crate) fn push(&self, batch: &Batch) {
        let keys: Vec<Arc<SeriesKey>> = batch.keys.iter().cloned().map(Arc::new).collect();
        let mut buffer = self.buffer.lock().expect("poisoned");
        buffer.extend(batch.samples.iter().map(|s| Pending {
            key: keys[s.key as usize].clone(),
            value: s.value,
            time: s.time,
        }));
        let excess = buffer.len().saturating_sub(BUFFER);
        if excess > 0 {
            buffer.drain(..excess);
            self.telemetry.remote_write("dropped_buffer_full", excess);
        }
        if buffer.len() >= BATCH {
            self.wake.notify_one();
        }
    }
}

/// Encodes points as a snappy-compressed `WriteRequest`: one series per (workspace, SLX,
/// metric), labels sorted, samples in time order.
fn encode(points: &[Pending]) -> Vec<u8> {
    let mut series: BTreeMap<&SeriesKey, Vec<Sample>> = BTreeMap::new();
    for p in points {
        series.entry(&p.key).or_default().push(Sample {
            value: p.value,
            timestamp: p.time,
        });
    }
    let timeseries = series
        .into_iter()
        .map(|(key, mut samples)| {
            samples.sort_by_key(|s| s.timestamp);
            let label = |name: &str, value: &str| Label {
                name: name.into(),
                value: value.into(),
            };
            TimeSeries {
                labels: vec![
                    label("__name__", "steward_sli_value"),
                    label("metric", &key.metric),
                    label("slx", &key.slx),
                    label("workspace", &key.workspace),
                ],
                samples,
            }
        })
        .collect();
    let body = WriteRequest { timeseries }.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("snappy compresses any input")
}

async fn send_forever(
    exporter: Arc<RemoteWrite>,
    config: RemoteWriteConfig,
    stop: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds");
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = exporter.wake.notified() => {}
            _ = tokio::time::sleep(PERIOD) => {}
        }
        loop {
            let batch: Vec<Pending> = {
                let mut buffer = exporter.buffer.lock().expect("poisoned");
                let n = buffer.len().min(BATCH);
                buffer.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            let mut request = client
                .post(&config.url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                .header(reqwest::header::CONTENT_ENCODING, "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(encode(&batch));
            if let Some(token) = &config.bearer_token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    failures = 0;
                    exporter.telemetry.remote_write("sent", batch.len());
                }
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    tracing::warn!(%status, error = %text.trim(), points = batch.len(), "Remote write refused points; dropped.");
                    exporter.telemetry.remote_write("refused", batch.len());
                }
                outcome => {
                    let error = match outcome {
                        Ok(response) => response.status().to_string(),
                        Err(error) => error.to_string(),
                    };
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(url = %config.url, %error, failures, "Remote write failed; retrying.");
                    }
                    // Back in front, to keep per-series time order.
                    {
                        let mut buffer = exporter.buffer.lock().expect("poisoned");
                        for point in batch.into_iter().rev() {
                            buffer.push_front(point);
                        }
                    }
                    let wait = Duration::from_secs(1 << failures.min(5));
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_become_sorted_series_with_sorted_labels() {
        let point = |slx: &str, metric: &str, value: f64, time: i64| Pending {
            key: Arc::new(SeriesKey {
                workspace: "ws".into(),
                slx: slx.into(),
                metric: metric.into(),
            }),
            value,
            time,
        };
        let body = encode(&[
            point("web", "", 1.0, 20),
            point("web", "", 0.5, 10),
            point("db", "lag", 3.0, 15),
        ]);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.timeseries.len(), 2);
        let web = request
            .timeseries
            .iter()
            .find(|t| t.labels.iter().any(|l| l.value == "web"))
            .unwrap();
        let names: Vec<&str> = web.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["__name__", "metric", "slx", "workspace"]);
        let times: Vec<i64> = web.samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, vec![10, 20]);
    }
}

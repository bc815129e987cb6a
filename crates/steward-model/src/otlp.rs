//! OTLP/HTTP metrics: decoding an `ExportMetricsServiceRequest` into [`MetricPoint`]s and
//! encoding the response every exporter expects, in protobuf or JSON.

use crate::metrics::{MetricKind, MetricPoint};
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;
use std::collections::BTreeMap;

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header, if it is one of the two.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A body that is not a valid export request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Protobuf decoding failed.
    #[error("not a protobuf ExportMetricsServiceRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// JSON decoding failed.
    #[error("not a JSON ExportMetricsServiceRequest: {0}")]
    Json(#[from] serde_json::Error),
}

/// Decodes an export request into points. Summaries and exponential histograms are skipped
/// and counted in the second value, so the caller can report what it did not keep.
pub fn decode_metrics(
    body: &[u8],
    encoding: Encoding,
) -> Result<(Vec<MetricPoint>, usize), DecodeError> {
    let request = match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    };
    Ok(points(request))
}

/// The success response body (an `ExportMetricsServiceResponse`) in `encoding`; with
/// `rejected > 0` it reports a partial success with `message`, as OTLP asks.
pub fn success_response(encoding: Encoding, rejected: usize, message: &str) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    let partial_success = (rejected > 0).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: rejected as i64,
        error_message: message.to_string(),
    });
    let response = ExportMetricsServiceResponse { partial_success };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json if rejected == 0 => b"{}".to_vec(),
        Encoding::Json => serde_json::to_vec(&response).expect("the response serializes"),
    }
}

fn points(request: ExportMetricsServiceRequest) -> (Vec<MetricPoint>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for scope_metrics in request
        .resource_metrics
        .into_iter()
        .flat_map(|r| r.scope_metrics)
    {
        for metric in scope_metrics.metrics {
            let name = metric.name;
            match metric.data {
                Some(Data::Gauge(g)) => {
                    out.extend(number_points(&name, MetricKind::Gauge, g.data_points))
                }
                Some(Data::Sum(s)) => {
                    out.extend(number_points(&name, MetricKind::Sum, s.data_points))
                }
                Some(Data::Histogram(h)) => {
                    out.extend(h.data_points.into_iter().map(|p| MetricPoint {
                        name: name.clone(),
                        value: p.sum.unwrap_or(0.0),
                        kind: MetricKind::Histogram,
                        count: Some(p.count),
                        attributes: attributes(p.attributes),
                        time: time(p.time_unix_nano),
                    }))
                }
                Some(Data::ExponentialHistogram(h)) => skipped += h.data_points.len(),
                Some(Data::Summary(s)) => skipped += s.data_points.len(),
                None => {}
            }
        }
    }
    (out, skipped)
}

fn number_points(
    name: &str,
    kind: MetricKind,
    points: Vec<opentelemetry_proto::tonic::metrics::v1::NumberDataPoint>,
) -> impl Iterator<Item = MetricPoint> + '_ {
    points.into_iter().filter_map(move |p| {
        let value = match p.value? {
            number_data_point::Value::AsDouble(v) => v,
            number_data_point::Value::AsInt(v) => v as f64,
        };
        Some(MetricPoint {
            name: name.to_string(),
            value,
            kind,
            count: None,
            attributes: attributes(p.attributes),
            time: time(p.time_unix_nano),
        })
    })
}

fn time(unix_nanos: u64) -> DateTime<Utc> {
    if unix_nanos == 0 {
        return Utc::now();
    }
    DateTime::from_timestamp_nanos(unix_nanos.min(i64::MAX as u64) as i64)
}

fn attributes(kvs: Vec<KeyValue>) -> BTreeMap<String, String> {
    kvs.into_iter()
        .map(|kv| (kv.key, kv.value.map(any_value_text).unwrap_or_default()))
        .collect()
}

fn any_value_text(value: AnyValue) -> String {
    match value.value {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex::encode(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.into_iter().map(any_value_text).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> = kv
                .values
                .into_iter()
                .map(|kv| {
                    format!(
                        "{}={}",
                        kv.key,
                        kv.value.map(any_value_text).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };

    fn request() -> ExportMetricsServiceRequest {
        let point = |v: f64| NumberDataPoint {
            attributes: vec![KeyValue {
                key: "workspace".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("ws".into())),
                }),
                ..Default::default()
            }],
            time_unix_nano: 1_700_000_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "web__sli".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![point(0.5)],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "web__sli__latency".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![point(12.0)],
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn protobuf_and_json_decode_to_the_same_points() {
        let (from_proto, skipped) =
            decode_metrics(&request().encode_to_vec(), Encoding::Protobuf).unwrap();
        assert_eq!(skipped, 0);
        let json = serde_json::to_vec(&request()).unwrap();
        let (from_json, _) = decode_metrics(&json, Encoding::Json).unwrap();
        assert_eq!(from_proto, from_json);
        assert_eq!(from_proto.len(), 2);
        assert_eq!(from_proto[0].value, 0.5);
        assert_eq!(from_proto[0].attributes["workspace"], "ws");
        assert_eq!(from_proto[0].time.timestamp(), 1_700_000_000);
    }

    #[test]
    fn hand_written_otlp_json_with_string_ints_decodes() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"c","sum":{"isMonotonic":true,"aggregationTemporality":2,"dataPoints":[{"asInt":"42","timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;
        let (points, _) = decode_metrics(body, Encoding::Json).unwrap();
        assert_eq!(points[0].value, 42.0);
        assert_eq!(points[0].kind, MetricKind::Sum);
    }

    #[test]
    fn garbage_is_refused_with_the_encoding_named() {
        let err = decode_metrics(b"\xff\xff\xff", Encoding::Protobuf).unwrap_err();
        assert!(err.to_string().contains("protobuf"));
        let err = decode_metrics(b"{", Encoding::Json).unwrap_err();
        assert!(err.to_string().contains("JSON"));
    }

    #[test]
    fn content_types_are_recognised() {
        assert_eq!(
            Encoding::from_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
    }
}

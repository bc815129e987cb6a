//! OTLP/HTTP metrics: decoding an `ExportMetricsServiceRequest` into [`MetricPoint`]s and
//! encoding the response every exporter expects, in protobuf or JSON.

use crate::metrics::{MetricKind, MetricPoint};
use chrono::{DateTime, Utc};
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;
use std::borrow::Cow;
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
    let request = decode_request(body, encoding)?;
    let mut points = Vec::new();
    let skipped = for_each_point(&request, |p| points.push(p.to_owned()));
    Ok((points, skipped))
}

/// Decodes the body of an export request.
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    Ok(match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}

/// A data point borrowed from a decoded request: what ingest reads without copying.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    /// The metric's name.
    pub name: &'a str,
    /// Data kind.
    pub kind: MetricKind,
    /// The value (the sum of observations for histograms).
    pub value: f64,
    /// Number of observations, for histograms.
    pub count: Option<u64>,
    /// Data-point attributes.
    pub attributes: &'a [KeyValue],
    /// Observation time in nanoseconds since the epoch; 0 when the exporter left it out.
    pub unix_nanos: u64,
}

impl<'a> PointRef<'a> {
    /// The attribute `key` as text (non-string values in their text form).
    pub fn attribute(&self, key: &str) -> Option<Cow<'a, str>> {
        let value = self
            .attributes
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .as_ref()?;
        Some(match &value.value {
            Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
            _ => Cow::Owned(any_value_text(value.clone())),
        })
    }

    /// The observation time (now, when the exporter sent none).
    pub fn time(&self) -> DateTime<Utc> {
        time(self.unix_nanos)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> MetricPoint {
        MetricPoint {
            name: self.name.to_string(),
            value: self.value,
            kind: self.kind,
            count: self.count,
            attributes: attributes(self.attributes),
            time: self.time(),
        }
    }
}

/// Calls `visit` for every gauge, sum and histogram point of `request`; returns how many
/// summary and exponential-histogram points were skipped (they have no single value).
pub fn for_each_point<'a>(
    request: &'a ExportMetricsServiceRequest,
    mut visit: impl FnMut(PointRef<'a>),
) -> usize {
    let mut skipped = 0;
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    for metric in metrics {
        let name = metric.name.as_str();
        let (kind, numbers) = match &metric.data {
            Some(Data::Gauge(g)) => (MetricKind::Gauge, &g.data_points),
            Some(Data::Sum(s)) => (MetricKind::Sum, &s.data_points),
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    visit(PointRef {
                        name,
                        kind: MetricKind::Histogram,
                        value: p.sum.unwrap_or(0.0),
                        count: Some(p.count),
                        attributes: &p.attributes,
                        unix_nanos: p.time_unix_nano,
                    });
                }
                continue;
            }
            Some(Data::ExponentialHistogram(h)) => {
                skipped += h.data_points.len();
                continue;
            }
            Some(Data::Summary(s)) => {
                skipped += s.data_points.len();
                continue;
            }
            None => continue,
        };
        for p in numbers {
            let value = match p.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                Some(number_data_point::Value::AsInt(v)) => v as f64,
                None => continue,
            };
            visit(PointRef {
                name,
                kind,
                value,
                count: None,
                attributes: &p.attributes,
                unix_nanos: p.time_unix_nano,
            });
        }
    }
    skipped
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

fn time(unix_nanos: u64) -> DateTime<Utc> {
    if unix_nanos == 0 {
        return Utc::now();
    }
    DateTime::from_timestamp_nanos(unix_nanos.min(i64::MAX as u64) as i64)
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let text = kv.value.clone().map(any_value_text).unwrap_or_default();
            (kv.key.clone(), text)
        })
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

//! Metric points as the platform stores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The OTLP data kind a point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A gauge: the value as set (what `Push Metric` sends by default).
    Gauge,
    /// A sum (counter): the cumulative or delta value as sent.
    Sum,
    /// A histogram: `value` is the sum of observations, `count` their number.
    Histogram,
}

/// One data point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// Full metric name, e.g. `web__sli__latency`.
    pub name: String,
    /// The value (see [`MetricKind`] for histograms).
    pub value: f64,
    /// Data kind.
    pub kind: MetricKind,
    /// Number of observations, for histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Data-point attributes (`workspace`, labels given to `Push Metric`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Observation time.
    pub time: DateTime<Utc>,
}

impl MetricPoint {
    /// The sub-metric name relative to the SLI metric `base`: `None` for the SLI value itself,
    /// `Some(sub)` for `<base>__<sub>`, and `None` with `false` for unrelated metrics.
    pub fn sub_name<'a>(&'a self, base: &str) -> Option<Option<&'a str>> {
        if self.name == base {
            return Some(None);
        }
        self.name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix("__"))
            .map(Some)
    }
}

/// The SLI value among `points`: the last point named exactly `base`.
pub fn sli_value(points: &[MetricPoint], base: &str) -> Option<f64> {
    points
        .iter()
        .rev()
        .find(|p| p.name == base)
        .map(|p| p.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, value: f64) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            value,
            kind: MetricKind::Gauge,
            count: None,
            attributes: BTreeMap::new(),
            time: Utc::now(),
        }
    }

    #[test]
    fn sli_value_is_the_last_unsuffixed_point() {
        let points = [
            point("web__sli", 0.5),
            point("web__sli__latency", 12.0),
            point("web__sli", 1.0),
        ];
        assert_eq!(sli_value(&points, "web__sli"), Some(1.0));
        assert_eq!(points[1].sub_name("web__sli"), Some(Some("latency")));
        assert_eq!(points[0].sub_name("web__sli"), Some(None));
        assert_eq!(point("web__slix", 1.0).sub_name("web__sli"), None);
        assert_eq!(sli_value(&points[1..2], "web__sli"), None);
    }
}

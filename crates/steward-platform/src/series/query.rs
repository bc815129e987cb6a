//! Range queries with a step: points grouped into buckets of `step` from the start of the
//! range, one aggregate per bucket and metric.

use crate::store::{Bucket, ROLLUP_MS};
use std::collections::BTreeMap;
use steward_model::api::SliValue;

/// How the points of one bucket become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Aggregation {
    /// Mean.
    Avg,
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Latest.
    Last,
    /// Sum.
    Sum,
    /// Number of points.
    Count,
}

impl Aggregation {
    fn of(self, b: &Bucket) -> f64 {
        match self {
            Aggregation::Avg => b.sum / b.count.max(1) as f64,
            Aggregation::Min => b.min,
            Aggregation::Max => b.max,
            Aggregation::Last => b.last.0,
            Aggregation::Sum => b.sum,
            Aggregation::Count => b.count as f64,
        }
    }
}

fn finish(
    buckets: BTreeMap<(String, i64), Bucket>,
    since: i64,
    step: i64,
    agg: Aggregation,
) -> Vec<SliValue> {
    let mut out: Vec<SliValue> = buckets
        .into_iter()
        .map(|((metric, index), b)| SliValue {
            metric,
            value: agg.of(&b),
            time: chrono::DateTime::from_timestamp_millis(since + index * step).unwrap_or_default(),
            run_id: None,
        })
        .collect();
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.metric.cmp(&b.metric)));
    out
}

/// Aggregates raw points.
pub(crate) fn aggregate_raw(
    values: &[SliValue],
    since: i64,
    step: i64,
    agg: Aggregation,
) -> Vec<SliValue> {
    let mut buckets: BTreeMap<(String, i64), Bucket> = BTreeMap::new();
    for v in values {
        let t = v.time.timestamp_millis();
        let one = Bucket {
            count: 1,
            sum: v.value,
            min: v.value,
            max: v.value,
            last: (v.value, t),
        };
        buckets
            .entry((v.metric.clone(), (t - since) / step))
            .and_modify(|b| b.merge(&one))
            .or_insert(one);
    }
    finish(buckets, since, step, agg)
}

/// Aggregates rollup buckets (a step shorter than a rollup bucket gets the bucket's width).
pub(crate) fn aggregate_rollups(
    rows: &[(String, i64, Bucket)],
    since: i64,
    step: i64,
    agg: Aggregation,
) -> Vec<SliValue> {
    let step = step.max(ROLLUP_MS);
    let mut buckets: BTreeMap<(String, i64), Bucket> = BTreeMap::new();
    for (metric, start, bucket) in rows {
        let index = (start - since).max(0) / step;
        buckets
            .entry((metric.clone(), index))
            .and_modify(|b| b.merge(bucket))
            .or_insert(*bucket);
    }
    finish(buckets, since, step, agg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(metric: &str, ms: i64, v: f64) -> SliValue {
        SliValue {
            metric: metric.into(),
            value: v,
            time: chrono::DateTime::from_timestamp_millis(ms).unwrap(),
            run_id: None,
        }
    }

    #[test]
    fn raw_points_fall_into_steps_from_the_range_start() {
        let values = [
            value("", 1000, 1.0),
            value("", 1500, 0.0),
            value("", 2100, 0.5),
            value("x", 1200, 7.0),
        ];
        let avg = aggregate_raw(&values, 1000, 1000, Aggregation::Avg);
        let got: Vec<(i64, &str, f64)> = avg
            .iter()
            .map(|v| (v.time.timestamp_millis(), v.metric.as_str(), v.value))
            .collect();
        assert_eq!(
            got,
            vec![(1000, "", 0.5), (1000, "x", 7.0), (2000, "", 0.5)]
        );
        let last = aggregate_raw(&values, 1000, 1000, Aggregation::Last);
        assert_eq!(last[0].value, 0.0);
        let count = aggregate_raw(&values, 0, 10_000, Aggregation::Count);
        assert_eq!(
            count.iter().find(|v| v.metric.is_empty()).unwrap().value,
            3.0
        );
    }

    #[test]
    fn rollups_merge_into_wider_steps() {
        let b = |v: f64, t: i64| Bucket {
            count: 2,
            sum: v * 2.0,
            min: v,
            max: v,
            last: (v, t),
        };
        let rows = vec![
            (String::new(), 0, b(1.0, 1)),
            (String::new(), ROLLUP_MS, b(0.0, ROLLUP_MS + 1)),
        ];
        let hour = aggregate_rollups(&rows, 0, 12 * ROLLUP_MS, Aggregation::Avg);
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].value, 0.5);
        let fine = aggregate_rollups(&rows, 0, 1000, Aggregation::Max);
        assert_eq!(
            fine.len(),
            2,
            "a step below the bucket width gets the bucket width"
        );
    }
}

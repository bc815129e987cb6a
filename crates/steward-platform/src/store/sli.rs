//! SLI series: raw points per (workspace, SLX, metric), and five-minute rollups (count, sum,
//! min, max, last) that outlive the raw points for long ranges.

use super::{Store, json, now_ms, time, uuid};
use crate::error::ApiResult;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use std::collections::BTreeMap;
use steward_model::api::SliValue;
use steward_model::names::sli_metric_name;
use steward_model::run::RunResult;
use steward_model::workspace::SliSpec;
use uuid::Uuid;

/// Width of a rollup bucket.
pub const ROLLUP_MS: i64 = 5 * 60 * 1000;

/// SQLite allows 32766 bound parameters per statement; rows are inserted in chunks below it.
const ROWS_PER_STATEMENT: usize = 4000;

/// One point of an SLI series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// Empty for the SLI value, the sub-metric name otherwise.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// The run that pushed it, when known.
    pub run: Option<Uuid>,
}

/// The SLI points of a run's result (points named after another SLX are left out).
pub fn run_points(workspace: &str, slx: &str, run: Uuid, result: &RunResult) -> Vec<SeriesPoint> {
    let base = sli_metric_name(slx);
    result
        .metrics
        .iter()
        .filter_map(|point| {
            let sub = point.sub_name(&base)?;
            Some(SeriesPoint {
                workspace: workspace.to_string(),
                slx: slx.to_string(),
                metric: sub.unwrap_or("").to_string(),
                value: point.value,
                time: point.time.timestamp_millis(),
                run: Some(run),
            })
        })
        .collect()
}

/// An aggregation over one rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Number of points.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// The latest value and its time.
    pub last: (f64, i64),
}

impl Bucket {
    fn of(value: f64, time: i64) -> Self {
        Bucket {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: (value, time),
        }
    }

    /// Folds another bucket (or point) into this one.
    pub fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last.1 >= self.last.1 {
            self.last = other.last;
        }
    }
}

/// Writes points and folds them into their rollup buckets, in the caller's transaction.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    points: &[SeriesPoint],
) -> ApiResult<()> {
    for chunk in points.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sli_values (workspace, slx, metric, value, time, run_id) ",
        );
        insert.push_values(chunk, |mut row, p| {
            row.push_bind(&p.workspace)
                .push_bind(&p.slx)
                .push_bind(&p.metric)
                .push_bind(p.value)
                .push_bind(p.time)
                .push_bind(p.run.map(|r| r.to_string()));
        });
        insert.build().execute(&mut **tx).await?;
    }
    let mut buckets: BTreeMap<(&str, &str, &str, i64), Bucket> = BTreeMap::new();
    for p in points {
        let key = (
            p.workspace.as_str(),
            p.slx.as_str(),
            p.metric.as_str(),
            p.time - p.time.rem_euclid(ROLLUP_MS),
        );
        let point = Bucket::of(p.value, p.time);
        buckets
            .entry(key)
            .and_modify(|b| b.merge(&point))
            .or_insert(point);
    }
    let buckets: Vec<_> = buckets.into_iter().collect();
    for chunk in buckets.chunks(ROWS_PER_STATEMENT / 2) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sli_rollups (workspace, slx, metric, bucket, count, sum, min, max, last, last_time) ",
        );
        upsert.push_values(chunk, |mut row, ((ws, slx, metric, bucket), b)| {
            row.push_bind(*ws)
                .push_bind(*slx)
                .push_bind(*metric)
                .push_bind(*bucket)
                .push_bind(b.count as i64)
                .push_bind(b.sum)
                .push_bind(b.min)
                .push_bind(b.max)
                .push_bind(b.last.0)
                .push_bind(b.last.1);
        });
        upsert.push(
            " ON CONFLICT (workspace, slx, metric, bucket) DO UPDATE SET
               count = sli_rollups.count + excluded.count,
               sum = sli_rollups.sum + excluded.sum,
               min = MIN(sli_rollups.min, excluded.min),
               max = MAX(sli_rollups.max, excluded.max),
               last = CASE WHEN excluded.last_time >= sli_rollups.last_time THEN excluded.last ELSE sli_rollups.last END,
               last_time = MAX(sli_rollups.last_time, excluded.last_time)",
        );
        upsert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Writes points (an OTLP push, a relay batch) in one transaction.
    pub async fn insert_points(&self, points: &[SeriesPoint]) -> ApiResult<()> {
        let mut tx = self.write.begin().await?;
        insert(&mut tx, points).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Like [`Store::insert_points`], once per batch id: `false` when that batch was stored
    /// before (a relay retrying after a lost answer).
    pub async fn insert_batch(&self, batch: Uuid, points: &[SeriesPoint]) -> ApiResult<bool> {
        let mut tx = self.write.begin().await?;
        let fresh = sqlx::query("INSERT INTO metric_batches (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(batch.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if fresh {
            insert(&mut tx, points).await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Raw points of one SLX in `[since, until]`, oldest first; `metric` `None` means every
    /// metric, `Some("")` the SLI value only.
    pub async fn sli_values(
        &self,
        workspace: &str,
        slx: &str,
        metric: Option<&str>,
        since: i64,
        until: i64,
        limit: u32,
    ) -> ApiResult<Vec<SliValue>> {
        let rows = sqlx::query(
            "SELECT metric, value, time, run_id FROM sli_values
             WHERE workspace = $1 AND slx = $2 AND time >= $3 AND time <= $4 AND ($5 IS NULL OR metric = $5)
             ORDER BY time DESC LIMIT $6",
        )
        .bind(workspace)
        .bind(slx)
        .bind(since)
        .bind(until)
        .bind(metric)
        .bind(limit.clamp(1, 1_000_000) as i64)
        .fetch_all(&self.read)
        .await?;
        let mut values: Vec<SliValue> = rows
            .into_iter()
            .map(|r| SliValue {
                metric: r.get(0),
                value: r.get(1),
                time: time(r.get(2)),
                run_id: r.get::<Option<String>, _>(3).map(|s| uuid(&s)),
            })
            .collect();
        values.reverse();
        Ok(values)
    }

    /// Rollup buckets of one SLX in `[since, until]`, as `(metric, bucket start, bucket)`.
    pub async fn sli_rollups(
        &self,
        workspace: &str,
        slx: &str,
        metric: Option<&str>,
        since: i64,
        until: i64,
    ) -> ApiResult<Vec<(String, i64, Bucket)>> {
        let rows = sqlx::query(
            "SELECT metric, bucket, count, sum, min, max, last, last_time FROM sli_rollups
             WHERE workspace = $1 AND slx = $2 AND bucket >= $3 AND bucket <= $4 AND ($5 IS NULL OR metric = $5)
             ORDER BY bucket",
        )
        .bind(workspace)
        .bind(slx)
        .bind(since - since.rem_euclid(ROLLUP_MS))
        .bind(until)
        .bind(metric)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let bucket = Bucket {
                    count: r.get::<i64, _>(2) as u64,
                    sum: r.get(3),
                    min: r.get(4),
                    max: r.get(5),
                    last: (r.get(6), r.get(7)),
                };
                (r.get(0), r.get(1), bucket)
            })
            .collect())
    }

    /// The latest point of every series (for the `/metrics` gauges at start-up).
    pub async fn latest_points(&self) -> ApiResult<Vec<SeriesPoint>> {
        let rows = sqlx::query(
            "SELECT workspace, slx, metric, last, last_time FROM sli_rollups r
             WHERE bucket = (SELECT MAX(bucket) FROM sli_rollups x
                             WHERE x.workspace = r.workspace AND x.slx = r.slx AND x.metric = r.metric)",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SeriesPoint {
                workspace: r.get(0),
                slx: r.get(1),
                metric: r.get(2),
                value: r.get(3),
                time: r.get(4),
                run: None,
            })
            .collect())
    }

    /// Every SLX with an SLI: `(workspace, slx, spec, updated at)`.
    pub async fn sli_specs(&self) -> ApiResult<Vec<(String, String, SliSpec, i64)>> {
        let rows = sqlx::query(
            "SELECT workspace, name, sli_json, updated_at FROM slxs WHERE sli_json IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let spec: SliSpec = json(&r.get::<String, _>(2))?;
                Some((r.get(0), r.get(1), spec, r.get(3)))
            })
            .collect())
    }

    /// The latest SLI value (metric "") of one SLX with its time.
    pub async fn latest_value(&self, workspace: &str, slx: &str) -> ApiResult<Option<(f64, i64)>> {
        let row = sqlx::query(
            "SELECT value, time FROM sli_values WHERE workspace = $1 AND slx = $2 AND metric = '' ORDER BY time DESC LIMIT 1",
        )
        .bind(workspace)
        .bind(slx)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Drops raw points older than `raw_before` and rollups older than `rollup_before`
    /// (milliseconds since the epoch), a chunk at a time so writers are never held up for long.
    /// Returns how many rows went.
    pub async fn prune_series(&self, raw_before: i64, rollup_before: i64) -> ApiResult<u64> {
        let mut removed = 0;
        for (sql, before) in [
            (
                "DELETE FROM sli_values WHERE rowid IN (SELECT rowid FROM sli_values WHERE time < $1 LIMIT 10000)",
                raw_before,
            ),
            (
                "DELETE FROM sli_rollups WHERE rowid IN (SELECT rowid FROM sli_rollups WHERE bucket < $1 LIMIT 10000)",
                rollup_before,
            ),
            (
                "DELETE FROM metric_batches WHERE rowid IN (SELECT rowid FROM metric_batches WHERE received_at < $1 LIMIT 10000)",
                raw_before,
            ),
        ] {
            loop {
                let gone = sqlx::query(sql)
                    .bind(before)
                    .execute(&self.write)
                    .await?
                    .rows_affected();
                removed += gone;
                if gone < 10_000 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_merge_keeping_the_latest_value() {
        let mut b = Bucket::of(0.5, 10);
        b.merge(&Bucket::of(1.0, 5));
        b.merge(&Bucket::of(0.25, 20));
        assert_eq!(b.count, 3);
        assert_eq!(b.sum, 1.75);
        assert_eq!((b.min, b.max), (0.25, 1.0));
        assert_eq!(b.last, (0.25, 20));
    }
}

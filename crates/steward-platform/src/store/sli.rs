//! SLI series: each (workspace, SLX, metric) has an integer id; its points are kept in blocks
//! (written by [`super::points`]) and in five-minute rollups (count, sum, min, max, last) that
//! outlive them for long ranges. Here: the batch and bucket types, and reading series back.

use super::{Store, json, time, uuid};
use crate::error::ApiResult;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use steward_model::api::SliValue;
use steward_model::names::sli_metric_name;
use steward_model::run::RunResult;
use steward_model::workspace::SliSpec;
use uuid::Uuid;

/// Width of a rollup bucket.
pub const ROLLUP_MS: i64 = 5 * 60 * 1000;

/// What a series is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Workspace short name.
    pub workspace: String,
    /// SLX short name.
    pub slx: String,
    /// Empty for the SLI value, the sub-metric name otherwise.
    pub metric: String,
}

/// One point of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Index into [`Batch::keys`].
    pub key: u32,
    /// Milliseconds since the epoch.
    pub time: i64,
    /// The value.
    pub value: f64,
    /// The run that pushed it, when known.
    pub run: Option<Uuid>,
}

/// Points to store: each distinct series once, and the samples pointing at them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Distinct series.
    pub keys: Vec<SeriesKey>,
    /// Points.
    pub samples: Vec<Sample>,
}

impl Batch {
    /// The index of `key`, added if new (`index` speeds up repeated lookups).
    pub fn key_index(&mut self, key: SeriesKey, index: &mut HashMap<SeriesKey, u32>) -> u32 {
        *index.entry(key.clone()).or_insert_with(|| {
            self.keys.push(key);
            (self.keys.len() - 1) as u32
        })
    }

    /// The latest value of each series.
    pub fn latest(&self) -> Vec<(&SeriesKey, f64)> {
        let mut latest: BTreeMap<u32, (f64, i64)> = BTreeMap::new();
        for s in &self.samples {
            let entry = latest.entry(s.key).or_insert((s.value, s.time));
            if s.time >= entry.1 {
                *entry = (s.value, s.time);
            }
        }
        latest
            .into_iter()
            .map(|(k, (v, _))| (&self.keys[k as usize], v))
            .collect()
    }
}

/// The SLI points of a run's result (points named after another SLX are left out).
pub fn run_batch(workspace: &str, slx: &str, run: Uuid, result: &RunResult) -> Batch {
    let base = sli_metric_name(slx);
    let mut batch = Batch::default();
    let mut index = HashMap::new();
    for point in &result.metrics {
        let Some(sub) = point.sub_name(&base) else {
            continue;
        };
        let key = SeriesKey {
            workspace: workspace.into(),
            slx: slx.into(),
            metric: sub.unwrap_or("").into(),
        };
        let key = batch.key_index(key, &mut index);
        batch.samples.push(Sample {
            key,
            time: point.time.timestamp_millis(),
            value: point.value,
            run: Some(run),
        });
    }
    batch
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
    pub(crate) fn of(value: f64, time: i64) -> Self {
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

impl Store {
    /// Stores a batch (an OTLP push, a relay batch), committed together with the batches that
    /// arrive meanwhile (see [`super::ingest`]); with an id, only once: `false` when that batch
    /// was stored before (a relay retrying after a lost answer).
    pub async fn insert_batch(&self, id: Option<Uuid>, batch: &Batch) -> ApiResult<bool> {
        if batch.samples.is_empty() && id.is_none() {
            return Ok(true);
        }
        self.ingest
            .write(super::ingest::Push {
                id,
                batch: Arc::new(batch.clone()),
            })
            .await
    }

    async fn series_of(
        &self,
        workspace: &str,
        slx: &str,
        metric: Option<&str>,
    ) -> ApiResult<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, metric FROM series WHERE workspace = $1 AND slx = $2 AND ($3 IS NULL OR metric = $3)")
            .bind(workspace)
            .bind(slx)
            .bind(metric)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Raw points of one SLX in `[since, until]`, oldest first (at most `limit`, the newest
    /// kept); `metric` `None` means every metric, `Some("")` the SLI value only.
    pub async fn sli_values(
        &self,
        workspace: &str,
        slx: &str,
        metric: Option<&str>,
        since: i64,
        until: i64,
        limit: u32,
    ) -> ApiResult<Vec<SliValue>> {
        let mut values = Vec::new();
        for (series, metric) in self.series_of(workspace, slx, metric).await? {
            let blocks = sqlx::query(
                "SELECT data, run_id FROM point_blocks WHERE series = $1 AND last_time >= $2 AND last_time <= $3 AND first_time <= $4",
            )
            .bind(series)
            .bind(since)
            .bind(until.saturating_add(super::points::MAX_BLOCK_SPAN_MS))
            .bind(until)
            .fetch_all(&self.read)
            .await?;
            for block in blocks {
                let run_id = block.get::<Option<String>, _>(1).map(|s| uuid(&s));
                values.extend(
                    super::points::read_block(&block.get::<Vec<u8>, _>(0))
                        .into_iter()
                        .filter(|(t, _)| (since..=until).contains(t))
                        .map(|(t, value)| SliValue {
                            metric: metric.clone(),
                            value,
                            time: time(t),
                            run_id,
                        }),
                );
            }
        }
        values.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.metric.cmp(&b.metric)));
        values.truncate(limit.clamp(1, 1_000_000) as usize);
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
        let mut out = Vec::new();
        for (series, metric) in self.series_of(workspace, slx, metric).await? {
            let rows = sqlx::query(
                "SELECT bucket, count, sum, min, max, last, last_time FROM rollups
                 WHERE series = $1 AND bucket >= $2 AND bucket <= $3 ORDER BY bucket",
            )
            .bind(series)
            .bind(since - since.rem_euclid(ROLLUP_MS))
            .bind(until)
            .fetch_all(&self.read)
            .await?;
            out.extend(rows.into_iter().map(|r| {
                let bucket = Bucket {
                    count: r.get::<i64, _>(1) as u64,
                    sum: r.get(2),
                    min: r.get(3),
                    max: r.get(4),
                    last: (r.get(5), r.get(6)),
                };
                (metric.clone(), r.get(0), bucket)
            }));
        }
        Ok(out)
    }

    /// The latest value of every series (for the `/metrics` gauges at start-up).
    pub async fn latest_values(&self) -> ApiResult<Vec<(SeriesKey, f64)>> {
        let rows = sqlx::query(
            "SELECT s.workspace, s.slx, s.metric, r.last FROM series s
             JOIN rollups r ON r.series = s.id AND r.bucket = (SELECT MAX(bucket) FROM rollups x WHERE x.series = s.id)",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    SeriesKey {
                        workspace: r.get(0),
                        slx: r.get(1),
                        metric: r.get(2),
                    },
                    r.get(3),
                )
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

    /// The latest SLI value (metric "") of one SLX with its time: the last value of its newest
    /// rollup bucket, which every stored point updates.
    pub async fn latest_value(&self, workspace: &str, slx: &str) -> ApiResult<Option<(f64, i64)>> {
        let row = sqlx::query(
            "SELECT r.last, r.last_time FROM series s JOIN rollups r ON r.series = s.id
             WHERE s.workspace = $1 AND s.slx = $2 AND s.metric = '' ORDER BY r.bucket DESC LIMIT 1",
        )
        .bind(workspace)
        .bind(slx)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Drops raw points older than `raw_before` (whole blocks, once their last point is older)
    /// and rollups older than `rollup_before` (milliseconds since the epoch), series by series
    /// and a chunk at a time, so writers are never held up for long. Returns how many rows
    /// went.
    pub async fn prune_series(&self, raw_before: i64, rollup_before: i64) -> ApiResult<u64> {
        let ids: Vec<i64> = sqlx::query("SELECT id FROM series")
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let mut removed = 0;
        for id in ids {
            for (sql, before) in [
                (
                    "DELETE FROM point_blocks WHERE id IN (SELECT id FROM point_blocks WHERE series = $1 AND last_time < $2 LIMIT 10000)",
                    raw_before,
                ),
                (
                    "DELETE FROM rollups WHERE series = $1 AND bucket IN (SELECT bucket FROM rollups WHERE series = $1 AND bucket < $2 LIMIT 10000)",
                    rollup_before,
                ),
            ] {
                loop {
                    let gone = sqlx::query(sql)
                        .bind(id)
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
        }
        removed += sqlx::query("DELETE FROM metric_batches WHERE received_at < $1")
            .bind(raw_before)
            .execute(&self.write)
            .await?
            .rows_affected();
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

    #[test]
    fn a_batch_keeps_each_series_once_and_knows_its_latest() {
        let mut batch = Batch::default();
        let mut index = HashMap::new();
        let key = |m: &str| SeriesKey {
            workspace: "w".into(),
            slx: "s".into(),
            metric: m.into(),
        };
        let a = batch.key_index(key(""), &mut index);
        let b = batch.key_index(key("x"), &mut index);
        assert_eq!(batch.key_index(key(""), &mut index), a);
        batch.samples = vec![
            Sample {
                key: a,
                time: 2,
                value: 0.5,
                run: None,
            },
            Sample {
                key: a,
                time: 1,
                value: 9.0,
                run: None,
            },
            Sample {
                key: b,
                time: 1,
                value: 3.0,
                run: None,
            },
        ];
        let latest: Vec<(String, f64)> = batch
            .latest()
            .into_iter()
            .map(|(k, v)| (k.metric.clone(), v))
            .collect();
        assert_eq!(latest, vec![("".into(), 0.5), ("x".into(), 3.0)]);
    }

    fn sample(key: u32, time: i64, value: f64) -> Sample {
        Sample {
            key,
            time,
            value,
            run: None,
        }
    }

    #[tokio::test]
    async fn repeated_points_are_stored_once_whether_in_one_write_or_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        let mut batch = Batch::default();
        let key = batch.key_index(
            SeriesKey {
                workspace: "w".into(),
                slx: "s".into(),
                metric: String::new(),
            },
            &mut HashMap::new(),
        );
        batch.samples = vec![
            sample(key, 1_000, 1.0),
            sample(key, 2_000, 2.0),
            sample(key, 1_000, 9.0),
        ];
        store.insert_batch(None, &batch).await.unwrap();
        // Later: one old point again, one new, one older than everything but not stored.
        batch.samples = vec![
            sample(key, 2_000, 7.0),
            sample(key, 3_000, 3.0),
            sample(key, 500, 0.5),
        ];
        store.insert_batch(None, &batch).await.unwrap();
        let values = store
            .sli_values("w", "s", Some(""), 0, 10_000, 100)
            .await
            .unwrap();
        let got: Vec<(i64, f64)> = values
            .iter()
            .map(|v| (v.time.timestamp_millis(), v.value))
            .collect();
        assert_eq!(
            got,
            vec![(500, 0.5), (1_000, 1.0), (2_000, 2.0), (3_000, 3.0)]
        );
        let buckets = store
            .sli_rollups("w", "s", Some(""), 0, 10_000)
            .await
            .unwrap();
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].2.count, 4, "repeats are not counted");
        assert_eq!(buckets[0].2.sum, 6.5);
        assert_eq!(
            store.latest_value("w", "s").await.unwrap(),
            Some((3.0, 3_000))
        );
    }

    #[tokio::test]
    async fn points_of_the_row_per_point_table_move_into_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        sqlx::query("INSERT INTO series (id, workspace, slx, metric) VALUES (7, 'w', 's', '')")
            .execute(&store.write)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE points (series INTEGER NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL, run_id TEXT, PRIMARY KEY (series, time)) WITHOUT ROWID",
        )
        .execute(&store.write)
        .await
        .unwrap();
        let run = Uuid::now_v7();
        for (time, value, run) in [(10, 1.0, None), (20, 2.0, Some(run)), (30, 3.0, None)] {
            sqlx::query("INSERT INTO points (series, time, value, run_id) VALUES (7, $1, $2, $3)")
                .bind(time as i64)
                .bind(value)
                .bind(run.map(|r: Uuid| r.to_string()))
                .execute(&store.write)
                .await
                .unwrap();
        }
        store.close().await;
        let store = Store::open(&url).await.unwrap();
        let values = store.sli_values("w", "s", None, 0, 100, 100).await.unwrap();
        let got: Vec<(i64, f64, Option<Uuid>)> = values
            .iter()
            .map(|v| (v.time.timestamp_millis(), v.value, v.run_id))
            .collect();
        assert_eq!(
            got,
            vec![(10, 1.0, None), (20, 2.0, Some(run)), (30, 3.0, None)]
        );
        let left = sqlx::query("SELECT 1 FROM sqlite_master WHERE name = 'points'")
            .fetch_optional(&store.write)
            .await
            .unwrap();
        assert!(left.is_none(), "the old table is gone");
    }
}

//! Writing SLI points: series ids, point blocks (one row per series and push, see
//! [`super::blocks`]) without repeats, rollups, and the move from the row-per-point table.

use super::db::{Backend, Sql};
use super::sli::{Batch, Bucket, ROLLUP_MS, Sample, SeriesKey};
use crate::error::ApiResult;
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A block to write: series, run, points (time, value).
type NewBlock = (i64, Option<Uuid>, Vec<(i64, f64)>);

/// The longest time a point block spans; longer writes are split into several blocks.
pub(crate) const MAX_BLOCK_SPAN_MS: i64 = 3_600_000;

/// Rows per insert statement: the statement is prepared once and reused for every full chunk.
const ROWS_PER_STATEMENT: usize = 2000;

/// Series ids, cached both ways (series are never deleted, so the cache never goes stale).
#[derive(Default)]
pub(crate) struct SeriesCache {
    by_key: HashMap<SeriesKey, i64>,
}

/// Ids of `keys`, creating the series that do not exist yet.
async fn ensure_series(
    conn: &mut AnyConnection,
    cache: &Arc<Mutex<SeriesCache>>,
    keys: &[SeriesKey],
) -> ApiResult<Vec<i64>> {
    let mut ids = vec![0i64; keys.len()];
    let mut missing = Vec::new();
    {
        let cache = cache.lock().expect("poisoned");
        for (i, key) in keys.iter().enumerate() {
            match cache.by_key.get(key) {
                Some(id) => ids[i] = *id,
                None => missing.push(i),
            }
        }
    }
    for i in missing {
        let key = &keys[i];
        sqlx::query("INSERT INTO series (workspace, slx, metric) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&key.workspace)
            .bind(&key.slx)
            .bind(&key.metric)
            .execute(&mut *conn)
            .await?;
        let row =
            sqlx::query("SELECT id FROM series WHERE workspace = $1 AND slx = $2 AND metric = $3")
                .bind(&key.workspace)
                .bind(&key.slx)
                .bind(&key.metric)
                .fetch_one(&mut *conn)
                .await?;
        ids[i] = row.get(0);
        cache
            .lock()
            .expect("poisoned")
            .by_key
            .insert(key.clone(), ids[i]);
    }
    Ok(ids)
}

/// `rows` (sorted by series and time) without the points already stored. Points usually
/// come after everything stored for their series, which one look at each series' newest block
/// shows; only a series whose new points reach back into stored time has its blocks there
/// read.
async fn without_stored(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: Vec<(i64, Sample)>,
) -> ApiResult<Vec<(i64, Sample)>> {
    // (first, last) new time per series.
    let mut spans: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (series, s) in &rows {
        let span = spans.entry(*series).or_insert((s.time, s.time));
        span.1 = s.time;
    }
    let ids: Vec<i64> = spans.keys().copied().collect();
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        // One index seek per series (a grouped MAX over `IN` would read every block).
        let mut query = Sql::new(backend, "WITH wanted (id) AS (VALUES ");
        for (i, id) in chunk.iter().enumerate() {
            query.push(if i == 0 { "(" } else { ", (" });
            query.push_bind(*id).push(")");
        }
        query.push(
            ") SELECT id, (SELECT MAX(last_time) FROM point_blocks WHERE series = wanted.id) FROM wanted",
        );
        for row in query.build()?.fetch_all(&mut **tx).await? {
            if let Some(time) = row.get::<Option<i64>, _>(1) {
                newest.insert(row.get(0), time);
            }
        }
    }
    let mut stored: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (series, (first, last)) in &spans {
        if newest.get(series).is_none_or(|newest| newest < first) {
            continue;
        }
        // A block that overlaps [first, last] ends within it or at most a block's span after.
        let blocks = sqlx::query(
            "SELECT data FROM point_blocks WHERE series = $1 AND last_time >= $2 AND last_time <= $3 AND first_time <= $4",
        )
        .bind(*series)
        .bind(*first)
        .bind(*last + MAX_BLOCK_SPAN_MS)
        .bind(*last)
        .fetch_all(&mut **tx)
        .await?;
        let times = stored.entry(*series).or_default();
        for block in blocks {
            times.extend(
                read_block(&block.get::<Vec<u8>, _>(0))
                    .into_iter()
                    .map(|(t, _)| t),
            );
        }
    }
    if stored.is_empty() {
        return Ok(rows);
    }
    Ok(rows
        .into_iter()
        .filter(|(series, s)| !stored.get(series).is_some_and(|t| t.contains(&s.time)))
        .collect())
}

/// A stored block's points; a damaged block is reported and read as empty.
pub(crate) fn read_block(data: &[u8]) -> Vec<(i64, f64)> {
    super::blocks::decode(data).unwrap_or_else(|error| {
        tracing::error!(%error, "An SLI point block cannot be read; its points are left out.");
        Vec::new()
    })
}

/// Writes batches as point blocks and folds what was new into the rollups, in the caller's
/// transaction. A point whose series already has one at that millisecond is a repeated
/// delivery: it is ignored and does not count twice in the rollups.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    cache: &Arc<Mutex<SeriesCache>>,
    batches: &[&Batch],
) -> ApiResult<()> {
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.samples.len()).sum());
    for batch in batches {
        if batch.samples.is_empty() {
            continue;
        }
        let ids = ensure_series(tx, cache, &batch.keys).await?;
        rows.extend(batch.samples.iter().map(|s| (ids[s.key as usize], *s)));
    }
    if rows.is_empty() {
        return Ok(());
    }
    // By series and time; a millisecond repeated within the write keeps its first point.
    rows.sort_by_key(|(series, s)| (*series, s.time));
    rows.dedup_by_key(|(series, s)| (*series, s.time));
    let rows = without_stored(tx, backend, rows).await?;
    if rows.is_empty() {
        return Ok(());
    }
    // One block per series and run (points of a run keep its id), spanning at most
    // MAX_BLOCK_SPAN_MS, which keeps the look for overlapping blocks a bounded index range.
    let mut blocks: Vec<NewBlock> = Vec::new();
    for (series, s) in &rows {
        match blocks.last_mut() {
            Some((last_series, run, points))
                if *last_series == *series
                    && *run == s.run
                    && s.time - points[0].0 <= MAX_BLOCK_SPAN_MS =>
            {
                points.push((s.time, s.value))
            }
            _ => blocks.push((*series, s.run, vec![(s.time, s.value)])),
        }
    }
    for chunk in blocks.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Sql::new(
            backend,
            "INSERT INTO point_blocks (series, first_time, last_time, count, run_id, data) ",
        );
        insert.push_values(chunk, |row, (series, run, points)| {
            row.bind(*series)
                .bind(points[0].0)
                .bind(points[points.len() - 1].0)
                .bind(points.len() as i64)
                .bind(run.map(|r| r.to_string()))
                .bind(super::blocks::encode(points.iter().copied()));
        });
        insert.build()?.persistent(true).execute(&mut **tx).await?;
    }
    let mut buckets: BTreeMap<(i64, i64), Bucket> = BTreeMap::new();
    for (series, s) in &rows {
        let point = Bucket::of(s.value, s.time);
        buckets
            .entry((*series, s.time - s.time.rem_euclid(ROLLUP_MS)))
            .and_modify(|b| b.merge(&point))
            .or_insert(point);
    }
    let buckets: Vec<_> = buckets.into_iter().collect();
    for chunk in buckets.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = Sql::new(
            backend,
            "INSERT INTO rollups (series, bucket, count, sum, min, max, last, last_time) ",
        );
        upsert.push_values(chunk, |row, ((series, bucket), b)| {
            row.bind(*series)
                .bind(*bucket)
                .bind(b.count as i64)
                .bind(b.sum)
                .bind(b.min)
                .bind(b.max)
                .bind(b.last.0)
                .bind(b.last.1);
        });
        upsert.push(
            " ON CONFLICT (series, bucket) DO UPDATE SET
               count = rollups.count + excluded.count,
               sum = rollups.sum + excluded.sum,
               min = CASE WHEN excluded.min < rollups.min THEN excluded.min ELSE rollups.min END,
               max = CASE WHEN excluded.max > rollups.max THEN excluded.max ELSE rollups.max END,
               last = CASE WHEN excluded.last_time >= rollups.last_time THEN excluded.last ELSE rollups.last END,
               last_time = CASE WHEN excluded.last_time > rollups.last_time THEN excluded.last_time ELSE rollups.last_time END",
        );
        upsert.build()?.persistent(true).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves the points of the `points` table (one row per point, before blocks) into blocks and
/// drops the table, in one transaction; nothing to do once it is gone.
pub(crate) async fn move_legacy_points(
    pool: &AnyPool,
    backend: Backend,
) -> Result<(), sqlx::Error> {
    let exists = match backend {
        Backend::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'points'",
        Backend::Postgres => {
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'points' AND table_schema = current_schema()"
        }
    };
    if sqlx::query(exists).fetch_optional(pool).await?.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let rows =
        sqlx::query("SELECT series, time, value, run_id FROM points ORDER BY series, run_id, time")
            .fetch_all(&mut *tx)
            .await?;
    let mut moved = 0;
    let mut block: Vec<(i64, f64)> = Vec::new();
    let mut owner: Option<(i64, Option<String>)> = None;
    for row in rows.iter().map(Some).chain([None]) {
        let next = row.map(|r| (r.get::<i64, _>(0), r.get::<Option<String>, _>(3)));
        if (next != owner || block.len() >= 10_000 || row.is_none())
            && let Some((series, run)) = owner.take()
            && !block.is_empty()
        {
            sqlx::query(
                "INSERT INTO point_blocks (series, first_time, last_time, count, run_id, data) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(series)
            .bind(block[0].0)
            .bind(block[block.len() - 1].0)
            .bind(block.len() as i64)
            .bind(run)
            .bind(super::blocks::encode(block.iter().copied()))
            .execute(&mut *tx)
            .await?;
            moved += block.len();
            block.clear();
        }
        if let Some(row) = row {
            owner = next;
            block.push((row.get(1), row.get(2)));
        }
    }
    sqlx::query("DROP TABLE points").execute(&mut *tx).await?;
    tx.commit().await?;
    if moved > 0 {
        tracing::info!(points = moved, "SLI points moved into blocks.");
    }
    Ok(())
}

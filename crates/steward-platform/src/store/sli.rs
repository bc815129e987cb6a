//! SLI values: the value each SLI run pushed and its sub-metrics, per workspace and SLX.

use super::{Store, time, uuid};
use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite, Transaction};
use steward_model::api::SliValue;
use steward_model::names::sli_metric_name;
use steward_model::run::RunResult;
use uuid::Uuid;

/// Stores the SLI value and sub-metrics a run pushed (points named after another SLX are not
/// this SLX's and are left out).
pub(super) async fn record(
    tx: &mut Transaction<'_, Sqlite>,
    workspace: &str,
    slx: &str,
    run: Uuid,
    result: &RunResult,
) -> ApiResult<()> {
    let base = sli_metric_name(slx);
    for point in &result.metrics {
        let Some(sub) = point.sub_name(&base) else {
            continue;
        };
        sqlx::query("INSERT INTO sli_values (workspace, slx, metric, value, time, run_id) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(workspace)
            .bind(slx)
            .bind(sub.unwrap_or(""))
            .bind(point.value)
            .bind(point.time.timestamp_millis())
            .bind(run.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Values of one SLX since `since`, oldest first; `metric` `None` means every metric,
    /// `Some("")` the SLI value only.
    pub async fn sli_values(
        &self,
        workspace: &str,
        slx: &str,
        metric: Option<&str>,
        since: DateTime<Utc>,
        limit: u32,
    ) -> ApiResult<Vec<SliValue>> {
        let rows = sqlx::query(
            "SELECT metric, value, time, run_id FROM sli_values
             WHERE workspace = $1 AND slx = $2 AND time >= $3 AND ($4 IS NULL OR metric = $4)
             ORDER BY time DESC LIMIT $5",
        )
        .bind(workspace)
        .bind(slx)
        .bind(since.timestamp_millis())
        .bind(metric)
        .bind(limit.clamp(1, 100_000) as i64)
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
}

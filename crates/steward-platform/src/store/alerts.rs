//! Alert states and events.

use super::{Store, now_ms, time, uuid};
use crate::error::ApiResult;
use sqlx::Row;
use steward_model::api::AlertView;
use uuid::Uuid;

/// Where one alert rule of one SLI stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertState {
    /// The condition holds since then, not yet for long enough.
    Pending {
        /// When it started to hold.
        since: i64,
    },
    /// Firing as this event.
    Firing {
        /// The event.
        event: Uuid,
    },
}

impl Store {
    /// The state of `level` of one SLI (`None`: the condition does not hold).
    pub async fn alert_state(
        &self,
        workspace: &str,
        slx: &str,
        level: &str,
    ) -> ApiResult<Option<AlertState>> {
        let row = sqlx::query("SELECT state, since, event_id FROM alert_states WHERE workspace = $1 AND slx = $2 AND level = $3")
            .bind(workspace)
            .bind(slx)
            .bind(level)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| match r.get::<String, _>(0).as_str() {
            "firing" => AlertState::Firing {
                event: uuid(&r.get::<Option<String>, _>(2).unwrap_or_default()),
            },
            _ => AlertState::Pending { since: r.get(1) },
        }))
    }

    /// Records that the condition started to hold at `since`.
    pub async fn alert_pending(
        &self,
        workspace: &str,
        slx: &str,
        level: &str,
        since: i64,
    ) -> ApiResult<()> {
        sqlx::query(
            "INSERT INTO alert_states (workspace, slx, level, state, since) VALUES ($1, $2, $3, 'pending', $4)
             ON CONFLICT (workspace, slx, level) DO NOTHING",
        )
        .bind(workspace)
        .bind(slx)
        .bind(level)
        .bind(since)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Fires: opens an event and marks the state. Returns `None` when it was already firing
    /// (another evaluation got there first).
    pub async fn alert_fire(
        &self,
        workspace: &str,
        slx: &str,
        level: &str,
        value: Option<f64>,
        message: &str,
    ) -> ApiResult<Option<Uuid>> {
        let now = now_ms();
        let event = Uuid::now_v7();
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "INSERT INTO alert_states (workspace, slx, level, state, since, event_id) VALUES ($1, $2, $3, 'firing', $4, $5)
             ON CONFLICT (workspace, slx, level) DO UPDATE SET state = 'firing', event_id = excluded.event_id
             WHERE alert_states.state = 'pending'",
        )
        .bind(workspace)
        .bind(slx)
        .bind(level)
        .bind(now)
        .bind(event.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO alert_events (id, workspace, slx, level, started_at, value, last_value, message)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(event.to_string())
        .bind(workspace)
        .bind(slx)
        .bind(level)
        .bind(now)
        .bind(value)
        .bind(message)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    /// Updates the latest value of a firing event.
    pub async fn alert_seen(&self, event: Uuid, value: f64) -> ApiResult<()> {
        sqlx::query("UPDATE alert_events SET last_value = $2 WHERE id = $1")
            .bind(event.to_string())
            .bind(value)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The condition no longer holds: ends the event (if firing) and clears the state.
    /// Returns the ended event.
    pub async fn alert_clear(
        &self,
        workspace: &str,
        slx: &str,
        level: &str,
    ) -> ApiResult<Option<Uuid>> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query("DELETE FROM alert_states WHERE workspace = $1 AND slx = $2 AND level = $3 RETURNING event_id")
            .bind(workspace)
            .bind(slx)
            .bind(level)
            .fetch_optional(&mut *tx)
            .await?;
        let event = row
            .and_then(|r| r.get::<Option<String>, _>(0))
            .map(|e| uuid(&e));
        if let Some(event) = event {
            sqlx::query("UPDATE alert_events SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(event.to_string())
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(event)
    }

    /// Levels with a state for one SLI.
    pub async fn alert_levels(&self, workspace: &str, slx: &str) -> ApiResult<Vec<String>> {
        let rows = sqlx::query("SELECT level FROM alert_states WHERE workspace = $1 AND slx = $2")
            .bind(workspace)
            .bind(slx)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Alert events, newest first: only active ones, or all.
    pub async fn alerts(
        &self,
        active_only: bool,
        workspace: Option<&str>,
        limit: u32,
    ) -> ApiResult<Vec<AlertView>> {
        let rows = sqlx::query(
            "SELECT id, workspace, slx, level, started_at, ended_at, value, last_value, message FROM alert_events
             WHERE ($1 = 0 OR ended_at IS NULL) AND ($2 IS NULL OR workspace = $2)
             ORDER BY started_at DESC LIMIT $3",
        )
        .bind(active_only as i64)
        .bind(workspace)
        .bind(limit.clamp(1, 1000) as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AlertView {
                id: uuid(&r.get::<String, _>(0)),
                workspace: r.get(1),
                slx: r.get(2),
                level: r.get(3),
                started_at: time(r.get(4)),
                ended_at: r.get::<Option<i64>, _>(5).map(time),
                value: r.get(6),
                last_value: r.get(7),
                message: r.get(8),
            })
            .collect())
    }
}

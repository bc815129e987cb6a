//! Alerts on SLI values: each threshold of an SLI's `alerts` is evaluated when a new value
//! arrives and by a periodic sweep (for `for` durations and missing data). A threshold that
//! has held for its `for` fires an event; the event ends when the condition stops holding.
//! An SLI whose last value is older than three intervals fires a `no_data` event.

use crate::AppState;
use crate::error::ApiResult;
use crate::store::AlertState;
use steward_model::workspace::SliSpec;

/// The level name of the missing-data alert.
pub(crate) const NO_DATA: &str = "no_data";

/// Intervals without a value before `no_data` fires.
const NO_DATA_INTERVALS: i64 = 3;

/// Evaluates every rule of one SLI against its latest value.
pub(crate) async fn evaluate_slx(state: &AppState, workspace: &str, slx: &str) -> ApiResult<()> {
    let Ok(record) = state.store.slx(workspace, slx).await else {
        return Ok(()); // removed meanwhile
    };
    let Some(spec) = record.sli else {
        return Ok(());
    };
    let latest = state.store.latest_value(workspace, slx).await?;
    evaluate(state, workspace, slx, &spec, latest, None).await
}

/// Evaluates every SLI (the periodic sweep).
pub(crate) async fn sweep(state: &AppState) -> ApiResult<()> {
    for (workspace, slx, spec, updated_at) in state.store.sli_specs().await? {
        let latest = state.store.latest_value(&workspace, &slx).await?;
        evaluate(state, &workspace, &slx, &spec, latest, Some(updated_at)).await?;
    }
    Ok(())
}

async fn evaluate(
    state: &AppState,
    workspace: &str,
    slx: &str,
    spec: &SliSpec,
    latest: Option<(f64, i64)>,
    known_since: Option<i64>,
) -> ApiResult<()> {
    let now = crate::store::now_ms();
    let mut configured = vec![NO_DATA.to_string()];
    if let Some(alerts) = &spec.alerts {
        for (level, rule) in alerts.rules() {
            let level = level.as_str();
            configured.push(level.to_string());
            let holds = latest.is_some_and(|(value, _)| rule.holds(value));
            let current = state.store.alert_state(workspace, slx, level).await?;
            match (holds, current) {
                (false, None) => {}
                (false, Some(_)) => {
                    if state
                        .store
                        .alert_clear(workspace, slx, level)
                        .await?
                        .is_some()
                    {
                        tracing::info!(%workspace, %slx, level, "Alert resolved.");
                    }
                }
                (true, Some(AlertState::Firing { event })) => {
                    if let Some((value, _)) = latest {
                        state.store.alert_seen(event, value).await?;
                    }
                }
                (true, pending) => {
                    let since = match pending {
                        Some(AlertState::Pending { since }) => since,
                        _ => {
                            state
                                .store
                                .alert_pending(workspace, slx, level, now)
                                .await?;
                            now
                        }
                    };
                    let hold = rule.hold_duration().as_millis() as i64;
                    if now - since >= hold {
                        let value = latest.map(|(v, _)| v);
                        let message = format!(
                            "SLI {slx} is {} ({} {}) for {}",
                            value.map(|v| v.to_string()).unwrap_or_default(),
                            rule.operator.trim(),
                            rule.threshold.trim(),
                            rule.hold.as_deref().unwrap_or("0s")
                        );
                        if state
                            .store
                            .alert_fire(workspace, slx, level, value, &message)
                            .await?
                            .is_some()
                        {
                            tracing::warn!(%workspace, %slx, level, %message, "Alert firing.");
                        }
                    }
                }
            }
        }
    }
    // Missing data is judged by the sweep, which knows since when the SLI exists; a fresh
    // value clears it whichever way it is evaluated.
    let limit = NO_DATA_INTERVALS * spec.interval() as i64 * 1000;
    let last_seen = latest.map(|(_, t)| t).or(known_since);
    let silent = known_since.is_some() && last_seen.is_some_and(|t| now - t > limit);
    let fresh = latest.is_some_and(|(_, t)| now - t <= limit);
    match state.store.alert_state(workspace, slx, NO_DATA).await? {
        Some(AlertState::Firing { .. }) if fresh => {
            state.store.alert_clear(workspace, slx, NO_DATA).await?;
            tracing::info!(%workspace, %slx, "Data is back; no-data alert resolved.");
        }
        None if silent => {
            let seconds = (now - last_seen.unwrap_or(now)) / 1000;
            let message = format!(
                "no value from SLI {slx} for {seconds}s ({NO_DATA_INTERVALS} intervals of {}s)",
                spec.interval()
            );
            if state
                .store
                .alert_fire(workspace, slx, NO_DATA, None, &message)
                .await?
                .is_some()
            {
                tracing::warn!(%workspace, %slx, %message, "Alert firing.");
            }
        }
        _ => {}
    }
    // Rules removed from the SLI end their alerts.
    for level in state.store.alert_levels(workspace, slx).await? {
        if !configured.contains(&level) {
            state.store.alert_clear(workspace, slx, &level).await?;
        }
    }
    Ok(())
}

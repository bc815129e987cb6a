//! Local SLI scheduling from the desired state: each SLI runs on its interval with jitter, one
//! run at a time, whether or not the platform is reachable.

use crate::Shared;
use crate::spool::Delivery;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use steward_model::run::{RunResult, RunStatus};
use steward_model::wire::{DesiredState, SliAssignment};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The first run of an SLI starts within this long of it being assigned (random, so a large
/// set does not start at once).
const FIRST_RUN_SPREAD: Duration = Duration::from_secs(10);

/// Intervals vary by this fraction either way.
const JITTER: f64 = 0.1;

struct Scheduled {
    fingerprint: String,
    stop: CancellationToken,
}

/// The SLIs being scheduled, by (workspace, SLX).
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    slis: HashMap<(String, String), Scheduled>,
}

impl Scheduler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Scheduler {
            shared,
            slis: HashMap::new(),
        }
    }

    /// Starts new SLIs, restarts changed ones (after their current run) and stops removed ones.
    pub(crate) fn apply(&mut self, state: &DesiredState) {
        let mut wanted = HashMap::new();
        for sli in &state.slis {
            let fingerprint = serde_json::to_string(sli).expect("assignment serializes");
            wanted.insert(
                (sli.workspace.clone(), sli.slx.clone()),
                (fingerprint, sli.clone()),
            );
        }
        self.slis.retain(|key, scheduled| {
            let keep = wanted
                .get(key)
                .is_some_and(|(fp, _)| *fp == scheduled.fingerprint);
            if !keep {
                scheduled.stop.cancel();
            }
            keep
        });
        let mut started = 0;
        for (key, (fingerprint, sli)) in wanted {
            if self.slis.contains_key(&key) {
                continue;
            }
            let stop = self.shared.shutdown.child_token();
            tokio::spawn(sli_loop(self.shared.clone(), sli, stop.clone()));
            self.slis.insert(key, Scheduled { fingerprint, stop });
            started += 1;
        }
        tracing::info!(version = %state.version, slis = self.slis.len(), started, "SLI schedule applied.");
    }
}

fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 + rand::random_range(-JITTER..JITTER))
}

async fn sli_loop(shared: Arc<Shared>, sli: SliAssignment, stop: CancellationToken) {
    let interval = Duration::from_secs(sli.interval_seconds.max(1));
    let spread = FIRST_RUN_SPREAD.min(interval);
    let mut next = Instant::now() + spread.mul_f64(rand::random_range(0.0..1.0));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = shared.slots.clone().acquire_owned() => permit.expect("slots are never closed"),
        };
        let started = Instant::now();
        run_sli(&shared, &sli).await;
        drop(permit);
        // The next run is due one (jittered) interval after this one started; a run that took
        // longer than that is followed at once, never overlapped.
        next = (started + jittered(interval)).max(Instant::now());
    }
}

async fn run_sli(shared: &Shared, sli: &SliAssignment) {
    let location = shared.location();
    let run_id = Uuid::now_v7();
    let spec = sli.run_spec(run_id, &location);
    let out_dir = shared.spool.artifacts_dir(run_id);
    // Shutdown stops a running SLI; its result is not reported (it would only say "cancelled").
    let cancel = shared.shutdown.child_token();
    let result = match shared.secrets.resolve(&spec.secrets) {
        Ok(values) => {
            shared
                .executor
                .execute(&spec, &values, &out_dir, &cancel)
                .await
        }
        Err(message) => RunResult::error(RunStatus::Error, message, chrono::Utc::now()),
    };
    if cancel.is_cancelled() {
        shared.spool.remove(run_id);
        return;
    }
    tracing::info!(
        workspace = %sli.workspace,
        slx = %sli.slx,
        status = %result.status,
        value = ?result.sli_value,
        "SLI ran."
    );
    let delivery = Delivery {
        run_id,
        lease_id: None,
        spec: Some(spec),
        result,
    };
    if let Err(error) = shared.spool.submit(&delivery) {
        tracing::error!(run = %run_id, %error, "Cannot spool an SLI result; it is lost.");
    }
}

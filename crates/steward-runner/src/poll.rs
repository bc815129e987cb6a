//! Registration and the poll loop: leases in, cancellations and revocations applied, desired
//! state followed, reconnecting with backoff when the platform is away.

use crate::client::{
    CallError, PlatformClient, Registration, load_registration, save_registration,
};
use crate::scheduler::Scheduler;
use crate::spool::Delivery;
use crate::{Active, Error, Result, RunnerConfig, Shared, StopReason};
use std::sync::Arc;
use std::time::Duration;
use steward_model::run::{RunResult, RunStatus};
use steward_model::wire::{Lease, PollRequest, RegisterRequest};
use tokio_util::sync::CancellationToken;

/// Exponential backoff with full jitter, 1 s to 30 s.
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(0)
    }
    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }
    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = (1u64 << self.0.min(5)).min(30);
        self.0 += 1;
        Duration::from_millis(rand::random_range(500..=ceiling * 1000))
    }
}

/// Loads the saved registration or registers; waits for an unreachable platform. `None` when
/// shut down while waiting.
pub(crate) async fn register(
    client: &PlatformClient,
    config: &RunnerConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Registration>> {
    let path = config.state_dir.join("registration.json");
    if let Some(saved) = load_registration(&path, client.base()) {
        return Ok(Some(saved));
    }
    let Some(token) = config.registration_token.clone() else {
        return Err(Error::Config(format!(
            "this runner is not registered with {} yet: give it a registration token (--registration-token or STEWARD_REGISTRATION_TOKEN)",
            client.base()
        )));
    };
    let request = RegisterRequest {
        token,
        name: config.name.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        capacity: config.capacity,
    };
    let mut backoff = Backoff::new();
    loop {
        match client.register(&request).await {
            Ok(response) => {
                let registration = Registration {
                    platform_url: client.base().to_string(),
                    runner_id: response.runner_id,
                    credential: response.credential,
                    location: response.location,
                    poll_timeout_seconds: response.poll_timeout_seconds,
                    lease_ttl_seconds: response.lease_ttl_seconds,
                };
                save_registration(&path, &registration)?;
                return Ok(Some(registration));
            }
            Err(CallError::Unavailable(message)) => {
                let wait = backoff.next();
                tracing::warn!(platform = %client.base(), %message, retry_in = ?wait, "Platform unreachable; retrying registration.");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(CallError::Unauthorized(message) | CallError::Refused(_, message)) => {
                return Err(Error::Registration {
                    platform: client.base().to_string(),
                    message,
                });
            }
        }
    }
}

/// Polls until shutdown.
pub(crate) async fn poll_forever(shared: Arc<Shared>) {
    let mut scheduler = Scheduler::new(shared.clone());
    let mut applied: Option<String> = None;
    let mut backoff = Backoff::new();
    let mut online = false; // until the first poll is answered
    let mut first = true;
    loop {
        if shared.shutdown.is_cancelled() {
            break;
        }
        let (running, free) = {
            let active = shared.active.lock().expect("poisoned");
            let running: Vec<_> = active.keys().copied().collect();
            // Leased runs waiting for a slot count against the free slots too.
            let free = shared
                .slots
                .available_permits()
                .saturating_sub(waiting_for_slot(&active, &shared));
            (running, free as u32)
        };
        let request = PollRequest {
            free_capacity: free,
            capacity: shared.config.capacity,
            running,
            desired_state_version: applied.clone(),
            no_wait: first,
            no_slis: !shared.executor.takes_slis(),
        };
        let wait = Duration::from_secs(
            shared
                .registration
                .read()
                .expect("poisoned")
                .poll_timeout_seconds
                .max(1),
        );
        let credential = shared.credential();
        // A poll that asked for no work can be abandoned safely when a slot frees (the platform
        // hands out nothing on it), and redone at once with the slot offered.
        let slot_freed = shared.slot_freed.notified();
        let outcome = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = slot_freed, if request.free_capacity == 0 => continue,
            outcome = shared.client.poll(&credential, &request, wait) => outcome,
        };
        match outcome {
            Ok(response) => {
                first = false;
                backoff.reset();
                if !online {
                    tracing::info!(platform = %shared.client.base(), "Connected to the platform.");
                    online = true;
                    shared.telemetry.set_connected(true);
                }
                for lease in response.leases {
                    start_leased(&shared, lease);
                }
                stop_runs(&shared, &response.cancel, StopReason::Cancelled);
                stop_runs(&shared, &response.revoked, StopReason::Revoked);
                if applied.as_deref() != Some(response.desired_state_version.as_str()) {
                    match shared.client.desired_state(&credential).await {
                        Ok(state) => {
                            scheduler.apply(&state);
                            applied = Some(state.version);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Cannot fetch the desired SLI state; will retry.")
                        }
                    }
                }
            }
            Err(CallError::Unauthorized(message)) => {
                tracing::warn!(%message, "The platform no longer knows this runner; registering again.");
                let _ = std::fs::remove_file(shared.registration_path());
                match register(&shared.client, &shared.config, &shared.shutdown).await {
                    Ok(Some(registration)) => {
                        *shared.registration.write().expect("poisoned") = registration
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::error!(%error, "Cannot register again; retrying later.");
                        pause(&shared, backoff.next()).await;
                    }
                }
            }
            Err(error) => {
                if online || first {
                    tracing::warn!(platform = %shared.client.base(), %error, "Platform unreachable; SLIs keep running and results are spooled.");
                    online = false;
                    first = false;
                    shared.telemetry.set_connected(false);
                }
                pause(&shared, backoff.next()).await;
            }
        }
    }
    // Shutdown: stop every leased run without reporting it, and hand the leases back so the
    // platform queues the runs again at once (if it cannot be told, the leases lapse instead).
    let leases: Vec<uuid::Uuid> = {
        let mut active = shared.active.lock().expect("poisoned");
        for run in active.values_mut() {
            run.reason = Some(StopReason::Revoked);
            run.cancel.cancel();
        }
        active.keys().copied().collect()
    };
    if !leases.is_empty() {
        match tokio::time::timeout(
            Duration::from_secs(5),
            shared.client.release(&shared.credential(), &leases),
        )
        .await
        {
            Ok(Ok(released)) => tracing::info!(
                runs = released.requeued,
                "Unfinished runs handed back to the platform."
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Could not hand runs back; they are requeued when their leases lapse.")
            }
            Err(_) => tracing::warn!(
                "The platform did not answer; unfinished runs are requeued when their leases lapse."
            ),
        }
    }
}

fn waiting_for_slot(
    active: &std::collections::HashMap<uuid::Uuid, Active>,
    shared: &Shared,
) -> usize {
    let capacity = shared.config.capacity as usize;
    let busy = capacity - shared.slots.available_permits().min(capacity);
    active.len().saturating_sub(busy)
}

async fn pause(shared: &Shared, wait: Duration) {
    tokio::select! {
        _ = shared.shutdown.cancelled() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// Stops the runs the platform named: by run id for cancellations, by lease id for revocations.
fn stop_runs(shared: &Shared, ids: &[uuid::Uuid], reason: StopReason) {
    if ids.is_empty() {
        return;
    }
    let mut active = shared.active.lock().expect("poisoned");
    for (lease, run) in active.iter_mut() {
        let key = if reason == StopReason::Revoked {
            lease
        } else {
            &run.run_id
        };
        if ids.contains(key) {
            tracing::info!(run = %run.run_id, ?reason, "Stopping a run.");
            run.reason = Some(reason);
            run.cancel.cancel();
        }
    }
}

fn start_leased(shared: &Arc<Shared>, lease: Lease) {
    let cancel = shared.shutdown.child_token();
    shared.active.lock().expect("poisoned").insert(
        lease.lease_id,
        Active {
            run_id: lease.run.run_id,
            cancel: cancel.clone(),
            reason: None,
        },
    );
    tokio::spawn(run_leased(shared.clone(), lease, cancel));
}

async fn run_leased(shared: Arc<Shared>, lease: Lease, cancel: CancellationToken) {
    let spec = &lease.run;
    tracing::info!(run = %spec.run_id, slx = %spec.slx, attempt = lease.attempt, "Running a leased run.");
    let permit = tokio::select! {
        _ = cancel.cancelled() => None,
        permit = shared.slots.clone().acquire_owned() => Some(permit.expect("slots are never closed")),
    };
    let out_dir = shared.spool.staging_dir(spec.run_id);
    let cancelled = || {
        RunResult::error(
            RunStatus::Cancelled,
            "cancelled before it started",
            chrono::Utc::now(),
        )
    };
    let result = match &permit {
        None => cancelled(),
        Some(_) => {
            let resolved = tokio::select! {
                _ = cancel.cancelled() => None,
                resolved = shared.secrets.resolve(&spec.secrets) => Some(resolved),
            };
            match resolved {
                None => cancelled(),
                Some(Ok(values)) => {
                    shared
                        .executor
                        .execute(spec, &values, &out_dir, &cancel)
                        .await
                }
                Some(Err(error)) => {
                    RunResult::error(RunStatus::Error, error.to_string(), chrono::Utc::now())
                }
            }
        }
    };
    drop(permit);
    shared.slot_freed.notify_waiters();
    let reason = shared
        .active
        .lock()
        .expect("poisoned")
        .remove(&lease.lease_id)
        .and_then(|a| a.reason);
    if reason == Some(StopReason::Revoked) {
        shared.spool.remove(spec.run_id);
        return;
    }
    tracing::info!(run = %spec.run_id, status = %result.status, issues = result.issues.len(), "Run finished.");
    shared.telemetry.finished(
        "runbook",
        result.status.as_str(),
        &spec.workspace,
        &spec.slx,
        &result,
    );
    let delivery = Delivery {
        run_id: spec.run_id,
        lease_id: Some(lease.lease_id),
        spec: None,
        result,
    };
    crate::deliver::hand_over(&shared, delivery).await;
}

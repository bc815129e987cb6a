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
        shared.slot_freed.notify_waiters();
        // The next run is due one (jittered) interval after this one started. A run that took
        // longer than that skips the slot it missed and leaves a whole interval after it ends,
        // so a slow check (or the first run, which may wait for the Python environment) does
        // not turn into back-to-back runs.
        let due = started + jittered(interval);
        let now = Instant::now();
        next = if due >= now {
            due
        } else {
            now + jittered(interval)
        };
    }
}

async fn run_sli(shared: &Shared, sli: &SliAssignment) {
    let location = shared.location();
    let run_id = Uuid::now_v7();
    let spec = sli.run_spec(run_id, &location);
    let out_dir = shared.spool.staging_dir(run_id);
    // Shutdown stops a running SLI; its result is not reported (it would only say "cancelled").
    let cancel = shared.shutdown.child_token();
    let result = match shared.secrets.resolve(&spec.secrets).await {
        Ok(values) => {
            shared
                .executor
                .execute(&spec, &values, &out_dir, &cancel)
                .await
        }
        Err(error) => RunResult::error(RunStatus::Error, error.to_string(), chrono::Utc::now()),
    };
    if cancel.is_cancelled() {
        shared.spool.remove(run_id);
        return;
    }
    shared.telemetry.finished(
        "sli",
        result.status.as_str(),
        &sli.workspace,
        &sli.slx,
        &result,
    );
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
    crate::deliver::hand_over(shared, delivery).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{PlatformClient, Registration};
    use crate::executor::Executor;
    use crate::secrets::SecretResolver;
    use crate::spool::Spool;
    use futures::future::BoxFuture;
    use std::path::Path;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use steward_model::run::RunSpec;
    use steward_model::workspace::CodeBundleRef;
    use steward_runtime::SecretValue;
    use tokio::sync::Semaphore;

    /// Records when each run of each SLX started and ended, and how many ran at once.
    #[derive(Default)]
    struct Recorder {
        busy: Mutex<HashMap<String, usize>>,
        overlaps: AtomicUsize,
        starts: Mutex<Vec<(String, Instant)>>,
        work: Duration,
    }

    impl Executor for Recorder {
        fn execute<'a>(
            &'a self,
            spec: &'a RunSpec,
            _: &'a [SecretValue],
            _: &'a Path,
            _: &'a CancellationToken,
        ) -> BoxFuture<'a, RunResult> {
            Box::pin(async move {
                {
                    let mut busy = self.busy.lock().unwrap();
                    let count = busy.entry(spec.slx.clone()).or_default();
                    *count += 1;
                    if *count > 1 {
                        self.overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                }
                self.starts
                    .lock()
                    .unwrap()
                    .push((spec.slx.clone(), Instant::now()));
                tokio::time::sleep(self.work).await;
                *self.busy.lock().unwrap().get_mut(&spec.slx).unwrap() -= 1;
                RunResult::error(RunStatus::Succeeded, "", chrono::Utc::now())
            })
        }
    }

    fn shared(executor: Arc<Recorder>, dir: &Path) -> Arc<Shared> {
        let config = crate::RunnerConfig::new("http://127.0.0.1:1", dir.to_path_buf());
        Arc::new(Shared {
            client: PlatformClient::new("http://127.0.0.1:1", None, false).unwrap(),
            registration: std::sync::RwLock::new(Registration {
                platform_url: "http://127.0.0.1:1".into(),
                runner_id: Uuid::nil(),
                credential: String::new(),
                location: "here".into(),
                poll_timeout_seconds: 1,
                lease_ttl_seconds: 2,
            }),
            executor,
            spool: Spool::open(dir.join("spool"), dir.join("staging")).unwrap(),
            slots: Arc::new(Semaphore::new(4)),
            active: Mutex::new(HashMap::new()),
            secrets: SecretResolver::local(None),
            shutdown: CancellationToken::new(),
            slot_freed: tokio::sync::Notify::new(),
            telemetry: Arc::new(crate::telemetry::Telemetry::new()),
            relay: crate::relay::Relay::open(dir.join("relay"), 1 << 20).unwrap(),
            config,
        })
    }

    fn sli(slx: &str, interval: u64) -> SliAssignment {
        SliAssignment {
            workspace: "ws".into(),
            slx: slx.into(),
            interval_seconds: interval,
            code_bundle: CodeBundleRef::default(),
            config: vec![],
            secrets: vec![],
            timeout_seconds: 10,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slis_run_on_their_interval_with_jitter_and_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        // "slow" takes longer than its interval; "quick" does not.
        let recorder = Arc::new(Recorder {
            work: Duration::from_millis(1500),
            ..Default::default()
        });
        let shared = shared(recorder.clone(), dir.path());
        let mut scheduler = Scheduler::new(shared.clone());
        let state = DesiredState {
            version: "v1".into(),
            location: "here".into(),
            slis: vec![sli("slow", 1), sli("quick", 20)],
        };
        scheduler.apply(&state);
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert_eq!(
            recorder.overlaps.load(Ordering::SeqCst),
            0,
            "an SLI overlapped itself"
        );

        let starts = recorder.starts.lock().unwrap().clone();
        let quick: Vec<Instant> = starts
            .iter()
            .filter(|(s, _)| s == "quick")
            .map(|(_, t)| *t)
            .collect();
        assert!(quick.len() >= 9, "quick ran {} times in 200 s", quick.len());
        for pair in quick.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_secs(18) && gap <= Duration::from_secs(22),
                "gap {gap:?} outside 20 s ± 10%"
            );
        }
        // "slow" (1.5 s of work, 1 s interval) leaves about an interval after each run.
        let slow: Vec<Instant> = starts
            .iter()
            .filter(|(s, _)| s == "slow")
            .map(|(_, t)| *t)
            .collect();
        assert!(
            slow.len() >= 60,
            "the slow SLI ran only {} times",
            slow.len()
        );
        for pair in slow.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(2400),
                "slow runs only {gap:?} apart"
            );
        }
        // Every finished run left a result to deliver (each SLI may have one run in progress).
        let pending = shared.spool.pending().len();
        assert!(
            starts.len() - pending <= 2,
            "{} runs started, {pending} results spooled",
            starts.len()
        );

        // Removing an SLI stops it; an unchanged one keeps its schedule.
        scheduler.apply(&DesiredState {
            version: "v2".into(),
            location: "here".into(),
            slis: vec![sli("quick", 20)],
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = recorder
            .starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == "slow")
            .count();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let after = recorder
            .starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == "slow")
            .count();
        assert_eq!(before, after, "a removed SLI kept running");
        shared.shutdown.cancel();
    }
}

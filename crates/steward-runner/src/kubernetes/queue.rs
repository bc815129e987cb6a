//! The queue of one warm pool as a plain state machine, the clock passed in: runs wait in
//! arrival order; a worker takes one under a lease with a TTL and renews it while it works. A
//! lease that lapses (the worker died) puts the run back at the head of the queue with its
//! attempt counted, until the attempts are used up and the run fails with the reason; a lease
//! the worker releases (it is stopping) puts the run back without counting. Every lease has
//! its own report token, so a report made under a lease that is no longer current can be told
//! apart and refused ([`super::handoff::Handoff::rekey`]).

use super::pod::Launch;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A run handed to a worker.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The lease.
    pub lease: Uuid,
    /// Which hand-out of the run this is, from 1.
    pub attempt: u32,
    /// The run, with this lease's report token.
    pub launch: Launch,
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lapse {
    /// The run waits again; reports with `token` must be refused from now on.
    Requeued {
        /// The run.
        run: Uuid,
        /// The lapsed lease's token.
        token: String,
    },
    /// The run used up its attempts and left the queue.
    GaveUp {
        /// The run.
        run: Uuid,
        /// The lapsed lease's token.
        token: String,
        /// Why, for the run's error.
        reason: String,
    },
}

#[derive(Debug)]
struct Held {
    lease: Uuid,
    token: String,
    worker: String,
    expires: Instant,
}

#[derive(Debug)]
struct Entry {
    launch: Launch,
    attempts: u32,
    held: Option<Held>,
}

/// One pool's runs.
#[derive(Debug)]
pub struct Queue {
    ttl: Duration,
    max_attempts: u32,
    waiting: VecDeque<Uuid>,
    runs: HashMap<Uuid, Entry>,
    contact: Instant,
}

/// A fresh report token (256 random bits).
pub fn new_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

impl Queue {
    /// An empty queue whose leases last `ttl` and whose runs are handed out at most
    /// `max_attempts` times; `now` counts as the last worker contact.
    pub fn new(ttl: Duration, max_attempts: u32, now: Instant) -> Self {
        Queue {
            ttl,
            max_attempts: max_attempts.max(1),
            waiting: VecDeque::new(),
            runs: HashMap::new(),
            contact: now,
        }
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Queues a run at the tail.
    pub fn push(&mut self, launch: Launch) {
        let run = launch.spec.run_id;
        self.runs.insert(
            run,
            Entry {
                launch,
                attempts: 0,
                held: None,
            },
        );
        self.waiting.push_back(run);
    }

    /// Hands the oldest waiting run to `worker` under a new lease.
    pub fn take(&mut self, worker: &str, now: Instant) -> Option<Grant> {
        self.contact = now;
        while let Some(run) = self.waiting.pop_front() {
            let Some(entry) = self.runs.get_mut(&run) else {
                continue; // removed while waiting
            };
            entry.attempts += 1;
            let held = Held {
                lease: Uuid::new_v4(),
                token: new_token(),
                worker: worker.to_string(),
                expires: now + self.ttl,
            };
            let mut launch = entry.launch.clone();
            launch.token = held.token.clone();
            let grant = Grant {
                lease: held.lease,
                attempt: entry.attempts,
                launch,
            };
            entry.held = Some(held);
            return Some(grant);
        }
        None
    }

    fn held_mut(&mut self, lease: Uuid) -> Option<(Uuid, &mut Entry)> {
        self.runs
            .iter_mut()
            .find(|(_, e)| e.held.as_ref().is_some_and(|h| h.lease == lease))
            .map(|(run, e)| (*run, e))
    }

    /// Extends a current lease by the TTL; `None` when it is not current (lapsed, released,
    /// or its run ended or was cancelled).
    pub fn renew(&mut self, lease: Uuid, now: Instant) -> Option<Instant> {
        self.contact = now;
        let ttl = self.ttl;
        let (_, entry) = self.held_mut(lease)?;
        let held = entry.held.as_mut().expect("found by its lease");
        if held.expires <= now {
            return None; // lapsed; the next sweep requeues it
        }
        held.expires = now + ttl;
        Some(held.expires)
    }

    /// Gives a run back at the head of the queue, its attempt not counted; returns the run
    /// and the released lease's token.
    pub fn release(&mut self, lease: Uuid, now: Instant) -> Option<(Uuid, String)> {
        self.contact = now;
        let (run, entry) = self.held_mut(lease)?;
        let held = entry.held.take().expect("found by its lease");
        entry.attempts -= 1;
        self.waiting.push_front(run);
        Some((run, held.token))
    }

    /// Ends the leases that lapsed by `now`.
    pub fn sweep(&mut self, now: Instant) -> Vec<Lapse> {
        let mut lapsed: Vec<Uuid> = self
            .runs
            .iter()
            .filter(|(_, e)| e.held.as_ref().is_some_and(|h| h.expires <= now))
            .map(|(run, _)| *run)
            .collect();
        lapsed.sort(); // run ids are time-ordered: the oldest goes back first
        let mut out = Vec::new();
        for run in lapsed.into_iter().rev() {
            let entry = self.runs.get_mut(&run).expect("listed");
            let held = entry.held.take().expect("listed as held");
            if entry.attempts >= self.max_attempts {
                self.runs.remove(&run);
                out.push(Lapse::GaveUp {
                    run,
                    token: held.token,
                    reason: format!(
                        "the pool worker running it stopped renewing its lease {} times (last: {}); given up",
                        self.max_attempts, held.worker
                    ),
                });
            } else {
                self.waiting.push_front(run);
                out.push(Lapse::Requeued {
                    run,
                    token: held.token,
                });
            }
        }
        out
    }

    /// Takes a run out of the queue, waiting or leased (it ended, was cancelled, or goes to
    /// a pod instead).
    pub fn remove(&mut self, run: Uuid) -> bool {
        self.waiting.retain(|r| *r != run);
        self.runs.remove(&run).is_some()
    }

    /// Whether the run waits for a worker (rather than being held by one).
    pub fn is_waiting(&self, run: Uuid) -> bool {
        self.runs.get(&run).is_some_and(|e| e.held.is_none())
    }

    /// The worker holding the run, if one does.
    pub fn holder(&self, run: Uuid) -> Option<&str> {
        self.runs
            .get(&run)
            .and_then(|e| e.held.as_ref())
            .map(|h| h.worker.as_str())
    }

    /// Notes that a worker is in contact.
    pub fn touch(&mut self, now: Instant) {
        self.contact = now;
    }

    /// How long no worker has been in contact.
    pub fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.contact)
    }

    /// Runs waiting or held.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether no run waits or is held.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_model::run::{RunKind, RunSpec};
    use steward_model::workspace::CodeBundleRef;

    fn launch() -> Launch {
        Launch {
            spec: RunSpec {
                run_id: Uuid::now_v7(),
                kind: RunKind::Runbook,
                workspace: "ws".into(),
                slx: "slx".into(),
                location: "here".into(),
                code_bundle: CodeBundleRef {
                    repo_url: "https://example.com/c.git".into(),
                    git_ref: "main".into(),
                    path_to_robot: None,
                    path_to_yaml: None,
                },
                config: vec![],
                secrets: vec![],
                task_titles: vec![],
                timeout_seconds: 60,
                session_id: None,
                interval_seconds: None,
            },
            report_to: "http://runner".into(),
            token: String::new(),
            secrets: Default::default(),
            secret_values: Default::default(),
            collection_overrides: Default::default(),
        }
    }

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn runs_go_out_in_order_each_lease_with_its_own_token() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        let (a, b) = (launch(), launch());
        q.push(a.clone());
        q.push(b.clone());
        let first = q.take("w1", t0).unwrap();
        let second = q.take("w2", t0).unwrap();
        assert_eq!(first.launch.spec.run_id, a.spec.run_id);
        assert_eq!(second.launch.spec.run_id, b.spec.run_id);
        assert_ne!(first.launch.token, second.launch.token);
        assert_eq!(first.launch.token.len(), 64);
        assert_eq!((first.attempt, second.attempt), (1, 1));
        assert!(q.take("w3", t0).is_none());
        assert_eq!(q.holder(a.spec.run_id), Some("w1"));
        assert!(!q.is_waiting(a.spec.run_id));
    }

    #[test]
    fn renewing_keeps_a_lease_and_a_lapsed_one_requeues_the_run_at_the_head() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        let (a, b) = (launch(), launch());
        q.push(a.clone());
        let grant = q.take("w1", t0).unwrap();
        q.push(b.clone());
        assert_eq!(q.renew(grant.lease, t0 + TTL / 2), Some(t0 + TTL / 2 + TTL));
        assert!(q.sweep(t0 + TTL).is_empty(), "renewed, not lapsed");
        let lapsed = q.sweep(t0 + TTL * 2);
        assert_eq!(
            lapsed,
            [Lapse::Requeued {
                run: a.spec.run_id,
                token: grant.launch.token.clone()
            }]
        );
        assert!(q.is_waiting(a.spec.run_id));
        assert_eq!(
            q.renew(grant.lease, t0 + TTL * 2),
            None,
            "a lapsed lease stays lapsed"
        );
        let again = q.take("w2", t0 + TTL * 2).unwrap();
        assert_eq!(again.launch.spec.run_id, a.spec.run_id, "ahead of b");
        assert_eq!(again.attempt, 2);
        assert_ne!(again.launch.token, grant.launch.token);
    }

    #[test]
    fn a_lease_past_its_expiry_is_not_renewed_even_before_the_sweep() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        q.push(launch());
        let grant = q.take("w1", t0).unwrap();
        assert_eq!(q.renew(grant.lease, t0 + TTL), None);
        assert_eq!(q.sweep(t0 + TTL).len(), 1);
    }

    #[test]
    fn attempts_are_bounded_and_the_reason_names_the_worker() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        let a = launch();
        q.push(a.clone());
        let mut now = t0;
        for attempt in 1..=3 {
            let grant = q.take(&format!("w{attempt}"), now).unwrap();
            assert_eq!(grant.attempt, attempt);
            now += TTL;
            let lapsed = q.sweep(now);
            assert_eq!(lapsed.len(), 1);
            if attempt < 3 {
                assert!(matches!(lapsed[0], Lapse::Requeued { .. }));
            } else {
                let Lapse::GaveUp { run, reason, .. } = &lapsed[0] else {
                    panic!("{lapsed:?}")
                };
                assert_eq!(*run, a.spec.run_id);
                assert!(
                    reason.contains("3 times") && reason.contains("w3"),
                    "{reason}"
                );
            }
        }
        assert!(q.is_empty());
        assert!(q.take("w4", now).is_none());
    }

    #[test]
    fn a_released_run_goes_back_first_without_counting_the_attempt() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 1, t0);
        let (a, b) = (launch(), launch());
        q.push(a.clone());
        q.push(b.clone());
        let grant = q.take("w1", t0).unwrap();
        let (run, token) = q.release(grant.lease, t0).unwrap();
        assert_eq!((run, token), (a.spec.run_id, grant.launch.token));
        assert!(q.release(grant.lease, t0).is_none());
        assert!(q.renew(grant.lease, t0).is_none());
        let again = q.take("w2", t0).unwrap();
        assert_eq!(
            (again.launch.spec.run_id, again.attempt),
            (a.spec.run_id, 1)
        );
    }

    #[test]
    fn removed_runs_leave_no_trace_and_their_leases_end() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        let (a, b) = (launch(), launch());
        q.push(a.clone());
        q.push(b.clone());
        let grant = q.take("w1", t0).unwrap();
        assert!(q.remove(a.spec.run_id));
        assert!(q.remove(b.spec.run_id));
        assert!(!q.remove(b.spec.run_id));
        assert!(q.renew(grant.lease, t0).is_none());
        assert!(q.sweep(t0 + TTL * 2).is_empty());
        assert!(q.take("w1", t0).is_none());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn idle_time_counts_from_the_last_worker_contact() {
        let t0 = Instant::now();
        let mut q = Queue::new(TTL, 3, t0);
        assert_eq!(q.idle(t0 + TTL), TTL);
        assert!(q.take("w1", t0 + TTL).is_none());
        assert_eq!(q.idle(t0 + TTL), Duration::ZERO);
        q.touch(t0 + TTL * 2);
        assert_eq!(q.idle(t0 + TTL * 3), TTL);
    }
}

//! Several platform replicas on one PostgreSQL database: polls wake across replicas, and
//! runners polling different replicas never get the same run.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use steward_model::run::{RunStatus, TaskStatus};
use steward_model::wire::{CompleteRequest, PollRequest};
use steward_platform::PlatformConfig;
use uuid::Uuid;

/// Two platforms sharing one fresh PostgreSQL database.
async fn two_replicas(tune: impl Fn(&mut PlatformConfig)) -> (TestPlatform, TestPlatform) {
    let url = tokio::task::block_in_place(steward_testkit::postgres::database);
    let first = start(&TestDb::Sqlite, |c| {
        c.database_url = Some(url.clone());
        tune(c);
    })
    .await;
    let second = start(&TestDb::Sqlite, |c| {
        c.database_url = Some(url.clone());
        tune(c);
    })
    .await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_held_by_one_replica_wakes_for_work_queued_on_another() {
    let (a, b) = two_replicas(|c| c.poll_timeout = Duration::from_secs(20)).await;
    a.import(&web_files()).await;
    // The runner registered on A, polls B: replicas share runners and credentials.
    let mut runner = a.runner().await;
    runner.url = b.url.clone();
    let version = runner.poll(&poll_for(0)).await.desired_state_version;
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let poll = runner
            .poll(&PollRequest {
                free_capacity: 1,
                capacity: 1,
                running: vec![],
                desired_state_version: Some(version),
                no_wait: false,
            })
            .await;
        (poll, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.session("web", &["Check HTTP Endpoint Availability and Latency"])
        .await;
    let (poll, waited) = waiting.await.unwrap();
    assert_eq!(
        poll.leases.len(),
        1,
        "the poll on B got the run queued on A"
    );
    assert!(
        waited < Duration::from_secs(10),
        "woke after {waited:?}, not at the 20 s poll timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runners_racing_on_two_replicas_run_every_run_exactly_once() {
    const RUNS: usize = 2_000;
    let (a, b) = two_replicas(|c| c.poll_timeout = Duration::from_secs(2)).await;
    a.import(&web_files()).await;
    let mut runners = Vec::new();
    for (i, replica) in [&a, &b, &a, &b].into_iter().enumerate() {
        let mut runner = a.runner().await;
        runner.url = replica.url.clone();
        runners.push((i, runner));
    }
    // Queue the runs in sessions of 100 through both replicas while the runners already poll.
    let queued = {
        let (a_url, b_url, http) = (a.url.clone(), b.url.clone(), a.http.clone());
        tokio::spawn(async move {
            for s in 0..RUNS / 100 {
                let url = if s % 2 == 0 { &a_url } else { &b_url };
                let requests: Vec<_> = (0..100)
                    .map(|_| serde_json::json!({ "slx": "web", "taskTitles": ["*"] }))
                    .collect();
                let response = http
                    .post(format!("{url}/api/v1/workspaces/demo/sessions"))
                    .json(&serde_json::json!({ "runRequests": requests }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        })
    };
    let all_queued = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, runner) in runners {
        let all_queued = all_queued.clone();
        workers.push(tokio::spawn(async move {
            let version = runner.poll(&poll_for(0)).await.desired_state_version;
            // Every lease this runner got: (run, lease).
            let mut got: Vec<(Uuid, Uuid)> = Vec::new();
            let mut idle_polls = 0;
            while idle_polls < 2 || !all_queued.load(std::sync::atomic::Ordering::SeqCst) {
                let poll = runner
                    .poll(&PollRequest {
                        free_capacity: 25,
                        capacity: 25,
                        running: vec![],
                        desired_state_version: Some(version.clone()),
                        no_wait: false,
                    })
                    .await;
                if poll.leases.is_empty() {
                    idle_polls += 1;
                    continue;
                }
                idle_polls = 0;
                for lease in poll.leases {
                    let done = result(RunStatus::Succeeded, &[("Check", TaskStatus::Pass)], &[]);
                    let (status, body) = runner
                        .complete(
                            lease.run.run_id,
                            &CompleteRequest {
                                lease_id: Some(lease.lease_id),
                                spec: None,
                                result: done,
                            },
                        )
                        .await;
                    assert_eq!(status, 200, "runner {i}: {body}");
                    assert_eq!(body["recorded"], true, "runner {i}: completed once");
                    got.push((lease.run.run_id, lease.lease_id));
                }
            }
            got
        }));
    }
    queued.await.unwrap();
    all_queued.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut leased: HashMap<Uuid, usize> = HashMap::new();
    let mut per_runner = Vec::new();
    for worker in workers {
        let got = worker.await.unwrap();
        per_runner.push(got.len());
        for (run, _) in got {
            *leased.entry(run).or_default() += 1;
        }
    }
    assert_eq!(leased.len(), RUNS, "every run was handed out");
    let twice: Vec<_> = leased.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "runs handed out twice: {twice:?}");
    assert!(
        per_runner.iter().filter(|n| **n > 0).count() >= 2,
        "both replicas served work: {per_runner:?}"
    );
    let (_, runs) = b.get("/api/v1/runs?status=succeeded&limit=1000").await;
    assert_eq!(runs.as_array().unwrap().len(), 1000, "the API lists them");
    let (_, status) = a.get("/api/v1/status").await;
    assert_eq!(status["queuedRuns"], 0, "{status}");
    assert_eq!(status["runningRuns"], 0, "{status}");
}

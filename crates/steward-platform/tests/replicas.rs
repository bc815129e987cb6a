//! Several platform replicas on one PostgreSQL database: a poll held by one wakes for work
//! queued through another. (Runners racing through two replicas run as real processes in
//! `steward-cli/tests/faults.rs`.)

mod common;

use common::*;
use std::time::{Duration, Instant};
use steward_model::wire::PollRequest;
use steward_platform::PlatformConfig;

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

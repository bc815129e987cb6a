//! Several platform replicas on one PostgreSQL database: a poll held by one wakes for work
//! queued through another. (Runners racing through two replicas run as real processes in
//! `steward-cli/tests/faults.rs`.)

mod common;

use common::*;
use std::time::Duration;
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
    assert_long_poll_wakes(&a, runner).await;
}

//! The run queue: sessions, leases, long polls, expiry and requeue, cancellation, idempotent
//! completion.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use steward_model::run::{RunStatus, TaskStatus};
use steward_model::wire::{CompleteRequest, PollRequest};
use uuid::Uuid;

async fn a_session_run_is_leased_completed_once_and_visible(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    let session = p.session("demo--web", &["*"]).await;
    let run_id: Uuid = serde_json::from_value(session["runs"][0]["id"].clone()).unwrap();
    assert_eq!(session["runs"][0]["status"], "queued");

    let poll = runner.poll(&poll_for(2)).await;
    assert_eq!(poll.leases.len(), 1);
    let lease = &poll.leases[0];
    assert_eq!(lease.run.run_id, run_id);
    assert_eq!(lease.run.slx, "web");
    assert!(lease.run.task_titles.is_empty(), "'*' means every task");
    assert_eq!(
        lease.run.session_id,
        serde_json::from_value(session["id"].clone()).unwrap()
    );
    assert_eq!(lease.attempt, 1);
    assert!(
        runner.poll(&poll_for(2)).await.leases.is_empty(),
        "a leased run is not handed out twice"
    );

    let done = CompleteRequest {
        lease_id: Some(lease.lease_id),
        spec: None,
        result: result(
            RunStatus::Succeeded,
            &[("Check", TaskStatus::Pass)],
            &[(2, "Check", "Down")],
        ),
    };
    let (status, body) = runner.complete(run_id, &done).await;
    assert_eq!(
        (status, body["recorded"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, body) = runner.complete(run_id, &done).await;
    assert_eq!(
        (status, body["recorded"].clone()),
        (StatusCode::OK, json!(false)),
        "the same completion twice changes nothing"
    );

    let (_, run) = p.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["result"]["issues"][0]["title"], "Down");
    let (_, issues) = p.get("/api/v1/issues").await;
    assert_eq!(issues.as_array().unwrap().len(), 1);
    assert_eq!(
        issues[0]["occurrences"], 1,
        "a duplicate completion must not count twice"
    );
}

async fn a_long_poll_wakes_when_work_arrives(db: TestDb) {
    let p = start(&db, |c| c.poll_timeout = Duration::from_secs(20)).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    assert_long_poll_wakes(&p, runner).await;
}

async fn an_expired_lease_is_requeued_then_given_up_and_late_results_are_refused(db: TestDb) {
    let p = start(&db, |c| {
        c.lease_ttl = Duration::from_millis(600);
        c.max_attempts = 2;
    })
    .await;
    p.import(&web_files()).await;
    let lost = p.runner().await;
    let other = p.runner().await;
    let session = p.session("web", &[]).await;
    let run_id: Uuid = serde_json::from_value(session["runs"][0]["id"].clone()).unwrap();
    let first = lost.poll(&poll_for(1)).await.leases.remove(0);

    // The first runner goes silent; the run comes back and the second runner gets it.
    let second = steward_testkit::wait_until_async(
        "the run to be requeued",
        Duration::from_secs(10),
        || async { other.poll(&poll_for(1)).await.leases.into_iter().next() },
    )
    .await;
    assert_eq!(second.run.run_id, run_id);
    assert_eq!(second.attempt, 2);
    assert_ne!(second.lease_id, first.lease_id);

    let late = CompleteRequest {
        lease_id: Some(first.lease_id),
        spec: None,
        result: result(RunStatus::Succeeded, &[], &[]),
    };
    let (status, body) = lost.complete(run_id, &late).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no longer holds"));

    // The second runner goes silent too: two attempts used, the run ends as an error.
    let run = steward_testkit::wait_until_async(
        "the run to be given up",
        Duration::from_secs(10),
        || async {
            let (_, run) = p.get(&format!("/api/v1/runs/{run_id}")).await;
            (run["status"] == "error").then_some(run)
        },
    )
    .await;
    assert!(
        run["result"]["error"]
            .as_str()
            .unwrap()
            .contains("2 time(s)"),
        "{run}"
    );
    assert_eq!(run["attempts"], 2);
}

async fn polls_renew_leases_and_report_revoked_ones(db: TestDb) {
    let p = start(&db, |c| c.lease_ttl = Duration::from_millis(800)).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    p.session("web", &[]).await;
    let lease = runner.poll(&poll_for(1)).await.leases.remove(0);
    let stranger = Uuid::now_v7();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let poll = runner
            .poll(&PollRequest {
                free_capacity: 0,
                capacity: 1,
                running: vec![lease.lease_id, stranger],
                desired_state_version: None,
                no_wait: true,
                no_slis: false,
            })
            .await;
        assert_eq!(poll.revoked, vec![stranger]);
    }
    let (_, run) = p.get(&format!("/api/v1/runs/{}", lease.run.run_id)).await;
    assert_eq!(run["status"], "running", "renewed leases do not expire");
    assert_eq!(run["attempts"], 1);
}

async fn cancelling_queued_and_running_runs(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let queued = p.session("web", &[]).await["runs"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, run) = p
        .send(
            Method::POST,
            &format!("/api/v1/runs/{queued}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["status"], "cancelled");
    let (status, _) = p
        .send(
            Method::POST,
            &format!("/api/v1/runs/{queued}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let runner = p.runner().await;
    p.session("web", &[]).await;
    let lease = runner.poll(&poll_for(1)).await.leases.remove(0);
    let id = lease.run.run_id;
    p.send(
        Method::POST,
        &format!("/api/v1/runs/{id}/cancel"),
        &json!({}),
    )
    .await;
    let poll = runner
        .poll(&PollRequest {
            free_capacity: 0,
            capacity: 1,
            running: vec![lease.lease_id],
            desired_state_version: None,
            no_wait: true,
            no_slis: false,
        })
        .await;
    assert_eq!(poll.cancel, vec![id]);
    let done = CompleteRequest {
        lease_id: Some(lease.lease_id),
        spec: None,
        result: result(RunStatus::Cancelled, &[], &[]),
    };
    runner.complete(id, &done).await;
    let (_, run) = p.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["status"], "cancelled");
}

async fn sessions_refuse_unknown_slxs_and_slxs_without_runbooks(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let mut files = web_files();
    files.pop(); // no runbook
    p.import(&files).await;
    let body = json!({ "runRequests": [{ "slx": "web", "taskTitles": ["*"] }] });
    let (status, error) = p
        .send(Method::POST, "/api/v1/workspaces/demo/sessions", &body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error["error"].as_str().unwrap().contains("no runbook.yaml"),
        "{error}"
    );
    let body = json!({ "runRequests": [{ "slx": "ghost" }] });
    let (status, error) = p
        .send(Method::POST, "/api/v1/workspaces/demo/sessions", &body)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"].as_str().unwrap().contains("ghost"));
    let (status, _) = p
        .send(
            Method::POST,
            "/api/v1/workspaces/demo/sessions",
            &json!({ "runRequests": [] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn registration_needs_a_known_token_and_runner_calls_a_credential(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let (status, body) = p
        .send(
            Method::POST,
            "/api/v1/runner/register",
            &json!({ "token": "nope", "name": "x", "version": "0", "capacity": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("registration token")
    );
    let (status, _) = p
        .send(
            Method::POST,
            "/api/v1/runner/poll",
            &json!({ "freeCapacity": 1, "capacity": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, created) = p
        .send(
            Method::POST,
            "/api/v1/locations/edge-1/registration-tokens",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap();
    let (status, registered) = p
        .send(
            Method::POST,
            "/api/v1/runner/register",
            &json!({ "token": token, "name": "e", "version": "0", "capacity": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["location"], "edge-1");
    let (_, runners) = p.get("/api/v1/runners").await;
    assert_eq!(runners[0]["health"], "online");
}

async fn a_stopping_runner_hands_its_runs_back_at_once(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let leaving = p.runner().await;
    let staying = p.runner().await;
    p.session("web", &[]).await;
    let lease = leaving.poll(&poll_for(1)).await.leases.remove(0);
    leaving
        .poll(&PollRequest {
            running: vec![lease.lease_id],
            ..poll_for(0)
        })
        .await;
    let (_, runners) = p.get("/api/v1/runners").await;
    let view = |runners: &serde_json::Value| {
        runners
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == json!(leaving.id))
            .cloned()
            .unwrap()
    };
    assert_eq!(view(&runners)["running"], 1);
    assert_eq!(view(&runners)["runningRunIds"], json!([lease.run.run_id]));
    let (status, body) = leaving
        .post(
            "/api/v1/runner/release",
            &json!({ "leases": [lease.lease_id] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["requeued"], 1);
    let (_, runners) = p.get("/api/v1/runners").await;
    assert_eq!(view(&runners)["running"], 0, "a stopped runner is not busy");
    assert_eq!(view(&runners)["runningRunIds"], json!([]));
    let again = staying.poll(&poll_for(1)).await.leases.remove(0);
    assert_eq!(again.run.run_id, lease.run.run_id);
    assert_eq!(
        again.attempt, 1,
        "a handed-back run does not use up an attempt"
    );
    // Someone else's lease cannot be released.
    let (_, body) = leaving
        .post(
            "/api/v1/runner/release",
            &json!({ "leases": [again.lease_id] }),
        )
        .await;
    assert_eq!(body["requeued"], 0);
}

async fn runner_liveness_follows_the_thresholds(db: TestDb) {
    let p = start(&db, |c| {
        c.lease_ttl = Duration::from_secs(2);
        c.runner_offline_after = Duration::from_secs(4);
    })
    .await;
    let runner = p.runner().await;
    let health = || async {
        let (_, runners) = p.get("/api/v1/runners").await;
        runners[0]["health"].as_str().unwrap().to_string()
    };
    runner.poll(&poll_for(0)).await;
    assert_eq!(health().await, "online");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(health().await, "stale", "no poll for longer than a lease");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        health().await,
        "offline",
        "no poll for longer than the offline threshold"
    );
    runner.poll(&poll_for(0)).await;
    assert_eq!(health().await, "online", "back with its next poll");
    let (_, runners) = p.get("/api/v1/runners").await;
    assert_eq!(runners[0]["capacity"], 4);
    assert!(runners[0]["lastSeenAt"].is_string());
}

/// Completions arriving together share a commit; one run's completion sent several times at
/// once is still recorded once, and a stale lease among them is refused on its own.
async fn simultaneous_completions_are_each_recorded_once(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = std::sync::Arc::new(p.runner().await);
    let requests: Vec<_> = (0..20)
        .map(|_| json!({ "slx": "web", "taskTitles": ["*"] }))
        .collect();
    let (status, _) = p
        .send(
            Method::POST,
            "/api/v1/workspaces/demo/sessions",
            &json!({ "runRequests": requests }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let leases = runner.poll(&poll_for(20)).await.leases;
    assert_eq!(leases.len(), 20);
    let mut sends = Vec::new();
    for (i, lease) in leases.iter().enumerate() {
        // Three copies of each completion, and for every fifth run one under a wrong lease.
        let issues: &[(u8, &str, &str)] = if i % 2 == 0 {
            &[(2, "Check", "Down")]
        } else {
            &[]
        };
        let done = CompleteRequest {
            lease_id: Some(lease.lease_id),
            spec: None,
            result: result(RunStatus::Succeeded, &[("Check", TaskStatus::Fail)], issues),
        };
        for copy in 0..4 {
            let mut request = done.clone();
            if copy == 3 {
                if i % 5 != 0 {
                    continue;
                }
                request.lease_id = Some(Uuid::now_v7());
            }
            let (runner, run) = (runner.clone(), lease.run.run_id);
            sends.push(tokio::spawn(async move {
                let (status, body) = runner.complete(run, &request).await;
                (run, copy, status, body)
            }));
        }
    }
    let mut recorded: std::collections::HashMap<Uuid, usize> = Default::default();
    for send in sends {
        let (run, copy, status, body) = send.await.unwrap();
        if copy == 3 {
            assert_eq!(
                status,
                StatusCode::CONFLICT,
                "a wrong lease is refused: {body}"
            );
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        *recorded.entry(run).or_default() += usize::from(body["recorded"] == true);
    }
    assert_eq!(recorded.len(), 20);
    assert!(
        recorded.values().all(|n| *n == 1),
        "each run recorded by exactly one of its copies: {recorded:?}"
    );
    let (_, runs) = p.get("/api/v1/runs?status=succeeded").await;
    assert_eq!(runs.as_array().unwrap().len(), 20);
    let (_, issues) = p.get("/api/v1/issues").await;
    assert_eq!(issues.as_array().unwrap().len(), 1, "one fingerprint");
    assert_eq!(
        issues[0]["occurrences"], 10,
        "one occurrence per raising run"
    );
}

steward_testkit::on_both_databases!(
    simultaneous_completions_are_each_recorded_once,
    runner_liveness_follows_the_thresholds,
    a_session_run_is_leased_completed_once_and_visible,
    a_long_poll_wakes_when_work_arrives,
    an_expired_lease_is_requeued_then_given_up_and_late_results_are_refused,
    polls_renew_leases_and_report_revoked_ones,
    cancelling_queued_and_running_runs,
    sessions_refuse_unknown_slxs_and_slxs_without_runbooks,
    registration_needs_a_known_token_and_runner_calls_a_credential,
    a_stopping_runner_hands_its_runs_back_at_once,
);

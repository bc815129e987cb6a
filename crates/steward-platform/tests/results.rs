//! What completions leave behind: issues with occurrences and automatic resolution, SLI
//! values, artifacts behind signed URLs.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use steward_model::metrics::{MetricKind, MetricPoint};
use steward_model::run::{RunKind, RunSpec, RunStatus, TaskStatus};
use steward_model::wire::CompleteRequest;
use uuid::Uuid;

async fn run_once(
    p: &TestPlatform,
    runner: &TestRunner,
    tasks: &[(&str, TaskStatus)],
    issues: &[(u8, &str, &str)],
) -> Uuid {
    p.session("web", &[]).await;
    let lease = runner.poll(&poll_for(1)).await.leases.remove(0);
    let status = if tasks.iter().any(|t| t.1 == TaskStatus::Fail) {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let done = CompleteRequest {
        lease_id: Some(lease.lease_id),
        spec: None,
        result: result(status, tasks, issues),
    };
    let (code, body) = runner.complete(lease.run.run_id, &done).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    lease.run.run_id
}

async fn issues_are_deduplicated_counted_and_resolved_by_the_next_passing_run(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    let check = ("Check", TaskStatus::Pass);
    let headers = ("Headers", TaskStatus::Pass);
    run_once(
        &p,
        &runner,
        &[check, headers],
        &[
            (2, "Check", "A down"),
            (3, "Check", "B slow"),
            (4, "Headers", "H"),
        ],
    )
    .await;
    run_once(
        &p,
        &runner,
        &[check, headers],
        &[(1, "Check", "A down"), (4, "Headers", "H")],
    )
    .await;

    let (_, open) = p.get("/api/v1/issues?workspace=demo").await;
    let titles: Vec<(&str, u64, u64)> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap(),
                i["occurrences"].as_u64().unwrap(),
                i["severity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        vec![("A down", 2, 1), ("H", 2, 4)],
        "B slow was resolved; A down took the latest severity"
    );
    let (_, resolved) = p.get("/api/v1/issues?status=resolved").await;
    assert_eq!(resolved[0]["title"], "B slow");
    assert!(resolved[0]["resolvedAt"].is_string());

    // A failing Check does not resolve A down; only tasks that pass can resolve.
    run_once(
        &p,
        &runner,
        &[("Check", TaskStatus::Fail), headers],
        &[(4, "Headers", "H")],
    )
    .await;
    let (_, open) = p.get("/api/v1/issues").await;
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == "A down")
    );

    // A passing Check without it resolves it; Headers did not run, so H stays open.
    run_once(&p, &runner, &[check], &[]).await;
    let (_, open) = p.get("/api/v1/issues").await;
    let titles: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["H"]);

    // It comes back: reopened, counted.
    run_once(&p, &runner, &[check], &[(2, "Check", "A down")]).await;
    let (_, open) = p.get("/api/v1/issues?slx=web").await;
    let reopened = open
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "A down")
        .unwrap();
    assert_eq!(reopened["occurrences"], 3);
    assert_eq!(reopened["status"], "open");
    assert_eq!(reopened["nextSteps"], "fix it");
}

async fn sli_results_store_the_value_and_sub_metrics(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    let (_, state) = runner.get("/api/v1/runner/desired-state").await;
    let assignment: steward_model::wire::SliAssignment =
        serde_json::from_value(state["slis"][0].clone()).unwrap();
    let run_id = Uuid::now_v7();
    let spec: RunSpec = assignment.run_spec(run_id, "local");
    assert_eq!(spec.kind, RunKind::Sli);
    let point = |name: &str, value: f64| MetricPoint {
        name: name.into(),
        value,
        kind: MetricKind::Gauge,
        count: None,
        attributes: Default::default(),
        time: chrono::Utc::now(),
    };
    let mut outcome = result(RunStatus::Succeeded, &[("Measure", TaskStatus::Pass)], &[]);
    outcome.metrics = vec![
        point("web__sli__healthy_endpoints", 1.0),
        point("web__sli", 0.5),
        point("other__sli", 9.0),
    ];
    outcome.sli_value = Some(0.5);
    let done = CompleteRequest {
        lease_id: None,
        spec: Some(spec.clone()),
        result: outcome,
    };
    let (status, body) = runner.complete(run_id, &done).await;
    assert_eq!(
        (status, body["recorded"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (_, body) = runner.complete(run_id, &done).await;
    assert_eq!(body["recorded"], false);

    let (_, values) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?since=1h")
        .await;
    let got: Vec<(&str, f64)> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["metric"].as_str().unwrap(), v["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), 2, "{values}");
    assert!(got.contains(&("", 0.5)) && got.contains(&("healthy_endpoints", 1.0)));
    let (_, only) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?metric=value")
        .await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    let (_, slxs) = p.get("/api/v1/workspaces/demo/slxs").await;
    assert_eq!(slxs[0]["latestSli"]["value"], 0.5);
    let (status, _) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?since=yesterdayish")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A runner of another location cannot report for this one.
    let mut foreign = spec;
    foreign.location = "elsewhere".into();
    foreign.run_id = Uuid::now_v7();
    let done = CompleteRequest {
        lease_id: None,
        spec: Some(foreign.clone()),
        result: result(RunStatus::Succeeded, &[], &[]),
    };
    let (status, _) = runner.complete(foreign.run_id, &done).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn artifacts_move_only_through_valid_signed_urls(db: TestDb) {
    let p = start(&db, |c| c.url_ttl = Duration::from_secs(2)).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    p.session("web", &[]).await;
    let lease = runner.poll(&poll_for(1)).await.leases.remove(0);
    let run = lease.run.run_id;
    let (status, signed) = runner
        .post(
            &format!("/api/v1/runner/runs/{run}/artifacts/log.html"),
            &json!({ "leaseId": lease.lease_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let put_url = signed["url"].as_str().unwrap().to_string();
    let put = p
        .http
        .put(&put_url)
        .body("<html>log</html>")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);

    let (_, links) = p.get(&format!("/api/v1/runs/{run}/artifacts")).await;
    assert_eq!(links[0]["name"], "log.html");
    assert_eq!(links[0]["size"], 16);
    let get_url = links[0]["url"].as_str().unwrap().to_string();
    let got = p.http.get(&get_url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert!(
        got.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(got.text().await.unwrap(), "<html>log</html>");

    // Refused: the PUT URL used to read, the GET URL used to write, another file, a tampered
    // signature, an extended expiry, no signature, and finally the expired URL.
    let refused = |response: reqwest::Response| async move {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    };
    refused(p.http.get(&put_url).send().await.unwrap()).await;
    refused(p.http.put(&get_url).body("x").send().await.unwrap()).await;
    refused(
        p.http
            .get(get_url.replace("log.html", "stdout.txt"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let sig_at = get_url.find("sig=").unwrap() + 4;
    let mut tampered = get_url.clone();
    let flipped = if &tampered[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    refused(p.http.get(&tampered).send().await.unwrap()).await;
    let extended = {
        let start = get_url.find("expires=").unwrap() + 8;
        let end = get_url[start..].find('&').unwrap() + start;
        let later: i64 = get_url[start..end].parse::<i64>().unwrap() + 3600;
        format!("{}{later}{}", &get_url[..start], &get_url[end..])
    };
    refused(p.http.get(&extended).send().await.unwrap()).await;
    refused(
        p.http
            .get(format!("{}/api/v1/artifacts/{run}/log.html", p.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    refused(p.http.get(&get_url).send().await.unwrap()).await;

    // Once the run is complete, its artifacts are final.
    let done = CompleteRequest {
        lease_id: Some(lease.lease_id),
        spec: None,
        result: result(RunStatus::Succeeded, &[], &[]),
    };
    runner.complete(run, &done).await;
    for body in [json!({ "leaseId": lease.lease_id }), json!({})] {
        let (status, _) = runner
            .post(
                &format!("/api/v1/runner/runs/{run}/artifacts/stdout.txt"),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }

    // Names are file names only; other runners cannot upload for this run.
    let (status, _) = runner
        .post(
            &format!("/api/v1/runner/runs/{run}/artifacts/..passwd"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stranger = p.runner().await;
    let (status, _) = stranger
        .post(
            &format!("/api/v1/runner/runs/{run}/artifacts/x.txt"),
            &json!({ "leaseId": lease.lease_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

steward_testkit::on_both_databases!(
    issues_are_deduplicated_counted_and_resolved_by_the_next_passing_run,
    sli_results_store_the_value_and_sub_metrics,
    artifacts_move_only_through_valid_signed_urls,
);

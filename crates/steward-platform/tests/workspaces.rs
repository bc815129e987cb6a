//! Workspace import, export, SLX listing and desired state, over HTTP.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use steward_model::wire::PollRequest;

async fn import_reports_a_diff_and_keeps_what_a_broken_file_would_have_replaced(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let (status, report) = p.import(&web_files()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["added"], json!(["web"]));

    let (_, again) = p.import(&web_files()).await;
    assert_eq!(again["unchanged"], json!(["web"]));
    assert_eq!(again["added"], json!([]));

    // A broken sli.yaml: the SLX is reported with file:line and its stored version is kept.
    let broken = SLI.replace("intervalSeconds: 30", "intervalSeconds: [30]");
    let mut files = web_files();
    files[2] = ("slxs/web/sli.yaml", &broken);
    let (status, report) = p.import(&files).await;
    assert_eq!(status, StatusCode::OK);
    let problem = &report["problems"][0];
    assert_eq!(problem["path"], "slxs/web/sli.yaml");
    assert_eq!(problem["line"], 7, "{problem}");
    assert_eq!(problem["column"], 20, "{problem}");
    assert_eq!(report["removed"], json!([]), "a skipped SLX is not pruned");
    let (_, slx) = p.get("/api/v1/workspaces/demo/slxs/web").await;
    assert_eq!(slx["intervalSeconds"], 30);

    // Removing the directory prunes the SLX.
    let (_, report) = p.import(&[("workspace.yaml", WORKSPACE)]).await;
    assert_eq!(report["removed"], json!(["web"]));
    let (_, slxs) = p.get("/api/v1/workspaces/demo/slxs").await;
    assert_eq!(slxs, json!([]));
}

async fn export_returns_the_tree_byte_for_byte(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let mut files = web_files();
    files.push(("slxs/web/SKILL.md", "# keep me\n"));
    files.push(("workflows/x.yaml", "kind: Workflow # comment kept\n"));
    p.import(&files).await;
    let (_, exported) = p.get("/api/v1/workspaces/demo/export").await;
    for (path, text) in files {
        assert_eq!(exported[path], text, "{path}");
    }
}

async fn bad_imports_are_refused_with_reasons(db: TestDb) {
    let p = start(&db, |_| {}).await;
    let (status, body) = p
        .send(
            Method::PUT,
            "/api/v1/workspaces/demo",
            &json!({ "files": { "slxs/a/slx.yaml": "x" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("workspace.yaml"),
        "{body}"
    );

    let (status, body) = p
        .send(
            Method::PUT,
            "/api/v1/workspaces/other",
            &json!({ "files": { "workspace.yaml": WORKSPACE } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("\"demo\""),
        "{body}"
    );

    let (status, body) = p
        .send(
            Method::PUT,
            "/api/v1/workspaces/demo",
            &json!({ "files": 5 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string(), "errors are JSON: {body}");

    let (status, body) = p.get("/api/v1/workspaces/nope/slxs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"));
}

async fn desired_state_follows_the_slis_and_changes_version_on_edit(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let runner = p.runner().await;
    let (status, state) = runner.get("/api/v1/runner/desired-state").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["location"], "local");
    assert_eq!(state["slis"][0]["slx"], "web");
    assert_eq!(state["slis"][0]["intervalSeconds"], 30);
    let first = state["version"].clone();

    let poll = runner.poll(&poll_for(0)).await;
    assert_eq!(json!(poll.desired_state_version), first);

    let mut files = web_files();
    let faster = SLI.replace("intervalSeconds: 30", "intervalSeconds: 10");
    files[2] = ("slxs/web/sli.yaml", &faster);
    p.import(&files).await;
    let (_, state) = runner.get("/api/v1/runner/desired-state").await;
    assert_ne!(state["version"], first);
    assert_eq!(state["slis"][0]["intervalSeconds"], 10);
}

async fn an_api_token_guards_the_client_api_but_not_health(db: TestDb) {
    let p = start(&db, |c| c.api_token = Some("sekret".into())).await;
    let (status, body) = p.get("/api/v1/status").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let ok = p
        .http
        .get(format!("{}/api/v1/status", p.url))
        .bearer_auth("sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = p
        .http
        .get(format!("{}/api/v1/status", p.url))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = p.get("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    // A browser gets a page asking for the token, and the token opens the status page.
    let page = p.http.get(format!("{}/", p.url)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(page.text().await.unwrap().contains("needs its API token"));
    let with_cookie = p
        .http
        .get(format!("{}/", p.url))
        .header("cookie", "steward_token=sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    assert!(
        with_cookie
            .text()
            .await
            .unwrap()
            .contains("<h2>Runners</h2>")
    );
}

async fn the_run_button_only_works_from_the_platforms_own_page(db: TestDb) {
    let p = start(&db, |_| {}).await;
    p.import(&web_files()).await;
    let form = [("workspace", "demo"), ("slx", "web")];
    let cross = p
        .http
        .post(format!("{}/ui/run", p.url))
        .header("origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let (_, runs) = p.get("/api/v1/runs").await;
    assert_eq!(runs, json!([]), "a cross-site post queued a run");
    let host = p.url.trim_start_matches("http://").to_string();
    let same = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/ui/run", p.url))
        .header("origin", format!("http://{host}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::SEE_OTHER);
    let (_, runs) = p.get("/api/v1/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let unknown = p
        .http
        .post(format!("{}/ui/run", p.url))
        .form(&[("workspace", "demo"), ("slx", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.text().await.unwrap().contains("no SLX named nope"));
}

async fn every_error_is_json(db: TestDb) {
    let p = start(&db, |_| {}).await;
    for (path, code) in [
        ("/api/v1/runs/not-a-uuid", StatusCode::BAD_REQUEST),
        ("/api/v1/nothing-here", StatusCode::NOT_FOUND),
        (
            "/api/v1/workspaces/x/slxs/y/sli-values?since=99999999999h",
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/issues?limit=many", StatusCode::BAD_REQUEST),
        ("/api/v1/runs?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/runs?limit=1001", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = p.get(path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = p.send(Method::DELETE, "/api/v1/status", &json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string());
    p.import(&web_files()).await;
    let (status, body) = p
        .get("/api/v1/workspaces/demo/slxs/web/sli-values?since=99999999999h")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let huge = "x".repeat(300 * 1024 * 1024);
    let response = p
        .http
        .put(format!("{}/api/v1/workspaces/demo", p.url))
        .header("content-type", "application/json")
        .body(format!("{{\"files\": {{\"a\": \"{huge}\"}}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn a_locations_slis_are_shared_among_its_online_runners(db: TestDb) {
    let p = start(&db, |c| {
        c.lease_ttl = std::time::Duration::from_millis(1500)
    })
    .await;
    let names: Vec<String> = (0..12).map(|i| format!("web{i}")).collect();
    let mut owned: Vec<(String, String)> = vec![("workspace.yaml".into(), WORKSPACE.into())];
    for name in &names {
        owned.push((
            format!("slxs/{name}/slx.yaml"),
            SLX.replace("demo--web", &format!("demo--{name}")),
        ));
        owned.push((format!("slxs/{name}/sli.yaml"), SLI.to_string()));
    }
    let files: Vec<(&str, &str)> = owned
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    p.import(&files).await;
    let one = p.runner().await;
    let two = p.runner().await;
    one.poll(&poll_for(0)).await;
    two.poll(&poll_for(0)).await;
    let slxs = |state: &serde_json::Value| -> Vec<String> {
        state["slis"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["slx"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, a) = one.get("/api/v1/runner/desired-state").await;
    let (_, b) = two.get("/api/v1/runner/desired-state").await;
    let (a, b) = (slxs(&a), slxs(&b));
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} / {b:?}");
    assert!(
        a.iter().all(|s| !b.contains(s)),
        "an SLI is scheduled twice: {a:?} / {b:?}"
    );
    let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
    all.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(all, expected);

    // The first runner stops polling: after a lease time the second one has everything, and
    // its poll says so with a new version.
    let before = two.poll(&poll_for(0)).await.desired_state_version;
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let after = two.poll(&poll_for(0)).await.desired_state_version;
    assert_ne!(before, after);
    let (_, b) = two.get("/api/v1/runner/desired-state").await;
    assert_eq!(slxs(&b).len(), names.len());

    // A replica that declines SLIs (not its group's leader) gets none while one takes them;
    // when every runner declines, they share again rather than leave SLIs unscheduled.
    let three = p.runner().await;
    let declining = PollRequest {
        no_slis: true,
        ..poll_for(0)
    };
    three.poll(&declining).await;
    two.poll(&poll_for(0)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, c) = three.get("/api/v1/runner/desired-state").await;
    let (_, b) = two.get("/api/v1/runner/desired-state").await;
    assert!(slxs(&c).is_empty(), "{c}");
    assert_eq!(slxs(&b).len(), names.len());
    two.poll(&declining).await;
    three.poll(&declining).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, b) = two.get("/api/v1/runner/desired-state").await;
    let (_, c) = three.get("/api/v1/runner/desired-state").await;
    assert_eq!(slxs(&b).len() + slxs(&c).len(), names.len());
    assert!(!slxs(&b).is_empty() && !slxs(&c).is_empty());
}

steward_testkit::on_both_databases!(
    import_reports_a_diff_and_keeps_what_a_broken_file_would_have_replaced,
    export_returns_the_tree_byte_for_byte,
    bad_imports_are_refused_with_reasons,
    desired_state_follows_the_slis_and_changes_version_on_edit,
    an_api_token_guards_the_client_api_but_not_health,
    the_run_button_only_works_from_the_platforms_own_page,
    every_error_is_json,
    a_locations_slis_are_shared_among_its_online_runners,
);

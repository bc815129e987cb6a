//! Workspace import, export, SLX listing and desired state, over HTTP.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn import_reports_a_diff_and_keeps_what_a_broken_file_would_have_replaced() {
    let p = start(|_| {}).await;
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

#[tokio::test]
async fn export_returns_the_tree_byte_for_byte() {
    let p = start(|_| {}).await;
    let mut files = web_files();
    files.push(("slxs/web/SKILL.md", "# keep me\n"));
    files.push(("workflows/x.yaml", "kind: Workflow # comment kept\n"));
    p.import(&files).await;
    let (_, exported) = p.get("/api/v1/workspaces/demo/export").await;
    for (path, text) in files {
        assert_eq!(exported[path], text, "{path}");
    }
}

#[tokio::test]
async fn bad_imports_are_refused_with_reasons() {
    let p = start(|_| {}).await;
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

#[tokio::test]
async fn desired_state_follows_the_slis_and_changes_version_on_edit() {
    let p = start(|_| {}).await;
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

#[tokio::test]
async fn an_api_token_guards_the_client_api_but_not_health() {
    let p = start(|c| c.api_token = Some("sekret".into())).await;
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
}

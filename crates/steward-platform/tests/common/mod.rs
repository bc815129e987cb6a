//! A platform on loopback with a temporary data directory, plus a minimal runner speaking the
//! wire protocol over real HTTP.
#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use steward_model::run::{RunResult, RunStatus, TaskOutcome, TaskStatus};
use steward_model::wire::{CompleteRequest, PollRequest, PollResponse, RegisterResponse};
use steward_platform::{Platform, PlatformConfig};
pub use steward_testkit::TestDb;
use uuid::Uuid;

pub const TOKEN: &str = "stw_reg_test";

pub struct TestPlatform {
    pub platform: Platform,
    pub url: String,
    pub http: Client,
    _dir: tempfile::TempDir,
}

/// A platform on `db` (a fresh database each time), tuned by `tune`.
pub async fn start(db: &TestDb, tune: impl FnOnce(&mut PlatformConfig)) -> TestPlatform {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PlatformConfig::new(dir.path().to_path_buf());
    config.database_url = tokio::task::block_in_place(|| db.url());
    config.listen = ([127, 0, 0, 1], 0).into();
    config.poll_timeout = Duration::from_millis(700);
    config
        .registration_tokens
        .push((TOKEN.into(), "local".into()));
    tune(&mut config);
    let platform = Platform::start(config).await.unwrap();
    let url = format!("http://{}", platform.addr());
    TestPlatform {
        platform,
        url,
        http: Client::new(),
        _dir: dir,
    }
}

impl TestPlatform {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn import(&self, files: &[(&str, &str)]) -> (StatusCode, Value) {
        let files: BTreeMap<&str, &str> = files.iter().copied().collect();
        self.send(
            reqwest::Method::PUT,
            "/api/v1/workspaces/demo",
            &json!({ "files": files }),
        )
        .await
    }

    pub async fn session(&self, slx: &str, titles: &[&str]) -> Value {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/workspaces/demo/sessions",
                &json!({ "runRequests": [{ "slx": slx, "taskTitles": titles }] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn runner(&self) -> TestRunner {
        let response: RegisterResponse = self
            .http
            .post(format!("{}/api/v1/runner/register", self.url))
            .json(&json!({ "token": TOKEN, "name": "test-runner", "version": "0", "capacity": 4 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        TestRunner {
            url: self.url.clone(),
            http: self.http.clone(),
            credential: response.credential,
            id: response.runner_id,
        }
    }
}

pub struct TestRunner {
    pub url: String,
    pub http: Client,
    pub credential: String,
    pub id: Uuid,
}

impl TestRunner {
    pub async fn poll(&self, request: &PollRequest) -> PollResponse {
        let response = self
            .http
            .post(format!("{}/api/v1/runner/poll", self.url))
            .bearer_auth(&self.credential)
            .json(request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn complete(&self, run: Uuid, request: &CompleteRequest) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/runner/runs/{run}/complete"),
            &serde_json::to_value(request).unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.credential)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.credential)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub fn poll_for(free: u32) -> PollRequest {
    PollRequest {
        free_capacity: free,
        capacity: 4,
        running: vec![],
        desired_state_version: None,
        no_wait: true,
        no_slis: false,
    }
}

pub fn result(
    status: RunStatus,
    tasks: &[(&str, TaskStatus)],
    issues: &[(u8, &str, &str)],
) -> RunResult {
    let now = chrono::Utc::now();
    RunResult {
        status,
        tasks: tasks
            .iter()
            .map(|(name, status)| TaskOutcome {
                name: name.to_string(),
                title: name.to_string(),
                status: *status,
                message: String::new(),
                elapsed_ms: 1,
            })
            .collect(),
        issues: issues
            .iter()
            .map(|(severity, task, title)| {
                serde_json::from_value(json!({
                    "severity": severity, "title": title, "taskName": task,
                    "expected": "e", "actual": "a", "nextSteps": "fix it"
                }))
                .unwrap()
            })
            .collect(),
        metrics: vec![],
        sli_value: None,
        error: None,
        warnings: vec![],
        artifacts: vec![],
        started_at: now,
        finished_at: now,
    }
}

pub const WORKSPACE: &str =
    "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: demo\n";
pub const SLX: &str = "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: demo--web\nspec:\n  alias: Web\n";
pub const SLI: &str = "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: demo--web\nspec:\n  locations: [local]\n  intervalSeconds: 30\n  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/sli.robot\n  configProvided:\n  - name: URLS\n    value: http://127.0.0.1:1/\n";
pub const RUNBOOK: &str = "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: demo--web\nspec:\n  location: local\n  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/runbook.robot\n  configProvided:\n  - name: URLS\n    value: http://127.0.0.1:1/\n";

pub fn web_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("workspace.yaml", WORKSPACE),
        ("slxs/web/slx.yaml", SLX),
        ("slxs/web/sli.yaml", SLI),
        ("slxs/web/runbook.yaml", RUNBOOK),
    ]
}

/// A long poll held by `runner` (on whichever platform it talks to) wakes, well before the
/// poll timeout (20 s in these tests), when `queueing` gets a session for it.
pub async fn assert_long_poll_wakes(queueing: &TestPlatform, runner: TestRunner) {
    let version = runner.poll(&poll_for(0)).await.desired_state_version;
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let poll = runner
            .poll(&PollRequest {
                free_capacity: 1,
                capacity: 1,
                running: vec![],
                desired_state_version: Some(version),
                no_wait: false,
                no_slis: false,
            })
            .await;
        (poll, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    queueing
        .session("web", &["Check HTTP Endpoint Availability and Latency"])
        .await;
    let (poll, waited) = waiting.await.unwrap();
    assert_eq!(poll.leases.len(), 1, "the waiting poll got the run");
    assert_eq!(
        poll.leases[0].run.task_titles,
        vec!["Check HTTP Endpoint Availability and Latency"]
    );
    assert!(
        waited < Duration::from_secs(10),
        "woke after {waited:?}, not at the poll timeout"
    );
}

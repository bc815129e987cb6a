//! The plain status page at `/`: runners, SLXs with their latest SLI value, open issues and
//! recent runs, with a button to run an SLX's runbook.

use crate::AppState;
use crate::api::Query;
use crate::error::{ApiError, ApiResult};
use crate::store::{IssueFilter, RunFilter};
use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use steward_model::api::{IssueStatus, RunRequestInput, RunnerHealth, SessionCreate};
use steward_model::run::{RunStatus, TaskStatus};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(page))
        .route("/ui/run", post(run))
        .route("/login", get(login))
}

struct RunnerRow {
    name: String,
    location: String,
    health: &'static str,
    health_class: &'static str,
    last_seen: String,
    running: u32,
    capacity: u32,
}

struct SlxRow {
    name: String,
    alias: Option<String>,
    value: String,
    value_class: &'static str,
    measured: String,
    open_issues: u64,
    has_runbook: bool,
}

struct WorkspaceSection {
    name: String,
    slxs: Vec<SlxRow>,
}

struct IssueRow {
    severity: u8,
    title: String,
    actual: String,
    next_steps: String,
    slx: String,
    occurrences: u64,
    last_seen: String,
}

struct AlertRow {
    level: String,
    class: &'static str,
    slx: String,
    since: String,
    message: String,
}

struct RunRow {
    when: String,
    slx: String,
    kind: &'static str,
    status: &'static str,
    status_class: &'static str,
    error: String,
    tasks: String,
    issues: usize,
    links: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    version: &'static str,
    queued: u64,
    running: u64,
    open_issues: u64,
    runners: Vec<RunnerRow>,
    workspaces: Vec<WorkspaceSection>,
    issues: Vec<IssueRow>,
    runs: Vec<RunRow>,
    alerts: Vec<AlertRow>,
}

fn ago(at: DateTime<Utc>) -> String {
    let seconds = (Utc::now() - at).num_seconds().max(0);
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86399 => format!("{}h ago", seconds / 3600),
        _ => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

async fn page(State(state): State<Arc<AppState>>) -> ApiResult<Html<String>> {
    let status = crate::api::status_view(&state).await?;
    let mut workspaces = Vec::new();
    for ws in &status.workspaces {
        let slxs = state
            .store
            .slx_views(&ws.name)
            .await?
            .into_iter()
            .map(|s| {
                let (value, value_class, measured) = match &s.latest_sli {
                    Some(v) => {
                        let class = if v.value >= 0.999 {
                            "good"
                        } else if v.value >= 0.5 {
                            "warn"
                        } else {
                            "bad"
                        };
                        (format!("{:.3}", v.value), class, ago(v.time))
                    }
                    None if s.has_sli => ("…".into(), "muted", "waiting for the first run".into()),
                    None => ("–".into(), "muted", "no SLI".into()),
                };
                SlxRow {
                    name: s.name,
                    alias: s.alias,
                    value,
                    value_class,
                    measured,
                    open_issues: s.open_issues,
                    has_runbook: s.has_runbook,
                }
            })
            .collect();
        workspaces.push(WorkspaceSection {
            name: ws.name.clone(),
            slxs,
        });
    }
    let issues = state
        .store
        .issues(&IssueFilter {
            status: Some(IssueStatus::Open),
            limit: 100,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|i| IssueRow {
            severity: i.severity,
            title: i.title,
            actual: i.actual,
            next_steps: i.next_steps,
            slx: i.slx,
            occurrences: i.occurrences,
            last_seen: ago(i.last_seen_at),
        })
        .collect();
    let mut runs = Vec::new();
    for run in state
        .store
        .runs(&RunFilter {
            limit: 25,
            ..Default::default()
        })
        .await?
    {
        let links = crate::api::artifact_links(&state, run.id)
            .await?
            .into_iter()
            .map(|l| (l.name, l.url))
            .collect();
        let (tasks, issues, error) = match &run.result {
            Some(result) => (
                format!(
                    "{} passed, {} failed",
                    result.titles(TaskStatus::Pass).len(),
                    result.titles(TaskStatus::Fail).len()
                ),
                result.issues.len(),
                result.error.clone().unwrap_or_default(),
            ),
            None => (String::new(), 0, String::new()),
        };
        let status_class = match run.status {
            RunStatus::Succeeded => "good",
            RunStatus::Queued | RunStatus::Running | RunStatus::Cancelled => "muted",
            RunStatus::Failed | RunStatus::TimedOut => "warn",
            RunStatus::Error => "bad",
        };
        runs.push(RunRow {
            when: ago(run.finished_at.or(run.started_at).unwrap_or(run.created_at)),
            slx: run.slx,
            kind: run.kind.as_str(),
            status: run.status.as_str(),
            status_class,
            error,
            tasks,
            issues,
            links,
        });
    }
    let runners = status
        .runners
        .iter()
        .map(|r| {
            let (health, health_class) = match r.health {
                RunnerHealth::Online => ("online", "good"),
                RunnerHealth::Stale => ("stale", "warn"),
                RunnerHealth::Offline => ("offline", "bad"),
            };
            RunnerRow {
                name: r.name.clone(),
                location: r.location.clone(),
                health,
                health_class,
                last_seen: ago(r.last_seen_at),
                running: r.running,
                capacity: r.capacity,
            }
        })
        .collect();
    let alerts = state
        .store
        .alerts(true, None, 50)
        .await?
        .into_iter()
        .map(|a| AlertRow {
            class: match a.level.as_str() {
                "page" => "bad",
                "no_data" => "muted",
                _ => "warn",
            },
            level: a.level,
            slx: format!("{}/{}", a.workspace, a.slx),
            since: ago(a.started_at),
            message: a.message,
        })
        .collect();
    let page = StatusPage {
        version: env!("CARGO_PKG_VERSION"),
        queued: status.queued_runs,
        running: status.running_runs,
        open_issues: status.open_issues,
        runners,
        workspaces,
        issues,
        runs,
        alerts,
    };
    page.render()
        .map(Html)
        .map_err(|e| ApiError::BadRequest(format!("rendering the page failed: {e}")))
}

#[derive(serde::Deserialize)]
struct RunForm {
    workspace: String,
    slx: String,
}

async fn run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<RunForm>,
) -> Response {
    if !same_origin(&headers) {
        return message_page(
            StatusCode::FORBIDDEN,
            "This form can only be sent from Steward's own status page.",
        );
    }
    let request = SessionCreate {
        run_requests: vec![RunRequestInput {
            slx: form.slx,
            task_titles: vec!["*".into()],
        }],
        source: Some("ui".into()),
    };
    match crate::api::create_session(&state, &form.workspace, request).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(error) => message_page(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string()),
    }
}

/// A form post is accepted only from the platform's own pages: browsers say where a request
/// comes from (`Sec-Fetch-Site`, `Origin`), and a page elsewhere must not start runbooks.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) == Some(host),
        (Some(_), None) => false,
        (None, _) => true, // not a browser's cross-site form post
    }
}

/// A small page with one message and a way back.
fn message_page(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Steward</title></head>\
         <body style=\"font:14px system-ui,sans-serif;margin:2rem\"><h1>Steward</h1><p>{escaped}</p>\
         <p><a href=\"/\">Back to the status page</a></p></body></html>"
    );
    (status, Html(body)).into_response()
}

/// What a browser sees when the platform needs an API token.
pub(crate) fn login_page() -> Response {
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Steward</title></head>\
        <body style=\"font:14px system-ui,sans-serif;margin:2rem\"><h1>Steward</h1>\
        <p>This platform needs its API token.</p>\
        <form method=\"get\" action=\"/login\"><input type=\"password\" name=\"token\" size=\"50\" autofocus> \
        <button type=\"submit\">Open</button></form></body></html>";
    (StatusCode::UNAUTHORIZED, Html(body)).into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    token: String,
}

async fn login(Query(query): Query<LoginQuery>) -> Response {
    let cookie = format!(
        "steward_token={}; HttpOnly; SameSite=Strict; Path=/",
        query.token.trim()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

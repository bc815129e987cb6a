//! Text rendering of results for people (`--output json` prints the API's JSON instead).

use chrono::{DateTime, Utc};
use serde::Serialize;
use steward_model::api::{IssueView, RunView, StatusView};
use steward_model::issue::{Issue, ReportEntry};
use steward_model::run::{RunResult, TaskStatus};

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("API types serialize")
    );
}

/// Aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// "1 open issue", "3 open issues".
pub fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// "12s ago", "5m ago", ...
pub fn ago(at: DateTime<Utc>) -> String {
    let seconds = (Utc::now() - at).num_seconds().max(0);
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86399 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

pub fn severity(level: u8) -> &'static str {
    match level {
        1 => "sev1 critical",
        2 => "sev2 major",
        3 => "sev3 minor",
        _ => "sev4 info",
    }
}

pub fn status(view: &StatusView) {
    println!(
        "Steward {} · {} queued · {} running · {}",
        view.version,
        view.queued_runs,
        view.running_runs,
        plural(view.open_issues, "open issue", "open issues")
    );
    println!();
    if view.runners.is_empty() {
        println!("No runner has registered.");
    } else {
        let rows: Vec<Vec<String>> = view
            .runners
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.location.clone(),
                    format!("{:?}", r.health).to_lowercase(),
                    ago(r.last_seen_at),
                    format!("{}/{}", r.running, r.capacity),
                ]
            })
            .collect();
        table(
            &["RUNNER", "LOCATION", "HEALTH", "LAST SEEN", "BUSY"],
            &rows,
        );
    }
}

pub fn slxs(workspace: &str, slxs: &[steward_model::api::SlxView]) {
    println!();
    println!("Workspace {workspace}:");
    let rows: Vec<Vec<String>> = slxs
        .iter()
        .map(|s| {
            let (value, when) = match &s.latest_sli {
                Some(v) => (format!("{:.3}", v.value), ago(v.time)),
                None if s.has_sli => ("…".into(), "waiting".into()),
                None => ("-".into(), String::new()),
            };
            vec![
                s.name.clone(),
                value,
                when,
                s.open_issues.to_string(),
                if s.has_runbook {
                    "yes".into()
                } else {
                    "no".into()
                },
                s.alias.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["SLX", "SLI", "MEASURED", "ISSUES", "RUNBOOK", "ALIAS"],
        &rows,
    );
}

pub fn issues(issues: &[IssueView]) {
    if issues.is_empty() {
        println!("No issues.");
        return;
    }
    for issue in issues {
        let state = match issue.status {
            steward_model::api::IssueStatus::Open => "open".to_string(),
            steward_model::api::IssueStatus::Resolved => {
                format!(
                    "resolved {}",
                    issue.resolved_at.map(ago).unwrap_or_default()
                )
            }
        };
        println!("[{}] {}", severity(issue.severity), issue.title);
        println!(
            "  {} / {} · {} · seen {}× · last {}",
            issue.workspace,
            issue.slx,
            state,
            issue.occurrences,
            ago(issue.last_seen_at)
        );
        print_field("expected", &issue.expected);
        print_field("actual", &issue.actual);
        print_field("next steps", &issue.next_steps);
        println!();
    }
}

fn print_field(name: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    let mut lines = text.trim().lines();
    println!("  {name}: {}", lines.next().unwrap_or_default());
    for line in lines {
        println!("  {:width$}  {line}", "", width = name.len());
    }
}

pub fn runs(runs: &[RunView]) {
    // With runs of several workspaces, SLX names alone are ambiguous.
    let several = runs.iter().any(|r| r.workspace != runs[0].workspace);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let (tasks, issues) = match &r.result {
                Some(result) => (
                    format!(
                        "{}✓ {}✗",
                        result.titles(TaskStatus::Pass).len(),
                        result.titles(TaskStatus::Fail).len()
                    ),
                    result.issues.len().to_string(),
                ),
                None => (String::new(), String::new()),
            };
            vec![
                r.id.to_string(),
                ago(r.created_at),
                r.kind.as_str().into(),
                if several {
                    format!("{}/{}", r.workspace, r.slx)
                } else {
                    r.slx.clone()
                },
                r.status.as_str().into(),
                tasks,
                issues,
            ]
        })
        .collect();
    table(
        &["RUN", "CREATED", "KIND", "SLX", "STATUS", "TASKS", "ISSUES"],
        &rows,
    );
}

/// A run's result: tasks, issues, metrics, problems.
pub fn result(result: &RunResult) {
    println!("Status: {}", result.status);
    if let Some(error) = &result.error {
        println!("Error:  {error}");
    }
    if !result.tasks.is_empty() {
        println!();
        println!("Tasks:");
        for task in &result.tasks {
            let mark = match task.status {
                TaskStatus::Pass => "PASS",
                TaskStatus::Fail => "FAIL",
                TaskStatus::Skip => "SKIP",
                TaskStatus::NotRun => "NOT RUN",
            };
            println!(
                "  {mark:<7} {} ({:.1}s)",
                task.name,
                task.elapsed_ms as f64 / 1000.0
            );
            for line in task.message.lines() {
                println!("          {line}");
            }
        }
    }
    println!();
    issue_list(&result.issues);
    if !result.metrics.is_empty() {
        println!();
        println!("Metrics:");
        for point in &result.metrics {
            println!("  {} = {}", point.name, point.value);
        }
    }
    if let Some(value) = result.sli_value {
        println!("SLI value: {value}");
    }
    for warning in &result.warnings {
        println!("warning: {warning}");
    }
}

fn issue_list(issues: &[Issue]) {
    if issues.is_empty() {
        println!("Issues: none");
        return;
    }
    println!("Issues ({}):", issues.len());
    for issue in issues {
        println!("  [{}] {}", severity(issue.severity), issue.title);
        print_field("  expected", &issue.expected);
        print_field("  actual", &issue.actual);
        print_field("  next steps", &issue.next_steps);
    }
}

/// The report, grouped by task, rendered per format.
pub fn report(entries: &[ReportEntry]) {
    if entries.is_empty() {
        return;
    }
    println!();
    println!("Report:");
    let mut task = None;
    for entry in entries {
        if entry.fmt == "issue" {
            continue; // shown with the issues
        }
        if task != Some(&entry.task_name) {
            println!("  ## {}", entry.task_name);
            task = Some(&entry.task_name);
        }
        let text = match (&entry.fmt[..], &entry.obj) {
            ("json", value) => serde_json::to_string_pretty(value).unwrap_or_default(),
            ("a", serde_json::Value::String(url)) => {
                let label = entry
                    .kwargs
                    .get("text")
                    .and_then(|t| t.as_str())
                    .unwrap_or(url);
                format!("{label} <{url}>")
            }
            ("table", _) => table_text(entry),
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        for line in text.trim_end().lines() {
            println!("  {line}");
        }
    }
}

fn table_text(entry: &ReportEntry) -> String {
    let head: Vec<String> = entry
        .kwargs
        .get("head")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let body: Vec<Vec<serde_json::Value>> = entry
        .kwargs
        .get("body")
        .and_then(|b| serde_json::from_value(b.clone()).ok())
        .unwrap_or_default();
    let mut out = String::new();
    if let serde_json::Value::String(about) = &entry.obj {
        out.push_str(about);
        out.push('\n');
    }
    out.push_str(&head.join(" | "));
    out.push('\n');
    for row in body {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| c.to_string())
            })
            .collect();
        out.push_str(&cells.join(" | "));
        out.push('\n');
    }
    out
}

//! Client commands: talk to a running platform.

use crate::api::{Api, encode};
use crate::cli::AlertsArgs;
use crate::cli::{
    CancelArgs, ClientArgs, IssuesArgs, Output, RunsArgs, SessionCommand, SliCommand, TokenCommand,
    WorkspaceCommand,
};
use crate::output;
use crate::progress::init_logging;
use anyhow::{Result, anyhow};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use steward_model::api::{
    ArtifactLink, ImportReport, ImportRequest, IssueView, RegistrationToken, RunRequestInput,
    RunView, SessionCreate, SessionView, SliValue, SlxView, StatusView,
};
use steward_model::workspace::WorkspaceTree;

fn api(client: &ClientArgs) -> Result<Api> {
    init_logging("warn");
    Api::new(&client.url, client.token.clone())
}

pub async fn status(args: ClientArgs) -> Result<ExitCode> {
    let api = api(&args)?;
    let status: StatusView = api.get("/api/v1/status").await?;
    let mut slxs = Vec::new();
    for ws in &status.workspaces {
        let list: Vec<SlxView> = api
            .get(&format!("/api/v1/workspaces/{}/slxs", encode(&ws.name)))
            .await?;
        slxs.push((ws.name.clone(), list));
    }
    match args.output {
        Output::Json => output::json(
            &serde_json::json!({ "status": status, "slxs": slxs.iter().flat_map(|(_, l)| l).collect::<Vec<_>>() }),
        ),
        Output::Text => {
            output::status(&status);
            for (ws, list) in &slxs {
                output::slxs(ws, list);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn issues(args: IssuesArgs) -> Result<ExitCode> {
    let api = api(&args.client)?;
    let mut query = format!(
        "/api/v1/issues?status={}",
        if args.all { "all" } else { "open" }
    );
    if let Some(ws) = &args.workspace {
        query.push_str(&format!("&workspace={}", encode(ws)));
    }
    if let Some(slx) = &args.slx {
        query.push_str(&format!("&slx={}", encode(slx)));
    }
    let issues: Vec<IssueView> = api.get(&query).await?;
    match args.client.output {
        Output::Json => output::json(&issues),
        Output::Text => output::issues(&issues),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn runs(args: RunsArgs) -> Result<ExitCode> {
    let api = api(&args.client)?;
    if let Some(id) = &args.id {
        let run: RunView = api.get(&format!("/api/v1/runs/{}", encode(id))).await?;
        let artifacts: Vec<ArtifactLink> = api
            .get(&format!("/api/v1/runs/{}/artifacts", encode(id)))
            .await?;
        match args.client.output {
            Output::Json => {
                output::json(&serde_json::json!({ "run": run, "artifacts": artifacts }))
            }
            Output::Text => show_run(&run, &artifacts),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut query = format!("/api/v1/runs?limit={}", args.limit);
    for (key, value) in [
        ("workspace", &args.workspace),
        ("slx", &args.slx),
        ("kind", &args.kind),
    ] {
        if let Some(value) = value {
            query.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    let runs: Vec<RunView> = api.get(&query).await?;
    match args.client.output {
        Output::Json => output::json(&runs),
        Output::Text => output::runs(&runs),
    }
    Ok(ExitCode::SUCCESS)
}

fn show_run(run: &RunView, artifacts: &[ArtifactLink]) {
    println!(
        "Run {} · {} {} of {}/{} · attempt {}",
        run.id,
        run.status,
        run.kind.as_str(),
        run.workspace,
        run.slx,
        run.attempts
    );
    if let Some(result) = &run.result {
        output::result(result);
    }
    if !artifacts.is_empty() {
        println!();
        println!(
            "Artifacts (links valid until {}):",
            artifacts[0].expires_at.format("%H:%M UTC")
        );
        for artifact in artifacts {
            println!("  {:<14} {}", artifact.name, artifact.url);
        }
    }
}

pub async fn session(command: SessionCommand) -> Result<ExitCode> {
    let SessionCommand::Create(args) = command;
    let api = api(&args.client)?;
    let ws = api.workspace(args.workspace.clone()).await?;
    let titles = if args.tasks.is_empty() {
        vec!["*".to_string()]
    } else {
        args.tasks.clone()
    };
    let request = SessionCreate {
        run_requests: args
            .slx
            .iter()
            .map(|slx| RunRequestInput {
                slx: slx.clone(),
                task_titles: titles.clone(),
            })
            .collect(),
        source: Some("cli".into()),
    };
    let mut session: SessionView = api
        .post(
            &format!("/api/v1/workspaces/{}/sessions", encode(&ws)),
            &request,
        )
        .await?;
    let runners: Vec<steward_model::api::RunnerView> = api.get("/api/v1/runners").await?;
    for location in session
        .runs
        .iter()
        .map(|r| r.location.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let online = runners.iter().any(|r| {
            r.location == location && r.health == steward_model::api::RunnerHealth::Online
        });
        if !online {
            say!(
                "warning: no runner of location {location} is online; the run waits in the queue until one polls"
            );
        }
    }
    if !args.no_wait {
        if args.client.output == Output::Text {
            say!(
                "Session {} created; waiting for {} run(s)…",
                session.id,
                session.runs.len()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(args.wait_timeout);
        while session.runs.iter().any(|r| !r.status.is_final()) {
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "runs of session {} did not finish within {}s; see `steward runs`",
                    session.id,
                    args.wait_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
            session = api.get(&format!("/api/v1/sessions/{}", session.id)).await?;
        }
    }
    match args.client.output {
        Output::Json => output::json(&session),
        Output::Text => {
            for run in &session.runs {
                if run.status.is_final() {
                    let artifacts: Vec<ArtifactLink> = api
                        .get(&format!("/api/v1/runs/{}/artifacts", run.id))
                        .await?;
                    show_run(run, &artifacts);
                    println!();
                } else {
                    println!("Run {} of {}: {}", run.id, run.slx, run.status);
                }
            }
        }
    }
    let failed = session
        .runs
        .iter()
        .any(|r| r.status.is_final() && r.status != steward_model::run::RunStatus::Succeeded);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn workspace(command: WorkspaceCommand) -> Result<ExitCode> {
    let WorkspaceCommand::Import(args) = command;
    let api = api(&args.client)?;
    let tree = WorkspaceTree::load(&args.dir).map_err(|e| anyhow!("{e}"))?;
    let name = tree.name().to_string();
    // A tree without slxs/ is most likely the wrong directory; pruning would empty the
    // workspace.
    if !args.no_prune && !args.dir.join("slxs").is_dir() {
        return Err(anyhow!(
            "{} has no slxs/ directory (SLXs live in slxs/<name>/), so importing it would remove \
             every SLX of workspace {name}; check the path, or add --no-prune to import workspace.yaml alone",
            args.dir.display()
        ));
    }
    let request = ImportRequest::from_tree(&tree, !args.no_prune);
    let mut report: ImportReport = api
        .put(&format!("/api/v1/workspaces/{}", encode(&name)), &request)
        .await?;
    // What the client could not read never reached the platform: report it too.
    report.problems.splice(0..0, tree.problems.iter().cloned());
    match args.client.output {
        Output::Json => output::json(&report),
        Output::Text => {
            println!(
                "Workspace {name}: {} added, {} updated, {} unchanged, {} removed.",
                report.added.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.removed.len()
            );
            for problem in &report.problems {
                println!("skipped: {problem}");
            }
            for warning in &report.warnings {
                println!("warning: {warning}");
            }
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn sli(command: SliCommand) -> Result<ExitCode> {
    let SliCommand::Show(args) = command;
    let api = api(&args.client)?;
    let ws = api.workspace(args.workspace.clone()).await?;
    let slx: SlxView = api
        .get(&format!(
            "/api/v1/workspaces/{}/slxs/{}",
            encode(&ws),
            encode(&args.slx)
        ))
        .await?;
    if !slx.has_sli {
        return Err(anyhow!(
            "SLX {} has no SLI (no sli.yaml), so it has no values",
            slx.name
        ));
    }
    let mut path = format!(
        "/api/v1/workspaces/{}/slxs/{}/sli-values?since={}",
        encode(&ws),
        encode(&args.slx),
        encode(&args.since)
    );
    if let Some(step) = &args.step {
        path.push_str(&format!("&step={}&agg={}", encode(step), encode(&args.agg)));
    }
    if let Some(metric) = &args.metric {
        path.push_str(&format!("&metric={}", encode(metric)));
    }
    let values: Vec<SliValue> = api.get(&path).await?;
    match args.client.output {
        Output::Json => output::json(&values),
        Output::Text => {
            let rows: Vec<Vec<String>> = values
                .iter()
                .map(|v| {
                    vec![
                        v.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                        if v.metric.is_empty() {
                            "value".into()
                        } else {
                            v.metric.clone()
                        },
                        format!("{}", v.value),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("No values for {} since {}.", args.slx, args.since);
            } else {
                output::table(&["TIME (UTC)", "METRIC", "VALUE"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(command: TokenCommand) -> Result<ExitCode> {
    let TokenCommand::Create(args) = command;
    let api = api(&args.client)?;
    let token: RegistrationToken = api
        .post(
            &format!(
                "/api/v1/locations/{}/registration-tokens",
                encode(&args.location)
            ),
            &serde_json::json!({}),
        )
        .await?;
    match args.client.output {
        Output::Json => output::json(&token),
        Output::Text => {
            println!("{}", token.token);
            say!(
                "Registration token for location {}. Start a runner with:\n  steward runner --platform {} --registration-token {}",
                token.location,
                api.base(),
                token.token
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(args: CancelArgs) -> Result<ExitCode> {
    let api = api(&args.client)?;
    let mut views = Vec::new();
    let mut refused = Vec::new();
    for id in &args.runs {
        if uuid::Uuid::parse_str(id.trim()).is_err() {
            let error = "not a run id (run ids are UUIDs, as `steward runs` lists them)";
            say!("run {id}: {error}");
            refused.push(serde_json::json!({ "id": id, "error": error }));
            continue;
        }
        match api
            .post::<_, RunView>(
                &format!("/api/v1/runs/{}/cancel", encode(id.trim())),
                &serde_json::json!({}),
            )
            .await
        {
            Ok(run) => views.push(run),
            Err(error) => {
                say!("run {id}: {error:#}");
                refused.push(serde_json::json!({ "id": id, "error": format!("{error:#}") }));
            }
        }
    }
    let failed = !refused.is_empty();
    match args.client.output {
        // Cancelled runs as they are now, then the ids that could not be cancelled and why.
        Output::Json => {
            let mut all: Vec<serde_json::Value> = views
                .iter()
                .map(|v| serde_json::to_value(v).expect("runs serialize"))
                .collect();
            all.extend(refused);
            output::json(&all)
        }
        Output::Text => {
            for run in &views {
                let when = if run.status.is_final() {
                    "cancelled"
                } else {
                    "stops at its runner's next poll"
                };
                println!("{} ({} of {}): {when}", run.id, run.kind.as_str(), run.slx);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn alerts(args: AlertsArgs) -> Result<ExitCode> {
    let api = api(&args.client)?;
    let mut path = format!(
        "/api/v1/alerts?state={}",
        if args.all { "all" } else { "active" }
    );
    if let Some(ws) = &args.workspace {
        path.push_str(&format!("&workspace={}", encode(ws)));
    }
    let alerts: Vec<steward_model::api::AlertView> = api.get(&path).await?;
    match args.client.output {
        Output::Json => output::json(&alerts),
        Output::Text if alerts.is_empty() => println!("No alerts."),
        Output::Text => {
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        a.level.clone(),
                        format!("{}/{}", a.workspace, a.slx),
                        output::ago(a.started_at),
                        a.ended_at
                            .map(output::ago)
                            .map(|e| format!("ended {e}"))
                            .unwrap_or_else(|| "active".into()),
                        a.message.clone(),
                    ]
                })
                .collect();
            output::table(&["LEVEL", "SLX", "STARTED", "STATE", "MESSAGE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

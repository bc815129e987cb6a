//! Faults injected into real `steward` processes: a platform killed mid-run, runners killed or
//! frozen mid-run, a network cut, a full spool disk, a database outage, and runners racing
//! through two platform replicas. What the API shows afterwards is what the guarantees in
//! docs/guarantees.md promise.

mod common;

use common::*;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use steward_testkit::postgres::PostgresServer;
use steward_testkit::proxy::TcpProxy;
use steward_testkit::{Process, free_port, get_json, tail, wait_until, wait_until_explained};

const TOKEN: &str = "stw_reg_faults";

/// A workspace `faults` with one SLX `slow` whose runbook sleeps `runbook_sleep` and whose SLI
/// (every 5 s) sleeps `sli_sleep` and pushes 1, from a CodeCollection in a plain directory.
fn workspace(dir: &Path, runbook_sleep: &str, sli_sleep: &str) -> PathBuf {
    let collection = dir.join("collection/codebundles/slow");
    std::fs::create_dir_all(&collection).unwrap();
    std::fs::write(
        collection.join("runbook.robot"),
        "*** Settings ***\nLibrary    RW.Core\n\n*** Tasks ***\nWait And Report\n    Sleep    %{SLEEP}\n    RW.Core.Add Pre To Report    slept %{SLEEP}\n",
    )
    .unwrap();
    std::fs::write(
        collection.join("sli.robot"),
        "*** Settings ***\nLibrary    RW.Core\n\n*** Tasks ***\nMeasure Slowly\n    Sleep    %{SLEEP}\n    RW.Core.Push Metric    1\n",
    )
    .unwrap();
    let root = dir.join("workspace");
    let slx = root.join("slxs/slow");
    std::fs::create_dir_all(&slx).unwrap();
    std::fs::write(
        root.join("workspace.yaml"),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: faults\n",
    )
    .unwrap();
    std::fs::write(
        slx.join("slx.yaml"),
        "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: faults--slow\nspec:\n  alias: Slow\n",
    )
    .unwrap();
    let bundle = |file: &str, sleep: &str| {
        format!(
            "  codeBundle:\n    repoUrl: {}\n    pathToRobot: codebundles/slow/{file}\n  configProvided:\n  - name: SLEEP\n    value: '{sleep}'\n",
            dir.join("collection").display()
        )
    };
    std::fs::write(
        slx.join("sli.yaml"),
        format!(
            "apiVersion: runwhen.com/v1\nkind: ServiceLevelIndicator\nmetadata:\n  name: faults--slow\nspec:\n  intervalSeconds: 5\n{}",
            bundle("sli.robot", sli_sleep)
        ),
    )
    .unwrap();
    std::fs::write(
        slx.join("runbook.yaml"),
        format!(
            "apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: faults--slow\nspec:\n{}",
            bundle("runbook.robot", runbook_sleep)
        ),
    )
    .unwrap();
    root
}

fn import(url: &str, tree: &Path) {
    let (code, stdout, stderr) = client(url, &["workspace", "import", tree.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// Queues a runbook run of `slow` without waiting for it; returns the run id.
fn queue_run(url: &str) -> String {
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/workspaces/faults/sessions"))
        .json(&json!({ "runRequests": [{ "slx": "slow", "taskTitles": ["*"] }] }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let session: Value = response.json().unwrap();
    session["runs"][0]["id"].as_str().unwrap().to_string()
}

fn run(url: &str, id: &str) -> Value {
    api(url, &format!("/api/v1/runs/{id}"))
}

fn wait_for_run(url: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_until(what, Duration::from_secs(120), || {
        get_json(&format!("{url}/api/v1/runs/{id}"))
            .filter(|(status, run)| *status == 200 && check(run))
            .map(|(_, run)| run)
    })
}

/// The runner whose name is `name`, as the API lists it.
fn runner_view(url: &str, name: &str) -> Option<Value> {
    let (status, runners) = get_json(&format!("{url}/api/v1/runners"))?;
    (status == 200).then_some(())?;
    runners
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

fn runner_id(url: &str, name: &str) -> String {
    runner_view(url, name).expect("registered")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One sample of the runner's `/metrics`.
fn runner_metric(metrics: &str, name: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://{metrics}/metrics"))
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

/// SLI values of `slow` measured in `(from, until)`, checking each run delivered one value.
fn values_between(
    url: &str,
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> usize {
    let values = api(
        url,
        "/api/v1/workspaces/faults/slxs/slow/sli-values?metric=value&since=30m",
    );
    let during: Vec<&Value> = values
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            let at: chrono::DateTime<chrono::Utc> = v["time"].as_str().unwrap().parse().unwrap();
            at > from && at < until
        })
        .collect();
    let runs: std::collections::HashSet<&str> = during
        .iter()
        .map(|v| v["runId"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), during.len(), "one value per run: {during:?}");
    during.len()
}

fn first_sli_value(url: &str) {
    wait_until("a first SLI value", Duration::from_secs(180), || {
        let values = api(
            url,
            "/api/v1/workspaces/faults/slxs/slow/sli-values?metric=value",
        );
        (!values.as_array().unwrap().is_empty()).then_some(())
    });
}

#[test]
fn a_platform_killed_mid_run_loses_nothing_and_records_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut platform = start_platform_on(dir.path(), port, TOKEN, &[], "platform-1.log");
    let url = platform.url.clone();
    let _runner = start_runner(dir.path(), &url, TOKEN, "survivor");
    import(&url, &workspace(dir.path(), "8s", "0s"));
    first_sli_value(&url);

    let id = queue_run(&url);
    wait_for_run(&url, &id, "the run to start", |r| r["status"] == "running");
    platform.process.signal(Signal::SIGKILL);
    platform.process.wait_exit(Duration::from_secs(10)).unwrap();
    let down_from = chrono::Utc::now();
    // The run finishes and SLIs keep running while nobody answers.
    std::thread::sleep(Duration::from_secs(14));
    let down_until = chrono::Utc::now();
    let _platform = start_platform_on(dir.path(), port, TOKEN, &[], "platform-2.log");

    let done = wait_for_run(&url, &id, "the spooled completion", |r| {
        r["status"] == "succeeded"
    });
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["result"]["tasks"][0]["status"], "PASS", "{done}");
    let during = wait_until(
        "SLI values from the outage",
        Duration::from_secs(90),
        || {
            let n = values_between(&url, down_from, down_until);
            (n >= 2).then_some(n)
        },
    );
    assert!(during >= 2, "{during}");
    let runs = api(&url, "/api/v1/runs?kind=runbook");
    assert_eq!(runs.as_array().unwrap().len(), 1, "the run once: {runs}");
    // It noticed, and reconnected by itself (after its backoff).
    let survivor = dir.path().join("survivor.log");
    assert!(log(&survivor).contains("Platform unreachable"));
    wait_until("the runner to reconnect", Duration::from_secs(60), || {
        (log(&survivor).matches("Connected to the platform").count() == 2).then_some(())
    });
}

#[test]
fn a_runner_killed_mid_run_has_it_taken_over_then_given_up_and_a_late_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let platform = start_platform(
        dir.path(),
        TOKEN,
        &["--lease-ttl", "3s", "--max-attempts", "2"],
    );
    let url = platform.url.clone();
    let capacity_one = ["--capacity", "1"];
    let mut first = start_runner_with(dir.path(), &url, TOKEN, "first", &capacity_one);
    import(&url, &workspace(dir.path(), "25s", "0s"));
    first_sli_value(&url);

    // Killed mid-run: the lease lapses and another runner takes the run over.
    let id = queue_run(&url);
    let first_id = runner_id(&url, "first");
    wait_for_run(&url, &id, "the run on the first runner", |r| {
        r["status"] == "running" && r["runnerId"] == first_id.as_str()
    });
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).unwrap();
    let mut second = start_runner_with(dir.path(), &url, TOKEN, "second", &capacity_one);
    let second_id = wait_until("the second runner", Duration::from_secs(60), || {
        runner_view(&url, "second").map(|r| r["id"].as_str().unwrap().to_string())
    });
    let taken = wait_for_run(&url, &id, "the run on the second runner", |r| {
        r["status"] == "running" && r["runnerId"] == second_id.as_str()
    });
    assert_eq!(taken["attempts"], 2);
    // Killed again: the attempts are used up and the run ends with the reason.
    second.signal(Signal::SIGKILL);
    second.wait_exit(Duration::from_secs(10)).unwrap();
    let failed = wait_for_run(&url, &id, "the run to be given up", |r| {
        r["status"] == "error"
    });
    let reason = failed["result"]["error"].as_str().unwrap_or_default();
    assert!(reason.contains("stopped answering"), "{failed}");

    // Frozen mid-run: the run moves on; the frozen runner's late result changes nothing.
    let frozen = start_runner_with(dir.path(), &url, TOKEN, "frozen", &capacity_one);
    let frozen_id = wait_until("the frozen runner", Duration::from_secs(60), || {
        runner_view(&url, "frozen").map(|r| r["id"].as_str().unwrap().to_string())
    });
    import(&url, &workspace(dir.path(), "6s", "0s"));
    let id = queue_run(&url);
    wait_for_run(&url, &id, "the run on the frozen runner", |r| {
        r["status"] == "running" && r["runnerId"] == frozen_id.as_str()
    });
    frozen.signal(Signal::SIGSTOP);
    let _rescuer = start_runner_with(dir.path(), &url, TOKEN, "rescuer", &capacity_one);
    let rescued = wait_for_run(&url, &id, "the run finished by the rescuer", |r| {
        r["status"] == "succeeded"
    });
    assert_eq!(rescued["attempts"], 2, "{rescued}");
    frozen.signal(Signal::SIGCONT);
    // The task went on under the frozen runner and ended; its result comes late.
    let frozen_log = dir.path().join("frozen.log");
    wait_until(
        "the frozen runner to learn",
        Duration::from_secs(60),
        || {
            let log = log(&frozen_log);
            (log.contains("refused a result") || log.contains("Stopping a run")).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let after = run(&url, &id);
    assert_eq!(after["status"], "succeeded");
    assert_eq!(after["runnerId"], rescued["runnerId"], "{after}");
    assert_eq!(after["finishedAt"], rescued["finishedAt"], "{after}");
}

#[test]
fn a_network_cut_makes_the_runner_offline_then_it_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let platform = start_platform(
        dir.path(),
        TOKEN,
        &["--lease-ttl", "4s", "--runner-offline-after", "12s"],
    );
    let proxy = TcpProxy::start(platform.url.trim_start_matches("http://").parse().unwrap());
    let metrics = format!("127.0.0.1:{}", free_port());
    let _runner = start_runner_with(
        dir.path(),
        &format!("http://{}", proxy.addr()),
        TOKEN,
        "remote",
        &["--metrics-listen", &metrics],
    );
    let url = platform.url.clone();
    import(&url, &workspace(dir.path(), "1s", "0s"));
    first_sli_value(&url);
    let health = |want: &str| {
        wait_until(
            &format!("the runner to be {want}"),
            Duration::from_secs(90),
            || runner_view(&url, "remote").filter(|r| r["health"] == want),
        )
    };
    health("online");
    assert_eq!(
        runner_metric(&metrics, "steward_runner_connected"),
        Some(1.0)
    );

    proxy.cut();
    let cut_at = chrono::Utc::now();
    health("stale");
    health("offline");
    wait_until(
        "the runner to report itself offline",
        Duration::from_secs(60),
        || (runner_metric(&metrics, "steward_runner_connected") == Some(0.0)).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(5));
    let restored_at = chrono::Utc::now();
    proxy.restore();
    health("online");
    wait_until("the runner to reconnect", Duration::from_secs(60), || {
        (runner_metric(&metrics, "steward_runner_connected") == Some(1.0)).then_some(())
    });
    let during = wait_until(
        "values measured during the cut",
        Duration::from_secs(90),
        || {
            let n = values_between(&url, cut_at, restored_at);
            (n >= 2).then_some(n)
        },
    );
    assert!(during >= 2);
}

#[test]
fn a_full_spool_disk_degrades_the_runner_without_stopping_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut platform = start_platform_on(dir.path(), port, TOKEN, &[], "platform-1.log");
    let url = platform.url.clone();
    let metrics = format!("127.0.0.1:{}", free_port());
    let state = dir.path().join("full-data");
    let spool = state.join("runner/spool");
    std::fs::create_dir_all(&spool).unwrap();
    // The runner gets a private mount namespace with a tiny file system for its spool.
    let mut cmd = std::process::Command::new("unshare");
    if !nix::unistd::Uid::effective().is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=256k tmpfs \"$0\" && exec \"$@\"")
        .arg(&spool)
        .arg(env!("CARGO_BIN_EXE_steward"))
        .args(["runner", "--platform", &url, "--registration-token", TOKEN])
        .args(["--name", "full", "--metrics-listen", &metrics]);
    for (key, value) in steward().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.env("STEWARD_DATA_DIR", &state);
    let runner_log = dir.path().join("full.log");
    let runner = Process::spawn("full", cmd, &runner_log);
    let explain = || {
        format!(
            "runner log:\n{}\nrunner metrics:\n{}",
            tail(&runner_log, 40),
            reqwest::blocking::get(format!("http://{metrics}/metrics"))
                .and_then(|r| r.text())
                .unwrap_or_else(|e| e.to_string())
        )
    };
    import(&url, &workspace(dir.path(), "1s", "0s"));
    first_sli_value(&url);

    // Fill the spool's file system (seen through the runner's own mount namespace), and keep
    // it full: what the runner delivers frees room, which the filler takes again.
    let inside =
        PathBuf::from(format!("/proc/{}/root", runner.id())).join(spool.strip_prefix("/").unwrap());
    let filler = inside.join("filler");
    let filling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let filler_thread = {
        let (filler, filling) = (filler.clone(), filling.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::File::create(&filler).unwrap();
            let block = vec![0u8; 1024];
            while filling.load(std::sync::atomic::Ordering::SeqCst) {
                while file.write_all(&block).and_then(|()| file.flush()).is_ok() {}
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    wait_until_explained(
        "the spool to be degraded",
        Duration::from_secs(60),
        explain,
        || (runner_metric(&metrics, "steward_runner_spool_degraded") == Some(1.0)).then_some(()),
    );
    // Results still arrive, straight from memory.
    let degraded_at = chrono::Utc::now();
    wait_until_explained(
        "values while degraded",
        Duration::from_secs(60),
        explain,
        || (values_between(&url, degraded_at, chrono::Utc::now()) >= 2).then_some(()),
    );

    // With the platform away too, results are dropped and counted; tasks keep running.
    platform.process.signal(Signal::SIGKILL);
    platform.process.wait_exit(Duration::from_secs(10)).unwrap();
    let runs_before = sli_runs(&metrics);
    wait_until_explained(
        "results to be dropped",
        Duration::from_secs(90),
        explain,
        || {
            (runner_metric(&metrics, "steward_runner_spool_dropped_results_total") >= Some(2.0))
                .then_some(())
        },
    );
    assert!(
        sli_runs(&metrics) >= runs_before + 2.0,
        "tasks keep running"
    );
    assert!(
        log(&runner_log).contains("SLI result dropped"),
        "{}",
        explain()
    );

    // Space comes back: the spool works again and keeps what the platform cannot take yet.
    filling.store(false, std::sync::atomic::Ordering::SeqCst);
    filler_thread.join().unwrap();
    std::fs::remove_file(&filler).unwrap();
    wait_until_explained(
        "the spool to recover",
        Duration::from_secs(60),
        explain,
        || {
            (runner_metric(&metrics, "steward_runner_spool_degraded") == Some(0.0)
                && runner_metric(&metrics, "steward_runner_spool_entries") >= Some(1.0))
            .then_some(())
        },
    );
    let back_at = chrono::Utc::now();
    let _platform = start_platform_on(dir.path(), port, TOKEN, &[], "platform-2.log");
    wait_until_explained("spooled values", Duration::from_secs(90), explain, || {
        (values_between(&url, back_at - chrono::Duration::seconds(20), back_at) >= 1).then_some(())
    });
}

/// SLI runs this runner finished, whatever their status.
fn sli_runs(metrics: &str) -> f64 {
    let text = reqwest::blocking::get(format!("http://{metrics}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("steward_runner_runs_total{") && l.contains("kind=\"sli\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = PostgresServer::start();
    let database = postgres.database();
    let platform = start_platform(dir.path(), TOKEN, &["--database-url", &database]);
    let url = platform.url.clone();
    let _runner = start_runner(dir.path(), &url, TOKEN, "patient");
    import(&url, &workspace(dir.path(), "1s", "0s"));
    first_sli_value(&url);

    postgres.stop();
    let down_from = chrono::Utc::now();
    let (status, body) = get_json(&format!("{url}/api/v1/status")).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{body}"
    );
    let refused = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/workspaces/faults/sessions"))
        .json(&json!({ "runRequests": [{ "slx": "slow", "taskTitles": ["*"] }] }))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 503);
    std::thread::sleep(Duration::from_secs(10));
    let down_until = chrono::Utc::now();
    postgres.resume();

    wait_until("the API to answer again", Duration::from_secs(60), || {
        get_json(&format!("{url}/api/v1/status")).filter(|(status, _)| *status == 200)
    });
    let during = wait_until("values from the outage", Duration::from_secs(90), || {
        let n = values_between(&url, down_from, down_until);
        (n >= 1).then_some(n)
    });
    assert!(during >= 1);
    // Nothing half-written: the refused session left no runs behind.
    let runs = api(&url, "/api/v1/runs?kind=runbook");
    assert!(runs.as_array().unwrap().is_empty(), "{runs}");
    let id = queue_run(&url);
    wait_for_run(&url, &id, "a run after the outage", |r| {
        r["status"] == "succeeded"
    });
}

/// Registers a simulated runner through `url`; returns its credential.
async fn register(http: &reqwest::Client, url: &str, name: &str) -> String {
    let response: Value = http
        .post(format!("{url}/api/v1/runner/register"))
        .json(&json!({ "token": TOKEN, "name": name, "version": "0", "capacity": 25 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["credential"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn runners_racing_through_two_platform_replicas_run_every_run_exactly_once() {
    const RUNS: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let database = tokio::task::block_in_place(steward_testkit::postgres::database);
    let replicas: Vec<Platform> = tokio::task::block_in_place(|| {
        ["a", "b"]
            .iter()
            .map(|name| {
                let home = dir.path().join(name);
                std::fs::create_dir_all(&home).unwrap();
                start_platform(&home, TOKEN, &["--database-url", &database])
            })
            .collect()
    });
    let urls: Vec<String> = replicas.iter().map(|p| p.url.clone()).collect();
    let tree = workspace(dir.path(), "0s", "0s");
    tokio::task::block_in_place(|| import(&urls[0], &tree));
    let http = reqwest::Client::new();

    let all_queued = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut runners = Vec::new();
    for i in 0..4 {
        // Registered through one replica, polling the other half the time.
        let credential = register(&http, &urls[0], &format!("sim-{i}")).await;
        let url = urls[i % 2].clone();
        let (http, all_queued) = (http.clone(), all_queued.clone());
        runners.push(tokio::spawn(async move {
            let mut got: Vec<String> = Vec::new();
            let mut version: Option<String> = None;
            let mut idle = 0;
            while idle < 2 || !all_queued.load(std::sync::atomic::Ordering::SeqCst) {
                let poll: Value = http
                    .post(format!("{url}/api/v1/runner/poll"))
                    .bearer_auth(&credential)
                    .json(&json!({ "freeCapacity": 25, "capacity": 25, "running": [],
                                   "desiredStateVersion": version, "noWait": false }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                version = poll["desiredStateVersion"].as_str().map(str::to_string);
                let leases = poll["leases"].as_array().unwrap();
                if leases.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                for lease in leases {
                    let run = lease["run"]["runId"].as_str().unwrap().to_string();
                    let now = chrono::Utc::now();
                    let done: Value = http
                        .post(format!("{url}/api/v1/runner/runs/{run}/complete"))
                        .bearer_auth(&credential)
                        .json(&json!({ "leaseId": lease["leaseId"], "result": {
                            "status": "succeeded", "startedAt": now, "finishedAt": now,
                            "tasks": [{ "name": "Wait And Report", "title": "Wait And Report",
                                        "status": "PASS", "message": "", "elapsedMs": 0 }] } }))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(done["recorded"], true, "{done}");
                    got.push(run);
                }
            }
            got
        }));
    }
    // Sessions of 100 runs, through both replicas in turn, while the runners poll.
    for s in 0..RUNS / 100 {
        let requests: Vec<Value> = (0..100)
            .map(|_| json!({ "slx": "slow", "taskTitles": ["*"] }))
            .collect();
        let response = http
            .post(format!("{}/api/v1/workspaces/faults/sessions", urls[s % 2]))
            .json(&json!({ "runRequests": requests }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    all_queued.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut seen = std::collections::HashMap::<String, usize>::new();
    let mut per_runner = Vec::new();
    for runner in runners {
        let got = runner.await.unwrap();
        per_runner.push(got.len());
        for run in got {
            *seen.entry(run).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), RUNS, "every run handed out: {per_runner:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handed out twice: {twice:?}");
    assert!(
        per_runner[0] + per_runner[2] > 0 && per_runner[1] + per_runner[3] > 0,
        "both replicas served runs: {per_runner:?}"
    );
    let status: Value = http
        .get(format!("{}/api/v1/status", urls[1]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["queuedRuns"].clone(), status["runningRuns"].clone()),
        (json!(0), json!(0))
    );
    drop(replicas);
}

#[test]
fn metrics_answer_while_the_platform_cannot_be_reached() {
    // A runner that cannot register yet must still look alive to its probes.
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let _runner = start_runner_with(
        dir.path(),
        &format!("http://127.0.0.1:{}", free_port()),
        TOKEN,
        "waiting",
        &["--metrics-listen", &metrics],
    );
    wait_until("the runner's metrics", Duration::from_secs(30), || {
        (runner_metric(&metrics, "steward_runner_connected") == Some(0.0)).then_some(())
    });
}

//! `steward up` as a user runs it: the bundled example shows SLI values, a runbook raises its
//! issue, the status page shows both, Ctrl-C stops everything, and a restart picks up the
//! same state, the user's own changes to the workspace included.

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::time::Duration;
use steward_testkit::{Process, free_port, get_json, wait_until};

fn start_up(dir: &std::path::Path, http: u16, https: u16, log_name: &str) -> Process {
    let mut cmd = steward();
    cmd.args([
        "up",
        "--listen",
        &format!("127.0.0.1:{http}"),
        "--tls-listen",
        &format!("127.0.0.1:{https}"),
    ])
    .env("STEWARD_DATA_DIR", dir.join("data"));
    Process::spawn("up", cmd, &dir.join(log_name))
}

#[test]
fn up_shows_four_sli_values_runs_a_runbook_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{http}");
    let mut up = start_up(dir.path(), http, https, "up.log");

    let slxs = wait_until("four SLI values", Duration::from_secs(120), || {
        let (status, slxs) = get_json(&format!("{url}/api/v1/workspaces/local/slxs"))?;
        let measured = slxs
            .as_array()?
            .iter()
            .filter(|s| s["latestSli"]["value"].is_number())
            .count();
        (status == 200 && measured >= 4).then_some(slxs)
    });
    // What every machine has is healthy; how full its disks are is the machine's business.
    for slx in slxs
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] != "root-filesystem")
    {
        assert_eq!(
            slx["latestSli"]["value"],
            1.0,
            "{} is unhealthy: {slx}\n{}",
            slx["name"],
            log(&dir.path().join("up.log"))
        );
    }

    let session = client_json(&url, &["session", "create", "--slx", "platform-tls"]);
    let run = &session["runs"][0];
    assert_eq!(run["status"], "succeeded", "{session:#}");
    let issue = &run["result"]["issues"][0];
    assert!(
        issue["title"].as_str().unwrap().contains("not trusted"),
        "{issue}"
    );
    assert_eq!(issue["severity"], 3);

    let page = reqwest::blocking::get(format!("{url}/"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("platform-http") && page.contains("1.000"),
        "status page lacks SLI values"
    );
    assert!(
        page.contains("is not trusted"),
        "status page lacks the open issue"
    );

    // The user adds a check of their own to the workspace.
    let (_, files) = get_json(&format!("{url}/api/v1/workspaces/local/export")).unwrap();
    let tree = dir.path().join("mine");
    for (path, text) in files.as_object().unwrap() {
        let text = text.as_str().unwrap();
        for path in [
            path.clone(),
            path.replace("slxs/platform-http/", "slxs/extra-check/"),
        ] {
            let file = tree.join(&path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
    }
    let (code, out, err) = client(&url, &["workspace", "import", tree.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    up.signal(Signal::SIGINT);
    let exit = up
        .wait_exit(Duration::from_secs(30))
        .expect("up stops on Ctrl-C");
    assert!(exit.success(), "{}", log(&dir.path().join("up.log")));
    assert!(
        get_json(&format!("{url}/api/v1/health")).is_none(),
        "the platform still answers"
    );

    // Same data directory again: same runner, same workspace, history kept.
    let mut again = start_up(dir.path(), http, https, "up2.log");
    let status = wait_until("the platform to come back", Duration::from_secs(60), || {
        get_json(&format!("{url}/api/v1/status"))
            .filter(|(s, _)| *s == 200)
            .map(|(_, body)| body)
    });
    assert_eq!(
        status["runners"].as_array().unwrap().len(),
        1,
        "the runner registered twice: {status}"
    );
    assert_eq!(status["openIssues"], 1);
    // The user's change survives the restart; up says it kept the workspace.
    wait_until("up to say so", Duration::from_secs(30), || {
        log(&dir.path().join("up2.log"))
            .contains("it is kept as it is")
            .then_some(())
    });
    let (_, slxs) = get_json(&format!("{url}/api/v1/workspaces/local/slxs")).unwrap();
    assert!(
        slxs.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "extra-check"),
        "{slxs}"
    );
    again.signal(Signal::SIGINT);
    assert!(
        again
            .wait_exit(Duration::from_secs(30))
            .expect("stops")
            .success()
    );
}

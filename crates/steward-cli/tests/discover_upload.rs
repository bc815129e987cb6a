//! `steward discover --upload` against a real platform: the generated tree arrives through
//! runwhen-local's upload call, with the platform's API token.

mod common;

use common::{start_platform, steward};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn discover(dir: &Path, url: &str, token: &str, extra: &[&str]) -> (i32, String, String) {
    let config = dir.join("workspaceInfo.yaml");
    std::fs::write(
        &config,
        format!(
            "workspaceName: shop-prod\nworkspaceOwnerEmail: sre@example.com\ndefaultLocation: local\n\
             cloudConfig:\n  kubernetes: {{}}\ncodeCollections:\n  - {}\n",
            repo().join("codecollections").display()
        ),
    )
    .unwrap();
    let output = steward()
        .args(["discover", "--config"])
        .arg(&config)
        .arg("--from-snapshot")
        .arg(repo().join("examples/discovery/cluster"))
        .arg("--out")
        .arg(dir.join("tree"))
        .args(["--upload", "--url", url, "--token", token])
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn slxs(url: &str, token: &str) -> Vec<String> {
    let body: Value = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v1/workspaces/shop-prod/slxs"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_generated_workspace_is_uploaded_and_refused_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let platform = start_platform(dir.path(), "reg", &["--api-token", "s3cret"]);

    let (code, stdout, stderr) = discover(dir.path(), &platform.url, "wrong", &[]);
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("refused the upload") && stderr.contains("401"),
        "{stderr}"
    );

    let (code, stdout, stderr) =
        discover(dir.path(), &platform.url, "s3cret", &["--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let generated = summary["slxs"].as_u64().unwrap() as usize;
    assert!(generated >= 5, "{summary}");
    assert_eq!(
        summary["upload"]["added"].as_array().unwrap().len(),
        generated,
        "{summary}"
    );
    let names = slxs(&platform.url, "s3cret");
    assert_eq!(names.len(), generated);
    // The platform names SLXs by their directory under slxs/.
    let mut dirs: Vec<String> = std::fs::read_dir(dir.path().join("tree/slxs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names = names;
    names.sort();
    assert_eq!(names, dirs);

    // A second run changes nothing on the platform.
    let (code, stdout, stderr) = discover(
        dir.path(),
        &platform.url,
        "s3cret",
        &["--output", "json", "--prune-stale-slxs"],
    );
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        summary["upload"]["added"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert!(
        summary["upload"]["removed"].as_array().unwrap().is_empty(),
        "{summary}"
    );
}

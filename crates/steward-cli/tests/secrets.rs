//! Secrets stay on the runner: `steward platform` and `steward runner` as processes, a runbook
//! whose secret comes from Vault (the stand-in) and one whose kubeconfig comes from a
//! Kubernetes Secret read through the API; then every byte the platform stored (database,
//! artifacts, log) is searched for the values.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use steward_testkit::kube::{Access, KubeApiServer, Rule, kubeconfig_yaml, write_kubeconfig};
use steward_testkit::vault::VaultServer;
use steward_testkit::workspace_root;

const VAULT_VALUE: &str = "vault-value-4f1c9a2e";
const APPROLE_SECRET_ID: &str = "approle-secret-8d2b";
const TASK_TOKEN: &str = "task-token-51e0c7aa";

fn workspace(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("workspace");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("workspace.yaml"),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: sec\n",
    )
    .unwrap();
    let slx = |name: &str, runbook: &str| {
        let slx_dir = root.join("slxs").join(name);
        std::fs::create_dir_all(&slx_dir).unwrap();
        std::fs::write(
            slx_dir.join("slx.yaml"),
            format!("apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: sec--{name}\nspec:\n  alias: {name}\n  statement: Secrets stay local.\n"),
        )
        .unwrap();
        std::fs::write(
            slx_dir.join("runbook.yaml"),
            format!("apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: sec--{name}\nspec:\n  location: local\n{runbook}"),
        )
        .unwrap();
    };
    slx(
        "billing",
        "  codeBundle:\n    repoUrl: https://example.com/fixtures.git\n    ref: main\n    pathToRobot: codebundles/secret-check/runbook.robot\n  configProvided:\n  - {name: SERVICE, value: billing}\n  secretsProvided:\n  - {name: api_token, workspaceKey: 'corp-vault@/kv/data/billing:token'}\n",
    );
    slx(
        "cluster",
        "  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/k8s-namespace-health/runbook.robot\n  configProvided:\n  - {name: NAMESPACE, value: shop}\n  - {name: CONTEXT, value: shop-admin}\n  secretsProvided:\n  - {name: kubeconfig, workspaceKey: 'k8s:file@secret/task-kubeconfig:kubeconfig'}\n",
    );
    root
}

/// Every stored form of `needle` in the files under `dir`: raw, and inside gzip streams and
/// the zlib-compressed strings of robot's log.html.
fn holders(dir: &Path, needle: &str) -> Vec<String> {
    let script = r#"
import base64, gzip, os, re, sys, zlib
root, needle = sys.argv[1], sys.argv[2].encode()
for base, _, files in os.walk(root):
    for name in files:
        path = os.path.join(base, name)
        data = open(path, "rb").read()
        forms = [data]
        if data[:2] == b"\x1f\x8b":
            try: forms.append(gzip.decompress(data))
            except Exception: pass
        for blob in re.findall(rb'"([A-Za-z0-9+/]{16,}={0,2})"', data):
            try: forms.append(zlib.decompress(base64.b64decode(blob)))
            except Exception: pass
        if any(needle in f for f in forms):
            print(path)
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(needle)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn session(url: &str, slx: &str, tasks: &[&str]) -> Value {
    let mut args = vec!["session", "create", "--slx", slx];
    for task in tasks {
        args.extend(["--task", task]);
    }
    let session = client_json(url, &args);
    session["runs"][0].clone()
}

#[test]
fn secret_values_never_reach_the_platform() {
    let dir = tempfile::tempdir().unwrap();

    // The cluster: tasks get a kubeconfig (with its own token) from a Secret that the runner
    // reads with its own, narrower identity.
    let server = KubeApiServer::builder()
        .objects([
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "shop"},
                   "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                   "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "", "started": true, "state": {"running": {}}}]}}),
        ])
        .token(
            "runner-token",
            Access::AllowOnly(vec![Rule::new("get", "secrets").in_namespace("steward")]),
        )
        .token(TASK_TOKEN, Access::deny(&[]))
        .start();
    let task_kubeconfig = kubeconfig_yaml(&[server
        .context("shop-admin", TASK_TOKEN)
        .with_namespace("shop")]);
    server
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "task-kubeconfig", "namespace": "steward"},
                      "stringData": {"kubeconfig": task_kubeconfig}}))
        .unwrap();
    server
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "vault-approle", "namespace": "steward"},
                      "stringData": {"secret-id": APPROLE_SECRET_ID}}))
        .unwrap();
    let runner_kubeconfig = dir.path().join("runner-kubeconfig");
    write_kubeconfig(
        &runner_kubeconfig,
        &[server.context("runner", "runner-token")],
    )
    .unwrap();

    let vault = VaultServer::start();
    vault.put("kv", "billing", json!({"token": VAULT_VALUE}));
    vault.add_approle("approle", "steward-runner", APPROLE_SECRET_ID);
    let config = dir.path().join("runner.yaml");
    std::fs::write(
        &config,
        format!(
            "secretProviders:\n  corp-vault:\n    type: vault\n    vaultSecretProvider:\n      addr: {}\n      authMountPath: approle\n      roleID: steward-runner\n      secretID: k8s:file@secret/vault-approle:secret-id\nblockedSecrets: ['k8s:*@kube-system/']\n",
            vault.url()
        ),
    )
    .unwrap();

    let token = "stw_reg_secrets";
    let platform = start_platform(dir.path(), token, &["--location", "local"]);
    let url = platform.url.clone();
    let fixtures = workspace_root().join("crates/steward-runtime/tests/fixtures/collection");
    let collection = format!("https://example.com/fixtures.git={}", fixtures.display());
    let _runner = start_runner_with_env(
        dir.path(),
        &url,
        token,
        "local-runner",
        &[
            "--config",
            config.to_str().unwrap(),
            "--collection",
            &collection,
        ],
        &[
            ("KUBECONFIG", runner_kubeconfig.as_os_str()),
            ("STEWARD_NAMESPACE", "steward".as_ref()),
        ],
    );
    let tree = workspace(dir.path());
    let (code, stdout, stderr) = client(&url, &["workspace", "import", tree.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let billing = session(&url, "billing", &["Use The Token For `${SERVICE}`"]);
    assert_eq!(billing["status"], "succeeded", "{billing:#}");
    let cluster = session(&url, "cluster", &[]);
    assert_eq!(cluster["status"], "succeeded", "{cluster:#}");
    assert_eq!(vault.logins(), 1);
    assert!(
        server.requests("list", "pods") > 0,
        "the task's kubectl never reached the cluster with the resolved kubeconfig"
    );

    // The platform holds what the run reported, with the value masked...
    let artifacts = api(
        &url,
        &format!("/api/v1/runs/{}/artifacts", billing["id"].as_str().unwrap()),
    );
    let report_url = artifacts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "report.jsonl")
        .expect("report.jsonl uploaded")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let report = reqwest::blocking::get(&report_url).unwrap().text().unwrap();
    assert!(report.contains("leaked: ********"), "{report}");

    // ...and not one of the values, in any file, compressed or not.
    let stored = dir.path().join("platform-data");
    for value in [VAULT_VALUE, APPROLE_SECRET_ID, TASK_TOKEN] {
        let found = holders(&stored, value);
        assert!(
            found.is_empty(),
            "{value} found on the platform in {found:?}"
        );
        assert!(
            !log(&dir.path().join("platform.log")).contains(value),
            "{value} in the platform's log"
        );
    }
    // The search does find what is there (it would not pass by looking nowhere).
    assert!(!holders(&stored, "leaked: ********").is_empty());

    // A blocked key fails the run with the reason, and the platform shows it.
    let runbook = tree.join("slxs/cluster/runbook.yaml");
    let text = std::fs::read_to_string(&runbook).unwrap().replace(
        "k8s:file@secret/task-kubeconfig",
        "k8s:file@kube-system/secret/admin",
    );
    std::fs::write(&runbook, text).unwrap();
    let (code, stdout, stderr) = client(&url, &["workspace", "import", tree.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let refused = session(&url, "cluster", &[]);
    assert_eq!(refused["status"], "error", "{refused:#}");
    assert!(
        refused["result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("blockedSecrets entry \"k8s:*@kube-system/\""),
        "{refused:#}"
    );
    drop(platform);
}

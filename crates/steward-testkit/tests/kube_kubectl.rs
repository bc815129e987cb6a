//! The in-memory Kubernetes API server driven by the real kubectl, which the codebundles call
//! against it. kubectl must be installed (`.ci/run` installs Debian's kubernetes-client).

mod kube_fixtures;

use serde_json::json;
use std::path::Path;
use std::process::Command;
use steward_testkit::kube::{Access, KubeApiServer, write_kubeconfig};

use kube_fixtures::{pod, widget_crd};

/// Runs the real kubectl against `kubeconfig`; a missing kubectl fails the test.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let binary = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("kubectl is not installed: apt-get install kubernetes-client (.ci/run does)");
    let cache = kubeconfig.with_file_name("kubectl-cache");
    let out = Command::new(binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
#[test]
fn kubectl_reads_discovery_lists_and_tables() {
    let mut seeds = vec![widget_crd("Namespaced", "widgets", "Widget")];
    for (ns, name, app) in [
        ("shop", "web-1", "web"),
        ("shop", "web-2", "web"),
        ("shop", "db-0", "db"),
        ("ops", "agent", "agent"),
        ("ops", "cron", "agent"),
    ] {
        seeds.push(pod(ns, name, json!({"app": app})));
    }
    for (name, app) in [("web", "web"), ("db", "db")] {
        seeds.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}, "spec": {}}));
    }
    seeds.push(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "gizmo", "namespace": "shop"}}));
    let server = KubeApiServer::start(&seeds);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    server.write_kubeconfig(&config).unwrap();
    let (ok, out, err) = kubectl(&config, &["get", "pods", "-A"]);
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAMESPACE", "NAME", "STATUS", "AGE"]);
    let cells: Vec<(&str, &str, &str)> = rows[1..].iter().map(|r| (r[0], r[1], r[2])).collect();
    assert_eq!(
        cells,
        [
            ("ops", "agent", "Running"),
            ("ops", "cron", "Running"),
            ("shop", "db-0", "Running"),
            ("shop", "web-1", "Running"),
            ("shop", "web-2", "Running")
        ]
    );

    let (ok, out, err) = kubectl(
        &config,
        &[
            "get",
            "deployments",
            "-n",
            "shop",
            "-l",
            "app=web",
            "-o",
            "name",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "deployment.apps/web\n");

    server.reset_counts();
    let (ok, out, err) = kubectl(
        &config,
        &["get", "pods", "-A", "--chunk-size=2", "-o", "name"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert_eq!(server.requests("list", "pods"), 3, "5 pods in pages of 2");

    let (ok, out, err) = kubectl(&config, &["api-resources"]);
    assert!(ok, "{err}");
    let widgets = out
        .lines()
        .find(|l| l.starts_with("widgets "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        widgets.split_whitespace().collect::<Vec<_>>(),
        ["widgets", "wi", "example.com/v1", "true", "Widget"]
    );
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
        == ["deployments", "deploy", "apps/v1", "true", "Deployment"]));

    let (ok, out, err) = kubectl(&config, &["get", "widgets", "-n", "shop"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().nth(1).unwrap().split_whitespace().next(),
        Some("gizmo")
    );

    let (ok, _, err) = kubectl(&config, &["get", "pod", "nope", "-n", "shop"]);
    assert!(!ok);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );
}

#[test]
fn kubectl_creates_patches_and_deletes() {
    let server = KubeApiServer::start(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    server.write_kubeconfig(&config).unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: x}\ndata: {a: '1'}\n").unwrap();
    let (ok, out, err) = kubectl(&config, &["create", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out, "configmap/settings created\n");
    let (ok, _, err) = kubectl(
        &config,
        &["label", "configmap", "settings", "-n", "x", "tier=front"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(
        &config,
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "x",
            "--type=merge",
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ],
    );
    assert!(ok, "{err}");
    let stored = server
        .get("v1", "configmaps", Some("x"), "settings")
        .unwrap();
    assert_eq!(
        (
            stored["metadata"]["labels"]["tier"].as_str(),
            stored["data"]["a"].as_str()
        ),
        (Some("front"), Some("2"))
    );
    let (ok, out, err) = kubectl(&config, &["delete", "configmap", "settings", "-n", "x"]);
    assert!(ok, "{err}");
    assert_eq!(out, "configmap \"settings\" deleted\n");
    assert!(
        server
            .get("v1", "configmaps", Some("x"), "settings")
            .is_none()
    );
}

#[test]
fn kubectl_sends_tokens_over_tls() {
    let server = KubeApiServer::builder()
        .tls(true)
        .object(pod("shop", "web-1", json!({})))
        .token("expired", Access::Unauthorized)
        .token("restricted", Access::deny(&[("list", "namespaces")]))
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let contexts = [
        server.context("admin", KubeApiServer::ADMIN_TOKEN),
        server.context("expired", "expired"),
        server.context("restricted", "restricted"),
    ];
    write_kubeconfig(&config, &contexts).unwrap();
    let (ok, out, err) = kubectl(&config, &["get", "pods", "-A", "-o", "name"]);
    assert!(ok, "{err}");
    assert_eq!(out, "pod/web-1\n");
    let (ok, _, err) = kubectl(&config, &["--context", "expired", "get", "pods", "-A"]);
    assert!(!ok);
    assert!(err.contains("(Unauthorized)"), "{err}");
    let (ok, _, err) = kubectl(&config, &["--context", "restricted", "get", "namespaces"]);
    assert!(!ok);
    assert!(
        err.contains("Error from server (Forbidden): namespaces is forbidden: User \"restricted\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"),
        "{err}"
    );
    let (ok, out, err) = kubectl(
        &config,
        &[
            "--context",
            "restricted",
            "get",
            "pods",
            "-n",
            "shop",
            "-o",
            "name",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "pod/web-1\n");
    assert_eq!(server.requests("list", "namespaces"), 1);
}

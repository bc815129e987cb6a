//! `steward discover` against a live (in-memory) Kubernetes API server: the kubeconfig's
//! contexts are indexed, SLXs are generated for what was found with the repository's own
//! CodeCollection, the snapshot is written, and contexts that cannot be used are listed as
//! skipped without failing the run.

mod common;

use common::steward;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use steward_testkit::kube::{Access, KubeApiServer, KubeContext, write_kubeconfig};

const CLUSTER: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: payments}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system, annotations: {config.runwhen.com/lod: none}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {replicas: 2, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: nginx}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec: {replicas: 1, selector: {matchLabels: {app: api}}, template: {metadata: {labels: {app: api}}, spec: {containers: [{name: api, image: api}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: payments}
spec: {replicas: 1, selector: {matchLabels: {app: checkout}}, template: {metadata: {labels: {app: checkout}}, spec: {containers: [{name: c, image: c}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec: {replicas: 2, selector: {matchLabels: {app: dns}}, template: {metadata: {labels: {app: dns}}, spec: {containers: [{name: dns, image: dns}]}}}
";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The `additionalContext.qualified_name` of every generated SLX whose directory contains
/// `base` (the SLX base name).
fn qualified_names(tree: &Path, base: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(tree.join("slxs")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.file_name().unwrap().to_string_lossy().contains(base) {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("slx.yaml")).unwrap();
        // The templates write one `qualified_name:` line under additionalContext.
        let name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("qualified_name:"))
            .unwrap_or_else(|| panic!("{}: no qualified_name in\n{text}", dir.display()));
        out.insert(
            name.trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_string(),
        );
    }
    out
}

#[test]
fn discover_indexes_the_cluster_and_lists_the_contexts_it_could_not_use() {
    let server = KubeApiServer::from_yaml(CLUSTER).unwrap();
    server.set_token("expired", Access::Unauthorized);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(
        &kubeconfig,
        &[
            KubeContext::unreachable("gone"),
            server.context("prod", KubeApiServer::ADMIN_TOKEN),
            server.context("stale", "expired"),
        ],
    )
    .unwrap();
    let config = dir.path().join("ws.yaml");
    std::fs::write(
        &config,
        format!(
            "workspaceName: shop-prod\nworkspaceOwnerEmail: sre@example.com\ndefaultLocation: local\n\
             cloudConfig:\n  kubernetes: {{}}\n\
             codeCollections:\n  - repoURL: {}\n    codeBundles: [k8s-namespace-health, k8s-deployment-health]\n",
            repo().join("codecollections").display()
        ),
    )
    .unwrap();
    let tree = dir.path().join("tree");
    let snapshot = dir.path().join("snapshot.jsonl");
    let discover = |extra: &[&str]| {
        let output = steward()
            .arg("discover")
            .arg("--config")
            .arg(&config)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--out")
            .arg(&tree)
            .arg("--snapshot-out")
            .arg(&snapshot)
            .args(["--output", "json"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}\nstdout: {stdout}\nstderr: {stderr}"));
        (output.status.code(), summary)
    };

    // The workspace is partial: generated and written, and the exit code says so.
    let (code, summary) = discover(&[]);
    assert_eq!(code, Some(1), "{summary:#}");
    assert_eq!(
        summary["failedContexts"],
        serde_json::json!(["gone", "stale"]),
        "{summary:#}"
    );

    assert_eq!(
        summary["contexts"],
        serde_json::json!(["prod"]),
        "{summary:#}"
    );
    assert_eq!(summary["resources"]["deployment"], 3, "{summary:#}");
    let skipped = summary["skipped"].as_array().unwrap();
    for (context, cause) in [("gone", "onnect"), ("stale", "401")] {
        let entries: Vec<&Value> = skipped
            .iter()
            .filter(|s| s["item"] == format!("context {context}"))
            .collect();
        assert_eq!(entries.len(), 1, "{context}: {summary:#}");
        let reason = entries[0]["reason"].as_str().unwrap();
        assert!(reason.contains(cause), "{context}: {reason}");
    }

    // One SLX per seeded deployment outside kube-system (level `none`), one per namespace.
    assert_eq!(
        qualified_names(&tree, "k8s-depl-health"),
        BTreeSet::from([
            "prod/payments/checkout".to_string(),
            "prod/shop/api".to_string(),
            "prod/shop/web".to_string(),
        ])
    );
    let namespaces = qualified_names(&tree, "k8s-ns-health");
    for ns in ["prod/shop", "prod/payments"] {
        assert!(namespaces.contains(ns), "{namespaces:?}");
    }
    assert!(!namespaces.contains("prod/kube-system"), "{namespaces:?}");
    assert_eq!(
        summary["slxs"].as_u64().unwrap() as usize,
        3 + namespaces.len()
    );

    // The snapshot holds what was indexed, and generation from it needs no cluster.
    let registry = steward_discovery::snapshot::read(&snapshot).unwrap();
    let deployments: Vec<&str> = registry
        .of_type("deployment")
        .map(|r| r.qualified_name.as_str())
        .collect();
    assert_eq!(
        deployments,
        ["prod/payments/checkout", "prod/shop/api", "prod/shop/web"]
    );

    // Only the usable context: a complete run.
    let (code, summary) = discover(&["--context", "prod"]);
    assert_eq!(code, Some(0), "{summary:#}");
    assert_eq!(
        summary["contexts"],
        serde_json::json!(["prod"]),
        "{summary:#}"
    );
    // Nothing is skipped but the namespace whose level of detail is `none`.
    let skipped: Vec<&str> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["item"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["namespace kube-system"], "{summary:#}");
}

//! The live Kubernetes indexer against the in-memory API server, through a real kube-rs
//! client: failing contexts, every built-in kind and its qualified name, namespace levels of
//! detail and pagination here; RBAC fallbacks (`access`), several contexts on one cluster
//! (`clusters`), custom resources (`crds`) and determinism (`determinism`) in the submodules.

#[path = "kube_index/access.rs"]
mod access;
#[path = "kube_index/clusters.rs"]
mod clusters;
#[path = "kube_index/crds.rs"]
mod crds;
#[path = "kube_index/determinism.rs"]
mod determinism;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward_discovery::config::WorkspaceInfo;
use steward_discovery::kubernetes::index::{self, targets_from_kubeconfig};
use steward_discovery::kubernetes::{CustomRef, IndexProblem, IndexResult, Limits, Silent, Target};
use steward_discovery::{Lod, Resource};
use steward_testkit::kube::{Access, KubeApiServer, KubeContext, Rule, kubeconfig_yaml};

// ---------------------------------------------------------------------------------------------
// Helpers shared with the submodules.

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube")
        .join(name)
}

/// The objects of fixture files, `List` documents flattened, in file order.
pub fn fixture_objects(names: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for name in names {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            match value.get("items").and_then(Value::as_array) {
                Some(items) if value["kind"] == "List" => out.extend(items.iter().cloned()),
                _ if value.is_null() => {}
                _ => out.push(value),
            }
        }
    }
    out
}

/// A server seeded with `shop.yaml` (and whatever `more` adds), tokens set afterwards.
pub fn shop_server(openshift: bool) -> KubeApiServer {
    let server = KubeApiServer::builder()
        .objects(fixture_objects(&["shop.yaml", "crds.yaml"]))
        .openshift(openshift)
        .start();
    assert!(
        server.seed_problems().is_empty(),
        "{:?}",
        server.seed_problems()
    );
    server
}

/// A workspaceInfo.yaml with the required keys and `rest` appended.
pub fn workspace(rest: &str) -> Arc<WorkspaceInfo> {
    let text = format!(
        "workspaceName: t\nworkspaceOwnerEmail: a@example.com\ndefaultLocation: loc\n{rest}"
    );
    let (info, _warnings) =
        WorkspaceInfo::parse(&text, Path::new("/nowhere/workspaceInfo.yaml")).unwrap();
    Arc::new(info)
}

/// The targets of a kubeconfig text (written to disk and read back as `steward discover` does).
pub async fn targets(kubeconfig: &str) -> Vec<Target> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig).unwrap();
    let config = kube::config::Kubeconfig::read_from(&path).unwrap();
    targets_from_kubeconfig(&config, &[]).await
}

pub async fn run(
    kubeconfig: &str,
    info: Arc<WorkspaceInfo>,
    custom: &[CustomRef],
    limits: Limits,
) -> IndexResult {
    index::index_with(
        targets(kubeconfig).await,
        custom,
        info,
        Arc::new(Silent),
        limits,
    )
    .await
}

pub async fn run_contexts(contexts: &[KubeContext], info: Arc<WorkspaceInfo>) -> IndexResult {
    run(&kubeconfig_yaml(contexts), info, &[], Limits::default()).await
}

/// Qualified names of one resource type, in registry order.
pub fn names(result: &IndexResult, resource_type: &str) -> Vec<String> {
    result
        .registry
        .of_type(resource_type)
        .map(|r| r.qualified_name.clone())
        .collect()
}

pub fn resource<'a>(result: &'a IndexResult, resource_type: &str, qualified: &str) -> &'a Resource {
    result
        .registry
        .get(resource_type, qualified)
        .unwrap_or_else(|| {
            panic!(
                "no {resource_type} {qualified}; have {:?}",
                result.registry.counts()
            )
        })
}

pub fn problems_of<'a>(result: &'a IndexResult, context: &str) -> Vec<&'a IndexProblem> {
    result
        .problems
        .iter()
        .filter(|p| p.context == context)
        .collect()
}

/// Adds a context (with its own cluster entry and user) to kubeconfig text.
fn add_context(kubeconfig: &str, name: &str, server: &str, user: Value) -> String {
    let mut config: Value = serde_yaml::from_str(kubeconfig).unwrap();
    config["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "cluster": {"server": server}}));
    config["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "user": user}));
    config["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "context": {"cluster": name, "user": name}}));
    serde_yaml::to_string(&config).unwrap()
}

pub const BUILTIN_PLURALS: &[&str] = &[
    "deployments",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "ingresses",
    "services",
    "persistentvolumeclaims",
    "pods",
];

// ---------------------------------------------------------------------------------------------
// 1. Failing contexts (upstream issue #721).

#[tokio::test]
async fn a_failing_context_is_reported_once_and_never_stops_the_others() {
    let server = shop_server(false);
    server.set_token("expired", Access::Unauthorized);
    server.set_token("forbidden", Access::Forbidden);
    // Discovery stays open (every authenticated user may read it), every list is refused.
    server.set_token("no-rights", Access::allow_only(&[]));
    let contexts = [
        KubeContext::unreachable("gone"),
        server.context("expired", "expired"),
        server.context("good", KubeApiServer::ADMIN_TOKEN),
        server.context("forbidden", "forbidden"),
        server.context("no-rights", "no-rights"),
    ];
    let mut kubeconfig = kubeconfig_yaml(&contexts);
    // An exec credential plugin that is not installed (upstream issue #314, OKE).
    kubeconfig = add_context(
        &kubeconfig,
        "oke",
        &server.url(),
        json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "oci-cli-not-installed",
                        "args": ["ce", "cluster", "generate-token"], "interactiveMode": "Never"}}),
    );
    let result = run(&kubeconfig, workspace(""), &[], Limits::default()).await;

    assert_eq!(result.contexts, ["good"], "{:#?}", result.problems);
    assert!(
        problems_of(&result, "good").is_empty(),
        "{:#?}",
        result.problems
    );
    let causes = [
        ("gone", "connect"),
        ("expired", "401"),
        ("forbidden", "403"),
        ("no-rights", "403"),
        ("oke", "oci-cli-not-installed"),
    ];
    for (context, cause) in causes {
        let fatal: Vec<_> = problems_of(&result, context)
            .into_iter()
            .filter(|p| p.fatal)
            .collect();
        assert_eq!(fatal.len(), 1, "{context}: {:#?}", result.problems);
        let text = format!("{} {}", fatal[0].during, fatal[0].message).to_lowercase();
        assert!(
            text.contains(cause),
            "{context}: expected {cause:?} in {text:?}"
        );
        assert!(
            result.registry.get("cluster", context).is_none(),
            "{context} left a cluster resource"
        );
    }
    // The good context is complete whatever failed around it.
    assert_eq!(
        names(&result, "deployment"),
        ["good/payments/checkout", "good/shop/api", "good/shop/web"]
    );
    assert_eq!(names(&result, "cluster"), ["good"]);
}

#[tokio::test]
async fn a_context_named_on_the_command_line_but_missing_is_reported() {
    let server = shop_server(false);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = kube::config::Kubeconfig::from_yaml(&kubeconfig_yaml(&[
        server.context("prod", KubeApiServer::ADMIN_TOKEN)
    ]))
    .unwrap();
    let targets = targets_from_kubeconfig(&config, &["prod".into(), "prdo".into()]).await;
    assert_eq!(
        targets
            .iter()
            .map(|t| t.context.as_str())
            .collect::<Vec<_>>(),
        ["prod", "prdo"]
    );
    let result = index::index(targets, &[], workspace(""), Arc::new(Silent)).await;
    assert_eq!(result.contexts, ["prod"]);
    let problem = &problems_of(&result, "prdo")[0];
    assert!(
        problem.fatal && problem.message.contains("prod"),
        "{problem:?}"
    );
}

#[tokio::test]
async fn in_cluster_auth_outside_a_pod_is_a_failing_context() {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        eprintln!("Running inside a pod: the in-cluster configuration would work here.");
        return;
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let target = index::in_cluster_target("default");
    let result = index::index(vec![target], &[], workspace(""), Arc::new(Silent)).await;
    assert!(result.contexts.is_empty() && result.registry.is_empty());
    let problem = &problems_of(&result, "default")[0];
    assert!(
        problem.fatal && problem.message.contains("inClusterAuth"),
        "{problem:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Kinds, names, namespaces and their levels of detail.

const LEVELS: &str = "defaultLOD: detailed
namespaceLODs: {payments: detailed, kube-system: detailed}
cloudConfig:
  kubernetes:
    contexts:
      prod:
        defaultNamespaceLOD: basic
        namespaceLODs: {shop: detailed}
";

#[tokio::test]
async fn every_builtin_kind_is_indexed_with_upstream_names_and_namespace_levels() {
    let server = shop_server(false);
    let result = run_contexts(
        &[server.context("prod", KubeApiServer::ADMIN_TOKEN)],
        workspace(LEVELS),
    )
    .await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    assert_eq!(result.contexts, ["prod"]);

    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("cluster", vec!["prod"]),
        (
            "namespace",
            vec!["prod/default", "prod/payments", "prod/reports", "prod/shop"],
        ),
        (
            "deployment",
            vec!["prod/payments/checkout", "prod/shop/api", "prod/shop/web"],
        ),
        ("daemonset", vec!["prod/shop/log-agent"]),
        ("statefulset", vec!["prod/shop/db"]),
        ("job", vec!["prod/shop/migrate"]),
        ("cronjob", vec!["prod/reports/weekly", "prod/shop/nightly"]),
        ("ingress", vec!["prod/shop/web"]),
        (
            "service",
            vec![
                "prod/default/kubernetes",
                "prod/payments/checkout",
                "prod/shop/web",
            ],
        ),
        ("persistentvolumeclaim", vec!["prod/shop/data"]),
        ("pod", vec!["prod/shop/web-1"]),
    ]);
    let actual: BTreeMap<String, Vec<String>> = result
        .registry
        .counts()
        .keys()
        .map(|t| (t.clone(), names(&result, t)))
        .collect();
    let expected: BTreeMap<String, Vec<String>> = expected
        .into_iter()
        .map(|(t, n)| (t.to_string(), n.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(actual, expected);

    // kube-system (annotated `none`, whatever namespaceLODs says) and sandbox (ignored) are
    // gone with everything in them.
    assert!(
        result
            .registry
            .iter()
            .all(|r| !matches!(r.namespace.as_deref(), Some("kube-system" | "sandbox")))
    );

    // Context namespaceLODs > global namespaceLODs > context default.
    let levels: BTreeMap<&str, Lod> = BTreeMap::from([
        ("shop", Lod::Detailed),
        ("payments", Lod::Detailed),
        ("reports", Lod::Basic),
        ("default", Lod::Basic),
    ]);
    for r in result
        .registry
        .iter()
        .filter(|r| r.resource_type != "cluster")
    {
        let ns = r.namespace.as_deref().unwrap();
        assert_eq!(r.lod, levels[ns], "{}", r.qualified_name);
        assert_eq!(
            (r.cluster.as_deref(), r.context.as_deref()),
            (Some("prod"), Some("prod"))
        );
        assert_eq!(r.platform, "kubernetes");
    }

    let cluster = resource(&result, "cluster", "prod");
    assert_eq!(
        cluster.payload.value(),
        json!({"name": "prod", "context": "prod", "server": server.url()})
    );
    assert_eq!(cluster.lod, Lod::Detailed);

    let shop = resource(&result, "namespace", "prod/shop");
    assert_eq!(
        (shop.name.as_str(), shop.namespace.as_deref()),
        ("shop", Some("shop"))
    );
    assert_eq!(shop.payload.value()["kind"], "Namespace");
    assert_eq!(shop.payload.value()["metadata"]["labels"]["team"], "shop");
    assert_eq!(
        shop.payload.value()["metadata"]["annotations"]["config.runwhen.com/owner"],
        "shop-team"
    );

    // List items come without kind/apiVersion; the indexer puts them back.
    for (resource_type, qualified, kind, api_version) in [
        ("deployment", "prod/shop/web", "Deployment", "apps/v1"),
        ("cronjob", "prod/shop/nightly", "CronJob", "batch/v1"),
        (
            "ingress",
            "prod/shop/web",
            "Ingress",
            "networking.k8s.io/v1",
        ),
        (
            "persistentvolumeclaim",
            "prod/shop/data",
            "PersistentVolumeClaim",
            "v1",
        ),
        ("pod", "prod/shop/web-1", "Pod", "v1"),
    ] {
        let r = resource(&result, resource_type, qualified);
        assert_eq!(
            (
                r.payload.value()["kind"].as_str(),
                r.payload.value()["apiVersion"].as_str()
            ),
            (Some(kind), Some(api_version))
        );
        assert_eq!(r.payload.value()["metadata"]["name"], r.name.as_str());
    }
    let web = resource(&result, "deployment", "prod/shop/web");
    assert_eq!(web.payload.value()["spec"]["replicas"], 2);
    assert_eq!(web.payload.value()["metadata"]["uid"], "d-web");
    // Bookkeeping that changes on every write stays out of the registry.
    assert!(
        web.payload.value()["metadata"]
            .get("resourceVersion")
            .is_none(),
        "{}",
        web.payload.as_str()
    );
    assert!(
        web.payload.value()["metadata"]
            .get("managedFields")
            .is_none()
    );
}

#[tokio::test]
async fn a_configured_namespace_that_does_not_exist_is_reported_not_invented() {
    let server = shop_server(false);
    let info = workspace("cloudConfig:\n  kubernetes:\n    namespaces: [shop, ghost, \"pay.*\"]\n");
    let result = run_contexts(&[server.context("prod", KubeApiServer::ADMIN_TOKEN)], info).await;
    assert_eq!(names(&result, "namespace"), ["prod/payments", "prod/shop"]);
    assert_eq!(
        names(&result, "deployment"),
        ["prod/payments/checkout", "prod/shop/api", "prod/shop/web"]
    );
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        !problems[0].fatal && problems[0].message.contains("ghost"),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn a_cluster_served_over_tls_is_indexed_with_its_certificate_authority() {
    let server = KubeApiServer::builder()
        .objects(fixture_objects(&["shop.yaml"]))
        .tls(true)
        .start();
    assert!(server.url().starts_with("https://"));
    let result = run_contexts(
        &[server.context("secure", KubeApiServer::ADMIN_TOKEN)],
        workspace(""),
    )
    .await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    assert_eq!(
        names(&result, "deployment"),
        [
            "secure/payments/checkout",
            "secure/shop/api",
            "secure/shop/web"
        ]
    );
    assert_eq!(
        resource(&result, "cluster", "secure").payload.value()["server"],
        server.url()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Pagination.

#[tokio::test]
async fn lists_are_paginated() {
    let mut objects = Vec::new();
    for (ns, count) in [("a", 3), ("b", 2), ("c", 2), ("d", 0)] {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        for i in 0..count {
            objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("d{i}"), "namespace": ns}, "spec": {"replicas": 1}}));
        }
    }
    let server = KubeApiServer::start(&objects);
    let limits = Limits {
        page_size: 2,
        ..Limits::default()
    };
    let kubeconfig = kubeconfig_yaml(&[server.context("prod", KubeApiServer::ADMIN_TOKEN)]);
    let result = run(&kubeconfig, workspace(""), &[], limits).await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);

    // 7 deployments at 2 a page: 4 pages; 5 namespaces (default too): 3 pages.
    assert_eq!(server.requests("list", "deployments"), 4);
    assert_eq!(server.requests("list", "namespaces"), 3);
    assert_eq!(
        names(&result, "namespace"),
        ["prod/a", "prod/b", "prod/c", "prod/d", "prod/default"]
    );
    assert_eq!(
        names(&result, "deployment"),
        [
            "prod/a/d0",
            "prod/a/d1",
            "prod/a/d2",
            "prod/b/d0",
            "prod/b/d1",
            "prod/c/d0",
            "prod/c/d1"
        ]
    );
    // Every other kind: one (empty) page each.
    let empty_kinds = BUILTIN_PLURALS.len() - 1;
    assert_eq!(
        result.requests,
        4 + 3 + empty_kinds,
        "{:?}",
        server.request_counts()
    );
}

/// Namespaces `a` (3 deployments) and `b` (4), listed 4 objects a page: only the deployments
/// take a second page, so only their list carries a `continue` token.
fn two_page_deployments() -> (KubeApiServer, String) {
    let mut objects = Vec::new();
    for (ns, count) in [("a", 3), ("b", 4)] {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        for i in 0..count {
            objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("d{i}"), "namespace": ns}, "spec": {"replicas": 1}}));
        }
    }
    let server = KubeApiServer::start(&objects);
    let kubeconfig = kubeconfig_yaml(&[server.context("prod", KubeApiServer::ADMIN_TOKEN)]);
    (server, kubeconfig)
}

#[tokio::test]
async fn a_list_whose_revision_was_compacted_is_read_again_from_the_start() {
    let (server, kubeconfig) = two_page_deployments();
    server.expire_continue_tokens(2);
    let limits = Limits {
        page_size: 4,
        ..Limits::default()
    };
    let result = run(&kubeconfig, workspace(""), &[], limits).await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    // Twice a first page and a refused second one, then both pages.
    assert_eq!(server.requests("list", "deployments"), 6);
    // Each deployment once: nothing of the abandoned first pages is kept twice.
    assert_eq!(
        names(&result, "deployment"),
        [
            "prod/a/d0",
            "prod/a/d1",
            "prod/a/d2",
            "prod/b/d0",
            "prod/b/d1",
            "prod/b/d2",
            "prod/b/d3"
        ]
    );
}

#[tokio::test]
async fn a_list_compacted_every_time_fails_only_its_kind_with_the_reason() {
    let (server, kubeconfig) = two_page_deployments();
    server.expire_continue_tokens(100);
    let limits = Limits {
        page_size: 4,
        ..Limits::default()
    };
    let result = run(&kubeconfig, workspace(""), &[], limits).await;
    // The first try and three more, each refused at its second page.
    assert_eq!(server.requests("list", "deployments"), 8);
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].during, "list deployments");
    assert!(!problems[0].fatal);
    assert!(
        problems[0].message.contains("410 Expired")
            && problems[0].message.contains("4 times in a row"),
        "{}",
        problems[0].message
    );
    assert!(names(&result, "deployment").is_empty());
    assert_eq!(
        names(&result, "namespace"),
        ["prod/a", "prod/b", "prod/default"]
    );
}

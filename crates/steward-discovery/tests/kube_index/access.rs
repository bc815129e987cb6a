//! RBAC: cluster-wide lists refused (per-namespace fallback), namespaces that cannot
//! be listed (OpenShift projects, the context's namespace, configured names; upstream issues
//! #1 and #216).

use super::*;

// ---------------------------------------------------------------------------------------------
// 4. RBAC: cluster-wide lists forbidden.

/// Lists of every built-in kind allowed cluster-wide, except deployments: those only in `namespaces`.
fn deployments_only_in(namespaces: &[&str]) -> Access {
    let mut rules = vec![Rule::new("list", "namespaces")];
    rules.extend(
        BUILTIN_PLURALS
            .iter()
            .filter(|p| **p != "deployments")
            .map(|p| Rule::new("list", p)),
    );
    rules.extend(
        namespaces
            .iter()
            .map(|ns| Rule::new("list", "deployments").in_namespace(ns)),
    );
    Access::AllowOnly(rules)
}

#[tokio::test]
async fn a_forbidden_cluster_wide_list_falls_back_to_each_namespace() {
    let server = shop_server(false);
    server.set_token(
        "ns-admin",
        deployments_only_in(&["default", "payments", "reports", "shop"]),
    );
    let result = run_contexts(&[server.context("prod", "ns-admin")], workspace("")).await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    assert_eq!(
        names(&result, "deployment"),
        ["prod/payments/checkout", "prod/shop/api", "prod/shop/web"]
    );
    assert_eq!(names(&result, "service").len(), 3);
    // One refused cluster-wide list, then one per selected namespace (not kube-system or sandbox).
    assert_eq!(server.requests("list", "deployments"), 1 + 4);
    assert_eq!(server.requests("list", "services"), 1);
}

#[tokio::test]
async fn a_namespace_that_forbids_a_kind_loses_only_that_kind_there() {
    let server = shop_server(false);
    server.set_token("partial", deployments_only_in(&["shop", "reports"]));
    let result = run_contexts(&[server.context("prod", "partial")], workspace("")).await;
    assert_eq!(result.contexts, ["prod"]);
    assert_eq!(
        names(&result, "deployment"),
        ["prod/shop/api", "prod/shop/web"]
    );
    // Everything else in payments is still there.
    assert_eq!(
        names(&result, "service"),
        [
            "prod/default/kubernetes",
            "prod/payments/checkout",
            "prod/shop/web"
        ]
    );
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = problems[0];
    assert!(!p.fatal && p.during.contains("deployment"), "{p:?}");
    assert!(
        p.message.contains("payments")
            && p.message.contains("default")
            && p.message.contains("403"),
        "{p:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Namespaces that cannot be listed (upstream issues #1, #216).

#[tokio::test]
async fn openshift_projects_stand_in_for_namespaces() {
    let server = shop_server(true);
    server.set_token("developer", Access::deny(&[("list", "namespaces")]));
    let result = run_contexts(&[server.context("ocp", "developer")], workspace("")).await;
    assert_eq!(server.requests("list", "projects"), 1);
    // Projects carry the namespaces' annotations: kube-system and sandbox stay out.
    assert_eq!(
        names(&result, "namespace"),
        ["ocp/default", "ocp/payments", "ocp/reports", "ocp/shop"]
    );
    let shop = resource(&result, "namespace", "ocp/shop");
    assert_eq!(
        (
            shop.payload.value()["kind"].as_str(),
            shop.payload.value()["apiVersion"].as_str()
        ),
        (Some("Namespace"), Some("v1"))
    );
    assert_eq!(shop.payload.value()["metadata"]["labels"]["team"], "shop");
    assert_eq!(
        names(&result, "deployment"),
        ["ocp/payments/checkout", "ocp/shop/api", "ocp/shop/web"]
    );
    let problems = problems_of(&result, "ocp");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        !problems[0].fatal && problems[0].during.contains("namespaces"),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn without_namespaces_or_projects_the_context_and_configured_namespaces_are_used() {
    let server = shop_server(true);
    server.set_token(
        "developer",
        Access::deny(&[("list", "namespaces"), ("list", "projects")]),
    );
    let info = workspace(
        "cloudConfig:\n  kubernetes:\n    contexts:\n      filtered:\n        namespaces: [payments, \"rep.*\", ghost]\n",
    );
    let contexts = [
        server.context("own", "developer").with_namespace("shop"),
        // The context's own namespace is outside its filter; the regex names nothing.
        server
            .context("filtered", "developer")
            .with_namespace("default"),
    ];
    let result = run_contexts(&contexts, info).await;
    assert_eq!(result.contexts, ["own", "filtered"]);
    assert_eq!(
        names(&result, "namespace"),
        ["filtered/payments", "own/shop"]
    );
    assert_eq!(
        names(&result, "deployment"),
        ["filtered/payments/checkout", "own/shop/api", "own/shop/web"]
    );
    // The namespace object could still be read one by one: its labels are there.
    assert_eq!(
        resource(&result, "namespace", "own/shop").payload.value()["metadata"]["labels"]["team"],
        "shop"
    );
    // `ghost` does not exist: reported, not invented.
    let filtered = problems_of(&result, "filtered");
    assert!(filtered.iter().all(|p| !p.fatal), "{filtered:#?}");
    assert!(
        filtered.iter().any(|p| p.message.contains("ghost")),
        "{filtered:#?}"
    );
}

#[tokio::test]
async fn a_user_confined_to_one_namespace_still_indexes_it() {
    let server = shop_server(false);
    let rules = BUILTIN_PLURALS
        .iter()
        .map(|p| Rule::new("list", p).in_namespace("shop"))
        .collect();
    server.set_token("shop-dev", Access::AllowOnly(rules));
    let result = run_contexts(
        &[server.context("prod", "shop-dev").with_namespace("shop")],
        workspace(""),
    )
    .await;
    assert_eq!(result.contexts, ["prod"]);
    assert!(
        result.problems.iter().all(|p| !p.fatal),
        "{:#?}",
        result.problems
    );
    assert_eq!(names(&result, "namespace"), ["prod/shop"]);
    assert_eq!(
        names(&result, "deployment"),
        ["prod/shop/api", "prod/shop/web"]
    );
    assert_eq!(names(&result, "pod"), ["prod/shop/web-1"]);
    // The namespace object itself is not readable: a bare one stands in.
    assert_eq!(
        resource(&result, "namespace", "prod/shop").payload.value()["metadata"],
        json!({"name": "shop"})
    );
}

#[tokio::test]
async fn a_context_whose_only_known_namespace_does_not_exist_is_skipped() {
    let server = shop_server(false);
    server.set_token("developer", Access::deny(&[("list", "namespaces")]));
    let contexts = [
        server.context("typo", "developer").with_namespace("shpo"),
        server.context("right", "developer").with_namespace("shop"),
    ];
    let result = run_contexts(&contexts, workspace("")).await;
    assert_eq!(result.contexts, ["right"]);
    let typo = problems_of(&result, "typo");
    assert_eq!(typo.len(), 1, "{typo:#?}");
    assert!(
        typo[0].fatal && typo[0].message.contains("shpo"),
        "{typo:#?}"
    );
    assert_eq!(
        names(&result, "deployment"),
        ["right/shop/api", "right/shop/web"]
    );
}

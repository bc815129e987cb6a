//! Custom resources: listed only when a rule refers to them, namespaced and cluster-scoped,
//! a pinned version, and references the cluster cannot serve (upstream PR #806).

use super::*;

fn custom(reference: &str) -> CustomRef {
    let (name, version) = match reference.split_once('/') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (reference, None),
    };
    let (plural, group) = name.split_once('.').unwrap();
    CustomRef {
        plural: plural.into(),
        group: group.into(),
        version,
    }
}

async fn index_refs(server: &KubeApiServer, refs: &[&str]) -> IndexResult {
    let refs: Vec<CustomRef> = refs.iter().map(|r| custom(r)).collect();
    let kubeconfig = kubeconfig_yaml(&[server.context("prod", KubeApiServer::ADMIN_TOKEN)]);
    run(&kubeconfig, workspace(""), &refs, Limits::default()).await
}

#[tokio::test]
async fn custom_resources_are_listed_only_when_referenced() {
    let server = shop_server(false);
    let result = index_refs(&server, &[]).await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    for plural in ["certificates", "widgets", "providers", "gadgets"] {
        assert_eq!(server.requests("list", plural), 0, "{plural}");
    }
    assert!(
        result
            .registry
            .iter()
            .all(|r| !r.resource_type.contains('.'))
    );
}

#[tokio::test]
async fn namespaced_cluster_scoped_and_pinned_custom_resources() {
    let server = shop_server(false);
    let result = index_refs(
        &server,
        &[
            "certificates.cert-manager.io",
            "widgets.example.com/v1beta1",
            "providers.pkg.crossplane.io",
            "helmreleases.helm.toolkit.fluxcd.io",
        ],
    )
    .await;
    assert_eq!(result.contexts, ["prod"]);

    // Namespaced: `<cluster>/<ns>/<plural>.<group>/<name>`, only in indexed namespaces.
    assert_eq!(
        names(&result, "certificates.cert-manager.io"),
        ["prod/shop/certificates.cert-manager.io/shop-tls"]
    );
    let cert = resource(
        &result,
        "certificates.cert-manager.io",
        "prod/shop/certificates.cert-manager.io/shop-tls",
    );
    assert_eq!(
        (cert.name.as_str(), cert.namespace.as_deref()),
        ("shop-tls", Some("shop"))
    );
    assert_eq!(cert.payload.value()["kind"], "Certificate");
    assert_eq!(cert.payload.value()["spec"]["secretName"], "shop-tls");

    // Pinned: read at v1beta1 although v1 is preferred.
    assert_eq!(
        names(&result, "widgets.example.com"),
        ["prod/payments/widgets.example.com/knob"]
    );
    let knob = resource(
        &result,
        "widgets.example.com",
        "prod/payments/widgets.example.com/knob",
    );
    assert_eq!(knob.payload.value()["apiVersion"], "example.com/v1beta1");

    // Cluster-scoped (Crossplane): `<cluster>/<plural>.<group>/<name>`, listed once.
    assert_eq!(
        names(&result, "providers.pkg.crossplane.io"),
        ["prod/providers.pkg.crossplane.io/provider-aws"]
    );
    let provider = resource(
        &result,
        "providers.pkg.crossplane.io",
        "prod/providers.pkg.crossplane.io/provider-aws",
    );
    assert_eq!(
        (provider.namespace.as_deref(), provider.lod),
        (None, Lod::Detailed)
    );
    assert_eq!(server.requests("list", "providers"), 1);

    // Not installed: one non-fatal problem, and everything else is indexed.
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(!problems[0].fatal, "{problems:#?}");
    assert!(
        format!("{} {}", problems[0].during, problems[0].message)
            .contains("helmreleases.helm.toolkit.fluxcd.io")
    );
    assert_eq!(names(&result, "deployment").len(), 3);
    assert_eq!(server.requests("list", "gadgets"), 0);
}

#[tokio::test]
async fn a_version_the_cluster_does_not_serve_is_reported_with_the_served_ones() {
    let server = shop_server(false);
    let result = index_refs(
        &server,
        &["widgets.example.com/v2", "certificates.cert-manager.io"],
    )
    .await;
    assert_eq!(names(&result, "certificates.cert-manager.io").len(), 1);
    assert!(names(&result, "widgets.example.com").is_empty());
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let text = format!("{} {}", problems[0].during, problems[0].message);
    assert!(
        !problems[0].fatal && text.contains("v2") && text.contains("v1beta1"),
        "{text}"
    );
}

#[tokio::test]
async fn references_to_one_resource_at_several_versions_list_it_once() {
    let server = shop_server(false);
    // One rule does not care about the version, another pins v1beta1: one list, at v1beta1.
    let result = index_refs(
        &server,
        &["widgets.example.com", "widgets.example.com/v1beta1"],
    )
    .await;
    assert!(result.problems.is_empty(), "{:#?}", result.problems);
    assert_eq!(server.requests("list", "widgets"), 1);
    let knob = resource(
        &result,
        "widgets.example.com",
        "prod/payments/widgets.example.com/knob",
    );
    assert_eq!(knob.payload.value()["apiVersion"], "example.com/v1beta1");

    // Two different pins: the first (in reference order) is used, and the other is reported.
    let server = shop_server(false);
    let result = index_refs(
        &server,
        &["widgets.example.com/v1", "widgets.example.com/v1beta1"],
    )
    .await;
    assert_eq!(server.requests("list", "widgets"), 1);
    let knob = resource(
        &result,
        "widgets.example.com",
        "prod/payments/widgets.example.com/knob",
    );
    assert_eq!(knob.payload.value()["apiVersion"], "example.com/v1");
    let problems = problems_of(&result, "prod");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        !problems[0].fatal && problems[0].message.contains("v1beta1"),
        "{problems:#?}"
    );
}

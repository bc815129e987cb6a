//! Several contexts on one cluster (defect §6.2l): one `cluster` resource, read through the
//! first usable context in kubeconfig order, and no object twice.

use super::*;

/// A kubeconfig with `contexts` (name, token) all on one cluster entry named `cluster`.
fn one_cluster_kubeconfig(server: &str, cluster: &str, contexts: &[(&str, &str)]) -> String {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": contexts[0].0,
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": contexts.iter().map(|(c, t)| json!({"name": c, "user": {"token": t}})).collect::<Vec<_>>(),
        "contexts": contexts.iter().map(|(c, _)| json!({"name": c, "context": {"cluster": cluster, "user": c}})).collect::<Vec<_>>(),
    });
    serde_yaml::to_string(&config).unwrap()
}

#[tokio::test]
async fn two_contexts_on_one_cluster_give_one_cluster_and_no_duplicates() {
    let server = shop_server(false);
    server.set_token("second-admin", Access::AllowAll);
    server.set_token("expired", Access::Unauthorized);
    let info = workspace(
        "cloudConfig:\n  kubernetes:\n    contexts:\n      ctx-b: {defaultNamespaceLOD: basic}\n      ctx-a: {defaultNamespaceLOD: detailed}\n",
    );
    // ctx-b comes first in the kubeconfig (not alphabetically).
    let kubeconfig = one_cluster_kubeconfig(
        &server.url(),
        "shared",
        &[
            ("ctx-b", KubeApiServer::ADMIN_TOKEN),
            ("ctx-a", "second-admin"),
        ],
    );
    let both = run(&kubeconfig, info.clone(), &[], Limits::default()).await;
    assert_eq!(both.contexts, ["ctx-b", "ctx-a"]);
    assert_eq!(names(&both, "cluster"), ["shared"]);
    assert!(
        both.registry
            .iter()
            .all(|r| r.context.as_deref() == Some("ctx-b"))
    );
    // The first context's levels, not whichever finished last.
    assert!(
        both.registry
            .of_type("deployment")
            .all(|r| r.lod == Lod::Basic)
    );

    let one = run(
        &one_cluster_kubeconfig(
            &server.url(),
            "shared",
            &[("ctx-b", KubeApiServer::ADMIN_TOKEN)],
        ),
        info.clone(),
        &[],
        Limits::default(),
    )
    .await;
    let all = |r: &IndexResult| r.registry.iter().cloned().collect::<Vec<_>>();
    assert_eq!(all(&both), all(&one));

    // When the first context cannot be used, the next one on the cluster stands in.
    let kubeconfig = one_cluster_kubeconfig(
        &server.url(),
        "shared",
        &[("ctx-b", "expired"), ("ctx-a", "second-admin")],
    );
    let fallback = run(&kubeconfig, info, &[], Limits::default()).await;
    assert_eq!(fallback.contexts, ["ctx-a"]);
    assert_eq!(
        resource(&fallback, "cluster", "shared").context.as_deref(),
        Some("ctx-a")
    );
    assert!(
        fallback
            .registry
            .of_type("deployment")
            .all(|r| r.lod == Lod::Detailed)
    );
    assert_eq!(
        names(&fallback, "deployment"),
        [
            "shared/payments/checkout",
            "shared/shop/api",
            "shared/shop/web"
        ]
    );
}

//! The registry and its snapshot do not depend on the order objects were created in, on
//! page sizes or on how many lists run at once; a snapshot reads back as the same registry.

use super::*;
use steward_discovery::snapshot;

const REFS: &[(&str, &str)] = &[
    ("certificates", "cert-manager.io"),
    ("providers", "pkg.crossplane.io"),
    ("widgets", "example.com"),
];

async fn index_server(server: &KubeApiServer, limits: Limits) -> IndexResult {
    let refs: Vec<CustomRef> = REFS
        .iter()
        .map(|(p, g)| CustomRef {
            plural: p.to_string(),
            group: g.to_string(),
            version: None,
        })
        .collect();
    let kubeconfig = kubeconfig_yaml(&[
        server.context("prod", KubeApiServer::ADMIN_TOKEN),
        server.context("staging", KubeApiServer::ADMIN_TOKEN),
    ]);
    let mut targets = targets(&kubeconfig).await;
    // The two servers listen on different ports; the cluster resource records the URL.
    for t in &mut targets {
        t.server = format!("https://{}.example.com:6443", t.context);
    }
    index::index_with(targets, &refs, workspace(LEVELS), Arc::new(Silent), limits).await
}

fn snapshot_bytes(result: &IndexResult, dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    snapshot::write(&result.registry, &path).unwrap();
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn the_registry_does_not_depend_on_creation_order_paging_or_concurrency() {
    let objects = fixture_objects(&["shop.yaml", "crds.yaml"]);
    let forward = KubeApiServer::builder().objects(objects.clone()).start();
    let backward = KubeApiServer::builder()
        .objects(objects.into_iter().rev())
        .start();
    assert!(forward.seed_problems().is_empty() && backward.seed_problems().is_empty());

    let wide = Limits {
        page_size: 3,
        contexts: 4,
        lists: 16,
    };
    let narrow = Limits {
        page_size: 500,
        contexts: 1,
        lists: 1,
    };
    let a = index_server(&forward, wide).await;
    let b = index_server(&backward, wide).await;
    let c = index_server(&forward, narrow).await;
    assert!(a.problems.is_empty(), "{:#?}", a.problems);
    assert_eq!(a.contexts, ["prod", "staging"]);
    assert!(a.registry.len() > 40, "{:?}", a.registry.counts());

    let dir = tempfile::tempdir().unwrap();
    let bytes = snapshot_bytes(&a, dir.path(), "a.jsonl");
    for (other, name, why) in [
        (&b, "b.jsonl", "creation order"),
        (&c, "c.jsonl", "paging or concurrency"),
    ] {
        let other = snapshot_bytes(other, dir.path(), name);
        if other != bytes {
            let (x, y) = (
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&other),
            );
            let diff = x.lines().zip(y.lines()).find(|(l, r)| l != r);
            panic!("{why} changed the snapshot; first differing line:\n{diff:#?}");
        }
    }
    let all = |r: &IndexResult| r.registry.iter().cloned().collect::<Vec<_>>();
    assert_eq!(all(&a), all(&b));
    assert_eq!(a.problems, b.problems);

    // Write, read back: the same resources, field for field.
    let back = snapshot::read(&dir.path().join("a.jsonl")).unwrap();
    assert_eq!(back.len(), a.registry.len());
    for (read, indexed) in back.iter().zip(a.registry.iter()) {
        assert_eq!(read, indexed);
    }
    assert_eq!(back.counts(), a.registry.counts());
}

#[tokio::test]
async fn problems_come_in_a_stable_order() {
    let server = shop_server(false);
    server.set_token(
        "partial",
        Access::deny(&[
            ("list", "namespaces"),
            ("list", "deployments"),
            ("list", "services"),
        ]),
    );
    let refs = [
        CustomRef {
            plural: "nothing".into(),
            group: "example.com".into(),
            version: None,
        },
        CustomRef {
            plural: "absent".into(),
            group: "missing.io".into(),
            version: None,
        },
    ];
    let kubeconfig = kubeconfig_yaml(&[server.context("prod", "partial").with_namespace("shop")]);
    let first = run(&kubeconfig, workspace(""), &refs, Limits::default()).await;
    assert!(first.problems.len() >= 4, "{:#?}", first.problems);
    for _ in 0..3 {
        let again = run(&kubeconfig, workspace(""), &refs, Limits::default()).await;
        assert_eq!(again.problems, first.problems);
    }
}

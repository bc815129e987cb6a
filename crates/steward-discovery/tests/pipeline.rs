//! Whole runs of the builder on the bundled example: the tree loads on the platform, its bytes
//! do not depend on listing order, snapshots round-trip, and names survive new codebundles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward_discovery::kubernetes::Silent;
use steward_discovery::{DiscoverOptions, discover, snapshot};
use steward_model::workspace::WorkspaceTree;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A workspaceInfo.yaml naming these collections (absolute paths).
fn config(dir: &Path, collections: &[&Path]) -> PathBuf {
    let list: String = collections
        .iter()
        .map(|c| {
            format!(
                "  - repoURL: {}\n    codeBundles: [\"k8s-*\", \"extra-*\"]\n",
                c.display()
            )
        })
        .collect();
    let text = format!(
        "workspaceName: shop-prod\nworkspaceOwnerEmail: sre@example.com\ndefaultLocation: local\ndefaultLOD: basic\n\
         cloudConfig:\n  kubernetes:\n    namespaceLODs:\n      shop: detailed\ncodeCollections:\n{list}\
         custom:\n  kubeconfig_secret_name: kubeconfig\n"
    );
    let path = dir.join("workspaceInfo.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn options(config: &Path, snapshot: &Path, out: &Path, cache: &Path) -> DiscoverOptions {
    DiscoverOptions {
        config: config.into(),
        from_snapshot: Some(snapshot.into()),
        out: Some(out.into()),
        cache_dir: cache.into(),
        ..Default::default()
    }
}

fn tree_files(root: &Path) -> BTreeMap<String, String> {
    walkdir(root)
        .into_iter()
        .filter(|p| !p.starts_with(root.join(".steward")))
        .map(|p| {
            (
                p.strip_prefix(root).unwrap().display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

async fn run(opts: &DiscoverOptions) -> steward_discovery::Summary {
    discover(opts, Arc::new(Silent))
        .await
        .expect("discovery runs")
        .summary
}

#[tokio::test]
async fn the_example_generates_a_tree_the_platform_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[&repo().join("codecollections")]);
    let out = tmp.path().join("out");
    let summary = run(&options(
        &cfg,
        &repo().join("examples/discovery/cluster"),
        &out,
        tmp.path(),
    ))
    .await;
    assert!(summary.slxs >= 5, "{summary:?}");
    let tree = WorkspaceTree::load(&out).expect("the tree loads");
    assert!(tree.problems.is_empty(), "{:?}", tree.problems);
    assert_eq!(tree.name(), "shop-prod");
    assert_eq!(tree.slxs.len(), summary.slxs);
    // kube-system carries config.runwhen.com/lod: none in the example.
    assert!(tree.slxs.keys().all(|k| !k.contains("kube-system")));
    assert!(
        summary
            .skipped
            .iter()
            .any(|s| s.item == "namespace kube-system"),
        "{:?}",
        summary.skipped
    );
    // SLIs only where the namespace is detailed (shop), runbooks everywhere.
    let slis = tree
        .files
        .keys()
        .filter(|k| k.ends_with("/sli.yaml"))
        .count();
    let runbooks = tree
        .files
        .keys()
        .filter(|k| k.ends_with("/runbook.yaml"))
        .count();
    assert!(
        slis > 0 && slis < runbooks + 1,
        "{slis} SLIs, {runbooks} runbooks"
    );
}

#[tokio::test]
async fn output_bytes_do_not_depend_on_listing_order() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[&repo().join("codecollections")]);
    // The same objects, each file's documents reversed and the files renamed so they are
    // read in the other order.
    let shuffled = tmp.path().join("shuffled/prod-eu");
    std::fs::create_dir_all(&shuffled).unwrap();
    let src = repo().join("examples/discovery/cluster/prod-eu");
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for (i, p) in names.iter().rev().enumerate() {
        let text = std::fs::read_to_string(p).unwrap();
        let value: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut items = value["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(shuffled.join(format!("{i:02}.json")), list.to_string()).unwrap();
    }
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    run(&options(
        &cfg,
        &repo().join("examples/discovery/cluster"),
        &a,
        tmp.path(),
    ))
    .await;
    run(&options(&cfg, &tmp.path().join("shuffled"), &b, tmp.path())).await;
    let (fa, fb) = (tree_files(&a), tree_files(&b));
    assert!(!fa.is_empty());
    assert_eq!(fa, fb);
}

#[tokio::test]
async fn a_snapshot_round_trips_and_generates_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[&repo().join("codecollections")]);
    let snap = tmp.path().join("snap.jsonl");
    let mut opts = options(
        &cfg,
        &repo().join("examples/discovery/cluster"),
        &tmp.path().join("a"),
        tmp.path(),
    );
    opts.snapshot_out = Some(snap.clone());
    run(&opts).await;
    let registry = snapshot::read(&snap).unwrap();
    let again = tmp.path().join("snap2.jsonl");
    snapshot::write(&registry, &again).unwrap();
    assert_eq!(
        std::fs::read(&snap).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let b = options(&cfg, &snap, &tmp.path().join("b"), tmp.path());
    run(&b).await;
    assert_eq!(
        tree_files(&tmp.path().join("a")),
        tree_files(&tmp.path().join("b"))
    );
}

/// A second collection whose codebundle has the same short base name as one of ours: upstream
/// renumbers both, renaming existing SLXs; the ledger keeps them.
#[tokio::test]
async fn a_new_codebundle_does_not_rename_existing_slxs() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = repo().join("codecollections");
    let out = tmp.path().join("out");
    let cluster = repo().join("examples/discovery/cluster");
    let cfg = config(tmp.path(), &[&ours]);
    run(&options(&cfg, &cluster, &out, tmp.path())).await;
    let before: Vec<String> = WorkspaceTree::load(&out)
        .unwrap()
        .slxs
        .keys()
        .cloned()
        .collect();

    // Copy of k8s-deployment-health under another directory name: the same base name with
    // other qualifiers, so both SLXs exist and their short base names collide.
    let extra = tmp.path().join("extra");
    let src = ours.join("codebundles/k8s-deployment-health");
    let dst = extra.join("codebundles/extra-deployment-health");
    for p in walkdir(&src) {
        let target = dst.join(p.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &target,
            text.replace(
                "qualifiers: [resource, namespace, cluster]",
                "qualifiers: [resource, namespace]",
            ),
        )
        .unwrap();
    }
    let cfg = config(tmp.path(), &[&ours, &extra]);
    let summary = run(&options(&cfg, &cluster, &out, tmp.path())).await;
    let after: Vec<String> = WorkspaceTree::load(&out)
        .unwrap()
        .slxs
        .keys()
        .cloned()
        .collect();
    for name in &before {
        assert!(after.contains(name), "{name} was renamed; now {after:?}");
    }
    assert!(after.len() > before.len());
    assert!(
        summary.warnings.iter().any(|w| w.contains("name ledger")),
        "{:?}",
        summary.warnings
    );
}

/// runwhen-local uploaded names the platform refused (#451); an SLX whose name has such
/// characters is reported and left out, and the rest of the tree is still generated.
#[tokio::test]
async fn names_the_platform_refuses_are_reported_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[&repo().join("codecollections")]);
    let dump = tmp.path().join("dump/prod");
    std::fs::create_dir_all(&dump).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web app", "namespace": "shop"}, "spec": {"replicas": 1}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 1}},
    ]});
    std::fs::write(dump.join("deployments.json"), list.to_string()).unwrap();
    let out = tmp.path().join("out");
    let summary = run(&options(&cfg, &tmp.path().join("dump"), &out, tmp.path())).await;
    let refused: Vec<_> = summary
        .skipped
        .iter()
        .filter(|s| s.item.contains("web app"))
        .collect();
    assert_eq!(refused.len(), 1, "{:?}", summary.skipped);
    assert!(refused[0].reason.contains("refuses"), "{refused:?}");
    let tree = WorkspaceTree::load(&out).unwrap();
    assert!(tree.problems.is_empty(), "{:?}", tree.problems);
    assert!(
        tree.slxs.keys().any(|k| k.starts_with("web-shop-")),
        "{:?}",
        tree.slxs.keys()
    );
}

/// `taskTagExclusions` leaves out every codebundle with a task carrying one of the tags
/// (compared without case), and says so.
#[tokio::test]
async fn task_tag_exclusions_leave_out_whole_codebundles() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[&repo().join("codecollections")]);
    let text = std::fs::read_to_string(&cfg).unwrap() + "taskTagExclusions: [DATA:Logs]\n";
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("out");
    let summary = run(&options(
        &cfg,
        &repo().join("examples/discovery/cluster"),
        &out,
        tmp.path(),
    ))
    .await;
    assert_eq!(summary.slxs, 0, "{summary:?}");
    let excluded: Vec<&str> = summary
        .skipped
        .iter()
        .filter(|s| s.reason.contains("taskTagExclusions"))
        .map(|s| s.item.as_str())
        .collect();
    assert_eq!(
        excluded,
        [
            "codebundle k8s-deployment-health",
            "codebundle k8s-namespace-health"
        ]
    );
}

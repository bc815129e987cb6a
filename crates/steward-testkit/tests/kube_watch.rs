//! Watches on the in-memory Kubernetes API server: kube-runtime's watcher (list then watch,
//! and streaming lists), replay from a resourceVersion, and 410 once it is too old.

mod kube_fixtures;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;
use std::time::Duration;
use steward_testkit::kube::KubeApiServer;

use kube_fixtures::{api_code, client};

#[tokio::test]
async fn watcher_sees_added_modified_and_deleted() {
    let server = KubeApiServer::builder()
        .bookmark_interval(Duration::from_millis(200))
        .start();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let maps: Api<ConfigMap> = Api::namespaced(kube, "default");
    let mut events = watcher(maps.clone(), watcher::Config::default()).boxed();
    loop {
        if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
            break;
        }
    }
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "w"}, "data": {"v": "1"}})).unwrap();
    maps.create(&PostParams::default(), &cm).await.unwrap();
    maps.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    maps.delete("w", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .expect("watch event")
            .unwrap()
            .unwrap();
        match event {
            watcher::Event::Apply(cm) => seen.push(format!("apply v={}", cm.data.unwrap()["v"])),
            watcher::Event::Delete(cm) => {
                seen.push(format!("delete {}", cm.metadata.name.unwrap()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["apply v=1", "apply v=2", "delete w"]);
    assert!(server.requests("watch", "configmaps") >= 1);

    // The streaming-list start (sendInitialEvents) ends its initial events with a bookmark.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "present"}})).unwrap();
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let mut streamed = watcher(maps.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), streamed.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(cm) => initial.push(cm.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["present"]);
}

#[tokio::test]
async fn watches_replay_history_and_410_when_too_old() {
    let server = KubeApiServer::builder().history_limit(3).start();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let maps: Api<ConfigMap> = Api::namespaced(kube, "default");
    let start = server.resource_version().to_string();
    for i in 0..2 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("m{i}"), "labels": {"keep": "yes"}}}),
        )
        .unwrap();
        maps.create(&PostParams::default(), &cm).await.unwrap();
    }
    maps.patch(
        "m0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "no"}}})),
    )
    .await
    .unwrap();

    // Replay from a recent version; the label change reads as DELETED for a selector on it.
    let since = (server.resource_version() - 3).to_string();
    let params = WatchParams::default().labels("keep=yes").timeout(1);
    let replay: Vec<_> = maps
        .watch(&params, &since)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = replay
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) => Some(format!("ADDED {}", o.metadata.name.as_deref().unwrap())),
            WatchEvent::Deleted(o) => {
                Some(format!("DELETED {}", o.metadata.name.as_deref().unwrap()))
            }
            WatchEvent::Bookmark(_) => None,
            other => Some(format!("{other:?}")),
        })
        .collect();
    assert_eq!(kinds, ["ADDED m0", "ADDED m1", "DELETED m0"]);

    // The history keeps the last 3 changes: a continue token or a watch from before them is too old.
    let token = maps
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .continue_
        .unwrap();
    for i in 0..4 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("n{i}")}})).unwrap();
        maps.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut stream = maps
        .watch(&WatchParams::default().timeout(5), &start)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends after the error"
    );
    let (code, reason, _) = api_code(
        maps.list(&ListParams::default().continue_token(&token))
            .await,
    );
    assert_eq!((code, reason.as_str()), (410, "Expired"));
}

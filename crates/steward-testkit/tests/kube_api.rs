//! The in-memory Kubernetes API server driven by kube-rs, as the discovery crate and the
//! executor use it (watches are in kube_watch.rs, kubectl in kube_kubectl.rs).

mod kube_fixtures;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};
use steward_testkit::kube::{Access, KubeApiServer, KubeContext, Rule};

use kube_fixtures::{api_code, client, client_for, pod, widget_crd};

#[tokio::test]
async fn lists_come_in_pages_in_namespace_name_order() {
    let seeds: Vec<Value> = [
        ("b", "p2"),
        ("a", "p3"),
        ("b", "p1"),
        ("a", "p1"),
        ("c", "p0"),
        ("a", "p2"),
        ("b", "p0"),
    ]
    .iter()
    .map(|(ns, name)| pod(ns, name, json!({})))
    .collect();
    let server = KubeApiServer::start(&seeds);
    let pods: Api<Pod> = Api::all(client(&server, KubeApiServer::ADMIN_TOKEN).await);

    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let list_rv = first.metadata.resource_version.clone().unwrap();
    assert_eq!(list_rv, server.resource_version().to_string());
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        assert_eq!(
            page.metadata.resource_version.as_deref(),
            Some(list_rv.as_str())
        );
        seen.extend(page.items.iter().map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap(),
                p.metadata.name.as_deref().unwrap()
            )
        }));
        match page.metadata.continue_.clone().filter(|t| !t.is_empty()) {
            Some(token) => {
                page = pods
                    .list(&ListParams::default().limit(3).continue_token(&token))
                    .await
                    .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["a/p1", "a/p2", "a/p3", "b/p0", "b/p1", "b/p2", "c/p0"]
    );
    assert_eq!(
        server.requests("list", "pods"),
        3,
        "{:?}",
        server.request_counts()
    );

    // One namespace, and a token that belongs to another list.
    let in_b: Api<Pod> = Api::namespaced(client(&server, KubeApiServer::ADMIN_TOKEN).await, "b");
    let names: Vec<_> = in_b
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["p0", "p1", "p2"]);
    let token = pods
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .continue_
        .unwrap();
    let (code, reason, _) = api_code(
        in_b.list(&ListParams::default().continue_token(&token))
            .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let deployment = |name: &str, labels: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop", "labels": labels}, "spec": {}});
    let server = KubeApiServer::start(&[
        deployment("web", json!({"app": "web", "tier": "front"})),
        deployment("api", json!({"app": "api", "tier": "back"})),
        deployment("old", json!({"app": "web", "legacy": "yes"})),
    ]);
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let api: Api<DynamicObject> =
        Api::all_with(client(&server, KubeApiServer::ADMIN_TOKEN).await, &ar);
    let names = |params: ListParams| {
        let api = api.clone();
        async move {
            let list = api.list(&params).await.unwrap();
            list.items
                .into_iter()
                .map(|o| o.metadata.name.unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(ListParams::default().labels("app=web")).await,
        ["old", "web"]
    );
    assert_eq!(
        names(ListParams::default().labels("app==web,!legacy")).await,
        ["web"]
    );
    assert_eq!(
        names(ListParams::default().labels("tier in (front,back)")).await,
        ["api", "web"]
    );
    assert_eq!(
        names(ListParams::default().labels("tier notin (front),app!=api")).await,
        ["old"]
    );
    assert_eq!(names(ListParams::default().labels("legacy")).await, ["old"]);
    assert_eq!(
        names(ListParams::default().fields("metadata.name=api")).await,
        ["api"]
    );
    assert_eq!(
        names(ListParams::default().fields("metadata.namespace!=shop")).await,
        Vec::<String>::new()
    );
    let (code, reason, message) =
        api_code(api.list(&ListParams::default().labels("app in web")).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"), "{message}");
    let (code, _, message) = api_code(
        api.list(&ListParams::default().fields("spec.replicas=1"))
            .await,
    );
    assert_eq!(code, 400);
    assert!(
        message.contains("field label not supported: spec.replicas"),
        "{message}"
    );

    let pods: Api<Pod> = Api::all(client(&server, KubeApiServer::ADMIN_TOKEN).await);
    server.apply(pod("shop", "done", json!({}))).unwrap();
    let mut pending = pod("shop", "waiting", json!({}));
    pending["status"]["phase"] = "Pending".into();
    server.apply(pending).unwrap();
    let running = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 1);
    assert_eq!(running.items[0].metadata.name.as_deref(), Some("done"));
}

#[tokio::test]
async fn crud_follows_the_api_server_rules() {
    let server = KubeApiServer::start(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    ]);
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let maps: Api<ConfigMap> = Api::namespaced(kube.clone(), "shop");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"a": "1"}}))
            .unwrap();

    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("shop"));
    let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert_eq!(rv, server.resource_version());
    let (code, reason, message) = api_code(maps.create(&PostParams::default(), &cm).await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (
            409,
            "AlreadyExists",
            "configmaps \"settings\" already exists"
        )
    );

    let (code, reason, message) = api_code(maps.get("missing").await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );
    assert!(maps.get_opt("missing").await.unwrap().is_none());
    let elsewhere: Api<ConfigMap> = Api::namespaced(kube.clone(), "nowhere");
    let (code, _, message) = api_code(elsewhere.create(&PostParams::default(), &cm).await);
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    // Optimistic concurrency: a stale resourceVersion is refused.
    let mut changed = created.clone();
    changed.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = maps
        .replace("settings", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(
        updated
            .metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv
    );
    let (code, reason, _) = api_code(
        maps.replace("settings", &PostParams::default(), &changed)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    // An update that changes nothing keeps the revision.
    let same = maps
        .replace("settings", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    let patched = maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "3", "a": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data,
        Some([("b".to_string(), "3".to_string())].into())
    );
    let applied = maps
        .patch(
            "applied",
            &PatchParams::apply("steward-test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "y"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.name.as_deref(), Some("applied"));

    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "run-"}})).unwrap();
    let named = maps
        .create(&PostParams::default(), &generated)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    assert!(named.starts_with("run-") && named.len() == 9, "{named}");

    maps.delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(maps.get("settings").await).0, 404);
    assert_eq!(
        api_code(maps.delete("settings", &DeleteParams::default()).await).0,
        404
    );
    let left = maps
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(left.left().unwrap().items.len(), 2);
    assert!(server.list("v1", "configmaps", Some("shop")).is_empty());
}

#[tokio::test]
async fn status_subresource_and_finalizers() {
    let server = KubeApiServer::start(&[]);
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let pods: Api<Pod> = Api::namespaced(kube.clone(), "default");
    let body: Pod = serde_json::from_value(pod("default", "job-1", json!({"run": "1"}))).unwrap();
    let created = pods.create(&PostParams::default(), &body).await.unwrap();
    assert_eq!(
        created.status.unwrap().phase.as_deref(),
        Some("Pending"),
        "the server owns status on create"
    );

    // The main endpoint keeps the stored status; the status subresource changes only status.
    let mut sneaky = pods.get("job-1").await.unwrap();
    sneaky.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let kept = pods
        .replace("job-1", &PostParams::default(), &sneaky)
        .await
        .unwrap();
    assert_eq!(kept.status.unwrap().phase.as_deref(), Some("Pending"));
    let patch = Patch::Merge(
        json!({"metadata": {"labels": {"ignored": "yes"}}, "status": {"phase": "Running"}}),
    );
    let running = pods
        .patch_status("job-1", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(running.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(!running.metadata.labels.unwrap().contains_key("ignored"));
    assert_eq!(
        pods.get_status("job-1")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Running")
    );
    // A test can also play the kubelet directly.
    let mut done = server.get("v1", "pods", Some("default"), "job-1").unwrap();
    done["status"]["phase"] = "Succeeded".into();
    server.apply(done).unwrap();
    assert_eq!(
        pods.get("job-1")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Succeeded")
    );

    // A finalizer holds the deletion until a JSON patch removes it.
    let maps: Api<ConfigMap> = Api::namespaced(kube, "default");
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["steward.io/cleanup"]}}),
    )
    .unwrap();
    maps.create(&PostParams::default(), &held).await.unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = maps.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let remove = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "steward.io/cleanup"},
                        {"op": "remove", "path": "/metadata/finalizers/0"}]);
    let patch = Patch::<ConfigMap>::Json(serde_json::from_value(remove).unwrap());
    maps.patch("held", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert!(maps.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn crds_register_namespaced_and_cluster_kinds_in_discovery() {
    let server = KubeApiServer::start(&[widget_crd("Cluster", "gadgets", "Gadget")]);
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(widget_crd("Namespaced", "widgets", "Widget")).unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(kube.clone()).run().await.unwrap();
    let group = discovery
        .get("example.com")
        .expect("group example.com discovered");
    let mut found: Vec<(String, String, bool)> = group
        .versioned_resources("v1")
        .into_iter()
        .map(|(ar, caps)| (ar.plural, ar.kind, caps.scope == Scope::Namespaced))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("gadgets".into(), "Gadget".into(), false),
            ("widgets".into(), "Widget".into(), true)
        ]
    );
    let groups = kube.list_api_groups().await.unwrap();
    let example = groups
        .groups
        .iter()
        .find(|g| g.name == "example.com")
        .unwrap();
    assert_eq!(example.preferred_version.as_ref().unwrap().version, "v1");
    assert_eq!(example.versions.len(), 2);

    let (ar, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .unwrap();
    let widgets: Api<DynamicObject> = Api::namespaced_with(kube.clone(), "default", &ar);
    let w = DynamicObject::new("w1", &ar).data(json!({"spec": {"size": 3}}));
    widgets.create(&PostParams::default(), &w).await.unwrap();
    // Served at every version; list items of custom resources carry their type.
    let beta = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1beta1", "Widget"));
    let listed = Api::<DynamicObject>::all_with(kube.clone(), &beta)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v1beta1"
    );
    let (gadget_ar, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Gadget"))
        .unwrap();
    let gadgets: Api<DynamicObject> = Api::all_with(kube.clone(), &gadget_ar);
    gadgets
        .create(
            &PostParams::default(),
            &DynamicObject::new("g1", &gadget_ar),
        )
        .await
        .unwrap();
    assert!(
        server
            .get("example.com/v1", "gadgets", None, "g1")
            .is_some()
    );

    // Deleting the CRD takes its objects and its resource along.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(widgets.list(&ListParams::default()).await).0, 404);
    let resources = kube
        .list_api_group_resources("example.com/v1")
        .await
        .unwrap();
    assert_eq!(
        resources
            .resources
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["gadgets", "gadgets/status"]
    );
}

#[tokio::test]
async fn tokens_decide_401_and_403() {
    let server = KubeApiServer::builder()
        .openshift(true)
        .object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"a": "b"}}}))
        .object(pod("team", "p", json!({})))
        .token("expired", Access::Unauthorized)
        .token("nobody", Access::Forbidden)
        .token("restricted", Access::deny(&[("list", "namespaces")]))
        .token("team", Access::AllowOnly(vec![Rule::new("list", "pods").in_namespace("team")]))
        .start();
    let code = |token: &'static str| {
        let server = &server;
        async move {
            let namespaces: Api<Namespace> = Api::all(client(server, token).await);
            match namespaces.list(&ListParams::default()).await {
                Ok(_) => 200,
                Err(kube::Error::Api(status)) => status.code,
                Err(other) => panic!("{other}"),
            }
        }
    };
    assert_eq!(code(KubeApiServer::ADMIN_TOKEN).await, 200);
    assert_eq!(code("expired").await, 401);
    assert_eq!(code("unknown-token").await, 401);
    assert_eq!(code("nobody").await, 403);
    assert_eq!(code("restricted").await, 403);

    // The OpenShift-style restricted user still lists projects, which mirror namespaces.
    let restricted = client(&server, "restricted").await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "project.openshift.io",
        "v1",
        "Project",
    ));
    let projects = Api::<DynamicObject>::all_with(restricted.clone(), &ar)
        .list(&ListParams::default())
        .await
        .unwrap();
    let names: Vec<_> = projects
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["default", "team"]);
    assert_eq!(
        projects.items[1].metadata.labels.as_ref().unwrap()["a"],
        "b"
    );
    let (code403, reason, message) = api_code(
        Api::<Namespace>::all(restricted)
            .list(&ListParams::default())
            .await,
    );
    assert_eq!((code403, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "namespaces is forbidden: User \"restricted\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );

    // A namespace-bound rule: the cluster-wide list is forbidden, the namespace's is not.
    let team = client(&server, "team").await;
    assert_eq!(
        api_code(
            Api::<Pod>::all(team.clone())
                .list(&ListParams::default())
                .await
        )
        .0,
        403
    );
    assert_eq!(
        Api::<Pod>::namespaced(team.clone(), "team")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(
        team.apiserver_version().await.is_ok(),
        "discovery stays open"
    );
    assert_eq!(
        server.requests("list", "namespaces"),
        6,
        "denied requests count too"
    );

    // An injected failure on one path, after authorization.
    server.fail_path("/api/v1/namespaces/team/pods", 500);
    assert_eq!(
        api_code(
            Api::<Pod>::namespaced(team.clone(), "team")
                .list(&ListParams::default())
                .await
        )
        .0,
        500
    );
    server.clear_faults();
    assert!(
        Api::<Pod>::namespaced(team, "team")
            .list(&ListParams::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn kubeconfig_mixes_reachable_and_unreachable_contexts() {
    let server = KubeApiServer::start(&[]);
    let contexts = [
        server
            .context("prod", KubeApiServer::ADMIN_TOKEN)
            .with_namespace("default"),
        KubeContext::unreachable("gone"),
    ];
    let prod = client_for(&contexts, "prod").await.unwrap();
    assert_eq!(prod.apiserver_version().await.unwrap().minor, "33");
    assert_eq!(prod.default_namespace(), "default");
    let gone = client_for(&contexts, "gone").await.unwrap();
    assert!(!matches!(
        gone.apiserver_version().await,
        Ok(_) | Err(kube::Error::Api(_))
    ));

    // Over HTTPS, trusting the server's certificate from the kubeconfig.
    let secure = KubeApiServer::builder()
        .tls(true)
        .token("restricted", Access::deny(&[("list", "pods")]))
        .start();
    assert!(secure.url().starts_with("https://127.0.0.1:"));
    let contexts = [
        secure.context("tls", "restricted"),
        KubeContext::new("untrusted", &secure.url(), "restricted"),
    ];
    let tls = client_for(&contexts, "tls").await.unwrap();
    assert_eq!(
        Api::<Namespace>::all(tls.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        api_code(Api::<Pod>::all(tls).list(&ListParams::default()).await).0,
        403
    );
    let untrusted = client_for(&contexts, "untrusted").await.unwrap();
    assert!(!matches!(
        untrusted.apiserver_version().await,
        Ok(_) | Err(kube::Error::Api(_))
    ));
}

#[test]
fn fixtures_seed_lists_and_report_bad_objects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n\
         - {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: shop, uid: fixed-uid, resourceVersion: '999'}, status: {phase: Running}}\n\
         - {apiVersion: example.com/v1, kind: Widget, metadata: {name: w, namespace: shop}}\n\
         - {apiVersion: v1, kind: ConfigMap, metadata: {namespace: shop}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("crd.json"),
        widget_crd("Namespaced", "widgets", "Widget").to_string(),
    )
    .unwrap();
    let server = KubeApiServer::from_fixture_dir(dir.path()).unwrap();
    let problems: Vec<String> = server
        .seed_problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(
            "cluster.yaml: document 1, item 3: v1 ConfigMap shop/?: metadata.name is required"
        ),
        "{}",
        problems[0]
    );
    let pod = server.get("v1", "pods", Some("shop"), "a").unwrap();
    assert_eq!(pod["metadata"]["uid"], "fixed-uid");
    assert_ne!(
        pod["metadata"]["resourceVersion"], "999",
        "revisions are the server's own"
    );
    assert!(
        server
            .get("example.com/v1", "widgets", Some("shop"), "w")
            .is_some(),
        "CRDs are stored first"
    );
    assert_eq!(
        server.get("v1", "namespaces", None, "shop").unwrap()["status"]["phase"],
        "Active"
    );
    let err = KubeApiServer::from_yaml("a: [").err().unwrap();
    assert!(
        err.to_string()
            .starts_with("yaml fixture: document 1: not valid YAML"),
        "{err}"
    );
}

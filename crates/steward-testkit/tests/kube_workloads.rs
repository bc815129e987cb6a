//! The controllers and admission behind the in-memory Kubernetes API server: Jobs and
//! Deployments drive real pods on the simulated node, deletions cascade, and ResourceQuota
//! refuses what does not fit, as kube-rs sees it.

mod kube_fixtures;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{LimitRange, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use steward_testkit::kube::KubeApiServer;
use steward_testkit::wait_until;

use kube_fixtures::{TOOLS_IMAGE, api_code, client, node_server, process_alive};

fn job(name: &str, script: &str, backoff_limit: i64) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": TOOLS_IMAGE, "command": ["sh", "-c", script]}]}}},
    }))
    .unwrap()
}

fn pods_of(server: &KubeApiServer, label: &str, value: &str) -> Vec<Value> {
    server
        .list("v1", "pods", Some("default"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"][label] == value)
        .collect()
}

fn has_condition(object: &Value, kind: &str, reason: &str) -> bool {
    object["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == kind && c["status"] == "True" && c["reason"] == reason)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_runs_its_pod_to_completion_and_reports_it() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let jobs: Api<Job> = Api::namespaced(kube.clone(), "default");
    let created = jobs
        .create(&PostParams::default(), &job("once", "echo done", 6))
        .await
        .unwrap();
    let uid = created.metadata.uid.unwrap();
    let done = wait_until("job once to complete", Duration::from_secs(20), || {
        server
            .get("batch/v1", "jobs", Some("default"), "once")
            .filter(|j| has_condition(j, "Complete", "CompletionsReached"))
    });
    assert_eq!(done["status"]["succeeded"], 1);
    assert!(done["status"].get("active").is_none());
    assert!(done["status"]["completionTime"].is_string());
    assert!(has_condition(
        &done,
        "SuccessCriteriaMet",
        "CompletionsReached"
    ));
    let pods = pods_of(&server, "job-name", "once");
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("once-")
    );
    assert_eq!(pod["metadata"]["labels"]["controller-uid"], uid.as_str());
    assert_eq!(pod["metadata"]["labels"]["app"], "once");
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            owner["kind"].as_str(),
            owner["uid"].as_str(),
            owner["controller"].as_bool()
        ),
        (Some("Job"), Some(uid.as_str()), Some(true))
    );
    assert_eq!(pod["status"]["phase"], "Succeeded");

    // Deleting with propagationPolicy=Background takes the pods along.
    jobs.delete("once", &DeleteParams::background())
        .await
        .unwrap();
    wait_until("the job's pods to go", Duration::from_secs(10), || {
        pods_of(&server, "job-name", "once")
            .is_empty()
            .then_some(())
    });
    assert!(
        server
            .get("batch/v1", "jobs", Some("default"), "once")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_retries_up_to_its_backoff_limit() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let jobs: Api<Job> = Api::namespaced(kube, "default");
    jobs.create(&PostParams::default(), &job("flaky", "exit 2", 1))
        .await
        .unwrap();
    let failed = wait_until("job flaky to fail", Duration::from_secs(20), || {
        server
            .get("batch/v1", "jobs", Some("default"), "flaky")
            .filter(|j| has_condition(j, "Failed", "BackoffLimitExceeded"))
    });
    assert_eq!(failed["status"]["failed"], 2);
    assert!(failed["status"].get("succeeded").is_none());
    let pods = pods_of(&server, "job-name", "flaky");
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));

    // The default propagation for batch/v1 Jobs orphans the pods.
    jobs.delete("flaky", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("job flaky to go", Duration::from_secs(10), || {
        server
            .get("batch/v1", "jobs", Some("default"), "flaky")
            .is_none()
            .then_some(())
    });
    let pods = pods_of(&server, "job-name", "flaky");
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().all(|p| {
        p["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty())
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_jobs_expire_and_foreground_deletion_waits_for_the_pods() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let jobs: Api<Job> = Api::namespaced(kube, "default");
    let mut short = job("short", "true", 0);
    short.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(0);
    jobs.create(&PostParams::default(), &short).await.unwrap();
    jobs.create(&PostParams::default(), &job("long", "sleep 300", 0))
        .await
        .unwrap();
    wait_until(
        "job short to expire with its pod",
        Duration::from_secs(20),
        || {
            (server
                .get("batch/v1", "jobs", Some("default"), "short")
                .is_none()
                && pods_of(&server, "job-name", "short").is_empty())
            .then_some(())
        },
    );

    let pid = wait_until("job long to run", Duration::from_secs(20), || {
        let pods = pods_of(&server, "job-name", "long");
        let name = pods.first()?["metadata"]["name"].as_str()?.to_string();
        server.container_pid("default", &name, "main")
    });
    let deleting = jobs
        .delete("long", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("an owner deleted in the foreground stays until its dependents are gone");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    wait_until(
        "job long to go after its pod",
        Duration::from_secs(20),
        || {
            server
                .get("batch/v1", "jobs", Some("default"), "long")
                .is_none()
                .then_some(())
        },
    );
    assert!(pods_of(&server, "job-name", "long").is_empty());
    assert!(!process_alive(pid));
}

fn active_pods(server: &KubeApiServer) -> Vec<Value> {
    pods_of(server, "app", "workers")
        .into_iter()
        .filter(|p| {
            p["metadata"].get("deletionTimestamp").is_none() && p["status"]["phase"] == "Running"
        })
        .collect()
}

fn names(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until exactly `n` workers run and the Deployment reports them ready.
fn wait_workers(server: &KubeApiServer, n: usize) -> Vec<Value> {
    wait_until(
        &format!("{n} running workers"),
        Duration::from_secs(20),
        || {
            let deployment = server.get("apps/v1", "deployments", Some("default"), "workers")?;
            let pods = active_pods(server);
            let ready = deployment["status"]["readyReplicas"].as_u64().unwrap_or(0);
            (pods.len() == n && ready == n as u64 && pods_of(server, "app", "workers").len() == n)
                .then_some(pods)
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_keeps_its_replicas_running() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "workers"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "workers"}},
                 "template": {"metadata": {"labels": {"app": "workers"}},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "worker", "image": TOOLS_IMAGE, "command": ["sleep", "300"]}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods = wait_workers(&server, 2);
    let hash = pods[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let suffix = name.strip_prefix(&format!("workers-{hash}-")).unwrap();
        assert_eq!(suffix.len(), 5, "{name}");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }
    let set = server
        .get(
            "apps/v1",
            "replicasets",
            Some("default"),
            &format!("workers-{hash}"),
        )
        .unwrap();
    assert_eq!(set["metadata"]["ownerReferences"][0]["name"], "workers");
    let status = server
        .get("apps/v1", "deployments", Some("default"), "workers")
        .unwrap()["status"]
        .clone();
    assert_eq!(
        (
            &status["replicas"],
            &status["availableReplicas"],
            &status["observedGeneration"]
        ),
        (&json!(2), &json!(2), &json!(1))
    );
    assert!(has_condition(
        &json!({"status": status}),
        "Available",
        "MinimumReplicasAvailable"
    ));

    // A deleted pod is replaced.
    let before = names(&pods);
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    let victim_pid = server.container_pid("default", &victim, "worker").unwrap();
    let pod_api: Api<Pod> = Api::namespaced(kube.clone(), "default");
    pod_api
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let replaced = wait_until("a replacement pod", Duration::from_secs(20), || {
        let now = names(&wait_workers(&server, 2));
        (!now.contains(&victim)).then_some(now)
    });
    assert_eq!(replaced.intersection(&before).count(), 1, "{replaced:?}");
    assert!(!process_alive(victim_pid));

    // Scaling up and down through the API.
    let scale = |n: i64| Patch::Merge(json!({"spec": {"replicas": n}}));
    deployments
        .patch("workers", &PatchParams::default(), &scale(3))
        .await
        .unwrap();
    wait_workers(&server, 3);
    let pids: Vec<u32> = active_pods(&server)
        .iter()
        .filter_map(|p| server.container_pid("default", p["metadata"]["name"].as_str()?, "worker"))
        .collect();
    deployments
        .patch("workers", &PatchParams::default(), &scale(1))
        .await
        .unwrap();
    wait_workers(&server, 1);
    assert_eq!(pids.iter().filter(|p| process_alive(**p)).count(), 1);
    let observed = server
        .get("apps/v1", "deployments", Some("default"), "workers")
        .unwrap();
    assert_eq!(observed["status"]["observedGeneration"], 3);

    // Deleting the Deployment takes its ReplicaSet and pods along (background by default).
    deployments
        .delete("workers", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("the workers to go", Duration::from_secs(20), || {
        (pods_of(&server, "app", "workers").is_empty()
            && server
                .list("apps/v1", "replicasets", Some("default"))
                .is_empty())
        .then_some(())
    });
    assert!(pids.iter().all(|p| !process_alive(*p)));
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_quota_refuses_pods_that_do_not_fit() {
    let server = KubeApiServer::builder().start();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(kube.clone(), "default");
    let quota = json!({"metadata": {"name": "compute"},
                       "spec": {"hard": {"pods": "2", "requests.cpu": "500m", "limits.memory": "1Gi"}}});
    quotas
        .create(
            &PostParams::default(),
            &serde_json::from_value(quota).unwrap(),
        )
        .await
        .unwrap();
    let ranges: Api<LimitRange> = Api::namespaced(kube.clone(), "default");
    let range = json!({"metadata": {"name": "defaults"},
                       "spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"}}]}});
    ranges
        .create(
            &PostParams::default(),
            &serde_json::from_value(range).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(kube, "default");
    let pod = |name: &str, resources: Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": TOOLS_IMAGE, "resources": resources}]}}))
        .unwrap()
    };
    let first = pods
        .create(
            &PostParams::default(),
            &pod("first", json!({"requests": {"cpu": "300m"}})),
        )
        .await
        .unwrap();
    // The LimitRange default filled in the memory limit (and the request from it).
    let resources = first.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "256Mi");
    assert_eq!(resources.requests.unwrap()["memory"].0, "256Mi");

    let (code, reason, message) = api_code(
        pods.create(
            &PostParams::default(),
            &pod("second", json!({"requests": {"cpu": "300m"}})),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods \"second\" is forbidden: exceeded quota: compute, requested: requests.cpu=300m, \
         used: requests.cpu=300m, limited: requests.cpu=500m"
    );
    let (code, _, message) = api_code(
        pods.create(&PostParams::default(), &pod("bare", json!({})))
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: c"
    );

    pods.create(
        &PostParams::default(),
        &pod("third", json!({"requests": {"cpu": "200m"}})),
    )
    .await
    .unwrap();
    let stored = server
        .get("v1", "resourcequotas", Some("default"), "compute")
        .unwrap();
    assert_eq!(
        stored["status"]["used"],
        json!({"pods": "2", "requests.cpu": "500m", "limits.memory": "512Mi"})
    );
    let (_, _, message) = api_code(
        pods.create(
            &PostParams::default(),
            &pod("fourth", json!({"requests": {"cpu": "0"}})),
        )
        .await,
    );
    assert!(
        message.ends_with("requested: pods=1, used: pods=2, limited: pods=2"),
        "{message}"
    );
    pods.delete("first", &DeleteParams::default())
        .await
        .unwrap();
    let stored = server
        .get("v1", "resourcequotas", Some("default"), "compute")
        .unwrap();
    assert_eq!(stored["status"]["used"]["pods"], "1");
    assert_eq!(stored["status"]["used"]["requests.cpu"], "200m");
}

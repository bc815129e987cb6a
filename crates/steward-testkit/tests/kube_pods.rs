//! The simulated node behind the in-memory Kubernetes API server: pods created through the
//! API run their container command as local processes and go through the real status
//! shapes, as kube-rs and kubectl see them.

mod kube_fixtures;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use steward_testkit::kube::{ImageRun, KubeApiServer, SimulatedNode};
use steward_testkit::wait_until;

use kube_fixtures::{
    TOOLS_IMAGE, client, node_server, process_alive, sh_pod, stored_pod, wait_phase, wait_pod,
};

fn pod_of(value: Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// What a watcher sees of a pod: phase and the first container's state.
fn shape(pod: &Pod) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let state = status
        .container_statuses
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.state)
        .map(|s| match (s.waiting, s.running, s.terminated) {
            (Some(w), _, _) => w.reason.unwrap_or_default(),
            (_, Some(_), _) => "running".into(),
            (_, _, Some(t)) => format!("exit {}", t.exit_code),
            _ => String::new(),
        })
        .unwrap_or_default();
    format!("{} {state}", status.phase.unwrap_or_default())
}

fn container_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

fn condition<'a>(pod: &'a Value, kind: &str) -> &'a Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {pod}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_runs_its_command_with_env_secrets_and_mounts() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), "default");
    let secret = json!({"metadata": {"name": "db"}, "data": {"password": "czNjcmV0"}});
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(kube, "default");
    let mut events = watcher(
        pods.clone(),
        watcher::Config::default().fields("metadata.name=app"),
    )
    .applied_objects()
    .boxed();

    // The script reads the secret file through its argument and an env var: both start
    // with the mount path, so both are rewritten to the local directory.
    let script = r#"echo "password=$DB_PASSWORD"; echo "file=$(cat "$1") mode=$(stat -c %a "$1")"; echo "via-env=$(cat "$DB_FILE")"; echo "pod=$POD_NAME ns=$POD_NS app=$APP image=$FROM_IMAGE"; echo "mounts=$STEWARD_TESTKIT_MOUNTS" >&2"#;
    let pod = sh_pod(
        "app",
        script,
        &["/etc/db/password"],
        json!({
            "containers": [{"name": "main", "image": TOOLS_IMAGE,
                "command": ["sh", "-c", script, "sh", "/etc/db/password"],
                "env": [
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "DB_FILE", "value": "/etc/db/password"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                ],
                "volumeMounts": [{"name": "db", "mountPath": "/etc/db", "readOnly": true}]}],
            "volumes": [{"name": "db", "secret": {"secretName": "db", "defaultMode": 0o400}}],
        }),
    );
    let mut pod = pod;
    pod["metadata"]["labels"] = json!({"app": "web"});
    pods.create(&PostParams::default(), &pod_of(pod))
        .await
        .unwrap();

    let mut seen: Vec<String> = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(pod) = events.try_next().await.unwrap() {
            let s = shape(&pod);
            if seen.last() != Some(&s) {
                seen.push(s.clone());
            }
            if s.starts_with("Succeeded") {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the pod did not succeed; seen {seen:?}"));
    for expected in [
        "Pending ContainerCreating",
        "Running running",
        "Succeeded exit 0",
    ] {
        assert!(
            seen.contains(&expected.to_string()),
            "{expected} not in {seen:?}"
        );
    }

    let stored = stored_pod(&server, "app").unwrap();
    let terminated = &container_status(&stored)["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0);
    assert_eq!(terminated["reason"], "Completed");
    assert!(terminated["finishedAt"].is_string() && stored["status"]["startTime"].is_string());
    assert_eq!(stored["spec"]["nodeName"], server.node_name());
    assert_eq!(condition(&stored, "PodScheduled")["status"], "True");
    assert_eq!(condition(&stored, "Ready")["reason"], "PodCompleted");

    let logs = pods.logs("app", &LogParams::default()).await.unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[0], "password=s3cret");
    assert_eq!(lines[1], "file=s3cret mode=400");
    assert_eq!(lines[2], "via-env=s3cret");
    assert_eq!(lines[3], "pod=app ns=default app=web image=tools");
    let mounts: Value = serde_json::from_str(
        lines[4]
            .strip_prefix("mounts=")
            .expect("stderr is in the log"),
    )
    .unwrap();
    let local = Path::new(mounts["/etc/db"].as_str().unwrap());
    assert!(local.join("password").is_file(), "{mounts}");
    let tail = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    assert!(
        pods.logs("app", &tail)
            .await
            .unwrap()
            .starts_with("mounts=")
    );
}

#[test]
fn a_failing_command_fails_the_pod_with_its_exit_code() {
    let server = node_server();
    server
        .apply(sh_pod("fails", "echo bye >&2; exit 3", &[], json!({})))
        .unwrap();
    let pod = wait_phase(&server, "fails", "Failed");
    let terminated = &container_status(&pod)["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 3);
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(condition(&pod, "Ready")["reason"], "PodFailed");
}

#[test]
fn an_unregistered_image_backs_off_until_it_is_registered() {
    let server = node_server();
    let mut pod = sh_pod("pull", "echo pulled", &[], json!({}));
    pod["spec"]["containers"][0]["image"] = "example.invalid/not/here:2".into();
    server.apply(pod).unwrap();
    let waiting = |reason: &'static str| {
        move |p: &Value| container_status(p)["state"]["waiting"]["reason"] == reason
    };
    let pod = wait_pod(&server, "pull", "ErrImagePull", waiting("ErrImagePull"));
    assert_eq!(pod["status"]["phase"], "Pending");
    let message = container_status(&pod)["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("example.invalid/not/here:2") && message.contains("register_image"),
        "{message}"
    );
    let pod = wait_pod(
        &server,
        "pull",
        "ImagePullBackOff",
        waiting("ImagePullBackOff"),
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    let events = server.list("v1", "events", Some("default"));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Failed" && e["message"] == message.as_str()),
        "{events:?}"
    );

    server.register_image("example.invalid/not/here:2", ImageRun::new());
    wait_phase(&server, "pull", "Succeeded");
}

#[test]
fn a_pod_whose_node_selector_does_not_match_stays_unschedulable() {
    let server = KubeApiServer::builder()
        .node(SimulatedNode::default().label("disktype", "hdd"))
        .image(TOOLS_IMAGE, ImageRun::new())
        .start();
    server
        .apply(sh_pod(
            "ssd",
            "true",
            &[],
            json!({"nodeSelector": {"disktype": "ssd"}}),
        ))
        .unwrap();
    server
        .apply(sh_pod(
            "linux",
            "true",
            &[],
            json!({"nodeSelector": {"kubernetes.io/os": "linux", "disktype": "hdd"}}),
        ))
        .unwrap();
    let pod = wait_pod(&server, "ssd", "Unschedulable", |p| {
        p["status"]["conditions"][0]["reason"] == "Unschedulable"
    });
    let scheduled = condition(&pod, "PodScheduled");
    assert_eq!(scheduled["status"], "False");
    assert!(scheduled["message"].as_str().unwrap().starts_with(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    ));
    wait_phase(&server, "linux", "Succeeded");
    let pod = stored_pod(&server, "ssd").unwrap();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(pod["spec"].get("nodeName").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_pod_stops_its_process_then_removes_it() {
    let server = node_server();
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let pods: Api<Pod> = Api::namespaced(kube, "default");
    let polite = sh_pod(
        "polite",
        r#"trap 'echo TERM; exit 0' TERM; echo up; while true; do sleep 0.1; done"#,
        &[],
        json!({}),
    );
    pods.create(&PostParams::default(), &pod_of(polite))
        .await
        .unwrap();
    wait_phase(&server, "polite", "Running");
    let pid = server.container_pid("default", "polite", "main").unwrap();
    assert!(process_alive(pid));
    let deleted = pods
        .delete("polite", &DeleteParams::default())
        .await
        .unwrap();
    let marked = deleted.left().expect("a running pod is deleted gracefully");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    wait_until("the pod to be removed", Duration::from_secs(10), || {
        stored_pod(&server, "polite").is_none().then_some(())
    });
    assert!(!process_alive(pid), "process {pid} survived its pod");

    // A process that ignores SIGTERM is killed when the (capped) grace period ends.
    let stubborn = sh_pod("stubborn", "trap '' TERM; sleep 300", &[], json!({}));
    pods.create(&PostParams::default(), &pod_of(stubborn))
        .await
        .unwrap();
    wait_phase(&server, "stubborn", "Running");
    let pid = server.container_pid("default", "stubborn", "main").unwrap();
    let started = Instant::now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(
        "the stubborn pod to be removed",
        Duration::from_secs(10),
        || stored_pod(&server, "stubborn").is_none().then_some(()),
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(!process_alive(pid));
}

#[test]
fn active_deadline_seconds_kills_the_pod() {
    let server = node_server();
    server
        .apply(sh_pod(
            "late",
            "sleep 300",
            &[],
            json!({"activeDeadlineSeconds": 1}),
        ))
        .unwrap();
    wait_phase(&server, "late", "Running");
    let pid = server.container_pid("default", "late", "main").unwrap();
    let pod = wait_phase(&server, "late", "Failed");
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        pod["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    assert_eq!(
        container_status(&pod)["state"]["terminated"]["exitCode"],
        143
    );
    assert!(!process_alive(pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_policy_always_restarts_the_container() {
    let server = node_server();
    let pod = sh_pod(
        "loop",
        "echo run; exit 1",
        &[],
        json!({"restartPolicy": "Always"}),
    );
    server.apply(pod).unwrap();
    let pod = wait_pod(&server, "loop", "two restarts", |p| {
        container_status(p)["restartCount"].as_u64() >= Some(2)
    });
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(
        container_status(&pod)["lastState"]["terminated"]["exitCode"],
        1
    );
    let kube = client(&server, KubeApiServer::ADMIN_TOKEN).await;
    let pods: Api<Pod> = Api::namespaced(kube, "default");
    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    assert_eq!(pods.logs("loop", &previous).await.unwrap(), "run\n");
}

#[test]
fn dropping_the_server_kills_its_processes() {
    let server = node_server();
    server
        .apply(sh_pod("sleeper", "sleep 300 & sleep 300", &[], json!({})))
        .unwrap();
    wait_phase(&server, "sleeper", "Running");
    let pid = server.container_pid("default", "sleeper", "main").unwrap();
    let children =
        || std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let child: u32 = wait_until("the background sleep", Duration::from_secs(5), || {
        children()
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
    });
    drop(server);
    assert!(
        !process_alive(pid),
        "container process {pid} outlived the server"
    );
    wait_until(
        "the background child to die",
        Duration::from_secs(5),
        || (!process_alive(child)).then_some(()),
    );
}

/// The real kubectl, or `None` (the test is skipped) where it is not installed.
fn kubectl_binary() -> Option<&'static str> {
    ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn kubectl_waits_reads_logs_and_deletes() {
    let Some(binary) = kubectl_binary() else {
        eprintln!("kubectl is not installed; skipped");
        return;
    };
    let server = node_server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    server.write_kubeconfig(&config).unwrap();
    let kubectl = |args: &[&str]| {
        let out = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&config)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "kubectl {args:?}: {stderr}");
        stdout
    };
    let manifest = dir.path().join("pods.yaml");
    let done = sh_pod("done", "echo one; echo two", &[], json!({}));
    let server_pod = sh_pod("server", "echo serving; sleep 300", &[], json!({}));
    std::fs::write(&manifest, format!("{done}\n---\n{server_pod}\n")).unwrap();
    kubectl(&["create", "-f", manifest.to_str().unwrap()]);
    kubectl(&[
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/done",
        "--timeout=20s",
    ]);
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/server",
        "--timeout=20s",
    ]);
    assert_eq!(kubectl(&["logs", "done"]), "one\ntwo\n");
    assert_eq!(kubectl(&["logs", "done", "--tail=1"]), "two\n");
    // Following a finished container's log ends with its last line.
    assert_eq!(kubectl(&["logs", "-f", "done"]), "one\ntwo\n");
    let table = kubectl(&["get", "pods", "--no-headers"]);
    let statuses: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        statuses,
        [vec!["done", "Completed"], vec!["server", "Running"]]
    );
    let pid = server.container_pid("default", "server", "main").unwrap();
    kubectl(&["delete", "pod", "server"]);
    assert!(stored_pod(&server, "server").is_none());
    assert!(!process_alive(pid));
}

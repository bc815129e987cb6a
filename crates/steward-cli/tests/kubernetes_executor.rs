//! The Kubernetes executor against the in-memory API server with its simulated node: each run
//! becomes a pod whose container really runs `steward task-pod` (this build), which executes
//! the codebundle with Robot Framework and reports to the runner's endpoint. Results are
//! compared with the process executor's for the same run.

mod common;

use common::cluster::{NAMESPACE, RUNTIME_IMAGE as IMAGE, execute, run_spec, simulated_cluster};
use common::{api, client, client_json, start_platform, start_runner_with_env};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use steward_model::run::{RunResult, RunSpec, RunStatus};
use steward_runner::executor::{Executor, ProcessExecutor};
use steward_runner::kubernetes::executor::KubernetesExecutor;
use steward_runner::kubernetes::handoff::Handoff;
use steward_runner::kubernetes::pod::{self, DEADLINE_MARGIN_SECONDS};
use steward_runner::kubernetes::settings::PodSettings;
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use steward_testkit::kube::KubeApiServer;
use steward_testkit::{HttpTarget, cache_dir, workspace_root};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const FIXTURES_URL: &str = "https://example.com/fixtures.git";

struct Cluster {
    server: KubeApiServer,
    client: kube::Client,
    handoff: Handoff,
    runner_url: String,
}

impl Cluster {
    async fn start(extra: &[serde_json::Value]) -> Cluster {
        let (server, client, _kubeconfig) = simulated_cluster(extra).await;
        let handoff = Handoff::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runner_url = format!("http://{}", listener.local_addr().unwrap());
        let serving = handoff.clone();
        tokio::spawn(async move { serving.serve(listener).await });
        Cluster {
            server,
            client,
            handoff,
            runner_url,
        }
    }

    fn executor(&self, settings: PodSettings) -> KubernetesExecutor {
        self.executor_in(NAMESPACE, settings)
    }

    /// An executor for `namespace`; `settings` without an image get the runtime image.
    fn executor_in(&self, namespace: &str, settings: PodSettings) -> KubernetesExecutor {
        let fixtures = workspace_root().join("crates/steward-runtime/tests/fixtures/collection");
        KubernetesExecutor::new(
            self.client.clone(),
            namespace.into(),
            PodSettings {
                image: settings.image.clone().or(Some(IMAGE.into())),
                ..settings
            },
            self.runner_url.clone(),
            "test-runner".into(),
            self.handoff.clone(),
            [(FIXTURES_URL.to_string(), fixtures)].into(),
        )
        .unwrap()
    }

    /// Waits until no Pod or Secret of a run is left. Deleting a pod is graceful, in the
    /// simulated cluster as in a real one: it is gone once its kubelet stopped it, a moment
    /// after the run's end.
    async fn all_removed(&self) {
        steward_testkit::wait_until_async(
            "the runs' pods and Secrets to be removed",
            Duration::from_secs(20),
            || async { (self.leftovers().await == 0).then_some(()) },
        )
        .await;
    }

    /// Pods and Secrets of runs still in the namespace.
    async fn leftovers(&self) -> usize {
        let selector = ListParams::default().labels("steward.dev/run-id");
        let pods = Api::<Pod>::namespaced(self.client.clone(), NAMESPACE)
            .list(&selector)
            .await
            .unwrap();
        let secrets = Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .list(&selector)
            .await
            .unwrap();
        pods.items.len() + secrets.items.len()
    }
}

fn spec(bundle: &str, config: &[(&str, &str)], tasks: &[&str], secrets: &[&str]) -> RunSpec {
    match bundle {
        "secret-check" => run_spec(
            FIXTURES_URL,
            "codebundles/secret-check/runbook.robot",
            config,
            tasks,
            secrets,
        ),
        other => run_spec("builtin://steward", other, config, tasks, secrets),
    }
}

fn artifact_names(result: &RunResult) -> BTreeSet<String> {
    result.artifacts.iter().map(|a| a.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_run_reports_what_the_process_executor_reports() {
    let cluster = Cluster::start(&[]).await;
    let target = HttpTarget::start();
    target.set_health(503);
    let dir = tempfile::tempdir().unwrap();
    let http = spec(
        "codebundles/http-endpoint-health/runbook.robot",
        &[
            ("URLS", &format!("{}/health", target.base_url())),
            ("REQUEST_TIMEOUT", "5"),
        ],
        &["Check HTTP Endpoint Availability and Latency"],
        &[],
    );
    let token = "tok-4c1d9e0b7a55";
    let secret_run = spec(
        "secret-check",
        &[("SERVICE", "billing")],
        &["Use The Token For `${SERVICE}`"],
        &["api_token"],
    );
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: format!("{token}\n"),
    }];

    let runtime = Runtime::start(
        RuntimeConfig {
            collection_overrides: [(
                FIXTURES_URL.to_string(),
                workspace_root().join("crates/steward-runtime/tests/fixtures/collection"),
            )]
            .into(),
            ..RuntimeConfig::new(cache_dir(), dir.path().join("work"))
        },
        Arc::new(|_| {}),
    )
    .await
    .unwrap();
    let process = ProcessExecutor::new(Arc::new(runtime));
    let pods = cluster.executor(PodSettings::default());
    let jobs = cluster.executor(PodSettings {
        run_as_job: true,
        ..PodSettings::default()
    });

    for (spec, values) in [(&http, &[][..]), (&secret_run, &secrets[..])] {
        let by_process = execute(
            &process,
            spec,
            values,
            &dir.path().join("p").join(spec.run_id.to_string()),
        )
        .await;
        let by_pod = execute(
            &pods,
            spec,
            values,
            &dir.path().join(spec.run_id.to_string()),
        )
        .await;
        let by_job = execute(
            &jobs,
            spec,
            values,
            &dir.path().join("j").join(spec.run_id.to_string()),
        )
        .await;
        assert_eq!(by_process.status, RunStatus::Succeeded, "{by_process:#?}");
        for other in [&by_pod, &by_job] {
            assert_eq!(other.status, by_process.status, "{other:#?}");
            assert_eq!(other.tasks.len(), by_process.tasks.len());
            for (a, b) in other.tasks.iter().zip(&by_process.tasks) {
                assert_eq!((&a.name, &a.title, a.status), (&b.name, &b.title, b.status));
            }
            let titles = |r: &RunResult| -> Vec<(String, u8)> {
                r.issues
                    .iter()
                    .map(|i| (i.title.clone(), i.severity))
                    .collect()
            };
            assert_eq!(titles(other), titles(&by_process));
            assert_eq!(artifact_names(other), artifact_names(&by_process));
        }
        // The artifacts arrived in the run's staging directory, whole.
        let out = dir.path().join(spec.run_id.to_string());
        for artifact in &by_pod.artifacts {
            let len = std::fs::metadata(out.join(&artifact.name)).unwrap().len();
            assert_eq!(len, artifact.size, "{}", artifact.name);
        }
        if spec.run_id == secret_run.run_id {
            let report = std::fs::read_to_string(out.join("report.jsonl")).unwrap();
            assert!(report.contains("leaked: ********"), "{report}");
            assert!(!report.contains(token));
        } else {
            assert!(
                by_pod.issues.iter().any(|i| i.title.contains("503")),
                "{by_pod:#?}"
            );
        }
    }
    cluster.all_removed().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_cannot_start_fail_their_run_with_the_reason() {
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": "full"}, "spec": {"hard": {"pods": "0"}}});
    let cluster = Cluster::start(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "full"}}),
        quota,
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        "secret-check",
        &[("SERVICE", "x")],
        &["Sleep Past The Timeout"],
        &[],
    );

    let missing = cluster.executor(PodSettings {
        image: Some("example.invalid/not/pulled:1".into()),
        image_pull_timeout_seconds: Some(2),
        ..PodSettings::default()
    });
    let result = execute(&missing, &spec, &[], dir.path()).await;
    assert_eq!(result.status, RunStatus::Error);
    let error = result.error.unwrap();
    assert!(
        error.contains("cannot start")
            && (error.contains("ImagePullBackOff") || error.contains("ErrImagePull")),
        "{error}"
    );

    let unschedulable = cluster.executor(PodSettings {
        node_selector: [("disk".to_string(), "ssd".to_string())].into(),
        pending_timeout_seconds: Some(3),
        ..PodSettings::default()
    });
    let spec = RunSpec {
        run_id: Uuid::now_v7(),
        ..spec
    };
    let error = execute(&unschedulable, &spec, &[], dir.path())
        .await
        .error
        .unwrap();
    assert!(
        error.contains("cannot be scheduled") && error.contains("Unschedulable"),
        "{error}"
    );

    let pods_before = cluster.server.requests("create", "pods");
    let over_quota = cluster.executor_in(
        "full",
        PodSettings {
            pending_timeout_seconds: Some(3),
            ..PodSettings::default()
        },
    );
    let spec = RunSpec {
        run_id: Uuid::now_v7(),
        ..spec
    };
    let error = execute(&over_quota, &spec, &[], dir.path())
        .await
        .error
        .unwrap();
    assert!(
        error.contains("did not fit the quota of namespace full")
            && error.contains("ResourceQuota no-pods allows 0 pods"),
        "{error}"
    );
    assert_eq!(
        cluster.server.requests("create", "pods"),
        pods_before,
        "a pod the quota refuses was created"
    );
    cluster.all_removed().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_waits_for_room_in_the_quota_then_runs() {
    let cluster = Cluster::start(&[json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "team", "namespace": NAMESPACE},
        "spec": {"hard": {"pods": "0", "requests.memory": "1Gi"}}})])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let executor = cluster.executor(PodSettings {
        resources: Some(serde_json::from_value(json!({"requests": {"memory": "256Mi"}})).unwrap()),
        ..PodSettings::default()
    });
    let spec = spec(
        "secret-check",
        &[("SERVICE", "q")],
        &["Use The Token For `${SERVICE}`"],
        &["api_token"],
    );
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: "quota-token".into(),
    }];
    let cancel = CancellationToken::new();
    let running = executor.execute(&spec, &secrets, dir.path(), &cancel);
    let raise = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            cluster.server.requests("create", "pods"),
            0,
            "created while the quota is full"
        );
        let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
            Api::namespaced(cluster.client.clone(), NAMESPACE);
        quotas
            .patch(
                "team",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"hard": {"pods": "3"}}})),
            )
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(running, raise);
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    assert_eq!(cluster.server.requests("create", "pods"), 1);
}

/// The pod a run really gets: restricted security contexts, the run's Secret mounted 0400,
/// labels naming workspace, SLX and run, the task timeout as its deadline, the configured
/// resources.
fn check_task_pod(pod: &Pod, spec: &RunSpec) {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["steward.dev/run-id"], spec.run_id.to_string());
    assert_eq!(labels["steward.dev/workspace"], spec.workspace);
    assert_eq!(labels["steward.dev/slx"], spec.slx);
    let pod_spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        pod_spec.active_deadline_seconds,
        Some((spec.timeout_seconds + DEADLINE_MARGIN_SECONDS) as i64)
    );
    let pod_context = pod_spec.security_context.as_ref().unwrap();
    assert_eq!(pod_context.run_as_non_root, Some(true));
    assert_eq!(
        pod_context.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let task = &pod_spec.containers[0];
    let context = task.security_context.as_ref().unwrap();
    assert_eq!(context.allow_privilege_escalation, Some(false));
    assert_eq!(context.run_as_non_root, Some(true));
    let dropped = context.capabilities.as_ref().unwrap().drop.clone();
    assert_eq!(dropped, Some(vec!["ALL".to_string()]));
    let limits = task.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(limits["memory"].0, "512Mi");
    let run_volume = pod_spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.secret.as_ref())
        .expect("the run's Secret is a volume");
    assert_eq!(
        run_volume.secret_name.as_deref(),
        Some(pod::object_name(spec).as_str())
    );
    assert_eq!(run_volume.default_mode, Some(0o400));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_deletes_the_pod_and_stops_the_task() {
    let cluster = Cluster::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        "secret-check",
        &[("SERVICE", "x")],
        &["Sleep Past The Timeout"],
        &["api_token"],
    );
    let executor = cluster.executor(PodSettings {
        resources: Some(
            serde_json::from_value(json!({"limits": {"memory": "512Mi", "cpu": "1"}})).unwrap(),
        ),
        ..PodSettings::default()
    });
    let cancel = CancellationToken::new();
    let pod_name = format!("steward-run-{}", spec.run_id.simple());
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: "v".into(),
    }];
    let running = executor.execute(&spec, &secrets, dir.path(), &cancel);
    let watcher = async {
        let pid = steward_testkit::wait_until_async(
            "the task pod to run",
            Duration::from_secs(60),
            || async { cluster.server.container_pid(NAMESPACE, &pod_name, "task") },
        )
        .await;
        let pod = Api::<Pod>::namespaced(cluster.client.clone(), NAMESPACE)
            .get(&pod_name)
            .await
            .unwrap();
        check_task_pod(&pod, &spec);
        // Let robot start, then cancel.
        tokio::time::sleep(Duration::from_secs(3)).await;
        cancel.cancel();
        pid
    };
    let (result, pid) = tokio::join!(running, watcher);
    assert_eq!(result.status, RunStatus::Cancelled, "{result:#?}");
    steward_testkit::wait_until_async(
        "the task process to end",
        Duration::from_secs(20),
        || async {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
                .is_err()
                .then_some(())
        },
    )
    .await;
    cluster.all_removed().await;
}

/// `steward runner --executor kubernetes` as a process, with a platform: a session's run
/// executes in a pod and the platform gets its result and artifacts.
#[test]
fn a_runner_process_runs_sessions_in_pods() {
    // The platform helpers block; the cluster's client needs a runtime of its own.
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let cluster = tokio.block_on(Cluster::start(&[]));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.server.write_kubeconfig(&kubeconfig).unwrap();
    let port = steward_testkit::free_port();
    let config = dir.path().join("runner.yaml");
    std::fs::write(
        &config,
        format!(
            "executor: kubernetes\nkubernetes:\n  namespace: {NAMESPACE}\n  image: {IMAGE}\n  handoffListen: 127.0.0.1:{port}\n  runnerUrl: http://127.0.0.1:{port}\n  runAsJob: true\n"
        ),
    )
    .unwrap();
    let target = HttpTarget::start();
    let token = "stw_reg_k8s";
    let platform = start_platform(dir.path(), token, &["--location", "cluster"]);
    let url = platform.url.clone();
    let _runner = start_runner_with_env(
        dir.path(),
        &url,
        token,
        "k8s-runner",
        &["--config", config.to_str().unwrap()],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let root = dir.path().join("workspace");
    let slx = root.join("slxs/web");
    std::fs::create_dir_all(&slx).unwrap();
    std::fs::write(
        root.join("workspace.yaml"),
        "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: k8s\n",
    )
    .unwrap();
    std::fs::write(slx.join("slx.yaml"), "apiVersion: runwhen.com/v1\nkind: ServiceLevelX\nmetadata:\n  name: k8s--web\nspec:\n  alias: Web\n  statement: Up.\n").unwrap();
    std::fs::write(
        slx.join("runbook.yaml"),
        format!("apiVersion: runwhen.com/v1\nkind: Runbook\nmetadata:\n  name: k8s--web\nspec:\n  location: cluster\n  codeBundle:\n    repoUrl: builtin://steward\n    ref: main\n    pathToRobot: codebundles/http-endpoint-health/runbook.robot\n  configProvided:\n  - {{name: URLS, value: '{}/health'}}\n", target.base_url()),
    )
    .unwrap();
    let (code, stdout, stderr) = client(&url, &["workspace", "import", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let session = client_json(&url, &["session", "create", "--slx", "web"]);
    let run = &session["runs"][0];
    assert_eq!(run["status"], "succeeded", "{session:#}");
    assert!(
        cluster.server.requests("create", "jobs") >= 1,
        "the run did not become a Job"
    );
    let path = format!("/api/v1/runs/{}/artifacts", run["id"].as_str().unwrap());
    let names: BTreeSet<String> = api(&url, &path)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    for expected in ["log.html", "report.jsonl", "stdout.txt"] {
        assert!(names.contains(expected), "{names:?}");
    }
    tokio.block_on(cluster.all_removed());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_runners_pod_removes_its_task_pods_and_their_secrets() {
    // The runner's own pod, as the chart runs it (its image is not pulled here: it only has to
    // exist as an owner).
    let cluster = Cluster::start(&[json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "runner-0", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "runner", "image": "example.invalid/steward/steward:test"}]}})])
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let runner = pods.get("runner-0").await.unwrap();
    let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: "runner-0".into(),
        uid: runner.metadata.uid.unwrap(),
        ..Default::default()
    };
    let executor = cluster.executor(PodSettings::default()).with_owner(owner);
    let spec = spec(
        "secret-check",
        &[("SERVICE", "x")],
        &["Sleep Past The Timeout"],
        &["api_token"],
    );
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: "owned-secret".into(),
    }];
    let dir = tempfile::tempdir().unwrap();
    let task = format!("steward-run-{}", spec.run_id.simple());
    let cancel = CancellationToken::new();
    let running = executor.execute(&spec, &secrets, dir.path(), &cancel);
    let delete_runner = async {
        let pid = steward_testkit::wait_until_async(
            "the task pod to run",
            Duration::from_secs(60),
            || async { cluster.server.container_pid(NAMESPACE, &task, "task") },
        )
        .await;
        let secret: Secret = Api::namespaced(cluster.client.clone(), NAMESPACE)
            .get(&task)
            .await
            .unwrap();
        let owners = secret.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners[0].kind, "Pod", "the run's Secret belongs to its pod");
        pods.delete("runner-0", &Default::default()).await.unwrap();
        steward_testkit::wait_until_async(
            "the task pod and Secret to be collected",
            Duration::from_secs(60),
            || async { (cluster.leftovers().await == 0).then_some(()) },
        )
        .await;
        pid
    };
    let (result, pid) = tokio::join!(running, delete_runner);
    // Deleting the pod stops the launcher (it reports the run cancelled) or, if it cannot
    // report in time, the executor sees the pod gone: either way the run ends, not hangs.
    assert!(
        matches!(result.status, RunStatus::Cancelled | RunStatus::Error),
        "{result:#?}"
    );
    steward_testkit::wait_until_async(
        "the task process to end",
        Duration::from_secs(20),
        || async {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
                .is_err()
                .then_some(())
        },
    )
    .await;
}

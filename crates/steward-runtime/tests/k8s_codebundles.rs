//! The Kubernetes codebundles of Steward's CodeCollection, run for real: Robot Framework with
//! the RunWhen keyword libraries and the real `kubectl`, against the in-memory Kubernetes API
//! server of steward-testkit, reached through a kubeconfig given as the `kubeconfig` secret.
//! The first run builds the shared Python environment.

#[path = "k8s_codebundles/cluster.rs"]
mod cluster;

use cluster::*;
use serde_json::json;
use std::sync::Arc;
use steward_model::issue::Issue;
use steward_model::run::{RunKind, RunResult, RunSpec, RunStatus};
use steward_model::workspace::{CodeBundleRef, ConfigVar, SecretRef};
use steward_runtime::{Runtime, RuntimeConfig, SecretValue};
use steward_testkit::kube::{Access, KubeApiServer, KubeContext, kubeconfig_yaml};
use steward_testkit::{cache_dir, workspace_root};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The kubeconfig context the checks are told to use (not the kubeconfig's current one).
const CONTEXT: &str = "prod-eu";

/// A runtime and a scratch directory for the runs of one test.
struct Checks {
    runtime: Runtime,
    dir: tempfile::TempDir,
}

impl Checks {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig::new(cache_dir(), dir.path().join("work"));
        let runtime = Runtime::start(config, Arc::new(|e| eprintln!("python env: {e:?}")))
            .await
            .unwrap();
        Checks { runtime, dir }
    }

    /// k8s-namespace-health's `robot` for `namespace`.
    async fn namespace(&self, robot: &str, kubeconfig: &str, namespace: &str) -> RunResult {
        self.run(
            "k8s-namespace-health",
            robot,
            kubeconfig,
            &[("NAMESPACE", namespace)],
        )
        .await
    }

    /// k8s-deployment-health's `robot` for `deployment` in namespace `store`.
    async fn deployment(&self, robot: &str, kubeconfig: &str, deployment: &str) -> RunResult {
        let config = [("DEPLOYMENT_NAME", deployment), ("NAMESPACE", "store")];
        self.run("k8s-deployment-health", robot, kubeconfig, &config)
            .await
    }

    /// Runs `codebundles/<bundle>/<robot>` of the collection in this checkout (the files as
    /// they are on disk, whatever was compiled into the binary); the run must pass.
    async fn run(
        &self,
        bundle: &str,
        robot: &str,
        kubeconfig: &str,
        config: &[(&str, &str)],
    ) -> RunResult {
        let kind = if robot == "sli.robot" {
            RunKind::Sli
        } else {
            RunKind::Runbook
        };
        let collection = workspace_root().join("codecollections");
        let spec = RunSpec {
            run_id: Uuid::now_v7(),
            kind,
            workspace: "ws".into(),
            slx: "k8s-check".into(),
            location: "test".into(),
            code_bundle: CodeBundleRef {
                repo_url: collection.to_string_lossy().into_owned(),
                git_ref: String::new(),
                path_to_robot: Some(format!("codebundles/{bundle}/{robot}")),
                path_to_yaml: None,
            },
            config: config
                .iter()
                .chain(&[("CONTEXT", CONTEXT)])
                .map(|(name, value)| ConfigVar {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            secrets: vec![SecretRef {
                name: "kubeconfig".into(),
                workspace_key: "file@/resolved/by/the/runner".into(),
            }],
            task_titles: match kind {
                RunKind::Runbook => vec!["*".into()],
                _ => vec![],
            },
            timeout_seconds: 300,
            session_id: Some(Uuid::now_v7()),
            interval_seconds: Some(300),
        };
        let secrets = [SecretValue {
            name: "kubeconfig".into(),
            value: kubeconfig.to_string(),
        }];
        let out = self.dir.path().join(spec.run_id.to_string());
        let result = self
            .runtime
            .execute(&spec, &secrets, &out, &CancellationToken::new())
            .await
            .result;
        assert_eq!(
            result.status,
            RunStatus::Succeeded,
            "{bundle}/{robot} did not pass: {result:#?}"
        );
        result
    }
}

/// A kubeconfig whose context `prod-eu` reaches `server`. Its current context is another,
/// unreachable one: the checks must pass `--context`.
fn kubeconfig(server: &KubeApiServer) -> String {
    kubeconfig_yaml(&[
        KubeContext::unreachable("elsewhere"),
        server.context(CONTEXT, KubeApiServer::ADMIN_TOKEN),
    ])
}

fn issue<'a>(result: &'a RunResult, needle: &str) -> &'a Issue {
    result
        .issues
        .iter()
        .find(|i| i.title.contains(needle))
        .unwrap_or_else(|| panic!("no issue titled like {needle:?} in {:#?}", titles(result)))
}

fn titles(result: &RunResult) -> Vec<String> {
    let titles = result.issues.iter();
    titles
        .map(|i| format!("{} {}", i.severity, i.title))
        .collect()
}

fn metric(result: &RunResult, sub: &str) -> f64 {
    let name = format!("k8s_check__sli__{sub}");
    let point = result.metrics.iter().find(|m| m.name == name);
    point
        .unwrap_or_else(|| panic!("no metric {name} in {:?}", result.metrics))
        .value
}

// ---------------------------------------------------------------------------------------
// k8s-namespace-health

/// Namespace `shop`: `frontend` (3/3, healthy pods), `cart` (0/2: one pod crash-looping, one
/// failing to pull its image), a bare pod that cannot be scheduled; warning events: one group
/// over the threshold, one under it, one too old. Namespace `other` is broken but not checked.
fn shop() -> KubeApiServer {
    let (frontend, cart) = ("frontend-7d9f8c6b5", "cart-5c4b3a291");
    let objects = vec![
        deployment("shop", "frontend", 3, 3, progressing()),
        replicaset("shop", "frontend", "7d9f8c6b5"),
        pod(
            "shop",
            "frontend-7d9f8c6b5-a1b2c",
            "frontend",
            frontend,
            healthy(),
        ),
        pod(
            "shop",
            "frontend-7d9f8c6b5-d3e4f",
            "frontend",
            frontend,
            healthy(),
        ),
        pod(
            "shop",
            "frontend-7d9f8c6b5-g5h6i",
            "frontend",
            frontend,
            healthy(),
        ),
        deployment("shop", "cart", 2, 0, progressing()),
        replicaset("shop", "cart", "5c4b3a291"),
        pod(
            "shop",
            "cart-5c4b3a291-x7y8z",
            "cart",
            cart,
            crash_looping(7),
        ),
        pod(
            "shop",
            "cart-5c4b3a291-q9r0s",
            "cart",
            cart,
            image_pull_failing(),
        ),
        pod(
            "shop",
            "report-worker",
            "report-worker",
            "",
            unschedulable(),
        ),
        pod("other", "broken", "broken", "", crash_looping(3)),
    ];
    let back_off = "Back-off restarting failed container app";
    let probe = "Readiness probe failed: HTTP 503";
    let events = [
        warning(
            "shop",
            "Pod",
            "cart-5c4b3a291-x7y8z",
            "BackOff",
            back_off,
            12,
            2,
        ),
        warning(
            "shop",
            "Pod",
            "frontend-7d9f8c6b5-a1b2c",
            "Unhealthy",
            probe,
            1,
            5,
        ),
        warning(
            "shop",
            "Pod",
            "frontend-7d9f8c6b5-d3e4f",
            "Unhealthy",
            probe,
            9,
            300,
        ),
        warning("other", "Pod", "broken", "BackOff", back_off, 40, 1),
    ];
    start(objects, &events)
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_sli_is_the_share_of_healthy_objects() {
    let server = shop();
    let checks = Checks::new().await;
    let result = checks
        .namespace("sli.robot", &kubeconfig(&server), "shop")
        .await;
    // 6 pods and 2 deployments; unhealthy: the two cart pods, the unschedulable pod and the
    // cart deployment. The crash-looping pod's events do not count it twice; the frontend
    // pods' single recent warning and old warnings do not count.
    assert_eq!(result.sli_value, Some(0.5), "{:#?}", result.metrics);
    assert_eq!(metric(&result, "objects_checked"), 8.0);
    assert_eq!(metric(&result, "unhealthy_objects"), 4.0);
    assert!(server.requests("list", "pods") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_runbook_raises_an_issue_per_problem_with_a_kubectl_hint() {
    let server = shop();
    let checks = Checks::new().await;
    let result = checks
        .namespace("runbook.robot", &kubeconfig(&server), "shop")
        .await;
    assert_eq!(result.tasks.len(), 3, "{:#?}", result.tasks);

    let crash = issue(
        &result,
        "Pod `cart-5c4b3a291-x7y8z` in namespace `shop` is crash-looping",
    );
    assert_eq!(crash.severity, 2);
    assert!(
        crash.actual.contains("CrashLoopBackOff after 7 restarts"),
        "{crash:#?}"
    );
    assert!(crash.actual.contains("last exit code 1"), "{crash:#?}");
    assert_eq!(
        crash.reproduce_hint,
        "kubectl logs pod/cart-5c4b3a291-x7y8z --namespace shop --context prod-eu --all-containers --previous --tail=100"
    );
    assert!(!crash.next_steps.is_empty() && !crash.expected.is_empty());
    assert_eq!(crash.task_name, "Check Pod Health in Namespace `shop`");

    let pull = issue(
        &result,
        "`cart-5c4b3a291-q9r0s` in namespace `shop` cannot pull its image",
    );
    assert_eq!(pull.severity, 2);
    assert!(
        pull.actual.contains("registry.example.com/cart:9.9.9"),
        "{pull:#?}"
    );
    assert_eq!(
        pull.reproduce_hint,
        "kubectl describe pod cart-5c4b3a291-q9r0s --namespace shop --context prod-eu"
    );

    let pending = issue(
        &result,
        "Pod `report-worker` in namespace `shop` is stuck pending",
    );
    assert_eq!(pending.severity, 3);
    assert!(
        pending.actual.contains("Insufficient memory"),
        "{pending:#?}"
    );

    let cart = issue(
        &result,
        "Deployment `cart` in namespace `shop` has no available replicas",
    );
    assert_eq!(cart.severity, 1);
    assert!(
        cart.actual.contains("0 of 2 replicas available"),
        "{cart:#?}"
    );

    let events = issue(
        &result,
        "`cart-5c4b3a291-x7y8z` in namespace `shop` has 12 `BackOff`",
    );
    assert_eq!(events.severity, 3);
    assert!(
        events
            .reproduce_hint
            .contains("involvedObject.name=cart-5c4b3a291-x7y8z")
    );

    // Nothing about the healthy deployment, the minor or old warnings, or another namespace.
    assert_eq!(result.issues.len(), 5, "{:#?}", titles(&result));
    let unrelated = |i: &Issue| i.title.contains("frontend") || i.title.contains("broken");
    assert!(!result.issues.iter().any(unrelated));
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_checks_without_access_say_why_instead_of_failing() {
    let server = shop();
    // An identity that may read pods and deployments but not events. kubectl sends no bearer
    // token to a plain-http server, so it reaches the test server anonymously: the
    // restriction is set on anonymous requests.
    server.set_anonymous(Access::deny(&[("list", "events")]));
    let checks = Checks::new().await;
    let result = checks
        .namespace("runbook.robot", &kubeconfig(&server), "shop")
        .await;
    let forbidden = issue(
        &result,
        "Cannot read events in namespace `shop`: access is forbidden",
    );
    assert_eq!(forbidden.severity, 3);
    assert!(
        forbidden.next_steps.contains("get and list"),
        "{forbidden:#?}"
    );
    assert!(forbidden.actual.contains("forbidden"), "{forbidden:#?}");
    // What could be read is still checked.
    issue(&result, "is crash-looping");

    // A cluster that does not answer: one clear issue per task, and an SLI of 0.
    let gone = kubeconfig_yaml(&[KubeContext::unreachable(CONTEXT)]);
    let result = checks.namespace("runbook.robot", &gone, "shop").await;
    let unreachable = issue(
        &result,
        "Cannot read pods in namespace `shop`: the Kubernetes API server did not answer",
    );
    assert_eq!(unreachable.severity, 2);
    assert!(
        unreachable.actual.contains("127.0.0.1:1"),
        "{unreachable:#?}"
    );
    assert_eq!(result.issues.len(), 3, "{:#?}", titles(&result));
    let sli = checks.namespace("sli.robot", &gone, "shop").await;
    assert_eq!(sli.sli_value, Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_discovery_example_is_what_its_generated_checks_would_read() {
    // examples/discovery/cluster/prod-eu is kubectl output; served as a cluster, namespace
    // `shop` has one crash-looping cart pod next to a healthy one, and deployment `cart` has
    // 1 of 2 replicas available (frontend and checkout are fine; the StatefulSet is not a
    // deployment and the snapshot has no frontend pods).
    let example = workspace_root().join("examples/discovery/cluster/prod-eu");
    let server = KubeApiServer::from_fixture_dir(&example).unwrap();
    assert!(
        server.seed_problems().is_empty(),
        "{:?}",
        server.seed_problems()
    );
    serve_events(&server);
    let checks = Checks::new().await;
    let kubeconfig = kubeconfig(&server);
    let result = checks.namespace("sli.robot", &kubeconfig, "shop").await;
    assert_eq!(result.sli_value, Some(0.6), "{:#?}", result.metrics);
    let result = checks.namespace("runbook.robot", &kubeconfig, "shop").await;
    issue(
        &result,
        "Pod `cart-f7j7947gb-h2j8s` in namespace `shop` is crash-looping",
    );
    issue(
        &result,
        "Deployment `cart` in namespace `shop` is short of available replicas (1/2)",
    );
    assert_eq!(result.issues.len(), 2, "{:#?}", titles(&result));
}

// ---------------------------------------------------------------------------------------
// k8s-deployment-health

/// `checkout` (1 of 3 available: one pod ready, one not ready for ten minutes, one restarting
/// after OOM kills), `payments` (2 of 2 available but its rollout past its deadline), and
/// `checkout-api`, whose crash-looping pod must not be taken for checkout's.
fn store() -> KubeApiServer {
    let stuck = json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                       "message": "ReplicaSet \"payments-6b7c8d9e0\" has timed out progressing.",
                       "lastUpdateTime": ago(20), "lastTransitionTime": ago(20)});
    let (checkout, api) = ("checkout-84f5d6c7b", "checkout-api-9a8b7c6d5");
    let objects = vec![
        deployment("store", "checkout", 3, 1, progressing()),
        replicaset("store", "checkout", "84f5d6c7b"),
        pod(
            "store",
            "checkout-84f5d6c7b-aaaaa",
            "checkout",
            checkout,
            healthy(),
        ),
        pod(
            "store",
            "checkout-84f5d6c7b-bbbbb",
            "checkout",
            checkout,
            not_ready(10),
        ),
        pod(
            "store",
            "checkout-84f5d6c7b-ccccc",
            "checkout",
            checkout,
            restarting(5, 4),
        ),
        deployment("store", "checkout-api", 1, 0, progressing()),
        replicaset("store", "checkout-api", "9a8b7c6d5"),
        pod(
            "store",
            "checkout-api-9a8b7c6d5-zzzzz",
            "checkout-api",
            api,
            crash_looping(9),
        ),
        deployment("store", "payments", 2, 2, stuck),
        replicaset("store", "payments", "6b7c8d9e0"),
    ];
    let probe = "Readiness probe failed: connection refused";
    let events = [
        warning(
            "store",
            "Pod",
            "checkout-84f5d6c7b-bbbbb",
            "Unhealthy",
            probe,
            30,
            1,
        ),
        warning(
            "store",
            "Pod",
            "checkout-api-9a8b7c6d5-zzzzz",
            "BackOff",
            "Back-off",
            50,
            1,
        ),
        warning(
            "store",
            "Deployment",
            "payments",
            "ProgressDeadlineExceeded",
            "Rollout timed out",
            3,
            3,
        ),
    ];
    start(objects, &events)
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_sli_is_available_over_desired_and_zero_when_stuck() {
    let server = store();
    let checks = Checks::new().await;
    let kubeconfig = kubeconfig(&server);

    let result = checks
        .deployment("sli.robot", &kubeconfig, "checkout")
        .await;
    let value = result.sli_value.expect("an SLI value");
    assert!((value - 1.0 / 3.0).abs() < 0.001, "{value}");
    assert_eq!(metric(&result, "available_replicas"), 1.0);
    assert_eq!(metric(&result, "desired_replicas"), 3.0);

    // Both replicas still serve from the old ReplicaSet, but the rollout is stuck.
    let result = checks
        .deployment("sli.robot", &kubeconfig, "payments")
        .await;
    assert_eq!(result.sli_value, Some(0.0));
    assert_eq!(metric(&result, "available_replicas"), 2.0);

    let result = checks.deployment("sli.robot", &kubeconfig, "nope").await;
    assert_eq!(result.sli_value, Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_runbook_names_unavailable_replicas_and_its_own_pods() {
    let server = store();
    let checks = Checks::new().await;
    let result = checks
        .deployment("runbook.robot", &kubeconfig(&server), "checkout")
        .await;
    assert_eq!(result.tasks.len(), 4, "{:#?}", result.tasks);

    let replicas = issue(
        &result,
        "Deployment `checkout` in namespace `store` has only 1/3 replicas available",
    );
    assert_eq!(replicas.severity, 3);
    assert_eq!(
        replicas.reproduce_hint,
        "kubectl get deployment checkout --namespace store --context prod-eu -o wide"
    );
    assert_eq!(
        replicas.task_name,
        "Check Replica Availability of Deployment `checkout`"
    );

    let not_ready = issue(
        &result,
        "Pod `checkout-84f5d6c7b-bbbbb` of deployment `checkout` is not ready",
    );
    assert_eq!(not_ready.severity, 3);
    assert!(
        not_ready.actual.contains("not ready for 10m"),
        "{not_ready:#?}"
    );
    let restarts = issue(
        &result,
        "Pod `checkout-84f5d6c7b-ccccc` of deployment `checkout` restarts often",
    );
    assert!(
        restarts.actual.contains("restarted 5 times"),
        "{restarts:#?}"
    );
    assert!(restarts.actual.contains("OOMKilled"), "{restarts:#?}");
    assert!(
        restarts.reproduce_hint.contains("--previous"),
        "{restarts:#?}"
    );
    issue(
        &result,
        "`checkout-84f5d6c7b-bbbbb` of deployment `checkout` in namespace `store` has 30 `Unhealthy`",
    );

    // checkout-api's crash-looping pod and its events belong to another deployment.
    let other = |i: &Issue| i.title.contains("checkout-api");
    assert!(!result.issues.iter().any(other), "{:#?}", titles(&result));
    assert_eq!(result.issues.len(), 4, "{:#?}", titles(&result));
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_runbook_reports_a_stuck_rollout_and_a_missing_deployment() {
    let server = store();
    let checks = Checks::new().await;
    let kubeconfig = kubeconfig(&server);

    let result = checks
        .deployment("runbook.robot", &kubeconfig, "payments")
        .await;
    let stuck = issue(
        &result,
        "Rollout of deployment `payments` in namespace `store` is stuck (ProgressDeadlineExceeded)",
    );
    assert_eq!(stuck.severity, 2);
    assert!(
        stuck.actual.contains("has timed out progressing"),
        "{stuck:#?}"
    );
    assert_eq!(
        stuck.reproduce_hint,
        "kubectl rollout status deployment/payments --namespace store --context prod-eu --timeout=10s"
    );
    issue(
        &result,
        "Deployment `payments` in namespace `store` has 3 `ProgressDeadlineExceeded`",
    );
    let replicas = |i: &Issue| i.title.contains("replicas available");
    assert!(
        !result.issues.iter().any(replicas),
        "{:#?}",
        titles(&result)
    );

    let result = checks
        .deployment("runbook.robot", &kubeconfig, "nope")
        .await;
    let missing = issue(
        &result,
        "Deployment `nope` does not exist in namespace `store`",
    );
    assert_eq!(missing.severity, 3);
    assert!(missing.actual.contains("not found"), "{missing:#?}");
    // Each of the four tasks says so, and nothing else is claimed.
    assert_eq!(result.issues.len(), 4, "{:#?}", titles(&result));
    assert!(result.issues.iter().all(|i| i.title == missing.title));
}

/// RW.CLI stages only a bundle's own files, so both bundles carry a copy of the same helpers;
/// the copies must not drift apart.
#[test]
fn both_bundles_carry_the_same_shared_helpers() {
    let shared = |bundle: &str, script: &str| {
        let path = workspace_root().join(format!("codecollections/codebundles/{bundle}/{script}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find("# --- Shared with").expect("start marker");
        let body_start = start
            + text[start..]
                .find("\n\n")
                .expect("blank line after the marker");
        let end = text
            .find("# --- End of the shared part.")
            .expect("end marker");
        text[body_start..end].to_string()
    };
    let namespace = shared("k8s-namespace-health", "namespace_health.py");
    let deployment = shared("k8s-deployment-health", "deployment_health.py");
    assert!(namespace.contains("def classify_pod("));
    assert!(
        namespace == deployment,
        "the shared part of namespace_health.py and deployment_health.py differ; change both together"
    );
}

//! Warm worker pools and leader election against the in-memory API server with its simulated
//! node: the leader keeps a Deployment of `steward worker` pods (this build, run as local
//! processes) per pool; runs of the pool's collection go to those workers instead of becoming
//! pods, under leases that lapse when a worker dies.

mod common;

use common::cluster::{NAMESPACE, RUNTIME_IMAGE as IMAGE, execute, run_spec, simulated_cluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use steward_model::run::{RunKind, RunResult, RunSpec, RunStatus};
use steward_runner::executor::Executor;
use steward_runner::kubernetes::election::{ElectionSettings, Elector};
use steward_runner::kubernetes::executor::KubernetesExecutor;
use steward_runner::kubernetes::handoff::Handoff;
use steward_runner::kubernetes::pools::{LeaseGrant, PoolConfig, Pools, pool_name};
use steward_runner::kubernetes::settings::PodSettings;
use steward_runner::kubernetes::{PoolsStart, start_pools};
use steward_runtime::SecretValue;
use steward_testkit::kube::KubeApiServer;
use steward_testkit::{wait_until_async, workspace_root};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const POOL_URL: &str = "https://example.com/pooled.git";

struct Cluster {
    _server: KubeApiServer,
    client: kube::Client,
    collection: tempfile::TempDir,
    _config: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let (server, client, dir) = simulated_cluster(&[]).await;
        // The pooled collection: the runtime's fixture bundle and one that takes a while.
        let collection = tempfile::tempdir().unwrap();
        let fixture = workspace_root()
            .join("crates/steward-runtime/tests/fixtures/collection/codebundles/secret-check");
        let bundles = collection.path().join("codebundles");
        std::fs::create_dir_all(bundles.join("secret-check")).unwrap();
        std::fs::copy(
            fixture.join("runbook.robot"),
            bundles.join("secret-check/runbook.robot"),
        )
        .unwrap();
        std::fs::create_dir_all(bundles.join("measure")).unwrap();
        std::fs::write(
            bundles.join("measure/sli.robot"),
            "*** Settings ***\nLibrary    RW.Core\n\n*** Tasks ***\nMeasure\n    RW.Core.Push Metric    0.75\n",
        )
        .unwrap();
        std::fs::create_dir_all(bundles.join("slow")).unwrap();
        std::fs::write(
            bundles.join("slow/runbook.robot"),
            "*** Tasks ***\nTake A While\n    Sleep    6s\n    Log    done\n",
        )
        .unwrap();
        Cluster {
            _server: server,
            client,
            collection,
            _config: dir,
        }
    }

    fn overrides(&self) -> std::collections::HashMap<String, PathBuf> {
        [(POOL_URL.to_string(), self.collection.path().to_path_buf())].into()
    }

    /// A runner replica: its endpoint, its part in the election, its pools and its executor.
    async fn runner(&self, identity: &str, pools: &[PoolConfig], settings: PodSettings) -> Runner {
        let settings = PodSettings {
            image: Some(IMAGE.into()),
            ..settings
        };
        let handoff = Handoff::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let pools = start_pools(PoolsStart {
            client: self.client.clone(),
            namespace: NAMESPACE.into(),
            settings: settings.clone(),
            handoff: handoff.clone(),
            runner_url: url.clone(),
            identity: identity.into(),
            configs: pools.to_vec(),
            overrides: self.overrides(),
            stop: stop.clone(),
        })
        .unwrap();
        tokio::spawn(pools.clone().serve(listener));
        let executor = KubernetesExecutor::new(
            self.client.clone(),
            NAMESPACE.into(),
            settings,
            url.clone(),
            identity.into(),
            handoff,
            self.overrides(),
        )
        .unwrap()
        .with_pools(pools.clone());
        Runner {
            pools,
            executor,
            stop,
            url,
        }
    }

    async fn deployment(&self, name: &str) -> Option<Deployment> {
        Api::<Deployment>::namespaced(self.client.clone(), NAMESPACE)
            .get_opt(name)
            .await
            .unwrap()
    }

    /// Waits for the Deployment to want and have `replicas` ready workers.
    async fn ready(&self, name: &str, replicas: i32) -> Deployment {
        wait_until_async(
            &format!("{name} with {replicas} ready workers"),
            Duration::from_secs(90),
            || async {
                self.deployment(name).await.filter(|d| {
                    let spec = d.spec.as_ref().and_then(|s| s.replicas);
                    let status = d.status.clone().unwrap_or_default();
                    spec == Some(replicas)
                        && status.ready_replicas.unwrap_or(0) == replicas
                        && status.replicas.unwrap_or(0) == replicas
                })
            },
        )
        .await
    }

    async fn run_pods(&self, run: Uuid) -> usize {
        Api::<Pod>::namespaced(self.client.clone(), NAMESPACE)
            .list(&ListParams::default().labels(&format!("steward.dev/run-id={run}")))
            .await
            .unwrap()
            .items
            .len()
    }
}

struct Runner {
    pools: Pools,
    executor: KubernetesExecutor,
    stop: CancellationToken,
    url: String,
}

fn pool(replicas: u32) -> PoolConfig {
    PoolConfig {
        repo_url: POOL_URL.into(),
        git_ref: None,
        replicas,
    }
}

fn settings() -> PodSettings {
    PodSettings {
        lease_duration_seconds: Some(3),
        pool_lease_ttl_seconds: Some(3),
        node_selector: [("kubernetes.io/os".to_string(), "linux".to_string())].into(),
        ..PodSettings::default()
    }
}

fn spec(bundle: &str, tasks: &[&str], secrets: &[&str]) -> RunSpec {
    RunSpec {
        slx: "pooled".into(),
        timeout_seconds: 120,
        ..run_spec(
            POOL_URL,
            &format!("codebundles/{bundle}/runbook.robot"),
            &[("SERVICE", "billing")],
            tasks,
            secrets,
        )
    }
}

/// Runs `run` while watching for pods of it; returns the result and when one first appeared.
async fn execute_watching_pods(
    cluster: &Cluster,
    executor: &dyn Executor,
    spec: &RunSpec,
    secrets: &[SecretValue],
    out: &Path,
) -> (RunResult, Option<Duration>) {
    let done = AtomicBool::new(false);
    let mut seen = None;
    let started = Instant::now();
    let watch = async {
        while !done.load(Ordering::SeqCst) {
            if seen.is_none() && cluster.run_pods(spec.run_id).await > 0 {
                seen = Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let run = async {
        let result = execute(executor, spec, secrets, out).await;
        done.store(true, Ordering::SeqCst);
        result
    };
    let (result, ()) = tokio::join!(run, watch);
    (result, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_keeps_a_pool_whose_workers_run_the_collections_runs() {
    let cluster = Cluster::start().await;
    let name = pool_name("steward", POOL_URL);
    let a = cluster.runner("runner-a", &[pool(2)], settings()).await;
    let deployment = cluster.ready(&name, 2).await;
    // The leader takes the location's SLIs; a replica that does not lead declines them.
    assert!(a.executor.takes_slis());
    let follower = cluster.runner("runner-f", &[pool(2)], settings()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!follower.executor.takes_slis());
    follower.stop.cancel();
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("steward.dev/pool"), Some(&name));
    assert_eq!(
        labels
            .get("app.kubernetes.io/component")
            .map(String::as_str),
        Some("worker")
    );
    let template = serde_json::to_value(&deployment.spec.as_ref().unwrap().template).unwrap();
    let container = &template["spec"]["containers"][0];
    assert_eq!(container["args"][0], "worker");
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        template["spec"]["nodeSelector"]["kubernetes.io/os"],
        "linux"
    );
    assert!(
        container["args"]
            .as_array()
            .unwrap()
            .contains(&json!(a.url)),
        "{container}"
    );

    // A run of the pooled collection: done by a worker, no pod of its own, same result as a pod.
    let dir = tempfile::tempdir().unwrap();
    let token = "tok-93e1a0c7d2b4";
    let run = spec(
        "secret-check",
        &["Use The Token For `${SERVICE}`"],
        &["api_token"],
    );
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: format!("{token}\n"),
    }];
    let out = dir.path().join("pool");
    let (by_worker, pod_seen) =
        execute_watching_pods(&cluster, &a.executor, &run, &secrets, &out).await;
    assert_eq!(pod_seen, None, "a pool run must not get a pod");
    assert_eq!(by_worker.status, RunStatus::Succeeded, "{by_worker:#?}");
    let report = std::fs::read_to_string(out.join("report.jsonl")).unwrap();
    assert!(
        report.contains("leaked: ********") && !report.contains(token),
        "{report}"
    );
    for artifact in &by_worker.artifacts {
        let len = std::fs::metadata(out.join(&artifact.name)).unwrap().len();
        assert_eq!(len, artifact.size, "{}", artifact.name);
    }
    let by_pod = execute(
        &KubernetesExecutor::new(
            cluster.client.clone(),
            NAMESPACE.into(),
            PodSettings {
                image: Some(IMAGE.into()),
                ..settings()
            },
            a.url.clone(),
            "runner-a".into(),
            a.pools.handoff().clone(),
            cluster.overrides(),
        )
        .unwrap(),
        &run,
        &secrets,
        &dir.path().join("pod"),
    )
    .await;
    assert_eq!(by_pod.status, by_worker.status, "{by_pod:#?}");
    let outline = |r: &RunResult| {
        (
            r.tasks
                .iter()
                .map(|t| (t.title.clone(), t.status))
                .collect::<Vec<_>>(),
            r.issues
                .iter()
                .map(|i| (i.title.clone(), i.severity))
                .collect::<Vec<_>>(),
            r.artifacts
                .iter()
                .map(|a| a.name.clone())
                .collect::<BTreeSet<_>>(),
        )
    };
    assert_eq!(outline(&by_worker), outline(&by_pod));

    // SLIs of a pooled collection run on the workers too.
    let mut sli = spec("measure", &[], &[]);
    sli.kind = RunKind::Sli;
    sli.interval_seconds = Some(60);
    sli.code_bundle.path_to_robot = Some("codebundles/measure/sli.robot".into());
    let (measured, pod_seen) =
        execute_watching_pods(&cluster, &a.executor, &sli, &[], &dir.path().join("sli")).await;
    assert_eq!(pod_seen, None, "a pooled SLI must not get a pod");
    assert_eq!(measured.status, RunStatus::Succeeded, "{measured:#?}");
    assert_eq!(measured.sli_value, Some(0.75), "{measured:#?}");

    // A new configuration (a rolling restart of the runners): the Deployment follows it.
    a.stop.cancel();
    let b = cluster.runner("runner-b", &[pool(1)], settings()).await;
    let scaled = cluster.ready(&name, 1).await;
    let args =
        serde_json::to_value(&scaled.spec.unwrap().template.spec.unwrap().containers[0].args)
            .unwrap();
    assert!(
        args.as_array().unwrap().contains(&json!(b.url)),
        "workers follow the new leader: {args}"
    );

    // A deleted Deployment comes back.
    let uid = scaled.metadata.uid.clone();
    Api::<Deployment>::namespaced(cluster.client.clone(), NAMESPACE)
        .delete(&name, &DeleteParams::background())
        .await
        .unwrap();
    let again = wait_until_async(
        "the Deployment to be recreated",
        Duration::from_secs(30),
        || async {
            cluster
                .deployment(&name)
                .await
                .filter(|d| d.metadata.uid != uid)
        },
    )
    .await;
    assert_eq!(again.spec.unwrap().replicas, Some(1));
    cluster.ready(&name, 1).await;
    b.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_dies_mid_run_hands_the_run_to_another_worker() {
    let cluster = Cluster::start().await;
    let name = pool_name("steward", POOL_URL);
    let runner = cluster.runner("runner-a", &[pool(2)], settings()).await;
    cluster.ready(&name, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), NAMESPACE);

    // Killed outright: its lease lapses and another worker runs the run again.
    // Stopped gracefully (SIGTERM): it hands the run back at once.
    for grace in [0, 10] {
        let run = spec("slow", &[], &[]);
        let holders = Mutex::new(Vec::<String>::new());
        let kill = async {
            let first = wait_until_async(
                "a worker to take the run",
                Duration::from_secs(30),
                || async { runner.pools.holder(run.run_id) },
            )
            .await;
            holders.lock().unwrap().push(first.clone());
            tokio::time::sleep(Duration::from_secs(2)).await;
            pods.delete(
                &first,
                &DeleteParams {
                    grace_period_seconds: Some(grace),
                    ..DeleteParams::default()
                },
            )
            .await
            .unwrap();
            let second = wait_until_async(
                "another worker to take the run",
                Duration::from_secs(30),
                || async { runner.pools.holder(run.run_id).filter(|h| *h != first) },
            )
            .await;
            holders.lock().unwrap().push(second);
        };
        let started = Instant::now();
        let out = dir.path().join(run.run_id.to_string());
        let (result, ()) = tokio::join!(execute(&runner.executor, &run, &[], &out), kill);
        assert_eq!(
            result.status,
            RunStatus::Succeeded,
            "grace {grace}: {result:#?}"
        );
        assert_eq!(result.tasks.len(), 1);
        let holders = holders.into_inner().unwrap();
        assert_eq!(holders.len(), 2);
        assert_ne!(holders[0], holders[1]);
        assert_eq!(cluster.run_pods(run.run_id).await, 0);
        eprintln!("grace {grace}: done in {:?}", started.elapsed());
        cluster.ready(&name, 2).await;
    }
    runner.stop.cancel();
}

/// A fake worker speaking the pool protocol over HTTP.
struct FakeWorker {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl FakeWorker {
    async fn lease(&self) -> LeaseGrant {
        loop {
            let response = self
                .http
                .post(format!("{}/lease", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"worker": "fake"}))
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                return response.json().await.unwrap();
            }
            assert_eq!(response.status(), 204);
        }
    }

    async fn renew(&self, grant: &LeaseGrant) -> u16 {
        self.http
            .post(format!("{}/leases/{}/renew", self.base, grant.lease_id))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn report(&self, grant: &LeaseGrant, result: &RunResult) -> u16 {
        let base = format!(
            "{}/v1/runs/{}",
            grant.launch.report_to, grant.launch.spec.run_id
        );
        let artifact = self
            .http
            .put(format!("{base}/artifacts/stdout.txt"))
            .bearer_auth(&grant.launch.token)
            .body("from the fake worker")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let posted = self
            .http
            .post(format!("{base}/result"))
            .bearer_auth(&grant.launch.token)
            .json(result)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(
            artifact / 100,
            posted / 100,
            "artifact {artifact}, result {posted}"
        );
        posted
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_lease_requeues_the_run_refuses_its_late_report_and_attempts_are_bounded() {
    let cluster = Cluster::start().await;
    let name = pool_name("steward", POOL_URL);
    let runner = cluster
        .runner(
            "runner-a",
            &[pool(0)],
            PodSettings {
                pool_lease_ttl_seconds: Some(1),
                pool_attempts: Some(2),
                ..settings()
            },
        )
        .await;
    let secret = wait_until_async("the pool's Secret", Duration::from_secs(30), || async {
        Api::<Secret>::namespaced(cluster.client.clone(), NAMESPACE)
            .get_opt(&name)
            .await
            .unwrap()
    })
    .await;
    let token = String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap();
    let worker = FakeWorker {
        http: reqwest::Client::new(),
        base: format!("{}/v1/pools/{name}", runner.url),
        token,
    };
    let wrong = worker
        .http
        .post(format!("{}/lease", worker.base))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let dir = tempfile::tempdir().unwrap();
    let secrets = [SecretValue {
        name: "api_token".into(),
        value: "s3cr3t".into(),
    }];

    let run = spec("secret-check", &[], &["api_token"]);
    let out = dir.path().join("one");
    let fake = async {
        let first = worker.lease().await;
        assert_eq!(first.attempt, 1);
        assert_eq!(
            first
                .launch
                .secret_values
                .get("api_token")
                .map(String::as_str),
            Some("s3cr3t")
        );
        assert_eq!(worker.renew(&first).await, 200);
        tokio::time::sleep(Duration::from_millis(2500)).await; // no renewal: the lease lapses
        assert_eq!(worker.renew(&first).await, 409);
        let late = RunResult::error(RunStatus::Failed, "late report", chrono::Utc::now());
        assert_eq!(worker.report(&first, &late).await, 409);
        let second = worker.lease().await;
        assert_eq!(second.attempt, 2);
        assert_eq!(second.launch.spec.run_id, run.run_id);
        assert_ne!(second.launch.token, first.launch.token);
        let mut good = RunResult::error(
            RunStatus::Succeeded,
            "from the second lease",
            chrono::Utc::now(),
        );
        good.error = None;
        good.warnings = vec!["second".into()];
        assert_eq!(worker.report(&second, &good).await, 204);
        // After the run ended, the first lease's report is still refused with 409.
        assert_eq!(worker.report(&first, &late).await, 409);
    };
    let (result, ()) = tokio::join!(execute(&runner.executor, &run, &secrets, &out), fake);
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    assert_eq!(result.warnings, ["second"]);
    assert_eq!(
        std::fs::read_to_string(out.join("stdout.txt")).unwrap(),
        "from the fake worker"
    );

    // Every hand-out lapses: after the second the run fails, saying why.
    let run = spec("secret-check", &[], &[]);
    let fake = async {
        for attempt in 1..=2 {
            let grant = worker.lease().await;
            assert_eq!(grant.attempt, attempt);
        }
    };
    let out = dir.path().join("two");
    let (result, ()) = tokio::join!(execute(&runner.executor, &run, &[], &out), fake);
    assert_eq!(result.status, RunStatus::Error);
    let error = result.error.unwrap();
    assert!(
        error.contains("2 times") && error.contains("fake"),
        "{error}"
    );
    runner.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_without_workers_sends_its_runs_to_pods_after_the_fallback_time() {
    let cluster = Cluster::start().await;
    let runner = cluster
        .runner(
            "runner-a",
            &[pool(0)],
            PodSettings {
                pool_fallback_seconds: Some(2),
                ..settings()
            },
        )
        .await;
    // Wait for the leadership, or the run would get a pod at once for another reason.
    wait_until_async("runner-a to lead", Duration::from_secs(20), || async {
        let lease = Api::<Lease>::namespaced(cluster.client.clone(), NAMESPACE)
            .get_opt("steward-runner-leader")
            .await
            .unwrap()?;
        (lease.spec?.holder_identity? == "runner-a").then_some(())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let run = spec("slow", &[], &[]);
    let (result, pod_seen) =
        execute_watching_pods(&cluster, &runner.executor, &run, &[], dir.path()).await;
    assert_eq!(result.status, RunStatus::Succeeded, "{result:#?}");
    let after = pod_seen.expect("the run should have had a pod");
    assert!(
        after >= Duration::from_secs(2),
        "a pod after {after:?}, before the fallback time"
    );
    runner.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_elector_leads_and_another_takes_over_when_it_stops_renewing() {
    let server = KubeApiServer::builder()
        .objects([
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        ])
        .start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let duration = Duration::from_secs(2);
    let elector = |identity: &str| {
        Elector::new(
            client.clone(),
            ElectionSettings {
                lease_name: "race".into(),
                namespace: NAMESPACE.into(),
                identity: identity.into(),
                lease_duration: duration,
            },
        )
    };
    let holder = || async {
        Api::<Lease>::namespaced(client.clone(), NAMESPACE)
            .get("race")
            .await
            .unwrap()
            .spec
            .unwrap()
    };
    let mut tasks = BTreeMap::new();
    let mut leading = BTreeMap::new();
    let stop = CancellationToken::new();
    for identity in ["a", "b"] {
        let e = elector(identity);
        leading.insert(identity, e.subscribe());
        tasks.insert(identity, tokio::spawn(e.run(stop.clone())));
    }
    // For a while, exactly one leads, and the Lease names it.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut leader = None;
    while Instant::now() < deadline {
        let now: Vec<&str> = leading
            .iter()
            .filter(|(_, rx)| *rx.borrow())
            .map(|(id, _)| *id)
            .collect();
        assert!(now.len() <= 1, "two leaders: {now:?}");
        if let Some(id) = now.first() {
            assert!(
                leader.is_none() || leader == Some(*id),
                "leadership moved without cause"
            );
            leader = Some(*id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = leader.expect("somebody leads");
    let follower = if leader == "a" { "b" } else { "a" };
    assert_eq!(holder().await.holder_identity.as_deref(), Some(leader));

    // The leader stops renewing (killed, no release): the follower waits a lease duration.
    tasks.remove(leader).unwrap().abort();
    let stopped = Instant::now();
    let mut rx = leading[follower].clone();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| *l))
        .await
        .expect("the follower takes over")
        .unwrap();
    let took = stopped.elapsed();
    assert!(
        took >= duration / 2 && took <= duration * 2 + Duration::from_millis(500),
        "took over after {took:?}"
    );
    let spec = holder().await;
    assert_eq!(spec.holder_identity.as_deref(), Some(follower));
    assert_eq!(spec.lease_transitions, Some(1));

    // A leader that stops cleanly releases the Lease: a newcomer needs no lease duration.
    let newcomer_stop = CancellationToken::new();
    let newcomer = elector("c");
    let mut newcomer_leads = newcomer.subscribe();
    let newcomer_task = tokio::spawn(newcomer.run(newcomer_stop.clone()));
    tokio::time::sleep(duration + Duration::from_secs(1)).await;
    assert!(
        !*newcomer_leads.borrow(),
        "the newcomer must not take a held Lease"
    );
    stop.cancel();
    tasks.remove(follower).unwrap().await.unwrap();
    let released = Instant::now();
    assert_eq!(holder().await.holder_identity, None);
    tokio::time::timeout(Duration::from_secs(5), newcomer_leads.wait_for(|l| *l))
        .await
        .expect("the newcomer takes over")
        .unwrap();
    assert!(
        released.elapsed() < duration,
        "took {:?} after the release",
        released.elapsed()
    );
    newcomer_stop.cancel();
    newcomer_task.await.unwrap();
}

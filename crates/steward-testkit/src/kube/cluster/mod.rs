//! The control plane and node behind the API: a scheduler, a kubelet that runs containers as
//! local processes, the Job, Deployment and ReplicaSet controllers, and the garbage collector.
//! They run on one thread of their own and work level-triggered, as the real ones do: every
//! pass reads the stored objects and writes through the store, so each step is a real update
//! (new resourceVersion, watch event). A pass runs right after any write and every 100 ms.

mod container;
mod deployments;
mod gc;
mod jobs;
mod kubelet;
pub(crate) mod logs;
pub(crate) mod printing;
mod scheduler;
mod volumes;

use super::objects::{now, random_suffix, text};
use super::resources::ResourceType;
use super::routes::Shared;
use super::status::ApiError;
use super::store::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The simulated node the kubelet runs pods on; see [`super::KubeApiServerBuilder::node`].
#[derive(Debug, Clone)]
pub struct SimulatedNode {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) max_grace_period: Option<Duration>,
    pub(crate) restart_backoff: Duration,
    pub(crate) image_pull_backoff: Duration,
}

impl Default for SimulatedNode {
    fn default() -> Self {
        SimulatedNode::named("steward-test-node")
    }
}

impl SimulatedNode {
    /// A node called `name`, labelled `kubernetes.io/os=linux`, `kubernetes.io/arch` and
    /// `kubernetes.io/hostname=<name>`.
    pub fn named(name: &str) -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let labels = [
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", arch),
            ("kubernetes.io/hostname", name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        SimulatedNode {
            name: name.into(),
            labels,
            max_grace_period: None,
            restart_backoff: Duration::from_millis(100),
            image_pull_backoff: Duration::from_millis(500),
        }
    }

    /// Sets (or replaces) one node label, which `nodeSelector` and node affinity match.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Removes a node label.
    pub fn without_label(mut self, key: &str) -> Self {
        self.labels.remove(key);
        self
    }

    /// Caps every grace period (`terminationGracePeriodSeconds`, a delete's
    /// `gracePeriodSeconds`) so a test need not wait 30 s for a process that ignores SIGTERM.
    pub fn max_grace_period(mut self, cap: Duration) -> Self {
        self.max_grace_period = Some(cap);
        self
    }

    /// The first wait before a container restarts (doubling up to 16 times it), 100 ms by
    /// default where a kubelet waits 10 s.
    pub fn restart_backoff(mut self, backoff: Duration) -> Self {
        self.restart_backoff = backoff;
        self
    }

    /// How long an image pull failure shows as `ErrImagePull` before `ImagePullBackOff`
    /// (500 ms by default); also how often a missing image is looked up again.
    pub fn image_pull_backoff(mut self, backoff: Duration) -> Self {
        self.image_pull_backoff = backoff;
        self
    }
}

/// How the kubelet "pulls" an image: the local programs its commands name and the
/// environment it sets (the image's `ENV`). Unregistered images fail to pull.
#[derive(Debug, Clone, Default)]
pub struct ImageRun {
    /// A command's program (`steward`, or a path such as `/usr/local/bin/steward`, matched
    /// whole, then by file name) → the local executable to run. Programs not mapped are
    /// looked up on the host's `PATH` (`sh`, `sleep`).
    pub program_map: BTreeMap<String, PathBuf>,
    /// Environment the image sets; the container's `env` overrides it.
    pub extra_env: BTreeMap<String, String>,
    /// The image's entrypoint, run when a container gives no `command`.
    pub entrypoint: Vec<String>,
}

impl ImageRun {
    pub fn new() -> Self {
        ImageRun::default()
    }

    /// Maps a program of the image to a local executable.
    pub fn program(mut self, name: &str, local: impl Into<PathBuf>) -> Self {
        self.program_map.insert(name.into(), local.into());
        self
    }

    /// Sets one environment variable of the image.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.insert(key.into(), value.into());
        self
    }

    /// Sets the image's entrypoint.
    pub fn entrypoint(mut self, argv: &[&str]) -> Self {
        self.entrypoint = argv.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// (namespace, pod, container).
pub(crate) type ContainerKey = (String, String, String);

/// What the log endpoint and tests may see of a container the kubelet started.
#[derive(Debug, Clone)]
pub(crate) struct ContainerView {
    pub log: PathBuf,
    pub previous: Option<PathBuf>,
    pub pid: u32,
    pub exit: Arc<Mutex<Option<i32>>>,
}

/// The node's state shared with the HTTP side.
pub(crate) struct NodeState {
    pub config: SimulatedNode,
    pub images: Mutex<HashMap<String, ImageRun>>,
    pub containers: Mutex<HashMap<ContainerKey, ContainerView>>,
    /// The API server's port, for `KUBERNETES_SERVICE_PORT`.
    pub api_port: u16,
    /// The token written where a pod projects a service account token.
    pub token: String,
}

impl NodeState {
    pub fn new(config: SimulatedNode, images: HashMap<String, ImageRun>, token: &str) -> Self {
        NodeState {
            config,
            images: Mutex::new(images),
            containers: Mutex::new(HashMap::new()),
            api_port: 0,
            token: token.into(),
        }
    }

    pub fn container(&self, key: &ContainerKey) -> Option<ContainerView> {
        self.containers
            .lock()
            .expect("containers lock")
            .get(key)
            .cloned()
    }

    /// The Node object the simulated node is registered as.
    pub fn node_object(&self) -> Value {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.config.name, "labels": self.config.labels},
            "spec": {},
            "status": {
                "capacity": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110"},
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.config.name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status", "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                "nodeInfo": {"kubeletVersion": "v1.33.0-steward-testkit", "operatingSystem": std::env::consts::OS,
                             "architecture": self.config.labels.get("kubernetes.io/arch"), "containerRuntimeVersion": "steward-testkit://local-processes"},
            },
        })
    }
}

/// The thread running the control loops; dropping it kills every container process.
pub(crate) struct Simulation {
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulation {
    pub fn start(shared: Arc<Shared>, node: Arc<NodeState>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::channel();
        let thread = {
            let stop = stop.clone();
            let wake = wake.clone();
            std::thread::Builder::new()
                .name("kube-simulated-node".into())
                .spawn(move || run(&shared, node, &stop, &woken, wake))
                .expect("spawn the simulated node thread")
        };
        Simulation {
            stop,
            wake,
            thread: Some(thread),
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const TICK: Duration = Duration::from_millis(100);

fn run(
    shared: &Shared,
    node: Arc<NodeState>,
    stop: &AtomicBool,
    woken: &mpsc::Receiver<()>,
    wake: mpsc::Sender<()>,
) {
    let mut kubelet = kubelet::Kubelet::new(node.clone(), wake);
    let mut jobs = jobs::JobController::default();
    let mut last_seen = u64::MAX;
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let woke = woken.recv_timeout(Duration::from_millis(10)).is_ok();
        while woken.try_recv().is_ok() {}
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut store = shared.store.lock().expect("store lock");
        let revision = store.revision();
        if !woke && revision == last_seen && Instant::now() < next_tick {
            continue;
        }
        // Our own writes move the revision on, so another pass follows until one changes nothing.
        last_seen = revision;
        next_tick = Instant::now() + TICK;
        gc::sync(&mut store);
        jobs.sync(&mut store);
        deployments::sync(&mut store);
        scheduler::sync(&mut store, &node.config);
        kubelet.sync(&mut store);
    }
    kubelet.shutdown();
}

/// The built-in resource `plural` of `group`.
pub(crate) fn resource(store: &Store, group: &str, plural: &str) -> ResourceType {
    store
        .registry
        .resource(group, plural)
        .cloned()
        .unwrap_or_else(|| panic!("{group}/{plural} is a built-in resource"))
}

fn preferred(rt: &ResourceType) -> String {
    rt.versions.first().cloned().unwrap_or_else(|| "v1".into())
}

/// Writes `status` into the stored `object` unless it already has it.
pub(crate) fn write_status(
    store: &mut Store,
    group: &str,
    plural: &str,
    object: &Value,
    status: Value,
) -> Option<Value> {
    if object.get("status") == Some(&status) {
        return None;
    }
    let rt = resource(store, group, plural);
    let mut next = object.clone();
    next["status"] = status;
    next["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    let key = (
        text(object, "/metadata/namespace").to_string(),
        text(object, "/metadata/name").to_string(),
    );
    match store.update(&rt, &preferred(&rt), (&key.0, &key.1), next, true, false) {
        Ok(updated) => Some(updated),
        Err(error) => {
            tracing::debug!(?error.message, "Simulated status write skipped.");
            None
        }
    }
}

/// Replaces an object's spec and metadata (not its status), as a controller's update.
pub(crate) fn write(store: &mut Store, group: &str, plural: &str, next: Value) -> Option<Value> {
    let rt = resource(store, group, plural);
    let namespace = text(&next, "/metadata/namespace").to_string();
    let name = text(&next, "/metadata/name").to_string();
    let mut next = next;
    next["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    store
        .update(
            &rt,
            &preferred(&rt),
            (&namespace, &name),
            next,
            false,
            false,
        )
        .inspect_err(|error| tracing::debug!(?error.message, "Simulated write skipped."))
        .ok()
}

/// Creates an object through admission, as a controller would.
pub(crate) fn create(
    store: &mut Store,
    group: &str,
    plural: &str,
    namespace: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let rt = resource(store, group, plural);
    store.create(&rt, &preferred(&rt), Some(namespace), body, false)
}

/// Deletes an object with a propagation policy, as a controller would.
pub(crate) fn delete(store: &mut Store, group: &str, plural: &str, object: &Value, policy: &str) {
    let rt = resource(store, group, plural);
    let _ = store.delete(
        &rt,
        text(object, "/metadata/namespace"),
        text(object, "/metadata/name"),
        &json!({"propagationPolicy": policy}),
        false,
    );
}

/// Records an Event about `object`, as `kubectl describe` shows them.
pub(crate) fn event(
    store: &mut Store,
    object: &Value,
    warning: bool,
    reason: &str,
    message: &str,
    component: &str,
) {
    let namespace = text(object, "/metadata/namespace").to_string();
    let name = text(object, "/metadata/name");
    let at = now();
    let body = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{}", random_suffix()), "namespace": namespace},
        "involvedObject": {
            "apiVersion": object["apiVersion"], "kind": object["kind"], "namespace": namespace,
            "name": name, "uid": object["metadata"]["uid"],
        },
        "reason": reason, "message": message,
        "type": if warning { "Warning" } else { "Normal" },
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
    });
    let _ = create(store, "", "events", &namespace, body);
}

/// An owner reference naming `owner` as the controller.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// The objects of `plural` in `namespace` whose controller is `owner`.
pub(crate) fn owned(
    store: &Store,
    group: &str,
    plural: &str,
    namespace: &str,
    owner: &Value,
) -> Vec<Value> {
    let uid = text(owner, "/metadata/uid");
    store
        .list(group, plural, Some(namespace))
        .map(|(_, o)| o)
        .filter(|o| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| text(r, "/uid") == uid && r["controller"] == json!(true))
                })
        })
        .cloned()
        .collect()
}

pub(crate) fn is_deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

pub(crate) fn phase(pod: &Value) -> &str {
    text(pod, "/status/phase")
}

/// A pod counted as running by controllers: not finished and not being deleted.
pub(crate) fn is_active(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

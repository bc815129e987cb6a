//! An in-memory Kubernetes API server on loopback that kube-rs and the real `kubectl` talk to.
//!
//! It keeps the semantics clients depend on: one global `resourceVersion` counter, lists in
//! (namespace, name) order with `limit`/`continue` pages, label and field selectors, watches
//! that replay from a resourceVersion (410 once it is too old), `Status` errors, a `status`
//! subresource, finalizers, CRDs that register their resource in discovery, and bearer tokens
//! with per-(verb, resource) rules. Server-side apply and strategic merge are applied as JSON
//! merge patches (no field ownership), and a continued list reads the current objects rather
//! than a snapshot (its resourceVersion is the first page's). Creates pass ResourceQuota
//! admission (`pods`, `count/<resource>`, `requests.*`, `limits.*`, refused with the real 403
//! `exceeded quota: …` message; `status.used` kept current) after LimitRange defaults.
//!
//! # The simulated node
//!
//! [`KubeApiServerBuilder::node`] adds what the kubelet and the controllers do, on a thread of
//! their own, every step a real write (new resourceVersion, watch event):
//!
//! - **Scheduler**: a pending pod is bound to the node (`spec.nodeName`, `PodScheduled`) when
//!   its `nodeSelector` and required node affinity match the node's labels
//!   ([`SimulatedNode::label`]; `kubernetes.io/os=linux` by default), else it stays Pending
//!   with `PodScheduled=False`, reason `Unschedulable`. Resources and taints are not checked.
//! - **Kubelet**: a bound pod shows `ContainerCreating`, then each container runs as a local
//!   process (`command` + `args`, or the image's entrypoint) and the pod goes Running
//!   (`startedAt`, Ready) and, as `restartPolicy` says, Succeeded/Failed (`terminated` with
//!   `exitCode`, `Completed`/`Error`) or restarts (`restartCount`, `CrashLoopBackOff` with a
//!   short backoff). Images must be registered ([`KubeApiServer::register_image`],
//!   [`ImageRun`]), which maps the programs a command names to local executables; anything
//!   else waits in `ErrImagePull`, then `ImagePullBackOff`, with Events as from a kubelet.
//!   `activeDeadlineSeconds` fails the pod with `DeadlineExceeded`. Init containers, probes,
//!   resource limits and `securityContext` are not simulated; every pod's IP is 127.0.0.1.
//! - **Environment**: `env` (values with `$(VAR)`, `secretKeyRef`, `configMapKeyRef`,
//!   `fieldRef`), `envFrom`, the image's env, `HOSTNAME`, `KUBERNETES_SERVICE_HOST/PORT` (this
//!   server), `HOME` in the pod's directory, and the host's `PATH`; nothing else is inherited.
//! - **Volumes and mounts**: `secret`, `configMap`, `downwardAPI` and `projected` volumes are
//!   written into a temporary directory per pod once at start (`items`, `defaultMode`,
//!   `mode`), `emptyDir` is a fresh directory, `hostPath` the host path; a service account
//!   token source gets [`KubeApiServer::ADMIN_TOKEN`]. A process cannot see `/etc/foo`, so
//!   each `volumeMounts[].mountPath` maps to the volume's local directory (or its `subPath`):
//!   an env value, `args`/`command` element or `workingDir` that starts with a mount path (or
//!   is `key=<path>`) is rewritten to the local path, and `STEWARD_TESTKIT_MOUNTS` holds the
//!   whole map as JSON (mountPath → local path) for programs that build paths themselves.
//!   Paths inside a `sh -c` script are not rewritten: pass them as arguments or env values.
//!   A `workingDir` outside any mount is created under the pod's stand-in root filesystem.
//! - **Logs**: stdout and stderr go to one log per container run, served at
//!   `pods/{name}/log` (`container`, `previous`, `tailLines`, `limitBytes`, `follow`), so
//!   `kubectl logs` works.
//! - **Deletion**: a pod on the node is deleted gracefully: it keeps a `deletionTimestamp`
//!   while its processes get SIGTERM, then SIGKILL after `terminationGracePeriodSeconds`
//!   (or the delete's `gracePeriodSeconds`; capped by [`SimulatedNode::max_grace_period`]),
//!   and is removed once they are gone. Each container is a process group, so whatever it
//!   started goes too (unless it left the group); dropping the server kills them all.
//! - **Controllers**: a `batch/v1` Job runs its pods (`job-name`, `controller-uid` labels,
//!   owner reference) up to `completions`, retries up to `backoffLimit`, honours
//!   `activeDeadlineSeconds`, `suspend` and `ttlSecondsAfterFinished`, and reports `active`,
//!   `succeeded`, `failed` and `Complete`/`Failed` conditions. An `apps/v1` Deployment owns a
//!   ReplicaSet per pod template (`<deployment>-<pod-template-hash>`, older ones scaled to
//!   zero at once), which keeps `replicas` pods (`<replicaset>-<random>`) and replaces those
//!   deleted or finished; both report replica counts, `observedGeneration` and conditions.
//! - **Garbage collection**: dependents whose owners are all gone are deleted;
//!   `propagationPolicy: Foreground` deletes dependents before the owner, `Orphan` (the
//!   default for Jobs, as on a real server) strips their owner references. Fixture objects
//!   whose owners are not in the store are collected too, as on a cluster.
//!
//! Without the node the server behaves as before: pods stay as stored and deletes are
//! immediate.
//!
//! ```no_run
//! use steward_testkit::kube::{Access, KubeApiServer, KubeContext, write_kubeconfig};
//!
//! let server = KubeApiServer::from_yaml(
//!     "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop, labels: {app: web}}\n",
//! )
//! .unwrap();
//! server.set_token("restricted", Access::deny(&[("list", "namespaces")]));
//! let dir = tempfile::tempdir().unwrap();
//! let kubeconfig = dir.path().join("config");
//! write_kubeconfig(
//!     &kubeconfig,
//!     &[
//!         server.context("prod", KubeApiServer::ADMIN_TOKEN),
//!         server.context("restricted", "restricted"),
//!         KubeContext::unreachable("gone"),
//!     ],
//! )
//! .unwrap();
//! assert_eq!(server.requests("list", "pods"), 0);
//! ```
//!
//! A pod run for real on the simulated node:
//!
//! ```no_run
//! use serde_json::json;
//! use std::time::Duration;
//! use steward_testkit::kube::{ImageRun, KubeApiServer, SimulatedNode};
//!
//! let server = KubeApiServer::builder()
//!     .node(SimulatedNode::default().max_grace_period(Duration::from_secs(2)))
//!     .image("example.invalid/steward/runtime:1", ImageRun::new().program("steward", "/path/to/target/debug/steward"))
//!     .start();
//! server
//!     .apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "default"},
//!                   "spec": {"restartPolicy": "Never", "containers": [{"name": "main",
//!                            "image": "example.invalid/steward/runtime:1", "command": ["steward", "--version"]}]}}))
//!     .unwrap();
//! steward_testkit::wait_until("the pod to finish", Duration::from_secs(20), || {
//!     server.get("v1", "pods", Some("default"), "w").filter(|p| p["status"]["phase"] == "Succeeded")
//! });
//! ```

mod access;
mod cluster;
mod deletion;
mod discovery;
mod kubeconfig;
mod list;
mod objects;
mod patch;
mod quota;
mod resources;
mod routes;
mod seed;
mod selector;
mod status;
mod store;
mod tls;
mod watch;

pub use access::{Access, Rule};
pub use cluster::{ImageRun, SimulatedNode};
pub use kubeconfig::{KubeContext, kubeconfig_yaml, write_kubeconfig};
pub use seed::SeedError;

use access::Gate;
use axum::serve::ListenerExt;
use cluster::{NodeState, Simulation};
use resources::split_api_version;
use routes::Shared;
use seed::SeedObject;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;

/// Options and fixtures for a [`KubeApiServer`]; see [`KubeApiServer::builder`].
#[derive(Debug)]
pub struct KubeApiServerBuilder {
    seeds: Vec<SeedObject>,
    openshift: bool,
    history_limit: usize,
    bookmark_interval: Duration,
    tokens: Vec<(String, Access)>,
    tls: bool,
    node: Option<SimulatedNode>,
    images: HashMap<String, ImageRun>,
}

impl Default for KubeApiServerBuilder {
    fn default() -> Self {
        KubeApiServerBuilder {
            seeds: Vec::new(),
            openshift: false,
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
            tokens: Vec::new(),
            tls: false,
            node: None,
            images: HashMap::new(),
        }
    }
}

impl KubeApiServerBuilder {
    /// Adds one object to store at start.
    pub fn object(mut self, object: Value) -> Self {
        let origin = format!("seed object {}", self.seeds.len() + 1);
        self.seeds.push(SeedObject {
            origin,
            value: object,
        });
        self
    }

    /// Adds objects to store at start.
    pub fn objects(self, objects: impl IntoIterator<Item = Value>) -> Self {
        objects.into_iter().fold(self, Self::object)
    }

    /// Adds the objects of multi-document YAML (`kind: List` documents are flattened).
    pub fn yaml(mut self, text: &str) -> Result<Self, SeedError> {
        self.seeds.extend(seed::parse_yaml(text, "yaml fixture")?);
        Ok(self)
    }

    /// Adds the objects of every `.yaml`, `.yml` and `.json` file under `dir`.
    pub fn fixture_dir(mut self, dir: impl AsRef<Path>) -> Result<Self, SeedError> {
        self.seeds.extend(seed::read_dir(dir.as_ref())?);
        Ok(self)
    }

    /// Serves OpenShift's `project.openshift.io/v1` projects, one mirroring each namespace.
    /// Seeding any `project.openshift.io` object turns this on as well.
    pub fn openshift(mut self, enabled: bool) -> Self {
        self.openshift = enabled;
        self
    }

    /// How many changes are kept for watches to replay (1000 by default); a watch or a
    /// `continue` token from before them gets `410`.
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// How often a watch that allows bookmarks gets one (every second by default).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Serves HTTPS with a fresh self-signed certificate, which [`KubeApiServer::context`]
    /// puts in the kubeconfig. Needed for kubectl to send tokens: client-go sends credentials
    /// only over TLS (kube-rs sends them over plain HTTP too).
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// Accepts bearer token `token` with `access`.
    pub fn token(mut self, token: &str, access: Access) -> Self {
        self.tokens.push((token.into(), access));
        self
    }

    /// Runs a simulated node: a scheduler, a kubelet that runs pods' containers as local
    /// processes, the Job, Deployment and ReplicaSet controllers and the garbage collector
    /// (see the module documentation). Without it pods stay as stored.
    pub fn node(mut self, node: SimulatedNode) -> Self {
        self.node = Some(node);
        self
    }

    /// Registers an image with the simulated node at start; see [`KubeApiServer::register_image`].
    pub fn image(mut self, image: &str, run: ImageRun) -> Self {
        self.images.insert(image.into(), run);
        self
    }

    /// Stores the fixtures (CRDs first, then namespaces, then the rest; a missing namespace
    /// is created) and starts serving. An object that cannot be stored is skipped, logged and
    /// listed by [`KubeApiServer::seed_problems`].
    ///
    /// # Panics
    /// When no loopback port can be bound or the runtime thread cannot start.
    pub fn start(mut self) -> KubeApiServer {
        let openshift = self.openshift
            || self.seeds.iter().any(|s| {
                s.value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("project.openshift.io/"))
            });
        let mut store = Store::new(openshift, self.history_limit);
        self.seeds.sort_by_key(SeedObject::rank);
        let mut seed_problems = Vec::new();
        for seed in self.seeds {
            if let Err(message) = store.upsert(seed.value.clone()) {
                let problem = SeedError::Object {
                    object: seed.describe(),
                    origin: seed.origin,
                    message,
                };
                tracing::warn!(error = %problem, "Fixture object skipped.");
                seed_problems.push(problem);
            }
        }
        let mut gate = Gate::new(KubeApiServer::ADMIN_TOKEN);
        gate.tokens.extend(self.tokens);

        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a loopback port for the Kubernetes test API");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let node = self.node.map(|config| {
            let mut node = NodeState::new(config, self.images, KubeApiServer::ADMIN_TOKEN);
            node.api_port = addr.port();
            store.kubelet_node = Some(node.config.name.clone());
            store
                .upsert(node.node_object())
                .expect("the simulated Node object is valid");
            Arc::new(node)
        });
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            gate: Mutex::new(gate),
            bookmark_interval: self.bookmark_interval,
            address: addr.to_string(),
            node: node.clone(),
        });
        let simulation = node.map(|node| Simulation::start(shared.clone(), node));
        let app = routes::router(shared.clone());
        let (certificate, tls_config) = match self.tls {
            true => {
                let (pem, config) = tls::self_signed();
                (Some(pem), Some(config))
            }
            false => (None, None),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kube-api-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the Kubernetes test API");
                // Dropping the runtime afterwards ends open watches and connections.
                runtime.block_on(async move {
                    match tls_config {
                        None => {
                            // Like a real API server (Go's net/http), replies go out
                            // without Nagle's delay.
                            let listener = tokio::net::TcpListener::from_std(listener)
                                .expect("tokio listener")
                                .tap_io(|tcp| {
                                    let _ = tcp.set_nodelay(true);
                                });
                            tokio::select! {
                                _ = axum::serve(listener, app).into_future() => {}
                                _ = stopped => {}
                            }
                        }
                        Some(config) => {
                            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
                            let server = axum_server::from_tcp_rustls(listener, config)
                                .expect("TLS listener")
                                .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor));
                            tokio::select! {
                                _ = server.serve(app.into_make_service()) => {}
                                _ = stopped => {}
                            }
                        }
                    }
                });
            })
            .expect("spawn the Kubernetes test API thread");
        tracing::debug!(%addr, "Kubernetes test API started.");
        KubeApiServer {
            addr,
            shared,
            seed_problems,
            certificate,
            simulation,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// The running server; dropping it stops it.
pub struct KubeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    seed_problems: Vec<SeedError>,
    /// The self-signed certificate (PEM) when serving HTTPS.
    certificate: Option<String>,
    /// The simulated node's control loops; dropped first, which kills its processes.
    simulation: Option<Simulation>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeApiServer {
    /// The bearer token every server accepts with [`Access::AllowAll`].
    pub const ADMIN_TOKEN: &'static str = "steward-test-admin";

    /// A builder for fixtures, tokens and options.
    pub fn builder() -> KubeApiServerBuilder {
        KubeApiServerBuilder::default()
    }

    /// Starts a server holding `objects` (plus the `default` namespace every cluster has).
    ///
    /// # Panics
    /// As [`KubeApiServerBuilder::start`].
    pub fn start(objects: &[Value]) -> Self {
        Self::builder().objects(objects.iter().cloned()).start()
    }

    /// Starts a server holding the objects of multi-document YAML.
    pub fn from_yaml(text: &str) -> Result<Self, SeedError> {
        Ok(Self::builder().yaml(text)?.start())
    }

    /// Starts a server holding the objects of the fixture files under `dir`.
    pub fn from_fixture_dir(dir: impl AsRef<Path>) -> Result<Self, SeedError> {
        Ok(Self::builder().fixture_dir(dir)?.start())
    }

    /// `http://127.0.0.1:<port>`, or `https://` with [`KubeApiServerBuilder::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The server's certificate (PEM) when it serves HTTPS.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate.as_deref()
    }

    /// The fixture objects that were skipped, and why.
    pub fn seed_problems(&self) -> &[SeedError] {
        &self.seed_problems
    }

    /// A kubeconfig context on this server with `token` (and its certificate when on HTTPS).
    pub fn context(&self, name: &str, token: &str) -> KubeContext {
        let mut context = KubeContext::new(name, &self.url(), token);
        context.certificate_authority = self.certificate.clone();
        context
    }

    /// Writes a kubeconfig with one context, `steward-test`, using [`Self::ADMIN_TOKEN`].
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        write_kubeconfig(path, &[self.context("steward-test", Self::ADMIN_TOKEN)])
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.shared.gate.lock().expect("gate lock")
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }

    /// Accepts (or changes what is allowed to) bearer token `token`. Unknown tokens get 401.
    pub fn set_token(&self, token: &str, access: Access) {
        self.gate().tokens.insert(token.into(), access);
    }

    /// What requests without credentials may do ([`Access::AllowAll`] at first).
    pub fn set_anonymous(&self, access: Access) {
        self.gate().anonymous = access;
    }

    /// Answers every request for exactly `path` (no query) with a `Status` of HTTP `code`,
    /// after authorization, until [`Self::clear_faults`]. Note that kube-rs retries 429, 503
    /// and 504 with backoff for a long while; 500 fails at once.
    pub fn fail_path(&self, path: &str, code: u16) {
        self.gate().faults.push((path.into(), code));
    }

    /// Answers the next `lists` list requests that carry a `continue` token with 410 Expired,
    /// as the real server does once etcd compacted the revision the token was issued at
    /// (every five minutes by default, so a slow paginated list of a big cluster meets it).
    pub fn expire_continue_tokens(&self, lists: usize) {
        self.gate().expire_continues = lists;
    }

    /// Removes the failures set by [`Self::fail_path`].
    pub fn clear_faults(&self) {
        self.gate().faults.clear();
    }

    /// How many requests were made for `verb` on `resource` (`list`/`pods`, `get`/`pods/status`,
    /// `watch`/`deployments`), denied ones included. Discovery counts as `get` on its path.
    pub fn requests(&self, verb: &str, resource: &str) -> usize {
        self.gate()
            .counts
            .get(&(verb.to_string(), resource.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every request count, keyed by (verb, resource or path).
    pub fn request_counts(&self) -> BTreeMap<(String, String), usize> {
        self.gate().counts.clone()
    }

    /// Sets every request count back to zero.
    pub fn reset_counts(&self) {
        self.gate().counts.clear();
    }

    /// The current (newest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store().revision()
    }

    /// Stores `object` as a fixture is stored (creating or replacing it, keeping its status),
    /// as a controller or kubelet would change it; watches see the change.
    pub fn apply(&self, object: Value) -> Result<Value, SeedError> {
        let seed = SeedObject {
            origin: "KubeApiServer::apply".into(),
            value: object,
        };
        self.store()
            .upsert(seed.value.clone())
            .map_err(|message| SeedError::Object {
                object: seed.describe(),
                origin: seed.origin,
                message,
            })
    }

    /// The stored object, if any (`namespace` is `None` for cluster-scoped resources).
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, _) = split_api_version(api_version);
        self.store()
            .get(group, plural, namespace.unwrap_or_default(), name)
            .cloned()
    }

    /// The stored objects of a resource in one namespace or all, in (namespace, name) order.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let (group, _) = split_api_version(api_version);
        self.store()
            .list(group, plural, namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    fn node(&self) -> &NodeState {
        self.shared.node.as_deref().expect(
            "this KubeApiServer runs no simulated node: start it with KubeApiServer::builder().node(SimulatedNode::default())",
        )
    }

    /// The name of the simulated node pods are scheduled to.
    ///
    /// # Panics
    /// When the server was started without [`KubeApiServerBuilder::node`].
    pub fn node_name(&self) -> &str {
        &self.node().config.name
    }

    /// Lets the kubelet "pull" `image` (as written in pod specs, tag included): containers
    /// using it run `run`'s local programs. A pod waiting in `ImagePullBackOff` for it starts
    /// at its next retry.
    ///
    /// # Panics
    /// When the server was started without [`KubeApiServerBuilder::node`].
    pub fn register_image(&self, image: &str, run: ImageRun) {
        self.node()
            .images
            .lock()
            .expect("images lock")
            .insert(image.into(), run);
    }

    /// The process id of the newest process the kubelet started for `container` of a pod
    /// (it may have ended since), or `None` when it started none.
    pub fn container_pid(&self, namespace: &str, pod: &str, container: &str) -> Option<u32> {
        self.shared
            .node
            .as_deref()?
            .container(&(namespace.into(), pod.into(), container.into()))
            .map(|c| c.pid)
    }

    /// Deletes an object as the API would (finalizers hold it with a deletionTimestamp);
    /// returns it, or `None` when there was no such object.
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = split_api_version(api_version);
        let mut store = self.store();
        let rt = store.registry.get(group, version, plural)?.clone();
        store
            .delete(
                &rt,
                namespace.unwrap_or_default(),
                name,
                &Value::Null,
                false,
            )
            .ok()
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        drop(self.simulation.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

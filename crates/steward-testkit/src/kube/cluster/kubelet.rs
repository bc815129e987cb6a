//! The kubelet of the simulated node: takes the pods bound to it through the real status
//! shapes (Pending with `ContainerCreating`, `ErrImagePull`/`ImagePullBackOff` or
//! `CreateContainerConfigError`; Running; Succeeded or Failed with `terminated` states),
//! restarts containers as `restartPolicy` says, enforces `activeDeadlineSeconds`, and stops a
//! deleted pod's processes (SIGTERM, SIGKILL after the grace period) before removing it.

use super::super::objects::{now, text};
use super::super::store::Store;
use super::container::{self, Proc};
use super::scheduler::set_condition;
use super::{ContainerView, ImageRun, NodeState, event, resource, volumes, write_status};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Every pod shares the node's (loopback) address: its processes run on this machine.
pub(crate) const POD_IP: &str = "127.0.0.1";

#[derive(Debug, Clone)]
struct Terminated {
    exit_code: i32,
    reason: String,
    message: Option<String>,
    started_at: String,
    finished_at: String,
}

#[derive(Debug, Clone)]
enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

struct ContainerRun {
    name: String,
    image: String,
    spec: Value,
    state: State,
    last: Option<Terminated>,
    restarts: u32,
    proc: Option<Proc>,
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StopCause {
    Deleted,
    Deadline,
}

struct PodRun {
    namespace: String,
    name: String,
    dir: PathBuf,
    start_time: String,
    started: Instant,
    volumes: Option<BTreeMap<String, PathBuf>>,
    mount_error: Option<String>,
    containers: Vec<ContainerRun>,
    /// Condition type → (status, reason, lastTransitionTime), so times only move on a change.
    conditions: HashMap<&'static str, (bool, String, String)>,
    stopping: Option<(StopCause, Instant)>,
    deadline_exceeded: bool,
    terminal: bool,
}

pub(crate) struct Kubelet {
    node: Arc<NodeState>,
    wake: mpsc::Sender<()>,
    root: tempfile::TempDir,
    pods: HashMap<String, PodRun>,
}

fn exit_reason(code: i32) -> &'static str {
    if code == 0 { "Completed" } else { "Error" }
}

impl Kubelet {
    pub fn new(node: Arc<NodeState>, wake: mpsc::Sender<()>) -> Self {
        Kubelet {
            node,
            wake,
            root: tempfile::Builder::new()
                .prefix("steward-kubelet-")
                .tempdir()
                .expect("a temporary directory for the simulated kubelet"),
            pods: HashMap::new(),
        }
    }

    fn capped(&self, seconds: i64) -> Duration {
        let grace = Duration::from_secs(seconds.max(0) as u64);
        self.node
            .config
            .max_grace_period
            .map_or(grace, |cap| grace.min(cap))
    }

    pub fn sync(&mut self, store: &mut Store) {
        let node = self.node.config.name.clone();
        let pods: Vec<Value> = store
            .list("", "pods", None)
            .map(|(_, p)| p)
            .filter(|p| text(p, "/spec/nodeName") == node)
            .cloned()
            .collect();
        let live: HashSet<&str> = pods.iter().map(|p| text(p, "/metadata/uid")).collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !live.contains(uid.as_str()))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(run) = self.pods.remove(&uid) {
                self.forget(run);
            }
        }
        for pod in pods {
            let uid = text(&pod, "/metadata/uid").to_string();
            match self.pods.remove(&uid) {
                None if pod.pointer("/metadata/deletionTimestamp").is_some() => {
                    store.finish_deletion(
                        &resource(store, "", "pods"),
                        text(&pod, "/metadata/namespace"),
                        text(&pod, "/metadata/name"),
                    );
                }
                None if matches!(text(&pod, "/status/phase"), "" | "Pending") => {
                    // One pass shows ContainerCreating; the next one starts the containers.
                    let mut run = self.admit(&pod);
                    let status = self.status(&pod, &mut run);
                    write_status(store, "", "pods", &pod, status);
                    self.pods.insert(uid, run);
                }
                None => {}
                Some(mut run) => {
                    if self.step(store, &pod, &mut run) {
                        self.pods.insert(uid.clone(), run);
                        self.publish(&pod, &uid);
                    } else {
                        self.forget(run);
                    }
                }
            }
        }
    }

    /// Kills everything still running; the node is going away.
    pub fn shutdown(&mut self) {
        for (_, run) in self.pods.drain() {
            for c in run.containers {
                if let Some(mut p) = c.proc {
                    p.kill_and_wait();
                }
            }
        }
    }

    fn forget(&self, run: PodRun) {
        let mut views = self.node.containers.lock().expect("containers lock");
        for mut c in run.containers {
            views.remove(&(run.namespace.clone(), run.name.clone(), c.name.clone()));
            if let Some(p) = c.proc.as_mut() {
                p.kill_and_wait();
            }
        }
        drop(views);
        let _ = std::fs::remove_dir_all(&run.dir);
    }

    fn admit(&self, pod: &Value) -> PodRun {
        let uid = text(pod, "/metadata/uid");
        let dir = self.root.path().join(uid);
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|spec| ContainerRun {
                name: text(spec, "/name").into(),
                image: text(spec, "/image").into(),
                spec: spec.clone(),
                state: State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last: None,
                restarts: 0,
                proc: None,
                retry_at: None,
            })
            .collect();
        PodRun {
            namespace: text(pod, "/metadata/namespace").into(),
            name: text(pod, "/metadata/name").into(),
            dir,
            start_time: now(),
            started: Instant::now(),
            volumes: None,
            mount_error: None,
            containers,
            conditions: HashMap::new(),
            stopping: None,
            deadline_exceeded: false,
            terminal: false,
        }
    }

    /// Advances one pod; `false` once it is gone from the store.
    fn step(&self, store: &mut Store, pod: &Value, run: &mut PodRun) -> bool {
        let now_instant = Instant::now();
        if pod.pointer("/metadata/deletionTimestamp").is_some()
            && run.stopping.map(|(c, _)| c) != Some(StopCause::Deleted)
        {
            let grace = pod
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            self.stop(store, pod, run, StopCause::Deleted, self.capped(grace));
        }
        let deadline = pod
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_u64);
        if let Some(seconds) = deadline
            && !run.terminal
            && run.stopping.is_none()
            && run.started.elapsed() >= Duration::from_secs(seconds)
        {
            run.deadline_exceeded = true;
            let grace = pod
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            event(
                store,
                pod,
                true,
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
                "kubelet",
            );
            self.stop(store, pod, run, StopCause::Deadline, self.capped(grace));
        }
        if let Some((_, kill_at)) = run.stopping
            && now_instant >= kill_at
        {
            for c in &run.containers {
                if let Some(p) = &c.proc {
                    p.signal(Signal::SIGKILL);
                }
            }
        }
        for c in &mut run.containers {
            let exit = c.proc.as_ref().and_then(Proc::exited);
            if let (Some(code), State::Running { started_at }) = (exit, &c.state) {
                c.state = State::Terminated(Terminated {
                    exit_code: code,
                    reason: exit_reason(code).into(),
                    message: None,
                    started_at: started_at.clone(),
                    finished_at: now(),
                });
                c.proc = None;
            }
        }
        let alive = run.containers.iter().any(|c| c.proc.is_some());
        match run.stopping {
            Some((StopCause::Deleted, _)) if !alive => {
                let status = self.status(pod, run);
                write_status(store, "", "pods", pod, status);
                let rt = resource(store, "", "pods");
                store.finish_deletion(&rt, &run.namespace, &run.name);
                return store.get("", "pods", &run.namespace, &run.name).is_some();
            }
            Some((StopCause::Deadline, _)) if !alive => {
                run.stopping = None;
                run.terminal = true;
            }
            _ => {}
        }
        if run.stopping.is_none() && !run.terminal {
            self.progress(store, pod, run);
        }
        let status = self.status(pod, run);
        if matches!(status["phase"].as_str(), Some("Succeeded" | "Failed")) {
            run.terminal = true;
        }
        write_status(store, "", "pods", pod, status);
        true
    }

    fn stop(
        &self,
        store: &mut Store,
        pod: &Value,
        run: &mut PodRun,
        cause: StopCause,
        grace: Duration,
    ) {
        run.stopping = Some((cause, Instant::now() + grace));
        for c in &mut run.containers {
            if let Some(p) = &c.proc {
                event(
                    store,
                    pod,
                    false,
                    "Killing",
                    &format!("Stopping container {}", c.name),
                    "kubelet",
                );
                p.signal(Signal::SIGTERM);
            }
        }
    }

    fn progress(&self, store: &mut Store, pod: &Value, run: &mut PodRun) {
        if run.volumes.is_none() {
            match volumes::materialise(store, pod, &run.dir, &self.node.token) {
                Ok(v) => run.volumes = Some(v),
                Err(message) => {
                    if run.mount_error.as_ref() != Some(&message) {
                        event(store, pod, true, "FailedMount", &message, "kubelet");
                        run.mount_error = Some(message);
                    }
                    return;
                }
            }
        }
        let policy = match text(pod, "/spec/restartPolicy") {
            "" => "Always",
            p => p,
        };
        let now_instant = Instant::now();
        let images = self.node.images.lock().expect("images lock").clone();
        for c in &mut run.containers {
            if let State::Terminated(t) = &c.state {
                let restart = policy == "Always" || (policy == "OnFailure" && t.exit_code != 0);
                if !restart {
                    continue;
                }
                let backoff = self.node.config.restart_backoff * 2u32.pow(c.restarts.min(4));
                c.last = Some(t.clone());
                c.state = State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(format!(
                        "back-off {backoff:?} restarting failed container={} pod={}_{}({})",
                        c.name,
                        run.name,
                        run.namespace,
                        text(pod, "/metadata/uid")
                    )),
                };
                c.retry_at = Some(now_instant + backoff);
                event(
                    store,
                    pod,
                    true,
                    "BackOff",
                    "Back-off restarting failed container",
                    "kubelet",
                );
                continue;
            }
            let State::Waiting { reason, .. } = &c.state else {
                continue;
            };
            if c.retry_at.is_some_and(|at| now_instant < at) {
                continue;
            }
            let reason = reason.clone();
            let Some(image) = images.get(&c.image) else {
                self.pull_failed(store, pod, c, &reason);
                continue;
            };
            self.start(
                store,
                pod,
                run.volumes.as_ref().expect("set above"),
                &run.dir,
                c,
                image,
            );
        }
    }

    fn pull_failed(&self, store: &mut Store, pod: &Value, c: &mut ContainerRun, reason: &str) {
        let backoff = self.node.config.image_pull_backoff;
        c.retry_at = Some(Instant::now() + backoff);
        let image = &c.image;
        match reason {
            "ErrImagePull" | "ImagePullBackOff" => {
                if reason == "ErrImagePull" {
                    let message = format!("Back-off pulling image \"{image}\"");
                    event(store, pod, false, "BackOff", &message, "kubelet");
                    c.state = State::Waiting {
                        reason: "ImagePullBackOff".into(),
                        message: Some(message),
                    };
                }
            }
            _ => {
                let message = format!(
                    "Failed to pull image \"{image}\": the image is not registered with the test kubelet \
                     (KubeApiServer::register_image)"
                );
                event(store, pod, true, "Failed", &message, "kubelet");
                event(store, pod, true, "Failed", "Error: ErrImagePull", "kubelet");
                c.state = State::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(message),
                };
            }
        }
    }

    fn start(
        &self,
        store: &mut Store,
        pod: &Value,
        volumes: &BTreeMap<String, PathBuf>,
        dir: &std::path::Path,
        c: &mut ContainerRun,
        image: &ImageRun,
    ) {
        let prepared = volumes::mounts(&c.spec, volumes).and_then(|mounts| {
            container::prepare(store, pod, &c.spec, image, &mounts, dir, self.node.api_port)
        });
        let launch = match prepared {
            Ok(launch) => launch,
            Err(message) => {
                if !matches!(&c.state, State::Waiting { message: Some(m), .. } if *m == message) {
                    event(
                        store,
                        pod,
                        true,
                        "Failed",
                        &format!("Error: {message}"),
                        "kubelet",
                    );
                }
                c.state = State::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: Some(message),
                };
                c.retry_at = Some(Instant::now() + self.node.config.image_pull_backoff);
                return;
            }
        };
        if matches!(&c.state, State::Waiting { reason, .. } if reason == "CrashLoopBackOff") {
            c.restarts += 1;
        }
        c.retry_at = None;
        let logs = dir.join("logs");
        let log = logs.join(format!("{}-{}.log", c.name, c.restarts));
        let started_at = now();
        let spawned = std::fs::create_dir_all(&logs)
            .and_then(|_| container::spawn(&launch, &log, self.wake.clone()));
        match spawned {
            Ok(proc) => {
                tracing::debug!(pod = %text(pod, "/metadata/name"), container = %c.name, pid = proc.pid, argv = ?launch.argv, "Simulated container started.");
                event(
                    store,
                    pod,
                    false,
                    "Started",
                    &format!("Started container {}", c.name),
                    "kubelet",
                );
                c.state = State::Running { started_at };
                c.proc = Some(proc);
            }
            Err(error) => {
                let message = format!(
                    "failed to start container {:?}: exec {:?}: {error}",
                    c.name, launch.argv[0]
                );
                event(
                    store,
                    pod,
                    true,
                    "Failed",
                    &format!("Error: {message}"),
                    "kubelet",
                );
                c.state = State::Terminated(Terminated {
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: Some(message),
                    started_at: started_at.clone(),
                    finished_at: started_at,
                });
            }
        }
    }

    /// Tells the log endpoint where each container's output goes.
    fn publish(&self, pod: &Value, uid: &str) {
        let Some(run) = self.pods.get(uid) else {
            return;
        };
        let mut views = self.node.containers.lock().expect("containers lock");
        for c in &run.containers {
            let key = (
                run.namespace.clone(),
                text(pod, "/metadata/name").to_string(),
                c.name.clone(),
            );
            let log = |n: u32| run.dir.join("logs").join(format!("{}-{n}.log", c.name));
            let Some(proc) = &c.proc else {
                continue;
            };
            views.insert(
                key,
                ContainerView {
                    log: log(c.restarts),
                    previous: (c.restarts > 0).then(|| log(c.restarts - 1)),
                    pid: proc.pid,
                    exit: proc.exit.clone(),
                },
            );
        }
    }

    fn condition(
        run: &mut PodRun,
        kind: &'static str,
        status: bool,
        reason: &str,
        message: &str,
    ) -> Value {
        let entry = run
            .conditions
            .entry(kind)
            .or_insert_with(|| (status, reason.to_string(), now()));
        if entry.0 != status || entry.1 != reason {
            *entry = (status, reason.to_string(), now());
        }
        let mut c = json!({"type": kind, "status": if status { "True" } else { "False" },
                           "lastProbeTime": null, "lastTransitionTime": entry.2});
        if !reason.is_empty() {
            c["reason"] = reason.into();
        }
        if !message.is_empty() {
            c["message"] = message.into();
        }
        c
    }

    fn status(&self, pod: &Value, run: &mut PodRun) -> Value {
        let policy = match text(pod, "/spec/restartPolicy") {
            "" => "Always",
            p => p,
        };
        let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
        let mut statuses = Vec::new();
        for c in &run.containers {
            let terminated = |t: &Terminated| {
                let mut v = json!({"exitCode": t.exit_code, "reason": t.reason,
                                   "startedAt": t.started_at, "finishedAt": t.finished_at,
                                   "containerID": format!("steward-testkit://{}", c.name)});
                if let Some(m) = &t.message {
                    v["message"] = m.clone().into();
                }
                v
            };
            let state = match &c.state {
                State::Waiting { reason, message } => {
                    if c.last.is_some() {
                        stopped += 1;
                    } else {
                        waiting += 1;
                    }
                    let mut w = json!({"reason": reason});
                    if let Some(m) = message {
                        w["message"] = m.clone().into();
                    }
                    json!({"waiting": w})
                }
                State::Running { started_at } => {
                    running += 1;
                    json!({"running": {"startedAt": started_at}})
                }
                State::Terminated(t) => {
                    stopped += 1;
                    if t.exit_code == 0 {
                        succeeded += 1;
                    }
                    json!({"terminated": terminated(t)})
                }
            };
            let is_running = matches!(c.state, State::Running { .. });
            let ever_started = c.last.is_some() || !matches!(c.state, State::Waiting { .. });
            let mut s = json!({
                "name": c.name, "image": c.image,
                "imageID": if ever_started { format!("steward-testkit://{}", c.image) } else { String::new() },
                "ready": is_running, "started": is_running, "restartCount": c.restarts,
                "state": state,
                "lastState": c.last.as_ref().map_or(json!({}), |t| json!({"terminated": terminated(t)})),
            });
            if let Some(p) = &c.proc {
                s["containerID"] = format!("steward-testkit://{}", p.pid).into();
            }
            statuses.push(s);
        }
        let phase = if run.deadline_exceeded && run.stopping.is_none() {
            "Failed"
        } else if waiting > 0 {
            "Pending"
        } else if running > 0 {
            "Running"
        } else if stopped > 0 {
            if policy == "Always" {
                "Running"
            } else if stopped == succeeded {
                "Succeeded"
            } else if policy == "Never" {
                "Failed"
            } else {
                "Running"
            }
        } else {
            "Pending"
        };
        let unready: Vec<&str> = run
            .containers
            .iter()
            .filter(|c| !matches!(c.state, State::Running { .. }))
            .map(|c| c.name.as_str())
            .collect();
        let (ready, reason, message) = match phase {
            "Succeeded" => (false, "PodCompleted", String::new()),
            "Failed" => (false, "PodFailed", String::new()),
            _ if unready.is_empty() => (true, "", String::new()),
            _ => (
                false,
                "ContainersNotReady",
                format!("containers with unready status: [{}]", unready.join(" ")),
            ),
        };
        let mut status = json!({
            "phase": phase,
            "hostIP": POD_IP, "hostIPs": [{"ip": POD_IP}],
            "podIP": POD_IP, "podIPs": [{"ip": POD_IP}],
            "startTime": run.start_time,
            "qosClass": qos_class(pod),
            "containerStatuses": statuses,
            "conditions": pod.pointer("/status/conditions").cloned().unwrap_or(json!([])),
        });
        let sandbox = run.volumes.is_some();
        for condition in [
            Self::condition(run, "PodReadyToStartContainers", sandbox, "", ""),
            Self::condition(run, "Initialized", true, "", ""),
            Self::condition(run, "Ready", ready, reason, &message),
            Self::condition(run, "ContainersReady", ready, reason, &message),
        ] {
            set_condition(&mut status, condition);
        }
        if run.deadline_exceeded {
            status["reason"] = "DeadlineExceeded".into();
            status["message"] =
                "Pod was active on the node longer than the specified deadline".into();
        }
        status
    }
}

/// Guaranteed when every container's requests equal its limits for CPU and memory,
/// BestEffort when none sets any, Burstable otherwise.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let any = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c.pointer(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = c.pointer(&format!("/resources/limits/{r}"));
            limit.is_some()
                && c.pointer(&format!("/resources/requests/{r}"))
                    .is_none_or(|req| Some(req) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

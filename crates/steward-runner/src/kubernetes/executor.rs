//! The Kubernetes executor: each run becomes a Pod (or a Job) in the runner's namespace, from
//! the runtime image, with its secrets in a Secret mounted read-only (mode 0400). The launcher
//! in the pod runs the task with the same runtime as the process executor and reports
//! artifacts and result to the runner's in-cluster endpoint ([`super::handoff`]), so what the
//! platform sees does not depend on the executor. Pods that cannot start fail their run with
//! the reason; cancelling deletes the pod; objects are removed when the run ends. A pod the
//! namespace's ResourceQuota would refuse is not created: the run waits for room, saying why.

use super::admission;
use super::handoff::Handoff;
use super::pod::{self, Launch, RUN_LABEL};
use super::pools::Pools;
use super::settings::PodSettings;
use crate::executor::Executor;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use steward_model::run::{RunResult, RunSpec, RunStatus};
use steward_runtime::SecretValue;
use tokio_util::sync::CancellationToken;

/// How often a pod's status is read while its run goes on.
const POLL: Duration = Duration::from_secs(1);
/// How often a run waiting for quota checks again.
const ADMISSION_RETRY: Duration = Duration::from_secs(2);
/// How long a result may lag behind the pod's end (the launcher reports before it exits).
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// Runs each task in a pod of its own.
pub struct KubernetesExecutor {
    client: kube::Client,
    namespace: String,
    settings: PodSettings,
    image: String,
    runner_url: String,
    runner: String,
    handoff: Handoff,
    collection_overrides: HashMap<String, PathBuf>,
    pools: Option<Pools>,
    /// The runner's own Pod: task objects are its dependents, so deleting the runner's pod
    /// removes what it left running (and the run Secrets with them).
    owner: Option<OwnerReference>,
}

impl KubernetesExecutor {
    /// An executor creating pods in `namespace` that report to `runner_url` (served by
    /// `handoff`); `runner` names this runner in the objects' labels.
    pub fn new(
        client: kube::Client,
        namespace: String,
        settings: PodSettings,
        runner_url: String,
        runner: String,
        handoff: Handoff,
        collection_overrides: HashMap<String, PathBuf>,
    ) -> Result<Self, String> {
        let image = settings.image.clone().ok_or(
            "kubernetes.image (the runtime image for task pods) is not set in the runner's configuration",
        )?;
        Ok(KubernetesExecutor {
            client,
            namespace,
            settings,
            image,
            runner_url,
            runner,
            handoff,
            collection_overrides,
            pools: None,
            owner: None,
        })
    }

    /// Makes every task Pod or Job a dependent of `owner` (the runner's own Pod).
    pub fn with_owner(mut self, owner: OwnerReference) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Runs of pooled CodeCollections go to `pools`' workers (while this runner leads).
    pub fn with_pools(mut self, pools: Pools) -> Self {
        self.pools = Some(pools);
        self
    }

    async fn run(
        &self,
        spec: &RunSpec,
        secrets: &[SecretValue],
        out_dir: &Path,
        cancel: &CancellationToken,
    ) -> RunResult {
        if let Some(pools) = &self.pools
            && let Some(result) = pools.run(spec, secrets, out_dir, cancel).await
        {
            return result;
        }
        let started = chrono::Utc::now();
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut report = self
            .handoff
            .expect(spec.run_id, &token, out_dir.to_path_buf());
        let labels = pod::labels(&self.settings, spec, &self.runner);
        let launch = Launch {
            spec: spec.clone(),
            report_to: self.runner_url.clone(),
            token,
            secrets: BTreeMap::new(),
            secret_values: BTreeMap::new(),
            collection_overrides: self.collection_overrides.clone(),
        };
        let created = match self.admit(spec, &labels, cancel).await {
            Ok(()) => self.create(spec, &labels, launch, secrets).await,
            Err(refused) => Err(refused),
        };
        let result = match created {
            Err((status, message)) => RunResult::error(status, message, started),
            Ok(()) => {
                tokio::select! {
                    _ = cancel.cancelled() => {
                        RunResult::error(RunStatus::Cancelled, "cancelled; the task pod was deleted", started)
                    }
                    failure = self.watch(spec, &mut report) => match failure {
                        Ok(result) => result,
                        Err(message) => RunResult::error(RunStatus::Error, message, started),
                    },
                }
            }
        };
        self.handoff.forget(spec.run_id);
        self.remove(spec).await;
        result
    }

    /// Waits until the namespace's ResourceQuotas leave room for the task pod, rather than
    /// creating a pod the API server would refuse; the wait ends with the run's failure after
    /// the pending timeout, or when the run is cancelled.
    async fn admit(
        &self,
        spec: &RunSpec,
        labels: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<(), (RunStatus, String)> {
        let probe = pod::task_pod(&self.settings, spec, &self.namespace, labels, &self.image);
        let limit = Duration::from_secs(self.settings.pending_timeout_seconds.unwrap_or(300));
        let since = Instant::now();
        let mut said = None;
        loop {
            let reason = match admission::check(&self.client, &self.namespace, &probe).await {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            };
            if said.as_ref() != Some(&reason) {
                tracing::info!(run = %spec.run_id, %reason, "The run waits for room in the namespace's quota.");
                said = Some(reason.clone());
            }
            if since.elapsed() >= limit {
                return Err((
                    RunStatus::Error,
                    format!(
                        "the task pod did not fit the quota of namespace {} within {}s: {reason}",
                        self.namespace,
                        limit.as_secs()
                    ),
                ));
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    return Err((RunStatus::Cancelled, format!("cancelled while waiting for quota: {reason}")));
                }
                _ = tokio::time::sleep(ADMISSION_RETRY) => {}
            }
        }
    }

    async fn create(
        &self,
        spec: &RunSpec,
        labels: &BTreeMap<String, String>,
        launch: Launch,
        secrets: &[SecretValue],
    ) -> Result<(), (RunStatus, String)> {
        self.create_objects(spec, labels, launch, secrets)
            .await
            .map_err(|message| (RunStatus::Error, message))
    }

    async fn create_objects(
        &self,
        spec: &RunSpec,
        labels: &BTreeMap<String, String>,
        launch: Launch,
        secrets: &[SecretValue],
    ) -> Result<(), String> {
        let ns = &self.namespace;
        let secret = pod::run_secret(ns, labels, launch, secrets);
        Api::<Secret>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| {
                format!(
                    "cannot create the run's Secret in namespace {ns}: {}",
                    explain(&e)
                )
            })?;
        let owners = self.owner.iter().cloned().collect::<Vec<_>>();
        let created = if self.settings.run_as_job {
            let mut job = pod::task_job(&self.settings, spec, ns, labels, &self.image);
            job.metadata.owner_references = Some(owners).filter(|o| !o.is_empty());
            Api::<Job>::namespaced(self.client.clone(), ns)
                .create(&PostParams::default(), &job)
                .await
                .map(|job| ("batch/v1", "Job", job.metadata.uid))
        } else {
            let mut task = pod::task_pod(&self.settings, spec, ns, labels, &self.image);
            task.metadata.owner_references = Some(owners).filter(|o| !o.is_empty());
            Api::<Pod>::namespaced(self.client.clone(), ns)
                .create(&PostParams::default(), &task)
                .await
                .map(|pod| ("v1", "Pod", pod.metadata.uid))
        };
        if let Ok((api_version, kind, Some(uid))) = &created {
            // The Secret goes with its Pod or Job, whoever deletes it.
            let owned = serde_json::json!({"metadata": {"ownerReferences": [{
                "apiVersion": api_version, "kind": kind, "name": pod::object_name(spec), "uid": uid,
            }]}});
            if let Err(error) = Api::<Secret>::namespaced(self.client.clone(), ns)
                .patch(
                    &pod::object_name(spec),
                    &PatchParams::default(),
                    &Patch::Merge(&owned),
                )
                .await
            {
                tracing::warn!(run = %spec.run_id, %error, "Cannot tie the run's Secret to its pod; it is deleted when the run ends.");
            }
        }
        created.map(drop).map_err(|e| {
            format!(
                "cannot create the task {} in namespace {ns}: {}",
                if self.settings.run_as_job {
                    "Job"
                } else {
                    "Pod"
                },
                explain(&e)
            )
        })
    }

    /// Waits for the pod's report, following the pod meanwhile: a pod that cannot start, ends
    /// without reporting or is deleted fails the run with the reason.
    async fn watch(
        &self,
        spec: &RunSpec,
        report: &mut tokio::sync::oneshot::Receiver<RunResult>,
    ) -> Result<RunResult, String> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("{RUN_LABEL}={}", spec.run_id);
        let pull_limit =
            Duration::from_secs(self.settings.image_pull_timeout_seconds.unwrap_or(60));
        let pending_limit =
            Duration::from_secs(self.settings.pending_timeout_seconds.unwrap_or(300));
        let created = Instant::now();
        let mut pulling_since: Option<Instant> = None;
        let mut seen = false;
        loop {
            tokio::select! {
                result = &mut *report => {
                    return result.map_err(|_| "the runner stopped waiting for the pod".to_string());
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            let found = match pods.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => list.items.into_iter().next(),
                Err(e) => {
                    tracing::warn!(run = %spec.run_id, error = %e, "Cannot read the task pod.");
                    continue;
                }
            };
            let Some(pod) = found else {
                if seen {
                    return Err("the task pod was deleted before it reported".into());
                }
                if created.elapsed() > pending_limit {
                    return Err(format!(
                        "no task pod appeared within {}s (see the Job's events)",
                        pending_limit.as_secs()
                    ));
                }
                continue;
            };
            seen = true;
            let status = pod.status.clone().unwrap_or_default();
            let phase = status.phase.clone().unwrap_or_default();
            let container = status
                .container_statuses
                .as_ref()
                .and_then(|s| s.first().cloned());
            match phase.as_str() {
                "Succeeded" | "Failed" => {
                    // The launcher reports before it exits; give the report a moment.
                    if let Ok(Ok(result)) = tokio::time::timeout(REPORT_GRACE, &mut *report).await {
                        return Ok(result);
                    }
                    let terminated = container
                        .as_ref()
                        .and_then(|c| c.state.as_ref())
                        .and_then(|s| s.terminated.clone());
                    let why = match (&status.reason, terminated) {
                        (Some(reason), _) => {
                            format!("{reason}: {}", status.message.clone().unwrap_or_default())
                        }
                        (None, Some(t)) => format!(
                            "the task container exited with code {} ({})",
                            t.exit_code,
                            t.reason.unwrap_or_default()
                        ),
                        (None, None) => format!("the task pod ended ({phase})"),
                    };
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let tail = pods
                        .logs(
                            &name,
                            &LogParams {
                                tail_lines: Some(20),
                                ..LogParams::default()
                            },
                        )
                        .await
                        .unwrap_or_default();
                    return Err(format!(
                        "{why}; it sent no result. Last lines of its log:\n{}",
                        tail.trim_end()
                    ));
                }
                "Pending" => {
                    let waiting = container
                        .as_ref()
                        .and_then(|c| c.state.as_ref())
                        .and_then(|s| s.waiting.clone());
                    let reason = waiting
                        .as_ref()
                        .and_then(|w| w.reason.clone())
                        .unwrap_or_default();
                    if matches!(
                        reason.as_str(),
                        "ErrImagePull"
                            | "ImagePullBackOff"
                            | "InvalidImageName"
                            | "CreateContainerConfigError"
                            | "CreateContainerError"
                    ) {
                        let since = *pulling_since.get_or_insert_with(Instant::now);
                        if reason == "InvalidImageName" || since.elapsed() >= pull_limit {
                            return Err(format!(
                                "the task pod cannot start: {reason}: {}",
                                waiting.and_then(|w| w.message).unwrap_or_default()
                            ));
                        }
                    } else {
                        pulling_since = None;
                    }
                    if created.elapsed() >= pending_limit {
                        let unscheduled = status
                            .conditions
                            .iter()
                            .flatten()
                            .find(|c| c.type_ == "PodScheduled" && c.status == "False");
                        let why = match unscheduled {
                            Some(c) => format!(
                                "it cannot be scheduled: {}: {}",
                                c.reason.clone().unwrap_or_default(),
                                c.message.clone().unwrap_or_default()
                            ),
                            None => format!("it is still Pending ({reason})"),
                        };
                        return Err(format!(
                            "the task pod did not start within {}s: {why}",
                            pending_limit.as_secs()
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    /// Deletes the run's objects; a missing one is fine.
    async fn remove(&self, spec: &RunSpec) {
        let name = pod::object_name(spec);
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let ns = &self.namespace;
        let results = [
            if self.settings.run_as_job {
                Api::<Job>::namespaced(self.client.clone(), ns)
                    .delete(&name, &background)
                    .await
                    .map(drop)
            } else {
                Api::<Pod>::namespaced(self.client.clone(), ns)
                    .delete(&name, &background)
                    .await
                    .map(drop)
            },
            Api::<Secret>::namespaced(self.client.clone(), ns)
                .delete(&name, &DeleteParams::default())
                .await
                .map(drop),
        ];
        for result in results {
            match result {
                Ok(()) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => {
                    tracing::warn!(run = %spec.run_id, %error, object = %name, "Cannot remove a task object; remove it by hand.")
                }
            }
        }
    }
}

fn explain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

impl Executor for KubernetesExecutor {
    fn execute<'a>(
        &'a self,
        spec: &'a RunSpec,
        secrets: &'a [SecretValue],
        out_dir: &'a Path,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, RunResult> {
        Box::pin(self.run(spec, secrets, out_dir, cancel))
    }

    /// Replicas elect a leader: only it takes SLIs, so SLIs of pooled collections run on the
    /// warm workers it serves (a replica's pooled runs would get a pod each). When no replica
    /// leads (no Lease rights), the platform shares SLIs among all of them.
    fn takes_slis(&self) -> bool {
        self.pools.as_ref().is_none_or(|pools| pools.leading())
    }
}

//! The Job controller: runs `parallelism` pods at a time until `completions` succeeded (then
//! `SuccessCriteriaMet` and `Complete`), or fails the Job (`FailureTarget` and `Failed`) once
//! more than `backoffLimit` pods failed or `activeDeadlineSeconds` passed, and deletes a
//! finished Job `ttlSecondsAfterFinished` later. Pods are labelled and owned as the real
//! controller does; a failed pod is replaced at once (no exponential delay) and pod
//! finalizers (`batch.kubernetes.io/job-tracking`) are not used: finished pods are counted
//! once, by uid.

use super::super::objects::{now, text};
use super::super::store::Store;
use super::{
    controller_ref, create, delete, event, is_active, is_ready, owned, phase, write_status,
};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[derive(Default)]
pub(super) struct JobController {
    /// Job uid → the finished pods already counted in its status.
    counted: HashMap<String, HashSet<String>>,
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

fn seconds_since(time: &str) -> Option<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    Some((chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_seconds())
}

impl JobController {
    pub fn sync(&mut self, store: &mut Store) {
        let jobs: Vec<Value> = store
            .list("batch", "jobs", None)
            .map(|(_, j)| j.clone())
            .collect();
        let live: HashSet<&str> = jobs.iter().map(|j| text(j, "/metadata/uid")).collect();
        self.counted.retain(|uid, _| live.contains(uid.as_str()));
        for job in &jobs {
            if job.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            if has_condition(job, "Complete") || has_condition(job, "Failed") {
                expire(store, job);
                continue;
            }
            self.reconcile(store, job);
        }
    }

    fn reconcile(&mut self, store: &mut Store, job: &Value) {
        let namespace = text(job, "/metadata/namespace").to_string();
        let uid = text(job, "/metadata/uid").to_string();
        let pods = owned(store, "", "pods", &namespace, job);
        let counted = self.counted.entry(uid.clone()).or_default();
        let mut status = job.get("status").cloned().unwrap_or(json!({}));
        let mut succeeded = int(job, "/status/succeeded").unwrap_or(0);
        let mut failed = int(job, "/status/failed").unwrap_or(0);
        for pod in &pods {
            let pod_uid = text(pod, "/metadata/uid");
            match phase(pod) {
                "Succeeded" if counted.insert(pod_uid.into()) => succeeded += 1,
                "Failed" if counted.insert(pod_uid.into()) => failed += 1,
                _ => {}
            }
        }
        let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
        let on_failure_restarts: i64 = active
            .iter()
            .filter(|p| text(p, "/spec/restartPolicy") == "OnFailure")
            .flat_map(|p| {
                p.pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|s| s["restartCount"].as_i64())
            .sum();
        let completions = int(job, "/spec/completions").unwrap_or(1);
        let parallelism = int(job, "/spec/parallelism").unwrap_or(1);
        let backoff_limit = int(job, "/spec/backoffLimit").unwrap_or(6);
        if status.get("startTime").is_none() && job["spec"]["suspend"] != json!(true) {
            status["startTime"] = now().into();
        }
        let deadline_passed = int(job, "/spec/activeDeadlineSeconds").is_some_and(|limit| {
            seconds_since(text(&status, "/startTime")).is_some_and(|s| s >= limit)
        });
        let condition = |kind: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": message,
                   "lastProbeTime": now(), "lastTransitionTime": now()})
        };
        let mut finished = None;
        if succeeded >= completions {
            let message = "Reached expected number of succeeded pods";
            finished = Some((
                vec![
                    condition("SuccessCriteriaMet", "CompletionsReached", message),
                    condition("Complete", "CompletionsReached", message),
                ],
                "Completed",
                "Job completed".to_string(),
            ));
        } else if failed + on_failure_restarts > backoff_limit {
            let message = "Job has reached the specified backoff limit";
            finished = Some((
                vec![
                    condition("FailureTarget", "BackoffLimitExceeded", message),
                    condition("Failed", "BackoffLimitExceeded", message),
                ],
                "BackoffLimitExceeded",
                message.to_string(),
            ));
        } else if deadline_passed {
            let message = "Job was active longer than specified deadline";
            finished = Some((
                vec![
                    condition("FailureTarget", "DeadlineExceeded", message),
                    condition("Failed", "DeadlineExceeded", message),
                ],
                "DeadlineExceeded",
                message.to_string(),
            ));
        }
        let mut active_count = active.len() as i64;
        match &finished {
            Some(_) => {
                for pod in &active {
                    delete(store, "", "pods", pod, "Background");
                }
                active_count = 0;
            }
            None if job["spec"]["suspend"] != json!(true) => {
                let want = parallelism.min(completions - succeeded).max(0);
                while active_count < want {
                    match create(store, "", "pods", &namespace, pod_for(job)) {
                        Ok(pod) => {
                            active_count += 1;
                            event(
                                store,
                                job,
                                false,
                                "SuccessfulCreate",
                                &format!("Created pod: {}", text(&pod, "/metadata/name")),
                                "job-controller",
                            );
                        }
                        Err(error) => {
                            event(
                                store,
                                job,
                                true,
                                "FailedCreate",
                                &format!("Error creating: {}", error.message),
                                "job-controller",
                            );
                            break;
                        }
                    }
                }
            }
            None => {}
        }
        let map = status.as_object_mut().expect("status is an object");
        for (field, value) in [
            ("active", active_count),
            ("succeeded", succeeded),
            ("failed", failed),
        ] {
            if value > 0 {
                map.insert(field.into(), value.into());
            } else {
                map.remove(field);
            }
        }
        let ready = active.iter().filter(|p| is_ready(p)).count();
        map.insert(
            "ready".into(),
            if finished.is_some() { 0 } else { ready }.into(),
        );
        map.insert("terminating".into(), 0.into());
        map.entry("uncountedTerminatedPods").or_insert(json!({}));
        if let Some((conditions, reason, message)) = finished {
            let succeeded_job = reason == "Completed";
            if succeeded_job {
                status["completionTime"] = now().into();
            }
            status["conditions"] = conditions.into();
            event(
                store,
                job,
                !succeeded_job,
                reason,
                &message,
                "job-controller",
            );
        }
        write_status(store, "batch", "jobs", job, status);
    }
}

/// The pod a Job runs: its template with the controller's labels and owner reference.
fn pod_for(job: &Value) -> Value {
    let name = text(job, "/metadata/name");
    let uid = text(job, "/metadata/uid");
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": job.pointer("/spec/template/metadata").cloned().unwrap_or(json!({})),
        "spec": job.pointer("/spec/template/spec").cloned().unwrap_or(json!({})),
    });
    let m = pod["metadata"]
        .as_object_mut()
        .expect("metadata is an object");
    m.remove("name");
    m.insert("generateName".into(), format!("{name}-").into());
    m.insert("ownerReferences".into(), json!([controller_ref(job)]));
    let labels = m.entry("labels").or_insert(json!({}));
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", uid),
        ("batch.kubernetes.io/job-name", name),
        ("controller-uid", uid),
        ("job-name", name),
    ] {
        labels[key] = value.into();
    }
    pod
}

/// Deletes a finished Job (and, in the background, its pods) once its TTL has passed.
fn expire(store: &mut Store, job: &Value) {
    let Some(ttl) = int(job, "/spec/ttlSecondsAfterFinished") else {
        return;
    };
    let finished_at = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Complete" || c["type"] == "Failed")
        .map(|c| text(c, "/lastTransitionTime").to_string())
        .unwrap_or_default();
    let elapsed = chrono::DateTime::parse_from_rfc3339(&finished_at)
        .map(|at| chrono::Utc::now() - at.with_timezone(&chrono::Utc))
        .ok()
        .and_then(|d| d.to_std().ok())
        .unwrap_or_default();
    if elapsed >= Duration::from_secs(ttl.max(0) as u64) {
        delete(store, "batch", "jobs", job, "Background");
    }
}

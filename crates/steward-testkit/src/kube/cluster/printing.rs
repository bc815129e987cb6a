//! The STATUS column `kubectl get pods` prints, computed as its pod printer does: the phase,
//! overridden by a container's waiting or terminated reason, or `Terminating`.

use super::super::objects::text;
use serde_json::Value;

pub(crate) fn pod_status(pod: &Value) -> String {
    let mut reason = match text(pod, "/status/reason") {
        "" => text(pod, "/status/phase").to_string(),
        r => r.to_string(),
    };
    let mut running = false;
    for status in pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .rev()
    {
        let waiting = text(status, "/state/waiting/reason");
        let terminated = text(status, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_string();
        } else if !terminated.is_empty() {
            reason = terminated.to_string();
        } else if let Some(t) = status.pointer("/state/terminated") {
            reason = match t.get("signal").and_then(Value::as_i64) {
                Some(s) if s != 0 => format!("Signal:{s}"),
                _ => format!("ExitCode:{}", t["exitCode"]),
            };
        } else if status["ready"] == Value::Bool(true) && status.pointer("/state/running").is_some()
        {
            running = true;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    reason
}

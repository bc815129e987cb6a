//! Delivers spooled results: artifacts through signed URLs, then the completion. Retries with
//! backoff while the platform is unreachable; drops what the platform refuses for good.

use crate::Shared;
use crate::client::CallError;
use crate::poll::Backoff;
use crate::spool::Delivery;
use std::sync::Arc;

enum Failure {
    /// Try again later.
    Retry(String),
    /// The platform will never take it.
    Refused(String),
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Refused(_, _) => Failure::Refused(error.to_string()),
            other => Failure::Retry(other.to_string()),
        }
    }
}

/// Delivers until shutdown, then makes one last pass.
pub(crate) async fn deliver_forever(shared: Arc<Shared>) {
    let mut backoff = Backoff::new();
    loop {
        let mut stuck = false;
        for delivery in shared.spool.pending() {
            match deliver(&shared, delivery.clone()).await {
                Ok(recorded) => {
                    backoff.reset();
                    if !recorded {
                        tracing::debug!(run = %delivery.run_id, "Result had been recorded before.");
                    }
                    shared.spool.remove(delivery.run_id);
                }
                Err(Failure::Refused(message)) => {
                    tracing::warn!(run = %delivery.run_id, %message, "The platform refused a result; dropped.");
                    shared.spool.remove(delivery.run_id);
                }
                Err(Failure::Retry(message)) => {
                    tracing::debug!(run = %delivery.run_id, %message, "Result not delivered yet.");
                    stuck = true;
                    break;
                }
            }
        }
        if shared.shutdown.is_cancelled() {
            return;
        }
        if stuck {
            tokio::select! {
                _ = shared.shutdown.cancelled() => {}
                _ = tokio::time::sleep(backoff.next()) => {}
            }
        } else {
            tokio::select! {
                _ = shared.shutdown.cancelled() => {}
                _ = shared.spool.submitted() => {}
                // Re-check now and then: a submission may have raced the previous scan.
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Uploads the artifacts and completes the run; `Ok(false)` when it had been recorded before.
async fn deliver(shared: &Shared, mut delivery: Delivery) -> Result<bool, Failure> {
    let credential = shared.credential();
    let dir = shared.spool.artifacts_dir(delivery.run_id);
    let mut uploaded = Vec::new();
    for name in &delivery.result.artifacts {
        let path = dir.join(name);
        if !path.is_file() {
            delivery.result.warnings.push(format!(
                "{name}: missing from the runner's spool; not uploaded"
            ));
            continue;
        }
        // A refused artifact is noted on the result and the completion still goes out: the
        // platform decides about the result (a retry of a recorded one is answered as such).
        let uploaded_one = match shared
            .client
            .upload_url(&credential, delivery.run_id, name, delivery.lease_id)
            .await
        {
            Ok(url) => shared.client.upload(&url, &path).await,
            Err(error) => Err(error),
        };
        match uploaded_one {
            Ok(()) => uploaded.push(name.clone()),
            Err(CallError::Refused(code, message)) => {
                delivery
                    .result
                    .warnings
                    .push(format!("{name}: upload refused ({code}): {message}"));
            }
            Err(other) => return Err(Failure::Retry(other.to_string())),
        }
    }
    delivery.result.artifacts = uploaded;
    let request = steward_model::wire::CompleteRequest {
        lease_id: delivery.lease_id,
        spec: delivery.spec.clone(),
        result: delivery.result.clone(),
    };
    let response = shared
        .client
        .complete(&credential, delivery.run_id, &request)
        .await?;
    Ok(response.recorded)
}

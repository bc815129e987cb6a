//! Delivers results: artifacts through signed URLs, then the completion. Spooled results are
//! retried with backoff while the platform is unreachable; what the platform refuses for good
//! is dropped. A result the spool cannot take (a full disk) is delivered at once, or dropped
//! and counted when the platform does not answer either ([`hand_over`]).

use crate::Shared;
use crate::client::CallError;
use crate::poll::Backoff;
use crate::spool::{Delivery, NotSpooled};
use std::path::Path;
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
            let dir = shared.spool.artifacts_dir(delivery.run_id);
            match deliver(&shared, delivery.clone(), &dir).await {
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

/// Spools a finished run's result for the delivery loop. When the spool cannot take it, the
/// result goes to the platform at once; when that fails too it is dropped and counted (a
/// leased run is then run again once its lease lapses; an SLI measurement is lost).
pub(crate) async fn hand_over(shared: &Shared, delivery: Delivery) {
    let Err(NotSpooled { artifacts, error }) = shared.spool.submit(&delivery) else {
        return;
    };
    let run = delivery.run_id;
    let leased = delivery.lease_id.is_some();
    match deliver(shared, delivery, &artifacts).await {
        Ok(_) => {
            tracing::warn!(run = %run, %error, "Result delivered without the spool, which cannot be written.")
        }
        Err(Failure::Refused(message)) => {
            tracing::warn!(run = %run, %message, "The platform refused a result; dropped.")
        }
        Err(Failure::Retry(message)) => {
            shared.spool.count_dropped();
            if leased {
                tracing::error!(run = %run, %error, %message, "Result dropped: the spool cannot be written and the platform did not answer; the run is retried when its lease lapses.");
            } else {
                tracing::error!(run = %run, %error, %message, "SLI result dropped: the spool cannot be written and the platform did not answer.");
            }
        }
    }
    shared.spool.remove(run);
}

/// Uploads the artifacts (from `dir`) and completes the run; `Ok(false)` when it had been
/// recorded before.
async fn deliver(shared: &Shared, mut delivery: Delivery, dir: &Path) -> Result<bool, Failure> {
    let credential = shared.credential();
    let mut uploaded = Vec::new();
    for artifact in std::mem::take(&mut delivery.result.artifacts) {
        let name = artifact.name.clone();
        let path = dir.join(&name);
        if !path.is_file() {
            delivery.result.warnings.push(format!(
                "{name}: missing from the runner's spool; not uploaded"
            ));
            continue;
        }
        // A refused artifact is noted on the result and the completion still goes out: the
        // platform decides about the result (a retry of a recorded one is answered as such).
        let url = match shared
            .client
            .upload_url(&credential, delivery.run_id, &name, delivery.lease_id)
            .await
        {
            Ok(url) => url,
            Err(CallError::Refused(code, message)) => {
                delivery
                    .result
                    .warnings
                    .push(format!("{name}: upload refused ({code}): {message}"));
                continue;
            }
            Err(other) => return Err(Failure::Retry(other.to_string())),
        };
        let mut artifact = artifact;
        if let Some(max) = url.max_bytes {
            match truncate_middle(&path, max) {
                Ok(0) => {}
                Ok(cut) => {
                    artifact.truncated += cut;
                    artifact.size = std::fs::metadata(&path)
                        .map(|m| m.len())
                        .unwrap_or(artifact.size);
                    delivery.result.warnings.push(format!(
                        "{name}: {cut} bytes cut from the middle to fit the {max}-byte limit"
                    ));
                }
                Err(error) => delivery
                    .result
                    .warnings
                    .push(format!("{name}: could not be cut to size ({error})")),
            }
        }
        match shared.client.upload(&url, &path).await {
            Ok(()) => uploaded.push(artifact),
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

/// Cuts a file larger than `max` bytes down to `max`: its head and its tail stay, with a line in
/// between saying how much was cut. Returns the bytes cut (0: the file fitted).
fn truncate_middle(path: &std::path::Path, max: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let size = std::fs::metadata(path)?.len();
    if size <= max {
        return Ok(0);
    }
    let marker_room = 160;
    let keep = max.saturating_sub(marker_room);
    let head = keep / 2;
    let tail = keep - head;
    let cut = size - head - tail;
    let marker = format!(
        "\n\n[... steward cut {cut} bytes here: the file was {size} bytes, over the artifact store's limit of {max} ...]\n\n"
    );
    let mut source = std::fs::File::open(path)?;
    let partial = path.with_extension("cut");
    let mut out = std::fs::File::create(&partial)?;
    std::io::copy(&mut (&mut source).take(head), &mut out)?;
    out.write_all(marker.as_bytes())?;
    source.seek(SeekFrom::Start(size - tail))?;
    std::io::copy(&mut source, &mut out)?;
    out.sync_all()?;
    std::fs::rename(&partial, path)?;
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_files_keep_their_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.txt");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let cut = truncate_middle(&path, 10_000).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.len() as u64 <= 10_000, "{}", after.len());
        assert_eq!(cut, text.len() as u64 - (10_000 - 160));
        assert!(after.starts_with("line 0\nline 1\n"));
        assert!(after.ends_with("line 19999\n"));
        assert!(after.contains(&format!("steward cut {cut} bytes here")));
        assert_eq!(
            truncate_middle(&path, 1_000_000).unwrap(),
            0,
            "a file that fits is left alone"
        );
    }
}

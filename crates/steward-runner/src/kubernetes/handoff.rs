//! The runner's in-cluster endpoint that task pods report to: each run's artifacts
//! (`PUT /v1/runs/{id}/artifacts/{name}`) land in the run's staging directory, as the process
//! executor's would, and its result (`POST /v1/runs/{id}/result`) completes the run. Every
//! request carries the run's own bearer token, which only the run's Secret holds. A pool
//! worker's token is its lease's ([`super::pools`]); once the lease is no longer current its
//! token is retired, and a report made with it is refused with 409 and changes nothing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use axum::serve::ListenerExt;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use steward_model::run::RunResult;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Largest artifact a pod may send (the spool caps what it keeps anyway).
const MAX_ARTIFACT_BYTES: usize = 256 * 1024 * 1024;
/// Retired tokens remembered, so late reports get a clear 409 even after their run ended.
const RETIRED_KEPT: usize = 4096;

struct Pending {
    token: String,
    out_dir: PathBuf,
    result: Option<oneshot::Sender<RunResult>>,
}

/// Runs waiting for their pods, by run id.
#[derive(Clone, Default)]
pub struct Handoff {
    pending: Arc<Mutex<HashMap<Uuid, Pending>>>,
    retired: Arc<Mutex<VecDeque<(Uuid, String)>>>,
}

/// Sends replies without Nagle's delay: a reply is several small writes, and the last would
/// otherwise wait for the peer's delayed ACK (40 ms on Linux) before it leaves.
pub(super) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "Cannot set TCP_NODELAY on a connection.");
    }
}

impl Handoff {
    /// Expects a report for `run` with `token`; artifacts go to `out_dir`.
    pub fn expect(&self, run: Uuid, token: &str, out_dir: PathBuf) -> oneshot::Receiver<RunResult> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("poisoned").insert(
            run,
            Pending {
                token: token.to_string(),
                out_dir,
                result: Some(tx),
            },
        );
        rx
    }

    /// Accepts reports for `run` only with `token` from now on; reports with the token it
    /// replaces are refused with 409 (a lapsed or released pool lease).
    pub fn rekey(&self, run: Uuid, token: &str) {
        let old = match self.pending.lock().expect("poisoned").get_mut(&run) {
            Some(entry) => std::mem::replace(&mut entry.token, token.to_string()),
            None => return,
        };
        let mut retired = self.retired.lock().expect("poisoned");
        if retired.len() >= RETIRED_KEPT {
            retired.pop_front();
        }
        retired.push_back((run, old));
    }

    fn is_retired(&self, run: Uuid, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.retired
            .lock()
            .expect("poisoned")
            .iter()
            .any(|(r, t)| *r == run && bool::from(given.as_bytes().ct_eq(t.as_bytes())))
    }

    /// Stops accepting reports for `run`.
    pub fn forget(&self, run: Uuid) {
        self.pending.lock().expect("poisoned").remove(&run);
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/runs/{run}/artifacts/{name}", put(artifact))
            .route("/v1/runs/{run}/result", post(result))
            .layer(DefaultBodyLimit::max(MAX_ARTIFACT_BYTES))
            .with_state(self.clone())
    }

    /// Serves the routes on `listener` until the process ends.
    pub async fn serve(&self, listener: tokio::net::TcpListener) {
        let app = self.router();
        if let Err(error) = axum::serve(listener.tap_io(no_delay), app).await {
            tracing::error!(%error, "The endpoint for task pods stopped.");
        }
    }

    /// The pending run's staging directory, if `headers` carry its token.
    fn authorised(&self, run: Uuid, headers: &HeaderMap) -> Result<PathBuf, (StatusCode, String)> {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let current = {
            let pending = self.pending.lock().expect("poisoned");
            pending
                .get(&run)
                .map(|entry| (entry.token.clone(), entry.out_dir.clone()))
        };
        use subtle::ConstantTimeEq;
        match current {
            Some((token, dir)) if bool::from(given.as_bytes().ct_eq(token.as_bytes())) => Ok(dir),
            _ if !given.is_empty() && self.is_retired(run, given) => Err((
                StatusCode::CONFLICT,
                format!(
                    "run {run}: the lease this report was made under is no longer current (it lapsed or was released; the run went back to the queue); the report is refused"
                ),
            )),
            Some(_) => Err((StatusCode::UNAUTHORIZED, "wrong token for this run".into())),
            None => Err((
                StatusCode::NOT_FOUND,
                format!("run {run} is not waiting for a report"),
            )),
        }
    }
}

async fn artifact(
    State(handoff): State<Handoff>,
    Path((run, name)): Path<(Uuid, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, (StatusCode, String)> {
    let dir = handoff.authorised(run, &headers)?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("artifact name {name:?} is not a plain file name"),
        ));
    }
    let write = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(&name), &body).await
    };
    write.await.map_err(|e| {
        (
            StatusCode::INSUFFICIENT_STORAGE,
            format!("cannot keep artifact {name}: {e}"),
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn result(
    State(handoff): State<Handoff>,
    Path(run): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, (StatusCode, String)> {
    handoff.authorised(run, &headers)?;
    let outcome: RunResult = serde_json::from_slice(&body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("not a run result: {e}")))?;
    let sender = handoff
        .pending
        .lock()
        .expect("poisoned")
        .get_mut(&run)
        .and_then(|p| p.result.take());
    match sender {
        Some(tx) => {
            let _ = tx.send(outcome);
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err((
            StatusCode::CONFLICT,
            format!("run {run} has reported already"),
        )),
    }
}

//! `?watch=true`: newline-delimited JSON events over a chunked response. A watch starts with
//! synthetic ADDED events (no resourceVersion, or "0"), or replays the history after the
//! resourceVersion it names; one from before the history ends gets an ERROR event with a 410
//! Status, as from the real server. Bookmarks come every `bookmark_interval` when asked for.

use super::routes::{Scope, Shared};
use super::status::ApiError;
use super::store::{Change, EventType};
use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The query parameters of a watch.
#[derive(Debug, Default)]
pub(crate) struct WatchParams {
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub send_initial_events: bool,
}

type Chunk = Result<Bytes, Infallible>;

fn event_line(kind: &str, object: Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// The event a watch on `scope` sees for `change`, if any. A modification that makes an
/// object stop (or start) matching the selectors is seen as DELETED (or ADDED).
fn event_for(scope: &Scope, change: &Change) -> Option<Bytes> {
    if change.group != scope.rt.group || change.plural != scope.rt.plural {
        return None;
    }
    if scope
        .namespace
        .as_ref()
        .is_some_and(|ns| *ns != change.namespace)
    {
        return None;
    }
    let now = scope.matches(&change.object);
    let before = change.previous.as_ref().is_some_and(|p| scope.matches(p));
    let kind = match (change.event, before, now) {
        (EventType::Added, _, true) => "ADDED",
        (EventType::Deleted, _, true) => "DELETED",
        (EventType::Modified, true, true) => "MODIFIED",
        (EventType::Modified, false, true) => "ADDED",
        (EventType::Modified, true, false) => "DELETED",
        _ => return None,
    };
    Some(event_line(kind, scope.present(&change.object, true)))
}

fn bookmark(scope: &Scope, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({
        "kind": scope.rt.kind,
        "apiVersion": scope.rt.api_version(&scope.version),
        "metadata": metadata,
    });
    event_line("BOOKMARK", object)
}

/// Starts the watch; the response streams until the timeout, the client leaves or the server stops.
pub(crate) fn serve(
    shared: Arc<Shared>,
    scope: Scope,
    params: WatchParams,
) -> Result<Response, ApiError> {
    let from = match params.resource_version.as_deref() {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv:?}: must be an integer"
            ))
        })?),
    };
    let mut initial = Vec::new();
    let mut expired = false;
    let (start, changes) = {
        let store = shared.store.lock().expect("store lock");
        let changes = store.subscribe();
        match from {
            Some(rv) if !params.send_initial_events => match store.changes_since(rv) {
                Ok(replay) => initial.extend(replay.iter().filter_map(|c| event_for(&scope, c))),
                Err(gone) => {
                    expired = true;
                    initial.push(event_line("ERROR", gone.to_status()));
                }
            },
            _ => {
                let objects = store.list(
                    &scope.rt.group,
                    &scope.rt.plural,
                    scope.namespace.as_deref(),
                );
                for (_, object) in objects.filter(|(_, o)| scope.matches(o)) {
                    initial.push(event_line("ADDED", scope.present(object, true)));
                }
                if params.send_initial_events && params.bookmarks {
                    initial.push(bookmark(&scope, store.revision(), true));
                }
            }
        }
        (store.revision(), changes)
    };
    let (tx, mut rx) = mpsc::channel::<Chunk>(64);
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        for line in initial {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if !expired {
            pump(scope, params, interval, start, changes, tx).await;
        }
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Ok(Response::builder()
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-cache, private")
        .body(body)
        .expect("static headers are valid"))
}

async fn pump(
    scope: Scope,
    params: WatchParams,
    bookmark_interval: Duration,
    mut last_rv: u64,
    mut changes: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Chunk>,
) {
    let deadline = params.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(bookmark_interval);
    ticker.tick().await;
    loop {
        let line = tokio::select! {
            _ = tx.closed() => return,
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => return,
            _ = ticker.tick(), if params.bookmarks => bookmark(&scope, last_rv, false),
            received = changes.recv() => match received {
                Ok(change) if change.rv > last_rv => {
                    last_rv = change.rv;
                    match event_for(&scope, &change) {
                        Some(line) => line,
                        None => continue,
                    }
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let gone = ApiError::expired(format!("too old resource version: {last_rv}; the watch fell behind"));
                    let _ = tx.send(Ok(event_line("ERROR", gone.to_status()))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(Ok(line)).await.is_err() {
            return;
        }
    }
}

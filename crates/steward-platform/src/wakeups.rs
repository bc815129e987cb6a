//! Wakes long polls of a location when it gets work, a cancellation or a new desired state.
//!
//! Within one platform process a `Notify` per location does it. Several replicas on
//! PostgreSQL also tell each other through `NOTIFY`/`LISTEN` on one channel, so a session
//! created on one replica wakes the polls held by another; a replica whose listening
//! connection was lost wakes all of its polls once it is back, since it may have missed some.

use crate::store::Store;
use sqlx::postgres::PgListener;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The channel replicas notify each other on.
const CHANNEL: &str = "steward_wakeups";
/// The payload that stands for every location.
const ALL: &str = "*";

/// One `Notify` per location, and optionally the other replicas.
pub struct Wakeups {
    locations: Mutex<HashMap<String, Arc<Notify>>>,
    replicas: OnceLock<mpsc::UnboundedSender<String>>,
    /// Tags this replica's notifications, so that it does not wake its polls twice.
    me: uuid::Uuid,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            locations: Mutex::default(),
            replicas: OnceLock::new(),
            me: uuid::Uuid::new_v4(),
        }
    }
}

impl Wakeups {
    /// The notifier pollers of `location` wait on.
    pub fn for_location(&self, location: &str) -> Arc<Notify> {
        self.locations
            .lock()
            .expect("poisoned")
            .entry(location.to_string())
            .or_default()
            .clone()
    }

    /// Wakes every poll waiting for `location`, here and on the other replicas.
    pub fn wake(&self, location: &str) {
        self.wake_here(location);
        self.tell_replicas(location);
    }

    /// Wakes every waiting poll, here and on the other replicas.
    pub fn wake_all(&self) {
        self.wake_all_here();
        self.tell_replicas(ALL);
    }

    fn wake_here(&self, location: &str) {
        if let Some(notify) = self.locations.lock().expect("poisoned").get(location) {
            notify.notify_waiters();
        }
    }

    fn wake_all_here(&self) {
        for notify in self.locations.lock().expect("poisoned").values() {
            notify.notify_waiters();
        }
    }

    fn tell_replicas(&self, location: &str) {
        if let Some(replicas) = self.replicas.get() {
            let _ = replicas.send(location.to_string());
        }
    }

    /// Connects this process to the other replicas sharing the PostgreSQL database at `url`:
    /// one task sends this replica's wakeups, one listens for theirs. Both end with
    /// `shutdown`.
    pub(crate) fn join_replicas(
        self: &Arc<Self>,
        url: String,
        store: Store,
        shutdown: CancellationToken,
    ) -> [tokio::task::JoinHandle<()>; 2] {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.replicas.set(tx);
        [
            tokio::spawn(send(rx, store, self.me, shutdown.clone())),
            tokio::spawn(listen(self.clone(), url, shutdown)),
        ]
    }
}

/// Sends wakeups (`<replica> <location>`), coalescing the ones that pile up while a send is
/// under way.
async fn send(
    mut rx: mpsc::UnboundedReceiver<String>,
    store: Store,
    me: uuid::Uuid,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = rx.recv() => match next {
                Some(payload) => payload,
                None => return,
            },
        };
        let mut payloads = BTreeSet::from([first]);
        while let Ok(more) = rx.try_recv() {
            payloads.insert(more);
        }
        if payloads.contains(ALL) {
            payloads.retain(|p| p == ALL);
        }
        for location in payloads {
            if let Err(error) = store.notify(CHANNEL, &format!("{me} {location}")).await {
                // The replicas' polls end at their timeout and find the work then.
                tracing::warn!(%error, "Could not tell the other replicas about new work.");
            }
        }
    }
}

/// Listens for the other replicas' wakeups (this one's own come back too, and are ignored).
async fn listen(wakeups: Arc<Wakeups>, url: String, shutdown: CancellationToken) {
    let mut retry = Duration::from_millis(200);
    loop {
        let mut listener = match connect(&url).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?retry, "Cannot listen for the other replicas' wakeups.");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        retry = Duration::from_millis(200);
        // Whatever was sent while this replica was not listening is lost: look again.
        wakeups.wake_all_here();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => {
                    let (from, location) = notification
                        .payload()
                        .split_once(' ')
                        .unwrap_or(("", notification.payload()));
                    match location {
                        _ if from == wakeups.me.to_string() => {}
                        ALL => wakeups.wake_all_here(),
                        location => wakeups.wake_here(location),
                    }
                }
                // The connection was lost; `try_recv` reconnects on the next call.
                Ok(None) => wakeups.wake_all_here(),
                Err(error) => {
                    tracing::warn!(%error, "Lost the replicas' wakeup channel; reconnecting.");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

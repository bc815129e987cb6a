//! Leader election among the runner's replicas with a `coordination.k8s.io/v1` Lease, as
//! client-go's leaderelection does it:
//!
//! - every replica reads the Lease each retry period (a third of the lease duration);
//! - the holder renews `renewTime`; a candidate takes the Lease only when its holder is empty
//!   or the record has not changed for a whole lease duration *as observed by this replica's
//!   clock* (the times in the record are never compared across machines);
//! - every write is an update with the `resourceVersion` read, so of two racing candidates the
//!   API server lets exactly one through (the other gets 409 and stays a follower);
//! - a leader that cannot renew for two thirds of the duration steps down on its own, before
//!   anybody else may take over;
//! - on shutdown the leader releases the Lease by clearing `holderIdentity`, so a successor
//!   need not wait.
//!
//! What leading means is published on a [`watch`] channel.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The Lease's name when the configuration names none.
pub const DEFAULT_LEASE_NAME: &str = "steward-runner-leader";

/// Who elects what, how fast.
#[derive(Debug, Clone)]
pub struct ElectionSettings {
    /// The Lease.
    pub lease_name: String,
    /// Its namespace (the runner's).
    pub namespace: String,
    /// This replica: its pod name.
    pub identity: String,
    /// How long a Lease holds without renewal (whole seconds; at least one).
    pub lease_duration: Duration,
}

impl ElectionSettings {
    /// How often the Lease is read and renewed.
    pub fn retry_period(&self) -> Duration {
        self.lease_duration / 3
    }

    /// How long a leader keeps leading without a successful renewal.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    settings: ElectionSettings,
    /// The record last read and when this replica first saw it.
    observed: Option<(LeaseSpec, Instant)>,
    last_renewal: Option<Instant>,
    leading: watch::Sender<bool>,
    warned: bool,
}

impl Elector {
    /// A candidate, not leading yet.
    pub fn new(client: kube::Client, settings: ElectionSettings) -> Elector {
        let settings = ElectionSettings {
            lease_duration: settings.lease_duration.max(Duration::from_secs(1)),
            ..settings
        };
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            last_renewal: None,
            leading: watch::channel(false).0,
            warned: false,
        }
    }

    /// Whether this replica leads, now and as it changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Takes part until `stop`, then releases the Lease if it holds it.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let attempt = self.try_acquire_or_renew().await;
            let now = Instant::now();
            match attempt {
                Ok(true) => {
                    self.last_renewal = Some(now);
                    self.warned = false;
                    self.set_leading(true);
                }
                Ok(false) => self.set_leading(false),
                Err(error) => {
                    if self.warned {
                        tracing::debug!(%error, lease = %self.settings.lease_name, "Leader election: cannot read or write the Lease.");
                    } else {
                        tracing::warn!(%error, lease = %self.settings.lease_name, namespace = %self.settings.namespace, "Leader election: cannot read or write the Lease (pools are managed only by a leader).");
                        self.warned = true;
                    }
                    let lapsed = self
                        .last_renewal
                        .is_none_or(|t| now.duration_since(t) >= self.settings.renew_deadline());
                    if lapsed {
                        self.set_leading(false);
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.settings.retry_period()) => {}
            }
        }
        if *self.leading.borrow() {
            self.release().await;
        }
    }

    fn set_leading(&self, leading: bool) {
        let changed = self.leading.send_if_modified(|value| {
            let changed = *value != leading;
            *value = leading;
            changed
        });
        if changed {
            if leading {
                tracing::info!(identity = %self.settings.identity, lease = %self.settings.lease_name, "This runner leads: it manages the warm pools.");
            } else {
                tracing::info!(identity = %self.settings.identity, lease = %self.settings.lease_name, "This runner no longer leads.");
            }
        }
    }

    fn record(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(self.settings.lease_duration.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One round: `Ok(true)` when this replica holds the Lease after it.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let name = &self.settings.lease_name;
        let existing = match self.api.get(name).await {
            Ok(lease) => lease,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                let lease = Lease {
                    metadata: kube::api::ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.record(None, 0)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        self.observed = created.spec.map(|s| (s, Instant::now()));
                        Ok(true)
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        let current = existing.spec.clone().unwrap_or_default();
        let observed_at = match &self.observed {
            Some((record, at)) if *record == current => *at,
            _ => {
                self.observed = Some((current.clone(), now));
                now
            }
        };
        let holder = current.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.settings.identity;
        let duration = current
            .lease_duration_seconds
            .map_or(self.settings.lease_duration, |s| {
                Duration::from_secs(s.max(0) as u64)
            });
        if !holder.is_empty() && !mine && now.duration_since(observed_at) < duration {
            return Ok(false);
        }
        let transitions = current.lease_transitions.unwrap_or(0);
        let record = if mine {
            self.record(current.acquire_time.clone(), transitions)
        } else {
            self.record(None, transitions + 1)
        };
        let mut lease = existing;
        lease.spec = Some(record);
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(written) => {
                if !mine {
                    tracing::info!(identity = %self.settings.identity, previous = %holder, "Took over the leader Lease.");
                }
                self.observed = written.spec.map(|s| (s, Instant::now()));
                Ok(true)
            }
            // Another replica wrote first: it leads.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Clears the holder so a successor takes over at its next round.
    async fn release(&mut self) {
        let name = &self.settings.lease_name;
        let Ok(mut lease) = self.api.get(name).await else {
            return;
        };
        let current = lease.spec.clone().unwrap_or_default();
        if current.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: current.lease_transitions,
            ..LeaseSpec::default()
        });
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => {
                tracing::info!(identity = %self.settings.identity, "Released the leader Lease.");
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot release the leader Lease; another runner takes over when it lapses.")
            }
        }
        self.set_leading(false);
    }
}

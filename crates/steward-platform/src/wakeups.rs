//! Wakes long polls of a location when it gets work, a cancellation or a new desired state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One `Notify` per location.
#[derive(Default)]
pub struct Wakeups {
    locations: Mutex<HashMap<String, Arc<Notify>>>,
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

    /// Wakes every poll waiting for `location`.
    pub fn wake(&self, location: &str) {
        if let Some(notify) = self.locations.lock().expect("poisoned").get(location) {
            notify.notify_waiters();
        }
    }

    /// Wakes every waiting poll.
    pub fn wake_all(&self) {
        for notify in self.locations.lock().expect("poisoned").values() {
            notify.notify_waiters();
        }
    }
}

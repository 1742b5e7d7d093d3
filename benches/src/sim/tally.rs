//! [`Tally`]: the operation counts of one run, and the per-driver copy the
//! progress reporter reads.

use std::sync::atomic::{AtomicU64, Ordering};

/// Operation counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events fanned out.
    pub fanouts: u64,
    /// Subscriber deliveries made by those fan-outs.
    pub deliveries: u64,
    /// Commands sent to a listener.
    pub notifies: u64,
    /// Commands that found no listener (thread unloaded).
    pub notifies_dropped: u64,
    /// Request round trips completed.
    pub requests: u64,
    /// Requests that found no listener or were dropped.
    pub requests_failed: u64,
    /// Subscribes done by the churn thread.
    pub subscribes: u64,
    /// Disconnects done by the churn thread.
    pub disconnects: u64,
    /// Threads unloaded by `remove_thread_if_idle`.
    pub unloads: u64,
    /// Listeners installed (loads and reloads).
    pub loads: u64,
}

const TALLY_FIELDS: usize = 10;

impl Tally {
    fn to_array(self) -> [u64; TALLY_FIELDS] {
        [
            self.fanouts,
            self.deliveries,
            self.notifies,
            self.notifies_dropped,
            self.requests,
            self.requests_failed,
            self.subscribes,
            self.disconnects,
            self.unloads,
            self.loads,
        ]
    }

    fn from_array(a: [u64; TALLY_FIELDS]) -> Self {
        let [fanouts, deliveries, notifies, notifies_dropped, requests, requests_failed, subscribes, disconnects, unloads, loads] =
            a;
        Tally {
            fanouts,
            deliveries,
            notifies,
            notifies_dropped,
            requests,
            requests_failed,
            subscribes,
            disconnects,
            unloads,
            loads,
        }
    }

    pub(super) fn add(self, other: Tally) -> Tally {
        let (a, b) = (self.to_array(), other.to_array());
        Tally::from_array(std::array::from_fn(|i| a[i] + b[i]))
    }
}

/// One driver's tally, published for the progress reporter.
#[derive(Debug, Default)]
pub(super) struct SharedTally([AtomicU64; TALLY_FIELDS]);

impl SharedTally {
    pub(super) fn publish(&self, t: &Tally) {
        for (slot, v) in self.0.iter().zip(t.to_array()) {
            // Relaxed: statistics read by the progress reporter.
            slot.store(v, Ordering::Relaxed);
        }
    }

    pub(super) fn read(&self) -> Tally {
        Tally::from_array(std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }
}

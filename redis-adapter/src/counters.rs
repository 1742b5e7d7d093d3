//! The node's statistics, shared by its handles, its worker, its change
//! feed driver and its leases (read as [`NodeStats`](crate::NodeStats)).

use std::sync::atomic::AtomicU64;

/// Counters shared with the node handles; monotonic, read with `Relaxed`
/// (they are statistics, not synchronization).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reconnects: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) gap_fills: AtomicU64,
    pub(crate) probe_failures: AtomicU64,
    pub(crate) feed_resyncs: AtomicU64,
    pub(crate) catchup_timeouts: AtomicU64,
    pub(crate) claims: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) routed: AtomicU64,
    pub(crate) routed_lost: AtomicU64,
    pub(crate) routed_local: AtomicU64,
}

//! Engine counters, read in O(1).

/// The engine's counters at one published version: see
/// [`Engine::stats`](crate::Engine::stats).
///
/// The graph counters (`connections` to `subscriptions`) and `version` come
/// from one graph version, so they agree with each other and with
/// [`Snapshot`](crate::Snapshot)'s counts at that version.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(7, 1).unwrap();
/// engine.thread(8);
/// let stats = engine.stats();
/// assert_eq!(stats.version, 3);
/// assert_eq!((stats.connections, stats.threads), (1, 2));
/// assert_eq!((stats.subscribed_threads, stats.subscriptions), (1, 1));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The graph version the counters describe.
    pub version: u64,
    /// Live connections.
    pub connections: usize,
    /// Thread entries, subscribed or not.
    pub threads: usize,
    /// Threads with at least one subscriber.
    pub subscribed_threads: usize,
    /// Subscriptions (edges).
    pub subscriptions: usize,
    /// Threads with a current listener.
    pub listeners: usize,
    /// `Listener` values not yet dropped, of any generation.
    pub live_listener_handles: usize,
}

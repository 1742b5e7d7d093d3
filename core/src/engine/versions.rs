//! The engine's versions, change feeds and counters (`Engine::version`,
//! `changes`, `changes_since`, `stats`), and the test-only node probe.

use super::Engine;
use crate::error::Lagged;
use crate::feed::ChangeFeed;
use crate::key::Key;
use crate::stats::Stats;
use crate::store::NodeCount;
use crate::sync::Arc;

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    // ------------------------------------------------------ versions and changes

    /// The latest published version: `0` for a new engine, then one more
    /// for each published version: a write that changed the graph, or
    /// several combined (see [`Engine`]'s docs); a write that changes
    /// nothing publishes nothing and takes no number. Never locks.
    pub fn version(&self) -> u64 {
        // The natural read: a hazard pin for the call (no shared write).
        self.current.read(|g| g.version)
    }

    /// A [`ChangeFeed`] at the current version: it yields the batch of
    /// every later version. Never locks.
    pub fn changes(&self) -> ChangeFeed<T, C> {
        ChangeFeed::new(Arc::clone(&self.log), self.version())
    }

    /// A [`ChangeFeed`] that yields the batch of every version after `v`:
    /// start a replica from a [`Snapshot`](crate::Snapshot) at `v`, then
    /// apply these. See the crate docs, "Following changes", for the resync
    /// loop.
    ///
    /// # Errors
    ///
    /// [`Lagged`] if a version after `v` is no longer retained (more than
    /// [`Config::change_log`](crate::Config::change_log) versions were
    /// published since `v`), or if `v` is later than
    /// [`version`](Self::version).
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine, Lagged};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// engine.connect(1, Caps::NONE);
    /// let mut feed = engine.changes_since(0).unwrap();
    /// assert_eq!(feed.try_next().unwrap().unwrap().version, 1);
    /// assert_eq!(engine.changes_since(2).unwrap_err(), Lagged); // not published yet
    /// ```
    pub fn changes_since(&self, v: u64) -> Result<ChangeFeed<T, C>, Lagged> {
        if self.log.retains_after(v, self.version()) {
            Ok(ChangeFeed::new(Arc::clone(&self.log), v))
        } else {
            Err(Lagged)
        }
    }

    /// The engine's counters: the graph's from one published version (no
    /// lock, no scan), the listener counts from the listener registry
    /// (under its mutex, held for two loads). O(1), no allocation.
    pub fn stats(&self) -> Stats {
        let (version, connections, threads, subscribed_threads, subscriptions) =
            self.current.read(|g| {
                (
                    g.version,
                    g.conns.len(),
                    g.threads.len(),
                    g.subs.len(),
                    g.edges,
                )
            });
        let (listeners, live_listener_handles) = self.listener_counts();
        Stats {
            version,
            connections,
            threads,
            subscribed_threads,
            subscriptions,
            listeners,
            live_listener_handles,
        }
    }
}

impl<T: Key, C: Key, S, M, D: Send + Sync + 'static> Engine<T, C, S, M, D> {
    /// (threads with a current listener, live `Listener` handles of any
    /// generation).
    pub(crate) fn listener_counts(&self) -> (usize, usize) {
        self.registry.counts()
    }

    /// A probe on this engine's trie-node count that outlives the engine,
    /// for leak tests. Not part of the API.
    #[doc(hidden)]
    pub fn node_probe(&self) -> NodeProbe {
        NodeProbe(self.current.node_count())
    }
}

/// How many trie nodes of one engine are live (made by
/// [`Engine::node_probe`]): zero once the engine and every snapshot of it
/// are gone, unless a node leaked. A test hook, not part of the API.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct NodeProbe(NodeCount);

impl NodeProbe {
    /// Trie nodes allocated and not yet freed.
    pub fn live_nodes(&self) -> usize {
        self.0.live()
    }
}

//! The subscription graph: one immutable value, published whole.
//!
//! A [`Graph`] is what readers load from the engine's `ArcSwap` and what a
//! [`Snapshot`](crate::Snapshot) pins. The store's `Versions` builds one per
//! write around a copy of the latest [`Tries`] (three root-pointer copies)
//! that the engine changed by path copying, and publishes it with one swap
//! (see `engine/mod.rs` and `store/versions/`).
//!
//! # Invariants (hold in every published graph)
//!
//! 1. **Indexes mirror each other.** `c ∈ subs[t]` ⇔ `t ∈ conns[c].threads`.
//! 2. **No edge to a dead connection.** Every connection named in `subs` is a
//!    key of `conns` (a connection is live iff it is a key of `conns`).
//! 3. **No edge to a missing thread.** Every key of `subs` is a key of
//!    `threads`.
//! 4. **No empty forward sets.** `subs[t]` is absent rather than empty, so
//!    `has_subscribers(t)` ⇔ `subs.contains_key(t)`.
//! 5. Every set is ascending and in its canonical representation, every trie
//!    in canonical shape (`store/set.rs`, `store/trie/`).
//! 6. **Counted edges.** `edges` is the number of edges (the sum of the
//!    forward sets' sizes), kept by the writer from the changes it records
//!    (`changes.rs`), so that counting subscriptions is O(1).
//! 7. **Incarnations.** Every live connection's `incarnation` is at most
//!    `incarnations` (the last one handed out), which never decreases, so
//!    a number once ended is never live again.
//! 8. **Data.** A live connection's `data` is `None` iff `D` is `()`
//!    (the data of every connection is then the one `()`; see
//!    [`ConnNode::data`]).
//!
//! `check_edge` re-checks 1–4 for the keys a write touched (in debug builds,
//! on every publish); [`Graph::validate`] checks everything.

use crate::caps::Caps;
use crate::hash::KeyHasher;
use crate::store::{HostArc, Keep, Publish, Roots, SubscriberSet, ThreadSet, Trie, Version};
use crate::sync::StdArc;
use crate::written::WriteBuf;
use std::any::Any;
use std::hash::Hash;

/// A thread entry with its host-state and message types erased, so that
/// snapshots are generic over the keys only.
pub(crate) type ErasedEntry = StdArc<dyn Any + Send + Sync>;

/// A live connection: its capabilities, its incarnation, the threads it
/// follows and its host data.
///
/// The incarnation is inline (no allocation). The data is shared by a
/// reference count that only writers touch (a path copy clones it, a read
/// only borrows it); with `D = ()` there is none at all: `data` is `None`
/// and reads lend the one `()` (invariant 8).
pub(crate) struct ConnNode<T: Copy + Ord, D> {
    pub(crate) caps: Caps,
    /// Which incarnation of this id is live (invariant 7).
    pub(crate) incarnation: u64,
    pub(crate) threads: ThreadSet<T>,
    /// No count at all when `D` is `()`, so that a path copy copies a
    /// node of such connections as one block (`HostArc`).
    data: HostArc<D>,
}

impl<T: Copy + Ord, D: 'static> ConnNode<T, D> {
    /// `data` as a connection holds it: shared by a reference count, or
    /// nothing for `()` (reads lend the static one; no allocation).
    pub(crate) fn wrap_data(data: D) -> HostArc<D> {
        HostArc::new(data)
    }

    /// A connection with no thread yet, holding `data` (from
    /// [`wrap_data`](Self::wrap_data)).
    pub(crate) fn new(caps: Caps, incarnation: u64, data: HostArc<D>) -> Self {
        ConnNode {
            caps,
            incarnation,
            threads: ThreadSet::Empty,
            data,
        }
    }

    /// The connection's data (invariant 8).
    #[inline(always)]
    pub(crate) fn data(&self) -> Option<&D> {
        self.data.get()
    }
}

crate::store::share_fields! {
    impl<T, D> for ConnNode<T, D> where [T: Copy + Ord + Send + Sync, D: Send + Sync + 'static] {
        copied: [caps, incarnation],
        shared: [threads],
        host: [data],
    }
}

/// The three tries of one graph version. Copying them (`share`, the store
/// only) shares every node; they own nothing by themselves (see
/// `store/mod.rs`).
pub(crate) struct Tries<T: Copy + Ord, C: Copy + Ord, D = ()> {
    /// Every thread entry, subscribed or not.
    pub(crate) threads: Trie<T, ErasedEntry>,
    /// Forward index: thread → its subscribers (non-empty sets only).
    pub(crate) subs: Trie<T, SubscriberSet<C>>,
    /// Live connections with their capabilities and the reverse index.
    pub(crate) conns: Trie<C, ConnNode<T, D>>,
    /// How many edges there are (invariant 6).
    pub(crate) edges: usize,
    /// The last incarnation handed out (invariant 7).
    pub(crate) incarnations: u64,
}

/// One published version of the whole graph: what readers load.
///
/// Aligned to a cache line: readers read its fields on every lookup while
/// the writer allocates and frees next to it, and with `malloc` placement
/// that false sharing made some runs of a reader under a flat-out writer
/// keep 34-40% of its solo rate instead of ~80% (7 runs of 10, measured
/// with the trie nodes already in the pool). It costs one aligned
/// allocation per publish (~0.1 µs).
#[repr(align(64))]
pub(crate) struct Graph<T: Copy + Ord, C: Copy + Ord, D = ()> {
    tries: Tries<T, C, D>,
    /// This version's number (the writer's publish counter).
    pub(crate) version: Version,
    /// Keeps every node alive while this version exists.
    _owner: Keep,
}

impl<T: Copy + Ord, C: Copy + Ord, D> std::ops::Deref for Graph<T, C, D> {
    type Target = Tries<T, C, D>;

    fn deref(&self) -> &Tries<T, C, D> {
        &self.tries
    }
}

impl<T, C, D> Publish for Graph<T, C, D>
where
    T: Copy + Ord + Send + Sync + 'static,
    C: Copy + Ord + Send + Sync + 'static,
    D: Send + Sync + 'static,
{
    type Roots = Tries<T, C, D>;
    type Extra = WriteBuf<T, C>;

    fn wrap(tries: Tries<T, C, D>, version: Version, keep: Keep) -> Self {
        Graph {
            tries,
            version,
            _owner: keep,
        }
    }
}

crate::store::share_fields! {
    impl<T, C, D> for Tries<T, C, D> where [
        T: Copy + Ord + Send + Sync + 'static,
        C: Copy + Ord + Send + Sync + 'static,
        D: Send + Sync + 'static,
    ] {
        copied: [edges, incarnations],
        shared: [threads, subs, conns],
        host: [],
    }
}

impl<T, C, D> Roots for Tries<T, C, D>
where
    T: Copy + Ord + Send + Sync + 'static,
    C: Copy + Ord + Send + Sync + 'static,
    D: Send + Sync + 'static,
{
}

impl<T: Copy + Ord, C: Copy + Ord, D> Tries<T, C, D> {
    /// Empty tries, placing keys by `hasher` (the engine's seed).
    pub(crate) fn new(hasher: &KeyHasher) -> Self {
        Tries {
            threads: Trie::with_hasher(hasher.clone()),
            subs: Trie::with_hasher(hasher.clone()),
            conns: Trie::with_hasher(hasher.clone()),
            edges: 0,
            incarnations: 0,
        }
    }
}

impl<T, C, D: 'static> Tries<T, C, D>
where
    T: Copy + Ord + Hash + std::fmt::Debug,
    C: Copy + Ord + Hash + std::fmt::Debug,
{
    /// Re-checks invariants 1–4 for the edges of `t` and `c` only: cheap
    /// enough to run on every publish in debug builds.
    pub(crate) fn check_edge(&self, t: &T, c: &C) -> Result<(), String> {
        let forward = self.subs.get(t).is_some_and(|s| s.contains(c));
        let conn = self.conns.get(c);
        let reverse = conn.is_some_and(|n| n.threads.contains(t));
        if forward != reverse {
            return Err(format!(
                "edge {t:?}-{c:?}: forward {forward}, reverse {reverse}"
            ));
        }
        if self.subs.get(t).is_some_and(|s| s.is_empty()) {
            return Err(format!("empty subscriber set stored for {t:?}"));
        }
        if self.subs.contains_key(t) && !self.threads.contains_key(t) {
            return Err(format!("{t:?} has subscribers but no entry"));
        }
        Ok(())
    }

    /// Checks every invariant; O(edges · log n).
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.threads.check()?;
        self.subs.check()?;
        self.conns.check()?;
        let mut err = None;
        let mut forward_edges = 0usize;
        self.subs.for_each(|t, set| {
            if err.is_some() {
                return;
            }
            forward_edges += set.len();
            if let Err(e) = set.check() {
                err = Some(format!("subscribers of {t:?}: {e}"));
            } else if set.is_empty() {
                err = Some(format!("empty subscriber set stored for {t:?}"));
            } else if !self.threads.contains_key(t) {
                err = Some(format!("{t:?} has subscribers but no entry"));
            } else if let Some(c) = set
                .iter()
                .find(|c| !self.conns.get(c).is_some_and(|n| n.threads.contains(t)))
            {
                err = Some(format!(
                    "edge {t:?}-{c:?} is in the forward index only (or {c:?} is not live)"
                ));
            }
        });
        let mut reverse_edges = 0usize;
        self.conns.for_each(|c, node| {
            if err.is_some() {
                return;
            }
            reverse_edges += node.threads.len();
            if node.incarnation == 0 || node.incarnation > self.incarnations {
                err = Some(format!(
                    "{c:?} is in incarnation {} of {} handed out",
                    node.incarnation, self.incarnations
                ));
            } else if node.data().is_none() {
                err = Some(format!("{c:?} has no data"));
            } else if let Err(e) = node.threads.check() {
                err = Some(format!("threads of {c:?}: {e}"));
            } else if let Some(t) = node
                .threads
                .iter()
                .find(|t| !self.subs.get(t).is_some_and(|s| s.contains(c)))
            {
                err = Some(format!("edge {t:?}-{c:?} is in the reverse index only"));
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        if forward_edges != reverse_edges {
            return Err(format!(
                "{forward_edges} forward edges but {reverse_edges} reverse edges"
            ));
        }
        if forward_edges != self.edges {
            return Err(format!(
                "{forward_edges} edges but the count says {}",
                self.edges
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnNode;
    use crate::store::Share;

    /// A path copy copies a node of connections as one block only where
    /// the connection holds no count: with `()` data, and not with any
    /// other (where each copy must take one).
    #[test]
    fn connections_copy_as_bits_only_without_data() {
        assert!(<ConnNode<u64, ()> as Share>::bit_copy());
        assert!(!<ConnNode<u64, String> as Share>::bit_copy());
        assert!(!<ConnNode<u64, ((),)> as Share>::bit_copy());
    }
}

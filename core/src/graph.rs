//! The subscription graph: one immutable value, published whole.
//!
//! A [`Graph`] is what readers load from the engine's `ArcSwap` and what a
//! [`Snapshot`](crate::Snapshot) pins. Writers clone the current graph (three
//! root-pointer copies), change the clone by path copying, and publish it
//! with one store (see `engine/mod.rs`).
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

use crate::changes::ChangeBuf;
use crate::store::{Reclaimer, Share, ShareToken, SubscriberSet, ThreadSet, Trie, Version};
use crate::sync::{Arc, Mutex, StdArc};
use crate::Caps;
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
    data: Option<StdArc<D>>,
}

/// `Some(&())` when `D` is `()`, else `None`. The compiler folds the check.
#[inline(always)]
pub(crate) fn unit<D: 'static>() -> Option<&'static D> {
    (&() as &dyn Any).downcast_ref::<D>()
}

impl<T: Copy + Ord, D: 'static> ConnNode<T, D> {
    /// A connection with no thread yet.
    pub(crate) fn new(caps: Caps, incarnation: u64, data: D) -> Self {
        ConnNode {
            caps,
            incarnation,
            threads: ThreadSet::Empty,
            // `()` needs no allocation: reads lend the static one.
            data: if unit::<D>().is_some() {
                None
            } else {
                Some(StdArc::new(data))
            },
        }
    }

    /// The connection's data (invariant 8).
    #[inline(always)]
    pub(crate) fn data(&self) -> Option<&D> {
        match &self.data {
            Some(d) => Some(d),
            None => unit::<D>(),
        }
    }
}

impl<T: Copy + Ord, D: Send + Sync> Share for ConnNode<T, D> {
    fn share(&self, token: &ShareToken) -> Self {
        ConnNode {
            caps: self.caps,
            incarnation: self.incarnation,
            threads: self.threads.share(token),
            data: self.data.as_ref().map(|d| d.share(token)),
        }
    }
}

/// The three tries of one graph version. Copying them (`share`) shares
/// every node; they own nothing by themselves (see `store/mod.rs`).
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
    /// Keeps the owner of every node alive while this version exists.
    _owner: Arc<NodeOwner<T, C, D>>,
}

impl<T: Copy + Ord, C: Copy + Ord, D> std::ops::Deref for Graph<T, C, D> {
    type Target = Tries<T, C, D>;

    fn deref(&self) -> &Tries<T, C, D> {
        &self.tries
    }
}

/// The writer's state: the latest tries, the versions readers may still
/// hold, and the nodes replaced since.
pub(crate) struct Writer<T: Copy + Ord, C: Copy + Ord, D = ()> {
    /// The tries of the latest published version (the base of the next).
    pub(crate) latest: Tries<T, C, D>,
    /// The latest published version number.
    pub(crate) version: Version,
    /// Replaced versions that a reader may still hold. Holding them here
    /// (a reference cycle through `NodeOwner`) makes the writer the one that
    /// drops them; the engine's drop breaks the cycle.
    pub(crate) retired: Vec<Arc<Graph<T, C, D>>>,
    /// Nodes replaced since, freed once no held version can see them.
    pub(crate) reclaimer: Reclaimer,
    /// The changes of the write in progress, for the change log.
    pub(crate) changes: ChangeBuf<T, C>,
}

impl<T: Copy + Ord, C: Copy + Ord, D> Writer<T, C, D> {
    /// Takes the version just replaced by a publish, drops every retired
    /// version no reader holds, and frees the nodes none of the rest can see.
    #[allow(unsafe_code)]
    pub(crate) fn retire(&mut self, replaced: Arc<Graph<T, C, D>>) {
        self.retired.push(replaced);
        // Strong count 1: only this list holds the version. The cell no
        // longer does (it was swapped out) and every reader that loaded it
        // before the swap is counted (`swap` paid its debts): nobody can
        // reach it again, and dropping this last reference synchronises with
        // every reader's release of it (`store/mod.rs`, "Reclamation",
        // steps 2-4).
        self.retired.retain(|g| Arc::strong_count(g) > 1);
        let held = self.retired.iter().map(|g| g.version);
        // SAFETY: the versions a reader may hold are the latest one (in
        // which no retired node is visible) and those still in `retired`,
        // all of which `held` lists ("Reclamation", step 5).
        unsafe { self.reclaimer.collect(held) }
    }
}

/// Owns every trie node: those of the latest version (through
/// `Writer::latest`) and the replaced ones (through the reclaimer). Every
/// graph version holds it, so it outlives all of them: the last version to
/// go frees the nodes, and until then nothing is freed that a version can
/// reach.
pub(crate) struct NodeOwner<T: Copy + Ord, C: Copy + Ord, D = ()> {
    pub(crate) writer: Mutex<Writer<T, C, D>>,
}

impl<T: Copy + Ord, C: Copy + Ord, D> NodeOwner<T, C, D> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(NodeOwner {
            writer: Mutex::new(Writer {
                latest: Tries::new(),
                version: 0,
                retired: Vec::new(),
                reclaimer: Reclaimer::default(),
                changes: ChangeBuf::new(),
            }),
        })
    }

    /// Wraps `tries` as the published version `version`.
    pub(crate) fn graph(
        owner: &Arc<Self>,
        tries: Tries<T, C, D>,
        version: Version,
    ) -> Arc<Graph<T, C, D>> {
        Arc::new(Graph {
            tries,
            version,
            _owner: Arc::clone(owner),
        })
    }
}

impl<T: Copy + Ord, C: Copy + Ord, D> Drop for NodeOwner<T, C, D> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let w = &mut *self.writer.lock();
        // SAFETY: the owner is dropped only when no graph version exists
        // (each holds an `Arc<NodeOwner>`), so no reader can reach any node
        // ("Reclamation", step 7); the latest tries and their sets own their
        // nodes alone (each set's tree first, while the trie nodes holding
        // it still exist), the replaced ones are freed by the reclaimer's
        // own drop right after.
        unsafe {
            let pool = w.reclaimer.pool();
            let latest = &mut w.latest;
            latest.subs.for_each(|_, set| set.free_all(pool));
            latest.conns.for_each(|_, node| node.threads.free_all(pool));
            latest.threads.free_all(pool);
            latest.subs.free_all(pool);
            latest.conns.free_all(pool);
        }
    }
}

impl<T: Copy + Ord, C: Copy + Ord, D> Tries<T, C, D> {
    pub(crate) const fn new() -> Self {
        Tries {
            threads: Trie::new(),
            subs: Trie::new(),
            conns: Trie::new(),
            edges: 0,
            incarnations: 0,
        }
    }

    /// A copy sharing every node.
    pub(crate) fn share(&self) -> Self {
        Tries {
            threads: self.threads.share(),
            subs: self.subs.share(),
            conns: self.conns.share(),
            edges: self.edges,
            incarnations: self.incarnations,
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

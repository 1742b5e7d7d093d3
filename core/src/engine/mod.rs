//! The engine: where the subscription graph is published.
//!
//! Readers reach the current [`Graph`] through the store's `Versions` and
//! look things up in it: no lock, no shared write, no allocation. A
//! per-call read (`with_view`, every method of `read_api!`) pins the version
//! in a hazard slot of the reading thread (`Versions::read`); a value that
//! outlives the call (`subscribers`, `snapshot`) holds an `ArcSwap` load
//! guard or a full reference instead.
//!
//! Writers go through `Versions::write`: under the writer mutex it copies
//! the latest tries (three root pointers), lets the engine change the copy
//! by path copying inside one transaction, and publishes it with one
//! `swap`, together with the writes queued behind it (combining,
//! `store/versions/`). Only then does the publishing write append the
//! version's changes to the change log (`changes.rs`) and notify watches
//! (`written.rs`), still under the writer mutex, so both happen in publish
//! order.
//!
//! # Reclamation
//!
//! The store does it, inside `Versions::write` (`store/versions/`; the
//! proof is in `store/mod.rs`): a replaced graph version goes on the
//! writer's `retired` list, a retired version no reader holds any more is
//! dropped, and the trie nodes replaced by writes are freed once no retired
//! version still held can see them. All of this runs on the writer's thread
//! during a write: readers never free graph memory, and memory held only by
//! dropped snapshots is freed by the next write at the latest. No code here
//! shares, frees or publishes nodes: it only says what a write changes.

mod batch;
mod connections;
mod listeners;
mod ops;
#[cfg(all(test, not(loom)))]
mod tests;
mod versions;

pub use batch::Batch;
use ops::{Edit, Effects};

pub use versions::NodeProbe;

use crate::caps::Caps;
use crate::changes::ChangeLog;
use crate::config::Config;
use crate::entry::ThreadEntry;
use crate::error::NotConnected;
use crate::graph::{ConnNode, ErasedEntry, Graph, Tries};
use crate::hash::KeyHasher;
use crate::key::Key;
use crate::reader::Reader;
use crate::shutdown::Registry;
use crate::snapshot::{Snapshot, Subscribers};
use crate::store::Versions;
use crate::sync::{Arc, StdArc};
use crate::view::{read_api, View};
use crate::watch::SubscriberWatch;
use crate::written::WriteBuf;
use std::fmt;
use std::marker::PhantomData;

/// The connection/thread state engine. Share it as `Arc<Engine<..>>`.
///
/// * `T`: thread id, `C`: connection id.
/// * `S`: per-thread host state ([`ThreadEntry::state`]). It needs
///   `Default` only for the methods that create an entry with a default
///   state (`subscribe`, `subscribe_if`, `thread`); `thread_with` and
///   `subscribe_with` serve any state.
/// * `M`: the command type listeners receive ([`ThreadEntry::send`]).
/// * `D`: per-connection host data (an outbox sender, say), handed to the
///   fan-out by [`for_each_subscriber_data`](Self::for_each_subscriber_data);
///   `()` (the default) costs nothing.
///
/// Every method takes `&self`. Reads (`subscribers`, `has_subscribers`,
/// `threads_of`, `first_subscriber_with`, `subscribers_with`,
/// `is_connected`, `caps`, `contains_thread`, `get_thread`, `snapshot`,
/// `for_each_subscriber`, `for_each_subscriber_data`, `is_subscribed`,
/// `incarnation`, `data`) never wait for a writer; each states its cost.
/// A [`Snapshot`] and a per-OS-thread [`Reader`] have the same read methods
/// (they share one implementation), and the reader's are cheaper still.
/// Writes are serialised by one internal mutex held for the few
/// microseconds of a path copy. Writers that queue for it are *combined*:
/// each runs its own write on its own thread, in turn, and the last of the
/// queue publishes them all as one version (the change feed then gives
/// their changes in one [`ChangeBatch`](crate::ChangeBatch), in the order
/// they took effect). Every writing method still returns only once its
/// write is published, so each is linearizable. A writer alone never
/// waits for another: it pays an uncontended `try_lock` and the group's
/// bookkeeping (about 640 instructions per subscribe+unsubscribe pair at
/// 1k threads when it was measured, of about 13,000; `benches/HISTORY.md`).
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// engine.connect(1, Caps::NONE);
/// engine.connect(2, Caps(0b1));
/// engine.subscribe(10, 2).unwrap();
/// engine.subscribe(10, 1).unwrap();
/// assert_eq!(engine.subscribers(10).to_vec(), [1, 2]);
/// assert_eq!(engine.first_subscriber_with(10, Caps(0b1)), Some(2));
/// assert_eq!(engine.disconnect(2), Vec::<u64>::new()); // 10 still has 1
/// assert_eq!(engine.disconnect(1), [10]); // 10 lost its last subscriber
/// ```
pub struct Engine<T: Key, C: Key, S = (), M = (), D: Send + Sync + 'static = ()> {
    /// The published versions, the writer mutex and the owner of every
    /// node (`store/versions/`).
    current: Versions<Graph<T, C, D>>,
    /// Every listener handle and current listener of this engine's entries.
    registry: StdArc<Registry<T>>,
    /// The changes of the last published versions, for feeds.
    log: Arc<ChangeLog<T, C>>,
    _entries: PhantomData<fn() -> (S, M)>,
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static> Default
    for Engine<T, C, S, M, D>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    /// An empty engine, with the default [`Config`].
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// An empty engine set up by `config`.
    pub fn with_config(config: Config) -> Self {
        let hasher = match config.hash_seed {
            Some(seed) => KeyHasher::seeded(seed),
            None => KeyHasher::random(),
        };
        Engine {
            current: Versions::new(WriteBuf::new(), || Tries::new(&hasher)),
            registry: StdArc::new(Registry::new()),
            log: Arc::new(ChangeLog::new(config.change_log)),
            _entries: PhantomData,
        }
    }

    /// The latest version (the crate's unit tests).
    #[cfg(test)]
    pub(crate) fn latest(&self) -> crate::sync::Guard<Arc<Graph<T, C, D>>> {
        self.current.load()
    }

    fn entry_of(erased: &ErasedEntry) -> &ThreadEntry<T, S, M> {
        ops::entry_of(erased)
    }

    fn entry_arc(erased: &ErasedEntry) -> StdArc<ThreadEntry<T, S, M>> {
        ops::entry_arc(erased)
    }

    /// Runs `op` on a copy of the latest tries under the writer mutex, as
    /// one transaction, and returns once its changes are published (with
    /// those of other callers' writes queued behind it, if any: combining,
    /// `store/versions/`). An operation records each change it makes, in
    /// order, and copies no node unless it changes something. The
    /// publishing write appends the version's changes to the change log
    /// and flips the watches, still under the mutex (so both happen in
    /// publish order); removed threads' listeners are cleared by each
    /// write's own caller after the mutex.
    fn write_op<R>(&self, op: impl FnOnce(&mut Edit<'_, '_, T, C, S, M, D>) -> R) -> R {
        let mut effects = Effects::new();
        let out = self.current.write(
            |g, txn, buf| {
                let mark = buf.changes.mark();
                let out = op(&mut Edit {
                    registry: &self.registry,
                    g: &mut *g,
                    txn,
                    log: &mut *buf,
                    effects: &mut effects,
                });
                g.edges = buf.changes.edges_after(g.edges, mark);
                (buf.changes.changed_since(mark), out)
            },
            |graph, buf| {
                // Only now: a feed that receives this batch sees its graph.
                self.log.append(graph.version, &mut buf.changes);
                buf.published();
            },
        );
        effects.unlocked();
        out
    }

    // -------------------------------------------------------------- subscriptions

    /// Subscribes live connection `c` to thread `t`, creating the thread's
    /// entry if needed, and returns the entry. Idempotent.
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live; then nothing changes (in
    /// particular no thread entry is created).
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq`/`Ord` of `t` and `c` (the fast path for an existing edge
    /// takes no lock) and, if it creates the entry, `S::default()`, under the
    /// writer lock. Values this write's reclamation frees are dropped after
    /// the lock, on this thread.
    pub fn subscribe(&self, t: T, c: C) -> Result<StdArc<ThreadEntry<T, S, M>>, NotConnected>
    where
        S: Default,
    {
        self.subscribe_where(t, c, None, S::default)
    }

    /// [`subscribe`](Self::subscribe) for a state type with no
    /// `Default`: if the thread's entry is created, its state is `init()`
    /// (run only then, under the writer lock, as
    /// [`thread_with`](Self::thread_with)'s).
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live; then nothing changes and `init`
    /// does not run.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// struct Room { name: String } // no `Default`
    /// let engine: Engine<u64, u64, Room> = Engine::new();
    /// engine.connect(1, Caps::NONE);
    /// let room = engine.subscribe_with(7, 1, || Room { name: "lobby".into() }).unwrap();
    /// assert_eq!(room.state().name, "lobby");
    /// ```
    ///
    /// # Host code
    ///
    /// as [`subscribe`](Self::subscribe), with `init` for `S::default()`.
    pub fn subscribe_with(
        &self,
        t: T,
        c: C,
        init: impl FnOnce() -> S,
    ) -> Result<StdArc<ThreadEntry<T, S, M>>, NotConnected> {
        self.subscribe_where(t, c, None, init)
    }

    /// `subscribe`, only while `c` is live in `incarnation` if given.
    fn subscribe_where(
        &self,
        t: T,
        c: C,
        incarnation: Option<u64>,
        init: impl FnOnce() -> S,
    ) -> Result<StdArc<ThreadEntry<T, S, M>>, NotConnected> {
        let live = |n: &ConnNode<T, D>| !matches!(incarnation, Some(i) if i != n.incarnation);
        // Fast path: the edge is already there (a valid linearization
        // point for an idempotent subscribe).
        let present = self.current.read(|g| {
            g.conns
                .get(&c)
                .is_some_and(|n| live(n) && n.threads.contains(&t))
                .then(|| g.threads.get(&t).map(Self::entry_arc))
                .flatten()
        });
        if let Some(e) = present {
            return Ok(e);
        }
        self.write_op(|e| e.subscribe(t, c, incarnation, init))
    }

    /// Removes the edge `t`–`c`. Returns whether it existed. The thread entry
    /// stays even if this was its last subscriber (its watch flips to
    /// `false`).
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq`/`Ord` of `t` and `c`, under the writer lock. Values this
    /// write's reclamation frees are dropped after the lock, on this thread.
    pub fn unsubscribe(&self, t: T, c: C) -> bool {
        self.unsubscribe_where(t, c, None)
    }

    /// Removes the edge `t`–`c` if it exists (and, if `incarnation` is
    /// given, only while `c` is live in it). Returns whether it did.
    fn unsubscribe_where(&self, t: T, c: C, incarnation: Option<u64>) -> bool {
        self.write_op(|e| e.unsubscribe(t, c, incarnation))
    }

    /// The subscribers of `t` at this instant, ascending: a frozen view.
    /// Costs what [`for_each_subscriber`](Self::for_each_subscriber) costs
    /// plus a copy of a few words, with no shared write: see
    /// [`Subscribers`]. (More than four subscribers: a second lookup, under
    /// the `ArcSwap` load guard the view then keeps.)
    #[inline]
    pub fn subscribers(&self, t: T) -> Subscribers<C> {
        // A set of up to four is copied out under a hazard pin; a larger one
        // is read in place, so the view keeps its version by a load guard.
        self.current
            .read(|g| Subscribers::copied(g, &t))
            .unwrap_or_else(|| Subscribers::pinned(self.current.load(), &t))
    }

    #[inline]
    fn with_view<R>(&self, f: impl FnOnce(View<'_, T, C, D>) -> R) -> R {
        self.current.read(|g| f(View::new(g)))
    }

    read_api!(
        "Reaching the version: a pin in a hazard slot of the calling thread \
         (a plain store, one fence, a plain store when the call returns), \
         which writes no shared memory (a [`Reader`] skips even the fence)."
    );

    // -------------------------------------------------------------------- threads

    /// The entry of `t`, created (with `S::default()`, no listener, no
    /// subscribers) if it does not exist.
    ///
    /// # Host code
    ///
    /// as [`thread_with`](Self::thread_with), with `S::default()` as `init`.
    pub fn thread(&self, t: T) -> StdArc<ThreadEntry<T, S, M>>
    where
        S: Default,
    {
        self.thread_with(t, S::default)
    }

    /// The entry of `t`, created with the state `init()` (no listener, no
    /// subscribers) if it does not exist. `init` runs only if the entry is
    /// created, under the engine's writer lock: keep it short, and do not
    /// call an engine's writing methods from it (such a call panics rather
    /// than wait for itself). If it panics, nothing changes (guarantee 13).
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::Engine;
    ///
    /// let engine: Engine<u64, u64, String> = Engine::new();
    /// let room = engine.thread_with(1, || "lobby".to_string());
    /// assert_eq!(*room.state(), "lobby");
    /// let again = engine.thread_with(1, || unreachable!("the entry exists"));
    /// assert_eq!(*again.state(), "lobby");
    /// ```
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq` of `t` (the lookup of an existing entry takes no lock)
    /// and, if it creates the entry, `init`, under the writer lock. Values
    /// this write's reclamation frees are dropped after the lock, on this
    /// thread.
    pub fn thread_with(&self, t: T, init: impl FnOnce() -> S) -> StdArc<ThreadEntry<T, S, M>> {
        if let Some(e) = self.get_thread(t) {
            return e;
        }
        self.write_op(|e| e.thread_with(t, init))
    }

    /// The entry of `t`, if it exists. Never locks.
    pub fn get_thread(&self, t: T) -> Option<StdArc<ThreadEntry<T, S, M>>> {
        self.current
            .read(|g| g.threads.get(&t).map(Self::entry_arc))
    }

    /// Removes `t` if it exists, and if `idle_only`, has no subscriber, and
    /// if `only`, its entry is that one.
    fn remove_thread_where(
        &self,
        t: T,
        idle_only: bool,
        only: Option<&ThreadEntry<T, S, M>>,
    ) -> bool {
        self.write_op(|e| e.remove_thread(t, idle_only, only))
    }

    /// Removes `t`: drops its edges both ways, clears its listener (the
    /// token fires, the queue closes) and closes its watches. Returns whether
    /// it existed.
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq`/`Ord` of `t` and of its subscribers, under the writer
    /// lock. The entry's listener is cleared after the lock (its queued
    /// commands are dropped with its queue), and its state is dropped when
    /// the last reference goes: by this call after the lock if no one else
    /// holds one.
    pub fn remove_thread(&self, t: T) -> bool {
        self.remove_thread_where(t, false, None)
    }

    /// Removes `t` as [`remove_thread`](Self::remove_thread) does, but only
    /// if it has no subscriber at that instant. Atomic against a racing
    /// `subscribe`: either the subscribe comes first and this returns
    /// `false`, or this comes first and the subscribe creates a new entry.
    ///
    /// # Host code
    ///
    /// as [`remove_thread`](Self::remove_thread).
    pub fn remove_thread_if_idle(&self, t: T) -> bool {
        self.remove_thread_where(t, true, None)
    }

    /// Removes `entry`'s thread as [`remove_thread_if_idle`](Self::remove_thread_if_idle)
    /// does, but only while `entry` is still the thread's current entry: a
    /// listener task can unload *its* thread without racing a removal and
    /// re-creation of the same id.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::Engine;
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let old = engine.thread(1);
    /// engine.remove_thread(1);
    /// let new = engine.thread(1);
    /// assert!(!engine.remove_entry_if_idle(&old)); // not the current entry
    /// assert!(engine.remove_entry_if_idle(&new));
    /// ```
    ///
    /// # Host code
    ///
    /// as [`remove_thread`](Self::remove_thread).
    pub fn remove_entry_if_idle(&self, entry: &StdArc<ThreadEntry<T, S, M>>) -> bool {
        self.remove_thread_where(entry.id(), true, Some(entry))
    }

    /// A watch on whether `t` has subscribers; `None` if `t` does not exist.
    pub fn watch_subscribers(&self, t: T) -> Option<SubscriberWatch> {
        self.current.read(|g| {
            g.threads
                .get(&t)
                .map(|e| Self::entry_of(e).watch_subscribers())
        })
    }

    /// A read handle for one OS thread (a worker thread of the host) that
    /// keeps the version it last read, for hot read loops: see [`Reader`].
    pub fn reader(&self) -> Reader<'_, T, C, D> {
        Reader::new(self.current.cached())
    }

    /// A consistent view of the whole graph at this instant. Never locks or
    /// allocates. Holding it keeps that graph version alive.
    pub fn snapshot(&self) -> Snapshot<T, C, D> {
        Snapshot::new(self.current.load())
    }
}

impl<T: Key, C: Key, S, M, D: Send + Sync + 'static> fmt::Debug for Engine<T, C, S, M, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, conns, threads, subscribed) = self
            .current
            .read(|g| (g.version, g.conns.len(), g.threads.len(), g.subs.len()));
        let (listeners, handles) = self.listener_counts();
        f.debug_struct("Engine")
            .field("version", &version)
            .field("connections", &conns)
            .field("threads", &threads)
            .field("subscribed_threads", &subscribed)
            .field("listeners", &listeners)
            .field("live_listener_handles", &handles)
            .finish()
    }
}

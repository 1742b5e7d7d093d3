//! Frozen views of the graph: [`Snapshot`] (all of it) and [`Subscribers`]
//! (one thread's subscriber set).

use crate::caps::Caps;
use crate::error::InvariantViolation;
use crate::graph::Graph;
use crate::key::Key;
use crate::store::{PinnedSubscribers, SetIter};
use crate::sync::{Arc, Guard};
use crate::view::{read_api, View};
use std::fmt;

/// The subscribers of one thread at one instant, ascending. Returned by
/// [`Engine::subscribers`](crate::Engine::subscribers),
/// [`Snapshot::subscribers`] and [`Reader::subscribers`](crate::Reader::subscribers);
/// it never changes.
///
/// Making one never locks or allocates, and its cost is that of
/// [`for_each_subscriber`](crate::Engine::for_each_subscriber) plus a copy
/// of a few words: up to four subscribers are copied inline and the view
/// holds no version; a larger set is read in place in the graph version it
/// came from, which the view keeps alive until it is dropped. From an
/// `Engine` or a `Reader` it keeps it by the engine's load guard (a slot of
/// the calling thread's own: two threads reading one big thread write no
/// common cache line; a thread holding more than a few such views at once
/// gets a reference count for the extra ones, as `arc-swap` does for any
/// guard); from a `Snapshot`, by one more reference count on the
/// snapshot's version. Hold a view for a fan-out, not for a session: it
/// keeps its version's memory alive, as a snapshot does.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// for c in 1..=3 {
///     engine.connect(c, Caps::NONE);
///     engine.subscribe(9, c).unwrap();
/// }
/// let mut sum = 0;
/// for c in engine.subscribers(9).iter() {
///     sum += c;
/// }
/// assert_eq!(sum, 6);
/// ```
#[derive(Clone)]
pub struct Subscribers<C: Key> {
    set: PinnedSubscribers<C>,
}

impl<C: Key> Subscribers<C> {
    /// The set of `t` in the version `guard` holds, kept alive by `guard`
    /// if it is a tree (else the guard is released here).
    #[inline]
    pub(crate) fn pinned<T: Key, D: Send + Sync + 'static>(
        guard: Guard<Arc<Graph<T, C, D>>>,
        t: &T,
    ) -> Self {
        let set = PinnedSubscribers::from_guard(guard, |g| View::new(g).subscriber_set(t));
        Subscribers { set }
    }

    /// The set of `t` in `graph` copied out, if it needs no pin (up to
    /// four members); `None` for a larger one.
    #[inline]
    pub(crate) fn copied<T: Key, D: 'static>(graph: &Graph<T, C, D>, t: &T) -> Option<Self> {
        let set = PinnedSubscribers::unpinned(View::new(graph).subscriber_set(t))?;
        Some(Subscribers { set })
    }

    /// The set of `t` in `graph`, kept alive by a new reference to `graph`
    /// if it is a tree.
    #[inline]
    pub(crate) fn shared<T: Key, D: Send + Sync + 'static>(
        graph: &Arc<Graph<T, C, D>>,
        t: &T,
    ) -> Self {
        let set = PinnedSubscribers::from_arc(graph, |g| View::new(g).subscriber_set(t));
        Subscribers { set }
    }

    /// The subscribers, ascending.
    #[inline]
    pub fn iter(&self) -> SubscribersIter<'_, C> {
        SubscribersIter(self.set.iter())
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether `c` is one of them.
    pub fn contains(&self, c: C) -> bool {
        self.set.contains(&c)
    }

    /// The subscribers as a `Vec`, ascending.
    pub fn to_vec(&self) -> Vec<C> {
        self.set.iter().collect()
    }
}

impl<'a, C: Key> IntoIterator for &'a Subscribers<C> {
    type Item = C;
    type IntoIter = SubscribersIter<'a, C>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Ascending iterator over [`Subscribers`].
pub struct SubscribersIter<'a, C: Key>(SetIter<'a, C>);

impl<C: Key> Iterator for SubscribersIter<'_, C> {
    type Item = C;

    #[inline]
    fn next(&mut self) -> Option<C> {
        self.0.next()
    }

    #[inline]
    fn fold<B, F: FnMut(B, C) -> B>(self, init: B, f: F) -> B {
        self.0.fold(init, f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<C: Key> ExactSizeIterator for SubscribersIter<'_, C> {}

impl<C: Key> fmt::Debug for SubscribersIter<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscribersIter").finish_non_exhaustive()
    }
}

impl<C: Key> fmt::Debug for Subscribers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.set.iter()).finish()
    }
}

/// The whole graph at one instant: connections, threads and the edges
/// between them, from one published version. Later writes never change it.
///
/// Taking one never locks or allocates; its reads cost what the same
/// reads through the engine cost, less the per-call load (see each
/// method). Holding one keeps its version's memory alive (versions are reclaimed by the writer once no snapshot
/// holds them), so hold it for a request, not for a session.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(5, 1).unwrap();
/// let before = engine.snapshot();
/// engine.disconnect(1);
/// assert_eq!(before.subscribers(5).to_vec(), [1]);
/// assert!(!engine.snapshot().has_subscribers(5));
/// assert!(before.validate().is_ok());
/// ```
///
/// `D` is the engine's connection data type (`()` unless the engine
/// carries data): see [`for_each_subscriber_data`](Self::for_each_subscriber_data).
pub struct Snapshot<T: Key, C: Key, D = ()> {
    graph: Guard<Arc<Graph<T, C, D>>>,
}

impl<T: Key, C: Key, D: Send + Sync + 'static> Snapshot<T, C, D> {
    pub(crate) fn new(graph: Guard<Arc<Graph<T, C, D>>>) -> Self {
        Snapshot { graph }
    }

    fn with_view<R>(&self, f: impl FnOnce(View<'_, T, C, D>) -> R) -> R {
        f(View::new(&self.graph))
    }

    read_api!("Reaching the version: nothing, the snapshot holds it.");

    /// The subscribers of `t`, ascending: a view that keeps this
    /// snapshot's version alive (see [`Subscribers`] for the cost).
    #[inline]
    pub fn subscribers(&self, t: T) -> Subscribers<C> {
        Subscribers::shared(&self.graph, &t)
    }

    /// Every live connection, ascending. Sorts a copy of the ids (this
    /// allocates).
    pub fn connections(&self) -> impl Iterator<Item = C> {
        self.graph.conns.sorted_keys().into_iter()
    }

    /// Every thread, ascending. Sorts a copy of the ids (this allocates).
    pub fn threads(&self) -> impl Iterator<Item = T> {
        self.graph.threads.sorted_keys().into_iter()
    }

    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        self.graph.conns.len()
    }

    /// Number of threads (subscribed or not).
    pub fn thread_count(&self) -> usize {
        self.graph.threads.len()
    }

    /// Number of threads with at least one subscriber.
    pub fn subscribed_thread_count(&self) -> usize {
        self.graph.subs.len()
    }

    /// Number of subscriptions (edges). O(1): the count is kept with the
    /// graph.
    pub fn subscription_count(&self) -> usize {
        self.graph.edges
    }

    /// The version this snapshot shows (see
    /// [`Engine::version`](crate::Engine::version)): apply the batches of
    /// [`Engine::changes_since`](crate::Engine::changes_since)`(version)`
    /// to a copy of it to follow the engine.
    pub fn version(&self) -> u64 {
        self.graph.version
    }

    /// Checks every invariant of the graph: the two indexes mirror each
    /// other, no edge names a dead connection or a missing thread, no empty
    /// subscriber set is stored, sets ascend, tries are well formed.
    /// O(edges · log n): for tests and debugging.
    ///
    /// # Errors
    ///
    /// The first violation found. Any violation is a bug in this crate.
    pub fn validate(&self) -> Result<(), InvariantViolation> {
        self.graph.validate().map_err(InvariantViolation)
    }
}

impl<T: Key, C: Key, D: Send + Sync + 'static> fmt::Debug for Snapshot<T, C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("connections", &self.connection_count())
            .field("threads", &self.thread_count())
            .field("subscribed_threads", &self.subscribed_thread_count())
            .finish()
    }
}

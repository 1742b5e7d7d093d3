//! Frozen views of the graph: [`Snapshot`] (all of it) and [`Subscribers`]
//! (one thread's subscriber set).

use crate::error::InvariantViolation;
use crate::graph::Graph;
use crate::set::{self, SubscriberSet};
use crate::sync::{pin, Arc, Guard, Pin};
use crate::{Caps, Key};
use std::fmt;

/// The subscribers of one thread at one instant, ascending. Returned by
/// [`Engine::subscribers`](crate::Engine::subscribers) and
/// [`Snapshot::subscribers`]; it never changes.
///
/// Making one never allocates: up to four subscribers are copied inline;
/// a larger set is read in place in the graph version it came from, which
/// the `Subscribers` keeps alive (one reference-count increment on that
/// version). For the hottest fan-out, where even that shared write
/// matters, [`Engine::for_each_subscriber`](crate::Engine::for_each_subscriber)
/// and [`Reader::for_each_subscriber`](crate::Reader::for_each_subscriber)
/// visit the set in place and write nothing.
#[derive(Clone)]
pub struct Subscribers<C: Key> {
    /// Invariant: if `set` is a tree, `_pin` holds the graph version whose
    /// nodes it reads.
    set: SubscriberSet<C>,
    _pin: Option<Pin>,
}

impl<C: Key> Subscribers<C> {
    /// The set of `t` in `graph` (`set` comes from `graph`).
    pub(crate) fn new<T: Key>(set: Option<&SubscriberSet<C>>, graph: &Arc<Graph<T, C>>) -> Self {
        let set = set.cloned().unwrap_or(SubscriberSet::Empty);
        let _pin = set.is_tree().then(|| pin(Arc::clone(graph)));
        Subscribers { set, _pin }
    }

    /// The subscribers, ascending.
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
pub struct SubscribersIter<'a, C: Key>(set::Iter<'a, C>);

impl<C: Key> Iterator for SubscribersIter<'_, C> {
    type Item = C;

    #[inline]
    fn next(&mut self) -> Option<C> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

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
/// Taking one never locks or allocates. Holding one keeps its version's
/// memory alive (versions are reclaimed by the writer once no snapshot
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
pub struct Snapshot<T: Key, C: Key> {
    graph: Guard<Arc<Graph<T, C>>>,
}

impl<T: Key, C: Key> Snapshot<T, C> {
    pub(crate) fn new(graph: Guard<Arc<Graph<T, C>>>) -> Self {
        Snapshot { graph }
    }

    /// The subscribers of `t`, ascending.
    pub fn subscribers(&self, t: T) -> Subscribers<C> {
        Subscribers::new(self.graph.subscribers(&t), &self.graph)
    }

    /// Whether `t` has at least one subscriber.
    pub fn has_subscribers(&self, t: T) -> bool {
        self.graph.subs.contains_key(&t)
    }

    /// The threads `c` follows, ascending.
    pub fn threads_of(&self, c: C) -> Vec<T> {
        self.graph.threads_of(&c)
    }

    /// Whether `c` is live.
    pub fn is_connected(&self, c: C) -> bool {
        self.graph.conns.contains_key(&c)
    }

    /// The caps of `c`, if it is live.
    pub fn caps(&self, c: C) -> Option<Caps> {
        self.graph.caps(&c)
    }

    /// Whether the thread `t` exists (subscribed or not).
    pub fn contains_thread(&self, t: T) -> bool {
        self.graph.threads.contains_key(&t)
    }

    /// The smallest subscriber of `t` whose caps contain `required`.
    pub fn first_subscriber_with(&self, t: T, required: Caps) -> Option<C> {
        self.graph.first_subscriber_with(&t, required)
    }

    /// Every subscriber of `t` whose caps contain `required`, ascending.
    pub fn subscribers_with(&self, t: T, required: Caps) -> Vec<C> {
        self.graph.subscribers_with(&t, required)
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

impl<T: Key, C: Key> fmt::Debug for Snapshot<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("connections", &self.connection_count())
            .field("threads", &self.thread_count())
            .field("subscribed_threads", &self.subscribed_thread_count())
            .finish()
    }
}

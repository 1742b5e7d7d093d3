//! The read API, written once: [`View`], the lookups one graph version
//! answers, and [`read_api!`], which gives [`Engine`](crate::Engine),
//! [`Snapshot`](crate::Snapshot) and [`Reader`](crate::Reader) the same
//! public read methods over it, so the three cannot drift apart.
//!
//! The handles differ only in how a call reaches a version:
//!
//! | handle | reaching the version, per call | the version stays alive |
//! |---|---|---|
//! | `Engine` | a hazard pin: a store to the calling thread's own slot, one fence, a store when the call returns (`subscribers` takes an `ArcSwap` guard instead: its value outlives the call) | for the call |
//! | `Snapshot` | nothing: it holds one | as long as the snapshot |
//! | `Reader` | one relaxed load of the cell compared with the version it holds; on a new version, one reference-count swap | until its next read |
//!
//! The costs in each method's docs are those of the lookup itself, on top
//! of that. "A lookup" is a hash-trie lookup: one node (a cache line or
//! two) per level, `log32 n` levels. No read method takes a lock or writes
//! shared memory; those that return a `Vec` say so.

use crate::caps::Caps;
use crate::graph::{ConnNode, Graph};
use crate::key::Key;
use crate::store::unit;
use crate::store::SubscriberSet;

/// The read methods of one graph version (see the module docs).
pub(crate) struct View<'g, T: Key, C: Key, D = ()> {
    graph: &'g Graph<T, C, D>,
}

impl<T: Key, C: Key, D> Clone for View<'_, T, C, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Key, C: Key, D> Copy for View<'_, T, C, D> {}

impl<'g, T: Key, C: Key, D: 'static> View<'g, T, C, D> {
    #[inline]
    pub(crate) fn new(graph: &'g Graph<T, C, D>) -> Self {
        View { graph }
    }

    /// The subscriber set of `t`, if it has subscribers. One lookup.
    #[inline]
    pub(crate) fn subscriber_set(self, t: &T) -> Option<&'g SubscriberSet<C>> {
        self.graph.subs.get(t)
    }

    /// One lookup, then the set read in place (up to four members inline
    /// in the trie entry, more in B-tree leaves of up to 64). No
    /// allocation, no write.
    #[inline]
    pub(crate) fn for_each_subscriber(self, t: T, f: impl FnMut(C)) {
        if let Some(set) = self.subscriber_set(&t) {
            set.iter().for_each(f);
        }
    }

    /// With `D = ()`: exactly `for_each_subscriber` (the check folds away).
    /// Else one lookup, then the set read in place and one more lookup per
    /// subscriber for its data (borrowed in place). No allocation, no
    /// write: the data's reference count is not touched.
    #[inline]
    pub(crate) fn for_each_subscriber_data(self, t: T, mut f: impl FnMut(C, &D)) {
        if let Some(unit) = unit::<D>() {
            return self.for_each_subscriber(t, |c| f(c, unit));
        }
        if let Some(set) = self.subscriber_set(&t) {
            let conns = &self.graph.conns;
            set.iter().for_each(|c| {
                // Every subscriber is live (graph invariant 2) and has data
                // (invariant 8): the `None`s are never taken.
                if let Some(d) = conns.get(&c).and_then(ConnNode::data) {
                    f(c, d);
                }
            });
        }
    }

    /// One lookup, then `c`'s thread set (up to eight inline).
    #[inline]
    pub(crate) fn is_subscribed(self, t: T, c: C) -> bool {
        self.graph
            .conns
            .get(&c)
            .is_some_and(|n| n.threads.contains(&t))
    }

    /// One lookup.
    #[inline]
    pub(crate) fn incarnation(self, c: C) -> Option<u64> {
        self.graph.conns.get(&c).map(|n| n.incarnation)
    }

    /// One lookup, then a clone of the data.
    #[inline]
    pub(crate) fn data(self, c: C) -> Option<D>
    where
        D: Clone,
    {
        self.graph.conns.get(&c).and_then(ConnNode::data).cloned()
    }

    /// One lookup.
    #[inline]
    pub(crate) fn has_subscribers(self, t: T) -> bool {
        self.graph.subs.contains_key(&t)
    }

    /// One lookup.
    #[inline]
    pub(crate) fn is_connected(self, c: C) -> bool {
        self.graph.conns.contains_key(&c)
    }

    /// One lookup.
    #[inline]
    pub(crate) fn caps(self, c: C) -> Option<Caps> {
        self.graph.conns.get(&c).map(|n| n.caps)
    }

    /// One lookup.
    #[inline]
    pub(crate) fn contains_thread(self, t: T) -> bool {
        self.graph.threads.contains_key(&t)
    }

    /// One lookup, then the set in place; allocates the returned `Vec`.
    pub(crate) fn threads_of(self, c: C) -> Vec<T> {
        self.graph
            .conns
            .get(&c)
            .map(|n| n.threads.iter().collect())
            .unwrap_or_default()
    }

    /// One lookup, then one more per subscriber visited until one
    /// qualifies. No allocation.
    #[inline]
    pub(crate) fn first_subscriber_with(self, t: T, required: Caps) -> Option<C> {
        self.subscriber_set(&t)?
            .iter()
            .find(|&c| self.caps(c).is_some_and(|caps| caps.contains(required)))
    }

    /// One lookup, then one more per subscriber; allocates the returned
    /// `Vec`.
    pub(crate) fn subscribers_with(self, t: T, required: Caps) -> Vec<C> {
        match self.subscriber_set(&t) {
            Some(set) => set
                .iter()
                .filter(|&c| self.caps(c).is_some_and(|caps| caps.contains(required)))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// The public read methods every handle has, each calling the [`View`]
/// method of the same name on the version `self.with_view` reaches.
/// `$reach` says what reaching it costs, for the docs. `mut` for handles
/// whose reads take `&mut self`.
macro_rules! read_api {
    ($reach:literal $(, $mut:ident)?) => {
        /// Calls `f` with each subscriber of `t`, ascending, on one frozen
        /// graph: the cheapest fan-out. One lookup, then the set read in
        /// place: no lock, no allocation, no shared write. `f` runs while
        /// the version is held, so keep it short.
        ///
        #[doc = $reach]
        #[inline]
        pub fn for_each_subscriber(&$($mut)? self, t: T, f: impl FnMut(C)) {
            self.with_view(|v| v.for_each_subscriber(t, f))
        }

        /// Calls `f` with each subscriber of `t`, ascending, and its
        /// connection data (see [`Engine::connect_with`](crate::Engine::connect_with)),
        /// on one frozen graph: the fan-out that hands each recipient's
        /// sink over. With `D = ()` it is exactly
        /// `for_each_subscriber`; else one lookup, the set read in place
        /// and one more lookup per subscriber, the data borrowed in place:
        /// no lock, no allocation, no shared write (not even the data's
        /// reference count). Every data `f` sees belongs to the
        /// incarnation live in that version (guarantee 12).
        ///
        #[doc = $reach]
        ///
        /// # Examples
        ///
        /// ```
        /// use switchboard_core::{Caps, Engine};
        ///
        /// let engine: Engine<u64, u64, (), (), &str> = Engine::new();
        /// engine.connect_with(1, Caps::NONE, "one");
        /// engine.connect_with(2, Caps::NONE, "two");
        /// engine.subscribe(7, 1).unwrap();
        /// engine.subscribe(7, 2).unwrap();
        /// let mut seen = Vec::new();
        /// engine.for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
        /// assert_eq!(seen, [(1, "one"), (2, "two")]);
        /// let mut seen = Vec::new();
        /// engine.snapshot().for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
        /// engine.reader().for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
        /// assert_eq!(seen.len(), 4);
        /// ```
        #[inline]
        pub fn for_each_subscriber_data(&$($mut)? self, t: T, f: impl FnMut(C, &D)) {
            self.with_view(|v| v.for_each_subscriber_data(t, f))
        }

        /// Whether `c` is live and subscribed to `t`. One lookup, then
        /// `c`'s thread set (up to eight read inline).
        ///
        #[doc = $reach]
        ///
        /// # Examples
        ///
        /// ```
        /// use switchboard_core::{Caps, Engine};
        ///
        /// let engine: Engine<u64, u64> = Engine::new();
        /// engine.connect(1, Caps::NONE);
        /// engine.subscribe(7, 1).unwrap();
        /// assert!(engine.is_subscribed(7, 1));
        /// assert!(!engine.is_subscribed(8, 1) && !engine.is_subscribed(7, 2));
        /// assert!(engine.reader().is_subscribed(7, 1));
        /// ```
        #[inline]
        pub fn is_subscribed(&$($mut)? self, t: T, c: C) -> bool {
            self.with_view(|v| v.is_subscribed(t, c))
        }

        /// The incarnation `c` is live in (see
        /// [`Engine::connect_with`](crate::Engine::connect_with)), or
        /// `None` if `c` is not live. One lookup.
        ///
        #[doc = $reach]
        ///
        /// # Examples
        ///
        /// ```
        /// use switchboard_core::{Caps, Engine};
        ///
        /// let engine: Engine<u64, u64> = Engine::new();
        /// let first = engine.connect_with(1, Caps::NONE, ());
        /// assert_eq!(engine.incarnation(1), Some(first));
        /// engine.connect(1, Caps(1)); // new caps, same incarnation
        /// assert_eq!(engine.snapshot().incarnation(1), Some(first));
        /// assert_eq!(engine.incarnation(2), None);
        /// ```
        #[inline]
        pub fn incarnation(&$($mut)? self, c: C) -> Option<u64> {
            self.with_view(|v| v.incarnation(c))
        }

        /// A clone of the data of `c`'s live incarnation, or `None` if `c`
        /// is not live. One lookup, then the clone (clone an `Arc` to keep
        /// it cheap).
        ///
        #[doc = $reach]
        ///
        /// # Examples
        ///
        /// ```
        /// use switchboard_core::{Caps, Engine};
        ///
        /// let engine: Engine<u64, u64, (), (), String> = Engine::new();
        /// engine.connect_with(1, Caps::NONE, "outbox-a".to_string());
        /// assert_eq!(engine.data(1).as_deref(), Some("outbox-a"));
        /// engine.connect_with(1, Caps::NONE, "outbox-b".to_string()); // a new incarnation
        /// assert_eq!(engine.reader().data(1).as_deref(), Some("outbox-b"));
        /// engine.disconnect(1);
        /// assert_eq!(engine.data(1), None);
        /// ```
        #[inline]
        pub fn data(&$($mut)? self, c: C) -> Option<D>
        where
            D: Clone,
        {
            self.with_view(|v| v.data(c))
        }

        /// Whether `t` has at least one subscriber. One lookup.
        ///
        #[doc = $reach]
        #[inline]
        pub fn has_subscribers(&$($mut)? self, t: T) -> bool {
            self.with_view(|v| v.has_subscribers(t))
        }

        /// Whether `c` is live. One lookup.
        ///
        #[doc = $reach]
        #[inline]
        pub fn is_connected(&$($mut)? self, c: C) -> bool {
            self.with_view(|v| v.is_connected(c))
        }

        /// The caps of `c`, if it is live. One lookup.
        ///
        #[doc = $reach]
        #[inline]
        pub fn caps(&$($mut)? self, c: C) -> Option<Caps> {
            self.with_view(|v| v.caps(c))
        }

        /// Whether the thread `t` exists (subscribed or not). One lookup.
        ///
        #[doc = $reach]
        #[inline]
        pub fn contains_thread(&$($mut)? self, t: T) -> bool {
            self.with_view(|v| v.contains_thread(t))
        }

        /// The threads `c` follows, ascending (empty if `c` is not live).
        /// One lookup; allocates the `Vec`.
        ///
        #[doc = $reach]
        pub fn threads_of(&$($mut)? self, c: C) -> Vec<T> {
            self.with_view(|v| v.threads_of(c))
        }

        /// The smallest subscriber of `t` whose caps contain `required`.
        /// One lookup, then one per subscriber visited until one
        /// qualifies; no allocation.
        ///
        #[doc = $reach]
        #[inline]
        pub fn first_subscriber_with(&$($mut)? self, t: T, required: Caps) -> Option<C> {
            self.with_view(|v| v.first_subscriber_with(t, required))
        }

        /// Every subscriber of `t` whose caps contain `required`,
        /// ascending. One lookup, then one per subscriber; allocates the
        /// `Vec`.
        ///
        #[doc = $reach]
        pub fn subscribers_with(&$($mut)? self, t: T, required: Caps) -> Vec<C> {
            self.with_view(|v| v.subscribers_with(t, required))
        }
    };
}

pub(crate) use read_api;

//! The read API, written once: [`View`], the lookups one graph version
//! answers, and [`read_api!`], which gives [`Engine`](crate::Engine),
//! [`Snapshot`](crate::Snapshot) and [`Reader`](crate::Reader) the same
//! public read methods over it, so the three cannot drift apart.
//!
//! The handles differ only in how a call reaches a version:
//!
//! | handle | reaching the version, per call | the version stays alive |
//! |---|---|---|
//! | `Engine` | one `ArcSwap` load: writes only the calling thread's own debt slot | for the call |
//! | `Snapshot` | nothing: it holds one | as long as the snapshot |
//! | `Reader` | one relaxed load of the cell compared with the version it holds; on a new version, one reference-count swap | until its next read |
//!
//! The costs in each method's docs are those of the lookup itself, on top
//! of that. "A lookup" is a hash-trie lookup: one node (a cache line or
//! two) per level, `log32 n` levels. No read method takes a lock or writes
//! shared memory; those that return a `Vec` say so.

use crate::graph::Graph;
use crate::store::SubscriberSet;
use crate::{Caps, Key};

/// The read methods of one graph version (see the module docs).
#[derive(Clone, Copy)]
pub(crate) struct View<'g, T: Key, C: Key> {
    graph: &'g Graph<T, C>,
}

impl<'g, T: Key, C: Key> View<'g, T, C> {
    #[inline]
    pub(crate) fn new(graph: &'g Graph<T, C>) -> Self {
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

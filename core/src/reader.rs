//! [`Reader`]: a per-thread read handle that caches the current graph.

use crate::graph::Graph;
use crate::snapshot::Subscribers;
use crate::sync::Cached;
use crate::{Caps, Key};
use std::fmt;

/// A read handle for one thread of the host: the fan-out reads of
/// [`Engine`](crate::Engine), made cheaper by keeping the graph version it
/// read last.
///
/// Each read first checks whether the engine still publishes the version
/// this handle holds (one relaxed load of a pointer, no write); if so it
/// reads that version directly, skipping the per-read protection an engine
/// read sets up, else it takes the new version and releases the old one.
/// Results are the same as the engine's reads: every read sees the latest
/// published graph at that instant, linearizably.
///
/// The cost is memory: until its next read or its drop, a `Reader` keeps
/// the version it last read alive, as a [`Snapshot`](crate::Snapshot)
/// would. Give each worker thread its own `Reader` for its hot loop and
/// drop it when the thread goes idle for long; the engine cannot be dropped
/// while a `Reader` borrows it.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(10, 1).unwrap();
///
/// let mut reader = engine.reader();
/// let mut sum = 0;
/// reader.for_each_subscriber(10, |c| sum += c);
/// assert_eq!(sum, 1);
///
/// engine.disconnect(1); // readers see every write as soon as it returns
/// assert!(!reader.has_subscribers(10));
/// ```
pub struct Reader<'e, T: Key, C: Key> {
    cache: Cached<'e, Graph<T, C>>,
}

impl<'e, T: Key, C: Key> Reader<'e, T, C> {
    pub(crate) fn new(cache: Cached<'e, Graph<T, C>>) -> Self {
        Reader { cache }
    }

    #[inline]
    fn graph(&mut self) -> &Graph<T, C> {
        self.cache.load()
    }

    /// Calls `f` with each subscriber of `t`, ascending, on one frozen graph:
    /// [`Engine::for_each_subscriber`](crate::Engine::for_each_subscriber)
    /// without its per-read protection. No lock, no allocation, no shared
    /// write while the engine publishes nothing new.
    #[inline]
    pub fn for_each_subscriber(&mut self, t: T, mut f: impl FnMut(C)) {
        if let Some(set) = self.graph().subscribers(&t) {
            set.iter().for_each(&mut f);
        }
    }

    /// The subscribers of `t` at this instant, ascending (as
    /// [`Engine::subscribers`](crate::Engine::subscribers)).
    pub fn subscribers(&mut self, t: T) -> Subscribers<C> {
        let g = self.cache.load();
        Subscribers::new(g.subscribers(&t), g)
    }

    /// Whether `t` has at least one subscriber.
    #[inline]
    pub fn has_subscribers(&mut self, t: T) -> bool {
        self.graph().subs.contains_key(&t)
    }

    /// Whether `c` is live.
    #[inline]
    pub fn is_connected(&mut self, c: C) -> bool {
        self.graph().conns.contains_key(&c)
    }

    /// The caps of `c`, if it is live.
    #[inline]
    pub fn caps(&mut self, c: C) -> Option<Caps> {
        self.graph().caps(&c)
    }

    /// The smallest subscriber of `t` whose caps contain `required`.
    pub fn first_subscriber_with(&mut self, t: T, required: Caps) -> Option<C> {
        self.graph().first_subscriber_with(&t, required)
    }

    /// Every subscriber of `t` whose caps contain `required`, ascending.
    pub fn subscribers_with(&mut self, t: T, required: Caps) -> Vec<C> {
        self.graph().subscribers_with(&t, required)
    }

    /// The threads `c` is subscribed to, ascending (empty if `c` is not live).
    pub fn threads_of(&mut self, c: C) -> Vec<T> {
        self.graph().threads_of(&c)
    }
}

impl<T: Key, C: Key> fmt::Debug for Reader<'_, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

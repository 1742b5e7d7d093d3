//! [`Reader`]: a read handle for one OS thread (a worker thread of the
//! host) that caches the current graph.

use crate::caps::Caps;
use crate::graph::Graph;
use crate::key::Key;
use crate::snapshot::Subscribers;
use crate::sync::Cached;
use crate::view::{read_api, View};
use std::fmt;

/// A read handle for one worker thread (an OS thread) of the host: the
/// fan-out reads of [`Engine`](crate::Engine), made cheaper by keeping the
/// graph version it read last. ("Thread" alone, everywhere else in this
/// crate, means a room: a [`ThreadEntry`](crate::ThreadEntry); a `Reader`
/// has nothing to do with those.)
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
/// drop it when that OS thread goes idle for long; the engine cannot be dropped
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
pub struct Reader<'e, T: Key, C: Key, D = ()> {
    cache: Cached<'e, Graph<T, C, D>>,
}

impl<'e, T: Key, C: Key, D: Send + Sync + 'static> Reader<'e, T, C, D> {
    pub(crate) fn new(cache: Cached<'e, Graph<T, C, D>>) -> Self {
        Reader { cache }
    }

    #[inline]
    fn with_view<R>(&mut self, f: impl FnOnce(View<'_, T, C, D>) -> R) -> R {
        f(View::new(self.cache.load()))
    }

    read_api!(
        "Reaching the version: one relaxed load of the engine's cell, compared \
         with the version this reader holds; if the engine has published since, \
         a reference-count swap to the new one.",
        mut
    );

    /// The subscribers of `t` at this instant, ascending (as
    /// [`Engine::subscribers`](crate::Engine::subscribers)), read from the
    /// version this reader holds, like every other read of a `Reader`. Up
    /// to four are copied out; a larger set stays in place, kept alive by a
    /// load guard on that same version (a slot of this thread's own), never
    /// by a shared reference count.
    #[inline]
    pub fn subscribers(&mut self, t: T) -> Subscribers<C> {
        for _ in 0..PIN_TRIES {
            let graph = self.cache.load();
            if let Some(copied) = Subscribers::copied(graph, &t) {
                return copied;
            }
            let held = graph.version;
            let guard = self.cache.guard();
            if guard.version == held {
                return Subscribers::pinned(guard, &t);
            }
            // The engine published between the two loads: the guard is on
            // a newer version than this reader holds. Take that one too.
        }
        // A writer publishing faster than two loads, every time: pin the
        // held version with a reference of its own.
        Subscribers::shared(self.cache.load(), &t)
    }
}

/// How often [`Reader::subscribers`] tries to guard the version it holds
/// before it takes a reference to it instead.
const PIN_TRIES: usize = 3;

impl<T: Key, C: Key, D> fmt::Debug for Reader<'_, T, C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

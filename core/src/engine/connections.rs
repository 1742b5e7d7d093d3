//! Connections: `connect`, `disconnect`, and the incarnation-checked
//! writes (`connect_with`, `disconnect_if`, `subscribe_if`) that keep a
//! stale session of a reused connection id from touching a new one
//! (guarantee 12).
//!
//! Every live connection is in one *incarnation*: a number the engine
//! hands out, strictly increasing per engine, when the connection becomes
//! live (by `connect` or `connect_with`) and again each time
//! `connect_with` replaces it. A number, once ended, is never live again
//! (graph invariant 7), so an operation naming it finds nothing to do.

use super::Engine;
use crate::caps::Caps;
use crate::entry::ThreadEntry;
use crate::error::NotConnected;
use crate::graph::ConnNode;
use crate::key::Key;
use crate::sync::StdArc;

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    /// Drops `c` and all its subscriptions. Returns the threads it left
    /// without any subscriber, ascending (their watches flip to `false`).
    /// An unknown or already disconnected `c` returns an empty `Vec`.
    ///
    /// After it returns no snapshot shows `c`, and a `subscribe` of `c`
    /// fails until `c` connects again (with no subscriptions).
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq`/`Ord` of `c` and of its threads, under the writer lock.
    /// The data of the ended incarnation, and any state whose last reference
    /// this write's reclamation gives up, are dropped after the lock, on this
    /// thread.
    pub fn disconnect(&self, c: C) -> Vec<T> {
        self.write_op(|e| e.disconnect(c, None)).unwrap_or_default()
    }

    /// Makes `c` live with `caps` in a new incarnation carrying `data`, and
    /// returns the incarnation's number (strictly increasing per engine).
    /// If `c` was live, its old incarnation ends first exactly as
    /// [`disconnect`](Self::disconnect) would end it (every subscription
    /// dropped, watches of the threads it left empty flipped), all in the
    /// same publish: no reader ever sees `c` absent in between, nor the new
    /// incarnation with an old subscription. The old data is dropped once
    /// no held version shows it.
    ///
    /// The change feed records the `disconnect` sequence (if `c` was live)
    /// then `Connected { c, caps }`.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64, (), (), &str> = Engine::new();
    /// let old = engine.connect_with(42, Caps::NONE, "first socket");
    /// engine.subscribe(7, 42).unwrap();
    /// // The client reconnects with the same id: a new incarnation, no rooms.
    /// let new = engine.connect_with(42, Caps::NONE, "second socket");
    /// assert!(new > old);
    /// assert!(!engine.is_subscribed(7, 42));
    /// // The first socket's late close changes nothing.
    /// assert_eq!(engine.disconnect_if(42, old), None);
    /// assert_eq!(engine.data(42), Some("second socket"));
    /// ```
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq`/`Ord` of `c` and of the threads of its old incarnation,
    /// under the writer lock. `data` is dropped by this call after the lock
    /// if the write unwinds; the old incarnation's data, and anything this
    /// write's reclamation frees, are dropped after the lock, on this thread.
    pub fn connect_with(&self, c: C, caps: Caps, data: D) -> u64 {
        // Held by this frame until the write returns: whatever happens in
        // it, the data's last drop is here or in a node, never under the
        // writer lock.
        let data = ConnNode::<T, D>::wrap_data(data);
        self.write_op(|e| e.connect_with(c, caps, data.clone()))
    }

    /// Disconnects `c` as [`disconnect`](Self::disconnect) does, but only
    /// if `c` is live in `incarnation`: returns the threads it left without
    /// any subscriber, or `None` (and nothing changes, nothing is
    /// published) if `c` is not live or is live in another incarnation.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let first = engine.connect_with(1, Caps::NONE, ());
    /// engine.subscribe(7, 1).unwrap();
    /// let second = engine.connect_with(1, Caps::NONE, ());
    /// assert_eq!(engine.disconnect_if(1, first), None); // stale: nothing changes
    /// assert!(engine.is_connected(1));
    /// assert_eq!(engine.disconnect_if(1, second), Some(vec![]));
    /// assert!(!engine.is_connected(1));
    /// ```
    ///
    /// # Host code
    ///
    /// as [`disconnect`](Self::disconnect).
    pub fn disconnect_if(&self, c: C, incarnation: u64) -> Option<Vec<T>> {
        self.write_op(|e| e.disconnect(c, Some(incarnation)))
    }

    /// Subscribes `c` to `t` as [`subscribe`](Self::subscribe) does, but
    /// only if `c` is live in `incarnation`.
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live, or is live in another
    /// incarnation; then nothing changes (no thread entry is created,
    /// nothing is published).
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let old = engine.connect_with(1, Caps::NONE, ());
    /// let new = engine.connect_with(1, Caps::NONE, ());
    /// assert!(engine.subscribe_if(7, 1, old).is_err()); // the old session is gone
    /// assert!(!engine.contains_thread(7));
    /// assert_eq!(engine.subscribe_if(7, 1, new).unwrap().id(), 7);
    /// assert!(engine.is_subscribed(7, 1));
    /// ```
    ///
    /// # Host code
    ///
    /// as [`subscribe`](Self::subscribe).
    pub fn subscribe_if(
        &self,
        t: T,
        c: C,
        incarnation: u64,
    ) -> Result<StdArc<ThreadEntry<T, S, M>>, NotConnected>
    where
        S: Default,
    {
        self.subscribe_where(t, c, Some(incarnation), S::default)
    }

    /// Removes the edge `t`–`c` as [`unsubscribe`](Self::unsubscribe)
    /// does, but only if `c` is live in `incarnation`: a late `leave` of an
    /// ended session never touches the session that took its id over.
    /// Returns whether the edge existed and was removed; `false` (nothing
    /// changes, nothing is published) if `c` is not live, is live in
    /// another incarnation, or does not follow `t`.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let old = engine.connect_with(1, Caps::NONE, ());
    /// let new = engine.connect_with(1, Caps::NONE, ());
    /// engine.subscribe_if(7, 1, new).unwrap();
    /// assert!(!engine.unsubscribe_if(7, 1, old)); // the old session's late leave
    /// assert!(engine.is_subscribed(7, 1));
    /// assert!(engine.unsubscribe_if(7, 1, new));
    /// assert!(!engine.is_subscribed(7, 1));
    /// ```
    ///
    /// # Host code
    ///
    /// as [`unsubscribe`](Self::unsubscribe).
    pub fn unsubscribe_if(&self, t: T, c: C, incarnation: u64) -> bool {
        self.unsubscribe_where(t, c, Some(incarnation))
    }
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Default + Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    /// Marks `c` live with `caps`. Returns `true` if it was not live
    /// before: then it starts a new incarnation (see
    /// [`connect_with`](Self::connect_with)) with `D::default()` as its
    /// data. Calling it again for a live connection updates its caps, keeps
    /// its incarnation and data, and returns `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// assert!(engine.connect(1, Caps::NONE));
    /// let incarnation = engine.incarnation(1);
    /// assert!(!engine.connect(1, Caps(0b1))); // new caps, same session
    /// assert_eq!(engine.caps(1), Some(Caps(0b1)));
    /// assert_eq!(engine.incarnation(1), incarnation);
    /// ```
    ///
    /// # Host code
    ///
    /// `Hash`/`Eq` of `c` and, for a new connection, `D::default()`, under
    /// the writer lock. Values this write's reclamation frees are dropped
    /// after the lock, on this thread.
    pub fn connect(&self, c: C, caps: Caps) -> bool {
        self.write_op(|e| e.connect(c, caps, D::default))
    }
}

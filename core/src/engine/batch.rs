//! Write batches: [`Engine::batch`] and its [`Batch`].
//!
//! A batch is one write: every operation made through it changes the same
//! copy of the tries inside one store transaction, and the store publishes
//! the result once (one swap, one change-log entry, one reclamation pass).
//! The watches and the change feed are told once, after that publish, and
//! the listeners of removed threads are cleared after the writer lock. If
//! the batch's closure panics, the transaction is abandoned: nothing of it
//! is published (guarantee 13).

use super::ops::{Edit, Entry};
use super::Engine;
use crate::caps::Caps;
use crate::error::NotConnected;
use crate::graph::ConnNode;
use crate::key::Key;
use crate::store::HostValue;
use crate::sync::StdArc;
use std::fmt;

/// The writing methods of an [`Engine`] inside one batch: see
/// [`Engine::batch`]. Each has the engine method's name, arguments and
/// result, and sees the batch's earlier writes; the reads
/// ([`is_connected`](Self::is_connected), [`incarnation`](Self::incarnation),
/// [`is_subscribed`](Self::is_subscribed),
/// [`has_subscribers`](Self::has_subscribers)) read the batch's state so far.
pub struct Batch<'b, T: Key, C: Key, S = (), M = (), D: Send + Sync + 'static = ()> {
    ops: &'b mut (dyn Ops<T, C, S, M, D> + 'b),
}

/// The operations of a write in progress, with the transaction's lifetime
/// erased (so that [`Batch`] has one lifetime).
trait Ops<T, C, S, M, D> {
    fn subscribe(
        &mut self,
        t: T,
        c: C,
        incarnation: Option<u64>,
        init: &mut dyn FnMut() -> S,
    ) -> Result<Entry<T, S, M>, NotConnected>;
    fn unsubscribe(&mut self, t: T, c: C, incarnation: Option<u64>) -> bool;
    fn thread_with(&mut self, t: T, init: &mut dyn FnMut() -> S) -> Entry<T, S, M>;
    fn remove_thread(&mut self, t: T, idle_only: bool) -> bool;
    fn connect(&mut self, c: C, caps: Caps, data: &mut dyn FnMut() -> D) -> bool;
    fn connect_with(&mut self, c: C, caps: Caps, data: D) -> u64;
    fn disconnect(&mut self, c: C, incarnation: Option<u64>) -> Option<Vec<T>>;
    fn incarnation(&self, c: C) -> Option<u64>;
    fn is_subscribed(&self, t: T, c: C) -> bool;
    fn has_subscribers(&self, t: T) -> bool;
}

impl<T, C, S, M, D> Ops<T, C, S, M, D> for Edit<'_, '_, T, C, S, M, D>
where
    T: Key,
    C: Key,
    S: Send + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    fn subscribe(
        &mut self,
        t: T,
        c: C,
        incarnation: Option<u64>,
        init: &mut dyn FnMut() -> S,
    ) -> Result<Entry<T, S, M>, NotConnected> {
        Edit::subscribe(self, t, c, incarnation, init)
    }

    fn unsubscribe(&mut self, t: T, c: C, incarnation: Option<u64>) -> bool {
        Edit::unsubscribe(self, t, c, incarnation)
    }

    fn thread_with(&mut self, t: T, init: &mut dyn FnMut() -> S) -> Entry<T, S, M> {
        Edit::thread_with(self, t, init)
    }

    fn remove_thread(&mut self, t: T, idle_only: bool) -> bool {
        Edit::remove_thread(self, t, idle_only, None)
    }

    fn connect(&mut self, c: C, caps: Caps, data: &mut dyn FnMut() -> D) -> bool {
        Edit::connect(self, c, caps, data)
    }

    fn connect_with(&mut self, c: C, caps: Caps, data: D) -> u64 {
        // Kept until the lock is released before anything else runs: if the
        // batch unwinds, the data is dropped after the lock.
        let data = ConnNode::<T, D>::wrap_data(data);
        if let Some(d) = data.count() {
            self.txn.keep_until_unlocked(StdArc::clone(d) as HostValue);
        }
        Edit::connect_with(self, c, caps, data)
    }

    fn disconnect(&mut self, c: C, incarnation: Option<u64>) -> Option<Vec<T>> {
        Edit::disconnect(self, c, incarnation)
    }

    fn incarnation(&self, c: C) -> Option<u64> {
        self.g.conns.get(&c).map(|n| n.incarnation)
    }

    fn is_subscribed(&self, t: T, c: C) -> bool {
        self.g.conns.get(&c).is_some_and(|n| n.threads.contains(&t))
    }

    fn has_subscribers(&self, t: T) -> bool {
        self.g.subs.contains_key(&t)
    }
}

/// A `FnOnce` as the `FnMut` the object-safe [`Ops`] takes (called once).
fn once<X>(f: impl FnOnce() -> X) -> impl FnMut() -> X {
    let mut f = Some(f);
    move || (f.take().expect("called once"))()
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Batch<'_, T, C, S, M, D>
{
    /// [`Engine::connect`], in the batch.
    pub fn connect(&mut self, c: C, caps: Caps) -> bool
    where
        D: Default,
    {
        self.ops.connect(c, caps, &mut D::default)
    }

    /// [`Engine::connect_with`], in the batch.
    pub fn connect_with(&mut self, c: C, caps: Caps, data: D) -> u64 {
        self.ops.connect_with(c, caps, data)
    }

    /// [`Engine::disconnect`], in the batch.
    pub fn disconnect(&mut self, c: C) -> Vec<T> {
        self.ops.disconnect(c, None).unwrap_or_default()
    }

    /// [`Engine::disconnect_if`], in the batch.
    pub fn disconnect_if(&mut self, c: C, incarnation: u64) -> Option<Vec<T>> {
        self.ops.disconnect(c, Some(incarnation))
    }

    /// [`Engine::subscribe`], in the batch.
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live at this point of the batch; then
    /// this call changes nothing.
    pub fn subscribe(&mut self, t: T, c: C) -> Result<Entry<T, S, M>, NotConnected>
    where
        S: Default,
    {
        self.ops.subscribe(t, c, None, &mut S::default)
    }

    /// [`Engine::subscribe_with`], in the batch: `init` runs only if the
    /// entry is created.
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live at this point of the batch; then
    /// this call changes nothing.
    pub fn subscribe_with(
        &mut self,
        t: T,
        c: C,
        init: impl FnOnce() -> S,
    ) -> Result<Entry<T, S, M>, NotConnected> {
        self.ops.subscribe(t, c, None, &mut once(init))
    }

    /// [`Engine::subscribe_if`], in the batch.
    ///
    /// # Errors
    ///
    /// [`NotConnected`] if `c` is not live in `incarnation` at this point
    /// of the batch; then this call changes nothing.
    pub fn subscribe_if(
        &mut self,
        t: T,
        c: C,
        incarnation: u64,
    ) -> Result<Entry<T, S, M>, NotConnected>
    where
        S: Default,
    {
        self.ops.subscribe(t, c, Some(incarnation), &mut S::default)
    }

    /// [`Engine::unsubscribe`], in the batch.
    pub fn unsubscribe(&mut self, t: T, c: C) -> bool {
        self.ops.unsubscribe(t, c, None)
    }

    /// [`Engine::unsubscribe_if`], in the batch.
    pub fn unsubscribe_if(&mut self, t: T, c: C, incarnation: u64) -> bool {
        self.ops.unsubscribe(t, c, Some(incarnation))
    }

    /// [`Engine::thread`], in the batch.
    pub fn thread(&mut self, t: T) -> Entry<T, S, M>
    where
        S: Default,
    {
        self.ops.thread_with(t, &mut S::default)
    }

    /// [`Engine::thread_with`], in the batch: `init` runs only if the entry
    /// is created.
    pub fn thread_with(&mut self, t: T, init: impl FnOnce() -> S) -> Entry<T, S, M> {
        self.ops.thread_with(t, &mut once(init))
    }

    /// [`Engine::remove_thread`], in the batch. The entry's listener is
    /// cleared once the batch is published, after the writer lock.
    pub fn remove_thread(&mut self, t: T) -> bool {
        self.ops.remove_thread(t, false)
    }

    /// [`Engine::remove_thread_if_idle`], in the batch: only if `t` has no
    /// subscriber at this point of the batch.
    pub fn remove_thread_if_idle(&mut self, t: T) -> bool {
        self.ops.remove_thread(t, true)
    }

    /// Whether `c` is live at this point of the batch.
    pub fn is_connected(&self, c: C) -> bool {
        self.ops.incarnation(c).is_some()
    }

    /// `c`'s incarnation at this point of the batch (`None` if not live).
    pub fn incarnation(&self, c: C) -> Option<u64> {
        self.ops.incarnation(c)
    }

    /// Whether `c` follows `t` at this point of the batch.
    pub fn is_subscribed(&self, t: T, c: C) -> bool {
        self.ops.is_subscribed(t, c)
    }

    /// Whether `t` has a subscriber at this point of the batch.
    pub fn has_subscribers(&self, t: T) -> bool {
        self.ops.has_subscribers(t)
    }
}

impl<T: Key, C: Key, S, M, D: Send + Sync + 'static> fmt::Debug for Batch<'_, T, C, S, M, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").finish_non_exhaustive()
    }
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    /// Runs `f` on a [`Batch`] of this engine's writing methods and
    /// publishes every write made through it as one new version: one swap,
    /// one change-log entry (its changes in the order made), one
    /// reclamation pass. Readers see all of it or none of it; watches, the
    /// change feed and removed threads' listeners are told once, after the
    /// publish. A batch that changes nothing publishes nothing.
    ///
    /// A reconnect (`connect_with` and its subscribes) or a storm of
    /// disconnects costs one publish instead of one per call.
    ///
    /// A batch holds the writer lock while `f` runs: other writers wait for
    /// it, readers never do. Like any write, it may be combined with the
    /// writes queued behind it (see [`Engine`]): it then returns once they
    /// are published with it, still as one piece (no version holds part of
    /// a batch). Inside `f`, write through the batch: a writing
    /// method of an engine called there panics (it would wait for the lock
    /// this batch holds).
    ///
    /// # Host code
    ///
    /// `f`, and what each of its calls runs (see each engine method), under
    /// the writer lock. If any of it panics, nothing of the batch is
    /// published (guarantee 13) and the panic reaches this caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let feed_start = engine.version();
    /// // A client resumes: its connection and its rooms in one version.
    /// let rooms = engine.batch(|b| {
    ///     b.connect(7, Caps::NONE);
    ///     for room in [1, 2, 3] {
    ///         b.subscribe(room, 7).unwrap();
    ///     }
    ///     assert!(b.is_subscribed(2, 7)); // the batch sees its own writes
    ///     engine.threads_of(7).len() // readers see none of it yet
    /// });
    /// assert_eq!(rooms, 0);
    /// assert_eq!(engine.threads_of(7), [1, 2, 3]);
    /// assert_eq!(engine.version(), feed_start + 1);
    /// ```
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch<'_, T, C, S, M, D>) -> R) -> R {
        self.write_op(|edit| f(&mut Batch { ops: edit }))
    }
}

//! Per-thread mutable state: host state, the listener slot and the
//! has-subscribers watch cell.
//!
//! A `ThreadEntry` is created once per thread id (by `thread`, or by the
//! first `subscribe`) and shared by every graph version that contains the
//! thread, so its mutable parts live behind their own small locks and are
//! never copied by graph writes. Removing the thread drops it from the graph;
//! handles the host still holds keep working on the detached entry, but the
//! engine never hands it out again.

use crate::error::NoListener;
use crate::listener::{Listener, ListenerSlot};
use crate::reply::{self, PendingReply, Reply};
use crate::sync::{Arc, Mutex, StateGuard};
use crate::watch::{SubscriberWatch, WatchCell};
use std::fmt;

/// One thread's host state and listener. Get it from
/// [`Engine::thread`](crate::Engine::thread),
/// [`Engine::subscribe`](crate::Engine::subscribe) or
/// [`Engine::get_thread`](crate::Engine::get_thread).
///
/// # Examples
///
/// ```
/// use switchboard_core::Engine;
///
/// #[derive(Default)]
/// struct Room {
///     messages: Vec<String>,
/// }
///
/// let engine: Engine<u64, u64, Room> = Engine::new();
/// let room = engine.thread(42);
/// room.state().messages.push("hi".into());
/// assert_eq!(engine.thread(42).state().messages.len(), 1);
/// assert_eq!(room.id(), 42);
/// ```
pub struct ThreadEntry<T, S, M> {
    id: T,
    state: Mutex<S>,
    listener: Mutex<ListenerSlot<M>>,
    watch: Arc<WatchCell>,
}

impl<T: Copy, S: Default, M> ThreadEntry<T, S, M> {
    pub(crate) fn new(id: T) -> Self {
        ThreadEntry {
            id,
            state: Mutex::new(S::default()),
            listener: Mutex::new(ListenerSlot::new()),
            watch: Arc::new(WatchCell::new()),
        }
    }
}

impl<T: Copy, S, M> ThreadEntry<T, S, M> {
    /// The thread's id.
    pub fn id(&self) -> T {
        self.id
    }

    /// Locks the host state. The engine never holds this lock across its own
    /// calls, so the host decides what it protects and for how long.
    pub fn state(&self) -> StateGuard<'_, S> {
        StateGuard::lock(&self.state)
    }

    /// Makes a new listener current: cancels the previous one (its token
    /// fires, its queue closes), bumps the generation, opens a new queue,
    /// and remembers `owner` weakly for [`listener_matches`](Self::listener_matches).
    pub fn set_listener<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
    ) -> Listener<M> {
        self.listener.lock().set(owner)
    }

    /// Cancels and closes the current listener, if any, and forgets its owner.
    pub fn clear_listener(&self) {
        self.listener.lock().clear();
    }

    /// Clears the listener only if `generation` is still current; returns
    /// whether it did. A stale clear never removes a newer listener.
    pub fn clear_listener_if(&self, generation: u64) -> bool {
        self.listener.lock().clear_if(generation)
    }

    /// Whether the current listener was set with this very `owner` (same
    /// allocation) and that owner is still alive.
    pub fn listener_matches<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
    ) -> bool {
        self.listener.lock().matches(owner)
    }

    /// The current listener generation: 0 before any listener, then 1, 2, …
    /// (never reused, not reset by clearing).
    pub fn generation(&self) -> u64 {
        self.listener.lock().generation()
    }

    /// Whether a listener is current (set and not since cleared).
    pub fn has_listener(&self) -> bool {
        self.listener.lock().has_listener()
    }

    /// Queues `m` for the current listener.
    ///
    /// # Errors
    ///
    /// [`NoListener`] with `m` inside if there is no current listener (never
    /// set, cleared, or its [`Listener`] was dropped).
    pub fn send(&self, m: M) -> Result<(), NoListener<M>> {
        self.listener.lock().send(m)
    }

    /// Sends a command carrying a [`Reply`], returning the handle its answer
    /// arrives on. The `PendingReply` always resolves: with the answer, or
    /// with an error once the `Reply` is dropped unsent.
    ///
    /// # Errors
    ///
    /// [`NoListener`] with the built command inside if there is no current
    /// listener.
    pub fn request<R>(
        &self,
        make: impl FnOnce(Reply<R>) -> M,
    ) -> Result<PendingReply<R>, NoListener<M>> {
        let (reply, pending) = reply::pair();
        self.send(make(reply))?;
        Ok(pending)
    }

    pub(crate) fn watch_cell(&self) -> &WatchCell {
        &self.watch
    }

    /// A watch on whether this thread has subscribers, like
    /// [`Engine::watch_subscribers`](crate::Engine::watch_subscribers) but
    /// tied to this entry: once the thread is removed the watch is closed,
    /// even if a new thread with the same id is created later.
    pub fn watch_subscribers(&self) -> SubscriberWatch {
        WatchCell::watch(&self.watch)
    }
}

impl<T: fmt::Debug, S, M> fmt::Debug for ThreadEntry<T, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.listener.lock();
        f.debug_struct("ThreadEntry")
            .field("id", &self.id)
            .field("generation", &slot.generation())
            .field("has_listener", &slot.has_listener())
            .finish_non_exhaustive()
    }
}

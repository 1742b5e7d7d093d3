//! Per-thread mutable state: host state, the listener slot and the
//! has-subscribers watch cell.
//!
//! A `ThreadEntry` is created once per thread id (by `thread`, or by the
//! first `subscribe`) and shared by every graph version that contains the
//! thread, so its mutable parts live behind their own small locks and are
//! never copied by graph writes. Removing the thread drops it from the graph;
//! handles the host still holds keep working on the detached entry, but the
//! engine never hands it out again.

use crate::error::{NoListener, SendError};
use crate::key::Key;
use crate::listener::{Listener, ListenerHome};
use crate::queue::{PendingSend, QueueConfig};
use crate::reply::{self, PendingReply, Reply};
use crate::shutdown::Registry;
use crate::sync::{Arc, Mutex, OnceCell, StateGuard, StdArc};
use crate::watch::{SubscriberWatch, WatchCell};
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
    /// The listener home: empty until the first listener opens (module
    /// docs); set once, never replaced.
    listener: OnceCell<StdArc<ListenerHome<M>>>,
    /// The engine's listener registry, for the home's tracker.
    registry: StdArc<Registry<T>>,
    watch: Arc<WatchCell>,
}

impl<T: Key, S, M> ThreadEntry<T, S, M> {
    pub(crate) fn with_state(id: T, registry: &StdArc<Registry<T>>, state: S) -> Self {
        ThreadEntry {
            id,
            state: Mutex::new(state),
            listener: OnceCell::new(),
            registry: StdArc::clone(registry),
            watch: Arc::new(WatchCell::new()),
        }
    }
}

impl<T: Key, S, M> ThreadEntry<T, S, M> {
    /// The listener home, allocated now if this is its first use.
    fn home_or_init(&self) -> &StdArc<ListenerHome<M>> {
        self.listener
            .get_or_init(|| StdArc::new(ListenerHome::new(self.registry.tracker(self.id))))
    }
}

impl<T: Key, S, M: Send + 'static> ThreadEntry<T, S, M> {
    /// Makes a new listener current: cancels the previous one (its token
    /// fires, its queue closes), bumps the generation, opens a new,
    /// unbounded queue, and remembers `owner` weakly for
    /// [`listener_matches`](Self::listener_matches). After
    /// [`Engine::shutdown`](crate::Engine::shutdown) began, it changes
    /// nothing and returns a listener that is already cancelled and closed.
    pub fn set_listener<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
    ) -> Listener<M> {
        self.home_or_init().set(owner, QueueConfig::unbounded())
    }

    /// [`set_listener`](Self::set_listener) with the queue's capacity
    /// chosen by `queue` (see [`QueueConfig`] and the crate docs'
    /// "Backpressure" section).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use switchboard_core::{Engine, QueueConfig, SendError};
    ///
    /// let engine: Engine<u64, u64, (), u32> = Engine::new();
    /// let entry = engine.thread(1);
    /// let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(2));
    /// entry.try_send(1).unwrap();
    /// entry.try_send(2).unwrap();
    /// assert_eq!(entry.queue_len(), 2);
    /// assert_eq!(entry.try_send(3), Err(SendError::Full(3)));
    /// assert_eq!(
    ///     entry.send_timeout(3, Duration::from_millis(1)),
    ///     Err(SendError::Full(3))
    /// );
    /// assert_eq!(listener.recv(), Ok(1)); // room for one more
    /// entry.try_send(3).unwrap();
    /// ```
    pub fn set_listener_with<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
        queue: QueueConfig,
    ) -> Listener<M> {
        self.home_or_init().set(owner, queue)
    }

    /// Starts a listener only if none is current: the atomic get-or-start.
    /// Returns `None`, changing nothing, while a listener is current;
    /// otherwise makes a new one current as
    /// [`set_listener`](Self::set_listener) does (next generation, a new
    /// unbounded queue, `owner` remembered weakly) and returns it. The test
    /// and the start happen under the slot's own lock, so of any number of
    /// callers racing on a thread with no listener exactly one gets `Some`
    /// (a clear between two calls frees the slot again, as it should).
    ///
    /// After [`Engine::shutdown`](crate::Engine::shutdown) began no
    /// listener is current and none can become so: it returns `Some` with a
    /// listener that is already cancelled and closed, as `set_listener`
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use switchboard_core::Engine;
    ///
    /// let engine: Engine<u64, u64, (), &str> = Engine::new();
    /// let room = engine.thread(1);
    /// let owner = Arc::new(());
    /// let first = room.set_listener_if_none(&owner).expect("no listener yet");
    /// assert!(room.set_listener_if_none(&owner).is_none()); // one is current
    ///
    /// drop(first); // its task ended: the slot is free again
    /// let second = room.set_listener_if_none(&owner).unwrap();
    /// assert_eq!(second.generation(), 2);
    /// ```
    pub fn set_listener_if_none<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
    ) -> Option<Listener<M>> {
        self.home_or_init()
            .set_if_none(owner, QueueConfig::unbounded())
    }

    /// [`set_listener_if_none`](Self::set_listener_if_none) with the
    /// queue's capacity chosen by `queue`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use switchboard_core::{Engine, QueueConfig};
    ///
    /// let engine: Engine<u64, u64, (), u32> = Engine::new();
    /// let room = engine.thread(1);
    /// let listener = room
    ///     .set_listener_if_none_with(&Arc::new(()), QueueConfig::bounded(8))
    ///     .unwrap();
    /// assert_eq!(listener.capacity(), Some(8));
    /// ```
    pub fn set_listener_if_none_with<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
        queue: QueueConfig,
    ) -> Option<Listener<M>> {
        self.home_or_init().set_if_none(owner, queue)
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

    /// Cancels and closes the current listener, if any, and forgets its owner.
    pub fn clear_listener(&self) {
        if let Some(home) = self.listener.get() {
            home.clear();
        }
    }

    /// Clears the listener only if `generation` is still current; returns
    /// whether it did. A stale clear never removes a newer listener.
    pub fn clear_listener_if(&self, generation: u64) -> bool {
        self.listener
            .get()
            .is_some_and(|home| home.clear_if(generation))
    }

    /// Whether the current listener was set with this very `owner` (same
    /// allocation) and that owner is still alive.
    pub fn listener_matches<O: ?Sized + Send + Sync + 'static>(
        &self,
        owner: &std::sync::Arc<O>,
    ) -> bool {
        self.listener.get().is_some_and(|home| home.matches(owner))
    }

    /// The current listener generation: 0 before any listener, then 1, 2, …
    /// (never reused, not reset by clearing).
    pub fn generation(&self) -> u64 {
        self.listener.get().map_or(0, |home| home.generation())
    }

    /// Whether a listener is current (set and not since cleared).
    pub fn has_listener(&self) -> bool {
        self.listener.get().is_some_and(|home| home.has_listener())
    }

    /// Queues `m` for the current listener. On the default unbounded queue
    /// it never blocks; on a full bounded queue it waits for room (see the
    /// crate docs' "Backpressure" section before calling it from a
    /// listener's own task).
    ///
    /// # Errors
    ///
    /// [`NoListener`] with `m` inside if there is no current listener (never
    /// set, cleared, or its [`Listener`] was dropped), or if the listener
    /// was replaced or cleared while this send waited for room.
    #[inline]
    pub fn send(&self, m: M) -> Result<(), NoListener<M>> {
        match self.listener.get() {
            Some(home) => home.send(m),
            None => Err(NoListener(m)),
        }
    }

    /// Queues `m` for the current listener if its queue has room now; never
    /// blocks.
    ///
    /// # Errors
    ///
    /// [`SendError::NoListener`] if there is no current listener,
    /// [`SendError::Full`] if its bounded queue is full; `m` comes back
    /// inside either.
    #[inline]
    pub fn try_send(&self, m: M) -> Result<(), SendError<M>> {
        match self.listener.get() {
            Some(home) => home.try_send(m),
            None => Err(SendError::NoListener(m)),
        }
    }

    /// Queues `m`, waiting at most `timeout` for room in a full bounded
    /// queue.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] if there was no room in time;
    /// [`SendError::NoListener`] if there is no current listener, or it
    /// was replaced or cleared while this waited. `m` comes back inside.
    pub fn send_timeout(&self, m: M, timeout: Duration) -> Result<(), SendError<M>> {
        let Some(home) = self.listener.get() else {
            return Err(SendError::NoListener(m));
        };
        let m = match home.try_send(m) {
            Err(SendError::Full(m)) => m,
            done => return done,
        };
        // A timeout too large for the clock waits for ever.
        home.send_until(m, Instant::now().checked_add(timeout))
    }

    /// Polls a send that waits for room: the building block of the async
    /// facade's `send_async`. `Ready(Ok(()))` once the command is queued,
    /// `Ready(Err)` with the command if there is no current listener or the
    /// one whose full queue it waited on was replaced or cleared; otherwise
    /// `cx`'s waker is registered (in `pending`) and woken when the queue
    /// makes room or closes. Once it returned `Ready`, `pending` holds no
    /// command and a further poll returns `Ready(Ok(()))` at once.
    ///
    /// # Errors
    ///
    /// `Ready(Err(`[`NoListener`]`))` with the command inside, as above.
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        pending: &mut PendingSend<M>,
    ) -> Poll<Result<(), NoListener<M>>> {
        match self.listener.get() {
            Some(home) => home.poll_send(cx, pending),
            // No home: no listener was ever opened, so `pending` never
            // waited on one; it either holds its command or completed.
            None => Poll::Ready(match pending.command.take() {
                Some(m) => Err(NoListener(m)),
                None => Ok(()),
            }),
        }
    }

    /// Commands waiting in the current listener's queue (0 if there is no
    /// current listener).
    pub fn queue_len(&self) -> usize {
        self.listener.get().map_or(0, |home| home.queue_len())
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

    /// [`request`](Self::request) without waiting: the command is queued
    /// only if there is room now.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the built command inside, as
    /// [`try_send`](Self::try_send).
    pub fn try_request<R>(
        &self,
        make: impl FnOnce(Reply<R>) -> M,
    ) -> Result<PendingReply<R>, SendError<M>> {
        let (reply, pending) = reply::pair();
        self.try_send(make(reply))?;
        Ok(pending)
    }

    /// The has-subscribers cell, shared.
    pub(crate) fn watch_arc(&self) -> Arc<WatchCell> {
        Arc::clone(&self.watch)
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
        f.debug_struct("ThreadEntry")
            .field("id", &self.id)
            .field(
                "generation",
                &self.listener.get().map_or(0, |home| home.generation()),
            )
            .field(
                "has_listener",
                &self.listener.get().is_some_and(|home| home.has_listener()),
            )
            .finish_non_exhaustive()
    }
}

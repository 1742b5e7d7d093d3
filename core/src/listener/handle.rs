//! [`Listener`]: the receiving end of a thread's command queue, the
//! handle a listener task holds, and the [`ListenerHome`] transitions that
//! open one (the slot side is `home.rs`).

use super::home::{Current, ListenerHome, ListenerSlot};
use crate::cancel::CancelToken;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::queue::{QueueConfig, QueueShared};
use crate::shutdown::Clear;
use crate::sync::channel::{self, Receiver};
use crate::sync::{Arc, StdArc};
use crate::waiters::{WaitGuard, WaitKey};
use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

/// The receiving end of a thread's command queue, returned by
/// [`ThreadEntry::set_listener`](crate::ThreadEntry::set_listener).
///
/// The queue closes, and [`token`](Self::token) fires, when the listener is
/// replaced or cleared; the receive methods keep returning commands queued
/// before that, then fail. Dropping the listener (its task ended, returned
/// early or panicked) clears the thread's slot if it is still current,
/// exactly as [`clear_listener_if`](crate::ThreadEntry::clear_listener_if)
/// with its generation would: a new listener can start.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use switchboard_core::Engine;
///
/// let engine: Engine<u64, u64, (), &str> = Engine::new();
/// let entry = engine.thread(1);
/// let owner = Arc::new(());
/// let listener = entry.set_listener(&owner);
/// entry.send("ping").unwrap();
/// assert_eq!(listener.recv(), Ok("ping"));
///
/// entry.clear_listener();
/// assert!(listener.is_cancelled());
/// assert!(listener.recv().is_err());
///
/// let second = entry.set_listener(&owner);
/// drop(second); // its task ended: the slot is free again
/// assert!(!entry.has_listener());
/// ```
pub struct Listener<M> {
    pub(super) rx: Receiver<M>,
    pub(super) queue: Arc<QueueShared>,
    /// This listener's registration as a consumer in its home's list.
    pub(super) key: WaitKey,
    pub(super) generation: u64,
    /// Whether this listener was ever current (false after shutdown).
    pub(super) owns_slot: bool,
    pub(super) token: CancelToken,
    pub(super) home: StdArc<ListenerHome<M>>,
}

impl<M> Drop for Listener<M> {
    fn drop(&mut self) {
        self.home.slot.deregister(&self.key);
        if self.owns_slot {
            self.home.clear_if(self.generation);
        }
        self.home.tracker.dropped();
    }
}

impl<M> Listener<M> {
    /// This listener's generation (the first listener of a thread is 1).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The capacity of this listener's queue (`None`: unbounded).
    pub fn capacity(&self) -> Option<usize> {
        self.queue.capacity
    }

    /// Commands waiting in this listener's queue.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no command is waiting in this listener's queue.
    pub fn is_empty(&self) -> bool {
        self.rx.len() == 0
    }

    #[inline]
    fn took(&self, m: M) -> M {
        self.queue.received();
        m
    }

    /// Blocks for the next command.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the listener was replaced or cleared and every
    /// command queued before that was received.
    pub fn recv(&self) -> Result<M, RecvError> {
        self.rx.recv().map(|m| self.took(m)).map_err(|_| RecvError)
    }

    /// The next command, if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is queued now,
    /// [`TryRecvError::Closed`] once closed and drained.
    #[inline]
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        match self.rx.try_recv() {
            Ok(m) => Ok(self.took(m)),
            Err(channel::TryRecvError::Empty) => Err(TryRecvError::Empty),
            Err(channel::TryRecvError::Disconnected) => Err(TryRecvError::Closed),
        }
    }

    /// Blocks for the next command, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Closed`] once closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        match self.rx.recv_timeout(timeout) {
            Ok(m) => Ok(self.took(m)),
            Err(channel::RecvTimeoutError::Timeout) => Err(RecvTimeoutError::Timeout),
            Err(channel::RecvTimeoutError::Disconnected) => Err(RecvTimeoutError::Closed),
        }
    }

    /// Polls for the next command, registering `cx`'s waker if none is
    /// queued: the building block of the async facade's listener stream.
    /// The waker is woken by the next send or by the queue closing. A
    /// listener has one consumer: a second task polling it takes over the
    /// wake-up.
    ///
    /// Returns `Ready(Err(RecvError))` once closed and drained.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<M, RecvError>> {
        let ready = || match self.try_recv() {
            Ok(m) => Some(Ok(m)),
            Err(TryRecvError::Closed) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => None,
        };
        if let Some(r) = ready() {
            self.home.slot.deregister(&self.key);
            return Poll::Ready(r);
        }
        // Re-checked under the slot's lock, which every send holds while it
        // queues: a send after this test wakes the waker stored here.
        self.home.slot.poll(&self.key, cx.waker(), |_| ready())
    }

    /// Whether this listener was replaced or cleared.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A token that fires when this listener is replaced or cleared.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }
}

impl<M> fmt::Debug for Listener<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("generation", &self.generation)
            .field("cancelled", &self.is_cancelled())
            .field("queued", &self.rx.len())
            .field("capacity", &self.queue.capacity)
            .finish()
    }
}

impl<M: Send + 'static> ListenerHome<M> {
    /// `set_listener`: replaces the current listener, if any.
    pub(crate) fn set<O: ?Sized + Send + Sync + 'static>(
        self: &StdArc<Self>,
        owner: &std::sync::Arc<O>,
        config: QueueConfig,
    ) -> Listener<M> {
        let mut slot = self.slot.lock();
        self.clear_locked(&mut slot);
        self.open_locked(&mut slot, owner, config)
    }

    /// `set_listener_if_none`: opens a listener only if none is current,
    /// testing and opening under one hold of the slot's lock, so of any
    /// number of racing callers exactly one finds the slot free (unless a
    /// clear comes between them).
    pub(crate) fn set_if_none<O: ?Sized + Send + Sync + 'static>(
        self: &StdArc<Self>,
        owner: &std::sync::Arc<O>,
        config: QueueConfig,
    ) -> Option<Listener<M>> {
        let mut slot = self.slot.lock();
        if slot.current.is_some() {
            return None;
        }
        Some(self.open_locked(&mut slot, owner, config))
    }

    /// Opens a new listener on a slot with none current: "never set" or
    /// "cleared" to "listening" with the next generation, or, after
    /// shutdown, a listener already cancelled and closed (the slot stays).
    fn open_locked<O: ?Sized + Send + Sync + 'static>(
        self: &StdArc<Self>,
        slot: &mut WaitGuard<'_, ListenerSlot<M>>,
        owner: &std::sync::Arc<O>,
        config: QueueConfig,
    ) -> Listener<M> {
        debug_assert!(slot.current.is_none(), "cleared before opening");
        let (tx, rx) = match config.capacity() {
            None => channel::unbounded(),
            Some(cap) => channel::bounded(cap),
        };
        let queue = Arc::new(QueueShared::new(config));
        let token = CancelToken::new();
        let current = self
            .tracker
            .opened(StdArc::clone(self) as StdArc<dyn Clear>);
        if current {
            slot.generation += 1;
            slot.current = Some(Current {
                tx,
                queue: Arc::clone(&queue),
                token: token.clone(),
                owner: Box::new(std::sync::Arc::downgrade(owner)),
            });
        } else {
            // Shut down: a listener that is already cancelled and closed.
            token.cancel();
            drop(tx);
        }
        Listener {
            rx,
            queue,
            key: WaitKey::new(),
            generation: slot.generation,
            owns_slot: current,
            token,
            home: StdArc::clone(self),
        }
    }
}

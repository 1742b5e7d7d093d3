//! Thread listeners: the task that serves a thread, its command queue and
//! its cancellation token.
//!
//! A thread entry holds at most one [`ListenerHome`], allocated by the
//! first operation that needs one (see `entry.rs`): a [`ListenerSlot`] in a
//! [`WaitList`] (its mutex is the slot's lock; its waiters are the tasks
//! polling the slot's listeners), plus the tracker that reports to the
//! engine's listener registry (`shutdown.rs`). The slot's states:
//!
//! | state     | `generation` | `current`  | `send` does              |
//! |-----------|--------------|------------|--------------------------|
//! | never set | 0            | `None`     | gives the message back   |
//! | listening | g ≥ 1        | `Some`     | queues for listener g    |
//! | cleared   | g ≥ 1        | `None`     | gives the message back   |
//!
//! `set_listener` moves any state to "listening" with `g + 1`, first
//! cancelling and closing the previous listener (after shutdown it leaves
//! the slot as it is and hands back a listener already closed).
//! `set_listener_if_none` does the same only from "never set" or
//! "cleared", and leaves "listening" untouched: the test and the move are
//! one critical section, so racing callers start exactly one listener.
//! `clear_listener`, and dropping listener g while it is current, move
//! "listening" to "cleared". Generations are never reused. Every transition
//! and every queueing happens under the slot's mutex, so a command reaches
//! the listener current when `send` took the lock, and the per-sender FIFO
//! order of the queue carries over. A send that finds a bounded queue full
//! waits *outside* the lock, on the queue's event count (see `queue.rs`), so
//! a clear is never blocked by it; the clear moves the count, and the woken
//! send finds its listener gone and gets its command back. A listener
//! dropped while current clears the slot (its `Drop`), so a task that ends
//! in any way frees the slot for a new listener.
//!
//! Clearing fires the token *before* closing the queue: a listener that sees
//! its queue closed also sees itself cancelled.

use crate::cancel::CancelToken;
use crate::error::{NoListener, SendError};
use crate::queue::{PendingSend, QueueConfig, QueueShared};
use crate::shutdown::{Clear, Track};
use crate::sync::channel::{self, Sender, TrySendError};
use crate::sync::{Arc, StdArc};
use crate::waiters::{WaitGuard, WaitKey, WaitList};
use std::task::{Context, Poll};
use std::time::Instant;

mod handle;

pub use handle::Listener;

/// A weak handle on the object that owns a listener (see
/// [`ThreadEntry::set_listener`](crate::ThreadEntry::set_listener)).
trait OwnerHandle: Send + Sync {
    /// The owner's address, whether or not it is alive. The weak handle
    /// keeps the allocation, so the address cannot be reused meanwhile.
    fn addr(&self) -> *const ();
    fn is_alive(&self) -> bool;
}

impl<O: ?Sized + Send + Sync> OwnerHandle for std::sync::Weak<O> {
    fn addr(&self) -> *const () {
        self.as_ptr() as *const ()
    }

    fn is_alive(&self) -> bool {
        self.strong_count() > 0
    }
}

/// The current listener, as the thread entry sees it.
struct Current<M> {
    tx: Sender<M>,
    queue: Arc<QueueShared>,
    token: CancelToken,
    owner: Box<dyn OwnerHandle>,
}

impl<M> Current<M> {
    /// Queues `m` without blocking; the caller then wakes the consumer.
    #[inline]
    fn try_send(&self, m: M) -> Result<(), SendError<M>> {
        match self.tx.try_send(m) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(m)) => Err(SendError::Full(m)),
            // Unreachable while the listener is current (its drop clears
            // the slot first); kept as an answer, not a panic.
            Err(TrySendError::Disconnected(m)) => Err(SendError::NoListener(m)),
        }
    }
}

/// Listener bookkeeping of one thread entry (see the module docs).
struct ListenerSlot<M> {
    generation: u64,
    current: Option<Current<M>>,
}

/// What a send that found the queue full waits on.
struct Full<M> {
    command: M,
    generation: u64,
    queue: Arc<QueueShared>,
    /// The queue's event count, read before the last `try_send`.
    seen: u64,
}

/// What one attempt to queue under the slot's lock found.
enum Attempt<M> {
    Queued,
    Full(Full<M>),
    NoListener(M),
}

/// A thread entry's listener slot and its registry tracker.
///
/// The slot lives in a [`WaitList`] whose waiters are the consumers of the
/// slot's listeners (a listener polled by a task): a send queues and wakes
/// under the one lock it already takes for the slot, and a consumer tests
/// its queue under that lock before it registers, so no send slips between
/// its test and its registration.
pub(crate) struct ListenerHome<M> {
    slot: WaitList<ListenerSlot<M>>,
    tracker: Box<dyn Track>,
}

impl<M: Send + 'static> Clear for ListenerHome<M> {
    fn clear(&self) {
        ListenerHome::clear(self);
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

impl<M> ListenerHome<M> {
    pub(crate) fn new(tracker: Box<dyn Track>) -> Self {
        ListenerHome {
            slot: WaitList::new(ListenerSlot {
                generation: 0,
                current: None,
            }),
            tracker,
        }
    }

    fn addr(&self) -> usize {
        self as *const Self as *const () as usize
    }

    pub(crate) fn generation(&self) -> u64 {
        self.slot.lock().generation
    }

    pub(crate) fn has_listener(&self) -> bool {
        self.slot.lock().current.is_some()
    }

    /// Cancels and closes the current listener, if any, waking its
    /// consumer and its waiting senders; returns whether there was one.
    fn clear_locked(&self, slot: &mut WaitGuard<'_, ListenerSlot<M>>) -> bool {
        match slot.current.take() {
            Some(old) => {
                // The token fires before the queue closes (module docs).
                old.token.cancel();
                // Dropping the only sender closes the queue; the old
                // listener can still drain what was queued before.
                drop(old.tx);
                slot.wake_all_now();
                old.queue.closed();
                self.tracker.cleared(self.addr());
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear(&self) -> bool {
        self.clear_locked(&mut self.slot.lock())
    }

    pub(crate) fn clear_if(&self, generation: u64) -> bool {
        let mut slot = self.slot.lock();
        slot.generation == generation && self.clear_locked(&mut slot)
    }

    pub(crate) fn matches<O: ?Sized>(&self, owner: &std::sync::Arc<O>) -> bool {
        self.slot.lock().current.as_ref().is_some_and(|cur| {
            cur.owner.is_alive() && cur.owner.addr() == std::sync::Arc::as_ptr(owner) as *const ()
        })
    }

    pub(crate) fn queue_len(&self) -> usize {
        self.slot
            .lock()
            .current
            .as_ref()
            .map_or(0, |cur| cur.tx.len())
    }

    /// One attempt under the slot's lock. `waiting_on`: the generation a
    /// previous attempt found full (the command goes to it or to none).
    /// On `Full`, reads the queue's event count and tries once more, so
    /// that the caller can wait for the count to move.
    fn attempt(&self, m: M, waiting_on: Option<u64>) -> Result<(), Result<Full<M>, M>> {
        let slot = self.slot.lock();
        let generation = slot.generation;
        let outcome = match &slot.current {
            None => Attempt::NoListener(m),
            Some(_) if waiting_on.is_some_and(|g| g != generation) => Attempt::NoListener(m),
            Some(cur) => match cur.try_send(m) {
                Ok(()) => Attempt::Queued,
                Err(SendError::NoListener(m)) => Attempt::NoListener(m),
                Err(SendError::Full(m)) => {
                    let seen = cur.queue.room_count();
                    match cur.try_send(m) {
                        Ok(()) => Attempt::Queued,
                        Err(SendError::NoListener(m)) => Attempt::NoListener(m),
                        Err(SendError::Full(command)) => Attempt::Full(Full {
                            command,
                            generation,
                            queue: Arc::clone(&cur.queue),
                            seen,
                        }),
                    }
                }
            },
        };
        match outcome {
            Attempt::Queued => {
                slot.wake_all();
                Ok(())
            }
            Attempt::Full(full) => Err(Ok(full)),
            Attempt::NoListener(m) => Err(Err(m)),
        }
    }

    /// Never blocks.
    #[inline]
    pub(crate) fn try_send(&self, m: M) -> Result<(), SendError<M>> {
        let slot = self.slot.lock();
        let sent = match &slot.current {
            Some(cur) => cur.try_send(m),
            None => Err(SendError::NoListener(m)),
        };
        if sent.is_ok() {
            // Wakes the consumer, if it waits, and releases the lock.
            slot.wake_all();
        }
        sent
    }

    /// Waits for room until `deadline` (`None`: for ever).
    pub(crate) fn send_until(
        &self,
        mut m: M,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<M>> {
        let mut waiting_on = None;
        loop {
            let full = match self.attempt(m, waiting_on) {
                Ok(()) => return Ok(()),
                Err(Err(m)) => return Err(SendError::NoListener(m)),
                Err(Ok(full)) => full,
            };
            let seen = full.seen;
            let moved = full
                .queue
                .room
                .wait(deadline, |count| (*count != seen).then_some(()));
            if moved.is_none() {
                return Err(SendError::Full(full.command));
            }
            m = full.command;
            waiting_on = Some(full.generation);
        }
    }

    /// Blocking send: never `Full`.
    #[inline]
    pub(crate) fn send(&self, m: M) -> Result<(), NoListener<M>> {
        let m = match self.try_send(m) {
            Ok(()) => return Ok(()),
            Err(SendError::NoListener(m)) => return Err(NoListener(m)),
            Err(SendError::Full(m)) => m,
        };
        self.send_until(m, None)
            .map_err(|e| NoListener(e.into_inner()))
    }

    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        pending: &mut PendingSend<M>,
    ) -> Poll<Result<(), NoListener<M>>> {
        loop {
            let Some(m) = pending.command.take() else {
                // Completed before: nothing left to send.
                return Poll::Ready(Ok(()));
            };
            let full = match self.attempt(m, pending.generation) {
                Ok(()) => {
                    pending.stop_waiting();
                    return Poll::Ready(Ok(()));
                }
                Err(Err(m)) => {
                    pending.stop_waiting();
                    return Poll::Ready(Err(NoListener(m)));
                }
                Err(Ok(full)) => full,
            };
            pending.command = Some(full.command);
            pending.generation = Some(full.generation);
            pending.waiting_on(&full.queue);
            let seen = full.seen;
            let moved = full.queue.room.poll(&pending.key, cx.waker(), |count| {
                (*count != seen).then_some(())
            });
            if moved.is_pending() {
                return Poll::Pending;
            }
        }
    }
}

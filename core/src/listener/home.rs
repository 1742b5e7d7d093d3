//! [`ListenerHome`]: a thread entry's listener slot (the states in the
//! parent module's docs), its registry tracker, and the send paths that
//! queue under the slot's lock. Opening a listener is in `handle.rs`, next
//! to the [`Listener`](super::Listener) it makes.

use crate::cancel::CancelToken;
use crate::error::{NoListener, SendError};
use crate::queue::{PendingSend, QueueShared};
use crate::shutdown::{Clear, Track};
use crate::sync::channel::{Sender, TrySendError};
use crate::sync::Arc;
use crate::waiters::{WaitGuard, WaitList};
use std::task::{Context, Poll};
use std::time::Instant;

/// A weak handle on the object that owns a listener (see
/// [`ThreadEntry::set_listener`](crate::ThreadEntry::set_listener)).
pub(super) trait OwnerHandle: Send + Sync {
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
pub(super) struct Current<M> {
    pub(super) tx: Sender<M>,
    pub(super) queue: Arc<QueueShared>,
    pub(super) token: CancelToken,
    pub(super) owner: Box<dyn OwnerHandle>,
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

/// Listener bookkeeping of one thread entry (see the parent module's docs).
pub(super) struct ListenerSlot<M> {
    pub(super) generation: u64,
    pub(super) current: Option<Current<M>>,
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
    pub(super) slot: WaitList<ListenerSlot<M>>,
    pub(super) tracker: Box<dyn Track>,
}

impl<M: Send + 'static> Clear for ListenerHome<M> {
    fn clear(&self) {
        ListenerHome::clear(self);
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
    pub(super) fn clear_locked(&self, slot: &mut WaitGuard<'_, ListenerSlot<M>>) -> bool {
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
            if !full.queue.wait_for_room(full.seen, deadline) {
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
            if full
                .queue
                .poll_room(pending, cx.waker(), full.seen)
                .is_pending()
            {
                return Poll::Pending;
            }
        }
    }
}

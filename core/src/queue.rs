//! Listener queues: their capacity, and the two waits around them.
//!
//! Each listener generation has its own queue: a crossbeam channel (the
//! slot's `Current` holds the only sender, the [`Listener`](crate::Listener)
//! the only receiver) and a [`QueueShared`] that both ends hold. (The
//! consumer's waker, a listener polled by a task, waits in the slot's own
//! list in `listener.rs`: a send wakes it under the lock it already holds.)
//!
//! * `room`: senders waiting for room in a full bounded queue. Its state is
//!   an event count: the receiver adds one after every command it takes
//!   from a bounded queue, and closing the queue adds one. A waiting sender
//!   reads the count *before* its last `try_send` (under the slot's lock)
//!   and then waits, under the list's lock, for the count to move. A
//!   receive that made room after the read moves the count after the pop,
//!   so the sender wakes; one before the read was visible to the `try_send`
//!   (the pop happened before the count's lock was released, and the read
//!   took that lock after). Closing moves it too, so a waiting sender
//!   re-takes the slot's lock, sees that its listener is gone, and gets its
//!   command back.
//!
//! Unbounded queues never fill, so their receivers never touch `room`.

use crate::sync::Arc;
use crate::waiters::{WaitKey, WaitList};
use std::fmt;

/// A listener queue's capacity, chosen per listener with
/// [`ThreadEntry::set_listener_with`](crate::ThreadEntry::set_listener_with).
///
/// Unbounded (the default, and what
/// [`set_listener`](crate::ThreadEntry::set_listener) uses) never refuses a
/// command: `send` never blocks, and memory grows with the backlog. Bounded
/// holds at most `cap` commands: `try_send` gives the command back when
/// full, `send_timeout` waits up to a deadline, and `send` waits for room
/// (see the crate docs' "Backpressure" section for which to pick).
///
/// # Examples
///
/// ```
/// use switchboard_core::QueueConfig;
///
/// assert_eq!(QueueConfig::default(), QueueConfig::unbounded());
/// assert_eq!(QueueConfig::bounded(64).capacity(), Some(64));
/// assert_eq!(QueueConfig::unbounded().capacity(), None);
/// // A zero capacity could never hold a command: it is raised to one.
/// assert_eq!(QueueConfig::bounded(0).capacity(), Some(1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueConfig {
    /// `None`: unbounded; `Some(cap)`: `cap >= 1`.
    capacity: Option<usize>,
}

impl QueueConfig {
    /// A queue that never refuses a command (the default).
    pub const fn unbounded() -> Self {
        QueueConfig { capacity: None }
    }

    /// A queue holding at most `cap` commands. A `cap` of 0 is raised to 1:
    /// a queue that can hold nothing would refuse every command.
    pub const fn bounded(cap: usize) -> Self {
        QueueConfig {
            capacity: Some(if cap == 0 { 1 } else { cap }),
        }
    }

    /// The capacity: `None` if unbounded.
    pub const fn capacity(&self) -> Option<usize> {
        self.capacity
    }
}

/// What both ends of one listener generation's queue share (see the module
/// docs).
pub(crate) struct QueueShared {
    /// The event count: receives from a bounded queue, plus closes.
    pub(crate) room: WaitList<u64>,
    pub(crate) capacity: Option<usize>,
}

impl QueueShared {
    pub(crate) fn new(config: QueueConfig) -> Self {
        QueueShared {
            room: WaitList::new(0),
            capacity: config.capacity,
        }
    }

    /// The receiver took a command: room for one more in a bounded queue.
    #[inline]
    pub(crate) fn received(&self) {
        if self.capacity.is_some() {
            self.bump_room();
        }
    }

    /// The queue closed: wake every waiting sender.
    pub(crate) fn closed(&self) {
        self.bump_room();
    }

    fn bump_room(&self) {
        let mut count = self.room.lock();
        *count += 1;
        count.wake_all();
    }

    /// The event count now (read it before the last `try_send`).
    pub(crate) fn room_count(&self) -> u64 {
        *self.room.lock()
    }
}

/// A command waiting for room in a bounded queue: the state of one
/// [`ThreadEntry::poll_send`](crate::ThreadEntry::poll_send) (the async
/// facade's `send_async` future holds one).
///
/// It holds the command until it is queued, and its waker's registration
/// with the queue it waits on; dropping it drops the command unsent and
/// frees the registration. [`into_inner`](Self::into_inner) gives the
/// command back instead.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use switchboard_core::{Engine, PendingSend, QueueConfig};
///
/// let engine: Engine<u64, u64, (), u32> = Engine::new();
/// let entry = engine.thread(1);
/// let _listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
/// entry.try_send(1).unwrap(); // the queue is full now
/// let pending = PendingSend::new(2);
/// assert_eq!(pending.into_inner(), Some(2)); // never sent
/// ```
pub struct PendingSend<M> {
    /// `None` once queued or given back.
    pub(crate) command: Option<M>,
    /// The generation it first found full: it is sent to that listener or
    /// to none.
    pub(crate) generation: Option<u64>,
    /// The queue `key` may be registered with.
    pub(crate) queue: Option<Arc<QueueShared>>,
    pub(crate) key: WaitKey,
}

impl<M> PendingSend<M> {
    /// A command about to be sent.
    pub fn new(command: M) -> Self {
        PendingSend {
            command: Some(command),
            generation: None,
            queue: None,
            key: WaitKey::new(),
        }
    }

    /// The command, if it was neither queued nor given back by an error.
    pub fn into_inner(mut self) -> Option<M> {
        self.command.take()
    }

    /// Whether the command was queued or given back (the poll completed).
    pub fn is_done(&self) -> bool {
        self.command.is_none()
    }

    /// Moves the waker registration to `queue` (freeing one held on another
    /// queue).
    pub(crate) fn waiting_on(&mut self, queue: &Arc<QueueShared>) {
        if let Some(old) = &self.queue {
            if Arc::ptr_eq(old, queue) {
                return;
            }
            old.room.deregister(&self.key);
        }
        self.queue = Some(Arc::clone(queue));
    }

    /// Frees the waker registration.
    pub(crate) fn stop_waiting(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.room.deregister(&self.key);
        }
    }
}

impl<M> Drop for PendingSend<M> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

impl<M> fmt::Debug for PendingSend<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSend")
            .field("done", &self.is_done())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

//! Listener queues: their capacity, and the two waits around them.
//!
//! Each listener generation has its own queue: a crossbeam channel (the
//! slot's `Current` holds the only sender, the [`Listener`](crate::Listener)
//! the only receiver) and a [`QueueShared`] that both ends hold. (The
//! consumer's waker, a listener polled by a task, waits in the slot's own
//! list in `listener.rs`: a send wakes it under the lock it already holds.)
//!
//! * `room`: senders waiting for room in a full bounded queue. They wait on
//!   an event count: the receiver adds one after every command it takes
//!   from a bounded queue, and closing the queue adds one. A waiting sender
//!   reads the count *before* its last `try_send` (under the slot's lock)
//!   and then waits, in the `room` wait list, for the count to move. A
//!   receive that made room after the read moves the count after the pop,
//!   so the sender wakes; one before the read was visible to the `try_send`
//!   (the pop happened before the count's `AcqRel` add, which the read's
//!   `Acquire` load saw). Closing moves it too, so a waiting sender
//!   re-takes the slot's lock, sees that its listener is gone, and gets its
//!   command back.
//!
//! The count shares one atomic word with the number of senders that wait
//! (`word`: the count above [`WATCH_BITS`], the waiters below), so that a
//! receive takes no lock when nobody waits: it adds to the count and looks
//! at the waiters in one read-modify-write. A sender counts itself into the
//! word, under the wait list's lock, in the same read-modify-write that
//! reads the count it tests. Read-modify-writes of one word are totally
//! ordered, so of a receive and a sender starting to wait, either the
//! sender's sees the receive's event (it does not wait), or the receive's
//! sees the sender (it takes the list's lock and wakes it, after the sender
//! registered: the sender holds that lock from its count to its
//! registration). No lost wake-up (loom: `bounded_queue.rs`).
//!
//! Unbounded queues never fill, so their receivers never touch `room`.

use crate::sync::{Arc, AtomicU64, Ordering};
use crate::waiters::{WaitKey, WaitList};
use std::fmt;
use std::task::{Poll, Waker};
use std::time::Instant;

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

/// The low bits of [`QueueShared`]'s word: how many senders wait.
const WATCH_BITS: u32 = 24;
/// One event in the word.
const EVENT: u64 = 1 << WATCH_BITS;
const WATCHERS: u64 = EVENT - 1;

/// What both ends of one listener generation's queue share (see the module
/// docs).
pub(crate) struct QueueShared {
    /// Senders waiting for the event count to move.
    room: WaitList<()>,
    /// The event count (receives from a bounded queue, plus closes) above
    /// `WATCH_BITS`, wrapping; below, the senders counted as waiting.
    word: AtomicU64,
    pub(crate) capacity: Option<usize>,
}

impl QueueShared {
    pub(crate) fn new(config: QueueConfig) -> Self {
        QueueShared {
            room: WaitList::new(()),
            word: AtomicU64::new(0),
            capacity: config.capacity,
        }
    }

    /// The receiver took a command: room for one more in a bounded queue.
    #[inline]
    pub(crate) fn received(&self) {
        if self.capacity.is_some() {
            self.event();
        }
    }

    /// The queue closed: wake every waiting sender.
    pub(crate) fn closed(&self) {
        self.event();
    }

    /// Moves the count; wakes the waiting senders if there are any.
    #[inline]
    fn event(&self) {
        // AcqRel: one link in the word's total order (module docs).
        if self.word.fetch_add(EVENT, Ordering::AcqRel) & WATCHERS != 0 {
            self.room.wake_all();
        }
    }

    /// The event count now (read it before the last `try_send`).
    pub(crate) fn room_count(&self) -> u64 {
        self.word.load(Ordering::Acquire) >> WATCH_BITS
    }

    /// Under the room list's lock: whether the count moved past `seen`,
    /// counting this sender in as a waiter first if `counted` says it is
    /// not yet.
    fn moved(&self, seen: u64, counted: &mut bool) -> bool {
        let word = if *counted {
            self.word.load(Ordering::Acquire)
        } else {
            *counted = true;
            self.word.fetch_add(1, Ordering::AcqRel)
        };
        word >> WATCH_BITS != seen
    }

    /// Counts a sender out again.
    fn uncount(&self, counted: &mut bool) {
        if std::mem::take(counted) {
            self.word.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Blocks until the count moves past `seen` (`true`) or `deadline`
    /// passes (`false`).
    pub(crate) fn wait_for_room(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut counted = false;
        let moved = self
            .room
            .wait(deadline, |()| self.moved(seen, &mut counted).then_some(()));
        self.uncount(&mut counted);
        moved.is_some()
    }

    /// `Ready` once the count moved past `seen`; else `waker` waits in
    /// `pending`'s slot (which must be on this queue: `waiting_on`).
    pub(crate) fn poll_room<M>(
        &self,
        pending: &mut PendingSend<M>,
        waker: &Waker,
        seen: u64,
    ) -> Poll<()> {
        let (key, counted) = (&pending.key, &mut pending.counted);
        let moved = self
            .room
            .poll(key, waker, |()| self.moved(seen, counted).then_some(()));
        if moved.is_ready() {
            // Ready frees the slot: no longer a waiter.
            self.uncount(&mut pending.counted);
        }
        moved
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
    /// Counted as a waiter in `queue`'s word.
    counted: bool,
}

impl<M> PendingSend<M> {
    /// A command about to be sent.
    pub fn new(command: M) -> Self {
        PendingSend {
            command: Some(command),
            generation: None,
            queue: None,
            key: WaitKey::new(),
            counted: false,
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
            old.uncount(&mut self.counted);
        }
        self.queue = Some(Arc::clone(queue));
    }

    /// Frees the waker registration.
    pub(crate) fn stop_waiting(&mut self) {
        if let Some(queue) = self.queue.take() {
            queue.room.deregister(&self.key);
            queue.uncount(&mut self.counted);
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

//! Has-subscribers watches.
//!
//! Each thread entry owns one [`WatchCell`]; every [`SubscriberWatch`] of
//! that thread shares it. The engine's writer is the only code that changes
//! a cell, always under the engine's writer lock and always *after* the
//! graph that caused the change is published, so a woken watcher that looks
//! at the engine sees the graph its value describes.
//!
//! Waiting is two-phase: state lives in one atomic word (so `get`,
//! `version` and `is_closed` never lock); sleepers and async wakers park on
//! the cell's [`WaitList`]. The writer stores the new state, then wakes the
//! list, which takes its lock, so a waiter that checked the state under
//! that lock either saw the new state or is already registered when the
//! wake-up comes: no lost wake-up. Each watch handle holds at most one
//! async registration, freed when the handle is dropped (or by
//! [`SubscriberWatch::forget_waker`]).

use crate::error::WatchError;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::waiters::{WaitKey, WaitList};
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The packed state word of a watch cell.
///
/// | bits  | meaning                                              |
/// |-------|------------------------------------------------------|
/// | 0     | current has-subscribers value                        |
/// | 1     | closed: the thread was removed; no change will follow |
/// | 2..64 | version: bumped by one on every real value change     |
mod state {
    const VALUE: u64 = 1;
    const CLOSED: u64 = 2;
    const VERSION_ONE: u64 = 4;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) struct State(pub(super) u64);

    impl State {
        pub(super) const INITIAL: State = State(0);

        pub(super) fn value(self) -> bool {
            self.0 & VALUE != 0
        }

        pub(super) fn is_closed(self) -> bool {
            self.0 & CLOSED != 0
        }

        pub(super) fn version(self) -> u64 {
            self.0 >> 2
        }

        /// `self` with `value`, the version bumped if it differs.
        pub(super) fn with_value(self, value: bool) -> State {
            if self.value() == value {
                self
            } else {
                State((self.0 ^ VALUE).wrapping_add(VERSION_ONE))
            }
        }

        pub(super) fn closed(self) -> State {
            State(self.0 | CLOSED)
        }
    }
}

use state::State;

/// Shared state of one thread's has-subscribers watch.
pub(crate) struct WatchCell {
    state: AtomicU64,
    /// Async waiters and blocked threads.
    waiters: WaitList,
}

impl WatchCell {
    pub(crate) fn new() -> Self {
        WatchCell {
            state: AtomicU64::new(State::INITIAL.0),
            waiters: WaitList::new(()),
        }
    }

    fn load(&self) -> State {
        // Acquire: pairs with the Release in `publish`, so a watcher that
        // sees a version also sees the graph published before it.
        State(self.state.load(Ordering::Acquire))
    }

    /// Records the thread's has-subscribers value. Writer only, after
    /// publishing the graph that has this value. Wakes waiters only if the
    /// value really changed.
    pub(crate) fn set(&self, value: bool) {
        let old = self.load();
        let new = old.with_value(value);
        if new != old && !old.is_closed() {
            self.publish(new);
        }
    }

    /// Marks the watch closed (the thread was removed). Writer only.
    pub(crate) fn close(&self) {
        let old = self.load();
        if !old.is_closed() {
            self.publish(old.closed());
        }
    }

    fn publish(&self, new: State) {
        // Release: see `load`. Only the engine's writer stores, under the
        // writer lock, so a plain store cannot lose another store.
        self.state.store(new.0, Ordering::Release);
        // `wake_all` takes the list's lock, which orders this store before
        // any waiter's re-check under it.
        self.waiters.wake_all();
    }

    /// A new watch on `cell`, having seen the current version.
    pub(crate) fn watch(cell: &Arc<WatchCell>) -> SubscriberWatch {
        SubscriberWatch {
            seen: cell.load().version(),
            cell: Arc::clone(cell),
            key: WaitKey::new(),
        }
    }
}

/// Tells its holder when a thread gains its first subscriber or loses its
/// last one. Made by [`Engine::watch_subscribers`](crate::Engine::watch_subscribers).
///
/// Each watch remembers the last version [`wait_changed`](Self::wait_changed)
/// returned (a new watch starts at the version current when it was made).
/// Changes coalesce: a slow watcher may skip intermediate flips but always
/// ends on the latest value. Clones share the thread's state but remember
/// their own last-seen version.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use switchboard_core::{Caps, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// engine.thread(7);
/// let mut watch = engine.watch_subscribers(7).unwrap();
/// assert!(!watch.get());
///
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(7, 1).unwrap();
/// assert_eq!(watch.wait_changed(Duration::from_secs(1)), Ok(true));
///
/// engine.disconnect(1);
/// assert_eq!(watch.wait_changed(Duration::from_secs(1)), Ok(false));
/// ```
pub struct SubscriberWatch {
    cell: Arc<WatchCell>,
    seen: u64,
    /// This handle's async registration, if any.
    key: WaitKey,
}

impl Clone for SubscriberWatch {
    /// A watch on the same thread that has seen what this one has, with no
    /// registration of its own.
    fn clone(&self) -> Self {
        SubscriberWatch {
            cell: Arc::clone(&self.cell),
            seen: self.seen,
            key: WaitKey::new(),
        }
    }
}

impl Drop for SubscriberWatch {
    fn drop(&mut self) {
        self.cell.waiters.deregister(&self.key);
    }
}

impl SubscriberWatch {
    /// Whether the thread has subscribers now. Does not mark anything seen.
    pub fn get(&self) -> bool {
        self.cell.load().value()
    }

    /// How many real changes the thread's has-subscribers state has had.
    /// Does not mark anything seen.
    pub fn version(&self) -> u64 {
        self.cell.load().version()
    }

    /// Whether the thread was removed (no further change will come).
    pub fn is_closed(&self) -> bool {
        self.cell.load().is_closed()
    }

    /// The current value, marking the current version seen: the next
    /// [`wait_changed`](Self::wait_changed) or
    /// [`poll_changed`](Self::poll_changed) waits for a change after this
    /// one (tokio's `borrow_and_update`).
    pub fn get_and_mark_seen(&mut self) -> bool {
        let s = self.cell.load();
        self.seen = s.version();
        s.value()
    }

    /// The outcome if one is ready now: the latest value if the version
    /// moved past the last one seen, `Closed` if closed with nothing unseen.
    fn ready(cell: &WatchCell, seen: &mut u64) -> Option<Result<bool, WatchError>> {
        let s = cell.load();
        if s.version() != *seen {
            *seen = s.version();
            Some(Ok(s.value()))
        } else if s.is_closed() {
            Some(Err(WatchError::Closed))
        } else {
            None
        }
    }

    /// Blocks until the version moves past the last one this watch returned,
    /// then returns the latest value.
    ///
    /// # Errors
    ///
    /// [`WatchError::Timeout`] if nothing changed within `timeout`;
    /// [`WatchError::Closed`] once the thread was removed and every change
    /// before the removal was returned.
    pub fn wait_changed(&mut self, timeout: Duration) -> Result<bool, WatchError> {
        if let Some(r) = Self::ready(&self.cell, &mut self.seen) {
            return r;
        }
        let deadline = Instant::now().checked_add(timeout);
        let (cell, seen) = (&self.cell, &mut self.seen);
        cell.waiters
            .wait(deadline, |()| Self::ready(cell, seen))
            .unwrap_or(Err(WatchError::Timeout))
    }

    /// Polls for the next change, registering `cx`'s waker if there is none
    /// yet: the building block of the async facade's `changed()`.
    ///
    /// Returns as [`wait_changed`](Self::wait_changed) does, without the
    /// timeout. The waker is woken only by a real change or by the close.
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, WatchError>> {
        if let Some(r) = Self::ready(&self.cell, &mut self.seen) {
            self.forget_waker();
            return Poll::Ready(r);
        }
        // Re-checked under the list's lock: a change published before we
        // took it is visible now; one published after will find our waker.
        let (cell, seen) = (&self.cell, &mut self.seen);
        cell.waiters
            .poll(&self.key, cx.waker(), |()| Self::ready(cell, seen))
    }

    /// Frees the registration the last pending
    /// [`poll_changed`](Self::poll_changed) left, if any: a future that
    /// borrows this watch calls it when dropped while pending. Dropping the
    /// watch does the same.
    pub fn forget_waker(&mut self) {
        self.cell.waiters.deregister(&self.key);
    }

    /// Async waiters registered on this thread's watch now (all handles),
    /// plus blocked threads: a probe for tests.
    #[doc(hidden)]
    pub fn waiter_count(&self) -> usize {
        self.cell.waiters.len()
    }
}

impl fmt::Debug for SubscriberWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.cell.load();
        f.debug_struct("SubscriberWatch")
            .field("value", &s.value())
            .field("version", &s.version())
            .field("closed", &s.is_closed())
            .field("seen", &self.seen)
            .finish()
    }
}

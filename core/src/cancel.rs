//! Cancellation tokens: each listener's, fired when it is replaced, cleared
//! or dropped while current.
//!
//! The flag is one atomic (so `is_cancelled` never locks); waiters park on
//! the token's [`WaitList`]. `cancel` sets the flag, then wakes the list,
//! which takes its lock, so a waiter that tested the flag under that lock
//! either saw it set or is registered before the wake-up: no lost wake-up.
//! Clearing a listener fires its token before closing its queue
//! (`listener.rs`).

use crate::sync::{Arc, AtomicBool, Ordering};
use crate::waiters::{WaitKey, WaitList};
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

struct CancelInner {
    cancelled: AtomicBool,
    /// Async waiters and blocked threads.
    waiters: WaitList,
}

/// Fires once, when its listener is replaced or cleared (or dropped while
/// current).
///
/// Each handle holds at most one async registration (the waker of its
/// latest [`poll_cancelled`](Self::poll_cancelled)), freed when the handle
/// is dropped: poll one handle from one task, and clone it for another.
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use switchboard_core::Engine;
///
/// let engine: Engine<u64, u64> = Engine::new();
/// let entry = engine.thread(1);
/// let listener = entry.set_listener(&Arc::new(()));
/// let token = listener.token();
/// assert!(!token.wait_timeout(Duration::from_millis(1)));
/// let _next = entry.set_listener(&Arc::new(())); // replaces the first listener
/// assert!(token.is_cancelled());
/// ```
pub struct CancelToken {
    inner: Arc<CancelInner>,
    key: WaitKey,
}

impl Clone for CancelToken {
    /// Another handle on the same token, with no registration of its own.
    fn clone(&self) -> Self {
        CancelToken {
            inner: Arc::clone(&self.inner),
            key: WaitKey::new(),
        }
    }
}

impl Drop for CancelToken {
    fn drop(&mut self) {
        self.inner.waiters.deregister(&self.key);
    }
}

impl CancelToken {
    pub(crate) fn new() -> Self {
        CancelToken {
            inner: Arc::new(CancelInner {
                cancelled: AtomicBool::new(false),
                waiters: WaitList::new(()),
            }),
            key: WaitKey::new(),
        }
    }

    /// Fires the token; only the first call has an effect.
    pub(crate) fn cancel(&self) {
        // AcqRel: the swap decides the one call that fires; Release makes
        // the listener's replacement visible to whoever sees the token.
        if !self.inner.cancelled.swap(true, Ordering::AcqRel) {
            // `wake_all` takes the waiters' lock, which orders the flag
            // before any waiter's re-check under it.
            self.inner.waiters.wake_all();
        }
    }

    /// Whether the token has fired.
    pub fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the swap in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    fn fired(&self) -> Option<()> {
        self.is_cancelled().then_some(())
    }

    /// Blocks until the token fires or `timeout` passes; returns whether it
    /// fired.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let deadline = Instant::now().checked_add(timeout);
        self.inner
            .waiters
            .wait(deadline, |()| self.fired())
            .is_some()
    }

    /// Blocks until the token fires.
    pub fn wait(&self) {
        self.inner.waiters.wait(None, |()| self.fired());
    }

    /// Polls the token, registering `cx`'s waker if it has not fired: the
    /// building block of the async facade's `cancelled()`. The waker is woken
    /// once, when the token fires. The registration belongs to this handle
    /// (see the type's docs).
    pub fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_cancelled() {
            self.inner.waiters.deregister(&self.key);
            return Poll::Ready(());
        }
        self.inner
            .waiters
            .poll(&self.key, cx.waker(), |()| self.fired())
    }

    /// Async waiters registered on this token now (all handles), plus
    /// blocked threads: a probe for tests.
    #[doc(hidden)]
    pub fn waiter_count(&self) -> usize {
        self.inner.waiters.len()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

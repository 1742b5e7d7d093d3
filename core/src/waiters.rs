//! The one waiter list: every watch, cancel token, reply, listener queue,
//! change-log stripe and the engine's shutdown park their waiters here.
//!
//! A [`WaitList<S>`] is a mutex around some state `S` plus a slab of async
//! waiter slots, and a condition variable for blocked threads. It is the
//! classic "change, then wake under the same lock" protocol:
//!
//! * a **changer** updates whatever the waiters test (in `S`, or in an
//!   atomic outside it), then calls [`wake_all`](WaitList::wake_all) (or
//!   changes `S` under [`lock`](WaitList::lock) and calls
//!   [`WaitGuard::wake_all`]), which takes the list's lock, takes every
//!   registered waker and notifies every blocked thread;
//! * a **waiter** tests its condition *under the list's lock*
//!   ([`poll`](WaitList::poll), [`wait`](WaitList::wait)): either the test
//!   sees the change, or the waiter's waker is in its slot (or the thread
//!   is parked on the condition variable) before the changer takes the
//!   lock, so the changer finds it. No lost wake-up.
//!
//! Each async waiter owns one [`WaitKey`]: the index of its slot, allocated
//! on its first pending poll and reused by every later poll (a re-poll with
//! another waker replaces the waker, so the latest task is the one woken).
//! `wake_all` empties the slots but keeps them allocated; the slot is freed
//! when the poll returns `Ready` or when the owner calls
//! [`deregister`](WaitList::deregister) (every owner does so in its `Drop`).
//! So the slab holds exactly the live waiters: a million short-lived waits
//! on a quiet list keep it at the number alive at once (its capacity stays
//! at the peak).
//!
//! Invariants (all under the list's lock):
//! * `slots[i]` is `Some(_)` iff some key holds index `i`; `free` lists the
//!   other indexes, each once.
//! * a key holds at most one index, and only keys of this list.
//! * `blocked` counts the threads parked in [`wait`](WaitList::wait).
//! * `armed` counts the slots that hold a waker (`Some(Some(_))`), so a
//!   wake with no waker and no blocked thread only takes and drops the
//!   lock.

use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::task::{Poll, Waker};
use std::time::Instant;

/// The slot index of one async waiter, or none yet. Read and written only
/// under its list's lock (hence `Relaxed`), except by its owner's `Drop`,
/// which has `&mut` access and so sees the last write.
pub(crate) struct WaitKey(AtomicUsize);

impl Default for WaitKey {
    fn default() -> Self {
        WaitKey::new()
    }
}

/// `WaitKey` holds no slot.
const NO_SLOT: usize = 0;

impl WaitKey {
    pub(crate) fn new() -> Self {
        WaitKey(AtomicUsize::new(NO_SLOT))
    }

    fn get(&self) -> Option<usize> {
        // Relaxed: see the type's docs (always under the list's lock).
        match self.0.load(Ordering::Relaxed) {
            NO_SLOT => None,
            stored => Some(stored - 1),
        }
    }

    fn set(&self, index: Option<usize>) {
        // Relaxed: see the type's docs.
        self.0
            .store(index.map_or(NO_SLOT, |i| i + 1), Ordering::Relaxed);
    }
}

impl fmt::Debug for WaitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WaitKey").field(&self.get()).finish()
    }
}

/// What the list's mutex protects.
pub(crate) struct Inner<S> {
    state: S,
    /// `Some(waker slot)` for an allocated slot, `None` for a free one.
    slots: Vec<Option<Option<Waker>>>,
    free: Vec<usize>,
    /// How many slots hold a waker (`Some(Some(_))`): a wake with none and
    /// no blocked thread has nothing to do.
    armed: usize,
    blocked: usize,
}

impl<S> Inner<S> {
    fn register(&mut self, key: &WaitKey, waker: &Waker) {
        let index = match key.get() {
            Some(i) => i,
            None => {
                let i = match self.free.pop() {
                    Some(i) => i,
                    None => {
                        self.slots.push(None);
                        self.slots.len() - 1
                    }
                };
                self.slots[i] = Some(None);
                key.set(Some(i));
                i
            }
        };
        match &mut self.slots[index] {
            Some(Some(w)) if w.will_wake(waker) => {}
            Some(Some(w)) => w.clone_from(waker),
            slot => {
                *slot = Some(Some(waker.clone()));
                self.armed += 1;
            }
        }
    }

    fn deregister(&mut self, key: &WaitKey) {
        if let Some(i) = key.get() {
            debug_assert!(self.slots[i].is_some(), "a key names a free slot");
            if let Some(Some(_)) = self.slots[i].take() {
                self.armed -= 1;
            }
            self.free.push(i);
            key.set(None);
        }
    }

    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether a wake has anyone to wake.
    #[inline]
    fn anyone(&self) -> bool {
        self.armed > 0 || self.blocked > 0
    }

    /// Takes every registered waker; the slots stay allocated.
    fn take_wakers(&mut self) -> Wakers {
        let mut wakers = Wakers {
            first: None,
            rest: Vec::new(),
        };
        if self.armed == 0 {
            return wakers;
        }
        self.armed = 0;
        for waker in self
            .slots
            .iter_mut()
            .filter_map(|slot| slot.as_mut().and_then(Option::take))
        {
            match wakers.first {
                None => wakers.first = Some(waker),
                Some(_) => wakers.rest.push(waker),
            }
        }
        wakers
    }
}

/// Wakers taken from a list, to wake after its lock is released. The
/// common case, one waker (a queue's consumer), allocates nothing.
struct Wakers {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakers {
    fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        self.rest.into_iter().for_each(Waker::wake);
    }
}

/// A list of waiters on some state `S` (see the module docs).
pub(crate) struct WaitList<S = ()> {
    inner: Mutex<Inner<S>>,
    cond: Condvar,
}

/// The list's lock, held: derefs to the state.
pub(crate) struct WaitGuard<'a, S> {
    guard: MutexGuard<'a, Inner<S>>,
    list: &'a WaitList<S>,
}

impl<S> Deref for WaitGuard<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.guard.state
    }
}

impl<S> DerefMut for WaitGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.guard.state
    }
}

impl<S> WaitGuard<'_, S> {
    /// Wakes every waiter now, keeping the lock (for a change that is
    /// followed by more work under the same lock).
    pub(crate) fn wake_all_now(&mut self) {
        let wakers = self.guard.take_wakers();
        if self.guard.blocked > 0 {
            self.list.cond.notify_all();
        }
        wakers.wake();
    }

    /// As [`wake_all`](Self::wake_all), gathering the wakers in `spare`
    /// instead of a fresh list: a caller that keeps `spare` between calls
    /// (the change log's writer) allocates nothing once it has grown to the
    /// number of waiters. `spare` is empty again on return.
    pub(crate) fn wake_all_into(mut self, spare: &mut Vec<Waker>) {
        if !self.guard.anyone() {
            return;
        }
        self.guard.armed = 0;
        spare.extend(
            self.guard
                .slots
                .iter_mut()
                .filter_map(|slot| slot.as_mut().and_then(Option::take)),
        );
        let blocked = self.guard.blocked > 0;
        drop(self.guard);
        if blocked {
            self.list.cond.notify_all();
        }
        spare.drain(..).for_each(Waker::wake);
    }

    /// Wakes every waiter (after a change made through this guard), then
    /// releases the lock. Wakers run after the lock is released.
    ///
    /// The test for anyone to wake and the release are inlined into the
    /// caller; only a wake with someone to wake makes a call.
    #[inline]
    pub(crate) fn wake_all(self) {
        if self.guard.anyone() {
            self.wake_someone();
        }
    }

    /// [`wake_all`](Self::wake_all) with someone to wake.
    #[inline(never)]
    fn wake_someone(mut self) {
        let wakers = self.guard.take_wakers();
        let blocked = self.guard.blocked > 0;
        drop(self.guard);
        if blocked {
            self.list.cond.notify_all();
        }
        wakers.wake();
    }
}

impl<S: Default> Default for WaitList<S> {
    fn default() -> Self {
        WaitList::new(S::default())
    }
}

impl<S> WaitList<S> {
    pub(crate) fn new(state: S) -> Self {
        WaitList {
            inner: Mutex::new(Inner {
                state,
                slots: Vec::new(),
                free: Vec::new(),
                armed: 0,
                blocked: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// Takes the list's lock.
    pub(crate) fn lock(&self) -> WaitGuard<'_, S> {
        WaitGuard {
            guard: self.inner.lock(),
            list: self,
        }
    }

    /// Wakes every waiter. Call it after the change they wait for is
    /// visible (stored, or made under [`lock`](Self::lock)).
    pub(crate) fn wake_all(&self) {
        self.lock().wake_all();
    }

    /// Tests `ready` under the lock: `Ready` with its answer (freeing `key`'s
    /// slot), or `Pending` with `waker` stored in `key`'s slot.
    pub(crate) fn poll<R>(
        &self,
        key: &WaitKey,
        waker: &Waker,
        ready: impl FnOnce(&mut S) -> Option<R>,
    ) -> Poll<R> {
        let mut inner = self.inner.lock();
        match ready(&mut inner.state) {
            Some(r) => {
                inner.deregister(key);
                Poll::Ready(r)
            }
            None => {
                inner.register(key, waker);
                Poll::Pending
            }
        }
    }

    /// Frees `key`'s slot, if it holds one. Owners call this on drop.
    pub(crate) fn deregister(&self, key: &WaitKey) {
        // No slot was ever taken (the common case): no lock. `key` is only
        // set under the lock by its owner's polls, which happen before the
        // owner's drop.
        if key.get().is_some() {
            self.inner.lock().deregister(key);
        }
    }

    /// Blocks the calling thread until `ready` (tested under the lock)
    /// answers, or until `deadline`. `None` if the deadline passed first.
    pub(crate) fn wait<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut S) -> Option<R>,
    ) -> Option<R> {
        let mut inner = self.inner.lock();
        loop {
            if let Some(r) = ready(&mut inner.state) {
                return Some(r);
            }
            inner.blocked += 1;
            let timed_out = match deadline {
                Some(deadline) => {
                    let timed_out;
                    (inner, timed_out) = self.cond.wait_until(inner, deadline);
                    timed_out
                }
                None => {
                    inner = self.cond.wait(inner);
                    false
                }
            };
            inner.blocked -= 1;
            if timed_out {
                return ready(&mut inner.state);
            }
        }
    }

    /// How many waiters the list holds: allocated async slots plus blocked
    /// threads.
    pub(crate) fn len(&self) -> usize {
        let inner = self.inner.lock();
        inner.live() + inner.blocked
    }
}

impl<S> fmt::Debug for WaitList<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("waiters", &self.len())
            .finish_non_exhaustive()
    }
}

/// A doc-hidden probe for tests and loom models: a standalone list with
/// `u64` state, so the primitive's own races can be modelled without a
/// watch, token or queue around it.
#[doc(hidden)]
pub mod probe {
    use super::{WaitKey, WaitList};
    use std::fmt;
    use std::task::{Context, Poll};

    /// A wait list over a counter, with one waiter handle per [`Waiter`].
    #[derive(Debug, Default)]
    pub struct Counter {
        list: WaitList<u64>,
    }

    /// One async waiter on a [`Counter`]: deregisters on drop.
    pub struct Waiter<'a> {
        counter: &'a Counter,
        key: WaitKey,
    }

    impl Counter {
        /// A counter at zero with no waiter.
        pub fn new() -> Self {
            Counter::default()
        }

        /// Adds one, waking every waiter.
        pub fn bump(&self) {
            let mut guard = self.list.lock();
            *guard += 1;
            guard.wake_all();
        }

        /// The counter's value.
        pub fn get(&self) -> u64 {
            *self.list.lock()
        }

        /// Waiters registered now (async slots plus blocked threads).
        pub fn waiters(&self) -> usize {
            self.list.len()
        }

        /// A new waiter, holding no slot yet.
        pub fn waiter(&self) -> Waiter<'_> {
            Waiter {
                counter: self,
                key: WaitKey::new(),
            }
        }

        /// Blocks until the counter is at least `n`.
        pub fn wait_for(&self, n: u64) {
            self.list.wait(None, |v| (*v >= n).then_some(()));
        }
    }

    impl Waiter<'_> {
        /// Ready once the counter is at least `n`; else registers `cx`'s waker.
        pub fn poll_at_least(&self, n: u64, cx: &mut Context<'_>) -> Poll<u64> {
            self.counter
                .list
                .poll(&self.key, cx.waker(), |v| (*v >= n).then_some(*v))
        }
    }

    impl Drop for Waiter<'_> {
        fn drop(&mut self) {
            self.counter.list.deregister(&self.key);
        }
    }

    impl fmt::Debug for Waiter<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Waiter").field("key", &self.key).finish()
        }
    }
}

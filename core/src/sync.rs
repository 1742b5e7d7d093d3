//! The one place that names synchronization primitives.
//!
//! Every atomic, lock, condition variable, `Arc`, channel and the
//! snapshot cell the engine uses comes from here. Normal builds re-export
//! `std`, `parking_lot`, `arc-swap` and `crossbeam-channel`; under
//! `--cfg loom` the same names resolve to loom's checked equivalents, so no
//! other module of the crate may name those crates directly (`clippy.toml`'s
//! `disallowed-types` enforces this).
//!
//! # What loom does not prove
//!
//! * arc-swap's own lock-free internals: under loom the snapshot cell is a
//!   mutex around an `Arc`, or (second configuration, below) one atomic
//!   index over every published version. The models check the engine's
//!   protocol around it (build, publish, then notify; reclaim by strong
//!   count; the orderings of the publish path), and rely on arc-swap's
//!   documented contract for the rest.
//! * crossbeam-channel's internals: under loom the listener queue is a
//!   mutex'd `VecDeque` with the same capacity and disconnection rules.
//! * Timeouts: loom has no clock. `Condvar::wait_until` and `recv_timeout`
//!   time out at once under loom, so the timeout paths are explored but
//!   never the passage of time; blocking waits in models are untimed.
//! * `OnceLock` (the lazily allocated listener home): under loom a flag
//!   and a mutex stand in for it (the value itself in a `std` `OnceLock`), so
//!   the models check the engine's use of a once cell (two first users,
//!   a reader racing the first writer), not `std`'s implementation.
//! * A `SeqCst` load, store or read-modify-write is modelled as `AcqRel`
//!   by loom; the engine relies on no `SeqCst`-only property of one. The
//!   hazard slots (`store/hazard/`) rely on `fence(SeqCst)`, which loom
//!   does model; their own loom model checks them (the engine's reads
//!   under loom take `ArcSwap` guards instead).
//! * `StdArc` (host-facing handles) stays `std::sync::Arc` under loom, so
//!   loom's leak check covers the engine's own `Arc`s (graph versions,
//!   watch cells, tokens, reply slots), not those.
//!
//! What the types here promise and the engine relies on:
//!
//! * [`ArcSwap`]: `load()` never blocks and never writes shared memory
//!   beyond the loading thread's own debt slot; `swap()` publishes a value
//!   with release semantics and pays every outstanding debt of the old
//!   value, so after `swap` returns, `Arc::strong_count` of the old value counts
//!   every reader still holding it.
//! * [`Cached`]: a reader's own full reference to the cell's value,
//!   revalidated by one relaxed pointer compare per read. It is counted by
//!   `Arc::strong_count` like any reference, so the writer keeps the version
//!   (and its nodes) until the reader moves on. The replaced reference it
//!   drops is never the last one: the cell or the writer's retired list
//!   still holds that version, so readers never free a graph.
//! * [`Mutex`]: `lock()` returns the guard directly (parking_lot's shape).
//! * [`channel`]: an unbounded or bounded MPSC queue whose receiver sees
//!   `Disconnected` once every sender is gone and the queue is drained;
//!   `try_send` never blocks (a full bounded queue gives the value back).
//!
//! `StdArc` is a plain `std::sync::Arc` in every build: it is the handle
//! type of the public API (`Arc<ThreadEntry>`, listener owners), which hosts
//! build with `std`, not a synchronization point the models need to see.
//! Likewise `StdCounter`: the node pool's live-node count, written by
//! the writer alone and read by tests, never something a model checks.
//!
//! # Two loom configurations
//!
//! Under plain `--cfg loom` the snapshot cell is a mutex around an `Arc`.
//! A mutex synchronizes every load with every swap, so no ordering on the
//! publish path (the watch state's `Release` store, say) can be checked
//! through it. With `--cfg loom --cfg switchboard_loom_publish` it instead
//! publishes through a loom atomic with arc-swap's orderings (`Acquire`
//! load, `AcqRel` swap), over a list that keeps every published version
//! alive until the cell goes (loom runs are short). That keeps the old
//! versions' strong counts above one, so the writer never reclaims: the
//! reclamation models run only in the first configuration, the publish-path
//! models in both (CI runs both, see `.ci/run`).

#[cfg(not(loom))]
mod imp {
    #![allow(clippy::disallowed_types, clippy::disallowed_methods)]

    pub(crate) use arc_swap::Guard;
    pub(crate) use std::sync::atomic::Ordering;
    pub(crate) use std::sync::Arc;

    /// Handles given to the host (`Arc<ThreadEntry>`, listener owners): the
    /// host's own `std::sync::Arc` in every build.
    pub(crate) use std::sync::Arc as StdArc;

    /// The guard [`Mutex::lock`] returns.
    pub(crate) use parking_lot::MutexGuard;

    use std::time::Instant;

    /// A mutex whose `lock()` returns the guard (parking_lot's shape).
    #[derive(Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        /// The guard, if the mutex is free now.
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    /// A condition variable paired with [`Mutex`].
    #[derive(Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Waits until notified (spurious wake-ups possible).
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// Waits until notified or `deadline`; the flag says whether it timed out.
        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = self.0.wait_until(&mut guard, deadline).timed_out();
            (guard, timed_out)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// An atomic flag.
    pub(crate) struct AtomicBool(std::sync::atomic::AtomicBool);

    impl AtomicBool {
        pub(crate) fn new(v: bool) -> Self {
            AtomicBool(std::sync::atomic::AtomicBool::new(v))
        }

        #[inline]
        pub(crate) fn load(&self, order: Ordering) -> bool {
            self.0.load(order)
        }

        #[inline]
        pub(crate) fn swap(&self, v: bool, order: Ordering) -> bool {
            self.0.swap(v, order)
        }

        #[inline]
        pub(crate) fn store(&self, v: bool, order: Ordering) {
            self.0.store(v, order);
        }

        #[inline]
        pub(crate) fn compare_exchange(
            &self,
            current: bool,
            new: bool,
            success: Ordering,
            failure: Ordering,
        ) -> Result<bool, bool> {
            self.0.compare_exchange(current, new, success, failure)
        }
    }

    /// An atomic pointer (the hazard slots and the version cell's mirror,
    /// `store/hazard/`). `new` is `const`, for the process's slot
    /// registry.
    pub(crate) struct AtomicPtr<T>(std::sync::atomic::AtomicPtr<T>);

    impl<T> AtomicPtr<T> {
        pub(crate) const fn new(p: *mut T) -> Self {
            AtomicPtr(std::sync::atomic::AtomicPtr::new(p))
        }

        #[inline]
        pub(crate) fn load(&self, order: Ordering) -> *mut T {
            self.0.load(order)
        }

        #[inline]
        pub(crate) fn store(&self, p: *mut T, order: Ordering) {
            self.0.store(p, order);
        }

        #[inline]
        pub(crate) fn compare_exchange(
            &self,
            current: *mut T,
            new: *mut T,
            success: Ordering,
            failure: Ordering,
        ) -> Result<*mut T, *mut T> {
            self.0.compare_exchange(current, new, success, failure)
        }
    }

    pub(crate) use std::sync::atomic::fence;

    /// An atomic index.
    pub(crate) struct AtomicUsize(std::sync::atomic::AtomicUsize);

    impl AtomicUsize {
        pub(crate) fn new(v: usize) -> Self {
            AtomicUsize(std::sync::atomic::AtomicUsize::new(v))
        }

        #[inline]
        pub(crate) fn load(&self, order: Ordering) -> usize {
            self.0.load(order)
        }

        #[inline]
        pub(crate) fn store(&self, v: usize, order: Ordering) {
            self.0.store(v, order);
        }

        #[inline]
        pub(crate) fn fetch_add(&self, v: usize, order: Ordering) -> usize {
            self.0.fetch_add(v, order)
        }

        #[inline]
        pub(crate) fn fetch_sub(&self, v: usize, order: Ordering) -> usize {
            self.0.fetch_sub(v, order)
        }
    }

    /// An atomic word.
    pub(crate) struct AtomicU64(std::sync::atomic::AtomicU64);

    impl AtomicU64 {
        pub(crate) fn new(v: u64) -> Self {
            AtomicU64(std::sync::atomic::AtomicU64::new(v))
        }

        #[inline]
        pub(crate) fn load(&self, order: Ordering) -> u64 {
            self.0.load(order)
        }

        #[inline]
        pub(crate) fn store(&self, v: u64, order: Ordering) {
            self.0.store(v, order);
        }

        #[inline]
        pub(crate) fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
            self.0.fetch_add(v, order)
        }

        #[inline]
        pub(crate) fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
            self.0.fetch_sub(v, order)
        }
    }

    /// A cell written at most once, then read without a lock: `std`'s
    /// `OnceLock`. `get` is one `Acquire` load of the cell's state (plus the
    /// value's own read); `get_or_init` runs `init` at most once however
    /// many threads race it, the losers waiting for the winner's value.
    pub(crate) struct OnceCell<T>(std::sync::OnceLock<T>);

    impl<T> OnceCell<T> {
        pub(crate) fn new() -> Self {
            OnceCell(std::sync::OnceLock::new())
        }

        /// The value, if it was set. Never blocks, never writes.
        #[inline]
        pub(crate) fn get(&self) -> Option<&T> {
            self.0.get()
        }

        /// The value, set by `init` first if there is none yet.
        #[inline]
        pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
            self.0.get_or_init(init)
        }
    }

    /// The published-snapshot cell: lock-free `load`, `swap` by the writer.
    /// Aligned to its own cache line pair, so that nothing else written near
    /// it (an `Arc<Engine>`'s counters, a host's fields) bounces the line
    /// every reader loads.
    #[repr(align(128))]
    pub(crate) struct ArcSwap<T>(arc_swap::ArcSwap<T>);

    impl<T> ArcSwap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            ArcSwap(arc_swap::ArcSwap::new(value))
        }

        /// A guard on the current value: no lock, no shared write.
        #[inline]
        pub(crate) fn load(&self) -> Guard<Arc<T>> {
            self.0.load()
        }

        /// Publishes `value` and returns the value it replaced; reader debts
        /// on the old value are paid before this returns (see the module
        /// docs).
        pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
            self.0.swap(value)
        }
    }

    /// One reader's cached full reference to an [`ArcSwap`]'s value.
    pub(crate) struct Cached<'a, T>(arc_swap::Cache<&'a arc_swap::ArcSwap<T>, Arc<T>>);

    impl<'a, T> Cached<'a, T> {
        pub(crate) fn new(cell: &'a ArcSwap<T>) -> Self {
            Cached(arc_swap::Cache::new(&cell.0))
        }

        /// The current value: the cached one if the cell still holds it
        /// (one relaxed load of the cell, no write), else a fresh full
        /// reference that replaces it (the old one is released here; it is
        /// never the last, see the module docs).
        #[inline]
        pub(crate) fn load(&mut self) -> &Arc<T> {
            self.0.load()
        }

        /// A guard on the cell's current value, as [`ArcSwap::load`].
        #[inline]
        pub(crate) fn guard(&self) -> Guard<Arc<T>> {
            self.0.arc_swap().load()
        }
    }

    /// MPSC queues used for listener commands: unbounded or bounded.
    pub(crate) mod channel {
        pub(crate) use crossbeam_channel::{
            Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError,
        };

        pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
            crossbeam_channel::unbounded()
        }

        pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
            crossbeam_channel::bounded(cap)
        }
    }
}

#[cfg(loom)]
mod loom_cell;
#[cfg(loom)]
pub(crate) mod loom_channel;
#[cfg(loom)]
mod loom_lock;

#[cfg(loom)]
mod imp {
    //! loom's checked primitives behind the production API.
    /// Used by the hazard slots' loom model (the only hazard code built
    /// under loom, `store/hazard/`).
    #[cfg(test)]
    pub(crate) use loom::sync::atomic::fence;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use std::sync::Arc as StdArc;

    /// loom's mutex and condition variable (`sync/loom_lock.rs`), which the
    /// two stand-ins below are built from.
    pub(crate) use super::loom_lock::{Condvar, Mutex, MutexGuard};

    pub(crate) use super::loom_cell::{ArcSwap, Cached, Guard, OnceCell};

    /// The channel stand-in (`sync/loom_channel.rs`).
    pub(crate) use super::loom_channel as channel;
}

pub(crate) use imp::*;

/// A counter with one writer at a time (the engine's writer, under its
/// mutex, or the one dropping it), readable from anywhere: the node pool's
/// live-node count. A plain `std` atomic in every build (see the module
/// docs); a relaxed load and store, no read-modify-write.
#[allow(clippy::disallowed_types)]
#[derive(Debug, Default)]
pub(crate) struct StdCounter(std::sync::atomic::AtomicUsize);

impl StdCounter {
    /// Adds `delta`, wrapping (`usize::MAX` subtracts one). Callers never
    /// add concurrently, so the load and the store lose nothing.
    #[inline]
    pub(crate) fn add(&self, delta: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0
            .store(self.0.load(Relaxed).wrapping_add(delta), Relaxed);
    }

    /// The current count.
    pub(crate) fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The guard [`ThreadEntry::state`](crate::ThreadEntry::state) returns: the
/// thread's host state, locked until the guard is dropped. It derefs to the
/// state. This crate's own type, the same in every build (inside, it holds
/// parking_lot's guard, or loom's under `--cfg loom`).
pub struct StateGuard<'a, T>(imp::MutexGuard<'a, T>);

impl<'a, T> StateGuard<'a, T> {
    /// Locks `mutex`.
    #[inline]
    pub(crate) fn lock(mutex: &'a Mutex<T>) -> Self {
        StateGuard(mutex.lock())
    }
}

impl<T> std::ops::Deref for StateGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for StateGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> std::fmt::Debug for StateGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateGuard").finish_non_exhaustive()
    }
}

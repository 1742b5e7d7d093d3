//! The one place that names synchronization primitives.
//!
//! Every atomic, lock, condition variable, `Arc`, channel and the
//! snapshot cell the engine uses comes from here. Normal builds re-export
//! `std`, `parking_lot`, `arc-swap` and `crossbeam-channel`; under
//! `--cfg loom` the same names are meant to resolve to loom's checked
//! equivalents (the loom half is filled in by the model-checking work), so
//! no other module of the crate may name those crates directly
//! (`clippy.toml`'s `disallowed-types` enforces this).
//!
//! What the types here promise and the engine relies on:
//!
//! * [`ArcSwap`]: `load()` never blocks and never writes shared memory
//!   beyond the loading thread's own debt slot; `store()` publishes a value
//!   with release semantics and pays every outstanding debt of the old
//!   value, so after it returns `Arc::strong_count` of the old value counts
//!   every reader still holding it.
//! * [`Mutex`]: `lock()` returns the guard directly (parking_lot's shape).
//! * [`channel`]: an unbounded MPSC queue whose receiver sees `Disconnected`
//!   once every sender is gone and the queue is drained.
//!
//! `NodeArc` and `StdArc` are plain `std::sync::Arc` in every build:
//! `NodeArc` holds immutable trie nodes that are only ever reached through a
//! published snapshot, and `StdArc` is the handle type of the public API
//! (`Arc<ThreadEntry>`, listener owners), which hosts build with `std`.
//! Neither is a synchronization point the models need to see.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub(crate) use arc_swap::Guard;
pub(crate) use std::sync::atomic::Ordering;
pub(crate) use std::sync::Arc;

/// Immutable structure nodes (see the module docs).
pub(crate) use std::sync::Arc as NodeArc;
/// Handles given to the host (`Arc<ThreadEntry>`, listener owners): the
/// host's own `std::sync::Arc` in every build.
pub(crate) use std::sync::Arc as StdArc;

/// The guard returned by [`ThreadEntry::state`](crate::ThreadEntry::state).
pub use parking_lot::MutexGuard;

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
}

/// A condition variable paired with [`Mutex`].
#[derive(Default)]
pub(crate) struct Condvar(parking_lot::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar(parking_lot::Condvar::new())
    }

    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        self.0.wait(guard);
    }

    /// Waits until notified or `deadline`; returns `true` if it timed out.
    pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) -> bool {
        self.0.wait_until(guard, deadline).timed_out()
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
}

/// The published-snapshot cell: lock-free `load`, `store` by the writer.
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

    /// Publishes `value`; outstanding reader debts on the old value are
    /// paid before this returns (see the module docs).
    pub(crate) fn store(&self, value: Arc<T>) {
        self.0.store(value);
    }
}

/// Unbounded MPSC queue used for listener commands.
pub(crate) mod channel {
    pub(crate) use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        crossbeam_channel::unbounded()
    }
}

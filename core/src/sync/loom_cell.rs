//! The two loom stand-ins for `ArcSwap` and `arc_swap::Cache`, one per
//! loom configuration (see "Two loom configurations" in `sync.rs`). Compiled
//! only under `--cfg loom`; `sync.rs` re-exports the one the build selects.
//! Also the loom stand-in for `OnceLock` (the lazily allocated listener
//! home).

use super::loom_lock::Mutex;
use loom::sync::atomic::{AtomicBool, Ordering};

#[cfg(not(switchboard_loom_publish))]
pub(crate) use mutex_cell::{ArcSwap, Cached};
#[cfg(switchboard_loom_publish)]
pub(crate) use publish_cell::{ArcSwap, Cached};

/// What `ArcSwap::load` returns under loom: a full reference.
pub(crate) struct Guard<T>(T);

impl<T> std::ops::Deref for Guard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The first configuration's cell (`sync.rs`, "Two loom configurations").
#[cfg(not(switchboard_loom_publish))]
mod mutex_cell {
    use super::Guard;
    use crate::sync::loom_lock::Mutex;
    use loom::sync::Arc;

    /// Stands in for `ArcSwap`: a mutex around the current `Arc`. It
    /// checks the engine's protocol around the cell (publish, then notify;
    /// reclamation by strong count), not arc-swap's own lock-free internals.
    pub(crate) struct ArcSwap<T>(Mutex<Arc<T>>);

    impl<T> ArcSwap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            ArcSwap(Mutex::new(value))
        }

        pub(crate) fn load(&self) -> Guard<Arc<T>> {
            Guard(Arc::clone(&self.0.lock()))
        }

        pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
            std::mem::replace(&mut *self.0.lock(), value)
        }
    }

    /// Stands in for `arc_swap::Cache`: compares the cached `Arc` with the
    /// cell's and takes a fresh full reference if they differ, releasing
    /// the old one after the cell's lock (as the real cache does, outside
    /// any lock).
    pub(crate) struct Cached<'a, T> {
        cell: &'a ArcSwap<T>,
        cached: Arc<T>,
    }

    impl<'a, T> Cached<'a, T> {
        pub(crate) fn new(cell: &'a ArcSwap<T>) -> Self {
            let cached = Arc::clone(&cell.0.lock());
            Cached { cell, cached }
        }

        pub(crate) fn load(&mut self) -> &Arc<T> {
            let fresh = {
                let current = self.cell.0.lock();
                (!Arc::ptr_eq(&current, &self.cached)).then(|| Arc::clone(&current))
            };
            if let Some(fresh) = fresh {
                self.cached = fresh;
            }
            &self.cached
        }

        pub(crate) fn guard(&self) -> Guard<Arc<T>> {
            self.cell.load()
        }
    }
}

/// The second configuration's cell (`sync.rs`, "Two loom configurations").
#[cfg(switchboard_loom_publish)]
mod publish_cell {
    #![allow(clippy::disallowed_types)]
    use super::Guard;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;
    use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

    /// Stands in for `ArcSwap` with its orderings: the current value is
    /// the one at index `current` of `versions`, published with an
    /// `AcqRel` swap and loaded with `Acquire`.
    ///
    /// Invariants: `versions` only grows, and `current` always indexes
    /// it; entries are never replaced, so a loaded index stays valid.
    /// `versions` is a plain `std` mutex, invisible to loom and never
    /// held across a loom operation (its entries are `std` `Arc`s, cloned
    /// under it without touching a loom object), so the only
    /// synchronization between writer and readers is the atomic.
    pub(crate) struct ArcSwap<T> {
        current: AtomicUsize,
        versions: std::sync::Mutex<Vec<std::sync::Arc<Arc<T>>>>,
    }

    impl<T> ArcSwap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            ArcSwap {
                current: AtomicUsize::new(0),
                versions: std::sync::Mutex::new(vec![std::sync::Arc::new(value)]),
            }
        }

        /// The version at `index`, as a full loom reference.
        fn version(&self, index: usize) -> Arc<T> {
            let held = std::sync::Arc::clone(&self.versions.lock().expect("never poisoned")[index]);
            Arc::clone(&held)
        }

        pub(crate) fn load(&self) -> Guard<Arc<T>> {
            Guard(self.version(self.current.load(Acquire)))
        }

        pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
            let index = {
                let mut versions = self.versions.lock().expect("never poisoned");
                versions.push(std::sync::Arc::new(value));
                versions.len() - 1
            };
            self.version(self.current.swap(index, AcqRel))
        }
    }

    /// Stands in for `arc_swap::Cache` as the real one works: a relaxed
    /// compare with the cell's current value, a full `Acquire` load
    /// when it moved.
    pub(crate) struct Cached<'a, T> {
        cell: &'a ArcSwap<T>,
        index: usize,
        cached: Arc<T>,
    }

    impl<'a, T> Cached<'a, T> {
        pub(crate) fn new(cell: &'a ArcSwap<T>) -> Self {
            let index = cell.current.load(Acquire);
            Cached {
                cell,
                index,
                cached: cell.version(index),
            }
        }

        pub(crate) fn load(&mut self) -> &Arc<T> {
            if self.cell.current.load(Relaxed) != self.index {
                self.index = self.cell.current.load(Acquire);
                self.cached = self.cell.version(self.index);
            }
            &self.cached
        }

        pub(crate) fn guard(&self) -> Guard<Arc<T>> {
            self.cell.load()
        }
    }
}

/// Stands in for `OnceLock`: a loom flag published with `Release`
/// after the value is stored, read with `Acquire`; initializers are
/// serialized by a loom mutex, so a model explores every order of two
/// first users. The value itself sits in a `std` `OnceLock`, invisible
/// to loom, written only under the mutex and read only after the flag:
/// the only synchronization a model sees is the flag and the mutex.
pub(crate) struct OnceCell<T> {
    ready: AtomicBool,
    init: Mutex<()>,
    value: std::sync::OnceLock<T>,
}

impl<T> OnceCell<T> {
    pub(crate) fn new() -> Self {
        OnceCell {
            ready: AtomicBool::new(false),
            init: Mutex::new(()),
            value: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire: pairs with the Release store in `get_or_init`.
        if self.ready.load(Ordering::Acquire) {
            Some(self.value.get().expect("set before the flag"))
        } else {
            None
        }
    }

    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        let _serial = self.init.lock();
        if let Some(v) = self.get() {
            return v;
        }
        let set = self.value.set(init());
        debug_assert!(set.is_ok(), "only set under the init lock, once");
        // Release: the value is stored before any reader sees the flag.
        self.ready.store(true, Ordering::Release);
        self.value.get().expect("just set")
    }
}

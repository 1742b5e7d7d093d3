//! [`Deferred`]: the host values a write or a reclamation gave up, dropped
//! by the writing thread once the writer lock is released.
//!
//! A node's entries hold host values (a thread entry with its state `S`
//! and listener queue, a connection's data `D`), and dropping one may run
//! host code: a destructor that panics, or that calls the engine. Freeing
//! a node therefore never drops them: `Node::free` hands each value to a
//! `Deferred` ([`DropLater`], which every [`Share`](super::share::Share)
//! value implements through its `drop_later`), and
//! `Versions::write` drops the `Deferred` after the lock (the Rust drop
//! order of its locals says so). So no host destructor runs while the
//! store's state is half-changed, a destructor may call any engine method,
//! and one that panics unwinds to the writing caller after the write is
//! published.
//!
//! The buffer is reused: an empty one with its capacity goes back to a
//! slot of the writing thread, so a write that frees values allocates only
//! when it frees more than any write on that thread did before.

use crate::sync::StdArc;
use std::any::Any;

/// A host value whose last reference the store may hold.
pub(crate) type HostValue = StdArc<dyn Any + Send + Sync>;

/// Host values to drop once the writer lock is released (see the module
/// docs). Dropping it drops them, in the order they were given.
pub(crate) struct Deferred {
    values: Vec<HostValue>,
}

/// The largest buffer kept for the next write (a write that freed more
/// allocates again next time rather than keep the memory).
#[cfg(not(loom))]
const KEEP_AT_MOST: usize = 1024;

#[cfg(not(loom))]
thread_local! {
    /// The writing thread's empty buffer, kept for its next write.
    static SPARE: std::cell::Cell<Vec<HostValue>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Deferred {
    /// An empty one. Allocates nothing and touches no thread-local until
    /// the first value comes.
    #[inline]
    pub(crate) fn new() -> Self {
        Deferred { values: Vec::new() }
    }

    /// Keeps `value` until this is dropped.
    #[inline]
    pub(crate) fn push(&mut self, value: HostValue) {
        #[cfg(not(loom))]
        if self.values.capacity() == 0 {
            // The thread's spare buffer, if it has one.
            self.values = SPARE.try_with(|s| s.take()).unwrap_or_default();
        }
        self.values.push(value);
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if self.values.capacity() == 0 {
            return;
        }
        // Host destructors run here. If one panics, `clear` still drops the
        // rest (a slice's drop goes on past a panicking element) and the
        // buffer is simply not kept.
        self.values.clear();
        #[cfg(not(loom))]
        if self.values.capacity() <= KEEP_AT_MOST {
            let values = std::mem::take(&mut self.values);
            let _ = SPARE.try_with(|s| s.set(values));
        }
    }
}

/// How a value leaves a node that is freed: what `Node::free` calls on
/// each entry's value. Implemented once, for every
/// [`Share`](super::share::Share) value, by its
/// [`drop_later`](super::share::Share::drop_later) (`share.rs`); a trait of
/// its own so that the node layer (`node/`) needs nothing else of
/// `Share`.
///
/// # Safety
///
/// `drop_later` runs no host code: it only moves the value's host values
/// into `later` (or drops values whose drop runs no host code).
pub(crate) unsafe trait DropLater: Sized {
    /// Drops this value, moving whatever of it may run host code when
    /// dropped into `later`.
    fn drop_later(self, later: &mut Deferred);
}

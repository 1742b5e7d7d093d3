//! What the store needs of the engine's version type and writer state
//! ([`Publish`], [`Roots`], [`Extra`]), and the [`Keep`] every published
//! version holds. [`Versions`](super::Versions) builds and publishes the
//! versions (`versions/`).

use super::node::Version;
use super::share::Share;
use crate::sync::Arc;
use std::ptr::NonNull;

/// The roots of a version (the engine's tries): shared into each new
/// version, released into a teardown when the last version goes.
pub(crate) trait Roots: Share + Send + Sync + 'static {}

/// A published version as readers see it (the engine's `Graph`): the store
/// builds one with [`wrap`](Publish::wrap) for every version it publishes.
pub(crate) trait Publish: Send + Sync + Sized + 'static {
    /// What it is built from.
    type Roots: Roots;
    /// Writer state kept under the writer mutex with the roots (the
    /// engine's change buffer): what a group of writes records for its
    /// publish.
    type Extra: Extra;

    /// Version `version` of the graph, made of `roots`. It must keep `keep`
    /// for as long as it exists: `keep` keeps the nodes `roots` points to
    /// alive (the store checks that it was not dropped).
    fn wrap(roots: Self::Roots, version: Version, keep: Keep) -> Self;
}

/// What the writes of a group record for their publish (the engine's
/// changes and watch flips): each write appends to it, an abandoned write's
/// part is cut off again, and the publish's `after` empties it.
pub(crate) trait Extra: Send + 'static {
    /// Where a write's part begins.
    type Mark: Copy;
    /// The current end: where the next write's part begins.
    fn mark(&self) -> Self::Mark;
    /// Cuts off everything recorded after `mark` (an abandoned write's part).
    fn undo(&mut self, mark: Self::Mark);
    /// Empties it once its version is published and `after` has run (on an
    /// unwind out of `after` too, so that nothing of it reaches the next
    /// version's publish).
    fn clear(&mut self);
}

impl Extra for () {
    type Mark = ();
    fn mark(&self) {}
    fn undo(&mut self, (): ()) {}
    fn clear(&mut self) {}
}

/// Keeps every node of a [`Versions`](super::Versions) alive: each published version holds
/// one, so the nodes outlive every version (and every reader). A reference
/// to the versions' owner with its type erased (two words, no allocation),
/// so that the version type can hold it without naming itself.
///
/// Invariant: `owner` came from `Arc::into_raw` on an `Arc<O>`, for the
/// `O` that `release` was instantiated with (a `Send + Sync` owner), and
/// this value owns that reference.
pub(crate) struct Keep {
    owner: NonNull<()>,
    release: unsafe fn(NonNull<()>),
}

// SAFETY: `Keep` is an owned `Arc<O>` with `O: Send + Sync` (checked in
// `new`; the versions' owner is a mutex around `Send` state); dropping it
// from any thread is what dropping the `Arc` would be.
unsafe impl Send for Keep {}
// SAFETY: `&Keep` gives access to nothing.
unsafe impl Sync for Keep {}

impl Keep {
    /// A reference to `owner` (the versions' owner).
    pub(super) fn new<O: Send + Sync>(owner: &Arc<O>) -> Self {
        /// # Safety
        ///
        /// `p` came from `Arc::into_raw` on an `Arc<O>`, and the reference
        /// it stands for is not used again.
        unsafe fn release<O>(p: NonNull<()>) {
            // SAFETY: the caller's contract.
            drop(unsafe { Arc::from_raw(p.as_ptr().cast_const().cast::<O>()) });
        }
        let raw = Arc::into_raw(Arc::clone(owner)).cast_mut().cast::<()>();
        Keep {
            owner: NonNull::new(raw).expect("an `Arc` is never null"),
            release: release::<O>,
        }
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        // SAFETY: the invariant; the reference is given up once, here.
        unsafe { (self.release)(self.owner) }
    }
}

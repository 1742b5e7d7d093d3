//! [`PinnedSet`]: a subscriber set read out of a graph version, with what
//! keeps that version's nodes alive, and [`VersionPin`], which keeps one
//! graph version alive without naming its type and without allocating.
//!
//! A [`Subscribers`](crate::Subscribers) view of a large set reads tree
//! nodes in place, so it must keep the graph version those nodes belong to
//! (the reclamation rule frees a node once no held version can see it). It
//! is generic over the connection type only, so the version's type is
//! erased here. Two things can hold a version: an `Arc` to it (a reference
//! count every holder of that version shares) or an `ArcSwap` load guard
//! (a slot of the loading thread's own, which is what lets two readers of
//! one big thread build views without writing to a shared line). Both are
//! two words, so the pin stores them inline with their drop and clone
//! functions instead of boxing them.

use super::set::{Iter, SortedSet, SUBSCRIBERS_INLINE};
use super::share::{Share, ShareToken};
use crate::sync::{Arc, Guard};
use std::mem::{self, MaybeUninit};
use std::ptr;

/// A thread's subscribers read out of a version (what `Subscribers` holds).
pub(crate) type PinnedSubscribers<C> = PinnedSet<C, SUBSCRIBERS_INLINE>;

/// A set read out of one graph version: a copy of an inline set, or a
/// tree's root read in place with a pin on the version it belongs to.
///
/// Invariant: if `set` is a tree, `pin` keeps alive a version in which that
/// tree is reachable, so that none of its nodes is freed (store docs,
/// "Reclamation", step 1) while this value exists. Only the constructors
/// below make one, and each takes the set from the very version it pins.
pub(crate) struct PinnedSet<K: Copy + Ord, const INLINE: usize> {
    set: SortedSet<K, INLINE>,
    pin: Option<VersionPin>,
}

impl<K: Copy + Ord + Send + Sync, const INLINE: usize> Clone for PinnedSet<K, INLINE> {
    fn clone(&self) -> Self {
        PinnedSet {
            set: self.set.share(&ShareToken(())),
            pin: self.pin.clone(),
        }
    }
}

impl<K: Copy + Ord + Send + Sync + 'static, const INLINE: usize> PinnedSet<K, INLINE> {
    /// `set` copied, if it needs no pin (it is not a tree: up to `INLINE`
    /// members, copied by value).
    #[inline]
    pub(crate) fn unpinned(set: Option<&SortedSet<K, INLINE>>) -> Option<Self> {
        let set = match set {
            None | Some(SortedSet::Empty) => SortedSet::Empty,
            Some(SortedSet::Tree(_)) => return None,
            Some(&SortedSet::Inline { len, items }) => SortedSet::Inline { len, items },
        };
        Some(PinnedSet { set, pin: None })
    }

    /// The set `find` picks out of the version `guard` holds, kept alive by
    /// `guard` if it is a tree (else the guard is released here).
    #[inline]
    pub(crate) fn from_guard<G: Send + Sync + 'static>(
        guard: Guard<Arc<G>>,
        find: impl for<'g> FnOnce(&'g G) -> Option<&'g SortedSet<K, INLINE>>,
    ) -> Self {
        let set = find(&guard);
        if let Some(copy) = Self::unpinned(set) {
            return copy;
        }
        let set = set.map_or(SortedSet::Empty, |s| s.share(&ShareToken(())));
        PinnedSet {
            set,
            pin: Some(VersionPin::new(guard)),
        }
    }

    /// The set `find` picks out of `version`, kept alive by a new
    /// reference to `version` if it is a tree.
    #[inline]
    pub(crate) fn from_arc<G: Send + Sync + 'static>(
        version: &Arc<G>,
        find: impl for<'g> FnOnce(&'g G) -> Option<&'g SortedSet<K, INLINE>>,
    ) -> Self {
        let set = find(version);
        Self::unpinned(set).unwrap_or_else(|| PinnedSet {
            set: set.map_or(SortedSet::Empty, |s| s.share(&ShareToken(()))),
            pin: Some(VersionPin::new(Arc::clone(version))),
        })
    }
}

impl<K: Copy + Ord, const INLINE: usize> PinnedSet<K, INLINE> {
    /// The members, ascending.
    #[inline]
    pub(crate) fn iter(&self) -> Iter<'_, K> {
        self.set.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.set.contains(k)
    }
}

/// Room for the erased value: every [`HoldsVersion`] type is at most this big.
type Words = [MaybeUninit<usize>; 3];

/// Something that keeps one graph version alive while it exists.
///
/// # Safety
///
/// Implemented only by the types below, whose values are owned references
/// to one `Arc`'d version (dropping them releases it).
pub(crate) unsafe trait HoldsVersion: Send + Sync + 'static + Sized {
    /// A new pin of the same version.
    fn duplicate(&self) -> VersionPin;
}

// SAFETY: an `Arc` keeps its value alive.
unsafe impl<G: Send + Sync + 'static> HoldsVersion for Arc<G> {
    fn duplicate(&self) -> VersionPin {
        VersionPin::new(Arc::clone(self))
    }
}

// SAFETY: a load guard keeps the loaded value alive: its debt is paid (a
// reference count taken for it) before the writer could observe the count
// without it (`sync.rs`, `ArcSwap::swap`).
unsafe impl<G: Send + Sync + 'static> HoldsVersion for Guard<Arc<G>> {
    fn duplicate(&self) -> VersionPin {
        // A guard cannot be copied: a copy holds a full reference instead.
        VersionPin::new(Arc::clone(self))
    }
}

/// A type-erased [`HoldsVersion`] value, stored inline.
///
/// Invariant: `words` holds a valid value of the type `drop` and `clone`
/// were instantiated for, owned by this pin.
pub(crate) struct VersionPin {
    words: Words,
    drop: unsafe fn(&mut Words),
    clone: unsafe fn(&Words) -> VersionPin,
}

// SAFETY: the erased value is `Send + Sync` (`HoldsVersion`'s bounds).
unsafe impl Send for VersionPin {}
// SAFETY: as above; `&VersionPin` only allows `clone`, which reads the
// value through a shared reference, sound because it is `Sync`.
unsafe impl Sync for VersionPin {}

impl VersionPin {
    /// Erases `value` (a move of two or three words, no allocation).
    #[inline]
    pub(crate) fn new<P: HoldsVersion>(value: P) -> Self {
        const {
            assert!(mem::size_of::<P>() <= mem::size_of::<Words>());
            assert!(mem::align_of::<P>() <= mem::align_of::<Words>());
        }
        let mut words: Words = [MaybeUninit::uninit(); 3];
        // SAFETY: `words` is large and aligned enough for `P` (asserted at
        // compile time just above); the value moves in and is owned by the
        // pin from now on.
        unsafe { ptr::write(words.as_mut_ptr().cast::<P>(), value) };
        VersionPin {
            words,
            drop: drop_erased::<P>,
            clone: clone_erased::<P>,
        }
    }
}

/// # Safety
///
/// `words` holds a valid `P`, not used again after this.
unsafe fn drop_erased<P>(words: &mut Words) {
    // SAFETY: the caller's contract.
    unsafe { ptr::drop_in_place(words.as_mut_ptr().cast::<P>()) }
}

/// # Safety
///
/// `words` holds a valid `P`.
unsafe fn clone_erased<P: HoldsVersion>(words: &Words) -> VersionPin {
    // SAFETY: the caller's contract.
    unsafe { &*words.as_ptr().cast::<P>() }.duplicate()
}

impl Drop for VersionPin {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the invariant; the value is dropped once, here.
        unsafe { (self.drop)(&mut self.words) }
    }
}

impl Clone for VersionPin {
    fn clone(&self) -> Self {
        // SAFETY: the invariant.
        unsafe { (self.clone)(&self.words) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::ArcSwap;

    #[test]
    fn pins_hold_and_release_their_version() {
        let cell = ArcSwap::new(Arc::new(7u64));
        let version = Arc::clone(&cell.load());
        let by_arc = VersionPin::new(Arc::clone(&version));
        assert_eq!(Arc::strong_count(&version), 3);
        let copy = by_arc.clone();
        assert_eq!(Arc::strong_count(&version), 4);
        drop((by_arc, copy));
        assert_eq!(Arc::strong_count(&version), 2);
        let by_guard = VersionPin::new(cell.load());
        let old = cell.swap(Arc::new(8));
        // The swap paid the guard's debt: the count shows it.
        assert_eq!(Arc::strong_count(&old), 3);
        drop(by_guard);
        assert_eq!(Arc::strong_count(&old), 2);
    }
}

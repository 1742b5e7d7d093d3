//! The loom model of H1-H3: a reader pins, reads and unpins (twice, so
//! that the writer may read a later pin's store instead of the unpin)
//! while the writer replaces the version and frees the old one if no slot
//! holds it. Freeing is a write to the version's cell, which loom reports
//! if it is not ordered after every read the reader made through a pin;
//! the new version's contents are written after the reader started, so a
//! pin that reaches it unordered after that write is reported too.

use super::*;
use loom::cell::UnsafeCell;
use loom::sync::Arc;

struct Version {
    value: UnsafeCell<u64>,
}

fn version(value: u64) -> *mut () {
    Box::into_raw(Box::new(Version {
        value: UnsafeCell::new(value),
    }))
    .cast()
}

/// Frees `p` as far as a reader can tell: a write that conflicts with
/// every read not ordered before it (the memory itself goes in
/// [`dealloc`], after the model's threads).
fn retire(p: *mut ()) {
    // SAFETY: `p` came from `version` and is deallocated only later.
    let v = unsafe { &*p.cast::<Version>() };
    v.value.with_mut(|x| unsafe { *x = 0 });
}

/// # Safety
///
/// `p` came from [`version`], no thread reaches it any more, and it is
/// not used again.
unsafe fn dealloc(p: *mut ()) {
    // SAFETY: the caller's contract.
    drop(unsafe { Box::from_raw(p.cast::<Version>()) });
}

/// The writer (H2): publishes a second version in `cell`, then frees
/// `first` if no slot holds it. Returns the second version.
fn replace(registry: &SlotRegistry, cell: &AtomicPtr<()>, first: *mut ()) -> *mut () {
    let second = version(0);
    // SAFETY: not published yet: this thread alone reaches it.
    let v = unsafe { &*second.cast::<Version>() };
    v.value.with_mut(|x| unsafe { *x = 2 });
    cell.store(second, Ordering::Release);
    if !registry.holds(first) {
        retire(first);
    }
    second
}

/// Two threads claiming at once, one given-back block between them:
/// never the same block (the registry's push and reuse).
#[test]
fn two_claims_never_share_a_block() {
    loom::model(|| {
        let registry = Arc::new(SlotRegistry::new());
        registry.claim().give_back();
        let claim = || {
            let registry = Arc::clone(&registry);
            loom::thread::spawn(move || ptr::from_ref(registry.claim()) as usize)
        };
        let (a, b) = (claim(), claim());
        assert_ne!(a.join().unwrap(), b.join().unwrap());
    });
}

/// The reader's pin sits in the last slot of its block (the others hold
/// pins of another version), and its read panics: the writer still
/// sees the pin while it lasts, and the unwind clears it.
#[test]
fn a_pin_in_the_last_slot_of_a_panicking_read_is_seen_then_cleared() {
    loom::model(|| {
        let registry = Arc::new(SlotRegistry::new());
        let other = Arc::new(AtomicPtr::new(version(9)));
        let first = version(1);
        let cell = Arc::new(AtomicPtr::new(first));
        let reader = {
            let (registry, cell, other) =
                (Arc::clone(&registry), Arc::clone(&cell), Arc::clone(&other));
            loom::thread::spawn(move || {
                let block = registry.claim();
                let outer: Vec<_> = (1..SLOTS)
                    .map(|_| block.pin(&other).expect("a free slot"))
                    .collect();
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let pin = block.pin(&cell).expect("the last slot");
                    // SAFETY: pinned (H1): alive until `pin` drops.
                    let v = unsafe { &*pin.ptr().cast::<Version>() };
                    let x = v.value.with(|x| unsafe { *x });
                    assert!(x == 1 || x == 2, "read a freed or unwritten version: {x}");
                    // `resume_unwind`: no panic hook, no report per run.
                    std::panic::resume_unwind(Box::new("the visitor panicked"));
                }));
                assert!(read.is_err());
                drop(outer);
                block.give_back();
            })
        };
        let second = replace(&registry, &cell, first);
        reader.join().unwrap();
        assert!(!registry.holds(first), "the panicking read left its pin");
        // SAFETY: the reader is gone.
        unsafe {
            (
                dealloc(first),
                dealloc(second),
                dealloc(other.load(Ordering::Relaxed)),
            )
        };
    });
}

#[test]
fn a_version_a_slot_holds_is_never_freed() {
    loom::model(|| {
        let registry = Arc::new(SlotRegistry::new());
        let first = version(1);
        let cell = Arc::new(AtomicPtr::new(first));
        let reader = {
            let (registry, cell) = (Arc::clone(&registry), Arc::clone(&cell));
            loom::thread::spawn(move || {
                let block = registry.claim();
                for _ in 0..2 {
                    let pin = block.pin(&cell).expect("a free slot");
                    // SAFETY: pinned (H1): alive until `pin` drops.
                    let v = unsafe { &*pin.ptr().cast::<Version>() };
                    let x = v.value.with(|x| unsafe { *x });
                    assert!(x == 1 || x == 2, "read a freed or unwritten version: {x}");
                }
                block.give_back();
            })
        };
        let second = replace(&registry, &cell, first);
        reader.join().unwrap();
        // SAFETY: the reader is gone.
        unsafe { (dealloc(first), dealloc(second)) };
    });
}

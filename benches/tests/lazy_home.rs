//! A thread entry allocates its listener home on first use, and never for
//! a query: measured with the crate's counting allocator. One test in this
//! binary, so that no other test's allocations are counted.
//!
//! Known to catch: a home allocated for every entry (the first
//! `set_listener` then allocates no more than the second: the memory per
//! subscription of `--bin memory` went from 85.9 to 126.5 B that way); a
//! query or a failed send on a listener-free entry that allocates the home.

use std::sync::Arc;
use std::time::Duration;
use switchboard_benches::alloc::{self, CountingAlloc};
use switchboard_core::{Engine, NoListener, SendError};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Bytes allocated while `f` runs (freed ones are not subtracted: `f`
/// keeps what it builds alive until after the count).
fn allocated<R>(f: impl FnOnce() -> R) -> (isize, R) {
    alloc::set_counting(true);
    alloc::reset_peak();
    let before = alloc::current();
    let r = f();
    let bytes = alloc::peak() - before;
    alloc::set_counting(false);
    (bytes, r)
}

#[test]
fn the_listener_home_is_allocated_on_first_use_only() {
    let e: Engine<u64, u64, (), u32> = Engine::new();
    let room = e.thread(1);
    let owner = Arc::new(());

    let (bytes, ()) = allocated(|| {
        assert!(!room.has_listener());
        assert_eq!(room.generation(), 0);
        assert_eq!(room.queue_len(), 0);
        assert!(!room.listener_matches(&owner));
        assert_eq!(room.send(1), Err(NoListener(1)));
        assert_eq!(room.try_send(2), Err(SendError::NoListener(2)));
        assert_eq!(
            room.send_timeout(3, Duration::ZERO),
            Err(SendError::NoListener(3))
        );
        room.clear_listener();
        assert!(!room.clear_listener_if(0));
        e.clear_all_listeners();
    });
    assert_eq!(bytes, 0, "a listener-free entry allocated on a query");

    // Warm the engine's listener registry up with another thread's live
    // listener, so that its maps' first allocations are not counted below.
    let _warm = e.thread(0).set_listener(&owner);
    let (first, l1) = allocated(|| room.set_listener(&owner));
    let (second, l2) = allocated(|| room.set_listener(&owner));
    assert!(l1.is_cancelled() && !l2.is_cancelled());
    // The first also builds the home (its slot, lock, waiter list and
    // registry tracker): well over 64 bytes. An eagerly built home makes
    // the two equal.
    assert!(
        first >= second + 64,
        "first listener {first} B, second {second} B: the home was not lazy"
    );
}

//! Unit tests of the hazard slots.

use super::*;
use std::thread;

fn cell_of(p: &mut u64) -> AtomicPtr<()> {
    AtomicPtr::new((p as *mut u64).cast())
}

#[test]
fn pins_nest_up_to_the_slots_then_decline() {
    let mut v = 1u64;
    let cell = cell_of(&mut v);
    let p = cell.load(Ordering::Relaxed);
    let pins: Vec<_> = (0..SLOTS)
        .map(|_| pin(&cell).expect("a free slot"))
        .collect();
    assert!(pins.iter().all(|pin| pin.ptr() == p));
    assert!(holds(p));
    assert!(pin(&cell).is_none(), "every slot is taken");
    drop(pins);
    assert!(!holds(p), "unpinning clears the slots");
    assert!(pin(&cell).is_some());
}

#[test]
fn a_pin_is_seen_from_other_threads_until_dropped() {
    let mut v = 2u64;
    let cell = cell_of(&mut v);
    let p = cell.load(Ordering::Relaxed);
    let held = pin(&cell).expect("a free slot");
    let elsewhere = |p: usize| thread::spawn(move || holds(p as *mut ())).join().unwrap();
    assert!(elsewhere(p as usize));
    drop(held);
    assert!(!elsewhere(p as usize));
}

#[test]
fn given_back_blocks_are_claimed_again() {
    let registry = SlotRegistry::new();
    let a = registry.claim();
    let b = registry.claim();
    assert!(!ptr::eq(a, b), "a claimed block is not handed out twice");
    a.give_back();
    assert!(ptr::eq(registry.claim(), a), "a given-back block is reused");
    let c = registry.claim();
    assert_eq!(registry.blocks().count(), 3);
    assert!(!ptr::eq(c, a) && !ptr::eq(c, b));
}

/// The writer's scan covers every slot of a block: a version pinned
/// only by the deepest of nested pins is seen (the other tests pin one
/// address in every slot, where a scan missing a slot still finds it).
#[test]
fn the_scan_sees_a_pin_at_every_depth() {
    let registry = SlotRegistry::new();
    let block = registry.claim();
    let mut values = [0u64; SLOTS];
    let cells: Vec<AtomicPtr<()>> = values.iter_mut().map(cell_of).collect();
    let addresses: Vec<*mut ()> = cells.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    for depth in 0..SLOTS {
        // Pins nested `depth` deep on other addresses, then the one
        // under test in slot `depth`.
        let outer: Vec<_> = (0..depth)
            .map(|i| block.pin(&cells[(depth + 1 + i) % SLOTS]).expect("free"))
            .collect();
        let pin = block.pin(&cells[depth]).expect("free");
        assert!(
            registry.holds(addresses[depth]),
            "a pin in slot {depth} is missed"
        );
        for i in 0..depth {
            assert!(registry.holds(addresses[(depth + 1 + i) % SLOTS]));
        }
        drop(pin);
        assert!(!registry.holds(addresses[depth]));
        drop(outer);
    }
    block.give_back();
}

/// A read that panics under a pin unpins on the way out.
#[test]
fn a_panicking_read_unpins() {
    let registry = SlotRegistry::new();
    let block = registry.claim();
    let mut v = 5u64;
    let cell = cell_of(&mut v);
    let p = cell.load(Ordering::Relaxed);
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _pin = block.pin(&cell).expect("free");
        assert!(registry.holds(p));
        std::panic::resume_unwind(Box::new("the host's visitor panicked"));
    }));
    assert!(read.is_err());
    assert!(!registry.holds(p), "the unwind left the version pinned");
    block.give_back();
}

#[test]
fn a_block_declines_only_when_full_and_frees_its_slots() {
    let registry = SlotRegistry::new();
    let block = registry.claim();
    let mut v = 4u64;
    let cell = cell_of(&mut v);
    let p = cell.load(Ordering::Relaxed);
    let first = block.pin(&cell).expect("free");
    let rest: Vec<_> = (1..SLOTS)
        .map(|_| block.pin(&cell).expect("free"))
        .collect();
    assert!(block.pin(&cell).is_none());
    assert!(registry.holds(p));
    drop(first);
    let again = block.pin(&cell).expect("the dropped pin's slot is free");
    drop((again, rest));
    assert!(!registry.holds(p));
    block.give_back();
}

//! Guarantee 7: nothing leaks. Host state, entries and replaced graph
//! versions are all freed: by the writer once no reader holds them, and by
//! the engine's drop.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use switchboard_core::{Caps, Engine};

/// Host state that counts its live instances (per test, by key).
struct Counted(&'static AtomicUsize);

static SMOKE: AtomicUsize = AtomicUsize::new(0);
static DROP_ALL: AtomicUsize = AtomicUsize::new(0);
static REMOVED: AtomicUsize = AtomicUsize::new(0);

// `S: Default` has no way to pick a counter, so each test gets its own
// state type.
macro_rules! counted {
    ($name:ident, $counter:ident) => {
        struct $name(#[allow(dead_code)] Counted);
        impl Default for $name {
            fn default() -> Self {
                $counter.fetch_add(1, Ordering::SeqCst);
                $name(Counted(&$counter))
            }
        }
    };
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

counted!(SmokeState, SMOKE);
counted!(DropAllState, DROP_ALL);
counted!(RemovedState, REMOVED);

#[test]
fn smoke() {
    let engine: Engine<u64, u64, SmokeState> = Engine::new();
    engine.connect(1, Caps::NONE);
    engine.subscribe(1, 1).unwrap();
    assert_eq!(SMOKE.load(Ordering::SeqCst), 1);
    drop(engine);
    assert_eq!(SMOKE.load(Ordering::SeqCst), 0);
}

#[test]
fn removing_everything_leaves_nothing() {
    let engine: Engine<u64, u64, DropAllState> = Engine::new();
    for c in 0..50 {
        engine.connect(c, Caps::NONE);
        for t in 0..40 {
            if (c + t) % 3 == 0 {
                engine.subscribe(t, c).unwrap();
            }
        }
    }
    let held = engine.snapshot();
    assert_eq!(DROP_ALL.load(Ordering::SeqCst), 40);
    for c in 0..50 {
        engine.disconnect(c);
    }
    for t in 0..40 {
        assert!(engine.remove_thread(t));
    }
    let empty = engine.snapshot();
    assert_eq!(empty.connection_count(), 0);
    assert_eq!(empty.thread_count(), 0);
    assert_eq!(empty.subscription_count(), 0);
    // The held snapshot still pins the old entries...
    assert_eq!(held.thread_count(), 40);
    assert_eq!(DROP_ALL.load(Ordering::SeqCst), 40);
    // ...until it is dropped and the writer runs once more.
    drop(held);
    engine.connect(999, Caps::NONE);
    assert_eq!(
        DROP_ALL.load(Ordering::SeqCst),
        0,
        "entries outlived every snapshot"
    );
    drop(empty);
    drop(engine);
    assert_eq!(DROP_ALL.load(Ordering::SeqCst), 0);
}

#[test]
fn a_removed_entry_is_freed_by_the_next_write() {
    let engine: Engine<u64, u64, RemovedState> = Engine::new();
    engine.connect(1, Caps::NONE);
    let entry = engine.subscribe(7, 1).unwrap();
    let weak = Arc::downgrade(&entry);
    drop(entry);
    let snap = engine.snapshot();
    assert!(engine.remove_thread(7));
    // Pinned by the snapshot taken before the removal.
    assert!(weak.upgrade().is_some());
    drop(snap);
    // The next write reclaims the version that held it.
    engine.connect(2, Caps::NONE);
    assert!(
        weak.upgrade().is_none(),
        "a replaced version outlived its readers"
    );
    assert_eq!(REMOVED.load(Ordering::SeqCst), 0);
}

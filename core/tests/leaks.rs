//! Guarantee 7: nothing leaks. Host state, entries, replaced graph
//! versions and trie nodes are all freed: by the writer once no reader
//! holds them, and by the engine's drop. Trie nodes are counted by the
//! engine's node pool ([`Engine::node_probe`]), so a leaked node fails here
//! without valgrind (the pool would otherwise hide it).
//!
//! Known to catch (a planted-bug audit): connections' thread-set
//! trees not freed on engine drop; a node leaked in a B-tree rebalance.
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
    let nodes = engine.node_probe();
    engine.connect(1, Caps::NONE);
    engine.subscribe(1, 1).unwrap();
    assert_eq!(SMOKE.load(Ordering::SeqCst), 1);
    assert!(nodes.live_nodes() > 0);
    drop(engine);
    assert_eq!(SMOKE.load(Ordering::SeqCst), 0);
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

/// Connections following many threads and threads with many subscribers
/// (both sets large enough to be trees), dropped with the engine while a
/// snapshot still holds an older version: every node comes back once both
/// are gone.
#[test]
fn dropping_the_engine_frees_every_node() {
    let engine: Engine<u64, u64> = Engine::new();
    let nodes = engine.node_probe();
    for c in 0..20 {
        engine.connect(c, Caps::NONE);
        for t in 0..200 {
            if (c + t) % 2 == 0 || c < 3 {
                engine.subscribe(t, c).unwrap();
            }
        }
    }
    let held = engine.snapshot();
    for c in 10..20 {
        engine.disconnect(c);
    }
    drop(engine);
    assert!(
        nodes.live_nodes() > 0,
        "the snapshot keeps its version's nodes"
    );
    assert_eq!(held.threads_of(0).len(), 200);
    drop(held);
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

/// Large sets shrunk one member at a time, in an order that makes their
/// trees merge and share nodes between siblings at every level: once the
/// engine is empty again it holds no node at all, and none leaks.
#[test]
fn shrinking_large_sets_frees_every_node() {
    let engine: Engine<u64, u64> = Engine::new();
    let nodes = engine.node_probe();
    const N: u64 = 1500;
    engine.connect(0, Caps::NONE);
    for i in 0..N {
        engine.connect(i + 1, Caps::NONE);
        engine.subscribe(0, i + 1).unwrap(); // thread 0: N subscribers
        engine.subscribe(i + 1, 0).unwrap(); // connection 0: N + 1 threads
    }
    engine.subscribe(0, 0).unwrap();
    // Every third member, then the rest from both ends inwards: leaves and
    // inner nodes fall under their minimum on either side of a sibling.
    let rest: Vec<u64> = (0..N).filter(|i| i % 3 != 0).collect();
    let order = (0..N)
        .filter(|i| i % 3 == 0)
        .chain(rest.iter().copied().step_by(2))
        .chain(rest.iter().copied().skip(1).step_by(2).rev());
    for (k, i) in order.enumerate() {
        assert!(engine.unsubscribe(0, i + 1));
        assert!(engine.unsubscribe(i + 1, 0));
        if k % 100 == 0 {
            engine.snapshot().validate().unwrap();
        }
    }
    for i in 0..=N {
        engine.disconnect(i);
        assert!(engine.remove_thread(i));
    }
    assert_eq!(engine.snapshot().thread_count(), 0);
    // The snapshot just dropped held the last version: one more write frees
    // it, and an empty graph has no node.
    engine.connect(0, Caps::NONE);
    engine.disconnect(0);
    assert_eq!(nodes.live_nodes(), 0, "an empty engine holds nodes");
    drop(engine);
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

#[test]
fn removing_everything_leaves_nothing() {
    let engine: Engine<u64, u64, DropAllState> = Engine::new();
    let nodes = engine.node_probe();
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
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

#[test]
fn a_removed_entry_is_freed_by_the_next_write() {
    let engine: Engine<u64, u64, RemovedState> = Engine::new();
    let nodes = engine.node_probe();
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
    drop(engine);
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

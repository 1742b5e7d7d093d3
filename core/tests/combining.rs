//! Write combining: writes queued behind another writer are published
//! together with it, each caller getting its own result and returning only
//! once its write is published; a write that panics in a group takes none
//! of the others with it; a host waker that panics when a publish wakes it
//! leaves nothing of that version for the next one. (The interleavings are loom's:
//! `loom-tests/tests/combining.rs`.)
#![allow(clippy::disallowed_types)] // std's atomics: the test's own flags

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;
use switchboard_core::{Caps, Change, Config, Engine};

type E = Engine<u64, u64>;

/// Holds the writer lock in a batch until `queued` writers have started
/// their calls and had `wait` to block on the lock, then returns the
/// versions published while the batch and the queued writes ran.
fn batch_with_queued(engine: &Arc<E>, queued: &[u64], wait: Duration) -> u64 {
    let before = engine.version();
    let (ready, started) = mpsc::channel();
    thread::scope(|s| {
        engine.batch(|b| {
            b.connect(100, Caps::NONE);
            for &c in queued {
                let (e, ready) = (Arc::clone(engine), ready.clone());
                s.spawn(move || {
                    ready.send(()).unwrap();
                    e.subscribe(7, c).unwrap();
                    // Linearizable: published once the call returns.
                    assert!(e.is_subscribed(7, c));
                });
            }
            for _ in queued {
                started.recv().unwrap();
            }
            thread::sleep(wait);
        });
        assert!(engine.is_connected(100));
    });
    engine.version() - before
}

#[test]
fn writes_queued_behind_a_batch_are_published_with_it() {
    // Two writers queue behind a batch; they are published with it, in one
    // version, unless the machine was too slow to queue them within the
    // wait (then retried with a longer one).
    let mut combined = false;
    for wait_ms in [20, 100, 400, 1000] {
        let engine = Arc::new(E::new());
        engine.connect(1, Caps::NONE);
        engine.connect(2, Caps::NONE);
        let mut feed = engine.changes();
        let versions = batch_with_queued(&engine, &[1, 2], Duration::from_millis(wait_ms));
        assert_eq!(engine.subscribers(7).to_vec(), [1, 2]);
        let mut changes = Vec::new();
        let mut batches = 0;
        while let Some(batch) = feed.try_next().unwrap() {
            batches += 1;
            changes.extend(batch.changes);
        }
        assert_eq!(batches, versions, "one feed batch per version");
        assert_eq!(
            changes[0],
            Change::Connected {
                c: 100,
                caps: Caps::NONE
            }
        );
        let subscribed = |c| changes.contains(&Change::Subscribed { t: 7, c });
        assert!(subscribed(1) && subscribed(2), "{changes:?}");
        assert!((1..=3).contains(&versions));
        if versions == 1 {
            combined = true;
            break;
        }
    }
    assert!(
        combined,
        "queued writers were never published with the batch"
    );
}

#[test]
fn a_write_that_panics_in_a_group_takes_nothing_else_with_it() {
    let engine = Arc::new(E::new());
    engine.connect(1, Caps::NONE);
    let before = engine.version();
    let (ready, started) = mpsc::channel();
    let panicked = thread::scope(|s| {
        let hostile = engine.batch(|b| {
            b.subscribe(7, 1).unwrap();
            let e = Arc::clone(&engine);
            let hostile = s.spawn(move || {
                ready.send(()).unwrap();
                e.thread_with(9, || panic!("host code"));
            });
            started.recv().unwrap();
            thread::sleep(Duration::from_millis(50));
            hostile
        });
        // The batch returned: it is published, whatever the hostile write did.
        assert!(engine.is_subscribed(7, 1));
        hostile.join().is_err()
    });
    assert!(panicked, "the panic reaches its own caller");
    assert!(!engine.contains_thread(9));
    assert_eq!(engine.version(), before + 1);
    engine.snapshot().validate().unwrap();
    // The engine writes on.
    engine.subscribe(9, 1).unwrap();
    assert_eq!(engine.version(), before + 2);
}

#[test]
fn concurrent_writers_are_linearizable_and_the_feed_replays_them() {
    const WRITERS: u64 = 4;
    const ROUNDS: u64 = 2_000;
    // A log that keeps every version of the run.
    let config = Config::default().change_log((WRITERS * ROUNDS * 2) as usize);
    let engine = Arc::new(E::with_config(config));
    for c in 0..WRITERS {
        engine.connect(c, Caps::NONE);
    }
    let start = engine.version();
    let mut feed = engine.changes();
    let barrier = Barrier::new(WRITERS as usize);
    let writes = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    thread::scope(|s| {
        for c in 0..WRITERS {
            let (engine, barrier, writes, failed) = (&engine, &barrier, &writes, &failed);
            s.spawn(move || {
                barrier.wait();
                for r in 0..ROUNDS {
                    let t = r % 16;
                    engine.subscribe(t, c).unwrap();
                    // Each call's result and effect, seen at once.
                    if !engine.is_subscribed(t, c) || !engine.unsubscribe(t, c) {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if engine.is_subscribed(t, c) {
                        failed.store(true, Ordering::Relaxed);
                    }
                    writes.fetch_add(2, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(
        !failed.load(Ordering::Relaxed),
        "a returned write was not visible"
    );
    // Replay the feed: every write's changes, once, in an order that
    // rebuilds the final graph (no edge left).
    let mut edges = std::collections::HashSet::new();
    let mut versions = 0;
    while let Some(batch) = feed.try_next().unwrap() {
        versions += 1;
        for change in batch.changes {
            match change {
                Change::Subscribed { t, c } => assert!(edges.insert((t, c)), "twice: {t}-{c}"),
                Change::Unsubscribed { t, c } => assert!(edges.remove(&(t, c)), "absent: {t}-{c}"),
                _ => {}
            }
        }
    }
    assert!(edges.is_empty());
    assert_eq!(engine.version() - start, versions);
    let writes = writes.load(Ordering::Relaxed) as u64;
    assert!(versions <= writes);
    println!("{writes} writes in {versions} versions");
    engine.snapshot().validate().unwrap();
}

/// A waker that panics when woken: host code run by a publish.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("host waker");
    }
}

#[test]
fn a_waker_that_panics_in_a_publish_leaves_nothing_for_the_next_one() {
    let engine = E::new();
    engine.connect(1, Caps::NONE);
    engine.thread(7);
    let mut feed = engine.changes();
    let mut watch = engine.watch_subscribers(7).unwrap();
    let waker = std::task::Waker::from(Arc::new(PanickingWaker));
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(watch.poll_changed(&mut cx).is_pending());
    // The subscribe is published, then its watch flip wakes the host's
    // waker, which panics into this caller.
    let woken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.subscribe(7, 1).unwrap();
    }));
    assert!(woken.is_err());
    assert!(engine.is_subscribed(7, 1), "published before the wake");
    // The next version carries only its own changes.
    engine.connect(2, Caps::NONE);
    let first = feed.try_next().unwrap().unwrap();
    assert_eq!(
        first.changes,
        [Change::Subscribed { t: 7, c: 1 }, Change::Occupied { t: 7 }]
    );
    let second = feed.try_next().unwrap().unwrap();
    assert_eq!(
        second.changes,
        [Change::Connected {
            c: 2,
            caps: Caps::NONE
        }]
    );
    engine.snapshot().validate().unwrap();
}

//! Write combining (`store/versions/`, "Combining"): writers that queue
//! for the writer mutex are published together, each caller keeping its
//! own result, each write taking effect within its call, and no caller
//! left asleep.
//!
//! * Two writers race a reader: each gets its own result and sees its
//!   write once it returns; the change feed holds exactly their changes,
//!   once each, in one or two versions; the reader never sees a version
//!   that holds part of a write. Some execution combines the two (checked
//!   after the model).
//! * Three writers (the main thread and two others): every write is
//!   published, versions move by one to three, and the feed holds each
//!   write's changes once; some execution combines all three in one version.
//! * A writer whose host code panics while another waits for it to
//!   publish: the waiting writer wakes and publishes its own write, nothing
//!   of the panicking write is published, and the panic reaches its caller.
//!
//! A lost wake-up (a deferred writer nobody publishes for) shows as a loom
//! deadlock. Runtime: a few seconds per configuration once built.
#![cfg(loom)]

use loom::thread;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use switchboard_core::{Caps, Change, ChangeFeed};

type Engine = switchboard_core::Engine<u64, u64>;

/// Every change the feed holds, with how many versions carried them.
fn drain(feed: &mut ChangeFeed<u64, u64>) -> (Vec<Change<u64, u64>>, usize) {
    let (mut changes, mut versions) = (Vec::new(), 0);
    while let Some(batch) = feed.try_next().expect("the log keeps every version") {
        versions += 1;
        changes.extend(batch.changes);
    }
    (changes, versions)
}

#[test]
fn two_writers_each_get_their_own_result() {
    static COMBINED: AtomicBool = AtomicBool::new(false);
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        engine.connect(1, Caps::NONE);
        engine.connect(2, Caps::NONE);
        engine.subscribe(8, 2).unwrap();
        let before = engine.version();
        let mut feed = engine.changes();
        let e = Arc::clone(&engine);
        let subscriber = thread::spawn(move || {
            let entry = e.subscribe(7, 1).unwrap();
            assert_eq!(entry.id(), 7);
            // Linearizable: once the call returns, every read sees it.
            assert!(e.is_subscribed(7, 1), "a returned write is not published");
        });
        let e = Arc::clone(&engine);
        let leaver = thread::spawn(move || {
            assert_eq!(e.disconnect(2), [8], "8 lost its last subscriber");
            assert!(!e.is_connected(2), "a returned write is not published");
        });
        // The reader: a version holds all of a write or none of it.
        let snap = engine.snapshot();
        let left = !snap.is_connected(2);
        assert_eq!(left, !snap.is_subscribed(8, 2), "part of the disconnect");
        subscriber.join().unwrap();
        leaver.join().unwrap();

        let (mut changes, versions) = drain(&mut feed);
        // Each write's changes once, in its own order; the two writes in
        // either order.
        let subscribe = [
            Change::ThreadAdded { t: 7 },
            Change::Subscribed { t: 7, c: 1 },
            Change::Occupied { t: 7 },
        ];
        let disconnect = [
            Change::Unsubscribed { t: 8, c: 2 },
            Change::Vacated { t: 8 },
            Change::Disconnected { c: 2 },
        ];
        if changes.first() != Some(&subscribe[0]) {
            changes.rotate_left(3);
        }
        assert_eq!(changes, [subscribe, disconnect].concat());
        assert!((1..=2).contains(&versions), "{versions} versions");
        assert_eq!(engine.version(), before + versions as u64);
        if versions == 1 {
            COMBINED.store(true, Ordering::Relaxed);
        }
        engine.snapshot().validate().unwrap();
    });
    assert!(
        COMBINED.load(Ordering::Relaxed),
        "no execution published the two writes together"
    );
}

#[test]
fn three_writers_are_all_published() {
    static ALL_IN_ONE: AtomicBool = AtomicBool::new(false);
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        for c in 1..=3 {
            engine.connect(c, Caps::NONE);
        }
        let before = engine.version();
        let mut feed = engine.changes();
        let spawn = |c: u64| {
            let e = Arc::clone(&engine);
            thread::spawn(move || {
                e.subscribe(7, c).unwrap();
                assert!(e.is_subscribed(7, c), "a returned write is not published");
            })
        };
        let (a, b) = (spawn(1), spawn(2));
        engine.subscribe(7, 3).unwrap();
        assert!(engine.is_subscribed(7, 3));
        a.join().unwrap();
        b.join().unwrap();

        assert_eq!(engine.subscribers(7).to_vec(), [1, 2, 3]);
        let (changes, versions) = drain(&mut feed);
        let subscribed = changes
            .iter()
            .filter(|c| matches!(c, Change::Subscribed { t: 7, .. }))
            .count();
        assert_eq!(subscribed, 3, "each write once: {changes:?}");
        assert!((1..=3).contains(&versions), "{versions} versions");
        assert_eq!(engine.version(), before + versions as u64);
        if versions == 1 {
            ALL_IN_ONE.store(true, Ordering::Relaxed);
        }
        engine.snapshot().validate().unwrap();
    });
    assert!(
        ALL_IN_ONE.load(Ordering::Relaxed),
        "no execution published the three writes together"
    );
}

#[test]
fn a_panicking_writer_does_not_strand_a_deferred_one() {
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        engine.connect(1, Caps::NONE);
        let before = engine.version();
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.subscribe(7, 1).unwrap();
            assert!(e.is_subscribed(7, 1), "a returned write is not published");
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.thread_with(9, || panic!("host code"));
        }));
        assert!(caught.is_err(), "the panic reaches its caller");
        writer.join().unwrap();
        assert!(!engine.contains_thread(9), "a panicked write was published");
        assert_eq!(engine.version(), before + 1);
        engine.snapshot().validate().unwrap();
    });
}

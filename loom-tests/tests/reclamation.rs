//! Guarantee 7 and the soundness of the trie's reclamation: the writer frees
//! a replaced node only once no held graph version can see it. Under loom
//! the engine poisons freed nodes instead of freeing them and asserts on
//! every node access, so an interleaving in which a reader could reach a
//! freed node fails the model. First loom configuration only: the second
//! (`switchboard_loom_publish`) keeps every version alive, so nothing would
//! be reclaimed.
//!
//! Known to catch: reclamation ignoring the versions readers hold.
#![cfg(all(loom, not(switchboard_loom_publish)))]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;
use switchboard_loom_tests::support::Engine;

/// A reader holding a snapshot across several writes that replace every
/// node it can see.
#[test]
fn held_snapshot_survives_writes_and_reclamation() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.connect(2, Caps::NONE);
        engine.subscribe(7, 1).unwrap();

        let e = Arc::clone(&engine);
        let reader = thread::spawn(move || {
            let snap = e.snapshot();
            let first = snap.subscribers(7).to_vec();
            thread::yield_now();
            // Same answer from the same frozen version, whatever happened.
            assert_eq!(snap.subscribers(7).to_vec(), first);
            assert_eq!(snap.is_connected(2), snap.caps(2).is_some());
            snap.validate().unwrap();
            first
        });
        // Each write replaces the root paths of the tries the reader reads
        // and runs reclamation.
        engine.subscribe(7, 2).unwrap();
        engine.unsubscribe(7, 1);
        engine.disconnect(2);
        let seen = reader.join().unwrap();
        assert!(
            [vec![1], vec![1, 2], vec![2], vec![]].contains(&seen),
            "{seen:?}"
        );
        // One more write after the reader let go frees what it pinned.
        engine.connect(3, Caps::NONE);
        assert!(engine.subscribers(7).is_empty());
    });
}

/// Two readers with short-lived views (the fan-out path) while a writer
/// publishes and reclaims.
#[test]
fn fan_out_reads_race_publish_and_reclaim() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.subscribe(7, 1).unwrap();

        let readers: Vec<_> = (0..2)
            .map(|_| {
                let e = Arc::clone(&engine);
                thread::spawn(move || {
                    let mut seen = Vec::new();
                    e.for_each_subscriber(7, |c| seen.push(c));
                    let has = e.has_subscribers(7);
                    (seen, has)
                })
            })
            .collect();
        engine.unsubscribe(7, 1);
        engine.subscribe(7, 1).unwrap();
        for r in readers {
            let (seen, _) = r.join().unwrap();
            assert!(seen.is_empty() || seen == [1], "{seen:?}");
        }
    });
}

/// A [`Reader`](switchboard_core::Reader) keeps the version it read last
/// (a full reference) and refreshes it when the engine publishes: its
/// cached version must survive reclamation until it moves on, and each of
/// its reads must see a version at least as new as the one before.
#[test]
fn cached_reader_races_publish_and_reclaim() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.connect(2, Caps::NONE);
        engine.subscribe(7, 1).unwrap();

        let e = Arc::clone(&engine);
        let reader = thread::spawn(move || {
            let mut r = e.reader();
            let mut reads = Vec::new();
            for _ in 0..2 {
                let mut seen = Vec::new();
                r.for_each_subscriber(7, |c| seen.push(c));
                assert_eq!(r.has_subscribers(7), !r.subscribers(7).is_empty());
                reads.push(seen);
                thread::yield_now();
            }
            reads
        });
        // The writes go through these states, in this order.
        let states: [&[u64]; 3] = [&[1], &[1, 2], &[2]];
        engine.subscribe(7, 2).unwrap();
        engine.unsubscribe(7, 1);
        let reads = reader.join().unwrap();
        let at = |seen: &Vec<u64>| {
            states
                .iter()
                .position(|s| *s == seen.as_slice())
                .unwrap_or_else(|| panic!("read a state no write made: {seen:?}"))
        };
        assert!(
            at(&reads[0]) <= at(&reads[1]),
            "{reads:?} went back in time"
        );
        // The reader is gone: one more write frees what it pinned.
        engine.connect(3, Caps::NONE);
        assert_eq!(engine.subscribers(7).to_vec(), [2]);
    });
}

/// `Subscribers` views of a large set (a B+tree read in place) pin their
/// version: from the engine by its load guard, from a `Reader` by a guard
/// on the cell's current version. A writer replaces the set (its tree
/// nodes are retired and collected) while the reader thread still holds
/// and then iterates both views; a view freed too early reads a poisoned
/// node and fails the model.
#[test]
fn large_set_views_pin_their_version() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        for c in 0..6 {
            engine.connect(c, Caps::NONE);
            engine.subscribe(7, c).unwrap();
        }
        let e = Arc::clone(&engine);
        let reader = thread::spawn(move || {
            let from_engine = e.subscribers(7);
            let from_reader = e.reader().subscribers(7);
            thread::yield_now();
            (from_engine.to_vec(), from_reader.to_vec())
        });
        // Replace the tree twice (5, then 6 members: a tree both times).
        engine.unsubscribe(7, 0);
        engine.subscribe(7, 0).unwrap();
        let (a, b) = reader.join().unwrap();
        let full: Vec<u64> = (0..6).collect();
        let shrunk: Vec<u64> = (1..6).collect();
        for seen in [a, b] {
            assert!(seen == full || seen == shrunk, "{seen:?}");
        }
        engine.connect(9, Caps::NONE);
    });
}

//! Stress test of the trie's reclamation (the one place the crate uses
//! `unsafe`): readers hold snapshots, subscriber views and fan-out guards
//! across many writes while a writer churns, so replaced nodes are retired
//! and freed all the time. Every read is checked against what the reader's
//! own version must contain.
//!
//! CI also runs this binary under `valgrind --tool=memcheck` (see
//! `.ci/run`), which reports any read of freed memory, double free or leak.
//! Sizes are kept small for that.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use switchboard_core::{Caps, Engine};

const THREADS: u64 = 64;
const CONNS: u64 = 24;
const WRITES: usize = 3_000;
const READERS: usize = 2;
/// Reads the readers must have done, in all, before the writer stops.
const MIN_READS: u64 = 200;
const MAX_ROUNDS: usize = 100;

#[test]
fn smoke() {
    let engine: Engine<u64, u64> = Engine::new();
    engine.connect(1, Caps::NONE);
    let snap = engine.snapshot();
    for t in 0..100 {
        engine.subscribe(t, 1).unwrap();
    }
    assert_eq!(snap.subscribed_thread_count(), 0);
    drop(snap);
    engine.disconnect(1);
    for t in 0..100 {
        assert!(engine.remove_thread(t));
    }
    assert_eq!(engine.snapshot().thread_count(), 0);
}

#[test]
fn readers_holding_versions_across_churn() {
    let engine = connected();
    readers_across_churn(&engine, |r| {
        let engine = &engine;
        let mut held = Vec::new();
        move |checks| {
            let snap = engine.snapshot();
            // Everything this version says must agree with itself, now and
            // after the writer has moved on.
            let t = checks % THREADS;
            let subs = snap.subscribers(t).to_vec();
            for &c in &subs {
                assert!(snap.threads_of(c).contains(&t));
            }
            let mut visited = Vec::new();
            engine.for_each_subscriber(t, |c| visited.push(c));
            assert!(visited.windows(2).all(|w| w[0] < w[1]));
            held.push((snap, t, subs, engine.subscribers(t)));
            if held.len() > 4 + r {
                // Let go of the oldest view after re-reading it.
                let (snap, t, subs, view) = held.remove(0);
                assert_eq!(snap.subscribers(t).to_vec(), subs);
                assert!(view.iter().all(|c| c < CONNS));
                snap.validate().unwrap();
            }
        }
    });
}

/// An engine with `CONNS` connections and no thread.
fn connected() -> Engine<u64, u64> {
    let engine = Engine::new();
    for c in 0..CONNS {
        engine.connect(c, Caps(c % 4));
    }
    engine
}

/// Runs `READERS` reader threads across the writer's [`churn`]: each makes
/// its read with `reader(index)` and calls it with 0, 1, 2, ... until the
/// writer stops; then checks that they read and that the graph is whole.
fn readers_across_churn<R: FnMut(u64)>(
    engine: &Engine<u64, u64>,
    reader: impl Fn(usize) -> R + Sync,
) {
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    let total: u64 = thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (reader, stop, progress) = (&reader, &stop, &progress);
                s.spawn(move || {
                    let mut read = reader(r);
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        read(reads);
                        reads += 1;
                        progress.fetch_add(1, Ordering::Relaxed);
                        thread::yield_now();
                    }
                    reads
                })
            })
            .collect();
        churn_until(engine, &progress);
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert!(total > 0, "the readers never ran");
    engine.snapshot().validate().unwrap();
}

/// Runs [`churn`] until the readers have read `MIN_READS` times in all
/// (they may start late), at most `MAX_ROUNDS` rounds.
fn churn_until(engine: &Engine<u64, u64>, progress: &AtomicU64) {
    for _ in 0..MAX_ROUNDS {
        churn(engine);
        if progress.load(Ordering::Relaxed) >= MIN_READS {
            return;
        }
    }
}

/// The writer of the stress tests: `WRITES` mixed writes over small id
/// ranges, so that every trie path is replaced again and again.
fn churn(engine: &Engine<u64, u64>) {
    let mut x = 0x9E37_79B9u64;
    for i in 0..WRITES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = x % THREADS;
        let c = (x >> 20) % CONNS;
        match i % 7 {
            0 => {
                engine.disconnect(c);
                engine.connect(c, Caps(x % 4));
            }
            1 => {
                engine.remove_thread_if_idle(t);
            }
            2 | 3 => {
                engine.unsubscribe(t, c);
            }
            _ => {
                engine.subscribe(t, c).unwrap();
            }
        }
    }
}

/// Readers that read only through `Engine`'s per-call methods (each call
/// pins the latest version in a hazard slot of the reading thread, or takes
/// a guard when the thread's slots are taken), nesting reads inside fan-out
/// callbacks deeper than a thread has slots, across the churn.
#[test]
fn pinned_reads_across_churn() {
    let engine = connected();
    readers_across_churn(&engine, |_| {
        let engine = &engine;
        move |reads| {
            let t = reads % THREADS;
            nested_reads(engine, t, 6);
            let first = engine.first_subscriber_with(t, Caps::NONE);
            assert!(first.is_none_or(|c| c < CONNS));
            std::hint::black_box(engine.has_subscribers(t));
            let threads = engine.threads_of(reads % CONNS);
            assert!(threads.windows(2).all(|w| w[0] < w[1]));
        }
    });
}

/// Reader threads that live for a few reads each, in waves, while the
/// writer churns: each claims a slot block at its first read and gives it
/// back when it exits, so blocks change hands under the writer's scans.
#[test]
fn short_lived_reader_threads_across_churn() {
    const WAVES: usize = 30;
    let engine = connected();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let writer = s.spawn(|| {
            for _ in 0..MAX_ROUNDS {
                churn(&engine);
                if done.load(Ordering::Relaxed) {
                    return;
                }
            }
        });
        for _ in 0..WAVES {
            thread::scope(|wave| {
                for r in 0..READERS as u64 {
                    let engine = &engine;
                    wave.spawn(move || {
                        for i in 0..20 {
                            nested_reads(engine, (r * 7 + i) % THREADS, 2);
                        }
                    });
                }
            });
        }
        done.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    });
    engine.snapshot().validate().unwrap();
}

/// A fan-out of `t` that, from its first subscriber, reads again, `depth`
/// calls deep: each call holds its version while the inner ones run.
fn nested_reads(engine: &Engine<u64, u64>, t: u64, depth: usize) {
    let mut visited = Vec::new();
    engine.for_each_subscriber(t, |c| {
        if visited.is_empty() && depth > 0 {
            nested_reads(engine, (t + c + 1) % THREADS, depth - 1);
        }
        visited.push(c);
    });
    assert!(visited.windows(2).all(|w| w[0] < w[1]));
    assert!(visited.iter().all(|&c| c < CONNS));
}

/// Readers that keep a [`Reader`](switchboard_core::Reader) (a cached
/// version, refreshed on each read after a publish) across the churn.
#[test]
fn cached_readers_across_churn() {
    let engine = connected();
    readers_across_churn(&engine, |_| {
        let engine = &engine;
        let mut r = engine.reader();
        move |reads| {
            let t = reads % THREADS;
            let mut visited = Vec::new();
            r.for_each_subscriber(t, |c| visited.push(c));
            assert!(visited.windows(2).all(|w| w[0] < w[1]));
            assert!(visited.iter().all(|&c| c < CONNS));
            let view = r.subscribers(t);
            let c = reads % CONNS;
            let threads = r.threads_of(c);
            assert!(threads.windows(2).all(|w| w[0] < w[1]));
            if reads % 64 == 0 {
                // A whole pass over one version, for valgrind to see every
                // node the cache keeps alive.
                engine.snapshot().validate().unwrap();
            }
            assert!(view.iter().all(|c| c < CONNS));
        }
    });
}

#[test]
fn snapshot_outlives_its_engine() {
    let engine: Engine<u64, u64> = Engine::new();
    engine.connect(1, Caps::NONE);
    for t in 0..200 {
        engine.subscribe(t, 1).unwrap();
    }
    let snap = engine.snapshot();
    let view = engine.subscribers(5);
    for t in 0..200 {
        engine.unsubscribe(t, 1);
    }
    drop(engine);
    // The nodes this version can see are still there: they are freed when
    // the last version goes, not when the engine does.
    assert_eq!(snap.subscribers(5).to_vec(), [1]);
    assert_eq!(snap.threads_of(1).len(), 200);
    snap.validate().unwrap();
    assert_eq!(view.to_vec(), [1]);
}

/// A large subscriber set (a tree whose nodes live by the reclamation rule)
/// read through `Subscribers` views and a reader after its thread is
/// removed, its members disconnect and the engine is dropped.
#[test]
fn large_set_views_outlive_their_thread_and_engine() {
    let engine: Engine<u64, u64> = Engine::new();
    for c in 0..300 {
        engine.connect(c, Caps::NONE);
        engine.subscribe(7, c).unwrap();
        engine.subscribe(c + 1000, 0).unwrap();
    }
    engine.subscribe(8, 0).unwrap();
    let view = engine.subscribers(7);
    let snap_view = engine.snapshot().subscribers(7);
    let mut seen = Vec::new();
    engine.reader().for_each_subscriber(7, |c| seen.push(c));
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
    assert!(engine.remove_thread(7));
    for c in 0..300 {
        // Connection 0 follows 302 threads: a large thread set too.
        engine.disconnect(c);
    }
    assert!(engine.subscribers(7).is_empty());
    drop(engine);
    assert!(view.iter().eq(0..300));
    assert_eq!(snap_view.len(), 300);
    assert!(snap_view.contains(299));
}

/// Many views of one large set at once, from the engine and a reader: more
/// than a thread's few load-guard slots, so some views pin their version
/// by guard and others by a full reference. Every one must keep its
/// version's nodes through writes that replace and free the set, through
/// clones, and past the engine.
#[test]
fn many_large_set_views_keep_their_version() {
    let engine: Engine<u64, u64> = Engine::new();
    for c in 0..100 {
        engine.connect(c, Caps::NONE);
        engine.subscribe(7, c).unwrap();
    }
    let mut views = Vec::new();
    let mut reader = engine.reader();
    for round in 0..20u64 {
        views.push((round, engine.subscribers(7)));
        views.push((round, reader.subscribers(7)));
        // Replace the set: drop one member, add another.
        engine.unsubscribe(7, round);
        engine.connect(1000 + round, Caps::NONE);
        engine.subscribe(7, 1000 + round).unwrap();
    }
    let clones: Vec<_> = views.iter().map(|(r, v)| (*r, v.clone())).collect();
    views.truncate(7);
    for c in 0..2000 {
        engine.disconnect(c);
    }
    assert!(engine.subscribers(7).is_empty());
    drop(reader);
    drop(engine);
    for (round, view) in views.iter().chain(&clones) {
        let expected: Vec<u64> = (*round..100).chain(1000..1000 + round).collect();
        assert_eq!(view.to_vec(), expected, "view of round {round}");
        assert_eq!(view.len(), 100);
    }
}

/// Writes made inside a fan-out callback, on the reading thread, replace
/// the version the fan-out is reading: the pinned version (and the B-tree
/// leaves of the large set being walked) must stay whole until the call
/// returns. Under valgrind any freed node read here is reported.
#[test]
fn writes_inside_a_pinned_read_leave_it_whole() {
    const MEMBERS: u64 = 200;
    let engine: Engine<u64, u64> = Engine::new();
    for c in 0..MEMBERS {
        engine.connect(c, Caps::NONE);
        engine.subscribe(7, c).unwrap();
    }
    let mut visited = Vec::new();
    engine.for_each_subscriber(7, |c| {
        if c == 0 {
            // Every other member leaves and the thread goes: each write
            // publishes a version and collects what the older ones held.
            for other in 1..MEMBERS {
                engine.disconnect(other);
            }
            engine.disconnect(0);
            assert!(engine.remove_thread(7));
            assert!(!engine.has_subscribers(7));
        }
        visited.push(c);
    });
    assert_eq!(visited, (0..MEMBERS).collect::<Vec<_>>());
    assert_eq!(engine.snapshot().thread_count(), 0);
}

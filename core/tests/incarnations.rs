//! Connection incarnations and data (guarantee 12): unit tests, the data's
//! lifetime, and a stress test of a writer cycling incarnations against
//! readers fanning out with data.
//!
//! What the stress test asserts is only what linearizability promises:
//! once `connect_with` has *returned* (the writer says so through an
//! atomic, after the call), no later fan-out yields an older incarnation's
//! data; one reader's fan-outs never go back to an older incarnation; and
//! an operation naming an incarnation the writer already replaced changes
//! nothing. Known to catch (planted): `disconnect_if` ignoring
//! the incarnation (the stale closer's call succeeds, and `smoke` and
//! `feed_of_a_replacement` fail too). The readers' checks hold for any
//! linearizable engine; the loom model `incarnations.rs` checks the same
//! property under every interleaving of a smaller race.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Change, Engine};

/// Data that names its incarnation: the connection and the writer's round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Session {
    c: u64,
    round: u64,
}

type E = Engine<u64, u64, (), (), Session>;

#[test]
fn smoke() {
    let engine = E::new();
    let first = engine.connect_with(1, Caps::NONE, Session { c: 1, round: 1 });
    engine.subscribe_if(7, 1, first).unwrap();
    assert!(engine.is_subscribed(7, 1));
    let second = engine.connect_with(1, Caps(1), Session { c: 1, round: 2 });
    assert!(second > first);
    assert_eq!(engine.incarnation(1), Some(second));
    assert!(
        !engine.is_subscribed(7, 1),
        "the new incarnation starts empty"
    );
    assert!(engine.subscribe_if(7, 1, first).is_err());
    assert_eq!(engine.disconnect_if(1, first), None);
    assert_eq!(engine.data(1), Some(Session { c: 1, round: 2 }));
    engine.subscribe(7, 1).unwrap();
    let mut seen = Vec::new();
    engine.for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
    assert_eq!(seen, [(1, Session { c: 1, round: 2 })]);
    assert_eq!(engine.disconnect_if(1, second), Some(vec![7]));
    assert_eq!(engine.data(1), None);
    assert_eq!(engine.incarnation(1), None);
    engine.snapshot().validate().unwrap();
}

/// `connect` keeps the incarnation and data of a live connection, and a
/// connection made live by `connect` gets `D::default()`.
#[test]
fn connect_keeps_the_session() {
    let engine = E::new();
    assert!(engine.connect(1, Caps::NONE));
    assert_eq!(engine.data(1), Some(Session::default()));
    let i = engine.connect_with(1, Caps::NONE, Session { c: 1, round: 5 });
    assert!(!engine.connect(1, Caps(3)));
    assert_eq!(engine.incarnation(1), Some(i));
    assert_eq!(engine.data(1), Some(Session { c: 1, round: 5 }));
    assert_eq!(engine.caps(1), Some(Caps(3)));
}

/// `connect_with` over a live connection is one write whose batch is the
/// `disconnect` sequence then `Connected`; stale ops publish nothing.
#[test]
fn feed_of_a_replacement() {
    let engine = E::new();
    let old = engine.connect_with(1, Caps::NONE, Session::default());
    engine.subscribe(7, 1).unwrap();
    let mut feed = engine.changes();
    engine.connect_with(1, Caps(2), Session::default());
    let batch = feed.try_next().unwrap().unwrap();
    assert_eq!(
        batch.changes,
        [
            Change::Unsubscribed { t: 7, c: 1 },
            Change::Vacated { t: 7 },
            Change::Disconnected { c: 1 },
            Change::Connected {
                c: 1,
                caps: Caps(2)
            },
        ]
    );
    let version = engine.version();
    assert_eq!(engine.disconnect_if(1, old), None);
    assert!(engine.subscribe_if(8, 1, old).is_err());
    assert_eq!(engine.version(), version, "a stale op published");
    assert_eq!(feed.try_next().unwrap(), None);
    assert!(!engine.contains_thread(8));
}

/// The data of an ended incarnation is dropped once no version shows it:
/// by the next write when no reader holds the old version.
#[test]
fn ended_data_is_dropped() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let engine: Engine<u64, u64, (), (), Counted> = Engine::new();
    engine.connect_with(1, Caps::NONE, Counted(Arc::clone(&drops)));
    engine.subscribe(7, 1).unwrap();
    let held = engine.snapshot();
    engine.connect_with(1, Caps::NONE, Counted(Arc::clone(&drops)));
    engine.subscribe(8, 2).ok(); // a write that changes nothing
    engine.thread(9); // a write
    assert_eq!(drops.load(Ordering::SeqCst), 0, "a held snapshot shows it");
    drop(held);
    engine.thread(10); // reclaims what only the snapshot held
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    engine.disconnect(1);
    engine.thread(11);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    engine.connect_with(2, Caps::NONE, Counted(Arc::clone(&drops)));
    drop(engine);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "the engine's drop drops the rest"
    );
}

/// The thread every incarnation subscribes to.
const ROOM: u64 = 1;
/// Connection ids the writer cycles, incarnations per id, and the longest
/// the test may run.
const CONNS: u64 = 4;
const ROUNDS: u64 = 10_000;
const LONG: Duration = Duration::from_secs(20);

#[test]
fn readers_never_see_an_ended_incarnation() {
    let engine = Arc::new(E::new());
    // `started[c]`: the round of the last incarnation of `c` whose
    // `connect_with` has returned. `ended[c]`: the number of one that has
    // been replaced since (0: none yet).
    let started: Arc<Vec<AtomicU64>> = Arc::new((0..CONNS).map(|_| AtomicU64::new(0)).collect());
    let ended: Arc<Vec<AtomicU64>> = Arc::new((0..CONNS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + LONG;

    let writer = {
        let (engine, started, ended, done) = (
            Arc::clone(&engine),
            Arc::clone(&started),
            Arc::clone(&ended),
            Arc::clone(&done),
        );
        thread::spawn(move || {
            let mut live = vec![0u64; CONNS as usize];
            let mut last = 0;
            for round in 1..=ROUNDS {
                for c in 0..CONNS {
                    let i = engine.connect_with(c, Caps::NONE, Session { c, round });
                    assert!(i > last, "incarnations must increase");
                    last = i;
                    // After the return: every later read sees this one.
                    started[c as usize].store(round, Ordering::SeqCst);
                    if live[c as usize] != 0 {
                        ended[c as usize].store(live[c as usize], Ordering::SeqCst);
                    }
                    live[c as usize] = i;
                    engine.subscribe_if(ROOM, c, i).unwrap();
                }
                if Instant::now() > deadline {
                    break;
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // Reader: one through the engine, one through a cached `Reader`.
    let reader = |cached: bool| {
        let (engine, started, done) =
            (Arc::clone(&engine), Arc::clone(&started), Arc::clone(&done));
        thread::spawn(move || {
            let mut handle = engine.reader();
            let mut highest = vec![0u64; CONNS as usize];
            let mut fan_outs = 0u64;
            while !done.load(Ordering::SeqCst) {
                // Read the floors first: those incarnations had started
                // before this fan-out began.
                let floor: Vec<u64> = started.iter().map(|s| s.load(Ordering::SeqCst)).collect();
                let mut check = |c: u64, d: &Session| {
                    assert_eq!(d.c, c, "another connection's data");
                    let i = c as usize;
                    assert!(
                        d.round >= floor[i],
                        "fan-out gave round {} of {c} after round {} had started",
                        d.round,
                        floor[i]
                    );
                    assert!(
                        d.round >= highest[i],
                        "fan-out went back from round {} to {} for {c}",
                        highest[i],
                        d.round
                    );
                    highest[i] = d.round;
                };
                if cached {
                    handle.for_each_subscriber_data(ROOM, &mut check);
                } else {
                    engine.for_each_subscriber_data(ROOM, &mut check);
                }
                fan_outs += 1;
            }
            fan_outs
        })
    };

    // Stale closer: every op naming a replaced incarnation changes nothing.
    let stale = {
        let (engine, ended, done) = (Arc::clone(&engine), Arc::clone(&ended), Arc::clone(&done));
        thread::spawn(move || {
            let mut tries = 0u64;
            while !done.load(Ordering::SeqCst) {
                for c in 0..CONNS {
                    let old = ended[c as usize].load(Ordering::SeqCst);
                    if old == 0 {
                        continue;
                    }
                    assert_eq!(engine.disconnect_if(c, old), None, "stale disconnect_if");
                    assert!(engine.subscribe_if(ROOM + 1, c, old).is_err());
                    tries += 1;
                }
                thread::yield_now();
            }
            tries
        })
    };

    let readers = [reader(false), reader(true)];
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0, "a reader never ran");
    }
    assert!(stale.join().unwrap() > 0, "the stale closer never ran");
    assert!(
        !engine.contains_thread(ROOM + 1),
        "a stale subscribe_if created a thread"
    );
    let snap = engine.snapshot();
    snap.validate().unwrap();
    assert_eq!(snap.subscribers(ROOM).len(), CONNS as usize);
}

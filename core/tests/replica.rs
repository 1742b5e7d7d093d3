//! Guarantee 9, the replica law, over random op sequences: a replica
//! started from `snapshot()` at version `v` and fed every batch of
//! `changes_since(v)` equals `snapshot()` after every batch.
//!
//! Each case runs one op sequence (connect with changing caps, disconnect,
//! subscribe, unsubscribe, thread, remove_thread, remove_thread_if_idle,
//! connect_with replacing a live incarnation or not, disconnect_if,
//! subscribe_if and unsubscribe_if with the current or a stale
//! incarnation) on an engine with a small or the default change log, and
//! after every op:
//!
//! * the *eager* follower (from version 0) must get exactly one batch, the
//!   next version, holding exactly the changes the op must make, in order
//!   (computed from the follower's own state), or nothing for a no-op;
//!   applied strictly (`common::Replica::apply`), it equals the snapshot;
//! * a *late* follower, started by the crate docs' recipe (a snapshot, then the feed from its version) at a random point, equals
//!   the snapshot too;
//! * `Stats` equals a brute-force count of the snapshot, and
//!   `subscription_count()` the counted edges;
//! * on `Drain` ops, a *lazy* follower catches up; it must lag exactly when
//!   more than `change_log` versions went by, and then resyncs by the
//!   recipe and equals the snapshot.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

mod common;

use common::{brute_force, counters, Batch, Replica};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use switchboard_core::{Caps, Change, ChangeFeed, Config, Engine, Lagged};

type E = Engine<u64, u64>;

const THREADS: u64 = 8;
const CONNS: u64 = 6;
const CAPS: u64 = 4;
const CASES: u32 = 3000;
const MAX_OPS: usize = 80;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Connect(u64, u64),
    Disconnect(u64),
    Subscribe(u64, u64),
    Unsubscribe(u64, u64),
    Thread(u64),
    RemoveThread(u64),
    RemoveThreadIfIdle(u64),
    ConnectWith(u64, u64),
    /// `disconnect_if(c, ..)`: with `c`'s current incarnation if `false`,
    /// else with one it is not in.
    DisconnectIf(u64, bool),
    /// `subscribe_if(t, c, ..)`, the incarnation picked as for `DisconnectIf`.
    SubscribeIf(u64, u64, bool),
    /// `unsubscribe_if(t, c, ..)`, the incarnation picked as for `DisconnectIf`.
    UnsubscribeIf(u64, u64, bool),
    /// The lazy follower catches up.
    Drain,
}

/// `c`'s current incarnation, or (`stale`) one it is not live in.
fn pick(e: &E, c: u64, stale: bool) -> u64 {
    match e.incarnation(c) {
        Some(i) if stale => i - 1,
        Some(i) => i,
        None => 1,
    }
}

fn run_op(e: &E, op: Op) {
    match op {
        Op::ConnectWith(c, k) => {
            e.connect_with(c, Caps(k), ());
        }
        Op::DisconnectIf(c, stale) => {
            e.disconnect_if(c, pick(e, c, stale));
        }
        Op::SubscribeIf(t, c, stale) => {
            let _ = e.subscribe_if(t, c, pick(e, c, stale));
        }
        Op::UnsubscribeIf(t, c, stale) => {
            e.unsubscribe_if(t, c, pick(e, c, stale));
        }
        Op::Connect(c, k) => {
            e.connect(c, Caps(k));
        }
        Op::Disconnect(c) => {
            e.disconnect(c);
        }
        Op::Subscribe(t, c) => {
            let _ = e.subscribe(t, c);
        }
        Op::Unsubscribe(t, c) => {
            e.unsubscribe(t, c);
        }
        Op::Thread(t) => {
            e.thread(t);
        }
        Op::RemoveThread(t) => {
            e.remove_thread(t);
        }
        Op::RemoveThreadIfIdle(t) => {
            e.remove_thread_if_idle(t);
        }
        Op::Drain => {}
    }
}

/// The changes `op` must make to a graph equal to `r`, in order.
fn expected(r: &Replica, op: Op) -> Vec<Change<u64, u64>> {
    match op {
        Op::Connect(c, k) if r.conns.get(&c) == Some(&Caps(k)) => Vec::new(),
        Op::Connect(c, k) => vec![Change::Connected { c, caps: Caps(k) }],
        Op::Disconnect(c) | Op::DisconnectIf(c, false) => r.disconnect_changes(c),
        // A stale incarnation changes nothing (guarantee 12).
        Op::DisconnectIf(_, true) | Op::SubscribeIf(_, _, true) | Op::UnsubscribeIf(_, _, true) => {
            Vec::new()
        }
        // The old incarnation ends exactly as `disconnect` ends it.
        Op::ConnectWith(c, k) => {
            let mut out = r.disconnect_changes(c);
            out.push(Change::Connected { c, caps: Caps(k) });
            out
        }
        Op::Subscribe(t, c) | Op::SubscribeIf(t, c, false)
            if !r.conns.contains_key(&c) || r.has_edge(t, c) =>
        {
            Vec::new()
        }
        Op::Subscribe(t, c) | Op::SubscribeIf(t, c, false) => {
            let mut out = Vec::new();
            if !r.threads.contains(&t) {
                out.push(Change::ThreadAdded { t });
            }
            out.push(Change::Subscribed { t, c });
            if !r.subs.contains_key(&t) {
                out.push(Change::Occupied { t });
            }
            out
        }
        Op::Unsubscribe(t, c) | Op::UnsubscribeIf(t, c, false) if r.has_edge(t, c) => {
            let mut out = vec![Change::Unsubscribed { t, c }];
            if r.subs[&t].len() == 1 {
                out.push(Change::Vacated { t });
            }
            out
        }
        Op::Unsubscribe(..) | Op::UnsubscribeIf(..) | Op::Drain => Vec::new(),
        Op::Thread(t) if r.threads.contains(&t) => Vec::new(),
        Op::Thread(t) => vec![Change::ThreadAdded { t }],
        Op::RemoveThread(t) => r.remove_thread_changes(t, false),
        Op::RemoveThreadIfIdle(t) => r.remove_thread_changes(t, true),
    }
}

fn fail(e: String) -> TestCaseError {
    TestCaseError::fail(e)
}

/// Every batch available now.
fn drain(feed: &mut ChangeFeed<u64, u64>) -> Result<Vec<Batch>, Lagged> {
    let mut out = Vec::new();
    while let Some(b) = feed.try_next()? {
        out.push(b);
    }
    Ok(out)
}

/// Runs one case; returns how often the lazy follower lagged.
fn run(log: usize, ops: &[Op], late_at: usize) -> Result<usize, TestCaseError> {
    let engine = E::with_config(Config::default().change_log(log));
    let (mut eager, mut feed) = Replica::resync(&engine);
    let (mut lazy, mut lazy_feed) = Replica::resync(&engine);
    let mut late: Option<(Replica, ChangeFeed<u64, u64>)> = None;
    let mut lags = 0;
    for (i, &op) in ops.iter().enumerate() {
        if i == late_at {
            late = Some(Replica::resync(&engine));
        }
        let want = expected(&eager, op);
        let before = engine.version();
        run_op(&engine, op);
        let batches =
            drain(&mut feed).map_err(|_| fail(format!("eager follower lagged at {op:?}")))?;
        if want.is_empty() {
            prop_assert!(
                batches.is_empty(),
                "{:?} changed nothing but published {:?}",
                op,
                batches
            );
            prop_assert_eq!(engine.version(), before, "no-op {:?} took a version", op);
        } else {
            prop_assert_eq!(batches.len(), 1, "{:?}: one batch per write", op);
            prop_assert_eq!(batches[0].version, before + 1);
            prop_assert_eq!(&batches[0].changes, &want, "changes of {:?}", op);
            prop_assert_eq!(engine.version(), before + 1);
        }
        for b in &batches {
            eager.apply(b).map_err(fail)?;
        }
        let snap = engine.snapshot();
        eager.check_eq(&snap).map_err(fail)?;
        prop_assert_eq!(
            counters(&engine.stats()),
            brute_force(&snap),
            "stats after {:?}",
            op
        );
        prop_assert_eq!(snap.subscription_count(), brute_force(&snap).4);
        if let Some((r, f)) = &mut late {
            let batches = drain(f).map_err(|_| fail("late follower lagged".into()))?;
            for b in &batches {
                r.apply(b).map_err(fail)?;
            }
            r.check_eq(&snap).map_err(fail)?;
        }
        if op == Op::Drain {
            let should_lag = snap.version() - lazy.version > log as u64;
            let mut lagged = false;
            loop {
                match lazy_feed.try_next() {
                    Ok(Some(b)) => lazy.apply(&b).map_err(fail)?,
                    Ok(None) => break,
                    Err(Lagged) => {
                        prop_assert!(!lagged, "lagged twice in one drain");
                        prop_assert_eq!(lazy_feed.try_next(), Err(Lagged), "lag is sticky");
                        lagged = true;
                        (lazy, lazy_feed) = Replica::resync(&engine);
                    }
                }
            }
            prop_assert_eq!(lagged, should_lag, "lag with change_log {}", log);
            lags += usize::from(lagged);
            lazy.check_eq(&snap).map_err(fail)?;
        }
    }
    Ok(lags)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CONNS, 0..CAPS).prop_map(|(c, k)| Op::Connect(c, k)),
        1 => (0..CONNS).prop_map(Op::Disconnect),
        6 => (0..THREADS, 0..CONNS).prop_map(|(t, c)| Op::Subscribe(t, c)),
        3 => (0..THREADS, 0..CONNS).prop_map(|(t, c)| Op::Unsubscribe(t, c)),
        1 => (0..THREADS).prop_map(Op::Thread),
        1 => (0..THREADS).prop_map(Op::RemoveThread),
        2 => (0..THREADS).prop_map(Op::RemoveThreadIfIdle),
        2 => (0..CONNS, 0..CAPS).prop_map(|(c, k)| Op::ConnectWith(c, k)),
        1 => (0..CONNS, any::<bool>()).prop_map(|(c, s)| Op::DisconnectIf(c, s)),
        3 => (0..THREADS, 0..CONNS, any::<bool>()).prop_map(|(t, c, s)| Op::SubscribeIf(t, c, s)),
        2 => (0..THREADS, 0..CONNS, any::<bool>()).prop_map(|(t, c, s)| Op::UnsubscribeIf(t, c, s)),
        2 => Just(Op::Drain),
    ]
}

#[test]
fn smoke() {
    use Op::*;
    let ops = [
        Connect(1, 1),
        Subscribe(3, 1),
        Subscribe(3, 2), // not connected: nothing
        Connect(2, 3),
        Connect(2, 3), // same caps: nothing
        Subscribe(3, 2),
        Drain,
        Connect(2, 1), // new caps
        Thread(4),
        Subscribe(4, 2),
        Disconnect(2), // 4 vacated, 3 keeps 1
        RemoveThreadIfIdle(4),
        RemoveThread(3), // with a subscriber
        RemoveThread(3), // unknown: nothing
        Drain,
        ConnectWith(5, 0),        // new: Connected only
        SubscribeIf(6, 5, false), // current incarnation
        SubscribeIf(7, 5, true),  // stale: nothing
        ConnectWith(5, 2),        // replaces: Unsubscribed, Vacated, Disconnected, Connected
        DisconnectIf(5, true),    // stale: nothing
        DisconnectIf(5, false),
        Drain,
    ];
    run(2, &ops, 5).unwrap();
    run(Config::DEFAULT_CHANGE_LOG, &ops, 0).unwrap();
}

/// The checks have teeth: a follower that skips one batch is caught.
#[test]
fn a_skipped_batch_is_caught() {
    let engine = E::new();
    let (mut r, mut feed) = Replica::resync(&engine);
    engine.connect(1, Caps::NONE);
    engine.connect(2, Caps::NONE);
    feed.try_next().unwrap().unwrap(); // skipped
    let second = feed.try_next().unwrap().unwrap();
    assert!(r.apply(&second).is_err());
    assert!(r.check_eq(&engine.snapshot()).is_err());
}

#[test]
fn replica_law_holds_for_random_ops() {
    let strategy = (
        // 1-3: one batch per stripe; 5 and 8: several per stripe, and 5
        // keeps more than its window (the window still decides the lag).
        prop_oneof![
            Just(1usize),
            Just(2),
            Just(3),
            Just(5),
            Just(8),
            Just(Config::DEFAULT_CHANGE_LOG)
        ],
        prop::collection::vec(op(), 1..=MAX_OPS),
        0..MAX_OPS,
    );
    let lags = std::sync::Mutex::new(0usize);
    let config = RunnerConfig {
        cases: CASES,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    TestRunner::new(config)
        .run(&strategy, |(log, ops, late_at)| {
            *lags.lock().unwrap() += run(log, &ops, late_at)?;
            Ok(())
        })
        .unwrap();
    // The lag-and-resync path was really exercised.
    let lags = *lags.lock().unwrap();
    eprintln!("lazy follower lagged and resynced {lags} times");
    assert!(lags > 0);
}

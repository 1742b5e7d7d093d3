//! Versions, the change feed and `Stats`: numbering, the retention window,
//! `Lagged`, waiting, and the O(1) counters. The replica law over random
//! sequences is in `replica.rs`, the concurrent checks in `change_stress.rs`.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Change, ChangeBatch, Config, Engine, Lagged};

type E = Engine<u64, u64>;

/// Long enough never to expire on a loaded machine.
const LONG: Duration = Duration::from_secs(10);

fn batch(version: u64, changes: Vec<Change<u64, u64>>) -> Option<ChangeBatch<u64, u64>> {
    Some(ChangeBatch { version, changes })
}

#[test]
fn smoke() {
    let e = E::new();
    let mut feed = e.changes();
    e.connect(1, Caps(2));
    assert_eq!(
        feed.try_next(),
        Ok(batch(
            1,
            vec![Change::Connected {
                c: 1,
                caps: Caps(2)
            }]
        ))
    );
    assert_eq!(feed.try_next(), Ok(None));
    assert_eq!(
        (e.version(), e.snapshot().version(), feed.version()),
        (1, 1, 1)
    );
}

/// One write, for a table of writes.
type Step<'a> = &'a dyn Fn(&E);

#[test]
fn versions_count_real_changes_only() {
    let e = E::new();
    assert_eq!(e.version(), 0);
    let steps: [(Step, u64); 16] = [
        (
            &|e| {
                let _ = e.connect(1, Caps::NONE);
            },
            1,
        ),
        (
            &|e| {
                let _ = e.connect(1, Caps::NONE);
            },
            0,
        ), // same caps
        (
            &|e| {
                let _ = e.connect(1, Caps(1));
            },
            1,
        ), // new caps
        (
            &|e| {
                let _ = e.disconnect(9);
            },
            0,
        ), // unknown
        (
            &|e| {
                let _ = e.subscribe(5, 1);
            },
            1,
        ),
        (
            &|e| {
                let _ = e.subscribe(5, 1);
            },
            0,
        ), // duplicate
        (
            &|e| {
                let _ = e.subscribe(5, 9);
            },
            0,
        ), // not connected
        (
            &|e| {
                let _ = e.unsubscribe(6, 1);
            },
            0,
        ),
        (
            &|e| {
                let _ = e.thread(5);
            },
            0,
        ), // exists
        (
            &|e| {
                let _ = e.thread(6);
            },
            1,
        ),
        (
            &|e| {
                let _ = e.remove_thread_if_idle(5);
            },
            0,
        ), // subscribed
        (
            &|e| {
                let _ = e.remove_thread(6);
            },
            1,
        ), // an entry with no edges
        (
            &|e| {
                let _ = e.remove_thread(6);
            },
            0,
        ), // unknown
        (
            &|e| {
                let _ = e.unsubscribe(5, 1);
            },
            1,
        ),
        (
            &|e| {
                let _ = e.remove_thread_if_idle(5);
            },
            1,
        ),
        (
            &|e| {
                let _ = e.disconnect(1);
            },
            1,
        ),
    ];
    let mut feed = e.changes();
    let mut version = 0;
    for (i, (step, publishes)) in steps.iter().enumerate() {
        step(&e);
        version += publishes;
        assert_eq!(e.version(), version, "step {i}");
        assert_eq!(e.stats().version, version, "step {i}");
        match feed.try_next().unwrap() {
            Some(b) => assert_eq!((b.version, *publishes), (version, 1), "step {i}"),
            None => assert_eq!(*publishes, 0, "step {i}"),
        }
    }
    e.clear_all_listeners(); // not a graph change
    assert_eq!(e.version(), version);
}

#[test]
fn disconnect_and_remove_thread_order_their_changes() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    for t in [30, 10, 20] {
        e.subscribe(t, 1).unwrap();
    }
    e.subscribe(20, 2).unwrap();
    let mut feed = e.changes();
    e.disconnect(1);
    let b = feed.try_next().unwrap().unwrap();
    assert_eq!(
        b.changes,
        [
            Change::Unsubscribed { t: 10, c: 1 },
            Change::Vacated { t: 10 },
            Change::Unsubscribed { t: 20, c: 1 },
            Change::Unsubscribed { t: 30, c: 1 },
            Change::Vacated { t: 30 },
            Change::Disconnected { c: 1 },
        ]
    );
    e.connect(3, Caps::NONE);
    e.subscribe(20, 3).unwrap();
    feed.try_next().unwrap();
    feed.try_next().unwrap();
    e.remove_thread(20);
    assert_eq!(
        feed.try_next().unwrap().unwrap().changes,
        [
            Change::Unsubscribed { t: 20, c: 2 },
            Change::Unsubscribed { t: 20, c: 3 },
            Change::Vacated { t: 20 },
            Change::ThreadRemoved { t: 20 },
        ]
    );
}

#[test]
fn changes_since_grants_exactly_the_retained_window() {
    let e = E::with_config(Config::default().change_log(3));
    for c in 0..10 {
        e.connect(c, Caps::NONE);
    }
    // Versions 8, 9, 10 are retained: a feed from 7 on gets them all.
    assert_eq!(e.changes_since(6).unwrap_err(), Lagged);
    for v in 7..=10 {
        let mut feed = e.changes_since(v).unwrap();
        let got: Vec<u64> = std::iter::from_fn(|| feed.try_next().unwrap())
            .map(|b| b.version)
            .collect();
        assert_eq!(got, (v + 1..=10).collect::<Vec<_>>());
    }
    assert_eq!(e.changes_since(11).unwrap_err(), Lagged); // the future
}

#[test]
fn a_feed_lags_once_its_next_batch_is_dropped_and_from_then_on() {
    let e = E::with_config(Config::default().change_log(2));
    let mut feed = e.changes();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    assert_eq!(feed.try_next().unwrap().unwrap().version, 1); // still retained
    e.connect(3, Caps::NONE);
    e.connect(4, Caps::NONE); // drops 2
    assert_eq!(feed.try_next(), Err(Lagged));
    assert_eq!(feed.next_timeout(Duration::ZERO), Err(Lagged));
    e.connect(5, Caps::NONE);
    assert_eq!(feed.try_next(), Err(Lagged));
    assert_eq!(feed.version(), 1);
    assert_eq!(feed.clone().try_next(), Err(Lagged));
}

#[test]
fn change_log_zero_keeps_nothing() {
    let e = E::with_config(Config::default().change_log(0));
    let mut feed = e.changes();
    assert_eq!(feed.try_next(), Ok(None));
    e.connect(1, Caps::NONE);
    assert_eq!(feed.try_next(), Err(Lagged));
    assert!(e.changes_since(0).is_err());
    let mut fresh = e.changes_since(1).unwrap();
    assert_eq!(fresh.try_next(), Ok(None));
    e.connect(2, Caps::NONE);
    assert_eq!(fresh.next_timeout(LONG), Err(Lagged));
}

#[test]
fn clones_are_independent_cursors() {
    let e = E::new();
    let mut a = e.changes();
    e.connect(1, Caps::NONE);
    let mut b = a.clone();
    assert_eq!(a.try_next().unwrap().unwrap().version, 1);
    assert_eq!(b.try_next().unwrap().unwrap().version, 1);
    assert_eq!(a.try_next(), Ok(None));
}

#[test]
fn next_timeout_times_out_and_is_woken_by_the_publish() {
    let e = Arc::new(E::new());
    let mut feed = e.changes();
    let start = Instant::now();
    assert_eq!(feed.next_timeout(Duration::from_millis(30)), Ok(None));
    assert!(start.elapsed() >= Duration::from_millis(30));

    let writer = {
        let e = Arc::clone(&e);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            e.connect(1, Caps::NONE);
        })
    };
    let got = feed.next_timeout(LONG).unwrap().unwrap();
    assert_eq!(got.version, 1);
    // Never visible before its version is published.
    assert!(e.snapshot().version() >= 1 && e.is_connected(1));
    writer.join().unwrap();
}

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    (Arc::clone(&count), Waker::from(count))
}

#[test]
fn poll_wakes_the_latest_waker_once_and_dropping_deregisters() {
    let e = E::new();
    let mut feed = e.changes();
    let (a, wa) = counting_waker();
    let (b, wb) = counting_waker();
    assert!(feed
        .poll_next_batch(&mut Context::from_waker(&wa))
        .is_pending());
    assert!(feed
        .poll_next_batch(&mut Context::from_waker(&wb))
        .is_pending());
    e.connect(1, Caps::NONE);
    assert_eq!(
        (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
        (0, 1)
    );
    match feed.poll_next_batch(&mut Context::from_waker(&wb)) {
        Poll::Ready(Ok(batch)) => assert_eq!(batch.version, 1),
        other => panic!("{other:?}"),
    }
    // Registered, then dropped: the next publish wakes nobody.
    assert!(feed
        .poll_next_batch(&mut Context::from_waker(&wa))
        .is_pending());
    drop(feed);
    e.connect(2, Caps::NONE);
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
    // Only the publish of the awaited version wakes: no spurious wake-up.
    let mut feed = e.changes();
    assert!(feed
        .poll_next_batch(&mut Context::from_waker(&wa))
        .is_pending());
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
    e.connect(2, Caps::NONE); // no-op
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
}

#[test]
fn many_short_lived_waiters_do_not_grow_the_waiter_list() {
    let e = E::new();
    let (count, w) = counting_waker();
    for _ in 0..1000 {
        let mut feed = e.changes();
        assert!(feed
            .poll_next_batch(&mut Context::from_waker(&w))
            .is_pending());
    }
    e.connect(1, Caps::NONE);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        0,
        "dropped feeds were woken"
    );
}

/// A feed registered for version `v` (in `v`'s stripe of the log) that
/// then takes `v` without polling (`try_next`) registers for `v + 1` in the
/// next stripe: it leaves the first one's list, so each publish wakes it
/// once and a dropped feed is woken by nothing.
#[test]
fn a_feed_moving_across_stripes_holds_one_registration() {
    let e = E::new();
    let mut feed = e.changes();
    let (count, w) = counting_waker();
    for v in 1..=100u64 {
        assert!(feed
            .poll_next_batch(&mut Context::from_waker(&w))
            .is_pending());
        e.connect(v, Caps::NONE);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            v as usize,
            "woken once each"
        );
        assert_eq!(feed.try_next().unwrap().unwrap().version, v);
    }
    assert!(feed
        .poll_next_batch(&mut Context::from_waker(&w))
        .is_pending());
    drop(feed);
    for c in 200..300 {
        e.connect(c, Caps::NONE);
    }
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        100,
        "a dropped feed was woken"
    );
}

#[test]
fn stats_and_snapshot_counts_are_the_graphs() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    e.subscribe(10, 1).unwrap();
    e.subscribe(10, 2).unwrap();
    e.subscribe(11, 2).unwrap();
    e.thread(12);
    let s = e.stats();
    let snap = e.snapshot();
    assert_eq!(
        (
            s.version,
            s.connections,
            s.threads,
            s.subscribed_threads,
            s.subscriptions
        ),
        (6, 2, 3, 2, 3)
    );
    assert_eq!(snap.subscription_count(), 3);
    assert_eq!(snap.version(), 6);
    e.disconnect(2);
    assert_eq!(e.stats().subscriptions, 1);
    assert_eq!(snap.subscription_count(), 3, "a snapshot never changes");
    e.remove_thread(10);
    assert_eq!(e.stats().subscriptions, 0);
    assert!(e.snapshot().validate().is_ok());
}

#[test]
fn a_feed_outlives_its_engine() {
    let e = E::new();
    let mut feed = e.changes();
    e.connect(1, Caps::NONE);
    drop(e);
    assert_eq!(feed.try_next().unwrap().unwrap().version, 1);
    assert_eq!(feed.next_timeout(Duration::from_millis(1)), Ok(None));
}

/// Planted bug this catches: `Stats` listener counters left unwired (always 0).
#[test]
fn stats_count_current_listeners_and_live_handles() {
    let e = E::new();
    let owner = Arc::new(());
    let (a, b) = (e.thread(1), e.thread(2));
    let counts = |e: &E| {
        let s = e.stats();
        (s.listeners, s.live_listener_handles)
    };
    assert_eq!(counts(&e), (0, 0));
    let first = a.set_listener(&owner);
    assert_eq!(counts(&e), (1, 1));
    let second = a.set_listener(&owner); // replaces `first`, which stays alive
    assert_eq!(counts(&e), (1, 2));
    let other = b.set_listener(&owner);
    assert_eq!(counts(&e), (2, 3));
    drop(first); // a replaced handle: the slot stays
    assert_eq!(counts(&e), (2, 2));
    a.clear_listener(); // the handle lives on, the slot is empty
    assert_eq!(counts(&e), (1, 2));
    drop(second);
    drop(other); // a dropped current listener clears its slot
    assert_eq!(counts(&e), (0, 0));
}

//! Has-subscribers watches: `Engine::watch_subscribers` and `SubscriberWatch`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Engine, WatchError};

type E = Engine<u64, u64>;

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(20);

fn engine_with(conns: &[u64]) -> E {
    let e = E::new();
    for &c in conns {
        e.connect(c, Caps::NONE);
    }
    e
}

#[test]
fn smoke() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    assert!(!w.get());
    assert!(!w.is_closed());
    e.subscribe(10, 1).unwrap();
    assert!(w.get());
    assert_eq!(w.wait_changed(LONG), Ok(true));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn unknown_thread_has_no_watch() {
    let e = engine_with(&[1]);
    assert!(e.watch_subscribers(10).is_none());
    // A failed subscribe creates nothing to watch.
    assert!(e.subscribe(10, 2).is_err());
    assert!(e.watch_subscribers(10).is_none());
    e.thread(10);
    assert!(e.watch_subscribers(10).is_some());
    e.remove_thread(10);
    assert!(e.watch_subscribers(10).is_none());
}

#[test]
fn get_false_initially_then_subscribe_bumps_once() {
    let e = engine_with(&[1, 2]);
    e.thread(10);
    let w = e.watch_subscribers(10).unwrap();
    assert!(!w.get());
    let v0 = w.version();

    e.subscribe(10, 1).unwrap();
    assert!(w.get());
    assert_eq!(w.version(), v0 + 1);

    // Second subscriber: no change of has-subscribers, no bump.
    e.subscribe(10, 2).unwrap();
    assert!(w.get());
    assert_eq!(w.version(), v0 + 1);
    // Idempotent subscribe: no bump.
    e.subscribe(10, 1).unwrap();
    assert_eq!(w.version(), v0 + 1);
    // Unsubscribing one of two: no bump.
    assert!(e.unsubscribe(10, 2));
    assert!(w.get());
    assert_eq!(w.version(), v0 + 1);
    // Unsubscribing a non-edge: no bump.
    assert!(!e.unsubscribe(10, 2));
    assert_eq!(w.version(), v0 + 1);

    // Last one leaves: false and a bump.
    assert!(e.unsubscribe(10, 1));
    assert!(!w.get());
    assert_eq!(w.version(), v0 + 2);
}

#[test]
fn unrelated_writes_do_not_bump() {
    let e = engine_with(&[1, 2]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let v0 = w.version();
    e.subscribe(11, 1).unwrap();
    e.connect(3, Caps(1));
    e.connect(1, Caps(2));
    e.thread(12);
    e.unsubscribe(11, 1);
    e.disconnect(2);
    e.remove_thread(11);
    assert_eq!(w.version(), v0);
    assert!(!w.get());
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn disconnect_of_last_subscriber_bumps() {
    let e = engine_with(&[1, 2]);
    e.subscribe(10, 1).unwrap();
    e.subscribe(10, 2).unwrap();
    let mut w = e.watch_subscribers(10).unwrap();
    let v0 = w.version();
    assert!(w.get());
    e.disconnect(1);
    assert_eq!(w.version(), v0);
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
    e.disconnect(2);
    assert!(!w.get());
    assert_eq!(w.version(), v0 + 1);
    assert_eq!(w.wait_changed(LONG), Ok(false));
}

#[test]
fn wait_changed_after_change_and_timeout_without() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let t0 = Instant::now();
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
    assert!(t0.elapsed() >= SHORT);

    e.subscribe(10, 1).unwrap();
    assert_eq!(w.wait_changed(LONG), Ok(true));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));

    e.unsubscribe(10, 1);
    assert_eq!(w.wait_changed(LONG), Ok(false));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn get_and_version_do_not_mark_seen() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    e.subscribe(10, 1).unwrap();
    assert!(w.get());
    let _ = w.version();
    assert!(w.get());
    assert_eq!(w.wait_changed(LONG), Ok(true));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn coalescing_three_flips() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let v0 = w.version();
    e.subscribe(10, 1).unwrap();
    e.unsubscribe(10, 1);
    e.subscribe(10, 1).unwrap();
    assert_eq!(w.version(), v0 + 3);
    assert_eq!(w.wait_changed(LONG), Ok(true));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn coalescing_two_flips_reports_latest_even_if_equal_to_start() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let v0 = w.version();
    e.subscribe(10, 1).unwrap();
    e.unsubscribe(10, 1);
    assert_eq!(w.version(), v0 + 2);
    assert!(!w.get());
    // The version moved, so the latest value is reported once.
    assert_eq!(w.wait_changed(LONG), Ok(false));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn new_watch_has_seen_current_version() {
    let e = engine_with(&[1]);
    e.subscribe(10, 1).unwrap();
    let mut w = e.watch_subscribers(10).unwrap();
    assert!(w.get());
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));

    // Even after many changes before its creation.
    for _ in 0..5 {
        e.unsubscribe(10, 1);
        e.subscribe(10, 1).unwrap();
    }
    let mut w2 = e.watch_subscribers(10).unwrap();
    assert_eq!(w2.wait_changed(SHORT), Err(WatchError::Timeout));
    // The old one has changes to report.
    assert_eq!(w.wait_changed(LONG), Ok(true));
    // Both watches read the same version.
    assert_eq!(w.version(), w2.version());
}

#[test]
fn remove_thread_closes_watch_after_pending_changes() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    e.subscribe(10, 1).unwrap();
    e.unsubscribe(10, 1);
    assert!(!w.is_closed());
    assert!(e.remove_thread(10));
    assert!(w.is_closed());
    // Pending change first, then closed — and closed stays closed.
    assert_eq!(w.wait_changed(LONG), Ok(false));
    let t0 = Instant::now();
    assert_eq!(w.wait_changed(LONG), Err(WatchError::Closed));
    assert_eq!(w.wait_changed(LONG), Err(WatchError::Closed));
    assert!(t0.elapsed() < Duration::from_secs(2), "closed watch waited");
    assert!(w.is_closed());
}

#[test]
fn remove_thread_with_subscribers_reports_false_then_closed() {
    let e = engine_with(&[1, 2]);
    e.subscribe(10, 1).unwrap();
    e.subscribe(10, 2).unwrap();
    let mut w = e.watch_subscribers(10).unwrap();
    let v0 = w.version();
    assert!(w.get());
    assert!(e.remove_thread(10));
    // The thread lost its subscribers: a real true -> false change.
    assert!(w.is_closed());
    assert!(!w.get());
    assert_eq!(w.version(), v0 + 1);
    assert_eq!(w.wait_changed(LONG), Ok(false));
    assert_eq!(w.wait_changed(LONG), Err(WatchError::Closed));
}

#[test]
fn remove_thread_closes_watch_without_pending_changes() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    assert!(e.remove_thread(10));
    assert!(w.is_closed());
    let t0 = Instant::now();
    assert_eq!(w.wait_changed(LONG), Err(WatchError::Closed));
    assert!(t0.elapsed() < Duration::from_secs(2), "closed watch waited");
}

#[test]
fn remove_thread_if_idle_closes_watch() {
    let e = engine_with(&[1]);
    e.subscribe(10, 1).unwrap();
    let mut w = e.watch_subscribers(10).unwrap();
    assert!(!e.remove_thread_if_idle(10));
    assert!(!w.is_closed());
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
    e.unsubscribe(10, 1);
    assert!(e.remove_thread_if_idle(10));
    assert!(w.is_closed());
    assert_eq!(w.wait_changed(LONG), Ok(false));
    assert_eq!(w.wait_changed(LONG), Err(WatchError::Closed));
}

#[test]
fn recreated_thread_gets_a_fresh_watch() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut old = e.watch_subscribers(10).unwrap();
    e.remove_thread(10);
    e.thread(10);
    let mut new = e.watch_subscribers(10).unwrap();
    assert!(!new.is_closed());
    e.subscribe(10, 1).unwrap();
    assert_eq!(new.wait_changed(LONG), Ok(true));
    assert!(old.is_closed());
    assert_eq!(old.wait_changed(LONG), Err(WatchError::Closed));
}

#[test]
fn cloned_watch() {
    let e = engine_with(&[1]);
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let mut w2 = w.clone();
    assert_eq!(w.version(), w2.version());
    e.subscribe(10, 1).unwrap();
    assert!(w2.get());
    assert_eq!(w.version(), w2.version());
    // Each clone reports the change once, independently.
    assert_eq!(w.wait_changed(LONG), Ok(true));
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
    assert_eq!(w2.wait_changed(LONG), Ok(true));
    assert_eq!(w2.wait_changed(SHORT), Err(WatchError::Timeout));
    // A clone taken after w saw the change has seen it too.
    let mut w3 = w.clone();
    assert_eq!(w3.wait_changed(SHORT), Err(WatchError::Timeout));
    e.unsubscribe(10, 1);
    e.remove_thread(10);
    assert!(w.is_closed() && w2.is_closed() && w3.is_closed());
    assert_eq!(w3.wait_changed(LONG), Ok(false));
    assert_eq!(w3.wait_changed(LONG), Err(WatchError::Closed));
}

#[test]
fn waiter_on_other_thread_is_woken_by_subscribe() {
    let e = Arc::new(engine_with(&[1]));
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = w.wait_changed(LONG);
        (r, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    e.subscribe(10, 1).unwrap();
    let (r, took) = h.join().unwrap();
    assert_eq!(r, Ok(true));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn waiter_on_other_thread_is_woken_by_remove() {
    let e = Arc::new(engine_with(&[1]));
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = w.wait_changed(LONG);
        (r, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    e.remove_thread(10);
    let (r, took) = h.join().unwrap();
    assert_eq!(r, Err(WatchError::Closed));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn watcher_sees_latest_value_under_churn() {
    let e = Arc::new(engine_with(&[1]));
    e.thread(10);
    let mut w = e.watch_subscribers(10).unwrap();
    let e2 = Arc::clone(&e);
    let writer = std::thread::spawn(move || {
        for _ in 0..500 {
            e2.subscribe(10, 1).unwrap();
            e2.unsubscribe(10, 1);
        }
        e2.subscribe(10, 1).unwrap();
    });
    let mut last = None;
    let mut seen = 0;
    loop {
        match w.wait_changed(Duration::from_millis(200)) {
            Ok(v) => {
                last = Some(v);
                seen += 1;
                // The value reported is the one published with that version.
                assert!(seen <= 1001);
            }
            Err(WatchError::Timeout) => break,
            Err(WatchError::Closed) => panic!("closed"),
        }
    }
    writer.join().unwrap();
    // Drain anything that came after the last timeout.
    while let Ok(v) = w.wait_changed(SHORT) {
        last = Some(v);
    }
    assert_eq!(last, Some(true));
    assert!(w.get());
    assert_eq!(w.wait_changed(SHORT), Err(WatchError::Timeout));
}

#[test]
fn get_and_mark_seen_consumes_the_current_version() {
    let e: Engine<u64, u64> = Engine::new();
    e.connect(1, Caps::NONE);
    e.thread(7);
    let mut w = e.watch_subscribers(7).unwrap();
    e.subscribe(7, 1).unwrap();
    // The change is pending; marking it seen returns the value and consumes it.
    assert!(w.get_and_mark_seen());
    assert_eq!(
        w.wait_changed(Duration::from_millis(20)),
        Err(WatchError::Timeout)
    );
    e.unsubscribe(7, 1);
    assert_eq!(w.wait_changed(Duration::from_secs(5)), Ok(false));
}

#[test]
fn entry_watch_stays_with_its_entry() {
    let e: Engine<u64, u64> = Engine::new();
    e.connect(1, Caps::NONE);
    let old = e.thread(7);
    let mut w = old.watch_subscribers();
    assert!(e.remove_thread(7));
    assert!(w.is_closed());
    // A new thread under the same id does not reopen the old entry's watch.
    e.subscribe(7, 1).unwrap();
    assert!(!w.get());
    assert_eq!(
        w.wait_changed(Duration::from_secs(5)),
        Err(WatchError::Closed)
    );
    let mut fresh = e.get_thread(7).unwrap().watch_subscribers();
    assert!(fresh.get_and_mark_seen());
}

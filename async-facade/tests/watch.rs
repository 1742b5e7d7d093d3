//! `SubscriberWatchExt`: `changed()` and `into_stream()`.

mod common;

use common::{Probe, SETTLE};
use futures::executor::block_on;
use futures::stream::FusedStream;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine, WatchError};

type E = Engine<u64, u64>;

fn engine_with_thread(t: u64) -> E {
    let e = E::new();
    e.thread(t);
    e
}

#[test]
fn smoke() {
    let e = engine_with_thread(7);
    let mut w = e.watch_subscribers(7).unwrap();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    assert_eq!(block_on(w.changed()), Ok(true));
}

#[test]
fn changed_is_pending_then_woken_exactly_by_the_change() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let mut w = e.watch_subscribers(7).unwrap();
    let p = Probe::new();
    let mut fut = w.changed();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    assert_eq!(p.wakes(), 0);

    e.subscribe(7, 1).unwrap();
    assert_eq!(p.wakes(), 1);
    // A second subscriber does not change has-subscribers: no extra wake.
    e.subscribe(7, 2).unwrap();
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut fut), Poll::Ready(Ok(true)));
}

#[test]
fn never_woken_without_a_change() {
    let e = engine_with_thread(7);
    e.thread(8);
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut w = e.watch_subscribers(7).unwrap();
    let p = Probe::new();
    let mut fut = w.changed();
    assert_eq!(p.poll(&mut fut), Poll::Pending);

    // None of these flips thread 7's has-subscribers state.
    e.subscribe(7, 2).unwrap();
    e.unsubscribe(7, 2);
    e.subscribe(8, 1).unwrap();
    e.subscribe(8, 2).unwrap();
    e.disconnect(2);
    e.connect(3, Caps(1));
    e.subscribe(7, 1).unwrap(); // duplicate
    e.remove_thread(8);
    assert_eq!(e.watch_subscribers(8).map(|w| w.get()), None);
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll(&mut fut), Poll::Pending);

    e.disconnect(1);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut fut), Poll::Ready(Ok(false)));
}

#[test]
fn closed_after_every_change_is_reported() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut w = e.watch_subscribers(7).unwrap();
    let p = Probe::new();
    {
        let mut fut = w.changed();
        assert_eq!(p.poll(&mut fut), Poll::Pending);
        e.remove_thread(7); // flips to false, then closes: one wake-up
        assert_eq!(p.wakes(), 1);
        assert_eq!(p.poll(&mut fut), Poll::Ready(Ok(false)));
    }
    assert_eq!(
        p.poll(&mut w.changed()),
        Poll::Ready(Err(WatchError::Closed))
    );
    assert_eq!(
        p.poll(&mut w.changed()),
        Poll::Ready(Err(WatchError::Closed))
    );
}

#[test]
fn changes_coalesce_to_the_latest_value() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut w = e.watch_subscribers(7).unwrap();
    e.subscribe(7, 1).unwrap();
    e.unsubscribe(7, 1);
    e.subscribe(7, 1).unwrap();
    let p = Probe::new();
    assert_eq!(p.poll(&mut w.changed()), Poll::Ready(Ok(true)));
    assert_eq!(p.poll(&mut w.changed()), Poll::Pending);
}

#[test]
fn every_waiter_is_woken() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let w = e.watch_subscribers(7).unwrap();
    let mut watches: Vec<_> = (0..4).map(|_| w.clone()).collect();
    let probes: Vec<_> = (0..4).map(|_| Probe::new()).collect();
    let mut futs: Vec<_> = watches.iter_mut().map(|w| w.changed()).collect();
    for (p, f) in probes.iter().zip(&mut futs) {
        assert_eq!(p.poll(f), Poll::Pending);
    }
    e.subscribe(7, 1).unwrap();
    for (p, f) in probes.iter().zip(&mut futs) {
        assert_eq!(p.wakes(), 1);
        assert_eq!(p.poll(f), Poll::Ready(Ok(true)));
    }
}

#[test]
fn dropping_a_pending_changed_loses_no_change() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut w = e.watch_subscribers(7).unwrap();
    let p = Probe::new();
    assert_eq!(p.poll(&mut w.changed()), Poll::Pending); // dropped pending
    e.subscribe(7, 1).unwrap();
    // The change is still unseen by this watch.
    let fresh = Probe::new();
    assert_eq!(fresh.poll(&mut w.changed()), Poll::Ready(Ok(true)));
    assert_eq!(fresh.wakes(), 0);
}

#[test]
#[allow(clippy::drop_non_drop)] // the drop is the point: cancelling a waiter
fn a_dropped_waiter_does_not_steal_the_wake_up() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let w = e.watch_subscribers(7).unwrap();
    let (mut a, mut b) = (w.clone(), w);
    let (pa, pb) = (Probe::new(), Probe::new());
    let mut fa = a.changed();
    assert_eq!(pa.poll(&mut fa), Poll::Pending);
    let mut fb = b.changed();
    assert_eq!(pb.poll(&mut fb), Poll::Pending);
    drop(fa);
    e.subscribe(7, 1).unwrap();
    assert_eq!(pb.wakes(), 1);
    assert_eq!(pb.poll(&mut fb), Poll::Ready(Ok(true)));
}

#[test]
fn stream_yields_current_value_then_each_change_then_ends() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut s = e.watch_subscribers(7).unwrap().into_stream();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(false)));
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    e.connect(2, Caps::NONE); // unrelated
    assert_eq!(p.wakes(), 0);

    e.subscribe(7, 1).unwrap();
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(true)));
    assert_eq!(p.poll_next(&mut s), Poll::Pending);

    e.remove_thread(7);
    assert_eq!(p.wakes(), 2);
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(false)));
    assert!(!s.is_terminated());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));
    assert!(s.is_terminated());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));
}

#[test]
fn stream_first_item_is_the_value_at_first_poll_not_at_creation() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut s = e.watch_subscribers(7).unwrap().into_stream();
    e.subscribe(7, 1).unwrap();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(true)));
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    assert_eq!(p.wakes(), 0);
}

#[test]
fn stream_items_always_differ() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut s = e.watch_subscribers(7).unwrap().into_stream();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(false)));
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    // Flip and flip back before the consumer looks: coalesced away.
    e.subscribe(7, 1).unwrap();
    e.unsubscribe(7, 1);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    e.subscribe(7, 1).unwrap();
    assert_eq!(p.wakes(), 2);
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(true)));
}

#[test]
fn stream_of_a_removed_thread_yields_its_final_value_and_ends() {
    let e = engine_with_thread(7);
    let w = e.watch_subscribers(7).unwrap();
    e.remove_thread(7);
    let all: Vec<bool> = block_on(w.into_stream().collect());
    assert_eq!(all, [false]);
}

#[test]
fn dropping_a_pending_stream_next_loses_no_change() {
    let e = engine_with_thread(7);
    e.connect(1, Caps::NONE);
    let mut s = e.watch_subscribers(7).unwrap().into_stream();
    let p = Probe::new();
    assert_eq!(p.poll(&mut s.next()), Poll::Ready(Some(false)));
    assert_eq!(p.poll(&mut s.next()), Poll::Pending); // dropped pending
    e.subscribe(7, 1).unwrap();
    assert_eq!(p.poll(&mut s.next()), Poll::Ready(Some(true)));
}

#[test]
fn cross_thread_waiters_are_all_woken() {
    let e = Arc::new(engine_with_thread(7));
    e.connect(1, Caps::NONE);
    let w = e.watch_subscribers(7).unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut w = w.clone();
            std::thread::spawn(move || block_on(w.changed()))
        })
        .collect();
    std::thread::sleep(SETTLE);
    e.subscribe(7, 1).unwrap();
    for h in waiters {
        assert_eq!(h.join().unwrap(), Ok(true));
    }
}

#[test]
fn cross_thread_stream_ends_on_the_latest_value() {
    const FLIPS: u64 = 1_000;
    let e = Arc::new(engine_with_thread(7));
    e.connect(1, Caps::NONE);
    let s = e.watch_subscribers(7).unwrap().into_stream();
    let consumer = std::thread::spawn(move || block_on(s.collect::<Vec<bool>>()));
    for _ in 0..FLIPS {
        e.subscribe(7, 1).unwrap();
        e.unsubscribe(7, 1);
    }
    e.subscribe(7, 1).unwrap();
    e.remove_thread(7);
    let seen = consumer.join().unwrap();
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
    // The removal unsubscribes: the stream ends on `false`.
    assert_eq!(seen.last(), Some(&false));
}

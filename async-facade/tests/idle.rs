//! `EngineExt::wait_idle`.

mod common;

use common::{Probe, SETTLE};
use futures::executor::block_on;
use futures::future::FusedFuture;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine};

type E = Engine<u64, u64>;

#[test]
fn smoke() {
    let e = E::new();
    block_on(e.wait_idle(1)); // unknown thread
    e.thread(1);
    block_on(e.wait_idle(1)); // no subscribers
}

#[test]
fn ready_at_once_when_unknown_or_idle() {
    let e = E::new();
    let p = Probe::new();
    let mut unknown = e.wait_idle(1);
    assert!(!unknown.is_terminated());
    assert_eq!(p.poll(&mut unknown), Poll::Ready(()));
    assert!(unknown.is_terminated());
    e.thread(1);
    assert_eq!(p.poll(&mut e.wait_idle(1)), Poll::Ready(()));
    assert_eq!(p.wakes(), 0);
}

#[test]
fn pending_then_woken_exactly_by_the_last_unsubscribe() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    e.connect(3, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    e.subscribe(7, 2).unwrap();
    let mut idle = e.wait_idle(7);
    let p = Probe::new();
    assert_eq!(p.poll(&mut idle), Poll::Pending);

    // Still subscribed after each of these.
    e.subscribe(7, 3).unwrap();
    e.disconnect(1);
    e.unsubscribe(7, 2);
    e.subscribe(8, 3).unwrap();
    e.remove_thread(8);
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll(&mut idle), Poll::Pending);

    e.unsubscribe(7, 3);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut idle), Poll::Ready(()));
    assert!(e.remove_thread_if_idle(7));
}

#[test]
fn woken_by_removal() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut idle = e.wait_idle(7);
    let p = Probe::new();
    assert_eq!(p.poll(&mut idle), Poll::Pending);
    e.remove_thread(7);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut idle), Poll::Ready(()));
}

#[test]
fn not_idle_if_resubscribed_before_the_poll() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut idle = e.wait_idle(7);
    let p = Probe::new();
    assert_eq!(p.poll(&mut idle), Poll::Pending);
    e.unsubscribe(7, 1);
    e.subscribe(7, 1).unwrap();
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut idle), Poll::Pending); // subscribed again
    e.disconnect(1);
    assert_eq!(p.wakes(), 2);
    assert_eq!(p.poll(&mut idle), Poll::Ready(()));
}

#[test]
fn every_waiter_is_woken_and_a_dropped_one_steals_nothing() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let probes: Vec<_> = (0..4).map(|_| Probe::new()).collect();
    let mut futs: Vec<_> = (0..4).map(|_| e.wait_idle(7)).collect();
    for (p, f) in probes.iter().zip(&mut futs) {
        assert_eq!(p.poll(f), Poll::Pending);
    }
    drop(futs.remove(0));
    e.disconnect(1);
    for (p, f) in probes[1..].iter().zip(&mut futs) {
        assert_eq!(p.wakes(), 1);
        assert_eq!(p.poll(f), Poll::Ready(()));
    }
}

#[test]
fn cross_thread_waiters_are_all_woken_and_one_unloads() {
    let e = Arc::new(E::new());
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let idle = e.wait_idle(7);
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                block_on(idle);
                e.remove_thread_if_idle(7)
            })
        })
        .collect();
    std::thread::sleep(SETTLE);
    e.disconnect(1);
    let unloads: Vec<bool> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    // Every waiter woke; exactly one of them unloaded the thread.
    assert_eq!(unloads.iter().filter(|&&u| u).count(), 1, "{unloads:?}");
    assert!(e.get_thread(7).is_none());
}

/// Known to catch: a completed `WaitIdle` that is ready again when polled
/// again (it was, for a thread unknown when it was made, and `done` was
/// never consulted), so a `select!` loop polling it by `&mut` fired twice.
#[test]
fn a_completed_wait_idle_stays_completed() {
    let e = E::new();
    let p = Probe::new();
    let mut unknown = e.wait_idle(1);
    assert_eq!(p.poll(&mut unknown), Poll::Ready(()));
    assert!(unknown.is_terminated());
    assert_eq!(p.poll(&mut unknown), Poll::Pending, "ready again");
    assert!(unknown.is_terminated());

    e.connect(1, Caps::NONE);
    let room = e.subscribe(7, 1).unwrap();
    let mut by_id = e.wait_idle(7);
    let mut by_entry = room.wait_idle();
    assert_eq!(p.poll(&mut by_id), Poll::Pending);
    assert_eq!(p.poll(&mut by_entry), Poll::Pending);
    assert!(!by_id.is_terminated() && !by_entry.is_terminated());
    e.disconnect(1);
    for idle in [&mut by_id, &mut by_entry] {
        assert_eq!(p.poll(idle), Poll::Ready(()));
        assert!(idle.is_terminated());
        assert_eq!(p.poll(idle), Poll::Pending, "ready again");
    }
}

#[test]
fn entry_keyed_wait_idle_waits_for_the_last_subscriber() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let room = e.subscribe(7, 1).unwrap();
    e.subscribe(7, 2).unwrap();
    let p = Probe::new();
    let mut idle = room.wait_idle();
    assert_eq!(p.poll(&mut idle), Poll::Pending);
    e.disconnect(1); // still subscribed: no wake-up
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll(&mut idle), Poll::Pending);
    e.unsubscribe(7, 2);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut idle), Poll::Ready(()));
    assert!(e.remove_entry_if_idle(&room));
}

/// Known to catch: an entry-keyed wait that looks the id up again (it
/// would wait on a re-created entry of the same id).
#[test]
fn entry_keyed_wait_idle_follows_its_own_entry() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let old = e.subscribe(7, 1).unwrap();
    let p = Probe::new();
    let mut idle = old.wait_idle();
    assert_eq!(p.poll(&mut idle), Poll::Pending);
    assert!(e.remove_thread(7)); // removal ends the wait...
    assert_eq!(p.wakes(), 1);
    let new = e.subscribe(7, 1).unwrap(); // ...even as the id comes back, busy
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(p.poll(&mut idle), Poll::Ready(()));
    // A fresh wait on the old entry is ready at once; on the id, it waits.
    assert_eq!(p.poll(&mut old.wait_idle()), Poll::Ready(()));
    assert_eq!(p.poll(&mut e.wait_idle(7)), Poll::Pending);
    assert_eq!(p.poll(&mut new.wait_idle()), Poll::Pending);
    assert!(!e.remove_entry_if_idle(&old));
}

//! `CancelTokenExt::cancelled`.

mod common;

use common::{Probe, SETTLE};
use futures::executor::block_on;
use futures::future::FusedFuture;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine};

type E = Engine<u64, u64, (), u32>;

#[test]
fn smoke() {
    let e = E::new();
    let entry = e.thread(1);
    let token_listener = entry.set_listener(&Arc::new(()));
    let token = token_listener.token();
    entry.clear_listener();
    block_on(token.cancelled());
}

#[test]
fn pending_then_woken_exactly_by_the_cancellation() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = listener.token().cancelled();
    let p = Probe::new();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    assert_eq!(p.poll(&mut fut), Poll::Pending);

    // Traffic that does not cancel this listener.
    entry.send(1).unwrap();
    e.connect(1, Caps::NONE);
    e.subscribe(1, 1).unwrap();
    e.disconnect(1);
    e.thread(2).set_listener(&Arc::new(()));
    e.thread(2).clear_listener();
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll(&mut fut), Poll::Pending);

    entry.clear_listener();
    assert_eq!(p.wakes(), 1);
    entry.clear_listener(); // fires once only
    e.remove_thread(1);
    assert_eq!(p.wakes(), 1);
    assert!(!fut.is_terminated());
    assert_eq!(p.poll(&mut fut), Poll::Ready(()));
    assert!(fut.is_terminated());
    // Complete: a further poll is `Pending` (the crate's completion rule).
    assert_eq!(p.poll(&mut fut), Poll::Pending);
}

#[test]
fn fired_by_replacement_and_by_removal() {
    let e = E::new();
    let entry = e.thread(1);
    let first_listener = entry.set_listener(&Arc::new(()));
    let first = first_listener.token();
    let p = Probe::new();
    let mut fut = first.cancelled();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    let second_listener = entry.set_listener(&Arc::new(()));
    let second = second_listener.token();
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut fut), Poll::Ready(()));

    let q = Probe::new();
    let mut fut = second.cancelled();
    assert_eq!(q.poll(&mut fut), Poll::Pending);
    e.remove_thread(1);
    assert_eq!(q.wakes(), 1);
    assert_eq!(q.poll(&mut fut), Poll::Ready(()));
}

#[test]
fn ready_at_once_when_already_fired() {
    let e = E::new();
    let entry = e.thread(1);
    let token_listener = entry.set_listener(&Arc::new(()));
    let token = token_listener.token();
    entry.clear_listener();
    let p = Probe::new();
    assert_eq!(p.poll(&mut token.cancelled()), Poll::Ready(()));
    assert_eq!(p.wakes(), 0);
}

#[test]
fn every_waiter_is_woken_and_a_dropped_one_steals_nothing() {
    let e = E::new();
    let entry = e.thread(1);
    let token_listener = entry.set_listener(&Arc::new(()));
    let token = token_listener.token();
    let probes: Vec<_> = (0..4).map(|_| Probe::new()).collect();
    let mut futs: Vec<_> = (0..4).map(|_| token.cancelled()).collect();
    for (p, f) in probes.iter().zip(&mut futs) {
        assert_eq!(p.poll(f), Poll::Pending);
    }
    let dropped = futs.remove(0);
    drop(dropped);
    entry.clear_listener();
    for (p, f) in probes[1..].iter().zip(&mut futs) {
        assert_eq!(p.wakes(), 1);
        assert_eq!(p.poll(f), Poll::Ready(()));
    }
}

#[test]
fn cross_thread_waiters_are_all_woken() {
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let token_listener = entry.set_listener(&Arc::new(()));
    let token = token_listener.token();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || block_on(token.cancelled()))
        })
        .collect();
    std::thread::sleep(SETTLE);
    entry.clear_listener();
    for w in waiters {
        w.join().unwrap();
    }
}

//! `PendingReplyExt::into_async`.

mod common;

use common::{Probe, SETTLE};
use futures::executor::block_on;
use futures::future::FusedFuture;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Engine, Reply, ReplyError};

enum Cmd {
    Echo(u32, Reply<u32>),
}

type E = Engine<u64, u64, (), Cmd>;

#[test]
fn smoke() {
    let e = E::new();
    let entry = e.thread(1);
    let mut commands = entry.set_listener(&Arc::new(())).into_stream();
    let answer = entry.request(|r| Cmd::Echo(4, r)).unwrap().into_async();
    block_on(async {
        let Some(Cmd::Echo(n, reply)) = commands.next().await else {
            panic!("no command")
        };
        reply.send(n);
        assert_eq!(answer.await, Ok(4));
    });
}

#[test]
fn pending_then_woken_exactly_by_the_answer() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    let p = Probe::new();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    assert_eq!(p.poll(&mut fut), Poll::Pending);

    // Another request's answer is not ours.
    let mut other = entry.request(|r| Cmd::Echo(2, r)).unwrap().into_async();
    let Ok(Cmd::Echo(_, first)) = listener.try_recv() else {
        panic!()
    };
    let Ok(Cmd::Echo(_, second)) = listener.try_recv() else {
        panic!()
    };
    second.send(20);
    assert_eq!(p.wakes(), 0);
    assert_eq!(Probe::new().poll(&mut other), Poll::Ready(Ok(20)));

    first.send(10);
    assert_eq!(p.wakes(), 1);
    assert!(!fut.is_terminated());
    assert_eq!(p.poll(&mut fut), Poll::Ready(Ok(10)));
    assert!(fut.is_terminated());
    // Polled again after it resolved: `Pending` (the crate's completion
    // rule), never a second answer.
    assert_eq!(p.poll(&mut fut), Poll::Pending);
}

#[test]
fn woken_with_an_error_when_the_reply_is_dropped() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    let p = Probe::new();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    drop(listener.try_recv());
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut fut), Poll::Ready(Err(ReplyError)));
}

#[test]
fn resolves_with_an_error_when_the_thread_is_removed_unanswered() {
    let e = E::new();
    let entry = e.thread(1);
    let commands = entry.set_listener(&Arc::new(())).into_stream();
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    let p = Probe::new();
    assert_eq!(p.poll(&mut fut), Poll::Pending);
    e.remove_thread(1);
    drop(commands); // the listener task ends without draining its queue
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut fut), Poll::Ready(Err(ReplyError)));
}

#[test]
fn polling_by_reference_loses_no_answer() {
    // As in a `select!` whose other branch wins: the future is kept and
    // polled again later.
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    let p = Probe::new();
    assert_eq!(p.poll(&mut &mut fut), Poll::Pending);
    let Ok(Cmd::Echo(n, reply)) = listener.try_recv() else {
        panic!()
    };
    reply.send(n + 1);
    assert_eq!(p.poll(&mut &mut fut), Poll::Ready(Ok(2)));
}

#[test]
fn dropping_the_future_abandons_the_request_quietly() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    assert_eq!(Probe::new().poll(&mut fut), Poll::Pending);
    drop(fut);
    let Ok(Cmd::Echo(n, reply)) = listener.try_recv() else {
        panic!()
    };
    reply.send(n); // nobody waits: dropped, no panic
}

#[test]
fn into_inner_gives_back_the_blocking_handle() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| Cmd::Echo(1, r)).unwrap().into_async();
    assert_eq!(Probe::new().poll(&mut fut), Poll::Pending);
    let Ok(Cmd::Echo(n, reply)) = listener.try_recv() else {
        panic!()
    };
    reply.send(n);
    assert_eq!(fut.into_inner().wait(), Ok(1));
}

#[test]
fn cross_thread_answers() {
    const N: u32 = 1_000;
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let commands = entry.set_listener(&Arc::new(())).into_stream();
    let server = std::thread::spawn(move || {
        block_on(commands.for_each(|Cmd::Echo(n, reply)| async move { reply.send(n * 2) }))
    });
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let entry = Arc::clone(&entry);
            std::thread::spawn(move || {
                block_on(async {
                    for i in 0..N {
                        let n = k * N + i;
                        let answer = entry.request(|r| Cmd::Echo(n, r)).unwrap().into_async();
                        assert_eq!(answer.await, Ok(n * 2));
                    }
                })
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    entry.clear_listener();
    server.join().unwrap();
}

#[test]
fn cross_thread_waiter_is_woken_by_a_late_answer() {
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let fut = entry.request(|r| Cmd::Echo(9, r)).unwrap().into_async();
    let waiter = std::thread::spawn(move || block_on(fut));
    std::thread::sleep(SETTLE);
    let Ok(Cmd::Echo(n, reply)) = listener.try_recv() else {
        panic!()
    };
    reply.send(n);
    assert_eq!(waiter.join().unwrap(), Ok(9));
}

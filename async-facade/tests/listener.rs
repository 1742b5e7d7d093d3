//! `ListenerExt::into_stream`.

mod common;

use common::Probe;
use futures::executor::block_on;
use futures::stream::FusedStream;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine};

type E = Engine<u64, u64, (), u32>;

#[test]
fn smoke() {
    let e = E::new();
    let entry = e.thread(1);
    let mut s = entry.set_listener(&Arc::new(())).into_stream();
    entry.send(5).unwrap();
    assert_eq!(block_on(s.next()), Some(5));
}

#[test]
fn pending_then_woken_exactly_by_a_send() {
    let e = E::new();
    let entry = e.thread(1);
    let other = e.thread(2);
    let _other_listener = other.set_listener(&Arc::new(()));
    let mut s = entry.set_listener(&Arc::new(())).into_stream();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Pending);

    // Nothing addressed to this listener: no wake-up.
    other.send(9).unwrap();
    e.connect(1, Caps::NONE);
    e.subscribe(1, 1).unwrap();
    e.disconnect(1);
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll_next(&mut s), Poll::Pending);

    entry.send(1).unwrap();
    assert_eq!(p.wakes(), 1);
    entry.send(2).unwrap(); // the waker was used up; the next poll re-registers
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(1)));
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(2)));
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    assert_eq!(p.wakes(), 1);
}

#[test]
fn ends_once_closed_and_drained() {
    let e = E::new();
    let entry = e.thread(1);
    let mut s = entry.set_listener(&Arc::new(())).into_stream();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    entry.send(1).unwrap();
    entry.send(2).unwrap();
    entry.clear_listener();
    assert!(s.is_cancelled());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(1)));
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(2)));
    assert!(!s.is_terminated());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));
    assert!(s.is_terminated());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));
}

#[test]
fn woken_by_the_queue_closing() {
    let e = E::new();
    let entry = e.thread(1);
    let mut s = entry.set_listener(&Arc::new(())).into_stream();
    let p = Probe::new();
    assert_eq!(p.poll_next(&mut s), Poll::Pending);
    // Replacing the listener closes the old queue.
    let mut next = entry.set_listener(&Arc::new(())).into_stream();
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));

    // Removing the thread closes the new one.
    let q = Probe::new();
    assert_eq!(q.poll_next(&mut next), Poll::Pending);
    assert_eq!(next.generation(), 2);
    e.remove_thread(1);
    assert_eq!(q.wakes(), 1);
    assert_eq!(q.poll_next(&mut next), Poll::Ready(None));
}

#[test]
fn dropping_a_pending_next_loses_no_command() {
    let e = E::new();
    let entry = e.thread(1);
    let mut s = entry.set_listener(&Arc::new(())).into_stream();
    let p = Probe::new();
    assert_eq!(p.poll(&mut s.next()), Poll::Pending); // dropped pending
    entry.send(7).unwrap();
    assert_eq!(p.wakes(), 1);
    // A `next()` made but dropped unpolled takes nothing either.
    drop(s.next());
    assert_eq!(p.poll(&mut s.next()), Poll::Ready(Some(7)));
}

#[test]
fn into_inner_gives_back_the_listener_with_its_queue() {
    let e = E::new();
    let entry = e.thread(1);
    let s = entry.set_listener(&Arc::new(())).into_stream();
    entry.send(3).unwrap();
    let listener = s.into_inner();
    assert_eq!(listener.try_recv(), Ok(3));
}

#[test]
fn cross_thread_commands_arrive_in_order() {
    const N: u32 = 10_000;
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let s = entry.set_listener(&Arc::new(())).into_stream();
    let consumer = std::thread::spawn(move || block_on(s.collect::<Vec<u32>>()));
    let producer = {
        let entry = Arc::clone(&entry);
        std::thread::spawn(move || {
            for i in 0..N {
                entry.send(i).unwrap();
            }
        })
    };
    producer.join().unwrap();
    entry.clear_listener();
    let got = consumer.join().unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

#[test]
fn cross_thread_select_over_commands_and_cancellation() {
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut cancelled = listener.token().cancelled();
    let mut commands = listener.into_stream();
    let task = std::thread::spawn(move || {
        block_on(async {
            let mut sum = 0;
            loop {
                futures::select! {
                    cmd = commands.next() => match cmd {
                        Some(n) => sum += n,
                        None => break,
                    },
                    () = cancelled => {
                        // Drain what was queued before the cancellation.
                        while let Some(n) = commands.next().await {
                            sum += n;
                        }
                        break;
                    }
                }
            }
            sum
        })
    });
    for n in 1..=100 {
        entry.send(n).unwrap();
    }
    entry.clear_listener();
    assert_eq!(task.join().unwrap(), 5050);
}

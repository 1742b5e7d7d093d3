//! `EntryExt::send_async`: waits for room, woken by the receive that makes
//! it or by the listener going, and cancel-safe.

mod common;

use common::Probe;
use futures::executor::block_on;
use futures::future::FusedFuture;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{Engine, NoListener, QueueConfig, SendError};

type E = Engine<u64, u64, (), u32>;

/// Many short-lived waits at once, then dropped.
const SHORT_LIVED: usize = 10_000;
/// Tasks in the growth test.
const TASKS: usize = 64;

#[test]
fn smoke() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    block_on(entry.send_async(1)).unwrap();
    assert_eq!(listener.try_recv(), Ok(1));
    drop(listener);
    assert_eq!(block_on(entry.send_async(2)), Err(NoListener(2)));
}

#[test]
fn waits_for_room_and_is_woken_by_the_receive() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
    entry.try_send(1).unwrap();
    let p = Probe::new();
    let mut send = entry.send_async(2);
    assert_eq!(p.poll(&mut send), Poll::Pending);
    assert_eq!(p.poll(&mut send), Poll::Pending);
    // Traffic that makes no room wakes nothing.
    assert_eq!(entry.try_send(3), Err(SendError::Full(3)));
    e.thread(2).set_listener(&Arc::new(()));
    assert_eq!(p.wakes(), 0);

    assert_eq!(listener.recv(), Ok(1));
    assert_eq!(p.wakes(), 1);
    assert!(!send.is_terminated());
    assert_eq!(p.poll(&mut send), Poll::Ready(Ok(())));
    assert!(send.is_terminated());
    assert_eq!(listener.try_recv(), Ok(2));
}

#[test]
fn the_latest_waker_is_the_one_woken() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
    entry.try_send(1).unwrap();
    let (a, b) = (Probe::new(), Probe::new());
    let mut send = entry.send_async(2);
    assert_eq!(a.poll(&mut send), Poll::Pending);
    assert_eq!(b.poll(&mut send), Poll::Pending);
    assert_eq!(listener.recv(), Ok(1));
    assert_eq!((a.wakes(), b.wakes()), (0, 1));
    assert_eq!(b.poll(&mut send), Poll::Ready(Ok(())));
}

#[test]
fn woken_with_the_command_back_when_the_listener_goes() {
    for replace in [false, true] {
        let e = E::new();
        let entry = e.thread(1);
        let _first = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap();
        let p = Probe::new();
        let mut send = entry.send_async(2);
        assert_eq!(p.poll(&mut send), Poll::Pending);
        let next = replace.then(|| entry.set_listener(&Arc::new(())));
        if !replace {
            entry.clear_listener();
        }
        assert_eq!(p.wakes(), 1);
        assert_eq!(p.poll(&mut send), Poll::Ready(Err(NoListener(2))));
        // Never sent to the replacement.
        if let Some(next) = next {
            assert!(next.try_recv().is_err());
        }
    }
}

#[test]
fn dropping_it_sends_nothing_and_into_inner_gives_the_command_back() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
    entry.try_send(1).unwrap();
    let p = Probe::new();
    let mut send = entry.send_async(2);
    assert_eq!(p.poll(&mut send), Poll::Pending);
    drop(send);
    let mut kept = entry.send_async(3);
    assert_eq!(p.poll(&mut kept), Poll::Pending);
    assert_eq!(kept.into_inner(), Some(3));
    assert_eq!(listener.recv(), Ok(1));
    assert_eq!(p.wakes(), 0, "dropped sends are not woken");
    assert!(listener.try_recv().is_err(), "a dropped send sent nothing");
    // A completed send has nothing to give back.
    let mut done = entry.send_async(4);
    assert_eq!(p.poll(&mut done), Poll::Ready(Ok(())));
    assert_eq!(done.into_inner(), None);
}

#[test]
fn many_short_lived_waits_never_grow_a_list() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let token = listener.token();
    let mut watch = e.watch_subscribers(1).unwrap();
    let p = Probe::new();
    for _ in 0..SHORT_LIVED {
        let mut cancelled = token.cancelled();
        assert_eq!(p.poll(&mut cancelled), Poll::Pending);
        let mut changed = watch.changed();
        assert_eq!(p.poll(&mut changed), Poll::Pending);
    }
    assert_eq!(token.waiter_count(), 0);
    assert_eq!(watch.waiter_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tasks_leave_no_waiters() {
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let token = listener.token();
    let watch = e.watch_subscribers(1).unwrap();
    for _ in 0..10 {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (token, mut watch) = (token.clone(), watch.clone());
                tokio::spawn(async move {
                    // Each waits a moment on a quiet token and watch, then
                    // gives up.
                    let quiet = async { futures::join!(token.cancelled(), watch.changed()) };
                    let _ = tokio::time::timeout(Duration::from_millis(1), quiet).await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(token.waiter_count(), 0);
        assert_eq!(watch.waiter_count(), 0);
    }
    drop(listener);
    assert!(!entry.has_listener());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_async_across_tasks_delivers_everything() {
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let mut commands = entry
        .set_listener_with(&Arc::new(()), QueueConfig::bounded(2))
        .into_stream();
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let entry = Arc::clone(&entry);
            tokio::spawn(async move {
                for i in 0..250 {
                    entry.send_async(p * 1000 + i).await.unwrap();
                    assert!(entry.queue_len() <= 2);
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    while got.len() < 1000 {
        let m = tokio::time::timeout(Duration::from_secs(10), commands.next())
            .await
            .expect("producers stalled")
            .unwrap();
        got.push(m);
    }
    for p in producers {
        p.await.unwrap();
    }
    got.sort_unstable();
    let want: Vec<u32> = (0..4)
        .flat_map(|p| (0..250).map(move |i| p * 1000 + i))
        .collect();
    assert_eq!(got, want);
}

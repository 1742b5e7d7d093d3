//! `EngineExt::shutdown_async`: starts the shutdown at once, resolves when
//! the last listener handle is dropped.

mod common;

use common::Probe;
use futures::future::FusedFuture;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::Engine;

type E = Engine<u64, u64, (), u32>;

#[test]
fn smoke() {
    let e = E::new();
    futures::executor::block_on(e.shutdown_async());
    assert!(e.is_shut_down());
}

#[test]
fn resolves_when_the_last_listener_is_dropped() {
    let e = E::new();
    let a = e.thread(1).set_listener(&Arc::new(()));
    let b = e.thread(2).set_listener(&Arc::new(()));
    let p = Probe::new();
    let mut done = e.shutdown_async();
    assert!(
        a.is_cancelled() && b.is_cancelled(),
        "shutdown started at once"
    );
    assert_eq!(p.poll(&mut done), Poll::Pending);
    assert_eq!(done.still_running(), [1, 2]);
    drop(a);
    assert_eq!(p.wakes(), 0);
    assert_eq!(p.poll(&mut done), Poll::Pending);
    drop(b);
    assert_eq!(p.wakes(), 1);
    assert_eq!(p.poll(&mut done), Poll::Ready(()));
    assert!(done.is_terminated());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_listener_tasks_on_tokio() {
    let e = Arc::new(E::new());
    for t in 0..8 {
        let mut commands = e.thread(t).set_listener(&e).into_stream();
        tokio::spawn(async move {
            while commands.next().await.is_some() {}
            // Some cleanup after the queue closed, still holding the stream.
            tokio::time::sleep(Duration::from_millis(5)).await;
        });
    }
    tokio::time::timeout(Duration::from_secs(10), e.shutdown_async())
        .await
        .expect("every listener task ends");
    assert!(e.shutdown(Duration::ZERO).still_running.is_empty());
}

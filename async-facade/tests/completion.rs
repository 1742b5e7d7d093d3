//! One completion rule for every future and stream of the facade: a
//! future's `Ready` is its last poll result (then `is_terminated()`, and a
//! further poll is `Pending`, asking the engine nothing); a stream's `None`
//! is final (then `is_terminated()`, and every further poll is `None`).
//! Each type is driven to its end here, then polled again.

mod common;

use common::Probe;
use futures::future::FusedFuture;
use futures::stream::FusedStream;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Config, Engine, Reply, Supervisor};

type E = Engine<u64, u64, (), u32>;

/// `$fut` is complete: terminated, and polled again it stays pending.
macro_rules! completed {
    ($fut:expr) => {{
        let fut = &mut $fut;
        assert!(fut.is_terminated(), "not terminated after Ready");
        let probe = Probe::new();
        assert!(probe.poll(fut).is_pending(), "a poll after Ready");
        assert!(probe.poll(fut).is_pending(), "a poll after Ready");
    }};
}

/// `$stream` ended: terminated, and polled again it gives `None`.
macro_rules! ended {
    ($stream:expr) => {{
        let stream = &mut $stream;
        assert!(stream.is_terminated(), "not terminated after None");
        let probe = Probe::new();
        assert!(matches!(probe.poll_next(stream), Poll::Ready(None)));
        assert!(matches!(probe.poll_next(stream), Poll::Ready(None)));
    }};
}

#[test]
fn reply_future() {
    let e: Engine<u64, u64, (), Reply<u32>> = Engine::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| r).unwrap().into_async();
    assert!(!fut.is_terminated());
    listener.try_recv().unwrap().send(7);
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(Ok(7)));
    completed!(fut);
}

#[test]
fn cancelled() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = listener.token().cancelled();
    assert!(Probe::new().poll(&mut fut).is_pending());
    entry.clear_listener();
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(()));
    completed!(fut);
}

#[test]
fn watch_changed() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(7);
    let mut watch = e.watch_subscribers(7).unwrap();
    let mut fut = watch.changed();
    e.subscribe(7, 1).unwrap();
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(Ok(true)));
    // The watch changes again: the completed future still gives nothing.
    e.disconnect(1);
    completed!(fut);
}

#[test]
fn wait_idle() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut fut = e.wait_idle(7);
    assert!(Probe::new().poll(&mut fut).is_pending());
    e.disconnect(1);
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(()));
    completed!(fut);
}

#[test]
fn send_async() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.send_async(5);
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(Ok(())));
    completed!(fut);
    // Sent once.
    assert_eq!(listener.try_recv().ok(), Some(5));
    assert!(listener.try_recv().is_err());
}

#[test]
fn shutdown_future() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = e.shutdown_async();
    assert!(Probe::new().poll(&mut fut).is_pending());
    drop(listener);
    assert_eq!(Probe::new().poll(&mut fut), Poll::Ready(()));
    completed!(fut);
}

#[test]
fn supervised_task() {
    let e = Arc::new(E::new());
    let rooms = Supervisor::new(&e, |_commands, _room| async {});
    let room = e.thread(1);
    let mut task = rooms.start(&room).unwrap();
    assert!(Probe::new().poll(&mut task).is_ready());
    completed!(task);
}

#[test]
fn listener_stream() {
    let e = E::new();
    let entry = e.thread(1);
    let mut stream = entry.set_listener(&Arc::new(())).into_stream();
    entry.send(5).unwrap();
    assert_eq!(Probe::new().poll_next(&mut stream), Poll::Ready(Some(5)));
    assert!(!stream.is_terminated());
    entry.clear_listener();
    assert_eq!(Probe::new().poll_next(&mut stream), Poll::Ready(None));
    ended!(stream);
}

#[test]
fn watch_stream() {
    let e = E::new();
    e.thread(7);
    let mut stream = e.watch_subscribers(7).unwrap().into_stream();
    assert_eq!(
        Probe::new().poll_next(&mut stream),
        Poll::Ready(Some(false))
    );
    assert!(e.remove_thread(7));
    assert_eq!(Probe::new().poll_next(&mut stream), Poll::Ready(None));
    ended!(stream);
}

#[test]
fn change_stream_ends_after_lagged() {
    let e: E = Engine::with_config(Config::default().change_log(1));
    let mut stream = e.changes().into_stream();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    assert!(matches!(
        Probe::new().poll_next(&mut stream),
        Poll::Ready(Some(Err(_)))
    ));
    ended!(stream);
}

//! Every facade future and stream re-polled with a second waker: polled
//! with waker A (pending), then with waker B (pending), then the event
//! comes. B, the waker of the latest poll, must be woken, and the result is
//! the right one. (An executor may move a task, or a combinator may poll
//! with a new waker; a future that keeps only its first waker then never
//! wakes the task that now awaits it.)
//!
//! Known to catch (a planted-bug audit): a re-polled reply future
//! keeping its first waker (`PendingReply::poll_reply`). Also checked
//! against the same bug planted in the listener's waker cell, the watch's
//! waker list and the cancel token's waker list: each failed its tests here.

mod common;

use common::Probe;
use futures::StreamExt;
use std::sync::Arc;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine, Reply, ReplyError, Supervisor, TaskEnd, WatchError};

type E = Engine<u64, u64, (), u32>;

/// Polls `$fut` with two wakers in turn (both pending), runs `$event`,
/// and checks the second waker was woken and the next poll gives `$out`.
macro_rules! second_waker_is_woken {
    ($poll:ident, $fut:expr, $event:expr, $out:expr) => {{
        let (a, b) = (Probe::new(), Probe::new());
        let fut = &mut $fut;
        assert!(a.$poll(fut).is_pending(), "pending before the event");
        assert!(b.$poll(fut).is_pending(), "pending before the event");
        assert_eq!(b.wakes(), 0, "woken before the event");
        $event;
        assert!(b.wakes() >= 1, "the latest waker was not woken");
        assert_eq!(b.$poll(fut), Poll::Ready($out));
    }};
}

#[test]
fn reply_future() {
    let e: Engine<u64, u64, (), Reply<u32>> = Engine::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| r).unwrap().into_async();
    second_waker_is_woken!(poll, fut, listener.try_recv().unwrap().send(42), Ok(42));
}

#[test]
fn reply_future_when_the_reply_is_dropped() {
    let e: Engine<u64, u64, (), Reply<u32>> = Engine::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = entry.request(|r| r).unwrap().into_async();
    second_waker_is_woken!(
        poll,
        fut,
        drop(listener.try_recv().unwrap()),
        Err(ReplyError)
    );
}

#[test]
fn watch_changed() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(7);
    let mut watch = e.watch_subscribers(7).unwrap();
    let mut fut = watch.changed();
    second_waker_is_woken!(poll, fut, e.subscribe(7, 1).unwrap(), Ok(true));
}

#[test]
fn watch_changed_on_close() {
    let e = E::new();
    e.thread(7);
    let mut watch = e.watch_subscribers(7).unwrap();
    let mut fut = watch.changed();
    second_waker_is_woken!(
        poll,
        fut,
        assert!(e.remove_thread(7)),
        Err(WatchError::Closed)
    );
}

#[test]
fn watch_stream() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(7);
    let mut stream = e.watch_subscribers(7).unwrap().into_stream();
    // The stream starts with the current value.
    assert_eq!(
        Probe::new().poll_next(&mut stream),
        Poll::Ready(Some(false))
    );
    second_waker_is_woken!(poll_next, stream, e.subscribe(7, 1).unwrap(), Some(true));
    second_waker_is_woken!(poll_next, stream, e.disconnect(1), Some(false));
    second_waker_is_woken!(poll_next, stream, assert!(e.remove_thread(7)), None);
}

#[test]
fn cancelled() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let mut fut = listener.token().cancelled();
    second_waker_is_woken!(poll, fut, entry.clear_listener(), ());
}

#[test]
fn wait_idle() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut fut = e.wait_idle(7);
    second_waker_is_woken!(poll, fut, assert!(e.unsubscribe(7, 1)), ());
}

#[test]
fn wait_idle_on_removal() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    let mut fut = e.wait_idle(7);
    second_waker_is_woken!(poll, fut, assert!(e.remove_thread(7)), ());
}

#[test]
fn entry_wait_idle() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let room = e.subscribe(7, 1).unwrap();
    let mut fut = room.wait_idle();
    second_waker_is_woken!(poll, fut, assert!(e.unsubscribe(7, 1)), ());
}

#[test]
fn supervised_task() {
    let e = Arc::new(E::new());
    let rooms = Supervisor::new(&e, |mut commands, _room| async move {
        while commands.next().await.is_some() {}
    });
    let room = e.thread(1);
    let mut task = rooms.start(&room).unwrap();
    // By hand: `TaskEnd` has no `PartialEq` (a panic payload is opaque).
    let (a, b) = (Probe::new(), Probe::new());
    assert!(a.poll(&mut task).is_pending(), "pending before the event");
    assert!(b.poll(&mut task).is_pending(), "pending before the event");
    assert_eq!(b.wakes(), 0, "woken before the event");
    room.clear_listener();
    assert!(b.wakes() >= 1, "the latest waker was not woken");
    assert!(matches!(b.poll(&mut task), Poll::Ready(TaskEnd::Ended)));
}

#[test]
fn listener_stream() {
    let e = E::new();
    let entry = e.thread(1);
    let mut stream = entry.set_listener(&Arc::new(())).into_stream();
    second_waker_is_woken!(poll_next, stream, entry.send(5).unwrap(), Some(5));
    second_waker_is_woken!(poll_next, stream, entry.clear_listener(), None);
}

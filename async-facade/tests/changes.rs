//! `ChangeFeedExt::into_stream`: every batch, woken by the publish, then
//! `Err(Lagged)` once and the end when behind; cancel-safe.

mod common;

use common::Probe;
use futures::executor::block_on;
use futures::stream::FusedStream;
use futures::StreamExt;
use std::task::Poll;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Change, Config, Engine, Lagged};

type E = Engine<u64, u64>;

#[test]
fn smoke() {
    let e = E::new();
    let mut s = e.changes().into_stream();
    e.connect(1, Caps::NONE);
    let b = block_on(s.next()).unwrap().unwrap();
    assert_eq!(b.version, 1);
}

#[test]
fn yields_every_batch_in_order() {
    let e = E::new();
    let mut s = e.changes().into_stream();
    e.connect(1, Caps::NONE);
    e.subscribe(7, 1).unwrap();
    e.subscribe(7, 1).unwrap(); // no-op: no batch
    e.unsubscribe(7, 1);
    let p = Probe::new();
    let mut got = Vec::new();
    while let Poll::Ready(Some(item)) = p.poll_next(&mut s) {
        got.push(item.unwrap());
    }
    assert_eq!(got.iter().map(|b| b.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        got[2].changes,
        [
            Change::Unsubscribed { t: 7, c: 1 },
            Change::Vacated { t: 7 }
        ]
    );
    assert_eq!(p.wakes(), 0);
}

#[test]
fn pending_then_woken_once_by_the_publish() {
    let e = E::new();
    let mut s = e.changes().into_stream();
    let p = Probe::new();
    assert!(p.poll_next(&mut s).is_pending());
    assert!(p.poll_next(&mut s).is_pending());
    e.connect(1, Caps::NONE);
    e.connect(1, Caps::NONE); // a no-op publishes nothing: no second wake
    assert_eq!(p.wakes(), 1);
    assert!(matches!(p.poll_next(&mut s), Poll::Ready(Some(Ok(b))) if b.version == 1));
    assert!(p.poll_next(&mut s).is_pending());
    assert_eq!(p.wakes(), 1);
}

#[test]
fn repolled_with_another_waker_wakes_the_latest() {
    let e = E::new();
    let mut s = e.changes().into_stream();
    let (a, b) = (Probe::new(), Probe::new());
    assert!(a.poll_next(&mut s).is_pending());
    assert!(b.poll_next(&mut s).is_pending());
    e.connect(1, Caps::NONE);
    assert_eq!((a.wakes(), b.wakes()), (0, 1));
}

#[test]
fn lagged_once_then_the_end() {
    let e = E::with_config(Config::default().change_log(2));
    let mut s = e.changes().into_stream();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let p = Probe::new();
    assert!(matches!(p.poll_next(&mut s), Poll::Ready(Some(Ok(b))) if b.version == 1));
    e.connect(3, Caps::NONE);
    e.connect(4, Caps::NONE); // version 2 is dropped
    assert_eq!(p.poll_next(&mut s), Poll::Ready(Some(Err(Lagged))));
    assert!(s.is_terminated());
    assert_eq!(p.poll_next(&mut s), Poll::Ready(None));
}

#[test]
fn a_dropped_next_loses_no_batch() {
    let e = E::new();
    let mut s = e.changes().into_stream();
    let p = Probe::new();
    {
        let mut next = s.next();
        assert!(p.poll(&mut next).is_pending());
    } // cancelled
    e.connect(1, Caps::NONE);
    assert_eq!(p.wakes(), 1);
    assert_eq!(block_on(s.next()).unwrap().unwrap().version, 1);
    // The feed comes back where the stream left it.
    let mut feed = s.into_inner();
    assert_eq!(feed.version(), 1);
    assert_eq!(feed.try_next(), Ok(None));
}

#[test]
fn a_dropped_stream_is_not_woken() {
    let e = E::new();
    let p = Probe::new();
    for _ in 0..100 {
        let mut s = e.changes().into_stream();
        assert!(p.poll_next(&mut s).is_pending());
    }
    e.connect(1, Caps::NONE);
    assert_eq!(p.wakes(), 0);
}

#[test]
fn follows_a_writer_on_another_thread() {
    let e = std::sync::Arc::new(E::new());
    let s = e.changes().into_stream();
    let writer = {
        let e = std::sync::Arc::clone(&e);
        std::thread::spawn(move || {
            for c in 0..100 {
                e.connect(c, Caps::NONE);
            }
        })
    };
    let versions: Vec<u64> = block_on(s.take(100).map(|b| b.unwrap().version).collect());
    assert_eq!(versions, (1..=100).collect::<Vec<_>>());
    writer.join().unwrap();
}

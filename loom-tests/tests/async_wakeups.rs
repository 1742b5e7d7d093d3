//! The async facade's waker registration racing the event that should wake
//! it: no lost wake-up (a lost one leaves `block_on` parked forever, which
//! loom reports as a deadlock), and the awaited value is the right one.
//!
//! Known to catch (a planted-bug audit): the watch state's
//! `Release` store made `Relaxed` (`watch_changed_wakes_after_publish` and
//! `wait_idle_wakes_when_the_last_subscriber_leaves`, in the
//! `switchboard_loom_publish` configuration only: the first one's mutex
//! cell synchronizes regardless).
#![cfg(loom)]

use futures::StreamExt;
use loom::future::block_on;
use loom::thread;
use std::sync::Arc;
use switchboard_async::prelude::*;
use switchboard_core::{Caps, Reply};
use switchboard_loom_tests::support::Engine;

#[test]
fn listener_stream_wakes_on_send() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let mut stream = entry.set_listener(&Arc::new(())).into_stream();
        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(5).is_ok());
        assert_eq!(block_on(stream.next()), Some(5));
        assert!(sender.join().unwrap());
    });
}

#[test]
fn listener_stream_ends_when_cleared() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let mut stream = entry.set_listener(&Arc::new(())).into_stream();
        let e = Arc::clone(&entry);
        let clearer = thread::spawn(move || e.clear_listener());
        assert_eq!(block_on(stream.next()), None);
        clearer.join().unwrap();
    });
}

#[test]
fn watch_changed_wakes_after_publish() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.thread(7);
        let mut watch = engine.watch_subscribers(7).unwrap();
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.subscribe(7, 1).unwrap();
        });
        assert_eq!(block_on(watch.changed()), Ok(true));
        // Woken only after the graph that changed was published.
        assert!(engine.has_subscribers(7));
        writer.join().unwrap();
    });
}

#[test]
fn wait_idle_wakes_when_the_last_subscriber_leaves() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.subscribe(7, 1).unwrap();
        let e = Arc::clone(&engine);
        let leaver = thread::spawn(move || {
            e.disconnect(1);
        });
        block_on(engine.wait_idle(7));
        assert!(!engine.has_subscribers(7));
        leaver.join().unwrap();
    });
}

#[test]
fn reply_future_wakes_on_answer() {
    loom::model(|| {
        let engine = Engine::<Reply<u32>>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener(&Arc::new(()));
        let serving = thread::spawn(move || {
            if let Ok(reply) = listener.recv() {
                reply.send(9);
            }
        });
        let pending = entry.request(|reply| reply).unwrap();
        assert_eq!(block_on(pending.into_async()), Ok(9));
        entry.clear_listener();
        serving.join().unwrap();
    });
}

#[test]
fn cancelled_wakes_on_replacement() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let token_listener = entry.set_listener(&Arc::new(()));
        let token = token_listener.token();
        let e = Arc::clone(&entry);
        let replacer = thread::spawn(move || {
            let _next = e.set_listener(&Arc::new(()));
        });
        block_on(token.cancelled());
        assert!(token.is_cancelled());
        replacer.join().unwrap();
    });
}

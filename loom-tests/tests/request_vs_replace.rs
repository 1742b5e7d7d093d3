//! Guarantee 6: a `PendingReply` always resolves when its listener is
//! replaced or cleared, whether or not the listener answered.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Reply;
use switchboard_loom_tests::support::Engine;

#[test]
fn request_racing_replacement_always_resolves() {
    loom::model(|| {
        let engine = Engine::<Reply<u32>>::new();
        let entry = engine.thread(1);
        let owner = Arc::new(());
        let listener = entry.set_listener(&owner);
        // The old listener's task: answers what it receives, until closed.
        let serving = thread::spawn(move || {
            if let Ok(reply) = listener.recv() {
                reply.send(42);
            }
        });
        let e = Arc::clone(&entry);
        let replacer = thread::spawn(move || {
            let _new = e.set_listener(&Arc::new(()));
            // The new listener is dropped unread: a request it queued
            // resolves with an error.
        });
        match entry.request(|reply| reply) {
            // Blocks until answered or dropped: loom reports a deadlock if
            // it could hang.
            Ok(pending) => {
                let r = pending.wait();
                assert!(r == Ok(42) || r.is_err());
            }
            // The new listener was already dropped: the command (and the
            // reply inside it) comes back; dropping it resolves nothing
            // anyone waits on.
            Err(returned) => drop(returned.into_inner()),
        }
        replacer.join().unwrap();
        serving.join().unwrap();
    });
}

#[test]
fn request_racing_clear_always_resolves() {
    loom::model(|| {
        let engine = Engine::<Reply<u32>>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener(&Arc::new(()));
        let e = Arc::clone(&entry);
        let clearer = thread::spawn(move || e.clear_listener());
        let outcome = entry.request(|reply| reply);
        clearer.join().unwrap();
        // The listener never answers: it is dropped with its queue.
        drop(listener);
        match outcome {
            Ok(pending) => assert!(pending.wait().is_err()),
            Err(returned) => drop(returned.into_inner()),
        }
    });
}

//! Guarantee 5: `set_listener` racing `send`: every message reaches exactly
//! one listener or comes back to the sender, in order; the replaced
//! listener's token fires exactly once.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_loom_tests::support::Engine;

#[test]
fn replacing_a_listener_loses_no_message() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let owner = Arc::new(());
        let first = entry.set_listener(&owner);
        let first_token = first.token();

        let e = Arc::clone(&entry);
        let o = Arc::clone(&owner);
        let replacer = thread::spawn(move || e.set_listener(&o));
        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || {
            let mut returned = Vec::new();
            for m in [10, 11] {
                if let Err(err) = e.send(m) {
                    returned.push(err.into_inner());
                }
            }
            returned
        });
        let second = replacer.join().unwrap();
        let returned = sender.join().unwrap();

        assert!(first_token.is_cancelled());
        assert!(!second.is_cancelled());
        assert_eq!(second.generation(), 2);
        // The first queue is closed: drain it to the end.
        let mut got_first = Vec::new();
        while let Ok(m) = first.recv() {
            got_first.push(m);
        }
        let mut got_second = Vec::new();
        while let Ok(m) = second.try_recv() {
            got_second.push(m);
        }
        // Nothing comes back while a listener is current.
        assert!(returned.is_empty());
        // Exactly once each, FIFO: the first listener got a prefix.
        let mut all = got_first.clone();
        all.extend(&got_second);
        assert_eq!(all, [10, 11], "first {got_first:?} second {got_second:?}");
    });
}

#[test]
fn clearing_a_listener_returns_later_messages() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener(&Arc::new(()));
        let token = listener.token();

        let e = Arc::clone(&entry);
        let clearer = thread::spawn(move || e.clear_listener());
        let returned = entry.send(5).err().map(|e| e.into_inner());
        clearer.join().unwrap();

        assert!(token.is_cancelled());
        let received = listener.recv().ok();
        // Delivered to the listener, or given back: exactly one of the two.
        assert_eq!(returned.is_some(), received.is_none());
        assert_eq!(returned.or(received), Some(5));
    });
}

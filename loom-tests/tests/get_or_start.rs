//! The atomic get-or-start (`set_listener_if_none`) and the listener
//! home's first use: two callers racing on a thread that has never had a
//! listener (so both are also the home's first users).
//!
//! Known to catch: `set_listener_if_none` testing the slot and starting
//! under two separate holds of its lock (both callers start, the second
//! replacing the first); the home built outside its once cell (two homes:
//! two listeners of generation 1, or a send lost to a home nobody
//! listens on).
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::NoListener;
use switchboard_loom_tests::support::Engine;

#[test]
fn two_racing_callers_start_exactly_one_listener() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);

        let callers: Vec<_> = (0..2)
            .map(|_| {
                let e = Arc::clone(&entry);
                thread::spawn(move || e.set_listener_if_none(&Arc::new(())))
            })
            .collect();
        let started: Vec<_> = callers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();

        assert_eq!(started.len(), 1, "exactly one caller starts a listener");
        let listener = &started[0];
        assert_eq!(listener.generation(), 1);
        assert!(!listener.is_cancelled(), "the loser replaced it");
        assert!(entry.has_listener());
        assert_eq!(entry.generation(), 1);
        entry.send(7).unwrap();
        assert_eq!(listener.try_recv(), Ok(7));
    });
}

#[test]
fn a_send_racing_the_first_listener_is_queued_or_given_back() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);

        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(5));
        let listener = entry.set_listener(&Arc::new(()));
        let sent = sender.join().unwrap();

        assert_eq!(listener.generation(), 1);
        match sent {
            // Sent after the listener opened: it is queued for it.
            Ok(()) => assert_eq!(listener.try_recv(), Ok(5)),
            // Sent before: nothing was queued anywhere.
            Err(NoListener(m)) => {
                assert_eq!(m, 5);
                assert!(listener.try_recv().is_err());
            }
        }
        assert!(entry.has_listener());
    });
}

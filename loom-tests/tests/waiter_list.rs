//! The waiter list itself (`core/src/waiters.rs`): registering, waking and
//! deregistering race without a lost wake-up (which leaves `block_on` or a
//! blocked thread parked for ever: loom reports a deadlock) and without a
//! leaked slot (the list ends empty).
#![cfg(loom)]

use futures::future::poll_fn;
use loom::future::block_on;
use loom::thread;
use std::sync::Arc;
use switchboard_core::wait_list_probe::Counter;

#[test]
fn an_async_waiter_is_woken_by_a_racing_change() {
    loom::model(|| {
        let counter = Arc::new(Counter::new());
        let c = Arc::clone(&counter);
        let bumper = thread::spawn(move || c.bump());
        let w = counter.waiter();
        assert_eq!(block_on(poll_fn(|cx| w.poll_at_least(1, cx))), 1);
        bumper.join().unwrap();
        drop(w);
        assert_eq!(counter.waiters(), 0);
    });
}

#[test]
fn a_blocked_thread_is_woken_by_a_racing_change() {
    loom::model(|| {
        let counter = Arc::new(Counter::new());
        let c = Arc::clone(&counter);
        let waiter = thread::spawn(move || c.wait_for(1));
        counter.bump();
        waiter.join().unwrap();
        assert_eq!(counter.waiters(), 0);
    });
}

/// One waiter drops while pending as the change comes; the other is still
/// woken, and the dropped one's slot is freed.
#[test]
fn a_dropped_waiter_frees_its_slot_and_steals_no_wakeup() {
    loom::model(|| {
        let counter = Arc::new(Counter::new());
        let c = Arc::clone(&counter);
        let quitter = thread::spawn(move || {
            let w = c.waiter();
            let _ = block_on(poll_fn(|cx| {
                // Register once, then give up (a losing `select!` branch).
                let _ = w.poll_at_least(1, cx);
                std::task::Poll::Ready(())
            }));
            drop(w);
        });
        let c = Arc::clone(&counter);
        let bumper = thread::spawn(move || c.bump());
        let w = counter.waiter();
        assert_eq!(block_on(poll_fn(|cx| w.poll_at_least(1, cx))), 1);
        quitter.join().unwrap();
        bumper.join().unwrap();
        drop(w);
        assert_eq!(counter.waiters(), 0);
    });
}

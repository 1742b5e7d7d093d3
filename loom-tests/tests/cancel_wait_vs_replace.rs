//! Guarantee 5: the untimed `CancelToken::wait()` racing the
//! `set_listener` that replaces its listener returns (never sleeps through
//! the cancellation), and returns only once the token has fired.
//!
//! Known to catch (a planted-bug audit): `CancelToken::cancel`
//! notifying before taking its waiter lock (a lost wake-up: loom reports
//! the deadlock).
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_loom_tests::support::Engine;

#[test]
fn wait_returns_once_replaced() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let first = entry.set_listener(&Arc::new(()));
        let token = first.token();

        let waiter = thread::spawn(move || {
            token.wait();
            token.is_cancelled()
        });
        let second = entry.set_listener(&Arc::new(()));
        assert!(
            waiter.join().unwrap(),
            "wait() returned before the token fired"
        );
        assert!(first.is_cancelled());
        assert!(!second.is_cancelled());
        assert_eq!(second.generation(), 2);
    });
}

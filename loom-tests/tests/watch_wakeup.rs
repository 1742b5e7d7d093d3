//! Guarantee 4: a watch waiter racing a change never sleeps through it, and
//! is woken with the new value (not without a version change).
//!
//! Known to catch (a planted-bug audit): the watch state's
//! `Release` store made `Relaxed` (`waiter_never_misses_a_change`, in the
//! `switchboard_loom_publish` configuration only).
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::{Caps, WatchError};
use switchboard_loom_tests::support::Engine;

#[test]
fn waiter_never_misses_a_change() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.thread(7);
        let mut watch = engine.watch_subscribers(7).unwrap();

        let e = Arc::clone(&engine);
        let waiter = thread::spawn(move || {
            // Untimed: a lost wake-up is a deadlock loom reports.
            let v = watch.wait_changed(Duration::MAX);
            // Notified only after the new graph is published.
            assert!(e.has_subscribers(7), "woken before the graph was published");
            (v, watch.version())
        });
        engine.subscribe(7, 1).unwrap();
        let (value, version) = waiter.join().unwrap();
        assert_eq!(value, Ok(true));
        assert_eq!(version, 1);
    });
}

#[test]
fn waiter_sees_close_after_last_change() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        engine.subscribe(7, 1).unwrap();
        let mut watch = engine.watch_subscribers(7).unwrap();

        let waiter = thread::spawn(move || {
            let first = watch.wait_changed(Duration::MAX);
            let second = watch.wait_changed(Duration::MAX);
            (first, second)
        });
        assert!(engine.remove_thread(7));
        let (first, second) = waiter.join().unwrap();
        // The removal flips true -> false, reported before the close.
        assert_eq!(first, Ok(false));
        assert_eq!(second, Err(WatchError::Closed));
    });
}

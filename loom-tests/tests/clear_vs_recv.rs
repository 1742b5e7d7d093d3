//! Guarantee 5: a listener that finds its queue closed also finds itself
//! cancelled. `clear_listener` racing a blocked `recv()`: once `recv`
//! fails, `is_cancelled()` is true (the token fires before the queue
//! closes).
//!
//! Known to catch (a planted-bug audit): the cancel token fired
//! after the queue closed in `ListenerSlot::clear`.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_loom_tests::support::Engine;

#[test]
fn a_closed_queue_means_cancelled() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener(&Arc::new(()));
        entry.send(5).unwrap();

        let e = Arc::clone(&entry);
        let clearer = thread::spawn(move || e.clear_listener());
        // The command queued before the clear is still delivered...
        assert_eq!(listener.recv(), Ok(5));
        // ...then `recv` blocks until the queue closes (untimed: a lost
        // wake-up is a deadlock loom reports).
        assert!(listener.recv().is_err());
        assert!(
            listener.is_cancelled(),
            "the queue closed before the token fired"
        );
        clearer.join().unwrap();
        assert!(!entry.has_listener());
    });
}

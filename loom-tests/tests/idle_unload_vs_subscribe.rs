//! `remove_thread_if_idle(t)` racing `subscribe(t, c)`: never a subscriber
//! on a removed entry.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;
use switchboard_loom_tests::support::Engine;

#[test]
fn idle_unload_never_strands_a_subscriber() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        let original = engine.thread(7);

        let e = Arc::clone(&engine);
        let unload = thread::spawn(move || e.remove_thread_if_idle(7));
        let e = Arc::clone(&engine);
        let sub = thread::spawn(move || e.subscribe(7, 1).unwrap());

        let removed = unload.join().unwrap();
        let subscribed_to = sub.join().unwrap();

        // The entry the subscriber got is the one the engine holds now.
        let current = engine.get_thread(7).expect("a subscribed thread exists");
        assert!(std::sync::Arc::ptr_eq(&current, &subscribed_to));
        assert_eq!(engine.subscribers(7).to_vec(), [1]);
        if removed {
            // The unload came first; the subscribe made a fresh entry.
            assert!(!std::sync::Arc::ptr_eq(&original, &subscribed_to));
        } else {
            assert!(std::sync::Arc::ptr_eq(&original, &subscribed_to));
        }
        engine.snapshot().validate().unwrap();
    });
}

//! Guarantee 3 through `subscribe`'s fast path (the edge already exists):
//! racing `remove_thread(t)` then a re-creation of `t`, the entry
//! `subscribe` returns is the one of the graph version whose edge it saw.
//! Either it is the original entry (the subscribe came first and the
//! removal undid it), or the subscribe came after the removal and made
//! the edge on the entry the engine holds now. Never the new entry without
//! the edge.
//!
//! Known to catch (a planted-bug audit): the fast path taking a
//! second graph load for the entry after checking the edge on the first.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;
use switchboard_loom_tests::support::Engine;

#[test]
fn fast_path_returns_the_entry_of_the_version_it_checked() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);
        let original = engine.subscribe(7, 1).unwrap();

        let e = Arc::clone(&engine);
        let churn = thread::spawn(move || {
            assert!(e.remove_thread(7));
            e.thread(7)
        });
        let got = engine.subscribe(7, 1).unwrap();
        let recreated = churn.join().unwrap();

        let current = engine.get_thread(7).expect("re-created");
        assert!(Arc::ptr_eq(&current, &recreated));
        if Arc::ptr_eq(&got, &original) {
            // Linearized before the removal, which then dropped the edge.
            assert!(engine.subscribers(7).is_empty());
        } else {
            // Linearized after the removal: the edge is on the entry the
            // engine holds.
            assert!(
                Arc::ptr_eq(&got, &current),
                "subscribe returned an entry that is not the thread's"
            );
            assert_eq!(
                engine.subscribers(7).to_vec(),
                [1],
                "subscribe returned an entry without its edge"
            );
        }
        engine.snapshot().validate().unwrap();
    });
}

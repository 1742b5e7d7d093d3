//! Guarantee 2: a reader taking snapshots while a writer publishes always
//! sees one consistent graph.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;
use switchboard_loom_tests::support::Engine;

#[test]
fn snapshots_taken_during_writes_are_consistent() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);

        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.subscribe(5, 1).unwrap();
            e.disconnect(1);
        });
        for _ in 0..2 {
            let snap = engine.snapshot();
            snap.validate().unwrap();
            // Either before the subscribe, between, or after the disconnect.
            let subs = snap.subscribers(5).to_vec();
            if snap.is_connected(1) {
                assert!(subs.is_empty() || subs == [1]);
            } else {
                assert!(subs.is_empty());
            }
            assert_eq!(snap.has_subscribers(5), !subs.is_empty());
        }
        writer.join().unwrap();
        engine.snapshot().validate().unwrap();
    });
}

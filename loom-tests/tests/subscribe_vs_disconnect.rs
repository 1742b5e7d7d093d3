//! Guarantee 3: `subscribe(t, c)` racing `disconnect(c)` either fails or is
//! undone by the disconnect; afterwards no snapshot shows `c`.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;
use switchboard_loom_tests::support::Engine;

#[test]
fn subscribe_racing_disconnect_leaves_no_zombie() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        engine.connect(1, Caps::NONE);

        let e = Arc::clone(&engine);
        let sub = thread::spawn(move || e.subscribe(7, 1).is_ok());
        let e = Arc::clone(&engine);
        let disc = thread::spawn(move || e.disconnect(1));

        let subscribed = sub.join().unwrap();
        let emptied = disc.join().unwrap();

        let snap = engine.snapshot();
        assert!(!snap.is_connected(1));
        assert!(!snap.subscribers(7).contains(1), "zombie subscription");
        assert!(snap.threads_of(1).is_empty());
        assert!(!engine.has_subscribers(7));
        snap.validate().unwrap();
        // A subscribe that succeeded came first, so the disconnect undid it
        // and reported the thread it emptied; one that failed came after.
        assert_eq!(subscribed, emptied == [7]);
        if !subscribed {
            assert!(
                engine.get_thread(7).is_none(),
                "failed subscribe created an entry"
            );
        }
    });
}

//! Guarantee 5: `clear_listener_if(old_generation)` racing `set_listener`
//! never removes the newer listener.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_loom_tests::support::Engine;

#[test]
fn stale_clear_never_removes_newer_listener() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let first = entry.set_listener(&Arc::new(()));
        assert_eq!(first.generation(), 1);

        let e = Arc::clone(&entry);
        let clearer = thread::spawn(move || e.clear_listener_if(1));
        let e = Arc::clone(&entry);
        let setter = thread::spawn(move || e.set_listener(&Arc::new(())));
        let cleared = clearer.join().unwrap();
        let second = setter.join().unwrap();

        assert_eq!(second.generation(), 2);
        assert!(
            !second.is_cancelled(),
            "stale clear removed the newer listener"
        );
        assert!(entry.has_listener());
        assert_eq!(entry.generation(), 2);
        assert!(first.is_cancelled());
        assert!(entry.send(9).is_ok());
        assert_eq!(second.try_recv(), Ok(9));
        // `cleared` is true only if the clear ran while generation 1 was
        // still current.
        let _ = cleared;
    });
}

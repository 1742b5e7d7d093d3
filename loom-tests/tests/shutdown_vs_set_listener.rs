//! Guarantee 11: `shutdown` racing a host starting a listener. Once
//! `shutdown` reports none running, no listener of the engine runs and none
//! can start: a listener started after it is already cancelled and closed.
//! A listener that shutdown neither cleared nor waited for would keep its
//! task serving for ever (loom reports the deadlock) or be seen running.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use std::sync::Arc;
use std::time::Duration;
use switchboard_loom_tests::support::Engine;

#[test]
fn no_listener_runs_after_shutdown_reports_none() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        let entry = engine.thread(1);
        let serving = Arc::new(AtomicBool::new(false));
        let reported = Arc::new(AtomicBool::new(false));

        let (s, r, e) = (
            Arc::clone(&serving),
            Arc::clone(&reported),
            Arc::clone(&entry),
        );
        let host = thread::spawn(move || {
            let listener = e.set_listener(&Arc::new(()));
            if r.load(Ordering::SeqCst) {
                assert!(listener.is_cancelled(), "a listener started after shutdown");
            }
            s.store(!listener.is_cancelled(), Ordering::SeqCst);
            // Serve until the queue closes.
            while listener.recv().is_ok() {}
            s.store(false, Ordering::SeqCst);
            drop(listener);
        });

        // Untimed (loom has no clock): a listener left running hangs here.
        let report = engine.shutdown(Duration::MAX);
        assert!(report.still_running.is_empty());
        reported.store(true, Ordering::SeqCst);
        assert!(!serving.load(Ordering::SeqCst), "a listener still serving");
        assert!(!entry.has_listener());
        host.join().unwrap();
        assert!(engine.is_shut_down());
    });
}

//! Guarantee 12: incarnations never mix.
//!
//! * `connect_with` replacing a live incarnation races a `subscribe_if`
//!   naming the old one: whichever goes first, the new incarnation never
//!   has the old one's edge (no zombie), and the engine ends valid.
//! * `connect_with` replacing a live incarnation races a reader fanning
//!   out with data: once the reader has seen the call return (an atomic
//!   set after it), its fan-out never yields the old incarnation's data.
//!
//! Known to catch (planted): `subscribe_if` checking liveness
//! but not the incarnation (the first model's zombie edge); `connect_with`
//! updating a live connection in place as `connect` does (both models).
//!
//! Runtime: well under a second per configuration once built.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;

/// `u64` ids, `u32` state and commands, `u64` connection data (the value
/// names the incarnation it was given to).
type Engine = switchboard_core::Engine<u64, u64, u32, u32, u64>;

#[test]
fn replacing_an_incarnation_racing_a_stale_subscribe_leaves_no_zombie() {
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        let old = engine.connect_with(1, Caps::NONE, 100);

        let e = Arc::clone(&engine);
        let sub = thread::spawn(move || e.subscribe_if(7, 1, old).is_ok());
        let e = Arc::clone(&engine);
        let replace = thread::spawn(move || e.connect_with(1, Caps::NONE, 200));

        let subscribed = sub.join().unwrap();
        let new = replace.join().unwrap();

        assert!(new > old);
        assert_eq!(engine.incarnation(1), Some(new));
        assert_eq!(engine.data(1), Some(200));
        let snap = engine.snapshot();
        snap.validate().unwrap();
        assert!(
            !snap.is_subscribed(7, 1),
            "zombie edge on the new incarnation"
        );
        assert!(!snap.has_subscribers(7));
        assert!(snap.threads_of(1).is_empty());
        // A subscribe that succeeded came first (the replacement dropped
        // its edge); one that failed created nothing.
        if !subscribed {
            assert!(
                !engine.contains_thread(7),
                "a stale subscribe_if created an entry"
            );
        }
    });
}

#[test]
fn fan_out_never_yields_old_data_after_replacement_returns() {
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        let old = engine.connect_with(1, Caps::NONE, 100);
        engine.subscribe_if(7, 1, old).unwrap();
        let returned = Arc::new(AtomicBool::new(false));

        let (e, r) = (Arc::clone(&engine), Arc::clone(&returned));
        let replace = thread::spawn(move || {
            let new = e.connect_with(1, Caps::NONE, 200);
            // SeqCst: the reader that sees this also sees the return.
            r.store(true, Ordering::SeqCst);
            e.subscribe_if(7, 1, new).unwrap();
        });

        let after = returned.load(Ordering::SeqCst);
        let mut seen = Vec::new();
        engine.for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
        if after {
            assert!(
                !seen.contains(&(1, 100)),
                "old data after connect_with returned"
            );
        }
        assert!(seen.is_empty() || seen == [(1, 100)] || seen == [(1, 200)]);

        replace.join().unwrap();
        let mut seen = Vec::new();
        engine
            .reader()
            .for_each_subscriber_data(7, |c, d| seen.push((c, *d)));
        assert_eq!(seen, [(1, 200)]);
    });
}

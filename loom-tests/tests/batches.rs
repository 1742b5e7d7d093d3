//! `Engine::batch`: readers see a batch whole or not at all, and two
//! batches racing each other both take effect, each as one version.
//!
//! * A batch (a resume: `connect_with` and two subscribes) races a reader
//!   fanning out and looking at the connection: the reader sees either
//!   none of the batch or all of it, in one read and across its reads.
//! * Two batches race: each is published whole, in one version (two, or
//!   one when the second was queued behind the first and the two were
//!   combined: the version moves by one or two), both take effect, and the
//!   watch of the thread both join ends `true` having flipped once.
//!
//! Runtime: well under a second per configuration once built.
#![cfg(loom)]

use loom::thread;
use std::sync::Arc;
use switchboard_core::Caps;

type Engine = switchboard_core::Engine<u64, u64, u32, u32, u64>;

#[test]
fn a_reader_sees_a_batch_whole_or_not_at_all() {
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.batch(|b| {
                b.connect_with(1, Caps::NONE, 100);
                b.subscribe(7, 1).unwrap();
                b.subscribe(8, 1).unwrap();
            })
        });
        // The reader: each read sees a whole version; once it has seen the
        // batch, it never sees less of it.
        let first = engine.threads_of(1);
        let second = engine.subscribers(8).to_vec();
        assert!(
            first.is_empty() || first == [7, 8],
            "part of a batch: {first:?}"
        );
        assert!(
            second.is_empty() || second == [1],
            "part of a batch: {second:?}"
        );
        if !first.is_empty() {
            assert_eq!(second, [1], "a later read went back");
        }
        writer.join().unwrap();
        assert_eq!(engine.threads_of(1), [7, 8]);
        assert_eq!(engine.version(), 1);
    });
}

#[test]
fn two_racing_batches_are_each_published_whole() {
    loom::model(|| {
        let engine = Arc::new(Engine::new());
        engine.thread(7);
        let watch = engine.watch_subscribers(7).unwrap();
        let before = engine.version();
        let join = |c: u64| {
            let e = Arc::clone(&engine);
            thread::spawn(move || {
                e.batch(|b| {
                    b.connect(c, Caps::NONE);
                    b.subscribe(7, c).unwrap();
                })
            })
        };
        let (a, b) = (join(1), join(2));
        a.join().unwrap();
        b.join().unwrap();
        let moved = engine.version() - before;
        assert!(moved == 1 || moved == 2, "moved by {moved}");
        assert_eq!(engine.subscribers(7).to_vec(), [1, 2]);
        assert!(watch.get());
        assert_eq!(watch.version(), 1, "7 became occupied once");
        engine.snapshot().validate().unwrap();
    });
}

//! Guarantee 9: the change feed against the publish. A batch is never
//! visible before its version is published, a consumer that receives
//! batch `v` then sees a snapshot at `v` or later, a waiting consumer is
//! woken by the publish (a lost wake-up is a deadlock loom reports), and
//! batches come in order with no gap, or the consumer is told it lagged.
#![cfg(loom)]

use futures::StreamExt;
use loom::future::block_on;
use loom::thread;
use std::sync::Arc;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_core::{Caps, Config, Lagged};
use switchboard_loom_tests::support::Engine;

#[test]
fn a_received_batch_is_already_published() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        let mut feed = engine.changes();
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.connect(1, Caps::NONE);
        });
        // Racing the write: the batch may not be there yet, but if it is,
        // its version is published.
        let early = feed.try_next().unwrap();
        if let Some(batch) = &early {
            assert_eq!(batch.version, 1);
            let snap = engine.snapshot();
            assert!(snap.version() >= 1, "batch visible before its version");
            assert!(snap.is_connected(1));
        }
        writer.join().unwrap();
        if early.is_none() {
            assert_eq!(feed.try_next().unwrap().map(|b| b.version), Some(1));
        }
        assert_eq!(feed.try_next(), Ok(None));
    });
}

#[test]
fn a_waiting_consumer_is_woken_by_the_publish() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        let mut feed = engine.changes();
        let e = Arc::clone(&engine);
        let consumer = thread::spawn(move || {
            // Untimed (loom has no clock): a lost wake-up is a deadlock.
            let batch = feed.next_timeout(Duration::MAX).unwrap().unwrap();
            assert!(e.snapshot().version() >= batch.version);
            batch.version
        });
        engine.connect(1, Caps::NONE);
        assert_eq!(consumer.join().unwrap(), 1);
    });
}

#[test]
fn batches_are_contiguous_or_lagged() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::with_config(Config::default().change_log(1)));
        let mut feed = engine.changes();
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.connect(1, Caps::NONE);
            e.connect(2, Caps::NONE);
        });
        let mut seen = Vec::new();
        let mut lagged = false;
        for _ in 0..2 {
            match feed.try_next() {
                Ok(Some(b)) => {
                    assert!(!lagged);
                    assert_eq!(b.version, seen.len() as u64 + 1, "a gap");
                    assert!(engine.snapshot().version() >= b.version);
                    seen.push(b.version);
                }
                Ok(None) => assert!(!lagged),
                Err(Lagged) => lagged = true,
            }
        }
        writer.join().unwrap();
        // Once the writer is done, the feed either delivers the rest or
        // says it lagged: never a gap, never silence.
        loop {
            match feed.try_next() {
                Ok(Some(b)) => {
                    assert_eq!(b.version, seen.len() as u64 + 1, "a gap");
                    seen.push(b.version);
                }
                Ok(None) => {
                    assert_eq!(seen, [1, 2]);
                    break;
                }
                Err(Lagged) => {
                    assert!(seen.len() < 2);
                    break;
                }
            }
        }
    });
}

#[test]
fn change_stream_wakes_on_publish() {
    loom::model(|| {
        let engine = Arc::new(Engine::<u32>::new());
        let mut stream = engine.changes().into_stream();
        let e = Arc::clone(&engine);
        let writer = thread::spawn(move || {
            e.connect(1, Caps::NONE);
        });
        let batch = block_on(stream.next()).unwrap().unwrap();
        assert_eq!(batch.version, 1);
        assert!(engine.snapshot().version() >= 1);
        writer.join().unwrap();
    });
}

//! Guarantee 10: a bounded queue's `send` waiting for room races the
//! listener's receive and `clear_listener`. No command is lost or
//! duplicated, nothing deadlocks (a waiter never woken is a deadlock loom
//! reports), and a send still waiting when the listener goes gets its
//! command back.
#![cfg(loom)]

use loom::future::block_on;
use loom::thread;
use std::sync::Arc;
use switchboard_async::prelude::*;
use switchboard_core::{NoListener, QueueConfig};
use switchboard_loom_tests::support::Engine;

#[test]
fn bounded_send_vs_recv_vs_clear() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap(); // full

        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(2).err().map(NoListener::into_inner));
        let receiver = thread::spawn(move || {
            let first = listener.recv().ok();
            (listener, first)
        });
        entry.clear_listener();
        let returned = sender.join().unwrap();
        let (listener, first) = receiver.join().unwrap();

        // The queue is closed: drain it to the end.
        let mut received: Vec<u32> = first.into_iter().collect();
        while let Ok(m) = listener.recv() {
            received.push(m);
        }
        assert_eq!(received.first(), Some(&1), "queued before the race");
        let mut all = received.clone();
        all.extend(returned);
        all.sort_unstable();
        assert_eq!(all, [1, 2], "received {received:?} returned {returned:?}");
        assert!(listener.is_cancelled());
    });
}

#[test]
fn a_waiting_send_gets_its_command_back_when_cleared() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap(); // full, and nobody receives

        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(2));
        entry.clear_listener();
        assert_eq!(sender.join().unwrap(), Err(NoListener(2)));
        assert_eq!(listener.recv(), Ok(1));
        assert!(listener.recv().is_err());
    });
}

#[test]
fn a_waiting_send_gets_its_command_back_when_the_listener_drops() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap();

        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(2));
        drop(listener); // its task ended
        assert_eq!(sender.join().unwrap(), Err(NoListener(2)));
        assert!(!entry.has_listener());
    });
}

#[test]
fn send_async_wakes_when_the_listener_makes_room() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap();

        let receiver = thread::spawn(move || {
            let first = listener.recv();
            (listener, first)
        });
        assert_eq!(block_on(entry.send_async(2)), Ok(()));
        let (listener, first) = receiver.join().unwrap();
        assert_eq!((first, listener.try_recv()), (Ok(1), Ok(2)));
    });
}

/// The receive's lock-free fast path (`queue.rs`: one read-modify-write of
/// the count and waiter word) racing a blocking send that starts waiting:
/// the send is woken by the receive alone (no clear to wake it otherwise),
/// or saw the room before it waited. A lost wake-up is a deadlock loom
/// reports.
#[test]
fn a_blocking_send_is_woken_by_the_receive_alone() {
    loom::model(|| {
        let engine = Engine::<u32>::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        entry.try_send(1).unwrap(); // full

        let e = Arc::clone(&entry);
        let sender = thread::spawn(move || e.send(2));
        assert_eq!(listener.recv(), Ok(1));
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(listener.try_recv(), Ok(2));
    });
}

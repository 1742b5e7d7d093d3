//! `Engine::batch`: every write made through a batch is published as one
//! version (one change-log entry with its changes in the order made),
//! readers see all of it or none of it, watches and listeners are told
//! once after the publish, and a batch that panics publishes nothing.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use switchboard_core::{Caps, Change, ChangeBatch, Engine};

type E = Engine<u64, u64, (), u32, &'static str>;

#[test]
fn smoke() {
    let e = E::new();
    let v = e.version();
    let inc = e.batch(|b| {
        let inc = b.connect_with(1, Caps(1), "one");
        b.subscribe(10, 1).unwrap();
        b.subscribe(11, 1).unwrap();
        assert!(b.is_connected(1) && b.is_subscribed(11, 1) && b.has_subscribers(10));
        assert_eq!(b.incarnation(1), Some(inc));
        inc
    });
    assert_eq!(e.version(), v + 1, "one version for the whole batch");
    assert_eq!(e.incarnation(1), Some(inc));
    assert_eq!(e.threads_of(1), [10, 11]);
    assert_eq!(e.data(1), Some("one"));
    e.snapshot().validate().unwrap();
}

#[test]
fn one_change_log_entry_in_the_order_made() {
    let e = E::new();
    e.connect(2, Caps::NONE);
    let mut feed = e.changes();
    e.batch(|b| {
        b.connect(1, Caps::NONE);
        b.subscribe(5, 1).unwrap();
        b.subscribe(5, 2).unwrap();
        assert_eq!(b.disconnect(1), Vec::<u64>::new());
        b.thread(6);
        b.remove_thread(6);
    });
    let ChangeBatch {
        version, changes, ..
    } = feed.try_next().unwrap().expect("one batch");
    assert_eq!(version, e.version());
    assert_eq!(
        changes,
        [
            Change::Connected {
                c: 1,
                caps: Caps::NONE
            },
            Change::ThreadAdded { t: 5 },
            Change::Subscribed { t: 5, c: 1 },
            Change::Occupied { t: 5 },
            Change::Subscribed { t: 5, c: 2 },
            Change::Unsubscribed { t: 5, c: 1 },
            Change::Disconnected { c: 1 },
            Change::ThreadAdded { t: 6 },
            Change::ThreadRemoved { t: 6 },
        ]
    );
    assert!(
        feed.try_next().unwrap().is_none(),
        "nothing else was published"
    );
    assert_eq!(e.stats().subscriptions, 1);
}

#[test]
fn a_batch_that_changes_nothing_publishes_nothing() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(5, 1).unwrap();
    let v = e.version();
    e.batch(|b| {
        b.connect(1, Caps::NONE); // same caps
        b.subscribe(5, 1).unwrap(); // already
        assert!(!b.unsubscribe(6, 1));
        assert!(b.subscribe(5, 9).is_err()); // not live
        assert!(!b.remove_thread(7));
    });
    assert_eq!(e.version(), v);
}

/// A watch hears the net change of a batch: a thread occupied and vacated
/// again inside one batch was never seen occupied, so its watch does not
/// move; one occupied by the batch flips once.
#[test]
fn watches_are_told_the_net_change_once() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(5);
    e.thread(6);
    let (w5, w6) = (
        e.watch_subscribers(5).unwrap(),
        e.watch_subscribers(6).unwrap(),
    );
    let (v5, v6) = (w5.version(), w6.version());
    e.batch(|b| {
        b.subscribe(5, 1).unwrap();
        b.unsubscribe(5, 1);
        b.subscribe(6, 1).unwrap();
        b.unsubscribe(6, 1);
        b.subscribe(6, 1).unwrap();
    });
    assert_eq!(w5.version(), v5, "5 ended as it began: no flip");
    assert!(!w5.get());
    assert_eq!(w6.version(), v6 + 1, "6 flipped once");
    assert!(w6.get());
}

/// A removed thread's listener is cleared once the batch is published
/// (its token fires, its queue closes), and its watch closes.
#[test]
fn removed_threads_listeners_are_cleared_after_the_publish() {
    let e = Arc::new(E::new());
    let entry = e.thread(3);
    let listener = entry.set_listener(&e);
    let watch = e.watch_subscribers(3).unwrap();
    e.batch(|b| {
        assert!(b.remove_thread(3));
        // Not yet: the batch is not published.
        assert!(!listener.is_cancelled());
    });
    assert!(listener.is_cancelled());
    assert!(watch.is_closed());
    assert!(e.get_thread(3).is_none());
}

/// If the batch's closure panics, nothing of it is published: the graph,
/// the version and the feed are as before, and the engine goes on.
#[test]
fn a_panicking_batch_publishes_nothing() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let mut feed = e.changes();
    let before = e.version();
    let r = catch_unwind(AssertUnwindSafe(|| {
        e.batch(|b| {
            b.connect_with(2, Caps::NONE, "two");
            b.subscribe(7, 1).unwrap();
            b.disconnect(1);
            panic!("the host's batch body panicked");
        })
    }));
    assert!(r.is_err());
    assert_eq!(e.version(), before);
    assert!(feed.try_next().unwrap().is_none());
    assert!(e.is_connected(1) && !e.is_connected(2) && e.get_thread(7).is_none());
    e.snapshot().validate().unwrap();
    // The next write takes the next number.
    e.subscribe(7, 1).unwrap();
    assert_eq!(e.version(), before + 1);
    assert_eq!(feed.try_next().unwrap().unwrap().version, before + 1);
}

/// An engine write from inside a batch would wait for the batch's own lock:
/// it panics instead, and the batch publishes nothing.
#[test]
fn an_engine_write_inside_a_batch_panics() {
    let e = E::new();
    let before = e.version();
    let r = catch_unwind(AssertUnwindSafe(|| {
        e.batch(|b| {
            b.connect(1, Caps::NONE);
            e.connect(2, Caps::NONE);
        })
    }));
    assert!(r.is_err());
    assert_eq!(e.version(), before);
    assert!(!e.is_connected(1) && !e.is_connected(2));
    // Reads inside a batch are fine: they see the published graph.
    e.batch(|b| {
        b.connect(1, Caps::NONE);
        assert!(!e.is_connected(1));
    });
    assert!(e.is_connected(1));
}

/// Readers running beside batches see each batch whole or not at all: a
/// client's resume (connect_with and its rooms) and its leave are each one
/// batch, so a reader never sees the client with some of its rooms.
#[test]
fn readers_see_a_batch_whole_or_not_at_all() {
    const ROUNDS: u64 = 3_000;
    const ROOMS: [u64; 4] = [1, 2, 3, 4];
    let e = Arc::new(E::new());
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (e, done) = (Arc::clone(&e), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen = [0u64; 2];
            while !done.load(Ordering::Relaxed) {
                let snap = e.snapshot();
                let rooms = snap.threads_of(9);
                assert!(
                    rooms.is_empty() || rooms == ROOMS,
                    "a reader saw part of a batch: {rooms:?}"
                );
                seen[usize::from(!rooms.is_empty())] += 1;
                assert_eq!(snap.is_connected(9), !rooms.is_empty());
            }
            seen
        })
    };
    for _ in 0..ROUNDS {
        e.batch(|b| {
            b.connect_with(9, Caps::NONE, "client");
            for room in ROOMS {
                b.subscribe(room, 9).unwrap();
            }
        });
        e.batch(|b| {
            for room in ROOMS {
                b.unsubscribe(room, 9);
            }
            b.disconnect(9);
        });
    }
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(seen[0] > 0 || seen[1] > 0);
    assert_eq!(e.version(), 2 * ROUNDS);
    let watch = e.watch_subscribers(1).unwrap();
    assert!(!watch.get());
}

/// A state type with no `Default`: `subscribe_with` and `thread_with`
/// serve it, in a batch and outside; `init` runs only for a new entry.
#[test]
fn a_state_without_default() {
    struct Room(&'static str);
    let e: Engine<u64, u64, Room> = Engine::new();
    e.connect(1, Caps::NONE);
    let room = e.batch(|b| {
        let room = b.subscribe_with(7, 1, || Room("seven")).unwrap();
        b.thread_with(8, || Room("eight"));
        b.subscribe_with(7, 1, || unreachable!("7 exists")).unwrap();
        room
    });
    assert_eq!(room.state().0, "seven");
    let again = e.subscribe_with(7, 1, || unreachable!("7 exists")).unwrap();
    assert!(Arc::ptr_eq(&room, &again));
    assert_eq!(
        e.thread_with(8, || unreachable!("8 exists")).state().0,
        "eight"
    );
    assert!(e
        .subscribe_with(9, 2, || unreachable!("2 is not live"))
        .is_err());
    assert!(e.get_thread(9).is_none());
}

//! Threads: `thread`, `get_thread`, `remove_thread`, `remove_thread_if_idle`,
//! `clear_all_listeners`, and `ThreadEntry::{id, state}`.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Caps, Engine, TryRecvError, WatchError};

type E = Engine<u64, u64, Vec<u32>, String>;

const LONG: Duration = Duration::from_secs(5);

#[test]
fn smoke() {
    let e = E::new();
    assert!(e.get_thread(1).is_none());
    let a = e.thread(1);
    assert_eq!(a.id(), 1);
    let b = e.get_thread(1).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(e.remove_thread(1));
    assert!(e.get_thread(1).is_none());
}

#[test]
fn thread_is_get_or_create() {
    let e = E::new();
    let a = e.thread(5);
    let b = e.thread(5);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(b.id(), 5);
    // Creating a thread adds no subscribers.
    assert!(!e.has_subscribers(5));
    assert!(e.subscribers(5).is_empty());
    assert_eq!(e.snapshot().thread_count(), 1);

    let c = e.thread(6);
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.id(), 6);
    assert_eq!(e.snapshot().thread_count(), 2);
    assert_eq!(e.snapshot().threads().collect::<Vec<_>>(), vec![5, 6]);
}

#[test]
fn get_thread_unknown_is_none_and_creates_nothing() {
    let e = E::new();
    assert!(e.get_thread(3).is_none());
    assert!(e.get_thread(3).is_none());
    assert_eq!(e.snapshot().thread_count(), 0);
    e.thread(4);
    assert!(e.get_thread(3).is_none());
    assert_eq!(e.get_thread(4).unwrap().id(), 4);
}

#[test]
fn new_entry_state_is_default() {
    let e = E::new();
    assert!(e.thread(1).state().is_empty());
    e.connect(1, Caps::NONE);
    assert!(e.subscribe(2, 1).unwrap().state().is_empty());
}

#[test]
fn state_mutation_persists() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(1).state().push(5);
    e.get_thread(1).unwrap().state().push(6);
    e.subscribe(1, 1).unwrap().state().push(7);
    assert_eq!(*e.thread(1).state(), vec![5, 6, 7]);
    // Survives writes to the graph.
    e.connect(2, Caps(1));
    e.subscribe(1, 2).unwrap();
    e.unsubscribe(1, 1);
    e.thread(2);
    e.disconnect(2);
    assert_eq!(*e.get_thread(1).unwrap().state(), vec![5, 6, 7]);
    // And an old Arc sees the same state.
    let held = e.get_thread(1).unwrap();
    held.state().clear();
    assert!(e.get_thread(1).unwrap().state().is_empty());
    // Other threads are untouched.
    assert!(e.thread(2).state().is_empty());
}

#[test]
fn state_mutation_from_another_thread() {
    let e = Arc::new(E::new());
    e.thread(9);
    let handles: Vec<_> = (0..4u32)
        .map(|i| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for j in 0..100u32 {
                    e.get_thread(9).unwrap().state().push(i * 1000 + j);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let entry = e.get_thread(9).unwrap();
    let st = entry.state();
    assert_eq!(st.len(), 400);
    for i in 0..4u32 {
        let mine: Vec<u32> = st.iter().copied().filter(|v| v / 1000 == i).collect();
        assert_eq!(mine, (0..100).map(|j| i * 1000 + j).collect::<Vec<_>>());
    }
}

#[test]
fn remove_thread_drops_edges_clears_listener_closes_watches() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let entry = e.subscribe(10, 1).unwrap();
    e.subscribe(10, 2).unwrap();
    e.subscribe(11, 1).unwrap();
    let owner = Arc::new(());
    let listener = entry.set_listener(&owner);
    let token = listener.token();
    let mut watch = e.watch_subscribers(10).unwrap();
    assert!(watch.get());
    assert!(!watch.is_closed());
    assert!(!token.is_cancelled());

    assert!(e.remove_thread(10));

    // Entry and edges gone, both ways.
    assert!(e.get_thread(10).is_none());
    assert!(!e.has_subscribers(10));
    assert!(e.subscribers(10).is_empty());
    assert_eq!(e.threads_of(1), vec![11]);
    assert_eq!(e.threads_of(2), Vec::<u64>::new());
    // Connections stay live.
    assert!(e.is_connected(1));
    assert!(e.is_connected(2));
    let snap = e.snapshot();
    assert_eq!(snap.threads().collect::<Vec<_>>(), vec![11]);
    snap.validate().unwrap();

    // Listener cleared.
    assert!(token.is_cancelled());
    assert!(listener.is_cancelled());
    assert!(!entry.has_listener());
    assert!(!entry.listener_matches(&owner));
    assert_eq!(listener.try_recv(), Err(TryRecvError::Closed));
    assert!(listener.recv().is_err());
    assert_eq!(
        entry.send("late".to_string()).unwrap_err().into_inner(),
        "late"
    );

    // Watch closed. Removal took the last subscribers away (true -> false):
    // that change is reported first, then the close.
    assert!(watch.is_closed());
    assert!(!watch.get());
    let t0 = std::time::Instant::now();
    assert_eq!(watch.wait_changed(LONG), Ok(false));
    assert_eq!(watch.wait_changed(LONG), Err(WatchError::Closed));
    assert!(t0.elapsed() < Duration::from_secs(2), "closed watch waited");

    // Unsubscribing from a removed thread is a no-op.
    assert!(!e.unsubscribe(10, 1));
    assert!(e.get_thread(10).is_none());
}

#[test]
fn remove_thread_then_recreate_is_a_new_entry() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let old = e.subscribe(10, 1).unwrap();
    old.state().push(1);
    let old_listener = old.set_listener(&Arc::new(()));
    assert!(e.remove_thread(10));
    let new = e.thread(10);
    assert!(!Arc::ptr_eq(&old, &new));
    assert!(new.state().is_empty());
    assert!(!new.has_listener());
    assert!(!e.has_subscribers(10));
    assert!(e.subscribers(10).is_empty());
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    // The old listener stays dead.
    assert!(old_listener.is_cancelled());
    // The new entry's queue is independent of the old one.
    let l = new.set_listener(&Arc::new(()));
    new.send("x".into()).unwrap();
    assert_eq!(l.recv_timeout(LONG).unwrap(), "x");
    assert_eq!(old_listener.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn remove_thread_unknown_is_false() {
    let e = E::new();
    assert!(!e.remove_thread(1));
    e.thread(2);
    assert!(!e.remove_thread(1));
    assert!(e.remove_thread(2));
    assert!(!e.remove_thread(2));
    assert_eq!(e.snapshot().thread_count(), 0);
}

#[test]
fn remove_thread_if_idle_with_subscriber_changes_nothing() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let entry = e.subscribe(10, 1).unwrap();
    entry.state().push(3);
    let owner = Arc::new(());
    let listener = entry.set_listener(&owner);
    let watch = e.watch_subscribers(10).unwrap();
    let version = watch.version();

    assert!(!e.remove_thread_if_idle(10));

    let still = e.get_thread(10).expect("busy thread must stay");
    assert!(Arc::ptr_eq(&entry, &still));
    assert_eq!(e.subscribers(10).to_vec(), vec![1]);
    assert_eq!(e.threads_of(1), vec![10]);
    assert_eq!(*still.state(), vec![3]);
    assert!(still.has_listener());
    assert!(still.listener_matches(&owner));
    assert!(!listener.is_cancelled());
    assert_eq!(still.generation(), listener.generation());
    assert!(!watch.is_closed());
    assert!(watch.get());
    assert_eq!(watch.version(), version);
    still.send("hi".into()).unwrap();
    assert_eq!(listener.try_recv().unwrap(), "hi");
}

#[test]
fn remove_thread_if_idle_when_idle() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let entry = e.subscribe(10, 1).unwrap();
    let listener = entry.set_listener(&Arc::new(()));
    let watch = e.watch_subscribers(10).unwrap();
    assert!(e.unsubscribe(10, 1));

    assert!(e.remove_thread_if_idle(10));
    assert!(e.get_thread(10).is_none());
    assert!(listener.is_cancelled());
    assert!(!entry.has_listener());
    assert!(watch.is_closed());
    assert!(!e.remove_thread_if_idle(10));
    assert!(!e.remove_thread(10));

    // A never-subscribed thread is idle too.
    e.thread(20);
    assert!(e.remove_thread_if_idle(20));
    assert!(e.get_thread(20).is_none());
    // Unknown: false.
    assert!(!e.remove_thread_if_idle(30));
    assert!(e.get_thread(30).is_none());
    assert!(e.is_connected(1));
    e.snapshot().validate().unwrap();
}

#[test]
fn remove_thread_if_idle_after_disconnect() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.subscribe(10, 1).unwrap();
    e.subscribe(11, 1).unwrap();
    e.connect(2, Caps::NONE);
    e.subscribe(11, 2).unwrap();
    let left = e.disconnect(1);
    assert_eq!(left, vec![10]);
    for t in left {
        assert!(e.remove_thread_if_idle(t));
    }
    assert!(!e.remove_thread_if_idle(11));
    assert_eq!(e.snapshot().threads().collect::<Vec<_>>(), vec![11]);
}

#[test]
fn clear_all_listeners_keeps_entries() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let owner = Arc::new(());
    let mut entries = Vec::new();
    let mut listeners = Vec::new();
    for t in 1..=5u64 {
        let entry = e.subscribe(t, 1).unwrap();
        entry.state().push(t as u32);
        listeners.push(entry.set_listener(&owner));
        entries.push(entry);
    }
    // One thread without a listener.
    let bare = e.thread(6);
    let watch = e.watch_subscribers(1).unwrap();

    e.clear_all_listeners();

    for (entry, l) in entries.iter().zip(&listeners) {
        let t = entry.id();
        assert!(l.is_cancelled(), "thread {t}");
        assert!(l.token().is_cancelled(), "thread {t}");
        assert_eq!(l.try_recv(), Err(TryRecvError::Closed), "thread {t}");
        assert!(!entry.has_listener(), "thread {t}");
        assert!(!entry.listener_matches(&owner), "thread {t}");
        let got = e.get_thread(t).expect("entry stays");
        assert!(Arc::ptr_eq(entry, &got));
        assert_eq!(*got.state(), vec![t as u32]);
        assert!(e.subscribers(t).contains(1));
        assert_eq!(
            entry.send("m".into()).unwrap_err().into_inner(),
            "m".to_string()
        );
    }
    assert!(!bare.has_listener());
    assert!(e.get_thread(6).is_some());
    assert_eq!(e.threads_of(1), vec![1, 2, 3, 4, 5]);
    assert_eq!(e.snapshot().thread_count(), 6);
    assert!(!watch.is_closed());

    // Listeners can be set again, with a fresh generation.
    let again = entries[0].set_listener(&owner);
    assert!(again.generation() > listeners[0].generation());
    assert!(!again.is_cancelled());
    entries[0].send("n".into()).unwrap();
    assert_eq!(again.try_recv().unwrap(), "n");
}

#[test]
fn entry_id_matches_key() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    for t in [0u64, 1, 7, u64::MAX] {
        assert_eq!(e.thread(t).id(), t);
        assert_eq!(e.subscribe(t, 1).unwrap().id(), t);
        assert_eq!(e.get_thread(t).unwrap().id(), t);
    }
}

#[test]
fn removing_everything_leaves_an_empty_engine() {
    let e = E::new();
    for c in 0..10u64 {
        e.connect(c, Caps(c));
        for t in 0..10u64 {
            if (c + t) % 3 == 0 {
                e.subscribe(t, c).unwrap();
            }
        }
    }
    for t in 0..10u64 {
        e.thread(t);
    }
    for c in 0..10u64 {
        e.disconnect(c);
    }
    for t in 0..10u64 {
        assert!(e.remove_thread_if_idle(t), "thread {t}");
    }
    let snap = e.snapshot();
    assert_eq!(snap.connection_count(), 0);
    assert_eq!(snap.thread_count(), 0);
    assert_eq!(snap.connections().count(), 0);
    assert_eq!(snap.threads().count(), 0);
    snap.validate().unwrap();
}

#[test]
fn remove_entry_if_idle_only_removes_that_entry_when_idle() {
    let e: Engine<u64, u64> = Engine::new();
    e.connect(1, Caps::NONE);
    let first = e.subscribe(3, 1).unwrap();
    // Not idle.
    assert!(!e.remove_entry_if_idle(&first));
    assert!(e.get_thread(3).is_some());
    e.unsubscribe(3, 1);
    assert!(e.remove_entry_if_idle(&first));
    assert!(e.get_thread(3).is_none());
    // A stale handle never removes the entry that replaced it.
    let second = e.thread(3);
    assert!(!e.remove_entry_if_idle(&first));
    assert!(Arc::ptr_eq(&e.get_thread(3).unwrap(), &second));
    assert!(e.remove_entry_if_idle(&second));
    assert!(!e.remove_entry_if_idle(&second));
}

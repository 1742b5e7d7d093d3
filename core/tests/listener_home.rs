//! The atomic get-or-start (`set_listener_if_none`), and the listener
//! home's first use. (That the home is allocated lazily is measured with a
//! counting allocator in `benches/tests/lazy_home.rs`.)
//!
//! Known to catch: `set_listener_if_none` testing and starting under two
//! holds of the lock (two racing callers both start); one that replaces a
//! current listener; two first users building two homes (two listeners of
//! generation 1).

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use switchboard_core::{Engine, NoListener, QueueConfig, SendError};

type E = Engine<u64, u64, (), u32>;

#[test]
fn smoke() {
    let e = E::new();
    let room = e.thread(1);
    let owner = Arc::new(());
    let first = room.set_listener_if_none(&owner).expect("free slot");
    assert_eq!(first.generation(), 1);
    assert!(room.set_listener_if_none(&owner).is_none());
    assert!(!first.is_cancelled(), "the refused call replaced it");
    room.send(5).unwrap();
    assert_eq!(first.try_recv(), Ok(5));
}

#[test]
fn starts_again_after_a_clear_or_a_drop() {
    let e = E::new();
    let room = e.thread(1);
    let owner = Arc::new(());
    let first = room.set_listener_if_none(&owner).unwrap();
    room.clear_listener();
    assert!(first.is_cancelled());
    let second = room.set_listener_if_none(&owner).expect("cleared: free");
    assert_eq!(second.generation(), 2);
    drop(second);
    let third = room.set_listener_if_none(&owner).expect("dropped: free");
    assert_eq!(third.generation(), 3);
    assert!(room.has_listener());
}

#[test]
fn queue_config_and_owner_are_honoured() {
    let e = E::new();
    let room = e.thread(1);
    let owner = Arc::new(7u8);
    let listener = room
        .set_listener_if_none_with(&owner, QueueConfig::bounded(1))
        .unwrap();
    assert_eq!(listener.capacity(), Some(1));
    assert!(room.listener_matches(&owner));
    room.try_send(1).unwrap();
    assert_eq!(room.try_send(2), Err(SendError::Full(2)));
}

#[test]
fn after_shutdown_it_returns_a_closed_listener_as_set_listener_does() {
    let e = E::new();
    let room = e.thread(1);
    assert!(e.shutdown(Duration::ZERO).still_running.is_empty());
    let late = room.set_listener_if_none(&Arc::new(())).unwrap();
    assert!(late.is_cancelled());
    assert!(late.try_recv().is_err());
    assert!(!room.has_listener());
    assert_eq!(room.send(1), Err(NoListener(1)));
}

#[test]
fn racing_callers_start_exactly_one() {
    const ROUNDS: u64 = 200;
    const CALLERS: usize = 4;
    let e = Arc::new(E::new());
    for t in 0..ROUNDS {
        let room = e.thread(t);
        let gate = Arc::new(Barrier::new(CALLERS));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let room = Arc::clone(&room);
                let gate = Arc::clone(&gate);
                thread::spawn(move || {
                    gate.wait();
                    room.set_listener_if_none(&Arc::new(()))
                })
            })
            .collect();
        let started: Vec<_> = callers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        assert_eq!(
            started.len(),
            1,
            "thread {t}: one listener, not {}",
            started.len()
        );
        assert_eq!(started[0].generation(), 1);
        assert!(!started[0].is_cancelled());
        assert_eq!(room.generation(), 1);
    }
}

#[test]
fn racing_first_users_share_one_home() {
    const ROUNDS: u64 = 200;
    let e = Arc::new(E::new());
    for t in 0..ROUNDS {
        let room = e.thread(t);
        let gate = Arc::new(Barrier::new(2));
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let room = Arc::clone(&room);
                let gate = Arc::clone(&gate);
                thread::spawn(move || {
                    gate.wait();
                    room.set_listener(&Arc::new(()))
                })
            })
            .collect();
        let listeners: Vec<_> = setters.into_iter().map(|s| s.join().unwrap()).collect();
        // One home: generations 1 and 2, exactly one of them current.
        let mut generations: Vec<u64> = listeners.iter().map(|l| l.generation()).collect();
        generations.sort_unstable();
        assert_eq!(generations, [1, 2], "thread {t}: two homes");
        let live: Vec<_> = listeners.iter().filter(|l| !l.is_cancelled()).collect();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].generation(), 2);
        room.send(9).unwrap();
        assert_eq!(live[0].try_recv(), Ok(9));
    }
}

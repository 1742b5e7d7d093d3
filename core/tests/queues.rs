//! Listener queues: capacity, backpressure (`try_send`, `send_timeout`,
//! blocking `send`, `try_request`), and the slot a dropped listener frees
//! (guarantee 10).
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use switchboard_core::{
    Engine, NoListener, QueueConfig, Reply, ReplyError, SendError, ThreadEntry, TryRecvError,
};

type E = Engine<u64, u64, (), u64>;
type Entry = ThreadEntry<u64, (), u64>;

const LONG: Duration = Duration::from_secs(10);
/// Long enough for another thread to have parked in the wait under test.
const SETTLE: Duration = Duration::from_millis(30);

/// Concurrent producers, commands each, and the capacity they share.
const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 5_000;
const CAP: usize = 8;

fn entry() -> (E, Arc<Entry>) {
    let e = E::new();
    let t = e.thread(1);
    (e, t)
}

fn owner() -> Arc<()> {
    Arc::new(())
}

#[test]
fn smoke() {
    let (_e, t) = entry();
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(2));
    assert_eq!(l.capacity(), Some(2));
    t.try_send(1).unwrap();
    t.send(2).unwrap();
    assert_eq!(t.queue_len(), 2);
    assert_eq!(t.try_send(3), Err(SendError::Full(3)));
    assert_eq!(l.recv(), Ok(1));
    t.try_send(3).unwrap();
    assert_eq!(t.try_send(4).map_err(SendError::into_inner), Err(4));
    assert_eq!(
        (l.recv(), l.try_recv(), l.try_recv()),
        (Ok(2), Ok(3), Err(TryRecvError::Empty))
    );
    assert_eq!(t.queue_len(), 0);
}

#[test]
fn no_listener_comes_back_from_every_send() {
    let (_e, t) = entry();
    assert_eq!(t.try_send(1), Err(SendError::NoListener(1)));
    assert_eq!(t.send_timeout(2, LONG), Err(SendError::NoListener(2)));
    assert_eq!(t.send(3), Err(NoListener(3)));
    assert_eq!(t.queue_len(), 0);
    let err = t.try_request(|r: Reply<u64>| {
        drop(r);
        4
    });
    assert_eq!(err.map(|_| ()), Err(SendError::NoListener(4)));
}

#[test]
fn zero_capacity_is_raised_to_one() {
    let (_e, t) = entry();
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(0));
    assert_eq!(l.capacity(), Some(1));
    t.try_send(1).unwrap();
    assert_eq!(t.try_send(2), Err(SendError::Full(2)));
}

#[test]
fn unbounded_never_fills() {
    let (_e, t) = entry();
    let l = t.set_listener(&owner());
    assert_eq!(l.capacity(), None);
    for i in 0..20_000 {
        t.try_send(i).unwrap();
    }
    assert_eq!(t.queue_len(), 20_000);
    assert_eq!(l.len(), 20_000);
}

#[test]
fn send_timeout_times_out_then_succeeds_when_room_is_made() {
    let (_e, t) = entry();
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
    t.send(1).unwrap();
    let start = Instant::now();
    assert_eq!(t.send_timeout(2, SETTLE), Err(SendError::Full(2)));
    assert!(start.elapsed() >= SETTLE);

    let receiver = thread::spawn(move || {
        thread::sleep(SETTLE);
        let first = l.recv();
        (l, first)
    });
    assert_eq!(t.send_timeout(2, LONG), Ok(()));
    let (l, first) = receiver.join().unwrap();
    assert_eq!((first, l.recv()), (Ok(1), Ok(2)));
}

#[test]
fn blocking_send_waits_for_room() {
    let (_e, t) = entry();
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
    t.send(1).unwrap();
    let sent = Arc::new(AtomicBool::new(false));
    let sender = {
        let (t, sent) = (Arc::clone(&t), Arc::clone(&sent));
        thread::spawn(move || {
            let r = t.send(2);
            sent.store(true, Ordering::SeqCst);
            r
        })
    };
    thread::sleep(SETTLE);
    assert!(!sent.load(Ordering::SeqCst), "send did not wait for room");
    assert_eq!(l.recv(), Ok(1));
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(l.recv_timeout(LONG), Ok(2));
}

/// A send waiting for room fails with its command when the listener goes,
/// however it goes; a replacement never receives it.
#[test]
fn waiting_send_gets_its_command_back_when_the_listener_goes() {
    for how in ["clear", "replace", "drop", "remove"] {
        let e = E::new();
        let t = e.thread(1);
        let l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
        t.send(1).unwrap();
        let sender = {
            let t = Arc::clone(&t);
            thread::spawn(move || t.send(2))
        };
        thread::sleep(SETTLE);
        let mut next = None;
        match how {
            "clear" => t.clear_listener(),
            "replace" => next = Some(t.set_listener_with(&owner(), QueueConfig::bounded(1))),
            "drop" => drop(l),
            _ => assert!(e.remove_thread(1)),
        }
        assert_eq!(sender.join().unwrap(), Err(NoListener(2)), "{how}");
        if let Some(next) = next {
            assert_eq!(next.try_recv(), Err(TryRecvError::Empty), "{how}");
        }
    }
}

#[test]
fn timed_send_gets_its_command_back_when_cleared() {
    let (_e, t) = entry();
    let _l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
    t.send(1).unwrap();
    let sender = {
        let t = Arc::clone(&t);
        thread::spawn(move || t.send_timeout(2, LONG))
    };
    thread::sleep(SETTLE);
    let start = Instant::now();
    t.clear_listener();
    assert_eq!(sender.join().unwrap(), Err(SendError::NoListener(2)));
    assert!(start.elapsed() < LONG);
}

#[test]
fn try_request_gives_the_command_back_when_full() {
    enum Cmd {
        Ask(Reply<u32>),
    }
    let e: Engine<u64, u64, (), Cmd> = Engine::new();
    let t = e.thread(1);
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
    let first = t.try_request(Cmd::Ask).unwrap();
    let Err(SendError::Full(Cmd::Ask(reply))) = t.try_request(Cmd::Ask) else {
        panic!("the second request should find the queue full");
    };
    reply.send(7); // the refused request's reply is still usable by the caller
    let Ok(Cmd::Ask(reply)) = l.recv() else {
        panic!("the first request is queued");
    };
    reply.send(1);
    assert_eq!(first.wait(), Ok(1));
    // A request queued and then discarded with its queue still resolves.
    let pending = t.try_request(Cmd::Ask).unwrap();
    drop(l);
    assert_eq!(pending.wait(), Err(ReplyError));
}

/// The queue never holds more than its capacity while producers race, and
/// every command arrives exactly once, in per-producer order.
#[test]
fn capacity_holds_under_concurrent_producers() {
    let (_e, t) = entry();
    let l = t.set_listener_with(&owner(), QueueConfig::bounded(CAP));
    let start = Arc::new(Barrier::new(PRODUCERS as usize + 1));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (t, start) = (Arc::clone(&t), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..PER_PRODUCER {
                    let m = p * PER_PRODUCER + i;
                    // Mix the three ways of waiting for room.
                    match i % 3 {
                        0 => t.send(m).unwrap(),
                        1 => t.send_timeout(m, LONG).unwrap(),
                        _ => {
                            let mut m = m;
                            loop {
                                match t.try_send(m) {
                                    Ok(()) => break,
                                    Err(SendError::Full(back)) => {
                                        m = back;
                                        thread::yield_now();
                                    }
                                    Err(SendError::NoListener(_)) => panic!("listener gone"),
                                }
                            }
                        }
                    }
                    assert!(t.queue_len() <= CAP);
                }
            })
        })
        .collect();
    start.wait();
    let mut last = vec![None; PRODUCERS as usize];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + LONG;
    while seen.len() < (PRODUCERS * PER_PRODUCER) as usize {
        assert!(Instant::now() < deadline, "producers stalled");
        assert!(l.len() <= CAP, "queue over capacity: {}", l.len());
        let m = l.recv_timeout(LONG).expect("a command");
        let p = (m / PER_PRODUCER) as usize;
        assert!(last[p] < Some(m), "out of order from producer {p}");
        last[p] = Some(m);
        assert!(seen.insert(m), "duplicate {m}");
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(l.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_dropped_listener_clears_its_slot() {
    let (_e, t) = entry();
    let l = t.set_listener(&owner());
    let token = l.token();
    t.send(1).unwrap();
    drop(l);
    assert!(!t.has_listener());
    assert!(token.is_cancelled());
    assert_eq!(t.generation(), 1);
    assert_eq!(t.send(2), Err(NoListener(2)));
    let next = t.set_listener(&owner());
    assert_eq!(next.generation(), 2);
    t.send(3).unwrap();
    assert_eq!(next.recv(), Ok(3)); // nothing of the first queue leaks over
}

#[test]
fn dropping_a_replaced_listener_changes_nothing() {
    let (_e, t) = entry();
    let first = t.set_listener(&owner());
    let second = t.set_listener(&owner());
    drop(first);
    assert!(t.has_listener());
    assert!(!second.is_cancelled());
    t.send(1).unwrap();
    assert_eq!(second.recv(), Ok(1));
    // Nor does dropping a cleared one touch a later listener.
    t.clear_listener();
    let third = t.set_listener(&owner());
    drop(second);
    assert!(t.has_listener() && !third.is_cancelled());
}

/// The `if !entry.has_listener()` host pattern survives a listener task
/// that panics: its slot clears, a new listener starts, nothing hangs (a
/// sender waiting on its full queue gets its command back).
#[test]
fn a_panicking_listener_task_frees_its_room() {
    let (_e, t) = entry();
    let start_listener = |t: &Arc<Entry>| -> Option<thread::JoinHandle<()>> {
        if t.has_listener() {
            return None;
        }
        let l = t.set_listener_with(&owner(), QueueConfig::bounded(1));
        Some(thread::spawn(move || {
            let m = l.recv().unwrap();
            assert_ne!(m, 666, "the listener task panics on 666");
        }))
    };
    let task = start_listener(&t).expect("no listener yet");
    assert!(start_listener(&t).is_none(), "one listener at a time");
    // Fill: the task takes 666 and panics; a second command waits for room
    // in a queue nobody will drain.
    t.send(666).unwrap();
    let waiting = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            // Waits until the panic frees the slot, or gets in first.
            let _ = t.send(1);
            t.send(2)
        })
    };
    assert!(task.join().is_err(), "the task panicked");
    let outcome = waiting.join().unwrap();
    assert_eq!(outcome, Err(NoListener(2)));
    assert!(!t.has_listener());
    let task = start_listener(&t).expect("a new listener starts");
    t.send(7).unwrap();
    task.join().unwrap();
    assert!(!t.has_listener());
}

/// Replacements racing senders that wait for room: every command reaches
/// exactly one listener or comes back to its sender (none lost, none
/// duplicated), and no sender hangs.
#[test]
fn bounded_listener_churn_loses_nothing() {
    const SENDERS: u64 = 2;
    const PER_SENDER: u64 = 20_000;
    const REPLACEMENTS: usize = 2_000;
    let (_e, t) = entry();
    let (got_tx, got_rx) = std::sync::mpsc::channel::<u64>();
    let serve = |l: switchboard_core::Listener<u64>, got: std::sync::mpsc::Sender<u64>| {
        thread::spawn(move || {
            while let Ok(m) = l.recv() {
                got.send(m).unwrap();
            }
        })
    };
    let mut servers = vec![serve(
        t.set_listener_with(&owner(), QueueConfig::bounded(2)),
        got_tx.clone(),
    )];
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let mut returned = Vec::new();
                for i in 0..PER_SENDER {
                    let m = s * PER_SENDER + i;
                    let back = match i % 2 {
                        0 => t.send(m).err().map(NoListener::into_inner),
                        _ => t.send_timeout(m, LONG).err().map(SendError::into_inner),
                    };
                    returned.extend(back);
                }
                returned
            })
        })
        .collect();
    // Replace while the senders run (bounded in count).
    let mut replaced = 0;
    while replaced < REPLACEMENTS && !senders.iter().all(|s| s.is_finished()) {
        let l = t.set_listener_with(&owner(), QueueConfig::bounded(2));
        servers.push(serve(l, got_tx.clone()));
        replaced += 1;
        thread::sleep(Duration::from_micros(200));
    }
    let mut returned: Vec<u64> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    t.clear_listener();
    for s in servers {
        s.join().unwrap();
    }
    drop(got_tx);
    assert!(replaced > 0, "no replacement raced the senders");
    let mut all: Vec<u64> = got_rx.iter().collect();
    all.append(&mut returned);
    all.sort_unstable();
    let want: Vec<u64> = (0..SENDERS * PER_SENDER).collect();
    assert_eq!(all.len(), want.len(), "lost or duplicated commands");
    assert_eq!(all, want);
}

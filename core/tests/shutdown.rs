//! `Engine::shutdown`: no listener starts afterwards, every current one is
//! cleared, and the wait ends when every listener handle is dropped or
//! names the threads still holding one (guarantee 11).
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use switchboard_core::{Engine, NoListener, QueueConfig, RecvError};

type E = Engine<u64, u64, (), u64>;

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(50);
/// Long enough for prompt tasks on a loaded machine to drop their listeners.
const GRACE: Duration = Duration::from_secs(1);
/// Listener tasks that exit as soon as their queue closes.
const PROMPT_TASKS: u64 = 16;

#[test]
fn smoke() {
    let e = E::new();
    assert!(!e.is_shut_down());
    let report = e.shutdown(SHORT);
    assert!(report.still_running.is_empty() && report.is_complete());
    assert!(e.is_shut_down());
    // Everything but listeners keeps working.
    let t = e.thread(1);
    assert_eq!(t.send(1), Err(NoListener(1)));
}

#[test]
fn prompt_tasks_end_and_nothing_starts_afterwards() {
    let e = Arc::new(E::new());
    let (done_tx, done_rx) = mpsc::channel();
    let tasks: Vec<_> = (0..PROMPT_TASKS)
        .map(|t| {
            let l = e.thread(t).set_listener(&e);
            let done = done_tx.clone();
            thread::spawn(move || {
                while l.recv().is_ok() {}
                assert!(l.is_cancelled(), "the token fired before the queue closed");
                // Reported while the listener is still held: shutdown
                // cannot return before this.
                done.send(t).unwrap();
                drop(l);
            })
        })
        .collect();
    for t in 0..PROMPT_TASKS {
        e.thread(t).send(t).unwrap();
    }
    let start = Instant::now();
    let report = e.shutdown(LONG);
    assert!(
        report.still_running.is_empty(),
        "{:?}",
        report.still_running
    );
    assert!(start.elapsed() < LONG);
    // Every task reported before dropping its listener: all are done.
    let finished: Vec<_> = done_rx.try_iter().collect();
    assert_eq!(finished.len(), PROMPT_TASKS as usize);
    for task in tasks {
        task.join().unwrap();
    }
    for t in 0..PROMPT_TASKS {
        let entry = e.thread(t);
        assert!(!entry.has_listener());
        let generation = entry.generation();
        let late = entry.set_listener_with(&e, QueueConfig::bounded(4));
        assert!(late.is_cancelled());
        assert_eq!(late.recv(), Err(RecvError));
        assert!(!entry.has_listener());
        assert_eq!(entry.generation(), generation);
        assert_eq!(entry.send(9), Err(NoListener(9)));
    }
    // A late listener is a live handle: a second shutdown names it.
    let late = e.thread(3).set_listener(&e);
    assert_eq!(e.shutdown(Duration::ZERO).still_running, [3]);
    drop(late);
    assert!(e.shutdown(Duration::ZERO).still_running.is_empty());
}

#[test]
fn a_task_holding_its_listener_past_the_timeout_is_named() {
    let e = Arc::new(E::new());
    let prompt: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|t| {
            let l = e.thread(t).set_listener(&e);
            thread::spawn(move || while l.recv().is_ok() {})
        })
        .collect();
    // Thread 7's task ignores its cancellation until told to stop; thread 5
    // holds a replaced listener as well as its current one.
    let stubborn = e.thread(7).set_listener(&e);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let holder = thread::spawn(move || {
        let _ = stop_rx.recv_timeout(LONG);
        drop(stubborn);
    });
    let old5 = e.thread(5).set_listener(&e);
    let new5 = e.thread(5).set_listener(&e);

    let start = Instant::now();
    let report = e.shutdown(GRACE);
    assert!(start.elapsed() >= GRACE);
    assert_eq!(report.still_running, [5, 7]);
    for task in prompt {
        task.join().unwrap();
    }
    assert!(old5.is_cancelled() && new5.is_cancelled());
    drop((old5, new5));
    assert_eq!(e.shutdown(SHORT).still_running, [7]);
    stop_tx.send(()).unwrap();
    assert!(e.shutdown(LONG).still_running.is_empty());
    holder.join().unwrap();
}

/// A handle kept on a removed thread's entry can still set a listener; a
/// shutdown clears it too.
#[test]
fn listeners_of_detached_entries_are_cleared() {
    let e = Arc::new(E::new());
    let old = e.thread(1);
    assert!(e.remove_thread(1));
    let l = old.set_listener(&e);
    assert!(old.has_listener());
    let task = thread::spawn(move || while l.recv().is_ok() {});
    assert!(e.shutdown(LONG).still_running.is_empty());
    task.join().unwrap();
    assert!(!old.has_listener());
}

#[test]
fn shutdown_wait_reports_progress() {
    let e = E::new();
    let l = e.thread(4).set_listener(&Arc::new(()));
    let wait = e.begin_shutdown();
    assert!(l.is_cancelled());
    assert_eq!(wait.still_running(), [4]);
    assert_eq!(wait.wait_timeout(Duration::ZERO).still_running, [4]);
    drop(l);
    assert!(wait.still_running().is_empty());
    assert!(wait.wait_timeout(Duration::ZERO).is_complete());
    assert!(format!("{e:?}").contains("live_listener_handles: 0"));
}

/// A replaced listener still draining keeps its thread running beside the
/// new one: the registry counts every live handle of a thread, not one per
/// thread, so dropping either handle leaves the thread named, and the
/// report says complete only once both are gone.
#[test]
fn every_live_handle_of_a_thread_counts_until_dropped() {
    for drop_new_first in [true, false] {
        let e = E::new();
        let owner = Arc::new(());
        let entry = e.thread(1);
        let old = entry.set_listener(&owner);
        let new = entry.set_listener(&owner);
        assert!(old.is_cancelled() && !new.is_cancelled());
        let stats = e.stats();
        assert_eq!((stats.listeners, stats.live_listener_handles), (1, 2));
        let shutdown = e.begin_shutdown();
        assert_eq!(shutdown.still_running(), [1]);
        let (first, second) = if drop_new_first {
            (new, old)
        } else {
            (old, new)
        };
        drop(first);
        assert_eq!(shutdown.still_running(), [1], "one generation still runs");
        assert_eq!(e.stats().live_listener_handles, 1);
        let report = shutdown.wait_timeout(SHORT);
        assert!(!report.is_complete(), "complete while a listener runs");
        assert_eq!(report.still_running, [1]);
        drop(second);
        assert!(shutdown.wait_timeout(LONG).is_complete());
        assert!(shutdown.still_running().is_empty());
        assert_eq!(e.stats().live_listener_handles, 0);
    }
}

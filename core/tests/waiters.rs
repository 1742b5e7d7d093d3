//! The waiter list every watch, token, reply and queue parks on: a waiter
//! dropped while pending frees its slot, so short-lived waiters never grow
//! a list beyond the ones alive at once.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use switchboard_core::wait_list_probe::Counter;
use switchboard_core::{Caps, Engine, QueueConfig};

type E = Engine<u64, u64, (), u64>;

/// Short-lived waits on one quiet watch.
const SHORT_LIVED: usize = 1_000_000;
/// Waiters alive at once in the growth tests.
const ALIVE: usize = 64;
/// Threads of short-lived waiters, and waits each.
const THREADS: usize = 4;
const PER_THREAD: usize = 20_000;

/// A waker that does nothing; one byte so that it is not zero-sized.
struct Noop(#[allow(dead_code)] u8);

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// A context whose waker does nothing (the tests poll by hand). One waker
/// for the whole process, held by a static: LeakSanitizer sees it reachable
/// (its `Noop` is not zero-sized, so the waker's pointer lies inside the
/// allocation).
fn cx() -> Context<'static> {
    static NOOP: std::sync::OnceLock<Waker> = std::sync::OnceLock::new();
    Context::from_waker(NOOP.get_or_init(|| Waker::from(Arc::new(Noop(0)))))
}

#[test]
fn smoke() {
    let counter = Counter::new();
    let w = counter.waiter();
    assert_eq!(w.poll_at_least(1, &mut cx()), Poll::Pending);
    assert_eq!(counter.waiters(), 1);
    counter.bump();
    assert_eq!(
        counter.waiters(),
        1,
        "woken waiters keep their slot until done"
    );
    assert_eq!(w.poll_at_least(1, &mut cx()), Poll::Ready(1));
    assert_eq!(counter.waiters(), 0, "a ready poll frees the slot");
    assert_eq!(w.poll_at_least(2, &mut cx()), Poll::Pending);
    drop(w);
    assert_eq!(counter.waiters(), 0, "a dropped waiter frees its slot");
}

#[test]
fn a_million_short_lived_waits_on_a_quiet_watch() {
    let e = E::new();
    e.thread(1);
    let watch = e.watch_subscribers(1).unwrap();
    let mut cx = cx();
    for i in 0..SHORT_LIVED {
        let mut w = watch.clone();
        assert!(w.poll_changed(&mut cx).is_pending());
        if i % 4096 == 0 {
            assert_eq!(watch.waiter_count(), 1);
        }
    }
    assert_eq!(watch.waiter_count(), 0);
    // The one long-lived watch re-polled keeps one slot.
    let mut w = watch.clone();
    for _ in 0..1000 {
        assert!(w.poll_changed(&mut cx).is_pending());
    }
    assert_eq!(watch.waiter_count(), 1);
    w.forget_waker();
    assert_eq!(watch.waiter_count(), 0);
}

#[test]
fn the_list_holds_exactly_the_live_waiters() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.thread(1);
    let mut watch = e.watch_subscribers(1).unwrap();
    let l = e.thread(1).set_listener(&Arc::new(()));
    let token = l.token();
    let mut cx = cx();
    for round in 0..3 {
        watch.get_and_mark_seen();
        let mut watches: Vec<_> = (0..ALIVE).map(|_| watch.clone()).collect();
        let tokens: Vec<_> = (0..ALIVE).map(|_| token.clone()).collect();
        for (w, t) in watches.iter_mut().zip(&tokens) {
            assert!(w.poll_changed(&mut cx).is_pending());
            assert!(t.poll_cancelled(&mut cx).is_pending());
        }
        assert_eq!(watch.waiter_count(), ALIVE, "round {round}");
        assert_eq!(token.waiter_count(), ALIVE, "round {round}");
        watches.truncate(ALIVE / 2);
        drop(tokens);
        assert_eq!(watch.waiter_count(), ALIVE / 2);
        assert_eq!(token.waiter_count(), 0);
        // A change wakes them and they complete: the slots go.
        e.subscribe(1, 1).unwrap();
        for w in &mut watches {
            assert_eq!(w.poll_changed(&mut cx), Poll::Ready(Ok(true)));
        }
        assert_eq!(watch.waiter_count(), 0);
        e.unsubscribe(1, 1);
    }
}

#[test]
fn abandoned_sends_queue_nothing() {
    let e = E::new();
    let t = e.thread(1);
    let l = t.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
    t.send(0).unwrap();
    let mut cx = cx();
    for i in 0..1000 {
        let mut pending = switchboard_core::PendingSend::new(i);
        assert!(t.poll_send(&mut cx, &mut pending).is_pending());
    }
    // The queue is still full and only the command sent first is in it.
    assert_eq!(l.len(), 1);
    drop(l);
    assert!(!t.has_listener());
}

/// Threads of short-lived blocking and async waits: the list ends empty.
#[test]
fn many_short_lived_waiters_across_threads() {
    let counter = Arc::new(Counter::new());
    let waiters: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                let mut cx = cx();
                for _ in 0..PER_THREAD {
                    let w = counter.waiter();
                    let _ = w.poll_at_least(u64::MAX, &mut cx);
                    assert!(counter.waiters() <= THREADS + 1);
                }
            })
        })
        .collect();
    let bumper = {
        let counter = Arc::clone(&counter);
        thread::spawn(move || {
            for _ in 0..100 {
                counter.bump();
                thread::sleep(Duration::from_micros(100));
            }
        })
    };
    for w in waiters {
        w.join().unwrap();
    }
    bumper.join().unwrap();
    assert_eq!(counter.waiters(), 0);
    counter.wait_for(100);
}

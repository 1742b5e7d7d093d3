//! Guarantee 13: host code cannot break the engine. The programs that
//! broke it before (a panicking `Hash`, a panicking state destructor during
//! reclamation, a state destructor that calls `connect`), destructors that
//! call every writing method, a panicking command destructor, a nested
//! write from host code, and a panicking read visitor. (The randomized
//! harness is `host_code.rs`.)
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

mod host;
#[path = "model/reference.rs"]
#[allow(dead_code)] // `model.rs` uses it
mod reference;

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use host::*;
use switchboard_core::{Caps, Engine};

// ---------------------------------------------------------------- the three programs

/// A thread id whose `Hash` panics once, during one `subscribe`: the host
/// catches it and goes on, and later writes find the engine intact (before:
/// `free(): invalid pointer` a few writes later).
#[test]
fn a_panicking_hash_in_subscribe_changes_nothing() {
    let engine = E::new();
    for c in 0..CONNS {
        engine.connect(K(c), Caps::NONE);
    }
    for t in 0..THREADS {
        engine.subscribe(K(t), K(t % CONNS)).unwrap();
    }
    let mut panicked = 0;
    for n in 1..40 {
        let before = engine.version();
        arm_at(Site::Hash, n);
        let r = catch_unwind(AssertUnwindSafe(|| engine.subscribe(K(3), K(5))));
        let fired = disarm();
        if r.is_ok() {
            assert_eq!(fired, None);
            engine.unsubscribe(K(3), K(5));
            continue;
        }
        panicked += 1;
        assert_eq!(fired, Some(Site::Hash));
        assert_eq!(engine.version(), before, "the panicking call published");
        assert!(!engine.is_subscribed(K(3), K(5)));
        engine.snapshot().validate().unwrap();
    }
    assert!(
        panicked >= 4,
        "the fuse reached the write ({panicked} panics)"
    );
    // Many more writes: the store is intact.
    for round in 0..200 {
        let (t, c) = (K(round % THREADS), K(round % CONNS));
        engine.subscribe(t, c).unwrap();
        engine.unsubscribe(t, c);
    }
    engine.snapshot().validate().unwrap();
}

/// A state whose destructor panics, dropped when a later write reclaims a
/// removed thread held by a snapshot (before: the process aborted with heap
/// corruption). The panic reaches the caller of that later write, once the
/// write is published; the engine goes on.
#[test]
fn a_panicking_state_destructor_unwinds_after_the_write() {
    MADE.set(0);
    DROPPED.set(0);
    let engine = E::new();
    engine.connect(K(1), Caps::NONE);
    engine.thread(K(7));
    let held = engine.snapshot();
    assert!(engine.remove_thread(K(7)));
    drop(held);
    let before = engine.version();
    arm_at(Site::Drop, 1);
    let r = catch_unwind(AssertUnwindSafe(|| engine.subscribe(K(8), K(1))));
    let fired = disarm();
    assert_eq!(
        fired,
        Some(Site::Drop),
        "the removed entry's state was dropped here"
    );
    assert!(r.is_err(), "its panic reached this caller");
    assert_eq!(
        engine.version(),
        before + 1,
        "after the write was published"
    );
    assert!(engine.is_subscribed(K(8), K(1)));
    engine.snapshot().validate().unwrap();
    // The next writes work, and nothing was dropped twice.
    assert!(engine.unsubscribe(K(8), K(1)));
    engine.connect(K(2), Caps::NONE);
    drop(engine);
    assert_eq!(DROPPED.get(), MADE.get());
}

// ------------------------------------------------------- destructors that write

thread_local! {
    /// The engine a `Reentrant` value writes to when dropped.
    static TARGET: std::cell::RefCell<Weak<RE>> = const { std::cell::RefCell::new(Weak::new()) };
    /// What the next `Reentrant` drop does.
    static ON_DROP: Cell<Option<Write>> = const { Cell::new(None) };
}

/// A write a destructor makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Connect,
    ConnectWith,
    Disconnect,
    DisconnectIf,
    Subscribe,
    SubscribeIf,
    Unsubscribe,
    UnsubscribeIf,
    Thread,
    ThreadWith,
    RemoveThread,
    RemoveThreadIfIdle,
}

const WRITES: [Write; 12] = [
    Write::Connect,
    Write::ConnectWith,
    Write::Disconnect,
    Write::DisconnectIf,
    Write::Subscribe,
    Write::SubscribeIf,
    Write::Unsubscribe,
    Write::UnsubscribeIf,
    Write::Thread,
    Write::ThreadWith,
    Write::RemoveThread,
    Write::RemoveThreadIfIdle,
];

/// A state and a connection data whose drop makes the write `ON_DROP` says.
#[derive(Default)]
struct Reentrant;

impl Drop for Reentrant {
    fn drop(&mut self) {
        let Some(write) = ON_DROP.take() else {
            return;
        };
        let Some(e) = TARGET.with_borrow(Weak::upgrade) else {
            return;
        };
        let inc = e.incarnation(100);
        match write {
            Write::Connect => drop(e.connect(100, Caps(1))),
            Write::ConnectWith => drop(e.connect_with(100, Caps(1), Reentrant)),
            Write::Disconnect => drop(e.disconnect(100)),
            Write::DisconnectIf => drop(e.disconnect_if(100, inc.unwrap_or(0))),
            Write::Subscribe => drop(e.subscribe(50, 100)),
            Write::SubscribeIf => drop(e.subscribe_if(50, 100, inc.unwrap_or(0))),
            Write::Unsubscribe => drop(e.unsubscribe(50, 100)),
            Write::UnsubscribeIf => drop(e.unsubscribe_if(50, 100, inc.unwrap_or(0))),
            Write::Thread => drop(e.thread(51)),
            Write::ThreadWith => drop(e.thread_with(52, Reentrant::default)),
            Write::RemoveThread => drop(e.remove_thread(50)),
            Write::RemoveThreadIfIdle => drop(e.remove_thread_if_idle(51)),
        }
    }
}

type RE = Engine<u64, u64, Reentrant, (), Reentrant>;

/// What a write made by a destructor must have done.
fn check_write(e: &RE, write: Write) {
    let live = e.is_connected(100);
    let subscribed = e.is_subscribed(50, 100);
    match write {
        Write::Connect | Write::ConnectWith => assert!(live),
        Write::Disconnect | Write::DisconnectIf => assert!(!live),
        Write::Subscribe | Write::SubscribeIf => assert!(subscribed),
        Write::Unsubscribe | Write::UnsubscribeIf => assert!(!subscribed),
        Write::Thread => assert!(e.get_thread(51).is_some()),
        Write::ThreadWith => assert!(e.get_thread(52).is_some()),
        Write::RemoveThread => assert!(e.get_thread(50).is_none()),
        Write::RemoveThreadIfIdle => assert!(e.get_thread(51).is_none()),
    }
}

/// The state and the data of a removed thread or an ended connection are
/// dropped by the write that reclaims them; a destructor that calls any
/// writing method of the engine then neither deadlocks nor fails, and its
/// write takes effect (before: `connect` from a state's destructor
/// deadlocked every writer).
#[test]
fn destructors_may_call_every_writing_method() {
    for write in WRITES {
        for via_data in [false, true] {
            let e = Arc::new(RE::new());
            TARGET.with_borrow_mut(|t| *t = Arc::downgrade(&e));
            // The starting point each write needs.
            e.connect(100, Caps::NONE);
            e.subscribe(50, 100).unwrap();
            if write == Write::RemoveThreadIfIdle {
                e.thread(51);
            }
            if matches!(write, Write::Subscribe | Write::SubscribeIf) {
                e.unsubscribe(50, 100);
            }
            if write == Write::RemoveThreadIfIdle {
                e.unsubscribe(50, 100);
            }
            // The value whose drop writes: a removed thread's state, or an
            // ended connection's data, held past its removal by a snapshot.
            if via_data {
                e.connect_with(7, Caps::NONE, Reentrant);
            } else {
                e.thread(7);
            }
            let held = e.snapshot();
            if via_data {
                e.disconnect(7);
            } else {
                e.remove_thread(7);
            }
            drop(held);
            ON_DROP.set(Some(write));
            // This write reclaims the value; its destructor writes.
            e.connect(8, Caps::NONE);
            assert_eq!(ON_DROP.get(), None, "{write:?}: the destructor ran");
            check_write(&e, write);
            assert!(e.is_connected(8));
            e.snapshot().validate().unwrap();
        }
    }
}

// ------------------------------------------------------------ other host code

/// Host code under the writer lock (here a state's `Default`) that calls a
/// writing method gets a panic instead of waiting for itself, and the outer
/// write unwinds with no effect.
#[test]
fn a_write_from_host_code_inside_a_write_panics_and_changes_nothing() {
    #[derive(Debug)]
    struct Nested;
    thread_local! {
        static ENGINE: std::cell::RefCell<Weak<Engine<u64, u64, Nested>>> =
            const { std::cell::RefCell::new(Weak::new()) };
    }
    impl Default for Nested {
        fn default() -> Self {
            if let Some(e) = ENGINE.with_borrow(Weak::upgrade) {
                e.connect(9, Caps::NONE);
            }
            Nested
        }
    }
    let engine: Arc<Engine<u64, u64, Nested>> = Arc::new(Engine::new());
    engine.connect(1, Caps::NONE);
    ENGINE.with_borrow_mut(|e| *e = Arc::downgrade(&engine));
    let before = engine.version();
    let r = catch_unwind(AssertUnwindSafe(|| engine.subscribe(5, 1)));
    let message = r.expect_err("the nested write panics");
    let text = (message.downcast_ref::<&str>().copied())
        .or(message.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(text.contains("inside a write"), "{text}");
    assert_eq!(engine.version(), before);
    assert!(!engine.is_connected(9) && engine.get_thread(5).is_none());
    ENGINE.with_borrow_mut(|e| *e = Weak::new());
    engine.subscribe(5, 1).unwrap();
    engine.snapshot().validate().unwrap();
}

/// A read whose visitor panics leaves no version pinned: the nodes the
/// writes after it replace are freed as if the read had returned.
#[test]
fn a_panicking_read_visitor_pins_nothing() {
    let engine: Engine<u64, u64> = Engine::new();
    for c in 0..40 {
        engine.connect(c, Caps::NONE);
        engine.subscribe(1, c).unwrap();
    }
    let nodes = engine.node_probe();
    let churn = |engine: &Engine<u64, u64>| {
        for c in 0..40 {
            engine.unsubscribe(1, c);
            engine.subscribe(1, c).unwrap();
        }
    };
    churn(&engine);
    let settled = nodes.live_nodes();
    for _ in 0..8 {
        let r = catch_unwind(AssertUnwindSafe(|| {
            engine.for_each_subscriber(1, |_| resume_unwind(Box::new(HostPanic(Site::Eq))))
        }));
        assert!(r.is_err());
    }
    churn(&engine);
    assert_eq!(nodes.live_nodes(), settled, "a version stayed pinned");
}

//! Multi-threaded stress tests, sized by the `const`s below (run with debug
//! assertions on, so every published graph is also checked by the engine's
//! own `debug_assert!`s).
//!
//! * writers racing on overlapping ids while a reader checks every snapshot
//!   it takes is consistent (guarantee 2);
//! * `subscribe` racing `disconnect` leaves no zombie edge (guarantee 3);
//! * watches see every has-subscribers change (guarantee 4);
//! * listener churn loses and duplicates no command (guarantee 5);
//! * and at the end of each, every trie node came back (guarantee 7).
//!
//! Known to catch (a planted-bug audit, not re-run since): the cancel token
//! fired after the queue closed, in 2 of 7 release runs and no debug run;
//! the loom model `clear_vs_recv` catches it every time.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Engine, Listener, NoListener, NotConnected, WatchError};

type E = Engine<u64, u64>;

/// Drops `engine` and checks that every trie node it made was freed: a
/// leaked node fails the test here, without valgrind.
fn drop_checking_nodes<S: Default + Send + 'static, M: Send + 'static>(
    engine: Engine<u64, u64, S, M>,
) {
    let nodes = engine.node_probe();
    drop(engine);
    assert_eq!(nodes.live_nodes(), 0, "trie nodes leaked");
}

/// (a) Writer threads, ops each, and the id space they share.
const WRITERS: usize = 3;
const WRITER_OPS: usize = 60_000;
const RACE_THREADS: u64 = 16;
const RACE_CONNS: u64 = 8;

/// (b) Rounds of subscribe-vs-disconnect, subscriber threads per round, and
/// the threads they subscribe the contested connection to.
const ZOMBIE_ROUNDS: usize = 600;
const ZOMBIE_SUBSCRIBERS: usize = 2;
const ZOMBIE_THREADS: u64 = 8;

/// (c) Has-subscribers flips made while watchers run freely, and flips made
/// in lock step with one watcher.
const FREE_FLIPS: u64 = 50_001; // odd: the thread ends subscribed
const LOCKSTEP_FLIPS: u64 = 5_000;

/// (d) Commands sent while another thread keeps replacing the listener; the
/// sender waits for a listener change every `CHURN_BATCH` commands, and the
/// replacing thread clears the listener every `CHURN_CLEAR_EVERY` swaps.
const CHURN_MESSAGES: u64 = 300_000;
const CHURN_BATCH: u64 = 500;
const CHURN_CLEAR_EVERY: u64 = 4;

/// Long enough never to expire on a loaded machine; a wait that does expire
/// means a lost wake-up or a stuck thread.
const LONG: Duration = Duration::from_secs(10);

/// A small xorshift generator: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Stores a value into a flag when dropped, so that a thread that panics
/// still releases the threads looping on the flag: a failing test fails, it
/// does not hang.
struct StoreOnDrop<'a>(&'a AtomicBool, bool);

impl Drop for StoreOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(self.1, Ordering::Release);
    }
}

/// Yields until `done()`; fails the test if that takes longer than [`LONG`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LONG, "gave up waiting for {what}");
        thread::yield_now();
    }
}

#[test]
fn smoke() {
    let engine = Arc::new(E::new());
    engine.connect(1, Caps::NONE);
    thread::scope(|s| {
        for t in 0..4 {
            let engine = &engine;
            s.spawn(move || engine.subscribe(t, 1).unwrap());
        }
    });
    assert_eq!(engine.threads_of(1), [0, 1, 2, 3]);
    assert!(engine.snapshot().validate().is_ok());
    assert_eq!(engine.disconnect(1), [0, 1, 2, 3]);
    drop_checking_nodes(Arc::try_unwrap(engine).expect("no other handle"));
}

/// (a) Every snapshot a reader takes while writers race is one consistent
/// graph: valid, every edge names a live connection and an existing thread,
/// and the two indexes agree.
#[test]
fn racing_writers_publish_consistent_snapshots() {
    let engine = E::new();
    let writers_done = AtomicBool::new(false);
    let snapshots = AtomicUsize::new(0);
    let edges_seen = AtomicUsize::new(0);

    thread::scope(|s| {
        s.spawn(|| {
            let mut t = 0;
            while !writers_done.load(Ordering::Acquire) {
                let snap = engine.snapshot();
                if let Err(v) = snap.validate() {
                    panic!("{v}");
                }
                // A few sampled threads per snapshot, rotating.
                for _ in 0..4 {
                    t = (t + 1) % RACE_THREADS;
                    let subs = snap.subscribers(t);
                    assert_eq!(snap.has_subscribers(t), !subs.is_empty());
                    if !subs.is_empty() {
                        assert!(snap.contains_thread(t), "edge to missing thread {t}");
                    }
                    let list = subs.to_vec();
                    assert!(
                        list.windows(2).all(|w| w[0] < w[1]),
                        "not ascending: {list:?}"
                    );
                    for c in &subs {
                        assert!(snap.is_connected(c), "edge {t}-{c} names a dead connection");
                        assert!(
                            snap.threads_of(c).contains(&t),
                            "edge {t}-{c} missing from the reverse index"
                        );
                        edges_seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
                snapshots.fetch_add(1, Ordering::Relaxed);
            }
        });

        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let engine = &engine;
                s.spawn(move || {
                    let mut rng = Rng::new(w as u64 + 1);
                    for _ in 0..WRITER_OPS {
                        let (t, c) = (rng.below(RACE_THREADS), rng.below(RACE_CONNS));
                        match rng.below(20) {
                            0..=2 => {
                                engine.connect(c, Caps(rng.below(4)));
                            }
                            3 => {
                                let emptied = engine.disconnect(c);
                                assert!(emptied.windows(2).all(|w| w[0] < w[1]), "{emptied:?}");
                            }
                            4..=11 => {
                                if let Ok(entry) = engine.subscribe(t, c) {
                                    assert_eq!(entry.id(), t);
                                }
                            }
                            12..=16 => {
                                engine.unsubscribe(t, c);
                            }
                            17 | 18 => {
                                engine.remove_thread_if_idle(t);
                            }
                            _ => {
                                engine.remove_thread(t);
                            }
                        }
                    }
                })
            })
            .collect();
        let _done = StoreOnDrop(&writers_done, true);
        for w in writers {
            w.join().unwrap();
        }
    });

    let snap = engine.snapshot();
    assert!(snap.validate().is_ok());
    for c in 0..RACE_CONNS {
        if !snap.is_connected(c) {
            assert!(snap.threads_of(c).is_empty());
        }
    }
    // The reader really ran alongside the writers and saw edges.
    eprintln!(
        "racing writers: reader took {} snapshots, checked {} edges",
        snapshots.load(Ordering::Relaxed),
        edges_seen.load(Ordering::Relaxed)
    );
    assert!(
        snapshots.load(Ordering::Relaxed) > 10,
        "reader took too few snapshots"
    );
    assert!(
        edges_seen.load(Ordering::Relaxed) > 0,
        "reader never saw an edge"
    );
    drop(snap);
    drop_checking_nodes(engine);
}

/// (b) `subscribe(t, c)` racing `disconnect(c)`: once `disconnect` returns, no
/// snapshot shows `c` and every later `subscribe` of `c` fails, until `c`
/// connects again, with no subscriptions.
#[test]
fn no_zombie_subscriptions() {
    const C: u64 = 1;
    /// Subscribed to the even threads for the whole test, so the emptied
    /// list of each disconnect is exactly the odd threads `C` held.
    const OTHER: u64 = 2;

    let engine = E::new();
    engine.connect(OTHER, Caps::NONE);
    for t in (0..ZOMBIE_THREADS).step_by(2) {
        engine.subscribe(t, OTHER).unwrap();
    }
    let mut raced = 0;

    for round in 0..ZOMBIE_ROUNDS {
        assert!(
            engine.connect(C, Caps(round as u64 % 2)),
            "round {round}: {C} was still live"
        );
        assert!(
            engine.threads_of(C).is_empty(),
            "round {round}: reused id kept subscriptions"
        );

        let disconnected = AtomicBool::new(false);
        let subscribed = AtomicUsize::new(0);
        let start = Barrier::new(ZOMBIE_SUBSCRIBERS + 1);
        let emptied = thread::scope(|s| {
            for i in 0..ZOMBIE_SUBSCRIBERS {
                let (engine, disconnected, subscribed, start) =
                    (&engine, &disconnected, &subscribed, &start);
                s.spawn(move || {
                    start.wait();
                    let mut t = i as u64;
                    loop {
                        // Read the flag first: if it was set, `disconnect`
                        // returned before this subscribe began.
                        let after = disconnected.load(Ordering::Acquire);
                        let r = engine.subscribe(t, C);
                        if after {
                            assert_eq!(
                                r.err(),
                                Some(NotConnected),
                                "round {round}: subscribe after disconnect"
                            );
                            break;
                        }
                        if r.is_ok() {
                            subscribed.fetch_add(1, Ordering::Relaxed);
                        }
                        t = (t + 1) % ZOMBIE_THREADS;
                    }
                });
            }
            start.wait();
            // Let the subscribers get going, then cut in.
            wait_for("the first subscribes", || {
                subscribed.load(Ordering::Relaxed) >= 3
            });
            let emptied = engine.disconnect(C);
            let snap = engine.snapshot();
            disconnected.store(true, Ordering::Release);
            assert!(!snap.is_connected(C));
            assert!(
                snap.threads_of(C).is_empty(),
                "round {round}: zombie reverse edges"
            );
            for t in snap.threads() {
                assert!(
                    !snap.subscribers(t).contains(C),
                    "round {round}: zombie edge {t}-{C}"
                );
            }
            emptied
        });
        if !emptied.is_empty() {
            raced += 1;
        }

        // All subscribers joined: still no trace of C.
        let snap = engine.snapshot();
        assert!(snap.validate().is_ok());
        assert!(!snap.is_connected(C));
        assert!(snap.threads_of(C).is_empty());
        for t in 0..ZOMBIE_THREADS {
            assert!(
                !snap.subscribers(t).contains(C),
                "round {round}: zombie edge {t}-{C} after join"
            );
            // Only C ever follows the odd threads.
            assert_eq!(
                snap.has_subscribers(t),
                t % 2 == 0,
                "round {round}: thread {t}"
            );
        }
        assert!(emptied.windows(2).all(|w| w[0] < w[1]), "{emptied:?}");
        assert!(
            emptied.iter().all(|t| t % 2 == 1),
            "round {round}: {emptied:?} includes a thread {OTHER} follows"
        );
        assert_eq!(engine.disconnect(C), Vec::<u64>::new(), "double disconnect");
    }
    assert!(raced > 0, "no round disconnected a subscribed connection");
    drop_checking_nodes(engine);
}

/// (c) A watcher looping on `wait_changed` while a writer flips the thread's
/// has-subscribers state: it is never left waiting (no lost wake-up), ends on
/// the latest value, and the version counts every flip exactly.
#[test]
fn watches_see_every_change() {
    const T: u64 = 7;
    let engine = E::new();
    engine.connect(1, Caps::NONE);
    engine.thread(T);
    let watch = engine.watch_subscribers(T).unwrap();

    // Free running: two watchers (clones), no coordination with the writer.
    let received = thread::scope(|s| {
        let watchers: Vec<_> = (0..2)
            .map(|_| {
                let mut w = watch.clone();
                s.spawn(move || {
                    let mut values = Vec::new();
                    loop {
                        match w.wait_changed(LONG) {
                            Ok(v) => values.push(v),
                            Err(WatchError::Closed) => return values,
                            Err(WatchError::Timeout) => {
                                panic!("watcher left waiting: lost wake-up")
                            }
                        }
                    }
                })
            })
            .collect();
        for i in 0..FREE_FLIPS {
            if i % 2 == 0 {
                engine.subscribe(T, 1).unwrap();
            } else {
                assert!(engine.unsubscribe(T, 1));
            }
        }
        assert!(watch.get(), "odd number of flips ends subscribed");
        assert_eq!(watch.version(), FREE_FLIPS);
        // Removing a subscribed thread flips it to false, then closes.
        assert!(engine.remove_thread(T));
        watchers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(watch.is_closed());
    assert!(!watch.get());
    assert_eq!(watch.version(), FREE_FLIPS + 1);
    for values in received {
        assert_eq!(
            values.last(),
            Some(&false),
            "watcher did not end on the latest value"
        );
        assert!(
            values.len() as u64 <= FREE_FLIPS + 1,
            "more changes reported than happened"
        );
    }

    // Lock step: the writer waits for the watcher before each next flip, so
    // the watcher must see every value, alternating, and nothing else.
    let entry = engine.thread(T);
    let owner = Arc::new(());
    let listener: Listener<()> = entry.set_listener(&owner);
    let mut w = engine.watch_subscribers(T).unwrap();
    assert_eq!(w.version(), 0, "a re-created thread starts a fresh watch");
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(move || loop {
            let r = w.wait_changed(LONG);
            tx.send(r).unwrap();
            if r.is_err() {
                break;
            }
        });
        for i in 0..LOCKSTEP_FLIPS {
            let expected = i % 2 == 0;
            if expected {
                engine.subscribe(T, 1).unwrap();
            } else {
                assert!(engine.unsubscribe(T, 1));
            }
            assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(expected), "flip {i}");
        }
        // LOCKSTEP_FLIPS is even: unsubscribed now, so removal does not flip.
        assert!(engine.remove_thread(T));
        assert_eq!(
            rx.recv_timeout(LONG).unwrap(),
            Err(WatchError::Closed),
            "no change past the last flip"
        );
    });
    // Removal also cleared the thread's listener.
    assert!(listener.is_cancelled());
    assert!(!entry.has_listener());
    drop_checking_nodes(engine);
}

/// (d) One thread keeps replacing a thread's listener (and now and then
/// clears it) while another sends numbered commands: each command reaches
/// exactly one listener or comes back as `NoListener`, in order per listener.
#[test]
fn listener_churn_loses_nothing() {
    let engine: Engine<u64, u64, (), u64> = Engine::new();
    let entry = engine.thread(1);
    let sending = AtomicBool::new(true);
    // Listener changes (sets and clears) made, and sends completed: each
    // side paces itself on the other so that the race really interleaves.
    let changes = AtomicU64::new(0);
    let sends = AtomicU64::new(0);
    // The `changes` count the sender waits to move past, while it waits.
    let sender_stuck_at = AtomicU64::new(u64::MAX);

    let (listeners_tx, listeners_rx) = mpsc::channel::<Listener<u64>>();
    let (received, generations, returned) = thread::scope(|s| {
        // Drains each listener until its queue closes (it was replaced or
        // cleared); returns every command received and each listener's
        // generation and command count.
        let drain = s.spawn(move || {
            let mut received = Vec::new();
            let mut generations = Vec::new();
            for l in listeners_rx {
                let mut last = None;
                let mut n = 0;
                while let Ok(m) = l.recv() {
                    assert!(
                        last.map_or(true, |p| p < m),
                        "listener {} got {m} after {last:?}",
                        l.generation()
                    );
                    last = Some(m);
                    received.push(m);
                    n += 1;
                }
                assert!(l.is_cancelled(), "queue closed but token not fired");
                generations.push((l.generation(), n));
            }
            (received, generations)
        });

        s.spawn(|| {
            // The first commands find no listener at all.
            wait_for("the first sends", || sends.load(Ordering::Acquire) >= 2);
            let mut n = 0u64;
            while sending.load(Ordering::Acquire) {
                if n % CHURN_CLEAR_EVERY == 0 {
                    entry.clear_listener();
                    changes.fetch_add(1, Ordering::AcqRel);
                    // Stay cleared until two sends completed (the second began
                    // after the clear, so it must come back), unless the
                    // sender already saw this clear and waits for the next
                    // change.
                    let before = sends.load(Ordering::Acquire);
                    wait_for("sends while cleared", || {
                        sends.load(Ordering::Acquire) >= before + 2
                            || sender_stuck_at.load(Ordering::Acquire)
                                == changes.load(Ordering::Acquire)
                            || !sending.load(Ordering::Acquire)
                    });
                }
                let owner = Arc::new(n);
                let l = entry.set_listener(&owner);
                assert!(entry.listener_matches(&owner));
                listeners_tx.send(l).unwrap();
                n += 1;
                changes.fetch_add(1, Ordering::AcqRel);
                thread::yield_now();
            }
            entry.clear_listener();
            drop(listeners_tx);
        });

        let sender = s.spawn(|| {
            let _done = StoreOnDrop(&sending, false);
            let mut back = Vec::new();
            let mut seen = 0;
            for i in 0..CHURN_MESSAGES {
                if i % CHURN_BATCH == 0 && i > 0 {
                    // At least one listener change between batches.
                    sender_stuck_at.store(seen, Ordering::Release);
                    wait_for("a listener change", || {
                        changes.load(Ordering::Acquire) != seen
                    });
                    sender_stuck_at.store(u64::MAX, Ordering::Release);
                    seen = changes.load(Ordering::Acquire);
                }
                match entry.send(i) {
                    Ok(()) => {}
                    Err(NoListener(m)) => {
                        assert_eq!(m, i, "NoListener gave back another message");
                        back.push(m);
                    }
                }
                sends.fetch_add(1, Ordering::AcqRel);
            }
            back
        });
        let returned = sender.join().unwrap();
        let (received, generations) = drain.join().unwrap();
        (received, generations, returned)
    });

    assert!(
        generations.windows(2).all(|g| g[1].0 == g[0].0 + 1),
        "generations not consecutive"
    );
    let busy = generations.iter().filter(|(_, n)| *n > 0).count();
    assert!(
        busy >= 2,
        "commands reached only {busy} listener(s): no churn"
    );
    assert!(!returned.is_empty(), "no command came back while cleared");
    assert_eq!(
        received.len() + returned.len(),
        CHURN_MESSAGES as usize,
        "commands lost or duplicated"
    );
    let mut all: Vec<u64> = received.iter().chain(returned.iter()).copied().collect();
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(0..CHURN_MESSAGES),
        "some command delivered twice or never"
    );
    eprintln!(
        "listener churn: {} listeners ({busy} received commands), {} commands came back",
        generations.len(),
        returned.len()
    );
    drop_checking_nodes(engine);
}

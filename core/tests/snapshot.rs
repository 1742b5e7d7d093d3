//! Snapshots: `Engine::snapshot`, `Snapshot`, and frozen `Subscribers` views.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Caps, Engine, Snapshot};

type E = Engine<u64, u64>;

#[test]
fn smoke() {
    let e = E::new();
    let empty = e.snapshot();
    assert_eq!(empty.connection_count(), 0);
    assert_eq!(empty.thread_count(), 0);
    empty.validate().unwrap();

    e.connect(1, Caps(1));
    e.subscribe(10, 1).unwrap();
    let s = e.snapshot();
    assert!(s.is_connected(1));
    assert_eq!(s.caps(1), Some(Caps(1)));
    assert!(s.has_subscribers(10));
    assert_eq!(s.subscribers(10).to_vec(), vec![1]);
    assert_eq!(s.threads_of(1), vec![10]);
    assert_eq!(s.connection_count(), 1);
    assert_eq!(s.thread_count(), 1);
    s.validate().unwrap();
    // The earlier snapshot did not move.
    assert_eq!(empty.connection_count(), 0);
    assert!(!empty.is_connected(1));
}

fn populate(e: &E) {
    for c in [4, 2, 8, 6] {
        e.connect(c, Caps(c));
    }
    for (t, c) in [(30, 4), (10, 2), (30, 2), (20, 8), (10, 6), (40, 6)] {
        e.subscribe(t, c).unwrap();
    }
    e.thread(50); // an entry without subscribers
}

fn check_populated(s: &Snapshot<u64, u64>) {
    assert_eq!(s.connections().collect::<Vec<_>>(), vec![2, 4, 6, 8]);
    assert_eq!(s.threads().collect::<Vec<_>>(), vec![10, 20, 30, 40, 50]);
    assert_eq!(s.connection_count(), 4);
    assert_eq!(s.thread_count(), 5);
    assert_eq!(s.subscribers(10).to_vec(), vec![2, 6]);
    assert_eq!(s.subscribers(30).iter().collect::<Vec<_>>(), vec![2, 4]);
    assert_eq!(s.subscribers(30).len(), 2);
    assert!(s.subscribers(30).contains(4));
    assert!(!s.subscribers(30).contains(8));
    assert!(s.subscribers(50).is_empty());
    assert!(!s.has_subscribers(50));
    assert!(s.has_subscribers(20));
    assert_eq!(s.threads_of(2), vec![10, 30]);
    assert_eq!(s.threads_of(6), vec![10, 40]);
    assert_eq!(s.threads_of(8), vec![20]);
    for c in [2, 4, 6, 8] {
        assert!(s.is_connected(c));
        assert_eq!(s.caps(c), Some(Caps(c)));
    }
    assert!(!s.is_connected(3));
    assert_eq!(s.caps(3), None);
    assert_eq!(s.first_subscriber_with(10, Caps(0b100)), Some(6));
    assert_eq!(s.first_subscriber_with(10, Caps::NONE), Some(2));
    assert_eq!(s.first_subscriber_with(10, Caps(0b1000)), None);
    assert_eq!(s.first_subscriber_with(99, Caps::NONE), None);
    s.validate().unwrap();
}

#[test]
fn connections_and_threads_ascending_with_counts() {
    let e = E::new();
    populate(&e);
    check_populated(&e.snapshot());
}

#[test]
fn snapshot_is_frozen() {
    let e = E::new();
    populate(&e);
    let s = e.snapshot();

    // A storm of writes of every kind.
    e.connect(1, Caps(0xff));
    e.connect(2, Caps(0)); // caps change
    e.subscribe(10, 1).unwrap();
    e.subscribe(50, 1).unwrap();
    e.subscribe(60, 1).unwrap();
    e.unsubscribe(30, 4);
    e.disconnect(6);
    e.disconnect(8);
    e.remove_thread(20);
    e.remove_thread(30);
    e.thread(70);
    e.clear_all_listeners();

    check_populated(&s);

    // The live engine moved on.
    let now = e.snapshot();
    assert_eq!(now.connections().collect::<Vec<_>>(), vec![1, 2, 4]);
    assert_eq!(now.threads().collect::<Vec<_>>(), vec![10, 40, 50, 60, 70]);
    assert_eq!(now.subscribers(10).to_vec(), vec![1, 2]);
    assert_eq!(now.caps(2), Some(Caps(0)));
    assert!(!now.has_subscribers(40));
    assert_eq!(now.threads_of(4), Vec::<u64>::new());
    now.validate().unwrap();
}

#[test]
fn snapshot_matches_engine_reads() {
    let e = E::new();
    populate(&e);
    let s = e.snapshot();
    for t in [10, 20, 30, 40, 50, 60] {
        assert_eq!(s.subscribers(t).to_vec(), e.subscribers(t).to_vec());
        assert_eq!(s.has_subscribers(t), e.has_subscribers(t));
        for caps in [0, 1, 2, 4, 6, 8] {
            assert_eq!(
                s.first_subscriber_with(t, Caps(caps)),
                e.first_subscriber_with(t, Caps(caps))
            );
        }
    }
    for c in 0..10 {
        assert_eq!(s.threads_of(c), e.threads_of(c));
        assert_eq!(s.is_connected(c), e.is_connected(c));
        assert_eq!(s.caps(c), e.caps(c));
    }
}

#[test]
fn subscribers_view_is_frozen() {
    let e = E::new();
    for c in 1..=5 {
        e.connect(c, Caps::NONE);
    }
    e.subscribe(10, 3).unwrap();
    e.subscribe(10, 1).unwrap();
    let subs = e.subscribers(10);
    let empty = e.subscribers(11);

    e.subscribe(10, 2).unwrap();
    e.subscribe(10, 5).unwrap();
    e.unsubscribe(10, 3);
    e.disconnect(1);
    e.subscribe(11, 4).unwrap();

    assert_eq!(subs.to_vec(), vec![1, 3]);
    assert_eq!(subs.iter().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(subs.len(), 2);
    assert!(subs.contains(1));
    assert!(subs.contains(3));
    assert!(!subs.contains(2));
    assert!(!subs.contains(5));
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);

    e.remove_thread(10);
    assert_eq!(subs.to_vec(), vec![1, 3]);
    assert_eq!(e.subscribers(10).to_vec(), Vec::<u64>::new());
    assert_eq!(e.subscribers(11).to_vec(), vec![4]);
}

#[test]
fn snapshot_subscribers_view_outlives_engine_writes_for_large_set() {
    let e = E::new();
    for c in 0..300u64 {
        e.connect(c, Caps::NONE);
        e.subscribe(1, c).unwrap();
    }
    let s = e.snapshot();
    let view = e.subscribers(1);
    for c in (0..300u64).step_by(3) {
        e.disconnect(c);
    }
    let all: Vec<u64> = (0..300).collect();
    assert_eq!(view.to_vec(), all);
    assert_eq!(s.subscribers(1).to_vec(), all);
    assert_eq!(s.subscribers(1).len(), 300);
    assert_eq!(e.subscribers(1).len(), 200);
}

#[test]
fn snapshot_can_cross_threads() {
    let e = E::new();
    populate(&e);
    let s = e.snapshot();
    let subs = e.subscribers(10);
    let h = std::thread::spawn(move || {
        check_populated(&s);
        subs.to_vec()
    });
    assert_eq!(h.join().unwrap(), vec![2, 6]);
}

#[test]
fn no_edge_names_a_dead_connection() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    for t in 0..10u64 {
        e.subscribe(t, 1).unwrap();
        e.subscribe(t, 2).unwrap();
    }
    e.disconnect(1);
    let s = e.snapshot();
    assert!(!s.is_connected(1));
    assert_eq!(s.threads_of(1), Vec::<u64>::new());
    for t in 0..10u64 {
        assert!(!s.subscribers(t).contains(1));
        assert_eq!(s.subscribers(t).to_vec(), vec![2]);
    }
    s.validate().unwrap();
}

/// Small deterministic PRNG (64-bit LCG, high bits).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[derive(Default)]
struct Model {
    conns: BTreeMap<u64, Caps>,
    threads: BTreeSet<u64>,
    edges: BTreeSet<(u64, u64)>, // (t, c)
}

impl Model {
    fn check(&self, s: &Snapshot<u64, u64>) {
        s.validate().unwrap();
        assert_eq!(
            s.connections().collect::<Vec<_>>(),
            self.conns.keys().copied().collect::<Vec<_>>()
        );
        assert_eq!(
            s.threads().collect::<Vec<_>>(),
            self.threads.iter().copied().collect::<Vec<_>>()
        );
        assert_eq!(s.connection_count(), self.conns.len());
        assert_eq!(s.thread_count(), self.threads.len());
        for t in 0..12u64 {
            let subs: Vec<u64> = self
                .edges
                .iter()
                .filter(|e| e.0 == t)
                .map(|e| e.1)
                .collect();
            assert_eq!(s.subscribers(t).to_vec(), subs, "subscribers({t})");
            assert_eq!(s.has_subscribers(t), !subs.is_empty());
        }
        for c in 0..8u64 {
            let ts: Vec<u64> = self
                .edges
                .iter()
                .filter(|e| e.1 == c)
                .map(|e| e.0)
                .collect();
            assert_eq!(s.threads_of(c), ts, "threads_of({c})");
            assert_eq!(s.caps(c), self.conns.get(&c).copied());
        }
    }
}

#[test]
fn validate_is_ok_on_many_states() {
    let e = E::new();
    let mut m = Model::default();
    let mut rng = Lcg(0xdecafbad);
    let mut held = Vec::new();
    for step in 0..3000 {
        let t = rng.next(12);
        let c = rng.next(8);
        match rng.next(8) {
            0 | 1 => {
                let caps = Caps(rng.next(4));
                let fresh = !m.conns.contains_key(&c);
                assert_eq!(e.connect(c, caps), fresh);
                m.conns.insert(c, caps);
            }
            2 => {
                let mine: Vec<u64> = m.edges.iter().filter(|x| x.1 == c).map(|x| x.0).collect();
                m.edges.retain(|x| x.1 != c);
                m.conns.remove(&c);
                let idle: Vec<u64> = mine
                    .into_iter()
                    .filter(|t| !m.edges.iter().any(|x| x.0 == *t))
                    .collect();
                assert_eq!(e.disconnect(c), idle, "step {step}");
            }
            3 | 4 => {
                let r = e.subscribe(t, c);
                if m.conns.contains_key(&c) {
                    assert_eq!(r.unwrap().id(), t);
                    m.threads.insert(t);
                    m.edges.insert((t, c));
                } else {
                    assert!(r.is_err());
                }
            }
            5 => {
                assert_eq!(e.unsubscribe(t, c), m.edges.remove(&(t, c)), "step {step}");
            }
            6 => {
                let idle = !m.edges.iter().any(|x| x.0 == t);
                let exists = m.threads.contains(&t);
                if rng.next(2) == 0 {
                    assert_eq!(e.remove_thread(t), exists, "step {step}");
                    m.threads.remove(&t);
                    m.edges.retain(|x| x.0 != t);
                } else {
                    assert_eq!(e.remove_thread_if_idle(t), exists && idle, "step {step}");
                    if idle {
                        m.threads.remove(&t);
                    }
                }
            }
            _ => {
                e.thread(t);
                m.threads.insert(t);
            }
        }
        let s = e.snapshot();
        m.check(&s);
        if step % 500 == 0 {
            held.push((s, m.conns.clone(), m.threads.clone(), m.edges.clone()));
        }
    }
    // Old snapshots are still intact and valid.
    for (s, conns, threads, edges) in held {
        let old = Model {
            conns,
            threads,
            edges,
        };
        old.check(&s);
    }
}

#[test]
fn snapshots_during_concurrent_writes_are_valid() {
    let e = Arc::new(E::new());
    let e2 = Arc::clone(&e);
    let writer = std::thread::spawn(move || {
        let mut rng = Lcg(7);
        for _ in 0..3000 {
            let t = rng.next(16);
            let c = rng.next(8);
            match rng.next(5) {
                0 => {
                    e2.connect(c, Caps(rng.next(4)));
                }
                1 => {
                    e2.disconnect(c);
                }
                2 => {
                    let _ = e2.subscribe(t, c);
                }
                3 => {
                    e2.unsubscribe(t, c);
                }
                _ => {
                    e2.remove_thread_if_idle(t);
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !writer.is_finished() && std::time::Instant::now() < deadline {
        let s = e.snapshot();
        s.validate().unwrap();
        // No edge names a dead connection, and the indexes agree.
        for t in s.threads().collect::<Vec<_>>() {
            for c in s.subscribers(t).iter() {
                assert!(s.is_connected(c), "edge ({t},{c}) names a dead connection");
                assert!(s.threads_of(c).contains(&t));
            }
        }
        let conns: Vec<u64> = s.connections().collect();
        assert!(conns.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(conns.len(), s.connection_count());
    }
    writer.join().unwrap();
    e.snapshot().validate().unwrap();
}

//! Subscriptions: `subscribe`, `unsubscribe`, `subscribers`, `has_subscribers`,
//! `threads_of`, `first_subscriber_with`, `subscribers_with`.

use std::sync::Arc;

use switchboard_core::{Caps, Engine, NotConnected};

type E = Engine<u64, u64>;

/// Deterministic Fisher–Yates shuffle driven by a 64-bit LCG.
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut s = seed;
    for i in (1..v.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((s >> 33) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[test]
fn smoke() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let entry = e.subscribe(10, 1).unwrap();
    assert_eq!(entry.id(), 10);
    assert!(e.has_subscribers(10));
    assert_eq!(e.subscribers(10).to_vec(), vec![1]);
    assert_eq!(e.threads_of(1), vec![10]);
    assert!(e.unsubscribe(10, 1));
    assert!(!e.has_subscribers(10));
    assert!(e.subscribers(10).is_empty());
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
}

#[test]
fn subscribe_on_dead_connection_is_err_and_creates_nothing() {
    let e = E::new();
    assert_eq!(e.subscribe(10, 1).err(), Some(NotConnected));
    assert!(e.get_thread(10).is_none());
    assert!(e.watch_subscribers(10).is_none());
    assert!(!e.has_subscribers(10));
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    assert!(!e.is_connected(1));
    let snap = e.snapshot();
    assert_eq!(snap.thread_count(), 0);
    assert_eq!(snap.connection_count(), 0);

    // A connection that was live and left is dead too.
    e.connect(1, Caps::NONE);
    e.disconnect(1);
    assert_eq!(e.subscribe(11, 1).err(), Some(NotConnected));
    assert!(e.get_thread(11).is_none());
    assert_eq!(e.snapshot().thread_count(), 0);
}

#[test]
fn subscribe_on_dead_connection_leaves_existing_thread_unchanged() {
    let e = E::new();
    e.connect(2, Caps::NONE);
    let before = e.subscribe(10, 2).unwrap();
    assert_eq!(e.subscribe(10, 1).err(), Some(NotConnected));
    let after = e.get_thread(10).unwrap();
    assert!(Arc::ptr_eq(&before, &after));
    assert_eq!(e.subscribers(10).to_vec(), vec![2]);
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    e.snapshot().validate().unwrap();
}

#[test]
fn subscribe_is_idempotent() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let a = e.subscribe(10, 1).unwrap();
    let b = e.subscribe(10, 1).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(e.subscribers(10).len(), 1);
    assert_eq!(e.subscribers(10).to_vec(), vec![1]);
    assert_eq!(e.threads_of(1), vec![10]);
    // One unsubscribe removes the single edge.
    assert!(e.unsubscribe(10, 1));
    assert!(!e.has_subscribers(10));
    assert!(!e.unsubscribe(10, 1));
}

#[test]
fn subscribe_returns_existing_entry() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    let made = e.thread(10);
    let got = e.subscribe(10, 1).unwrap();
    assert!(Arc::ptr_eq(&made, &got));
    assert!(Arc::ptr_eq(&got, &e.get_thread(10).unwrap()));
}

#[test]
fn unsubscribe_returns_true_iff_edge_existed_and_entry_stays() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let entry = e.subscribe(10, 1).unwrap();

    // Live connection, existing thread, no edge.
    assert!(!e.unsubscribe(10, 2));
    assert_eq!(e.subscribers(10).to_vec(), vec![1]);
    // Dead connection.
    assert!(!e.unsubscribe(10, 3));
    // Unknown thread: false, and no entry is created.
    assert!(!e.unsubscribe(99, 1));
    assert!(e.get_thread(99).is_none());

    assert!(e.unsubscribe(10, 1));
    assert!(!e.unsubscribe(10, 1));
    let still = e.get_thread(10).expect("entry stays after unsubscribe");
    assert!(Arc::ptr_eq(&entry, &still));
    assert!(e.subscribers(10).is_empty());
    assert!(!e.has_subscribers(10));
    assert!(e.is_connected(1));
    assert_eq!(e.snapshot().thread_count(), 1);
    e.snapshot().validate().unwrap();
}

#[test]
fn unsubscribe_one_of_many() {
    let e = E::new();
    for c in 1..=3 {
        e.connect(c, Caps::NONE);
        e.subscribe(10, c).unwrap();
        e.subscribe(20, c).unwrap();
    }
    assert!(e.unsubscribe(10, 2));
    assert_eq!(e.subscribers(10).to_vec(), vec![1, 3]);
    assert_eq!(e.subscribers(20).to_vec(), vec![1, 2, 3]);
    assert_eq!(e.threads_of(2), vec![20]);
    assert_eq!(e.threads_of(1), vec![10, 20]);
    assert!(e.has_subscribers(10));
}

#[test]
fn unknown_thread_reads() {
    let e = E::new();
    e.connect(1, Caps(1));
    let s = e.subscribers(5);
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    assert_eq!(s.iter().count(), 0);
    assert!(!s.contains(1));
    assert!(!e.has_subscribers(5));
    assert_eq!(e.first_subscriber_with(5, Caps::NONE), None);
    assert_eq!(e.subscribers_with(5, Caps::NONE), Vec::<u64>::new());
    assert_eq!(e.threads_of(2), Vec::<u64>::new());
    assert!(e.get_thread(5).is_none());
}

#[test]
fn ascending_order() {
    let e = E::new();
    for c in [5, 1, 3, 9, 7] {
        e.connect(c, Caps::NONE);
        e.subscribe(100, c).unwrap();
    }
    let s = e.subscribers(100);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 3, 5, 7, 9]);
    assert_eq!(s.to_vec(), vec![1, 3, 5, 7, 9]);
    assert_eq!(s.len(), 5);
    assert!(!s.is_empty());
    for c in [1, 3, 5, 7, 9] {
        assert!(s.contains(c));
    }
    for c in [0, 2, 4, 6, 8, 10] {
        assert!(!s.contains(c));
    }

    for t in [42, 7, 19, 3, 88] {
        e.subscribe(t, 1).unwrap();
    }
    assert_eq!(e.threads_of(1), vec![3, 7, 19, 42, 88, 100]);
}

#[test]
fn first_subscriber_with_and_subscribers_with() {
    let e = E::new();
    e.connect(1, Caps(0b001));
    e.connect(2, Caps(0b011));
    e.connect(3, Caps(0b010));
    e.connect(4, Caps(0b110));
    e.connect(5, Caps(0b111)); // not subscribed
    for c in [4, 3, 2, 1] {
        e.subscribe(10, c).unwrap();
    }

    assert_eq!(e.first_subscriber_with(10, Caps::NONE), Some(1));
    assert_eq!(e.first_subscriber_with(10, Caps(0b001)), Some(1));
    assert_eq!(e.first_subscriber_with(10, Caps(0b010)), Some(2));
    assert_eq!(e.first_subscriber_with(10, Caps(0b011)), Some(2));
    assert_eq!(e.first_subscriber_with(10, Caps(0b100)), Some(4));
    assert_eq!(e.first_subscriber_with(10, Caps(0b101)), None);
    assert_eq!(e.first_subscriber_with(10, Caps(0b1000)), None);

    assert_eq!(e.subscribers_with(10, Caps::NONE), vec![1, 2, 3, 4]);
    assert_eq!(e.subscribers_with(10, Caps(0b010)), vec![2, 3, 4]);
    assert_eq!(e.subscribers_with(10, Caps(0b011)), vec![2]);
    assert_eq!(e.subscribers_with(10, Caps(0b110)), vec![4]);
    assert_eq!(e.subscribers_with(10, Caps(0b101)), Vec::<u64>::new());

    // Caps updates are seen by the queries.
    e.connect(1, Caps(0b111));
    assert_eq!(e.first_subscriber_with(10, Caps(0b101)), Some(1));
    assert_eq!(e.subscribers_with(10, Caps(0b010)), vec![1, 2, 3, 4]);

    // A disconnected connection no longer qualifies.
    e.disconnect(1);
    assert_eq!(e.first_subscriber_with(10, Caps(0b101)), None);
    assert_eq!(e.first_subscriber_with(10, Caps::NONE), Some(2));
    // Unsubscribed ones neither.
    e.unsubscribe(10, 2);
    assert_eq!(e.first_subscriber_with(10, Caps(0b011)), None);
    assert_eq!(e.first_subscriber_with(10, Caps(0b010)), Some(3));
}

#[test]
fn thread_with_200_subscribers() {
    const N: u64 = 200;
    let e = E::new();
    let order = shuffled(N, 0x5eed);
    assert_ne!(order, (0..N).collect::<Vec<_>>());
    for &c in &order {
        e.connect(c, Caps(c % 4));
    }
    for &c in &order {
        e.subscribe(7, c).unwrap();
    }
    // Duplicates on the large path stay idempotent.
    for &c in order.iter().take(50) {
        e.subscribe(7, c).unwrap();
    }

    let s = e.subscribers(7);
    assert_eq!(s.len(), N as usize);
    assert!(!s.is_empty());
    assert_eq!(s.iter().collect::<Vec<_>>(), (0..N).collect::<Vec<_>>());
    assert_eq!(s.to_vec(), (0..N).collect::<Vec<_>>());
    for c in 0..N {
        assert!(s.contains(c), "missing {c}");
    }
    assert!(!s.contains(N));
    assert!(!s.contains(u64::MAX));
    assert_eq!(e.first_subscriber_with(7, Caps(0b11)), Some(3));
    assert_eq!(
        e.subscribers_with(7, Caps(0b10)),
        (0..N).filter(|c| c % 4 >= 2).collect::<Vec<_>>()
    );

    // Unsubscribe the even half, in shuffled order.
    for &c in order.iter().filter(|c| *c % 2 == 0) {
        assert!(e.unsubscribe(7, c), "unsubscribe {c}");
    }
    for &c in order.iter().filter(|c| *c % 2 == 0) {
        assert!(!e.unsubscribe(7, c), "second unsubscribe {c}");
    }
    let odd: Vec<u64> = (0..N).filter(|c| c % 2 == 1).collect();
    let s2 = e.subscribers(7);
    assert_eq!(s2.len(), odd.len());
    assert_eq!(s2.iter().collect::<Vec<_>>(), odd);
    for c in 0..N {
        assert_eq!(s2.contains(c), c % 2 == 1, "contains {c}");
    }
    // The earlier view is unchanged.
    assert_eq!(s.len(), N as usize);
    assert!(s.contains(0));
    for c in 0..N {
        let expect: Vec<u64> = if c % 2 == 1 { vec![7] } else { vec![] };
        assert_eq!(e.threads_of(c), expect, "threads_of {c}");
    }
    assert_eq!(e.first_subscriber_with(7, Caps::NONE), Some(1));
    assert_eq!(e.first_subscriber_with(7, Caps(0b10)), Some(3));
    e.snapshot().validate().unwrap();

    // Disconnect the remaining ones in shuffled order; the last one leaves 7 idle.
    let remaining: Vec<u64> = order.iter().copied().filter(|c| c % 2 == 1).collect();
    for (i, &c) in remaining.iter().enumerate() {
        let left = e.disconnect(c);
        if i + 1 == remaining.len() {
            assert_eq!(left, vec![7]);
        } else {
            assert_eq!(left, Vec::<u64>::new());
        }
    }
    assert!(!e.has_subscribers(7));
    assert!(e.subscribers(7).is_empty());
}

#[test]
fn connection_subscribed_to_100_threads() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    let order = shuffled(100, 42);
    for &t in &order {
        e.subscribe(t * 10, 1).unwrap();
    }
    let expected: Vec<u64> = (0..100).map(|t| t * 10).collect();
    assert_eq!(e.threads_of(1), expected);
    for &t in &expected {
        assert!(e.has_subscribers(t));
        assert_eq!(e.subscribers(t).to_vec(), vec![1]);
    }
    // Connection 2 shares every third thread.
    for t in expected.iter().copied().filter(|t| t % 30 == 0) {
        e.subscribe(t, 2).unwrap();
    }
    // Unsubscribe a few from 1.
    assert!(e.unsubscribe(500, 1));
    assert!(e.unsubscribe(0, 1));
    let mut exp1 = expected.clone();
    exp1.retain(|t| *t != 500 && *t != 0);
    assert_eq!(e.threads_of(1), exp1);
    assert_eq!(e.snapshot().thread_count(), 100);
    e.snapshot().validate().unwrap();

    let left = e.disconnect(1);
    let exp_left: Vec<u64> = exp1.iter().copied().filter(|t| t % 30 != 0).collect();
    assert_eq!(left, exp_left);
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    for &t in &expected {
        assert_eq!(e.has_subscribers(t), t % 30 == 0, "thread {t}");
    }
}

//! Connections: `connect`, `disconnect`, `is_connected`, `caps`.

use switchboard_core::{Caps, Engine};

type E = Engine<u64, u64>;

#[test]
fn smoke() {
    let e = E::new();
    assert!(!e.is_connected(1));
    assert_eq!(e.caps(1), None);

    assert!(e.connect(1, Caps(0b1)));
    assert!(e.is_connected(1));
    assert_eq!(e.caps(1), Some(Caps(0b1)));

    assert_eq!(e.disconnect(1), Vec::<u64>::new());
    assert!(!e.is_connected(1));
    assert_eq!(e.caps(1), None);
}

#[test]
fn caps_operations() {
    let a = Caps(0b0101);
    let b = Caps(0b0011);
    assert_eq!(a.union(b), Caps(0b0111));
    assert_eq!(a | b, Caps(0b0111));
    assert!(a.contains(Caps(0b0100)));
    assert!(a.contains(Caps::NONE));
    assert!(!a.contains(b));
    assert!((a | b).contains(a));
    assert!((a | b).contains(b));
    assert_eq!(Caps::NONE, Caps(0));
    assert_eq!(Caps::default(), Caps::NONE);
    assert!(Caps::NONE.contains(Caps::NONE));
    assert!(!Caps::NONE.contains(Caps(1)));
}

#[test]
fn connect_twice_updates_caps_and_returns_false() {
    let e = E::new();
    assert!(e.connect(7, Caps(0b01)));
    assert!(!e.connect(7, Caps(0b10)));
    assert!(e.is_connected(7));
    assert_eq!(e.caps(7), Some(Caps(0b10)));
    // Same caps again: still not newly live.
    assert!(!e.connect(7, Caps(0b10)));
    assert_eq!(e.caps(7), Some(Caps(0b10)));
    assert_eq!(e.snapshot().connection_count(), 1);
}

#[test]
fn connect_twice_keeps_subscriptions() {
    let e = E::new();
    e.connect(1, Caps(0b01));
    e.subscribe(10, 1).unwrap();
    assert!(!e.connect(1, Caps(0b11)));
    assert_eq!(e.threads_of(1), vec![10]);
    assert!(e.subscribers(10).contains(1));
    assert_eq!(e.first_subscriber_with(10, Caps(0b10)), Some(1));
}

#[test]
fn caps_are_per_connection() {
    let e = E::new();
    e.connect(1, Caps(1));
    e.connect(2, Caps(2));
    e.connect(3, Caps::NONE);
    assert_eq!(e.caps(1), Some(Caps(1)));
    assert_eq!(e.caps(2), Some(Caps(2)));
    assert_eq!(e.caps(3), Some(Caps::NONE));
    assert_eq!(e.caps(4), None);
    e.disconnect(2);
    assert_eq!(e.caps(1), Some(Caps(1)));
    assert_eq!(e.caps(2), None);
    assert_eq!(e.caps(3), Some(Caps::NONE));
}

#[test]
fn disconnect_returns_threads_left_without_subscribers_ascending() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    // Subscribe in non-ascending order.
    for t in [50, 3, 9, 41, 5] {
        e.subscribe(t, 1).unwrap();
    }
    // Thread 3 and 41 keep a subscriber after 1 leaves.
    e.subscribe(3, 2).unwrap();
    e.subscribe(41, 2).unwrap();
    // Thread 77 exists without subscribers; 1 was never on it.
    e.thread(77);
    // Thread 88 only has connection 2.
    e.subscribe(88, 2).unwrap();

    assert_eq!(e.disconnect(1), vec![5, 9, 50]);

    assert!(!e.is_connected(1));
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    for t in [50, 3, 9, 41, 5] {
        assert!(!e.subscribers(t).contains(1), "thread {t} still lists 1");
    }
    assert!(e.has_subscribers(3));
    assert!(e.has_subscribers(41));
    assert!(e.has_subscribers(88));
    assert!(!e.has_subscribers(5));
    assert!(!e.has_subscribers(9));
    assert!(!e.has_subscribers(50));
    assert_eq!(e.threads_of(2), vec![3, 41, 88]);
    // Entries stay: unloading is the host's decision.
    for t in [3, 5, 9, 41, 50, 77, 88] {
        assert!(e.get_thread(t).is_some(), "thread {t} entry vanished");
    }
    e.snapshot().validate().unwrap();
}

#[test]
fn disconnect_last_connection_returns_every_thread() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    for t in (0..20u64).rev() {
        e.subscribe(t * 3, 1).unwrap();
    }
    let expected: Vec<u64> = (0..20u64).map(|t| t * 3).collect();
    assert_eq!(e.disconnect(1), expected);
    assert_eq!(e.snapshot().connection_count(), 0);
}

#[test]
fn disconnect_unknown_returns_empty() {
    let e = E::new();
    assert_eq!(e.disconnect(42), Vec::<u64>::new());
    assert!(!e.is_connected(42));
    assert_eq!(e.caps(42), None);

    e.connect(1, Caps::NONE);
    e.subscribe(5, 1).unwrap();
    assert_eq!(e.disconnect(42), Vec::<u64>::new());
    // Nothing else changed.
    assert!(e.is_connected(1));
    assert_eq!(e.threads_of(1), vec![5]);
    assert_eq!(e.snapshot().connection_count(), 1);
}

#[test]
fn double_disconnect() {
    let e = E::new();
    e.connect(1, Caps::NONE);
    e.connect(2, Caps::NONE);
    e.subscribe(10, 1).unwrap();
    e.subscribe(11, 1).unwrap();
    e.subscribe(11, 2).unwrap();
    assert_eq!(e.disconnect(1), vec![10]);
    assert_eq!(e.disconnect(1), Vec::<u64>::new());
    assert!(!e.is_connected(1));
    assert!(e.is_connected(2));
    assert_eq!(e.subscribers(11).to_vec(), vec![2]);
    assert_eq!(e.snapshot().connection_count(), 1);
    e.snapshot().validate().unwrap();
}

#[test]
fn reconnect_after_disconnect_is_new() {
    let e = E::new();
    assert!(e.connect(1, Caps(1)));
    e.disconnect(1);
    assert!(e.connect(1, Caps(2)));
    assert_eq!(e.caps(1), Some(Caps(2)));
}

#[test]
fn reused_connection_id_starts_with_no_subscriptions() {
    let e = E::new();
    e.connect(1, Caps(1));
    e.subscribe(10, 1).unwrap();
    e.subscribe(20, 1).unwrap();
    assert_eq!(e.disconnect(1), vec![10, 20]);

    assert!(e.connect(1, Caps(1)));
    assert_eq!(e.threads_of(1), Vec::<u64>::new());
    assert!(!e.subscribers(10).contains(1));
    assert!(!e.subscribers(20).contains(1));
    assert!(!e.has_subscribers(10));
    assert!(!e.has_subscribers(20));
    assert_eq!(e.first_subscriber_with(10, Caps::NONE), None);

    let snap = e.snapshot();
    assert_eq!(snap.threads_of(1), Vec::<u64>::new());
    assert!(snap.subscribers(10).is_empty());
    snap.validate().unwrap();

    // Subscribing again works normally.
    e.subscribe(20, 1).unwrap();
    assert_eq!(e.threads_of(1), vec![20]);
    assert_eq!(e.disconnect(1), vec![20]);
}

#[test]
fn many_connections() {
    let e = E::new();
    for c in (0..500u64).rev() {
        assert!(e.connect(c, Caps(c)));
    }
    for c in 0..500u64 {
        assert!(e.is_connected(c));
        assert_eq!(e.caps(c), Some(Caps(c)));
    }
    let snap = e.snapshot();
    assert_eq!(snap.connection_count(), 500);
    assert_eq!(
        snap.connections().collect::<Vec<_>>(),
        (0..500).collect::<Vec<_>>()
    );
    for c in (0..500u64).filter(|c| c % 2 == 0) {
        assert_eq!(e.disconnect(c), Vec::<u64>::new());
    }
    for c in 0..500u64 {
        assert_eq!(e.is_connected(c), c % 2 == 1);
    }
    assert_eq!(e.snapshot().connection_count(), 250);
}

//! Listeners: generations, replacement, queues, `send`, owners, cancel tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Engine, NoListener, RecvTimeoutError, ThreadEntry, TryRecvError};

type E = Engine<u64, u64, (), String>;

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(20);

/// An owner type with a real size, so distinct `Arc`s never share an address
/// while both are alive.
#[derive(Debug)]
struct Owner(#[allow(dead_code)] u64);

fn entry() -> (E, Arc<ThreadEntry<u64, (), String>>) {
    let e = E::new();
    let t = e.thread(1);
    (e, t)
}

#[test]
fn smoke() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    assert_eq!(l.generation(), 1);
    assert!(t.has_listener());
    t.send("hello".into()).unwrap();
    assert_eq!(l.recv_timeout(LONG).unwrap(), "hello");
    t.clear_listener();
    assert!(!t.has_listener());
    assert!(l.is_cancelled());
    assert_eq!(l.try_recv(), Err(TryRecvError::Closed));
    assert!(l.recv().is_err());
}

#[test]
fn generation_zero_before_any_listener() {
    let (_e, t) = entry();
    assert_eq!(t.generation(), 0);
    assert!(!t.has_listener());
    t.clear_listener(); // no-op on an empty slot
    assert!(!t.has_listener());
    assert!(!t.clear_listener_if(0));
    assert!(!t.clear_listener_if(1));
}

#[test]
fn generations_strictly_increase() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l1 = t.set_listener(&owner);
    assert_eq!(l1.generation(), 1);
    assert_eq!(t.generation(), 1);
    let l2 = t.set_listener(&owner);
    assert_eq!(l2.generation(), 2);
    assert_eq!(t.generation(), 2);
    let l3 = t.set_listener(&owner);
    assert_eq!(l3.generation(), 3);
    assert_eq!(t.generation(), 3);

    // Never reused, even across clears.
    let mut last = l3.generation();
    for _ in 0..20 {
        t.clear_listener();
        let l = t.set_listener(&owner);
        assert!(l.generation() > last, "{} <= {last}", l.generation());
        assert_eq!(t.generation(), l.generation());
        last = l.generation();
    }
    // Per thread: another thread starts at 1.
    let (_e2, other) = entry();
    assert_eq!(other.set_listener(&owner).generation(), 1);
}

#[test]
fn generations_per_thread_in_one_engine() {
    let e = E::new();
    let a = e.thread(1);
    let b = e.thread(2);
    let owner = Arc::new(Owner(0));
    assert_eq!(a.set_listener(&owner).generation(), 1);
    assert_eq!(a.set_listener(&owner).generation(), 2);
    assert_eq!(b.generation(), 0);
    assert_eq!(b.set_listener(&owner).generation(), 1);
    assert_eq!(a.generation(), 2);
}

#[test]
fn replaced_listener_is_cancelled_and_drains_then_closes() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l1 = t.set_listener(&owner);
    let token_before = l1.token();
    assert!(!l1.is_cancelled());
    assert!(!token_before.is_cancelled());
    t.send("a".into()).unwrap();
    t.send("b".into()).unwrap();

    let l2 = t.set_listener(&owner);
    assert!(l1.is_cancelled());
    assert!(token_before.is_cancelled());
    assert!(l1.token().is_cancelled());
    assert!(!l2.is_cancelled());
    assert!(!l2.token().is_cancelled());

    // Already queued messages drain from the old listener, then it is closed.
    assert_eq!(l1.recv_timeout(LONG).unwrap(), "a");
    assert_eq!(l1.recv().unwrap(), "b");
    assert_eq!(l1.try_recv(), Err(TryRecvError::Closed));
    assert!(l1.recv().is_err());
    assert_eq!(l1.recv_timeout(LONG), Err(RecvTimeoutError::Closed));

    // New messages reach only the new listener.
    t.send("c".into()).unwrap();
    assert_eq!(l2.try_recv().unwrap(), "c");
    assert_eq!(l1.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(l2.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn replaced_listener_recv_with_queued_messages() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l1 = t.set_listener(&owner);
    t.send("x".into()).unwrap();
    let _l2 = t.set_listener(&owner);
    assert_eq!(l1.recv().unwrap(), "x");
    assert!(l1.recv().is_err());
}

#[test]
fn send_without_listener_returns_message() {
    let (_e, t) = entry();
    match t.send("m".to_string()) {
        Err(NoListener(m)) => assert_eq!(m, "m"),
        Ok(()) => panic!("send without listener succeeded"),
    }
    let err = t.send("n".to_string()).unwrap_err();
    assert_eq!(err.into_inner(), "n");

    // After a clear, too.
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    t.clear_listener();
    assert_eq!(t.send("o".to_string()).unwrap_err().into_inner(), "o");
    assert_eq!(l.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn no_listener_display_and_debug_do_not_need_payload() {
    let err: NoListener<String> = NoListener("secret".to_string());
    assert!(!err.to_string().is_empty());
    assert!(!format!("{err:?}").is_empty());
    assert_eq!(err.0, "secret");
}

#[test]
fn fifo_per_sender() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    for i in 0..1000 {
        t.send(i.to_string()).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(l.try_recv().unwrap(), i.to_string());
    }
    assert_eq!(l.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn fifo_per_sender_with_concurrent_senders() {
    const PER: usize = 2_000;
    let e = Arc::new(E::new());
    let t = e.thread(1);
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let senders: Vec<_> = (0..3usize)
        .map(|s| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let t = e.get_thread(1).unwrap();
                for i in 0..PER {
                    t.send(format!("{s}:{i}")).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; 3];
    for _ in 0..3 * PER {
        let m = l.recv_timeout(LONG).expect("message lost");
        let (s, i) = m.split_once(':').unwrap();
        let (s, i): (usize, usize) = (s.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[s], "sender {s} out of order");
        next[s] += 1;
    }
    for h in senders {
        h.join().unwrap();
    }
    assert_eq!(next, [PER; 3]);
    assert_eq!(l.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn clear_listener_if_old_generation_keeps_new_listener() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l1 = t.set_listener(&owner);
    let l2 = t.set_listener(&owner);
    assert!(!t.clear_listener_if(l1.generation()));
    assert!(!t.clear_listener_if(0));
    assert!(!t.clear_listener_if(l2.generation() + 1));
    assert!(t.has_listener());
    assert_eq!(t.generation(), l2.generation());
    assert!(!l2.is_cancelled());
    assert!(t.listener_matches(&owner));
    t.send("still".into()).unwrap();
    assert_eq!(l2.try_recv().unwrap(), "still");

    assert!(t.clear_listener_if(l2.generation()));
    assert!(!t.has_listener());
    assert!(l2.is_cancelled());
    assert_eq!(l2.try_recv(), Err(TryRecvError::Closed));
    assert!(!t.listener_matches(&owner));
    assert_eq!(t.send("gone".into()).unwrap_err().into_inner(), "gone");
}

#[test]
fn listener_matches_owner() {
    let (_e, t) = entry();
    let a = Arc::new(Owner(1));
    let b = Arc::new(Owner(1));
    assert!(!t.listener_matches(&a));
    let _l = t.set_listener(&a);
    assert!(t.listener_matches(&a));
    assert!(t.listener_matches(&Arc::clone(&a)));
    assert!(!t.listener_matches(&b));
    // Another type is never the same allocation.
    assert!(!t.listener_matches(&Arc::new(5u64)));

    // Replacing the owner.
    let _l2 = t.set_listener(&b);
    assert!(!t.listener_matches(&a));
    assert!(t.listener_matches(&b));
    t.clear_listener();
    assert!(!t.listener_matches(&b));
}

#[test]
fn listener_matches_unsized_owner() {
    let (_e, t) = entry();
    let a: Arc<str> = Arc::from("owner-a");
    let b: Arc<str> = Arc::from("owner-a");
    let _l = t.set_listener(&a);
    assert!(t.listener_matches(&a));
    assert!(!t.listener_matches(&b));
    let d: Arc<dyn std::any::Any + Send + Sync> = Arc::new(Owner(3));
    let _l = t.set_listener(&d);
    assert!(t.listener_matches(&d));
    assert!(!t.listener_matches(&a));
}

#[test]
fn listener_matches_false_after_owner_dropped() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(7));
    let weak = Arc::downgrade(&owner);
    let l = t.set_listener(&owner);
    assert!(t.listener_matches(&owner));
    drop(owner);
    assert!(weak.upgrade().is_none());
    // The owner is remembered weakly: the listener itself stays current.
    assert!(t.has_listener());
    assert!(!l.is_cancelled());
    // No fresh allocation of the same type matches (the engine must hold the
    // owner weakly, which keeps the old address from being reused).
    for i in 0..64 {
        let fresh = Arc::new(Owner(i));
        assert!(!t.listener_matches(&fresh));
    }
}

#[test]
fn set_listener_does_not_keep_owner_alive() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(7));
    let _l = t.set_listener(&owner);
    assert_eq!(Arc::strong_count(&owner), 1);
}

#[test]
fn has_listener() {
    let (_e, t) = entry();
    assert!(!t.has_listener());
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    assert!(t.has_listener());
    let _l2 = t.set_listener(&owner);
    assert!(t.has_listener());
    assert!(!t.clear_listener_if(l.generation()));
    assert!(t.has_listener());
    t.clear_listener();
    assert!(!t.has_listener());
}

#[test]
fn try_recv_empty_vs_closed() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    assert_eq!(l.try_recv(), Err(TryRecvError::Empty));
    t.send("1".into()).unwrap();
    assert_eq!(l.try_recv(), Ok("1".to_string()));
    assert_eq!(l.try_recv(), Err(TryRecvError::Empty));
    t.send("2".into()).unwrap();
    t.clear_listener();
    assert_eq!(l.try_recv(), Ok("2".to_string()));
    assert_eq!(l.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(l.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn recv_timeout_times_out_then_closes() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let t0 = Instant::now();
    assert_eq!(l.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    assert!(t0.elapsed() >= SHORT);
    t.send("x".into()).unwrap();
    assert_eq!(l.recv_timeout(SHORT), Ok("x".to_string()));
    t.clear_listener();
    let t0 = Instant::now();
    assert_eq!(l.recv_timeout(LONG), Err(RecvTimeoutError::Closed));
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn blocked_recv_wakes_on_clear() {
    let e = Arc::new(E::new());
    let t = e.thread(1);
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = l.recv_timeout(LONG);
        (r, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(30));
    t.clear_listener();
    let (r, took) = h.join().unwrap();
    assert_eq!(r, Err(RecvTimeoutError::Closed));
    assert!(took < Duration::from_secs(2));
}

#[test]
fn cancel_token_wait_timeout() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let tok = l.token();
    let clone = tok.clone();
    let t0 = Instant::now();
    assert!(!tok.wait_timeout(SHORT));
    assert!(t0.elapsed() >= SHORT);
    assert!(!clone.is_cancelled());

    t.clear_listener();
    assert!(tok.is_cancelled());
    assert!(clone.is_cancelled());
    let t0 = Instant::now();
    assert!(tok.wait_timeout(LONG));
    assert!(clone.wait_timeout(Duration::ZERO));
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Stays cancelled even if a new listener comes.
    let l2 = t.set_listener(&owner);
    assert!(tok.is_cancelled());
    assert!(!l2.token().is_cancelled());
    assert!(!l2.token().wait_timeout(Duration::ZERO));
}

#[test]
fn cancel_token_wakes_waiter_on_other_thread() {
    let (_e, t) = entry();
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let tok = l.token();
    let h = std::thread::spawn(move || {
        let t0 = Instant::now();
        (tok.wait_timeout(LONG), t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(30));
    let _l2 = t.set_listener(&owner); // replacing cancels
    let (cancelled, took) = h.join().unwrap();
    assert!(cancelled);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn cross_thread_10k_messages_in_order() {
    const N: usize = 10_000;
    let e = Arc::new(E::new());
    let t = e.thread(1);
    let owner = Arc::new(Owner(1));
    let l = t.set_listener(&owner);
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(N);
        while got.len() < N {
            match l.recv_timeout(LONG) {
                Ok(m) => got.push(m),
                Err(err) => panic!("after {} messages: {err:?}", got.len()),
            }
        }
        got
    });
    let e2 = Arc::clone(&e);
    let sender = std::thread::spawn(move || {
        let t = e2.get_thread(1).unwrap();
        for i in 0..N {
            t.send(i.to_string()).unwrap();
        }
    });
    sender.join().unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(got.len(), N);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, i.to_string());
    }
}

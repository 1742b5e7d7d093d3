//! Requests: `ThreadEntry::request`, `Reply`, `PendingReply`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{
    Engine, Listener, NoListener, PendingReply, Reply, ReplyTimeoutError, ThreadEntry,
};

/// A listener command: a question with its reply slot, or a plain note.
enum Cmd {
    Ask(u32, Reply<u32>),
    Note(#[allow(dead_code)] String),
}

type E = Engine<u64, u64, (), Cmd>;
type Entry = Arc<ThreadEntry<u64, (), Cmd>>;

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(20);

fn entry() -> (E, Entry) {
    let e = E::new();
    let t = e.thread(1);
    (e, t)
}

fn ask(t: &Entry, x: u32) -> PendingReply<u32> {
    match t.request(|r| Cmd::Ask(x, r)) {
        Ok(p) => p,
        Err(_) => panic!("request failed: no listener"),
    }
}

/// Serves `n` commands: doubles every question.
fn serve(l: Listener<Cmd>, n: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..n {
            match l.recv_timeout(LONG) {
                Ok(Cmd::Ask(x, reply)) => reply.send(x * 2),
                Ok(Cmd::Note(_)) => {}
                Err(err) => panic!("listener: {err:?}"),
            }
        }
    })
}

#[test]
fn smoke() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let h = serve(l, 1);
    let pending = ask(&t, 21);
    assert_eq!(pending.wait().unwrap(), 42);
    h.join().unwrap();
}

#[test]
fn request_reply_on_same_thread() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 5);
    match l.try_recv() {
        Ok(Cmd::Ask(5, reply)) => reply.send(500),
        _ => panic!("expected the request in the queue"),
    }
    assert_eq!(pending.wait_timeout(LONG), Ok(500));
}

#[test]
fn many_requests_in_order() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let h = serve(l, 200);
    let pendings: Vec<_> = (0..100u32)
        .map(|i| {
            t.send(Cmd::Note(i.to_string())).ok().unwrap();
            ask(&t, i)
        })
        .collect();
    for (i, p) in pendings.into_iter().enumerate() {
        assert_eq!(p.wait().unwrap(), i as u32 * 2);
    }
    h.join().unwrap();
}

#[test]
fn reply_dropped_unsent_is_err() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let pending = ask(&t, 1);
    match l.try_recv() {
        Ok(Cmd::Ask(1, reply)) => drop(reply),
        _ => panic!("expected the request in the queue"),
    }
    assert!(pending.wait().is_err());
}

#[test]
fn reply_dropped_unsent_wait_timeout_is_dropped() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 1);
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        match l.recv_timeout(LONG) {
            Ok(Cmd::Ask(_, reply)) => drop(reply),
            _ => panic!("expected the request"),
        }
    });
    let t0 = Instant::now();
    assert_eq!(pending.wait_timeout(LONG), Err(ReplyTimeoutError::Dropped));
    assert!(t0.elapsed() < Duration::from_secs(2));
    h.join().unwrap();
}

#[test]
fn listener_replaced_while_request_queued_then_dropped_unread() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l1 = t.set_listener(&owner);
    let mut pending = ask(&t, 3);
    let _l2 = t.set_listener(&owner);
    drop(l1);
    let t0 = Instant::now();
    let r = pending.wait_timeout(LONG);
    assert!(
        !matches!(r, Err(ReplyTimeoutError::Timeout)),
        "request hung after its listener was replaced and dropped"
    );
    assert_eq!(r, Err(ReplyTimeoutError::Dropped));
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn listener_replaced_then_dropped_wait_is_err() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l1 = t.set_listener(&owner);
    let pending = ask(&t, 3);
    let _l2 = t.set_listener(&owner);
    // Drop the old listener from another thread while the caller waits.
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        drop(l1);
    });
    assert!(pending.wait().is_err());
    h.join().unwrap();
}

#[test]
fn listener_cleared_while_request_queued_then_dropped() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 3);
    t.clear_listener();
    drop(l);
    assert_eq!(pending.wait_timeout(LONG), Err(ReplyTimeoutError::Dropped));
}

#[test]
fn thread_removed_while_request_queued_then_listener_dropped() {
    let e = E::new();
    let t = e.thread(1);
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 3);
    assert!(e.remove_thread(1));
    drop(l);
    assert_eq!(pending.wait_timeout(LONG), Err(ReplyTimeoutError::Dropped));
}

#[test]
fn replaced_listener_can_still_answer_queued_request() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l1 = t.set_listener(&owner);
    let mut pending = ask(&t, 4);
    let _l2 = t.set_listener(&owner);
    match l1.try_recv() {
        Ok(Cmd::Ask(4, reply)) => reply.send(8),
        _ => panic!("queued request must drain from the replaced listener"),
    }
    assert_eq!(pending.wait_timeout(LONG), Ok(8));
}

#[test]
fn request_without_listener_returns_message() {
    let (_e, t) = entry();
    let mut made = 0;
    let r = t.request(|reply: Reply<u32>| {
        made += 1;
        Cmd::Ask(77, reply)
    });
    assert_eq!(made, 1);
    match r {
        Err(NoListener(Cmd::Ask(x, _reply))) => assert_eq!(x, 77),
        Err(NoListener(Cmd::Note(_))) => panic!("wrong message came back"),
        Ok(_) => panic!("request without listener succeeded"),
    }

    // After a clear, too; into_inner gives it back.
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    t.clear_listener();
    let err = match t.request(|reply: Reply<u32>| Cmd::Ask(78, reply)) {
        Err(err) => err,
        Ok(_) => panic!("request after clear succeeded"),
    };
    match err.into_inner() {
        Cmd::Ask(78, reply) => {
            // The returned Reply still works like any other: answering it is harmless.
            reply.send(1);
        }
        _ => panic!("wrong message came back"),
    }
    assert!(l.try_recv().is_err());
}

#[test]
fn wait_timeout_times_out_then_ok() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 10);
    let t0 = Instant::now();
    assert_eq!(pending.wait_timeout(SHORT), Err(ReplyTimeoutError::Timeout));
    assert!(t0.elapsed() >= SHORT);
    // Still pending: a second short wait times out too.
    assert_eq!(pending.wait_timeout(SHORT), Err(ReplyTimeoutError::Timeout));

    let h = serve(l, 1);
    assert_eq!(pending.wait_timeout(LONG), Ok(20));
    h.join().unwrap();
}

#[test]
fn wait_timeout_then_wait() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let mut pending = ask(&t, 10);
    assert_eq!(pending.wait_timeout(SHORT), Err(ReplyTimeoutError::Timeout));
    let h = serve(l, 1);
    assert_eq!(pending.wait().unwrap(), 20);
    h.join().unwrap();
}

#[test]
fn reply_sent_before_wait() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let pending = ask(&t, 6);
    match l.try_recv() {
        Ok(Cmd::Ask(6, reply)) => reply.send(12),
        _ => panic!("expected the request"),
    }
    drop(l);
    assert_eq!(pending.wait().unwrap(), 12);
}

#[test]
fn dropping_pending_reply_does_not_break_reply() {
    let (_e, t) = entry();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    let pending = ask(&t, 6);
    drop(pending);
    match l.try_recv() {
        Ok(Cmd::Ask(6, reply)) => reply.send(12), // must not panic
        _ => panic!("expected the request"),
    }
}

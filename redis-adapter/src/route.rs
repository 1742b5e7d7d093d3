//! Routed commands and requests: from any node to a thread's owner.
//!
//! # Protocol
//!
//! 1. The sender runs [`SEND`](crate::script::SEND): if the thread has a
//!    live lease, the command joins the thread's inbox stream (with the
//!    sender's id for it and the sender's notice channel) and the owner's
//!    node is woken (`w:{t}` on its notice channel); otherwise `NoOwner`.
//! 2. The lease's command taker runs [`TAKE`](crate::script::TAKE) with
//!    its token: the waiting commands leave the inbox and each sender is
//!    told `a:{id}` (accepted), in one step. A fenced lease takes nothing.
//! 3. The sender waits for `a:{id}` up to the route timeout. If it does
//!    not come (lost on a dropped connection, or nobody took the command),
//!    the sender deletes its entry from the inbox (XDEL): deleted means it
//!    was never taken — `Err(Timeout)`, and nobody will ever take it; not
//!    there means a lease took it — accepted.
//! 4. A request's answer goes through [`REPLY`](crate::script::REPLY), fenced
//!    like every owner-only write: `r:{id}:{bytes}`, or `l:{id}` if the lease
//!    has ended. A request dropped unanswered sends `l:{id}` too.
//!
//! So a command is taken by at most one lease, at most once (TAKE removes
//! it in the step that takes it; XDEL and TAKE cannot both remove it), and
//! its sender gets `Ok` only if it was taken.
//!
//! Notices travel by pub/sub on the node's subscription connection. One
//! lost with a dropped connection costs a wait: an acceptance is then
//! found by step 3, a lost answer makes the request time out, and a lost
//! wake-up is made up by the taker polling every renew interval.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use crate::node::Node;
use crate::{RouteError, ThreadKey};

/// What a node hears on its notice channel about one of its commands.
#[derive(Debug)]
pub(crate) enum Notice {
    Accepted,
    Answer(Vec<u8>),
    Lost,
}

/// The node's share of the notice channel: senders waiting for their
/// commands' notices, and the command takers of its leases waiting to be
/// woken. Shared by the node handles and the worker (which reads the
/// channel).
#[derive(Debug)]
pub(crate) struct Router {
    /// Ids start at a random point: two nodes misconfigured with the same
    /// node id (one notice channel) still do not take each other's notices.
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<Notice>>>,
    /// The wake-ups of this node's command takers, by thread name.
    pub(crate) wakes: Mutex<HashMap<String, Arc<Notify>>>,
}

/// Removes a sender's registration when its call ends, however it ends.
struct Waiting<'a> {
    router: &'a Router,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.router.waiting).remove(&self.id);
    }
}

pub(crate) fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Router {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        // Half the range: ids never wrap in practice.
        Router {
            next_id: AtomicU64::new(h.finish() >> 1),
            waiting: Mutex::default(),
            wakes: Mutex::default(),
        }
    }
}

impl Router {
    fn register(&self) -> (Waiting<'_>, mpsc::UnboundedReceiver<Notice>) {
        // Relaxed: only uniqueness matters.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.waiting).insert(id, tx);
        (Waiting { router: self, id }, rx)
    }

    /// Handles one message from the node's notice channel.
    pub(crate) fn dispatch(&self, payload: &[u8]) {
        let Some((kind, rest)) = payload.split_first() else {
            return;
        };
        let Some(rest) = rest.strip_prefix(b":") else {
            return;
        };
        if *kind == b'w' {
            if let Ok(t) = std::str::from_utf8(rest) {
                if let Some(n) = lock(&self.wakes).get(t) {
                    n.notify_one();
                }
            }
            return;
        }
        let (id, answer) = match kind {
            b'r' => {
                let Some(colon) = rest.iter().position(|&b| b == b':') else {
                    return;
                };
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        let Some(id) = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()) else {
            return;
        };
        let notice = match (kind, answer) {
            (b'a', _) => Notice::Accepted,
            (b'r', Some(a)) => Notice::Answer(a.to_vec()),
            (b'l', _) => Notice::Lost,
            _ => return,
        };
        if let Some(tx) = lock(&self.waiting).get(&id) {
            let _ = tx.send(notice);
        }
    }
}

/// How a routed call ended on the sender's side.
enum Sent {
    Accepted,
    Answer(Vec<u8>),
}

impl<T: ThreadKey> Node<T> {
    /// Delivers `payload` to `t`'s current owner (possibly this node):
    /// `Ok` once the owner's lease has taken it — it reaches that lease's
    /// [`commands`](crate::Lease::commands) exactly once, and no other lease's.
    ///
    /// # Errors
    ///
    /// [`RouteError::NoOwner`] if `t` has no live lease;
    /// [`RouteError::Timeout`] if no lease took it within the route timeout
    /// (it was then withdrawn: no lease will ever take it), or Redis did not
    /// answer; [`RouteError::Redis`] for a Redis error. Only when the
    /// withdrawal itself fails (Redis unreachable) is the outcome unknown:
    /// that is a `Timeout` or `Redis` error after which the command may
    /// still be taken once.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the command queued for the owner.
    pub async fn send(&self, t: T, payload: &[u8]) -> Result<(), RouteError> {
        let route_timeout = self.inner.config.route_timeout;
        self.route(t, payload, None, route_timeout)
            .await
            .map(|_| ())
    }

    /// Sends `payload` to `t`'s owner as a request and waits up to
    /// `timeout` for its answer ([`RoutedCommand::reply`](crate::RoutedCommand::reply)).
    ///
    /// # Errors
    ///
    /// [`RouteError::NoOwner`] if `t` has no live lease;
    /// [`RouteError::Timeout`] if no answer came in time (if no lease had
    /// taken the request, it was withdrawn); [`RouteError::Lost`] if the
    /// lease that took it ended, or dropped it, before answering;
    /// [`RouteError::Redis`] for a Redis error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the request queued for the owner; its
    /// answer then goes nowhere.
    pub async fn request(
        &self,
        t: T,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        match self.route(t, payload, Some(()), timeout).await? {
            Sent::Answer(a) => Ok(a),
            Sent::Accepted => Err(RouteError::Timeout),
        }
    }

    async fn route(
        &self,
        t: T,
        payload: &[u8],
        request: Option<()>,
        timeout: Duration,
    ) -> Result<Sent, RouteError> {
        let i = &self.inner;
        let (waiting, mut notices) = i.router.register();
        let inbox = i.names.inbox(&t);
        let mut inv = i.scripts.send.key(i.names.lease(&t));
        inv.key(&inbox)
            .arg(waiting.id)
            .arg(i.names.notices(&i.id))
            .arg(if request.is_some() { "r" } else { "s" })
            .arg(payload)
            .arg(i.names.notices_prefix())
            .arg(t.to_string());
        let mut cmd = i.cmd.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let (queued, entry): (bool, String) = match tokio::time::timeout(
            i.config.publish_timeout,
            inv.invoke_async(&mut cmd),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(RouteError::Redis(e)),
            Err(_) => return Err(RouteError::Timeout),
        };
        if !queued {
            return Err(RouteError::NoOwner);
        }
        // Relaxed: a statistic.
        i.counters.routed.fetch_add(1, Ordering::Relaxed);
        let mut accepted = false;
        loop {
            match tokio::time::timeout_at(deadline, notices.recv()).await {
                Ok(Some(Notice::Accepted)) => {
                    accepted = true;
                    if request.is_none() {
                        return Ok(Sent::Accepted);
                    }
                }
                Ok(Some(Notice::Answer(a))) => return Ok(Sent::Answer(a)),
                Ok(Some(Notice::Lost)) => {
                    i.counters.routed_lost.fetch_add(1, Ordering::Relaxed);
                    return Err(RouteError::Lost);
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(waiting);
        if accepted {
            return Ok(Sent::Accepted);
        }
        // No word in time: withdraw it, unless a lease took it.
        let del = redis::cmd("XDEL").arg(&inbox).arg(&entry).clone();
        match tokio::time::timeout(i.config.publish_timeout, del.query_async::<i64>(&mut cmd)).await
        {
            Ok(Ok(0)) => Ok(Sent::Accepted), // taken: the notice was lost
            Ok(Ok(_)) => {
                i.counters.routed_lost.fetch_add(1, Ordering::Relaxed);
                Err(RouteError::Timeout)
            }
            Ok(Err(e)) => Err(RouteError::Redis(e)),
            Err(_) => Err(RouteError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_notices_reach_their_waiter() {
        let router = Router::default();
        let (w, mut rx) = router.register();
        let id = w.id;
        router.dispatch(format!("a:{id}").as_bytes());
        router.dispatch(format!("r:{id}:x:y").as_bytes());
        router.dispatch(format!("l:{id}").as_bytes());
        router.dispatch(b"garbage");
        router.dispatch(format!("a:{}", id + 1).as_bytes()); // nobody waits
        assert!(matches!(rx.try_recv(), Ok(Notice::Accepted)));
        assert!(matches!(rx.try_recv(), Ok(Notice::Answer(a)) if a == b"x:y"));
        assert!(matches!(rx.try_recv(), Ok(Notice::Lost)));
        assert!(rx.try_recv().is_err());
        drop(w);
        assert!(lock(&router.waiting).is_empty(), "unregistered on drop");
    }

    #[test]
    fn wake_ups_are_kept_until_taken() {
        let router = Router::default();
        let n = Arc::new(Notify::new());
        lock(&router.wakes).insert("7".into(), Arc::clone(&n));
        router.dispatch(b"w:7");
        // notify_one stores a permit: the next wait returns at once.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), n.notified())
                .await
                .expect("woken");
        });
    }
}

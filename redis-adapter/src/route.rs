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

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::RouteError;
use crate::node::Node;
use crate::notices::Notice;
use crate::thread_key::ThreadKey;

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
            .arg(waiting.id())
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

//! A node as the ownership service of a cluster
//! [`Supervisor`](switchboard_async::Supervisor), and routing that stays
//! in-process when this node's own supervisor serves the thread.
//!
//! # Invariants
//!
//! * `local` maps a thread to the lease of it that this [`Cluster`] (or a
//!   clone) claimed and has neither released nor dropped; the entry is
//!   removed by the lease's release or drop, only if it is still its own
//!   (`id`). A lease whose own deadline passed counts as absent.
//! * A command sent in-process goes into that lease's command stream,
//!   the same one that carries the commands routed through Redis: it
//!   reaches that lease at most once, or its sender gets an error (a
//!   request whose lease ends before answering gets `Lost`). The answer to
//!   an in-process request is checked against the lease's deadline, which
//!   never outlives Redis's expiry: an answer given after another node
//!   could have claimed the thread is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use switchboard_async::{OwnedLease, Ownership};
use tokio::sync::{mpsc, oneshot};

use crate::commands::LocalReply;
use crate::commands::RoutedCommand;
use crate::error::{ClaimError, PublishError, RouteError};
use crate::lease::Lease;
use crate::lease::Shared;
use crate::node::{Node, Published};
use crate::notices::lock;
use crate::script::FENCED;
use crate::thread_key::ThreadKey;

/// This node's leases claimed through a [`Cluster`], by thread.
type Local<T> = Arc<Mutex<HashMap<T, LocalLease>>>;

struct LocalLease {
    id: u64,
    token: u64,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<RoutedCommand>,
}

/// A [`Node`] as the [`Ownership`] service of a cluster
/// [`Supervisor`](switchboard_async::Supervisor) — a thread's listener is
/// started only on the node whose [`Node::claim`] wins, and stops when its
/// [`Lease`] is lost — and the routing half to go with it:
/// [`send`](Self::send) and [`request`](Self::request) reach the thread's
/// listener in-process when this node's supervisor serves it, and through
/// [`Node::send`] / [`Node::request`] (Redis) otherwise.
///
/// Clones share the node and the table of leases; give the supervisor a
/// clone and keep one for routing. The supervisor's `to_command` turns
/// each [`RoutedCommand`] (from another node, or in-process) into the
/// listener's command type; the handler answers a request with
/// [`RoutedCommand::reply`].
///
/// # Examples
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
/// use futures::StreamExt;
/// use switchboard_async::{Engine, Supervisor};
/// use switchboard_redis::{Cluster, Config, Node, RoutedCommand};
///
/// enum Cmd {
///     Routed(RoutedCommand),
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let engine: Arc<Engine<u64, u64, (), Cmd>> = Arc::new(Engine::new());
/// let (node, _deliveries) =
///     Node::start(Arc::clone(&engine), Config::new("redis://127.0.0.1:6379")).await?;
/// let cluster = Cluster::new(&node);
/// let rooms = Supervisor::new(&engine, |mut commands, _room| async move {
///     while let Some(Cmd::Routed(c)) = commands.next().await {
///         let answer = [c.payload(), b" (served here)"].concat();
///         let _ = c.reply(&answer).await;
///     }
/// })
/// .cluster(cluster.clone(), Cmd::Routed)
/// .unload_when_idle(Duration::from_secs(30), tokio::time::sleep);
///
/// // Whichever node needs thread 42 first tries to serve it; on every
/// // other node the task ends with TaskEnd::Refused.
/// if let Some(task) = rooms.start(&engine.thread(42)) {
///     tokio::spawn(task);
/// }
/// // From any node: in-process if this node serves 42, else through Redis.
/// let answer = cluster.request(42, b"hello", Duration::from_secs(1)).await?;
/// # let _ = answer;
/// # Ok(())
/// # }
/// ```
pub struct Cluster<T: ThreadKey> {
    node: Node<T>,
    local: Local<T>,
    next_id: Arc<AtomicU64>,
}

impl<T: ThreadKey> Clone for Cluster<T> {
    fn clone(&self) -> Self {
        Cluster {
            node: self.node.clone(),
            local: Arc::clone(&self.local),
            next_id: Arc::clone(&self.next_id),
        }
    }
}

impl<T: ThreadKey> std::fmt::Debug for Cluster<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node.id())
            .field("local_leases", &lock(&self.local).len())
            .finish()
    }
}

impl<T: ThreadKey> Cluster<T> {
    /// The ownership service and router of `node` (a new, empty table of
    /// leases: use one `Cluster` and its clones per node).
    pub fn new(node: &Node<T>) -> Self {
        Cluster {
            node: node.clone(),
            local: Arc::default(),
            next_id: Arc::default(),
        }
    }

    /// The node.
    pub fn node(&self) -> &Node<T> {
        &self.node
    }

    /// Whether a lease of `t` claimed through this `Cluster` is held and
    /// not lost: then [`send`](Self::send) and [`request`](Self::request)
    /// stay in-process.
    pub fn is_local(&self, t: T) -> bool {
        lock(&self.local)
            .get(&t)
            .is_some_and(|l| !l.shared.is_lost())
    }

    /// The fencing token of `t`'s lease held through this `Cluster`, if
    /// one is held and not lost. A listener started by a cluster
    /// [`Supervisor`](switchboard_async::Supervisor) reads it when it
    /// starts (its claim has won by then) and names it in
    /// [`publish`](Self::publish).
    pub fn token(&self, t: T) -> Option<u64> {
        lock(&self.local)
            .get(&t)
            .filter(|l| !l.shared.is_lost())
            .map(|l| l.token)
    }

    /// [`Lease::publish`] through `t`'s lease held by this `Cluster`,
    /// only if that lease has fencing token `token` (the one the listener
    /// started with): fenced in Redis, so a listener whose lease ended —
    /// or was replaced by a newer lease of this node — cannot publish.
    ///
    /// # Errors
    ///
    /// [`PublishError::Fenced`] if this `Cluster` holds no live lease of
    /// `t` with `token`, or Redis refused the token (the lease is then
    /// lost); otherwise as [`Node::publish`].
    ///
    /// # Cancel safety
    ///
    /// As [`Node::publish`].
    pub async fn publish(
        &self,
        t: T,
        token: u64,
        payload: &[u8],
    ) -> Result<Published, PublishError> {
        let shared = lock(&self.local)
            .get(&t)
            .filter(|l| l.token == token)
            .map(|l| Arc::clone(&l.shared));
        let counters = &self.node.inner.counters;
        let Some(shared) = shared.filter(|s| !s.is_lost()) else {
            // Relaxed: a statistic.
            counters.fenced.fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Fenced);
        };
        let i = &self.node.inner;
        let lease = i.names.lease(&t);
        let script = &i.scripts.fenced_publish;
        match self
            .node
            .run_publish(script, t, payload, Some((&lease, token)))
            .await
        {
            Err(PublishError::Redis(e)) if e.code() == Some(FENCED) => {
                shared.lose();
                counters.fenced.fetch_add(1, Ordering::Relaxed);
                Err(PublishError::Fenced)
            }
            r => r,
        }
    }

    /// Queues `command` for `t`'s local lease, if one is held and not
    /// lost; whether it did (if not, `command` is dropped: a local
    /// request's requester falls back to Redis).
    fn send_local(&self, t: T, command: RoutedCommand) -> bool {
        let local = lock(&self.local);
        match local.get(&t) {
            Some(l) if !l.shared.is_lost() => match l.tx.send(command) {
                Ok(()) => {
                    // Relaxed: a statistic.
                    self.node
                        .inner
                        .counters
                        .routed_local
                        .fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    /// [`Node::send`], in-process when this node holds `t`'s lease through
    /// this `Cluster`: `Ok` once the command is queued in that lease's
    /// command stream (it reaches the lease's listener at most once; if
    /// the lease is lost before the listener reads it, it is dropped, as a
    /// command taken through Redis would be).
    ///
    /// # Errors
    ///
    /// As [`Node::send`] when the thread is served elsewhere.
    ///
    /// # Cancel safety
    ///
    /// As [`Node::send`]; the in-process path completes at its first poll.
    pub async fn send(&self, t: T, payload: &[u8]) -> Result<(), RouteError> {
        if self.send_local(t, RoutedCommand::local(payload.to_vec(), None)) {
            return Ok(());
        }
        self.node.send(t, payload).await
    }

    /// [`Node::request`], in-process when this node holds `t`'s lease
    /// through this `Cluster`: the listener's
    /// [`RoutedCommand::reply`] answers it directly, only while the lease
    /// holds.
    ///
    /// # Errors
    ///
    /// In-process: [`RouteError::Lost`] if the lease ended, or the
    /// command was dropped, before an answer; [`RouteError::Timeout`] if
    /// no answer came within `timeout`. Otherwise as [`Node::request`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe in-process (the answer goes nowhere); otherwise as
    /// [`Node::request`].
    pub async fn request(
        &self,
        t: T,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, RouteError> {
        let lease = lock(&self.local).get(&t).map(|l| Arc::clone(&l.shared));
        if let Some(lease) = lease {
            let (tx, rx) = oneshot::channel();
            let command = RoutedCommand::local(payload.to_vec(), Some(LocalReply { tx, lease }));
            if self.send_local(t, command) {
                return match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(answer)) => Ok(answer),
                    Ok(Err(_)) => Err(RouteError::Lost),
                    Err(_) => Err(RouteError::Timeout),
                };
            }
        }
        self.node.request(t, payload, timeout).await
    }
}

/// A lease won through a [`Cluster`]: the supervisor's side of
/// [`Lease`]. Its commands are those routed through Redis and those sent
/// in-process by the `Cluster`, merged.
pub struct ClusterLease<T: ThreadKey> {
    /// `Some` until released.
    lease: Option<Lease<T>>,
    id: u64,
    local: Local<T>,
    rx: Option<mpsc::UnboundedReceiver<RoutedCommand>>,
}

impl<T: ThreadKey> std::fmt::Debug for ClusterLease<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLease")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<T: ThreadKey> ClusterLease<T> {
    /// The lease itself (for a fenced [`Lease::publish`], its token, …).
    pub fn lease(&self) -> &Lease<T> {
        self.lease.as_ref().expect("held until released")
    }

    fn unregister(&self) {
        let Some(lease) = &self.lease else { return };
        let mut local = lock(&self.local);
        if local.get(&lease.t).is_some_and(|l| l.id == self.id) {
            local.remove(&lease.t);
        }
    }
}

impl<T: ThreadKey> Drop for ClusterLease<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl<T: ThreadKey> Ownership<T> for Cluster<T> {
    type Lease = ClusterLease<T>;
    type Error = ClaimError;

    /// [`Node::claim`]; the lease is then this `Cluster`'s local route
    /// for `t` until released, dropped or lost.
    fn claim(&self, t: T) -> BoxFuture<'static, Result<ClusterLease<T>, ClaimError>> {
        let this = self.clone();
        async move {
            let lease = this.node.claim(t).await?;
            // Relaxed: only uniqueness matters.
            let id = this.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            lock(&this.local).insert(
                t,
                LocalLease {
                    id,
                    token: lease.token,
                    shared: Arc::clone(&lease.shared),
                    tx,
                },
            );
            Ok(ClusterLease {
                lease: Some(lease),
                id,
                local: this.local,
                rx: Some(rx),
            })
        }
        .boxed()
    }
}

impl<T: ThreadKey> OwnedLease for ClusterLease<T> {
    type Command = RoutedCommand;

    /// [`Lease::commands`] merged with the commands sent in-process,
    /// taking turns; it ends once the lease is lost.
    fn commands(&mut self) -> BoxStream<'static, RoutedCommand> {
        let lease = self.lease.as_mut().expect("held until released");
        let mut routed = lease.commands();
        let shared = Arc::clone(&lease.shared);
        let mut local = self.rx.take();
        let mut local_first = true;
        futures::stream::poll_fn(move |cx| {
            if shared.is_lost() {
                return Poll::Ready(None);
            }
            local_first = !local_first;
            for turn in [local_first, !local_first] {
                let got = if turn {
                    match local.as_mut().map(|rx| rx.poll_recv(cx)) {
                        Some(Poll::Ready(None)) => {
                            local = None;
                            Poll::Pending
                        }
                        Some(p) => p,
                        None => Poll::Pending,
                    }
                } else {
                    routed.poll_next_unpin(cx)
                };
                if let Poll::Ready(c) = got {
                    return Poll::Ready(c);
                }
            }
            Poll::Pending
        })
        .boxed()
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        let mut lost = self.lease().shared.lost.subscribe();
        async move {
            // Err: the lease is gone, and with it any chance to act.
            let _ = lost.wait_for(|&l| l).await;
        }
        .boxed()
    }

    /// [`Lease::release`]; a failure (Redis away, the lease already
    /// ended) lets the lease expire on its own.
    fn release(mut self) -> BoxFuture<'static, ()> {
        self.unregister();
        let lease = self.lease.take();
        async move {
            if let Some(lease) = lease {
                let _ = lease.release().await;
            }
        }
        .boxed()
    }
}

//! The owner's side of routing: a lease's command stream, the task that
//! takes its commands from Redis, and the fenced answer to a request (see
//! `route.rs` for the protocol).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, Notify};

use crate::error::RouteError;
use crate::lease::{Lease, Shared};
use crate::notices::{lock, Router};
use crate::script::{Scripts, FENCED};
use crate::thread_key::ThreadKey;

/// Commands a taker asks for at once (and buffers for the host).
const TAKE_BATCH: usize = 64;

/// A command or request routed to a lease (see [`Lease::commands`]).
pub struct RoutedCommand {
    payload: Vec<u8>,
    request: Option<ReplyTo>,
    /// A request sent in-process through a [`Cluster`](crate::Cluster)
    /// to this node's own lease.
    local: Option<LocalReply>,
}

/// Where the answer to an in-process request goes: straight to the
/// requester, checked against the lease (dropped unsent: `Lost`).
pub(crate) struct LocalReply {
    pub(crate) tx: tokio::sync::oneshot::Sender<Vec<u8>>,
    pub(crate) lease: Arc<Shared>,
}

/// Where a request's answer goes.
struct ReplyTo {
    id: String,
    channel: String,
    lease_key: String,
    token: u64,
    scripts: Arc<Scripts>,
    cmd: ConnectionManager,
    timeout: Duration,
    answered: bool,
}

impl std::fmt::Debug for RoutedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedCommand")
            .field("len", &self.payload.len())
            .field("request", &self.is_request())
            .field("local", &self.local.is_some())
            .finish()
    }
}

impl RoutedCommand {
    /// What the sender sent.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether the sender waits for an answer ([`Node::request`](crate::Node::request)).
    pub fn is_request(&self) -> bool {
        self.request.is_some() || self.local.is_some()
    }

    /// A command sent in-process by [`Cluster::send`](crate::Cluster::send)
    /// or [`Cluster::request`](crate::Cluster::request) to this node's own
    /// lease (`local`: the reply, for a request).
    pub(crate) fn local(payload: Vec<u8>, local: Option<LocalReply>) -> Self {
        RoutedCommand {
            payload,
            request: None,
            local,
        }
    }

    /// Answers a request, fenced: Redis delivers the answer only if the
    /// lease that took the request still holds its token (otherwise the
    /// requester gets [`RouteError::Lost`]). Does nothing for a plain
    /// command. An in-process request (made through a
    /// [`Cluster`](crate::Cluster) on the owner's own node) is answered
    /// in-process, only while this node still believes in the lease (its
    /// own deadline, never later than Redis's expiry).
    ///
    /// # Errors
    ///
    /// [`RouteError::Lost`] if the lease has ended; [`RouteError::Timeout`]
    /// or [`RouteError::Redis`] if Redis did not take the answer (the
    /// requester then times out).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not deliver the answer.
    pub async fn reply(mut self, answer: &[u8]) -> Result<(), RouteError> {
        if let Some(local) = self.local.take() {
            if local.lease.is_lost() {
                return Err(RouteError::Lost); // the requester gets Lost
            }
            return local.tx.send(answer.to_vec()).map_err(|_| RouteError::Lost);
        }
        let Some(to) = self.request.as_mut() else {
            return Ok(());
        };
        to.answered = true;
        let mut inv = to.scripts.reply.key(&to.lease_key);
        inv.arg(to.token).arg(&to.channel).arg(&to.id).arg(answer);
        let mut cmd = to.cmd.clone();
        match tokio::time::timeout(to.timeout, inv.invoke_async::<i64>(&mut cmd)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.code() == Some(FENCED) => Err(RouteError::Lost),
            Ok(Err(e)) => Err(RouteError::Redis(e)),
            Err(_) => Err(RouteError::Timeout),
        }
    }
}

impl Drop for RoutedCommand {
    fn drop(&mut self) {
        let Some(to) = self.request.take() else {
            return;
        };
        if to.answered {
            return;
        }
        // Unanswered: tell the requester now rather than at its timeout.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let mut cmd = to.cmd.clone();
            let publish = redis::cmd("PUBLISH")
                .arg(&to.channel)
                .arg(format!("l:{}", to.id))
                .clone();
            rt.spawn(async move {
                let _ =
                    tokio::time::timeout(to.timeout, publish.query_async::<i64>(&mut cmd)).await;
            });
        }
    }
}

/// The commands routed to one lease, as a `Stream` of [`RoutedCommand`]
/// (from [`Lease::commands`]). It ends once the lease is lost.
///
/// Commands are taken from Redis (and their senders told they were
/// accepted) ahead of the host, up to 64 at a time; dropping the stream
/// drops those not yet read (requests among them are answered with
/// [`RouteError::Lost`]).
pub struct Commands<T> {
    rx: mpsc::Receiver<RoutedCommand>,
    shared: Arc<Shared>,
    taker: tokio::task::JoinHandle<()>,
    _thread: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Commands<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl<T> Drop for Commands<T> {
    fn drop(&mut self) {
        self.taker.abort();
    }
}

/// # Cancel safety
///
/// Cancel-safe: a command is taken only when `poll_next` returns it.
impl<T> futures::Stream for Commands<T> {
    type Item = RoutedCommand;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoutedCommand>> {
        if self.shared.is_lost() {
            // A lost lease handles nothing more.
            self.rx.close();
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }
}

/// The task that takes a lease's commands from Redis.
struct Taker {
    tx: mpsc::Sender<RoutedCommand>,
    shared: Arc<Shared>,
    wake: Arc<Notify>,
    scripts: Arc<Scripts>,
    cmd: ConnectionManager,
    lease_key: String,
    inbox: String,
    token: u64,
    timeout: Duration,
    poll: Duration,
}

/// An inbox entry as TAKE returns it: the stream id and the field/value
/// pairs (`i`, `r`, `k`, `d`).
type RawCommand = (String, Vec<(String, Vec<u8>)>);

impl Taker {
    async fn run(self) {
        let mut lost = self.shared.lost.subscribe();
        loop {
            if self.shared.is_lost() {
                return;
            }
            // Take only what the host has room for.
            let Ok(permit) = self.tx.reserve().await else {
                return;
            };
            drop(permit);
            let count = self.tx.capacity().clamp(1, TAKE_BATCH);
            let mut inv = self.scripts.take.key(&self.lease_key);
            inv.key(&self.inbox).arg(self.token).arg(count);
            let mut cmd = self.cmd.clone();
            let r =
                tokio::time::timeout(self.timeout, inv.invoke_async::<Vec<RawCommand>>(&mut cmd))
                    .await;
            let mut full = false;
            match r {
                Ok(Ok(got)) => {
                    full = got.len() == count;
                    for (_, fields) in got {
                        let c = self.command(fields);
                        if self.tx.send(c).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(Err(e)) if e.code() == Some(FENCED) => {
                    self.shared.counters.fenced.fetch_add(1, Ordering::Relaxed);
                    self.shared.lose();
                    return;
                }
                // Redis slow or away: try again at the next wake or poll.
                Ok(Err(_)) | Err(_) => {}
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = lost.wait_for(|&l| l) => return,
            }
        }
    }

    fn command(&self, fields: Vec<(String, Vec<u8>)>) -> RoutedCommand {
        let mut f: HashMap<String, Vec<u8>> = fields.into_iter().collect();
        let payload = f.remove("d").unwrap_or_default();
        let request = (f.get("k").map(Vec::as_slice) == Some(b"r")).then(|| ReplyTo {
            id: String::from_utf8_lossy(&f.remove("i").unwrap_or_default()).into_owned(),
            channel: String::from_utf8_lossy(&f.remove("r").unwrap_or_default()).into_owned(),
            lease_key: self.lease_key.clone(),
            token: self.token,
            scripts: Arc::clone(&self.scripts),
            cmd: self.cmd.clone(),
            timeout: self.timeout,
            answered: false,
        });
        RoutedCommand {
            payload,
            request,
            local: None,
        }
    }
}

/// Unregisters a lease's wake-up when its taker ends (only its own: a
/// later lease of the same thread on this node may have registered since).
struct WakeGuard {
    router: Arc<Router>,
    name: String,
    wake: Arc<Notify>,
}

impl Drop for WakeGuard {
    fn drop(&mut self) {
        let mut wakes = lock(&self.router.wakes);
        if wakes
            .get(&self.name)
            .is_some_and(|w| Arc::ptr_eq(w, &self.wake))
        {
            wakes.remove(&self.name);
        }
    }
}

impl<T: ThreadKey> Lease<T> {
    /// The commands and requests routed to this lease's thread
    /// ([`Node::send`](crate::Node::send), [`Node::request`](crate::Node::request) from any node), each taken from
    /// Redis by this lease exactly once (a fenced step: a lease that has
    /// ended takes nothing). The stream ends once the lease is lost. Call
    /// it once per lease: a second stream would share the commands with
    /// the first.
    pub fn commands(&mut self) -> Commands<T> {
        let i = &self.node.inner;
        let name = self.t.to_string();
        let wake = Arc::new(Notify::new());
        lock(&i.router.wakes).insert(name.clone(), Arc::clone(&wake));
        let guard = WakeGuard {
            router: Arc::clone(&i.router),
            name,
            wake: Arc::clone(&wake),
        };
        let (tx, rx) = mpsc::channel(TAKE_BATCH);
        let taker = Taker {
            tx,
            shared: Arc::clone(&self.shared),
            wake,
            scripts: Arc::clone(&i.scripts),
            cmd: i.cmd.clone(),
            lease_key: i.names.lease(&self.t),
            inbox: i.names.inbox(&self.t),
            token: self.token,
            timeout: i.config.publish_timeout,
            poll: i.config.renew_interval,
        };
        Commands {
            rx,
            shared: Arc::clone(&self.shared),
            taker: tokio::spawn(async move {
                let _guard = guard;
                taker.run().await;
            }),
            _thread: std::marker::PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_takers_guard_leaves_a_newer_registration() {
        let router = Arc::new(Router::default());
        let (old, new) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        lock(&router.wakes).insert("9".into(), Arc::clone(&old));
        let guard = WakeGuard {
            router: Arc::clone(&router),
            name: "9".into(),
            wake: old,
        };
        lock(&router.wakes).insert("9".into(), Arc::clone(&new));
        drop(guard);
        assert!(lock(&router.wakes)
            .get("9")
            .is_some_and(|w| Arc::ptr_eq(w, &new)));
        let guard = WakeGuard {
            router: Arc::clone(&router),
            name: "9".into(),
            wake: new,
        };
        drop(guard);
        assert!(lock(&router.wakes).is_empty());
    }
}

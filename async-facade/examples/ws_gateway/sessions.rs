//! Sessions across nodes (cluster mode): a session's connection id is
//! held by at most one node at a time, through a lease on the id in Redis.
//!
//! A `resume` of session `S` (id `session_id(S)`) on node X:
//!
//! 1. if X holds the id's lease, the takeover is local (the engine's new
//!    incarnation ends the old one; its websocket is closed, 4000);
//! 2. otherwise X claims the id. While another node holds it, X sends that
//!    node a `takeover` request: the holder ends its incarnation of the id
//!    (from then on its old websocket's frames are refused everywhere:
//!    its incarnation is gone), closes that websocket (4000), answers,
//!    and releases the lease; X claims again. A holder that died answers
//!    nothing: X claims once its lease expired (bounded: lease length
//!    plus two route timeouts, else `unavailable`);
//! 3. X holds the lease while its websocket holds the id, and releases it
//!    when that incarnation ends (close, another resume, shutdown). A
//!    holder whose lease is lost (Redis unreachable past the lease) ends
//!    its incarnation too, as another node may take the id over.
//!
//! Invariant: `held` has an entry for id `c` exactly while this node's
//! holder task for `c` runs; its `inc` is the incarnation the lease
//! stands for. Entries change only under `held`'s lock, and an
//! incarnation of `c` is made (`connect_with`) only under it.

use super::engine::{Conn, ConnId, Engine};
use super::outbox::{Close, Outbox};
use super::protocol::Refusal;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use switchboard_async::Caps;
use switchboard_redis::{ClaimError, Lease, Node};
use tokio::sync::oneshot;

/// This node's hold on one session id.
#[derive(Debug)]
struct Held {
    inc: u64,
    /// Unique per holder task (an id may be held again later).
    task: u64,
    /// Dropped or fired: release the lease.
    _stop: oneshot::Sender<()>,
}

/// The session ids this node holds.
#[derive(Debug)]
pub(crate) struct Sessions {
    node: Node<u64>,
    held: Arc<Mutex<HashMap<ConnId, Held>>>,
    next_task: AtomicU64,
    lease: Duration,
    route_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ends whatever incarnation of `id` is live here and closes its
/// websocket as taken over.
fn end_here(engine: &Engine, id: ConnId) {
    let outbox = engine.data(id);
    engine.disconnect(id);
    if let Some(outbox) = outbox {
        outbox.close(Close::Replaced);
    }
}

impl Sessions {
    pub(crate) fn new(node: Node<u64>, lease: Duration, route_timeout: Duration) -> Sessions {
        Sessions {
            node,
            held: Arc::default(),
            next_task: AtomicU64::new(0),
            lease,
            route_timeout,
        }
    }

    /// Session ids held here now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.held).len()
    }

    /// Makes `outbox`'s websocket act as `id` in a new incarnation here,
    /// taking the id over from whichever node holds it.
    ///
    /// # Errors
    ///
    /// `unavailable` if the id could not be taken over in time (Redis
    /// away), `shutting_down`.
    pub(crate) async fn take(
        &self,
        engine: &Arc<Engine>,
        id: ConnId,
        outbox: &Outbox,
    ) -> Result<Conn, Refusal> {
        {
            let held = lock(&self.held);
            if held.contains_key(&id) {
                return Ok(self.become_holder(engine, held, id, outbox, None));
            }
        }
        let deadline = tokio::time::Instant::now() + self.lease + 2 * self.route_timeout;
        let lease = loop {
            if engine.is_shut_down() {
                return Err(Refusal::ShuttingDown);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Refusal::Unavailable);
            }
            match self.node.claim(id).await {
                Ok(lease) => break lease,
                Err(ClaimError::Owned { .. }) => {
                    let asked = self.node.request(id, b"takeover", self.route_timeout).await;
                    if asked.is_err() {
                        // Nobody answered (the holder died): wait for its
                        // lease to expire.
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        };
        let held = lock(&self.held);
        // Another resume of `id` on this node may have won meanwhile
        // (then our claim could not have): checked, not assumed.
        Ok(self.become_holder(engine, held, id, outbox, Some(lease)))
    }

    /// Under `held`'s lock: `id`'s new incarnation with `outbox`, the old
    /// one's websocket closed; with a new `lease`, its holder task.
    fn become_holder(
        &self,
        engine: &Arc<Engine>,
        mut held: std::sync::MutexGuard<'_, HashMap<ConnId, Held>>,
        id: ConnId,
        outbox: &Outbox,
        lease: Option<Lease<u64>>,
    ) -> Conn {
        let old = engine.data(id);
        let inc = engine.connect_with(id, Caps::NONE, outbox.clone());
        if let Some(old) = old.filter(|old| !old.same(outbox)) {
            old.close(Close::Replaced);
        }
        match lease {
            None => {
                if let Some(h) = held.get_mut(&id) {
                    h.inc = inc;
                }
            }
            Some(lease) => {
                let (stop, stopped) = oneshot::channel();
                // Relaxed: only uniqueness matters.
                let task = self.next_task.fetch_add(1, Ordering::Relaxed);
                held.insert(
                    id,
                    Held {
                        inc,
                        task,
                        _stop: stop,
                    },
                );
                let held = Arc::clone(&self.held);
                let engine = Arc::downgrade(engine);
                tokio::spawn(hold(engine, held, id, task, lease, stopped));
            }
        }
        Conn { id, inc }
    }

    /// `conn` ended here (closed, resumed as another id, shut down): if it
    /// is the incarnation this node holds its id's lease for, the lease is
    /// released.
    pub(crate) fn ended(&self, conn: Conn) {
        let mut held = lock(&self.held);
        if held.get(&conn.id).is_some_and(|h| h.inc == conn.inc) {
            held.remove(&conn.id); // drops `_stop`: the holder releases
        }
    }
}

/// Holds `id`'s lease for this node until its incarnation ends here
/// (`stopped`), another node takes it over, or the lease is lost.
async fn hold(
    engine: std::sync::Weak<Engine>,
    held: Arc<Mutex<HashMap<ConnId, Held>>>,
    id: ConnId,
    task: u64,
    mut lease: Lease<u64>,
    stopped: oneshot::Receiver<()>,
) {
    let mut commands = lease.commands();
    let forget = || {
        let mut held = lock(&held);
        if held.get(&id).is_some_and(|h| h.task == task) {
            held.remove(&id);
            return true;
        }
        false
    };
    tokio::select! {
        _ = stopped => {}
        command = commands.next() => {
            // A takeover from another node: end our incarnation first, so
            // that nothing our websocket still sends counts, then answer.
            if forget() {
                if let Some(engine) = engine.upgrade() {
                    end_here(&engine, id);
                }
            }
            if let Some(c) = command {
                let _ = c.reply(b"ok").await;
            }
        }
        () = lease.lost() => {
            // Another node may take the id over without asking us.
            if forget() {
                if let Some(engine) = engine.upgrade() {
                    end_here(&engine, id);
                }
            }
            return;
        }
    }
    drop(commands);
    let _ = lease.release().await;
}

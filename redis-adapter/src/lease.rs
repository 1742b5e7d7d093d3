//! One owner per thread across nodes: fenced leases in Redis.
//!
//! A [`Lease`] is a node's right to act as a thread's owner. Redis holds
//! it (the lease hash, expiring after the lease length) with a fencing
//! token that only grows per thread (see `script.rs` for the keys, the
//! scripts and their invariants). Every owner-only write — renewal,
//! release, fenced publish — is one Lua script that runs only if the lease
//! still holds its token: a node that was paused or cut off past its lease
//! cannot act once another node claimed the thread, nor after its lease
//! merely expired.
//!
//! # Lease states
//!
//! | state | meaning | leaves by |
//! |---|---|---|
//! | held | Redis confirmed the claim or a renewal sent less than the lease length ago (`valid_until` is in the future) | a renewal confirmed (stays held), or `valid_until` passing, or Redis refusing a renewal or a fenced publish: lost |
//! | lost | `lost()` has resolved; every fenced publish is refused | never (final) |
//!
//! The node's own deadline, `valid_until`, counts from when the claim or
//! renewal was *sent*: Redis set its expiry later than that, so a node
//! never believes it holds a lease that Redis has already dropped (clocks
//! running at the same rate). The renewer wakes at the earlier of the next
//! renewal and `valid_until`, so `lost()` resolves at the latest when the
//! node's deadline passes, plus scheduling delays — a process that was
//! stopped finds its deadline passed when it resumes, before it can act.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redis::aio::ConnectionManager;
use tokio::sync::watch;

use crate::config::Config;
use crate::counters::Counters;
use crate::error::{ClaimError, PublishError, RouteError};
use crate::node::Published;
use crate::node::{Inner, Node};
use crate::script::{Scripts, FENCED};
use crate::thread_key::ThreadKey;

/// A thread's current owner, as Redis sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Owner {
    /// The owner's node id ([`Node::id`]).
    pub node: String,
    /// Its lease's fencing token.
    pub token: u64,
}

/// The right to act as one thread's owner, cluster-wide, for as long as it
/// is not lost (see [`Node::claim`]).
///
/// The node renews it in the background until it is released, dropped
/// or lost. Dropping a lease stops the renewals: it then expires in Redis
/// after the lease length (call [`release`](Lease::release) to free the
/// thread at once). A lease keeps its node running.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard_core::Engine;
/// use switchboard_redis::{ClaimError, Config, Node};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
/// let (node, _deliveries) =
///     Node::start(engine, Config::new("redis://127.0.0.1:6379")).await?;
/// match node.claim(42).await {
///     Ok(lease) => {
///         lease.publish(b"served by this node").await?; // fenced
///         tokio::select! {
///             _ = lease.lost() => { /* stop acting as 42's owner */ }
///             _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
///                 lease.release().await?;
///             }
///         }
///     }
///     Err(ClaimError::Owned { node, .. }) => println!("42 is served by {node}"),
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(())
/// # }
/// ```
pub struct Lease<T: ThreadKey> {
    pub(crate) t: T,
    pub(crate) token: u64,
    pub(crate) node: Node<T>,
    pub(crate) shared: Arc<Shared>,
    renewer: tokio::task::JoinHandle<()>,
}

impl<T: ThreadKey> std::fmt::Debug for Lease<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("t", &self.t)
            .field("token", &self.token)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

/// What a lease shares with its renewer.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `true` once lost (final).
    pub(crate) lost: watch::Sender<bool>,
    /// Until when the lease is known to hold in Redis.
    valid_until: Mutex<Instant>,
    pub(crate) counters: Arc<Counters>,
}

impl Shared {
    fn expired(&self) -> bool {
        Instant::now() >= *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.expired()
    }

    /// Marks the lease lost (once; counted once, before anyone waiting in
    /// `lost()` is woken, so that a woken task sees the count).
    pub(crate) fn lose(&self) {
        self.lost.send_if_modified(|lost| {
            if *lost {
                return false;
            }
            *lost = true;
            // Relaxed: a statistic; the watch's lock orders it before the wake.
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            true
        });
    }

    fn extend(&self, until: Instant) {
        let mut v = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *v = (*v).max(until);
    }

    fn deadline(&self) -> Instant {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The renewal task's state.
struct Renewer {
    shared: Arc<Shared>,
    scripts: Arc<Scripts>,
    cmd: ConnectionManager,
    key: String,
    token: u64,
    config: Arc<Config>,
}

impl Renewer {
    async fn run(mut self) {
        let (length, every) = (self.config.lease, self.config.renew_interval);
        let mut last = Instant::now();
        loop {
            let wake = (last + every).min(self.shared.deadline());
            tokio::time::sleep_until(wake.into()).await;
            if self.shared.expired() {
                self.shared.lose();
                return;
            }
            last = Instant::now();
            let wait = every.min(self.shared.deadline().saturating_duration_since(last));
            let mut inv = self.scripts.renew.key(&self.key);
            inv.arg(self.token).arg(length.as_millis() as u64);
            match tokio::time::timeout(wait, inv.invoke_async::<i64>(&mut self.cmd)).await {
                Ok(Ok(1)) => {
                    self.shared.extend(last + length);
                    // Relaxed: a statistic.
                    self.shared
                        .counters
                        .renewals
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(Ok(_)) => {
                    // Expired, released or taken over: Redis refused.
                    self.shared.counters.fenced.fetch_add(1, Ordering::Relaxed);
                    self.shared.lose();
                    return;
                }
                // Unknown (Redis slow, paused, down): the old deadline holds.
                Ok(Err(_)) | Err(_) => {}
            }
        }
    }
}

impl<T: ThreadKey> Node<T> {
    /// Becomes `t`'s owner, if no live lease of `t` exists: one Lua script
    /// checks the lease, takes the next fencing token and writes the lease
    /// with its expiry. The node then renews the lease until it is released,
    /// dropped or lost.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Owned`] with the owner's node and token if a live
    /// lease exists (this node's own included); [`ClaimError::Timeout`]
    /// after the publish timeout; [`ClaimError::Redis`] for a Redis error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave a claim made in Redis that nobody
    /// renews: it expires after the lease length.
    pub async fn claim(&self, t: T) -> Result<Lease<T>, ClaimError> {
        let i = &self.inner;
        let mut inv = i.scripts.claim.key(i.names.lease(&t));
        inv.key(i.names.fence(&t))
            .arg(&i.id)
            .arg(i.config.lease.as_millis() as u64);
        let mut cmd = i.cmd.clone();
        let sent = Instant::now();
        let (won, node, token): (bool, String, u64) = match tokio::time::timeout(
            i.config.publish_timeout,
            inv.invoke_async(&mut cmd),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(ClaimError::Redis(e)),
            Err(_) => return Err(ClaimError::Timeout),
        };
        if !won {
            return Err(ClaimError::Owned { node, token });
        }
        // Relaxed: a statistic.
        i.counters.claims.fetch_add(1, Ordering::Relaxed);
        let (lost, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            lost,
            valid_until: Mutex::new(sent + i.config.lease),
            counters: Arc::clone(&i.counters),
        });
        let renewer = Renewer {
            shared: Arc::clone(&shared),
            scripts: Arc::clone(&i.scripts),
            cmd: i.cmd.clone(),
            key: i.names.lease(&t),
            token,
            config: Arc::clone(&i.config),
        };
        Ok(Lease {
            t,
            token,
            node: self.clone(),
            shared,
            renewer: tokio::spawn(renewer.run()),
        })
    }

    /// `t`'s owner now: its node and token, or `None` if no lease lives.
    ///
    /// # Errors
    ///
    /// [`RouteError::Timeout`] after the publish timeout;
    /// [`RouteError::Redis`] for a Redis error.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe (a read).
    pub async fn owner(&self, t: T) -> Result<Option<Owner>, RouteError> {
        let i = &self.inner;
        let mut cmd = i.cmd.clone();
        let q = redis::cmd("HMGET")
            .arg(i.names.lease(&t))
            .arg("n")
            .arg("k")
            .clone();
        match tokio::time::timeout(i.config.publish_timeout, q.query_async(&mut cmd)).await {
            Ok(Ok((Some(node), Some(token)))) => Ok(Some(Owner { node, token })),
            Ok(Ok((_, _))) => Ok(None),
            Ok(Err(e)) => Err(RouteError::Redis(e)),
            Err(_) => Err(RouteError::Timeout),
        }
    }
}

impl<T: ThreadKey> Lease<T> {
    /// The thread this lease owns.
    pub fn thread(&self) -> T {
        self.t
    }

    /// The fencing token: strictly greater than any earlier lease's of
    /// this thread.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether this lease can no longer act (lost, or its deadline passed).
    pub fn is_lost(&self) -> bool {
        self.shared.is_lost()
    }

    /// Resolves once this lease can no longer act: it expired unrenewed
    /// (Redis unreachable, or this process paused), or Redis refused a
    /// renewal or a fenced publish (taken over, released). It resolves at
    /// the latest when the node's own deadline for the lease passes — never
    /// after Redis's — plus scheduling delays.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn lost(&self) {
        let mut rx = self.shared.lost.subscribe();
        // The sender lives in `self.shared`: `wait_for` cannot fail here.
        let _ = rx.wait_for(|&lost| lost).await;
    }

    /// [`Node::publish`] to this lease's thread, fenced: Redis publishes it
    /// only if this lease still holds its token.
    ///
    /// # Errors
    ///
    /// [`PublishError::Fenced`] if the lease has ended (known here, or
    /// refused by Redis: nothing was published, and the lease is then
    /// lost); otherwise as [`Node::publish`].
    ///
    /// # Cancel safety
    ///
    /// As [`Node::publish`].
    pub async fn publish(&self, payload: &[u8]) -> Result<Published, PublishError> {
        let counters = &self.node.inner.counters;
        if self.shared.is_lost() {
            self.shared.lose();
            // Relaxed: a statistic.
            counters.fenced.fetch_add(1, Ordering::Relaxed);
            return Err(PublishError::Fenced);
        }
        let i: &Inner<T> = &self.node.inner;
        let lease = i.names.lease(&self.t);
        match self
            .node
            .run_publish(
                &i.scripts.fenced_publish,
                self.t,
                payload,
                Some((&lease, self.token)),
            )
            .await
        {
            Err(PublishError::Redis(e)) if e.code() == Some(FENCED) => {
                self.shared.lose();
                counters.fenced.fetch_add(1, Ordering::Relaxed);
                Err(PublishError::Fenced)
            }
            r => r,
        }
    }

    /// Gives up ownership now: the next claim of the thread succeeds at once.
    ///
    /// # Errors
    ///
    /// [`ClaimError::Lost`] if the lease had already ended (nothing to
    /// release); [`ClaimError::Timeout`] / [`ClaimError::Redis`] if Redis
    /// did not answer (the lease then expires after the lease length).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not release the lease; it is not
    /// renewed any more either way.
    pub async fn release(self) -> Result<(), ClaimError> {
        self.renewer.abort();
        let i: &Inner<T> = &self.node.inner;
        let mut inv = i.scripts.release.key(i.names.lease(&self.t));
        inv.arg(self.token);
        let mut cmd = i.cmd.clone();
        let r =
            tokio::time::timeout(i.config.publish_timeout, inv.invoke_async::<i64>(&mut cmd)).await;
        self.shared.lose();
        match r {
            Ok(Ok(1)) => Ok(()),
            Ok(Ok(_)) => Err(ClaimError::Lost),
            Ok(Err(e)) => Err(ClaimError::Redis(e)),
            Err(_) => Err(ClaimError::Timeout),
        }
    }
}

impl<T: ThreadKey> Drop for Lease<T> {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn smoke_lost_is_final_and_counted_once() {
        let (lost, _) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let now = Instant::now();
        let s = Shared {
            lost,
            valid_until: Mutex::new(now + Duration::from_secs(60)),
            counters: Arc::clone(&counters),
        };
        assert!(!s.is_lost());
        s.extend(now); // never moves the deadline back
        assert!(!s.is_lost());
        s.lose();
        s.lose();
        assert!(s.is_lost());
        assert_eq!(counters.leases_lost.load(Ordering::Relaxed), 1);
        s.extend(now + Duration::from_secs(120));
        assert!(s.is_lost(), "a lost lease stays lost");
    }

    #[test]
    fn an_expired_deadline_is_lost_without_being_told() {
        let (lost, _) = watch::channel(false);
        let s = Shared {
            lost,
            valid_until: Mutex::new(Instant::now()),
            counters: Arc::default(),
        };
        assert!(s.expired() && s.is_lost());
    }
}

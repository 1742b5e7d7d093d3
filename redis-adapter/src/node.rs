//! The host's handle: publish, await readiness, receive deliveries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use switchboard_core::Engine;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::conn::Endpoint;
use crate::counters::Counters;
use crate::delivery::Delivery;
use crate::error::{PublishError, ReadyError, StartError};
use crate::notices::Router;
use crate::random;
use crate::script::{Names, Scripts};
use crate::thread_key::ThreadKey;
use crate::worker::{self, Control, Redis};

/// One process's link to the other nodes through Redis.
///
/// A node follows its engine: it subscribes to a thread's channel while the
/// thread has a local subscriber, and hands every message published to such
/// a thread, by any node, to its [`Deliveries`]. Cloning a node clones the
/// handle; the node stops (and its [`Deliveries`] ends) when every handle
/// is dropped.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard_core::{Caps, Engine};
/// use switchboard_redis::{Config, Delivery, Node};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
/// let (node, mut deliveries) =
///     Node::start(Arc::clone(&engine), Config::new("redis://127.0.0.1:6379")).await?;
///
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(42, 1)?;
/// node.ready(42).await?; // Redis confirmed: nothing published from now on is missed
///
/// node.publish(42, b"hello").await?;
/// while let Some(d) = deliveries.recv().await {
///     if let Delivery::Message { t, payload, .. } = d {
///         for c in engine.subscribers(t).iter() {
///             println!("to {c}: {payload:?}");
///         }
///         break;
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Node<T: ThreadKey> {
    pub(crate) inner: Arc<Inner<T>>,
}

pub(crate) struct Inner<T> {
    pub(crate) id: String,
    pub(crate) config: Arc<Config>,
    pub(crate) names: Names,
    pub(crate) scripts: Arc<Scripts>,
    pub(crate) cmd: ConnectionManager,
    /// With `epoch_counter`, makes each publish's epoch candidate unique:
    /// a thread whose history is lost must get a new epoch even if the
    /// same node publishes to it first again.
    epoch_base: String,
    epoch_counter: AtomicU64,
    control: mpsc::UnboundedSender<Control<T>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) router: Arc<Router>,
}

impl<T> std::fmt::Debug for Inner<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A published message's place in its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its sequence number.
    pub seq: u64,
    /// The thread's epoch.
    pub epoch: String,
}

/// A node's counters (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Subscription connections lost or replaced.
    pub reconnects: u64,
    /// `Reset`s delivered.
    pub resets: u64,
    /// Gaps (or epoch changes) seen on pub/sub and filled from a stream.
    pub gap_fills: u64,
    /// Liveness probes not received in time.
    pub probe_failures: u64,
    /// Times the node took the engine's occupied threads from a snapshot:
    /// once at start, then after each `Lagged` from the change feed.
    pub feed_resyncs: u64,
    /// Catch-up reads that failed or timed out (each retried with fewer
    /// entries, or later; never a reason to reconnect).
    pub catchup_timeouts: u64,
    /// Leases this node won ([`Node::claim`]).
    pub claims: u64,
    /// Lease renewals Redis confirmed.
    pub renewals: u64,
    /// Leases of this node that were lost (expired unrenewed, taken over,
    /// refused, or released).
    pub leases_lost: u64,
    /// Owner-only writes refused because their lease had ended: fenced
    /// publishes (by Redis, or here when the lease was known lost) and
    /// renewals refused by Redis.
    pub fenced: u64,
    /// Commands and requests this node queued for an owner
    /// ([`Node::send`], [`Node::request`]).
    pub routed: u64,
    /// Of those, the ones that failed after being queued: withdrawn
    /// untaken at their timeout, or taken by a lease that ended before
    /// answering.
    pub routed_lost: u64,
    /// Commands and requests a [`Cluster`](crate::Cluster) on this node
    /// delivered in-process to this node's own lease (not counted in
    /// `routed`).
    pub routed_local: u64,
}

/// The deliveries of one node, in per-thread order (see [`Delivery`]).
///
/// Drain it: a host that stops reading stops the node reading from Redis
/// once [`Config::delivery_buffer`] deliveries wait; Redis then drops the
/// node's subscription connection and the node catches up from the streams
/// when it reads again.
#[derive(Debug)]
pub struct Deliveries<T> {
    rx: mpsc::Receiver<Delivery<T>>,
}

impl<T> Deliveries<T> {
    /// The next delivery; `None` once the node has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a delivery is taken only when the future resolves.
    pub async fn recv(&mut self) -> Option<Delivery<T>> {
        self.rx.recv().await
    }

    /// The next delivery if one is waiting.
    pub fn try_recv(&mut self) -> Option<Delivery<T>> {
        self.rx.try_recv().ok()
    }
}

/// The same deliveries as a `Stream` (ends when the node stops).
///
/// # Cancel safety
///
/// Cancel-safe, as [`Deliveries::recv`].
impl<T> futures::Stream for Deliveries<T> {
    type Item = Delivery<T>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Delivery<T>>> {
        self.rx.poll_recv(cx)
    }
}

impl<T: ThreadKey> Node<T> {
    /// Connects to Redis and starts following `engine`'s occupied threads.
    ///
    /// # Panics
    ///
    /// If it is not run on a tokio runtime (it spawns the node's tasks).
    ///
    /// # Errors
    ///
    /// [`StartError::Config`] for an unusable config or URL;
    /// [`StartError::Redis`] if Redis cannot be reached within the connect
    /// timeout. Once started, a node never fails: it reconnects.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it resolves starts nothing.
    pub async fn start<C, S, M, D>(
        engine: Arc<Engine<T, C, S, M, D>>,
        config: Config,
    ) -> Result<(Node<T>, Deliveries<T>), StartError>
    where
        C: switchboard_core::Key,
        S: Send + Sync + 'static,
        M: Send + 'static,
        D: Send + Sync + 'static,
    {
        config.validate().map_err(StartError::Config)?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StartError::Config(format!("bad redis url: {e}")))?;
        let sub = Endpoint::new(client.get_connection_info()).map_err(StartError::Config)?;
        let cm_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.connect_timeout)
            .set_response_timeout(config.publish_timeout)
            .set_number_of_retries(1)
            .set_max_delay(config.backoff_max.as_millis() as u64);
        let cmd = ConnectionManager::new_with_config(client.clone(), cm_config)
            .await
            .map_err(StartError::Redis)?;
        // Catch-up reads on a connection of their own: a large read neither
        // waits behind publishes nor makes them wait, and has its own
        // deadline.
        let reads_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.connect_timeout)
            .set_response_timeout(config.catchup_timeout)
            .set_number_of_retries(1)
            .set_max_delay(config.backoff_max.as_millis() as u64);
        let reads = ConnectionManager::new_with_config(client, reads_config)
            .await
            .map_err(StartError::Redis)?;

        let counters = Arc::new(Counters::default());
        let id = config.node_id.clone().unwrap_or_else(random::hex);
        let names = Names::new(&config.prefix);
        let config = Arc::new(config);
        let scripts = Arc::new(Scripts::new());
        let router = Arc::new(Router::default());
        let redis = Redis {
            sub,
            cmd: cmd.clone(),
            reads,
        };
        let (control, rx) = worker::spawn(&engine, &config, &counters, &names, &id, redis, &router);
        let inner = Inner {
            id,
            config,
            names,
            scripts,
            cmd,
            epoch_base: random::hex(),
            epoch_counter: AtomicU64::new(0),
            control,
            counters,
            router,
        };
        Ok((
            Node {
                inner: Arc::new(inner),
            },
            Deliveries { rx },
        ))
    }

    /// This node's name.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The node's counters.
    pub fn stats(&self) -> NodeStats {
        let c = &self.inner.counters;
        // Relaxed: independent statistics.
        NodeStats {
            reconnects: c.reconnects.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            gap_fills: c.gap_fills.load(Ordering::Relaxed),
            probe_failures: c.probe_failures.load(Ordering::Relaxed),
            feed_resyncs: c.feed_resyncs.load(Ordering::Relaxed),
            catchup_timeouts: c.catchup_timeouts.load(Ordering::Relaxed),
            claims: c.claims.load(Ordering::Relaxed),
            renewals: c.renewals.load(Ordering::Relaxed),
            leases_lost: c.leases_lost.load(Ordering::Relaxed),
            fenced: c.fenced.load(Ordering::Relaxed),
            routed: c.routed.load(Ordering::Relaxed),
            routed_lost: c.routed_lost.load(Ordering::Relaxed),
            routed_local: c.routed_local.load(Ordering::Relaxed),
        }
    }

    /// Publishes `payload` to thread `t` on every node that follows it,
    /// this one included: one Lua script numbers it, appends it to the
    /// thread's capped stream and publishes it.
    ///
    /// # Errors
    ///
    /// [`PublishError::Timeout`] if Redis does not answer within the
    /// publish timeout (down, paused, overloaded); [`PublishError::Redis`]
    /// for a Redis or connection error. An error never means "published":
    /// it means "not known to be published" (see [`PublishError`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not publish the message.
    pub async fn publish(&self, t: T, payload: &[u8]) -> Result<Published, PublishError> {
        self.run_publish(&self.inner.scripts.publish, t, payload, None)
            .await
    }

    /// Runs the publish script, or the fenced one with `fence` = (lease
    /// key, token).
    pub(crate) async fn run_publish(
        &self,
        script: &redis::Script,
        t: T,
        payload: &[u8],
        fence: Option<(&str, u64)>,
    ) -> Result<Published, PublishError> {
        let i = &self.inner;
        let ttl = i.config.history_ttl.map_or(0, |d| d.as_secs().max(1));
        // Relaxed: only uniqueness matters.
        let n = i.epoch_counter.fetch_add(1, Ordering::Relaxed);
        let candidate = format!("{}{n:x}", i.epoch_base);
        let mut inv = script.key(i.names.meta(&t));
        inv.key(i.names.stream(&t))
            .arg(i.names.channel(&t))
            .arg(payload)
            .arg(candidate)
            .arg(i.config.retention)
            .arg(ttl);
        if let Some((lease, token)) = fence {
            inv.key(lease).arg(token);
        }
        let mut cmd = i.cmd.clone();
        match tokio::time::timeout(i.config.publish_timeout, inv.invoke_async(&mut cmd)).await {
            Ok(Ok((seq, epoch))) => Ok(Published { seq, epoch }),
            Ok(Err(e)) => Err(PublishError::Redis(e)),
            Err(_) => Err(PublishError::Timeout),
        }
    }

    /// Resolves once this node is subscribed to `t` and synced: every
    /// message published to `t` after this resolves will be delivered (or
    /// reported by a `Reset`). Call it after a local subscribe to `t`.
    ///
    /// # Errors
    ///
    /// [`ReadyError::NotOccupied`] if the engine shows no local subscriber
    /// of `t` when the node looks, or `t` loses it before the subscription
    /// is confirmed; [`ReadyError::Closed`] if the node has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it changes nothing but this wait.
    pub async fn ready(&self, t: T) -> Result<(), ReadyError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .control
            .send(Control::Ready(t, tx))
            .map_err(|_| ReadyError::Closed)?;
        rx.await.unwrap_or(Err(ReadyError::Closed))
    }
}

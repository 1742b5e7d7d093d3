//! Cluster mode (`--redis URL --node NAME`): several gateways behind a load
//! balancer, one room cluster-wide. What each node keeps beside its hub:
//!
//! * a room [`Node`] following the engine's occupied rooms (a member here:
//!   the node subscribes to the room in Redis) and a [`Cluster`] over it,
//!   the ownership service of the hub's `Supervisor` (one node's claim of
//!   a room wins: its listener is the room's **owner**, `owner.rs`);
//! * the delivery loop ([`deliver`]): every message any owner published to
//!   a room this node follows reaches its local members, per room in
//!   Redis's `seq` order, exactly once (the `Node`'s guarantee);
//! * the watcher ([`watch`]), every renew interval: a room with members
//!   here and no listener tries to become its owner (a claim, refused
//!   while another node's lease lives), and a room with neither members
//!   nor listener is unloaded here. So a room whose owner died, stopped or
//!   unloaded (its own members gone) gets an owner within the lease plus
//!   one renew interval while any node has a member;
//! * a control node ([`Control`]): session leases (`sessions.rs`), this
//!   node's id prefix, and the stats every node publishes each 500 ms.
//!
//! # Ids (all below 2^53, exact as JSON numbers everywhere)
//!
//! | what | id |
//! |---|---|
//! | room `R` (thread) | `1 + fnv64(R) mod (2^52 - 1)` on every node |
//! | `hello` connection | `part << 32 \| n`, `part` = `fnv64(NAME) mod 2^20`, unique among live nodes (a lease on it, held for the node's life) |
//! | session `S` | `2^52 \| fnv64(S) mod 2^52`, the same on every node |
//!
//! Two room names (or sessions) whose hashes collide would share a room
//! (an id): at 100,000 rooms the odds are about 10^-6.

use super::config::Config;
use super::engine::{ConnId, Engine, Listeners, RoomId};
use super::protocol::{self, Refusal};
use super::sessions::Sessions;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use switchboard_async::SupervisedTask;
use switchboard_redis::{
    Cluster, Config as RedisConfig, Deliveries, Delivery, Lease, Node, RouteError,
};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// The thread of the control node every node publishes its stats to.
const STATS: u64 = 1;
/// How often each node publishes its stats; a node not heard from for
/// three periods is left out of the cluster's sums.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// Says and asks that find no owner are retried (each first trying to
/// become the owner) at most this many times.
const NO_OWNER_TRIES: u32 = 20;

/// The FNV-1a hash (64 bits): stable across processes and builds.
pub(crate) fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Room `name`'s id, the same on every node.
pub(crate) fn room_id(name: &str) -> RoomId {
    1 + fnv64(name) % ((1 << 52) - 1)
}

/// Session `s`'s connection id, the same on every node.
pub(crate) fn session_id(s: &str) -> ConnId {
    (1 << 52) | (fnv64(s) & ((1 << 52) - 1))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last Redis `seq` this node delivered, per room.
#[derive(Debug, Default)]
pub(crate) struct Delivered(Mutex<HashMap<RoomId, u64>>);

impl Delivered {
    pub(crate) fn get(&self, room: RoomId) -> u64 {
        lock(&self.0).get(&room).copied().unwrap_or(0)
    }
}

/// One node's counts, as it last published them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) connections: usize,
    pub(crate) rooms_loaded: usize,
    pub(crate) listeners_running: usize,
}

/// The control node: sessions, the id prefix's lease, the stats.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) node: Node<u64>,
    /// Holds this node's id prefix for its life.
    part_lease: Mutex<Option<Lease<u64>>>,
    peers: Mutex<HashMap<String, (Counts, Instant)>>,
}

/// What a node keeps beside its hub in cluster mode.
#[derive(Debug)]
pub(crate) struct ClusterPart {
    pub(crate) name: String,
    pub(crate) node: Node<u64>,
    pub(crate) cluster: Cluster<u64>,
    pub(crate) delivered: Delivered,
    pub(crate) control: Control,
    pub(crate) sessions: Sessions,
    /// Rooms joined here since they were last unloaded here.
    rooms: Mutex<HashSet<RoomId>>,
    /// Supervised room tasks spawned and not yet ended (their leases are
    /// released when they end).
    tasks: AtomicUsize,
    tasks_changed: watch::Sender<()>,
    route_timeout: Duration,
    renew: Duration,
}

fn redis_config(config: &Config, url: &str, prefix: &str) -> RedisConfig {
    let lease = config.lease;
    RedisConfig::new(url)
        .prefix(prefix)
        .node_id(config.node.clone())
        .lease(lease, lease / 4)
        .route_timeout(config.route_timeout)
}

impl ClusterPart {
    /// Connects this node's room and control nodes to Redis and claims
    /// its id prefix. Returns the part, the first `hello` id, and the room
    /// node's deliveries (for [`deliver`]) and the control node's (for
    /// [`follow_stats`]).
    ///
    /// # Errors
    ///
    /// A message if Redis cannot be reached or another live node holds the
    /// same id prefix (another node of the same name, or a hash clash).
    pub(crate) async fn start(
        engine: &Arc<Engine>,
        config: &Config,
        url: &str,
    ) -> Result<(Arc<ClusterPart>, u64, Deliveries<u64>, Deliveries<u64>), String> {
        let name = config.node.clone();
        let (node, deliveries) = Node::start(Arc::clone(engine), redis_config(config, url, "wsgw"))
            .await
            .map_err(|e| format!("redis: {e}"))?;
        // The control engine: one pseudo connection subscribed to the
        // stats thread, so that the control node follows it.
        let control_engine: Arc<switchboard_async::Engine<u64, u64>> =
            Arc::new(switchboard_async::Engine::new());
        control_engine.connect(0, switchboard_async::Caps::NONE);
        let _ = control_engine.subscribe(STATS, 0);
        let (control, control_deliveries) =
            Node::start(control_engine, redis_config(config, url, "wsgw.c"))
                .await
                .map_err(|e| format!("redis: {e}"))?;
        let _ = control.ready(STATS).await;
        let part = fnv64(&name) % (1 << 20);
        let part_lease = control
            .claim((1 << 53) + part)
            .await
            .map_err(|e| format!("node id prefix {part} of {name:?}: {e}"))?;
        let (tasks_changed, _) = watch::channel(());
        let this = ClusterPart {
            cluster: Cluster::new(&node),
            node,
            delivered: Delivered::default(),
            sessions: Sessions::new(control.clone(), config.lease, config.route_timeout),
            control: Control {
                node: control,
                part_lease: Mutex::new(Some(part_lease)),
                peers: Mutex::default(),
            },
            name,
            rooms: Mutex::default(),
            tasks: AtomicUsize::new(0),
            tasks_changed,
            route_timeout: config.route_timeout,
            renew: config.lease / 4,
        };
        Ok((
            Arc::new(this),
            (part << 32) | 1,
            deliveries,
            control_deliveries,
        ))
    }

    /// Notes that `room` was joined here (the watcher looks after it).
    pub(crate) fn joined(&self, room: RoomId) {
        lock(&self.rooms).insert(room);
    }

    /// Spawns a supervised room task, counted until it ends.
    pub(crate) fn spawn(self: &Arc<Self>, task: SupervisedTask) {
        // Relaxed: the count is read with the watch, which orders it.
        self.tasks.fetch_add(1, Ordering::Relaxed);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _ = task.await;
            this.tasks.fetch_sub(1, Ordering::Relaxed);
            this.tasks_changed.send_replace(());
        });
    }

    /// Waits (up to `grace`) until every supervised room task has ended,
    /// its lease released.
    pub(crate) async fn tasks_ended(&self, grace: Duration) {
        let mut changed = self.tasks_changed.subscribe();
        let wait = async {
            while self.tasks.load(Ordering::Relaxed) > 0 {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
    }

    /// Gives this node's id prefix back (graceful shutdown).
    pub(crate) async fn release_part(&self) {
        let lease = lock(&self.control.part_lease).take();
        if let Some(lease) = lease {
            let _ = lease.release().await;
        }
    }

    /// Routes `body` to `room`'s owner (in-process if it is this node) and
    /// returns its answer. A room without owner is claimed here first if
    /// it has a member here, then asked again (bounded).
    async fn route(
        self: &Arc<Self>,
        engine: &Engine,
        listeners: &Listeners,
        room: RoomId,
        body: &Value,
        none: Refusal,
    ) -> Result<Value, Refusal> {
        let payload = body.to_string();
        for attempt in 0..NO_OWNER_TRIES {
            if engine.is_shut_down() {
                return Err(Refusal::ShuttingDown);
            }
            match self
                .cluster
                .request(room, payload.as_bytes(), self.route_timeout)
                .await
            {
                Ok(answer) => {
                    return serde_json::from_slice(&answer).map_err(|_| Refusal::NoListener);
                }
                Err(RouteError::NoOwner) => {
                    // Become the owner if this node has a member; an ask
                    // from a node without members finds the room unloaded.
                    let Some(entry) = engine.get_thread(room) else {
                        return Err(none);
                    };
                    if !engine.has_subscribers(room) {
                        return Err(none);
                    }
                    if let Some(task) = listeners.start(&entry) {
                        self.spawn(task);
                    }
                    let pause = Duration::from_millis(5 << attempt.min(4));
                    tokio::time::sleep(pause).await;
                }
                // Timeout or Lost: the owner may have acted (a say may be
                // published): never retried, refused.
                Err(_) => return Err(Refusal::NoListener),
            }
        }
        Err(none)
    }

    /// A say by member `from`, served by the room's owner: its Redis `seq`.
    ///
    /// # Errors
    ///
    /// `no_listener` when the owner did not answer (failover: the say may
    /// or may not have been published), `shutting_down`.
    pub(crate) async fn say(
        self: &Arc<Self>,
        engine: &Engine,
        listeners: &Listeners,
        (room, name): (RoomId, &str),
        from: ConnId,
        mid: Value,
        text: String,
    ) -> Result<u64, Refusal> {
        let body = json!({"k": "say", "room": name, "from": from, "mid": mid, "text": text});
        let answer = self
            .route(engine, listeners, room, &body, Refusal::NoListener)
            .await?;
        answer["seq"].as_u64().ok_or(Refusal::NoListener)
    }

    /// An ask, answered by the room's owner.
    ///
    /// # Errors
    ///
    /// `not_loaded` (no owner and no member here), `no_listener`,
    /// `shutting_down`.
    pub(crate) async fn ask(
        self: &Arc<Self>,
        engine: &Engine,
        listeners: &Listeners,
        (room, name): (RoomId, &str),
    ) -> Result<(u64, String), Refusal> {
        let body = json!({"k": "ask", "room": name});
        let answer = self
            .route(engine, listeners, room, &body, Refusal::NotLoaded)
            .await?;
        let count = answer["count"].as_u64().ok_or(Refusal::NoListener)?;
        Ok((
            count,
            answer["node"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// The cluster's counts as this node knows them: the sum over nodes
    /// heard from in the last three stats periods, and how many.
    pub(crate) fn cluster_counts(&self) -> (Counts, usize) {
        let peers = lock(&self.control.peers);
        let live = peers
            .values()
            .filter(|(_, at)| at.elapsed() < 3 * STATS_EVERY);
        let mut sum = Counts::default();
        let mut nodes = 0;
        for (c, _) in live {
            sum.connections += c.connections;
            sum.rooms_loaded += c.rooms_loaded;
            sum.listeners_running += c.listeners_running;
            nodes += 1;
        }
        (sum, nodes)
    }
}

/// The delivery loop: each message published to a room this node follows
/// becomes one `msg` frame (its `seq` is the Redis one) pushed to every
/// local member, in order. Ends with the node.
pub(crate) async fn deliver(engine: Weak<Engine>, part: Arc<ClusterPart>, mut d: Deliveries<u64>) {
    while let Some(delivery) = d.recv().await {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        match delivery {
            Delivery::Message { t, seq, payload } => {
                lock(&part.delivered.0).insert(t, seq);
                let Ok(m) = serde_json::from_slice::<Value>(&payload) else {
                    continue;
                };
                let frame = protocol::msg(
                    m["room"].as_str().unwrap_or_default(),
                    seq,
                    m["inc"].as_u64().unwrap_or(0),
                    m["from"].as_u64().unwrap_or(0),
                    &m["mid"],
                    m["text"].as_str().unwrap_or_default(),
                );
                let frame = Message::text(frame);
                engine.for_each_subscriber_data(t, |_, outbox| {
                    outbox.push(frame.clone());
                });
            }
            // History lost (Redis restarted empty, or trimmed): members
            // missed messages they cannot get back; say so in the log.
            other => eprintln!("ws_gateway: {other:?}"),
        }
    }
}

/// The watcher, every renew interval until the engine shuts down: claims
/// rooms with members here and no owner here (refused while another
/// node's lease lives), unloads rooms with neither members nor listener.
pub(crate) async fn watch(engine: Weak<Engine>, listeners: Listeners, part: Arc<ClusterPart>) {
    loop {
        tokio::time::sleep(part.renew).await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if engine.is_shut_down() {
            return;
        }
        let rooms: Vec<RoomId> = lock(&part.rooms).iter().copied().collect();
        for room in rooms {
            let Some(entry) = engine.get_thread(room) else {
                lock(&part.rooms).remove(&room);
                continue;
            };
            if entry.has_listener() {
                continue;
            }
            if engine.has_subscribers(room) {
                if let Some(task) = listeners.start(&entry) {
                    part.spawn(task);
                }
            } else if engine.remove_entry_if_idle(&entry) {
                lock(&part.rooms).remove(&room);
            }
        }
    }
}

/// Publishes this node's counts every [`STATS_EVERY`] (`counts` reads
/// them) until the engine is gone.
pub(crate) async fn publish_stats(
    engine: Weak<Engine>,
    part: Arc<ClusterPart>,
    counts: impl Fn(&Engine) -> Counts,
) {
    loop {
        let Some(c) = engine.upgrade().map(|e| counts(&e)) else {
            return;
        };
        let body = json!({
            "node": part.name, "connections": c.connections,
            "rooms_loaded": c.rooms_loaded, "listeners_running": c.listeners_running,
        });
        let _ = part
            .control
            .node
            .publish(STATS, body.to_string().as_bytes())
            .await;
        tokio::time::sleep(STATS_EVERY).await;
    }
}

/// Reads every node's stats from the control node.
pub(crate) async fn follow_stats(part: Weak<ClusterPart>, mut d: Deliveries<u64>) {
    while let Some(delivery) = d.recv().await {
        let Some(part) = part.upgrade() else {
            return;
        };
        let Delivery::Message { payload, .. } = delivery else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<Value>(&payload) else {
            continue;
        };
        let n = |k: &str| m[k].as_u64().unwrap_or(0) as usize;
        let counts = Counts {
            connections: n("connections"),
            rooms_loaded: n("rooms_loaded"),
            listeners_running: n("listeners_running"),
        };
        let name = m["node"].as_str().unwrap_or_default().to_owned();
        lock(&part.control.peers).insert(name, (counts, Instant::now()));
    }
}

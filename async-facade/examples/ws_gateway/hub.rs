//! The gateway's state: every switchboard call the gateway makes is in this
//! file (and the room listener in `room.rs`), behind a small API the
//! websocket side uses: connect, resume, disconnect, join, leave, say, ask,
//! stats. The engine's types are in `engine.rs`.
//!
//! Rooms are strings on the wire and `u64` thread ids in the engine, mapped
//! by a [`Rooms`] registry. Connections are `u64` ids; a websocket holds one
//! [`Conn`], an *incarnation* of an id (`connect_with`), and names it in
//! every call (`subscribe_if`, `disconnect_if`), so a websocket whose id was
//! taken over by a `resume` elsewhere can never touch the new holder's
//! rooms. Each connection's outbox is its engine data (`D`): a fan-out
//! (`for_each_subscriber_data`) reaches every member's outbox with no
//! side map and no lock (the engine finds each member's data in the
//! version it reads). A [`Supervisor`] runs one listener task per loaded
//! room and unloads idle rooms.

use super::cluster::{self, ClusterPart, Counts};
use super::config::Config;
use super::engine::{ConnId, Engine, Listeners, Room, RoomCmd, RoomId};
use super::outbox::{Close, Outbox};
use super::owner;
use super::protocol::Refusal;
use super::room;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use switchboard_async::prelude::*;
use switchboard_async::{Caps, QueueConfig, Reply, Snapshot, Stats, Supervisor};

pub(crate) use super::engine::Conn;

/// Room names ↔ thread ids. Invariants: a name gets an id the first time
/// it is joined and keeps it for the life of the server (so ids are stable
/// while a room exists, and after); no two names share an id;
/// `loads[id - 1]` counts the loads of room `id`. The registry keeps every
/// name it has seen, up to `max_rooms`; beyond that a join of a new name
/// is refused (`too_many`).
///
/// In cluster mode a room's id is a hash of its name (the same on every
/// node, `cluster::room_id`), and `loads` is not used (the owner numbers
/// loads, `owner.rs`).
#[derive(Debug, Default)]
struct Rooms {
    ids: HashMap<String, RoomId>,
    loads: HashMap<RoomId, u64>,
}

/// The hub: the engine and what the gateway keeps beside it.
#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) engine: Arc<Engine>,
    /// Starts each loaded room's listener task (`room::serve`), once.
    listeners: Listeners,
    config: Config,
    /// Cluster mode (`--redis`): the Redis side (`cluster.rs`).
    cluster: Option<Arc<ClusterPart>>,
    rooms: RwLock<Rooms>,
    /// Session string → the connection id it names, for the life of the
    /// server (up to `max_sessions`). Held across a takeover, so two
    /// resumes of one session are serialised.
    sessions: Mutex<HashMap<String, ConnId>>,
    next_id: AtomicU64,
    slow_closed: AtomicU64,
}

/// Locks, ignoring poison: every critical section here leaves its data
/// consistent before anything in it can panic.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub(crate) fn new(config: Config) -> Arc<Hub> {
        let engine = Arc::new(Engine::new());
        let weak = Arc::downgrade(&engine);
        let listeners = Supervisor::new(&engine, move |commands, entry| {
            room::serve(weak.clone(), commands, entry)
        })
        .queue(QueueConfig::bounded(config.room_queue))
        .unload_when_idle(config.linger, tokio::time::sleep);
        Arc::new(Hub {
            engine,
            listeners,
            config,
            cluster: None,
            rooms: RwLock::default(),
            sessions: Mutex::default(),
            next_id: AtomicU64::new(1),
            slow_closed: AtomicU64::new(0),
        })
    }

    /// A hub in cluster mode over the Redis at `url`: the room listeners
    /// run on each room's owner only (`owner.rs`), deliveries come from
    /// Redis, sessions are held through leases (`sessions.rs`).
    ///
    /// # Errors
    ///
    /// A message when Redis cannot be reached or the node's id prefix is
    /// held by another live node.
    pub(crate) async fn new_cluster(config: Config, url: &str) -> Result<Arc<Hub>, String> {
        let engine = Arc::new(Engine::new());
        let (part, first_id, deliveries, stats) = ClusterPart::start(&engine, &config, url).await?;
        let weak = Arc::downgrade(&engine);
        let owner_part = Arc::clone(&part);
        let listeners = Supervisor::new(&engine, move |commands, entry| {
            owner::serve(weak.clone(), Arc::clone(&owner_part), commands, entry)
        })
        .queue(QueueConfig::bounded(config.room_queue))
        .unload_when_idle(config.linger, tokio::time::sleep)
        .cluster(part.cluster.clone(), RoomCmd::Routed);
        let weak = Arc::downgrade(&engine);
        tokio::spawn(cluster::deliver(
            weak.clone(),
            Arc::clone(&part),
            deliveries,
        ));
        tokio::spawn(cluster::follow_stats(Arc::downgrade(&part), stats));
        let counts = |e: &Engine| {
            let s = e.stats();
            Counts {
                connections: s.connections,
                rooms_loaded: s.threads,
                listeners_running: s.live_listener_handles,
            }
        };
        tokio::spawn(cluster::publish_stats(
            weak.clone(),
            Arc::clone(&part),
            counts,
        ));
        tokio::spawn(cluster::watch(weak, listeners.clone(), Arc::clone(&part)));
        Ok(Arc::new(Hub {
            engine,
            listeners,
            config,
            cluster: Some(part),
            rooms: RwLock::default(),
            sessions: Mutex::default(),
            next_id: AtomicU64::new(first_id),
            slow_closed: AtomicU64::new(0),
        }))
    }

    /// Cluster mode's Redis side, if this hub is a cluster node.
    pub(crate) fn cluster(&self) -> Option<&Arc<ClusterPart>> {
        self.cluster.as_ref()
    }

    /// The node's name in cluster mode.
    pub(crate) fn node_name(&self) -> Option<&str> {
        self.cluster.as_deref().map(|p| p.name.as_str())
    }

    /// How a connection is closed at shutdown: "going away" (1001), or in
    /// cluster mode "service restart" (1012: reconnect to another node).
    pub(crate) fn shutdown_close(&self) -> Close {
        if self.cluster.is_some() {
            Close::Restart
        } else {
            Close::ShuttingDown
        }
    }

    /// Cluster mode: resolves once this node follows room `name` in Redis
    /// (every say published from now on reaches its members here). A
    /// no-op otherwise, or if nobody here is in the room any more.
    pub(crate) async fn ready(&self, name: &str) {
        if let (Some(part), Some(room)) = (&self.cluster, self.room_id(name)) {
            let _ = part.node.ready(room).await;
        }
    }

    /// [`resume`](Self::resume), across nodes in cluster mode
    /// (`sessions.rs`).
    ///
    /// # Errors
    ///
    /// As `resume`; in cluster mode `unavailable` or `shutting_down`.
    pub(crate) async fn take_session(
        &self,
        session: &str,
        current: Conn,
        outbox: &Outbox,
    ) -> Result<Conn, Refusal> {
        let Some(part) = &self.cluster else {
            return self.resume(session, current, outbox);
        };
        let id = cluster::session_id(session);
        let conn = part.sessions.take(&self.engine, id, outbox).await?;
        self.disconnect(current);
        Ok(conn)
    }

    /// Cluster mode: `(node, cluster)` for the `stats` frame: this node's
    /// name, and the counts of every node heard from recently (each
    /// node's own, as it published them last, at most 500 ms old).
    pub(crate) fn cluster_stats(&self) -> Option<(String, Value)> {
        let part = self.cluster.as_ref()?;
        let (sum, nodes) = part.cluster_counts();
        let cluster = json!({
            "nodes": nodes,
            "connections": sum.connections,
            "rooms_loaded": sum.rooms_loaded,
            "listeners_running": sum.listeners_running,
            "as_known_to": part.name,
        });
        Some((part.name.clone(), cluster))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// A new connection with a fresh id, in its first incarnation.
    pub(crate) fn connect(&self, outbox: Outbox) -> Conn {
        // Relaxed: only uniqueness matters, which the RMW gives.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let inc = self.engine.connect_with(id, Caps::NONE, outbox);
        Conn { id, inc }
    }

    /// `id` becomes live in a new incarnation with `outbox`; a live
    /// incarnation of `id` ends first (its rooms are left). Returns the
    /// new incarnation and the ended one's outbox.
    fn connect_as(&self, id: ConnId, outbox: Outbox) -> (Conn, Option<Outbox>) {
        // Called with the session lock held: the outbox read is the one
        // replaced.
        let old = self.engine.data(id);
        let inc = self.engine.connect_with(id, Caps::NONE, outbox);
        (Conn { id, inc }, old)
    }

    /// Ends `conn` if it is still live: its rooms are left. A stale
    /// incarnation changes nothing. Returns whether it was live.
    pub(crate) fn disconnect(&self, conn: Conn) -> bool {
        if let Some(part) = &self.cluster {
            part.sessions.ended(conn);
        }
        self.engine.disconnect_if(conn.id, conn.inc).is_some()
    }

    /// Makes the websocket now acting as `current` (with `outbox`) act as
    /// `session`'s connection id, in a new incarnation with no rooms: a
    /// new session gets a fresh id; a known one takes its id over, and
    /// the websocket that held it is closed. `current` ends.
    ///
    /// # Errors
    ///
    /// `too_many` when the session is new and the server keeps as many as
    /// it may.
    pub(crate) fn resume(
        &self,
        session: &str,
        current: Conn,
        outbox: &Outbox,
    ) -> Result<Conn, Refusal> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let id = match sessions.get(session) {
            Some(&id) => id,
            None if sessions.len() >= self.config.max_sessions => return Err(Refusal::TooMany),
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                sessions.insert(session.to_owned(), id);
                id
            }
        };
        let (conn, old) = self.connect_as(id, outbox.clone());
        drop(sessions);
        if let Some(old) = old.filter(|old| !old.same(outbox)) {
            old.close(Close::Replaced);
        }
        self.disconnect(current);
        Ok(conn)
    }

    /// Joins `conn` to room `name`, loading the room and starting its
    /// listener if needed. Joining twice is harmless.
    ///
    /// # Errors
    ///
    /// `shutting_down`, `too_many` (a new name beyond `max_rooms`), or
    /// `not_connected` (a stale incarnation).
    pub(crate) fn join(&self, conn: Conn, name: &str) -> Result<(), Refusal> {
        if self.engine.is_shut_down() {
            return Err(Refusal::ShuttingDown);
        }
        let room = self.room_id_or_insert(name)?;
        // `subscribe_if` with the room's state: in one batch, so that the
        // incarnation check and the subscribe are one write, and a join
        // that creates the entry (a new load) gives it its number and name.
        let entry = self.engine.batch(|b| {
            if b.incarnation(conn.id) != Some(conn.inc) {
                return Err(Refusal::NotConnected);
            }
            b.subscribe_with(room, conn.id, || self.load(room, name))
                .map_err(|_| Refusal::NotConnected)
        })?;
        // The supervisor's get-or-start: of racing joins, one starts it
        // (in cluster mode, it claims the room: refused while another
        // node owns it).
        if let Some(task) = self.listeners.start(&entry) {
            match &self.cluster {
                Some(part) => part.spawn(task),
                None => drop(tokio::spawn(task)),
            }
        }
        if let Some(part) = &self.cluster {
            part.joined(room);
        }
        Ok(())
    }

    /// The state of a new load of room `room`, numbered in the registry.
    /// Runs under the engine's writer lock (`join`'s batch), then takes the
    /// registry's: nothing takes them in the other order.
    fn load(&self, room: RoomId, name: &str) -> Room {
        let mut rooms = write(&self.rooms);
        let loads = rooms.loads.entry(room).or_default();
        *loads += 1;
        Room {
            name: name.into(),
            inc: *loads,
            seq: 0,
        }
    }

    /// Leaves room `name`; returns whether `conn` was a member.
    ///
    /// # Errors
    ///
    /// `not_connected` for a stale incarnation (nothing changes).
    pub(crate) fn leave(&self, conn: Conn, name: &str) -> Result<bool, Refusal> {
        // `unsubscribe_if`: a stale incarnation's late leave never touches
        // the incarnation that took its id over.
        if let Some(room) = self.room_id(name) {
            if self.engine.unsubscribe_if(room, conn.id, conn.inc) {
                return Ok(true);
            }
        }
        if self.engine.incarnation(conn.id) != Some(conn.inc) {
            return Err(Refusal::NotConnected);
        }
        Ok(false)
    }

    /// Says `text` in room `name` on behalf of member `conn`: the room's
    /// listener fans it out to every member, then this returns its `seq`.
    ///
    /// # Errors
    ///
    /// `too_long`, `not_member`, or `no_listener`/`shutting_down` if the
    /// room's listener went away before fanning it out.
    pub(crate) async fn say(
        &self,
        conn: Conn,
        name: &str,
        mid: Value,
        text: String,
    ) -> Result<u64, Refusal> {
        if text.len() > self.config.max_text {
            return Err(Refusal::TooLong);
        }
        let room = self.room_id(name).ok_or(Refusal::NotMember)?;
        let live = self.engine.incarnation(conn.id) == Some(conn.inc);
        if !live || !self.engine.is_subscribed(room, conn.id) {
            return Err(Refusal::NotMember);
        }
        if let Some(part) = &self.cluster {
            let room = (room, name);
            return part
                .say(&self.engine, &self.listeners, room, conn.id, mid, text)
                .await;
        }
        let entry = self.engine.get_thread(room).ok_or(Refusal::NotMember)?;
        let (reply, seq) = Reply::pair();
        let from = conn.id;
        let say = RoomCmd::Say {
            from,
            mid,
            text,
            reply,
        };
        entry.send_async(say).await.map_err(|_| self.gone())?;
        seq.into_async().await.map_err(|_| self.gone())
    }

    /// Asks room `name`'s listener how many messages this load has seen.
    ///
    /// # Errors
    ///
    /// `not_loaded` if the room has no listener, `no_listener` or
    /// `shutting_down` if it went away before answering.
    pub(crate) async fn ask(&self, name: &str) -> Result<(u64, Option<String>), Refusal> {
        if let Some(part) = &self.cluster {
            let room = (cluster::room_id(name), name);
            let (count, owner) = part.ask(&self.engine, &self.listeners, room).await?;
            return Ok((count, Some(owner)));
        }
        let entry = self
            .room_id(name)
            .and_then(|room| self.engine.get_thread(room))
            .ok_or(Refusal::NotLoaded)?;
        let (reply, count) = Reply::pair();
        if entry.send_async(RoomCmd::Ask(reply)).await.is_err() {
            return Err(if self.engine.is_shut_down() {
                Refusal::ShuttingDown
            } else {
                Refusal::NotLoaded
            });
        }
        let count = count.into_async().await.map_err(|_| self.gone())?;
        Ok((count, None))
    }

    fn gone(&self) -> Refusal {
        if self.engine.is_shut_down() {
            Refusal::ShuttingDown
        } else {
            Refusal::NoListener
        }
    }

    pub(crate) fn count_slow_consumer(&self) {
        self.slow_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts the `stats` frame reports.
    pub(crate) fn stats(&self) -> HubStats {
        HubStats {
            engine: self.engine.stats(),
            rooms_known: read(&self.rooms).ids.len(),
            sessions: match &self.cluster {
                Some(part) => part.sessions.len(),
                None => self
                    .sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            },
            slow_consumers_closed: self.slow_closed.load(Ordering::Relaxed),
        }
    }

    /// The whole graph at one instant.
    pub(crate) fn snapshot(&self) -> Snapshot<RoomId, ConnId, Outbox> {
        self.engine.snapshot()
    }

    fn room_id(&self, name: &str) -> Option<RoomId> {
        read(&self.rooms).ids.get(name).copied()
    }

    fn room_id_or_insert(&self, name: &str) -> Result<RoomId, Refusal> {
        if let Some(room) = self.room_id(name) {
            return Ok(room);
        }
        let mut rooms = write(&self.rooms);
        if let Some(&room) = rooms.ids.get(name) {
            return Ok(room);
        }
        if rooms.ids.len() >= self.config.max_rooms {
            return Err(Refusal::TooMany);
        }
        let room = match self.cluster {
            Some(_) => cluster::room_id(name),
            None => rooms.ids.len() as RoomId + 1,
        };
        rooms.ids.insert(name.to_owned(), room);
        Ok(room)
    }
}

/// What `stats` reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HubStats {
    pub(crate) engine: Stats,
    pub(crate) rooms_known: usize,
    pub(crate) sessions: usize,
    pub(crate) slow_consumers_closed: u64,
}

impl HubStats {
    /// Rooms loaded now (thread entries).
    pub(crate) fn rooms_loaded(&self) -> usize {
        self.engine.threads
    }

    /// Room listener tasks alive now (each owns its listener handle).
    pub(crate) fn listeners_running(&self) -> usize {
        self.engine.live_listener_handles
    }
}

//! A websocket rooms gateway on switchboard and tokio.
//!
//! ```text
//! cargo run --release -p switchboard-async --example ws_gateway -- --addr 127.0.0.1:9001
//! ```
//!
//! Clients join rooms (strings), say things to a room's members, ask a
//! room's listener how many messages it has seen, and may resume a
//! session on a new websocket. Each room is a switchboard thread served by
//! one listener task (started and supervised by a `Supervisor`) that
//! numbers and fans out its messages; the room unloads once it has been
//! empty for a linger. Each connection's bounded outbox is its engine data,
//! reached by the fan-out directly; a client that does not keep up is
//! disconnected (the slow-consumer policy, `outbox.rs`). A reconnect takes
//! its session's id over as a new incarnation (`hub.rs`). Ctrl-C shuts down gracefully: no
//! new connection, every room listener ends (`shutdown_async`), every
//! socket is flushed and closed.
//!
//! Flags: `--addr HOST:PORT` (default `127.0.0.1:9001`; port 0 picks a
//! free one), `--linger-ms N` (default 1000, or `WS_GATEWAY_LINGER_MS`),
//! `--outbox N` (frames per connection, default 1024). The first line on
//! stdout is `listening on HOST:PORT`, the bound address.
//!
//! # Protocol
//!
//! JSON text frames, one object each. Every request may carry `"id"`; its
//! direct answer echoes it as `"re"`.
//!
//! | request | answer |
//! |---|---|
//! | (on connect) | `{"op":"hello","conn":<id>}` |
//! | `{"op":"join","room":R}` | `{"op":"joined","re":..,"room":R}` |
//! | `{"op":"leave","room":R}` | `{"op":"left","re":..,"room":R,"was_member":bool}` |
//! | `{"op":"say","room":R,"text":T}` | every member (the sayer too) gets `{"op":"msg","room":R,"seq":n,"inc":i,"from":<id>,"mid":<the say's id>,"text":T}`, then the sayer `{"op":"said","re":..,"room":R,"seq":n}` |
//! | `{"op":"ask","room":R}` | `{"op":"count","re":..,"room":R,"count":n}` |
//! | `{"op":"stats"}` | `{"op":"stats","re":..,"connections":..,"rooms_loaded":..,"listeners_running":..,"subscriptions":..,"rooms_known":..,"sessions":..,"slow_consumers_closed":..,"version":..}` |
//! | `{"op":"resume","session":S}` | `{"op":"resumed","re":..,"conn":<id>}` |
//! | `{"op":"ping"}` | `{"op":"pong","re":..}`, in order with deliveries |
//!
//! `seq` counts a room's messages within its current load, `inc` numbers
//! its loads (1, 2, …), and `mid` is the say's `"id"` (null if it had
//! none). A say from a non-member is refused, as is
//! an ask to a room that is not loaded. `resume`: a session string names
//! one connection id (a new session gets a fresh one); the websocket
//! becomes that id in a new incarnation with no rooms (the id it had ends),
//! and a websocket that held it before is closed (code 4000); whatever
//! that one still sends changes nothing for the new holder.
//!
//! Refusals: `{"op":"error","re":..,"room":R,"error":"<reason>"}` (`room`
//! when the request named one), reason one of `bad_json`, `bad_request`,
//! `unknown_op`, `bad_room` (empty, or over 128 bytes), `too_long` (text),
//! `too_many` (room names or sessions), `not_member`, `not_loaded`,
//! `no_listener`, `not_connected` (this websocket's id was taken over),
//! `shutting_down`.
//!
//! # Cluster mode
//!
//! `--redis redis://HOST:PORT --node NAME` (and `--lease-ms N`, default
//! 2000, renewed every quarter; `--route-timeout-ms N`, default 1000) makes
//! this process one node of a cluster sharing that Redis (`cluster.rs`
//! has the design). The protocol is the same, with these additions:
//!
//! * `hello` carries `"node":NAME`; connection ids are unique cluster-wide
//!   (the node's part is in the id), and a session's id is the same on
//!   every node.
//! * A room is one room cluster-wide. Its **owner** — the node whose claim
//!   of the room's lease won, normally the first to have a member —
//!   serves every say and ask, wherever the client is connected (routed
//!   through Redis, `owner.rs`): a say is published through the lease
//!   (fenced) and every node delivers it to its own members, per room in
//!   order, exactly once. `seq` is the room's Redis sequence (cluster-wide,
//!   it keeps growing across loads and owners); `inc` is the owner's lease
//!   token (a later owner's is larger). `ask` answers the owner's last
//!   known `seq` and names it: `{"op":"count",..,"owner":NODE}`.
//! * `said` comes when the say is published: members on other nodes (the
//!   sayer too) may get its `msg` a little later — up to their node's
//!   delivery lag, which the test bounds at 2 s. A leave (or takeover)
//!   within that lag of an ack may miss that say, and a join within it may
//!   still get it.
//! * Failover: when an owner dies or stops, its lease expires; a node with
//!   a member claims the room within one renew interval after (its
//!   watcher), so the room has an owner again within the lease plus a
//!   renew interval. Meanwhile says and asks are refused (`no_listener`:
//!   a say so refused may still have been published and delivered, never
//!   twice), never dropped. An owner whose own members all left unloads
//!   the room after the linger and releases the lease; a node that still
//!   has members claims it (a new `inc`). A node with neither members nor
//!   owner unloads its entry.
//! * `resume` of a session held on another node asks that node to give it
//!   up: it ends its incarnation (nothing the old websocket sends counts
//!   any more), closes that websocket (4000), and releases the session's
//!   lease; this node claims it (`sessions.rs`). New error: `unavailable`
//!   (the session could not be taken over in time).
//! * `stats` gains `"node"` and `"cluster"`: `{"nodes", "connections",
//!   "rooms_loaded", "listeners_running", "as_known_to"}` summed over the
//!   nodes this node heard from in the last 1.5 s (each publishes its own
//!   counts every 500 ms).
//! * Ctrl-C hands the node's rooms over: every owned room's listener ends
//!   and its lease is released (says it acked were published before), then
//!   every websocket is closed with 1012 (service restart: reconnect).
//!
//! `tests/ws_gateway.rs` runs this server and drives it with real
//! websocket clients; `tests/ws_gateway_cluster.rs` runs three cluster
//! nodes as processes.

#[path = "cluster.rs"]
pub(crate) mod cluster;
#[path = "config.rs"]
pub(crate) mod config;
#[path = "conn.rs"]
mod conn;
#[path = "engine.rs"]
pub(crate) mod engine;
#[path = "hub.rs"]
pub(crate) mod hub;
#[path = "outbox.rs"]
pub(crate) mod outbox;
#[path = "owner.rs"]
mod owner;
#[path = "protocol.rs"]
pub(crate) mod protocol;
#[path = "room.rs"]
mod room;
#[path = "sessions.rs"]
mod sessions;

pub(crate) use config::Config;
pub(crate) use hub::{Hub, HubStats};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::InvariantViolation;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A bound, not yet running server.
#[derive(Debug)]
pub(crate) struct Server {
    hub: Arc<Hub>,
    listener: TcpListener,
}

/// How a shutdown went.
#[derive(Debug)]
pub(crate) struct Report {
    /// Rooms whose listener had not ended within the grace.
    pub(crate) listeners_still_running: Vec<engine::RoomId>,
    /// Connection tasks that had to be aborted after the grace.
    pub(crate) connections_aborted: usize,
    /// The counts once everything had stopped.
    pub(crate) stats: HubStats,
    /// The final graph's invariants check (`Snapshot::validate`).
    pub(crate) graph: Result<(), InvariantViolation>,
    /// Connections and rooms still in the final graph.
    pub(crate) connections_left: usize,
    pub(crate) rooms_left: usize,
}

impl Server {
    /// Binds `config.addr`.
    ///
    /// # Errors
    ///
    /// The bind's error.
    pub(crate) async fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(&config.addr).await?;
        let hub = match config.redis.clone() {
            None => Hub::new(config),
            Some(url) => Hub::new_cluster(config, &url)
                .await
                .map_err(io::Error::other)?,
        };
        Ok(Server { hub, listener })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then shuts down: stops accepting,
    /// ends every room listener (in-flight says and asks are refused, not
    /// lost), then closes every websocket after flushing its outbox.
    pub(crate) async fn run(self, stop: impl Future<Output = ()>) -> Report {
        let Server { hub, listener } = self;
        let (shutdown, stopping) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        let _ = tcp.set_nodelay(true);
                        let task = conn::serve(Arc::clone(&hub), tcp, stopping.clone());
                        connections.spawn(task);
                    }
                    // Out of descriptors, say: back off a little.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let grace = hub.config().grace;
        let mut listeners = hub.engine.shutdown_async();
        let _ = tokio::time::timeout(grace, &mut listeners).await;
        let listeners_still_running = listeners.still_running();
        if let Some(part) = hub.cluster() {
            // Hand the rooms over: every owner task releases its lease
            // once its listener ended (says it accepted were published
            // before they were answered); the other nodes' watchers claim
            // the rooms that still have members there.
            part.tasks_ended(grace).await;
        }
        let _ = shutdown.send(true);
        let all_closed = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, all_closed).await;
        if let Some(part) = hub.cluster() {
            // Session leases were released as their websockets closed.
            part.release_part().await;
        }
        let connections_aborted = connections.len();
        connections.shutdown().await;
        let graph = hub.snapshot();
        Report {
            listeners_still_running,
            connections_aborted,
            stats: hub.stats(),
            graph: graph.validate(),
            connections_left: graph.connection_count(),
            rooms_left: graph.thread_count(),
        }
    }
}

#[tokio::main]
pub(crate) async fn main() {
    serve_until_ctrl_c(std::env::args().skip(1)).await;
}

/// The gateway's life: parse `args`, bind, serve until Ctrl-C (SIGINT),
/// shut down, print the report. Exits the process on a bad flag or bind.
pub(crate) async fn serve_until_ctrl_c(args: impl IntoIterator<Item = String>) {
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ws_gateway: {e}");
            std::process::exit(2);
        }
    };
    let server = match Server::bind(config.clone()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("ws_gateway: cannot bind {}: {e}", config.addr);
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("ws_gateway: {e}"),
    }
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let report = server.run(ctrl_c).await;
    println!(
        "shut down: {} listener(s) late, {} connection(s) aborted, {} connection(s) and \
         {} room(s) left, {} slow consumer(s) closed, graph {:?}",
        report.listeners_still_running.len(),
        report.connections_aborted,
        report.connections_left,
        report.rooms_left,
        report.stats.slow_consumers_closed,
        report.graph,
    );
}

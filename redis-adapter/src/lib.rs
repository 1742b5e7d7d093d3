//! Gap-free cross-node delivery for switchboard threads, over Redis.
//!
//! A switchboard [`Engine`](switchboard_core::Engine) lives in one
//! process. Run several behind a load balancer and a client on node B
//! follows a thread whose events are produced on node A. A [`Node`] joins
//! them through Redis: it follows its engine's occupied threads, and hands
//! the host every message published to them by any node, per thread in
//! order, with no duplicate and no silent gap.
//!
//! # Hello world
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard_core::{Caps, Engine};
//! use switchboard_redis::{Config, Delivery, Node};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
//! let (node, mut deliveries) =
//!     Node::start(Arc::clone(&engine), Config::new("redis://127.0.0.1:6379")).await?;
//!
//! engine.connect(1, Caps::NONE);
//! engine.subscribe(7, 1)?; // the first local subscriber of 7: the node subscribes
//! node.ready(7).await?;    // ... and Redis has confirmed it
//!
//! let published = node.publish(7, b"hi").await?; // any node may publish
//! if let Some(Delivery::Message { t, seq, payload }) = deliveries.recv().await {
//!     assert_eq!((t, seq, payload.as_slice()), (7, published.seq, &b"hi"[..]));
//!     // Fan out to this node's sockets:
//!     for c in engine.subscribers(t).iter() {
//!         let _ = c;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! [`Node::publish`] runs one Lua script: it gives the message the
//! thread's next sequence number, appends it to the thread's capped stream
//! (the retention), and PUBLISHes `{seq}:{epoch}:{payload}` on the thread's
//! channel. The epoch is random and set once per thread; it changes only if
//! the thread's history is lost (Redis restarted empty).
//!
//! Each node has three Redis connections: commands (publish, ownership,
//! routing) and catch-up reads (stream reads, with their own deadline),
//! each through the `redis` crate's connection manager, and a subscription
//! connection of its own, read with backpressure. One worker task owns the
//! subscription connection. It SUBSCRIBEs a thread's channel when the
//! engine reports the thread's first local subscriber, and UNSUBSCRIBEs
//! after a grace period once the last one has gone and the engine still
//! shows none. Per thread it keeps the epoch and the last sequence
//! delivered. A message that is the next one is delivered; an old one is
//! dropped; a gap or a new epoch is filled from the stream (reads bounded
//! in entries and bytes, each an XRANGE in one MULTI/EXEC with the head and
//! the epoch, on a connection of its own with its own deadline), and what
//! the stream no longer has becomes an explicit [`Delivery::Reset`].
//!
//! When the subscription connection breaks, or the liveness probe (a
//! message to the node's own channel) does not come back in time, the
//! worker reconnects with backoff, resubscribes every thread that the
//! engine's snapshot shows occupied, and catches each up from the stream
//! after the last sequence it delivered.
//!
//! # One owner per thread
//!
//! [`Node::claim`] makes this node a thread's owner through a lease in
//! Redis with a fencing token that only grows per thread (across a Redis
//! restarted empty too: the token's floor is Redis's clock). The node
//! renews the [`Lease`] until it is released or lost; every owner-only
//! write — renewal, release, [`Lease::publish`], taking routed commands
//! ([`Lease::commands`]), answering a request — is one Lua script that
//! runs only if the lease still holds its token. [`Node::send`] and
//! [`Node::request`] route a command from any node to the owner: it is
//! taken by one lease at most once, and its sender gets `Ok` only if it
//! was.
//!
//! A [`Cluster`] makes a node the [`Ownership`](switchboard_async::Ownership)
//! service of a cluster [`Supervisor`](switchboard_async::Supervisor): a
//! thread's listener starts only on the node whose claim wins, is cleared
//! the moment its lease is lost, and its lease is released when the idle
//! policy unloads the thread. [`Cluster::send`] and [`Cluster::request`]
//! stay in-process when this node serves the thread, and go through Redis
//! otherwise.
//!
//! # Guarantees
//!
//! * After [`Node::ready`]`(t)` resolves, every message published to `t`
//!   is delivered by this node exactly once, in sequence order, for as long
//!   as `t` stays occupied — or a `Reset` for `t` says which were lost
//!   (more than the retention behind, or Redis lost its data).
//! * `publish` returns `Ok` only once Redis has numbered, stored and
//!   published the message; otherwise it returns an error within the
//!   publish timeout.
//! * At most one lease of a thread can act: Redis refuses an owner-only
//!   write whose token is not the live lease's, and a node learns through
//!   [`Lease::lost`] that its lease ended, at the latest when its own
//!   deadline for it (never later than Redis's) passes.
//! * Memory is bounded: at most [`Config::delivery_buffer`] deliveries,
//!   the frame being read or handled (as large as one payload) and one
//!   socket read (16 KiB) wait in the node; a
//!   host that does not keep up is disconnected by Redis and catches up
//!   from the streams.
//!
//! The fault tests in `tests/faults.rs` check these against a real
//! redis-server: a killed subscription connection, a paused Redis, a slow
//! node, Redis restarted empty, a node process killed, the subscribe race,
//! and history trimmed past the retention; `tests/liveness.rs` a
//! connection that stays up but stops delivering; `tests/interest.rs` that
//! subscriptions follow the engine; `tests/catchup.rs` large backlogs,
//! slow reads and many threads caught up at once; `tests/ownership.rs`,
//! `tests/routing.rs` and `tests/failover.rs` the one-owner guarantee and
//! routing's at-most-once (racing claims,
//! stale tokens, an owner stopped, cut off or killed, Redis restarted
//! empty, takeovers under routed load, a rolling restart);
//! `tests/cluster.rs` the cluster supervisor (one node serves, requests
//! from every node reach it, a lost lease clears its listener, an idle
//! unload releases the lease).
//!
//! # Trade-offs
//!
//! * A publish is one script call: about one Redis round trip, plus a
//!   stream entry per message kept until trimmed (`retention` per thread).
//! * A gap costs a stream read on the node that saw it; steady state costs
//!   none.
//! * A lease costs one small script per renew interval; a routed request
//!   about four to five Redis round trips (two scripts on the owner's side,
//!   one on the sender's, two notices by pub/sub).
//! * Threads are named in Redis by their `Display` form, so `T` must
//!   round-trip through `Display`/`FromStr` ([`ThreadKey`]).
#![forbid(unsafe_code)]

mod catchup;
mod cluster;
mod commands;
mod config;
mod conn;
mod counters;
mod delivery;
mod error;
mod follow;
mod interest;
mod lease;
mod node;
mod notices;
mod random;
mod route;
mod script;
mod thread_key;
mod worker;

pub use cluster::{Cluster, ClusterLease};
pub use commands::{Commands, RoutedCommand};
pub use config::Config;
pub use delivery::{Delivery, ResetReason};
pub use error::{ClaimError, PublishError, ReadyError, RouteError, StartError};
pub use lease::{Lease, Owner};
pub use node::{Deliveries, Node, NodeStats, Published};
pub use thread_key::ThreadKey;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! The connection/thread state engine for latency-sensitive servers.
//!
//! switchboard tracks live **connections** (each with [`Caps`] bits),
//! **threads** (a conversation, a room, a topic: host state plus at most one
//! listener task fed by a command queue), the many-to-many **subscription
//! graph** between them, and **watches** that tell the host when a thread
//! has lost its last subscriber. Every fan-out read is lock-free.
//!
//! # Hello world
//!
//! ```
//! use switchboard_core::{Caps, Engine};
//!
//! let engine: Engine<u64, u64> = Engine::new();
//! engine.connect(1, Caps::NONE);
//! engine.connect(2, Caps::NONE);
//! engine.subscribe(100, 1).unwrap();
//! engine.subscribe(100, 2).unwrap();
//!
//! // Fan an event out to every subscriber of thread 100.
//! for c in engine.subscribers(100).iter() {
//!     println!("deliver to connection {c}");
//! }
//! assert_eq!(engine.subscribers(100).to_vec(), [1, 2]);
//!
//! // A subscribe from a dead connection is refused and changes nothing.
//! assert!(engine.subscribe(100, 3).is_err());
//! ```
//!
//! # Design
//!
//! The whole graph — live connections with caps, thread entries, the
//! forward index (thread → subscribers) and the reverse index
//! (connection → threads) — is one immutable value behind an
//! `arc_swap::ArcSwap`. A read through [`Engine`] holds the latest version
//! for the length of the call by a hazard slot of the reading thread (a
//! plain store and one fence: no lock, no allocation, no shared write); a
//! value that outlives the call ([`Snapshot`], a large [`Subscribers`])
//! holds it by an `ArcSwap` load guard, and a [`Reader`] keeps a reference
//! to the version it read last. Writers are serialised by one mutex; a
//! writer copies the latest graph's three trie roots, changes the copy by
//! copying only the nodes on the paths it touches, and publishes it with
//! one swap.
//!
//! The tries are hash tries in the CHAMP layout whose nodes carry no
//! reference counts: copying a node is a `memcpy`-like clone of its inline
//! entries plus its child pointers. Nodes are whole cache lines from a
//! pool the writer owns, so a write never touches a line a reader is
//! reading. A replaced node is given back by the writer once no graph
//! version a reader still holds can see it; readers never free anything.
//! Keys are placed by a hash seeded per engine (random unless
//! [`Config::hash_seed`] fixes it), so ids that clients choose cannot be
//! built to collide in the trie.
//!
//! The crate's `unsafe` code is the node store (`src/store/`: node layout,
//! transactions and reclamation, the pool, the hash trie, the B+tree, the
//! set, the version pin of [`Subscribers`], the hazard slots of per-call
//! reads, and the published versions with the writer's copy-publish-retire
//! step), whose safety argument is the store's numbered proof. Every other
//! module is `#![deny(unsafe_code)]`. The store is model-checked with loom
//! and run under valgrind in CI.
//!
//! # Host code
//!
//! The engine calls code the host wrote: `Hash`, `Eq` and `Ord` of the
//! keys, `Default` of `S` and `D`, [`Engine::thread_with`]'s `init`, the
//! visitors of the `for_each_*` reads, `Clone` of `D` in [`Engine::data`],
//! and the destructors of states, data and commands. Any of it may panic,
//! and none of it can break the engine (guarantee 13):
//!
//! * A write runs the keys' `Hash`/`Eq`/`Ord` and, when it creates a
//!   thread or a connection, `S::default()`/`init` or `D::default()`,
//!   under the writer lock, before it publishes anything. If one panics,
//!   the unwind abandons the write (every node it made is freed, nothing is
//!   published, no number, change or watch flip is used up) and releases
//!   the lock: the engine is exactly as before the call. Such code must not
//!   call a writing method of an engine (it would wait for itself): that
//!   call panics, and the outer write is abandoned.
//! * No destructor of a host value runs under the lock. A thread entry (its
//!   state and listener queue) or a connection's data whose last reference
//!   a write or its reclamation gives up is dropped by the writing caller
//!   after the write is published and the lock released, so a destructor
//!   may call any engine method, and one that panics unwinds to that caller
//!   with the write complete. A thread's state may therefore be dropped by
//!   a later write of another caller, on that caller's OS thread (after a
//!   held [`Snapshot`] that still showed it is dropped).
//! * A read's visitor that panics unwinds out of the read and leaves no
//!   version pinned.
//!
//! Per-thread mutable state lives in an [`Arc<ThreadEntry>`](ThreadEntry)
//! shared by every graph version: the host state `S` behind its own mutex,
//! the listener slot, and the has-subscribers watch.
//!
//! # Trade-offs
//!
//! * Reads cost about what an uncontended mutex'd `HashMap` costs and scale
//!   with readers; a write costs about a microsecond (a path copy plus
//!   reclamation) instead of a few hundred nanoseconds. Pick this for
//!   read-mostly fan-out; `benches/README.md` has the numbers. Writes that
//!   belong together (a client's resume, a storm of disconnects) go in one
//!   [`Engine::batch`]: one publish, one change-log entry, one reclamation.
//!   Writers on several threads are combined by themselves: writes queued
//!   for the writer lock are published together by the last of them, each
//!   caller still returning its own result once its write is published.
//! * A held [`Snapshot`] pins the trie nodes of its version; hold it for a
//!   request, not a session. A [`Reader`] pins the version it read last,
//!   and a [`Subscribers`] of more than four members the version it came
//!   from.
//! * Trie nodes are whole cache lines (about 10% more memory than packed
//!   nodes), and memory the writer frees is kept for new nodes until the
//!   engine is dropped: a graph that shrinks keeps its peak footprint.
//! * Every write that changes the graph also copies its changes into the
//!   bounded change log (a few dozen bytes, no allocation once the log is
//!   full), whether or not anyone follows it; `Config::change_log(0)`
//!   skips the copy. See "Following changes".
//! * Subscriber sets up to four members (a connection's threads: eight) are
//!   stored inline; larger ones are persistent B-trees built from the same
//!   count-free nodes as the tries, so joining a huge thread copies a few
//!   nodes, not its subscriber list.
//! * Each live connection's entry holds its incarnation (8 bytes) and a
//!   pointer to its data (8 bytes, no allocation when `D = ()`); a
//!   non-`()` `D` lives in its own reference-counted allocation, which a
//!   path copy of the entry shares (a count increment, writers only).
//!
//! # Thread safety
//!
//! [`Engine`] and [`ThreadEntry`] are `Send + Sync`; share the engine as
//! `Arc<Engine<..>>`. Every operation is linearizable: it takes effect at
//! one instant, and every read sees one published graph in which the two
//! indexes agree and no edge names a dead connection. A `subscribe(t, c)`
//! racing `disconnect(c)` either fails or is undone by the disconnect.
//! Combined writes (see "Trade-offs") keep this: each takes effect at the
//! publish of its group, before its call returns, and only the change feed
//! (one [`ChangeBatch`] holding several calls' changes, in the order they
//! took effect) and [`Engine::version`] (one step for the group) show that
//! they were combined. [`guarantees`] lists each guarantee with the tests
//! that check it.
//!
//! # Hot read loops
//!
//! A worker thread that fans out in a loop can hold a [`Reader`]: it keeps
//! the graph version it read last and checks, with one pointer compare,
//! that the engine still publishes it, so a read skips the per-read
//! protection an [`Engine`] read sets up (the hazard pin's fence: 4-12%
//! of a small lookup in the `lookup_api` rows of `benches/HISTORY.md`).
//! Reads through it are as fresh as the engine's; the price is that it
//! keeps its last version alive until its next read.
//!
//! ```
//! use switchboard_core::{Caps, Engine};
//!
//! let engine: Engine<u64, u64> = Engine::new();
//! engine.connect(1, Caps::NONE);
//! engine.subscribe(9, 1).unwrap();
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let mut reader = engine.reader();
//!         for _ in 0..3 {
//!             reader.for_each_subscriber(9, |c| assert_eq!(c, 1));
//!         }
//!     });
//! });
//! ```
//!
//! # Connection data and reused ids
//!
//! An engine can carry host data per connection (`D`, the fifth type
//! parameter: an outbox sender, say), handed to the fan-out with each
//! subscriber by [`Engine::for_each_subscriber_data`], lock-free and with
//! no allocation; with `D = ()` (the default) it costs nothing. Each time
//! a connection id becomes live it starts a new *incarnation*, a number
//! strictly increasing per engine: a client reconnecting with the same id
//! calls [`Engine::connect_with`], which ends the old session (its
//! subscriptions dropped) and starts the new one in one write, and the old
//! session's late `disconnect_if`, `subscribe_if` or `unsubscribe_if`
//! naming its own incarnation changes nothing (guarantee 12).
//!
//! ```
//! use switchboard_core::{Caps, Engine};
//!
//! let engine: Engine<u64, u64, (), (), &str> = Engine::new();
//! let old = engine.connect_with(7, Caps::NONE, "socket A");
//! engine.subscribe_if(100, 7, old).unwrap();
//! let new = engine.connect_with(7, Caps::NONE, "socket B"); // same id
//! engine.subscribe_if(100, 7, new).unwrap();
//! assert_eq!(engine.disconnect_if(7, old), None); // socket A closes late
//! engine.for_each_subscriber_data(100, |c, outbox| {
//!     assert_eq!((c, *outbox), (7, "socket B"));
//! });
//! ```
//!
//! # Following changes
//!
//! Every write that changes the graph publishes one new version, numbered
//! 1, 2, 3, … ([`Engine::version`], [`Snapshot::version`]; a write that
//! changes nothing publishes nothing). A [`ChangeFeed`] yields, for each
//! version in order and once it is published, a [`ChangeBatch`] of the
//! [`Change`]s it made: connections, edges, thread entries, and the
//! `Occupied` / `Vacated` transitions (a thread's first subscriber came,
//! its last one went) that a broker adapter follows. [`Engine::stats`]
//! gives the counts in O(1).
//!
//! The engine keeps the batches of the last [`Config::change_log`] versions
//! (4096 by default). Following a feed never blocks a writer: a consumer
//! that falls further behind gets [`Lagged`] and resyncs from a snapshot,
//! in a loop, since the window can move on between the two calls. A
//! replica — a snapshot at `v` plus every batch after `v`, applied in
//! order — equals the engine's snapshot at every version.
//!
//! ```
//! use std::collections::BTreeMap;
//! use switchboard_core::{Caps, Change, ChangeFeed, Config, Engine, Lagged};
//!
//! /// Subscriber counts of the subscribed threads, kept from the feed.
//! type Counts = BTreeMap<u64, usize>;
//!
//! /// The resync recipe: a snapshot, and a feed from its version.
//! fn resync(engine: &Engine<u64, u64>) -> (Counts, ChangeFeed<u64, u64>) {
//!     let (snap, feed) = loop {
//!         let snap = engine.snapshot();
//!         if let Ok(feed) = engine.changes_since(snap.version()) {
//!             break (snap, feed);
//!         }
//!     };
//!     let counts = snap
//!         .threads()
//!         .map(|t| (t, snap.subscribers(t).len()))
//!         .filter(|&(_, n)| n > 0)
//!         .collect();
//!     (counts, feed)
//! }
//!
//! /// Applies every batch available now; resyncs if the feed lagged.
//! fn follow(engine: &Engine<u64, u64>, counts: &mut Counts, feed: &mut ChangeFeed<u64, u64>) {
//!     loop {
//!         match feed.try_next() {
//!             Ok(Some(batch)) => {
//!                 for change in batch.changes {
//!                     match change {
//!                         Change::Subscribed { t, .. } => *counts.entry(t).or_default() += 1,
//!                         Change::Unsubscribed { t, .. } => *counts.get_mut(&t).unwrap() -= 1,
//!                         Change::Vacated { t } => drop(counts.remove(&t)),
//!                         _ => {}
//!                     }
//!                 }
//!             }
//!             Ok(None) => return,
//!             Err(Lagged) => (*counts, *feed) = resync(engine),
//!         }
//!     }
//! }
//!
//! let engine: Engine<u64, u64> = Engine::with_config(Config::default().change_log(2));
//! let (mut counts, mut feed) = resync(&engine);
//! engine.connect(1, Caps::NONE);
//! engine.connect(2, Caps::NONE);
//! engine.subscribe(7, 1).unwrap();
//! engine.subscribe(7, 2).unwrap(); // four versions: more than the log keeps
//! follow(&engine, &mut counts, &mut feed);
//! assert_eq!(counts, BTreeMap::from([(7, 2)]));
//!
//! engine.disconnect(1);
//! engine.disconnect(2); // 7 is vacated
//! follow(&engine, &mut counts, &mut feed);
//! assert!(counts.is_empty());
//! assert_eq!(feed.version(), engine.version());
//! ```
//!
//! # Listeners and requests
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_core::{Engine, Reply};
//!
//! enum Cmd {
//!     Ping(Reply<&'static str>),
//! }
//!
//! let engine: Engine<u64, u64, (), Cmd> = Engine::new();
//! let entry = engine.thread(7);
//! let listener = entry.set_listener(&Arc::new(()));
//! let task = std::thread::spawn(move || {
//!     while let Ok(Cmd::Ping(reply)) = listener.recv() {
//!         reply.send("pong");
//!     }
//! });
//! let pending = entry.request(Cmd::Ping).unwrap();
//! assert_eq!(pending.wait(), Ok("pong"));
//! engine.remove_thread(7); // clears the listener: its queue closes
//! task.join().unwrap();
//! ```
//!
//! When several callers may find a thread without a listener at once (two
//! clients joining an unloaded room), start it with
//! [`ThreadEntry::set_listener_if_none`]: exactly one of them gets the
//! listener, the others `None`. (switchboard-async's `Supervisor` builds a
//! supervised listener task, with idle unloading, on it.) A thread costs no
//! listener memory until its first listener starts.
//!
//! # Backpressure
//!
//! A listener's queue is unbounded unless the host asks otherwise
//! ([`ThreadEntry::set_listener`]): `send` never blocks, and a listener that
//! falls behind holds its backlog in memory. A host that must bound memory
//! gives the listener a bounded queue ([`ThreadEntry::set_listener_with`]
//! with [`QueueConfig::bounded`]) and picks, per call site, what a sender
//! does when it is full:
//!
//! | call | on a full queue | use it from |
//! |---|---|---|
//! | [`try_send`](ThreadEntry::try_send), [`try_request`](ThreadEntry::try_request) | gives the command back ([`SendError::Full`]) | anywhere, including the listener's own task and request handlers that must not wait (shed load, answer "busy") |
//! | [`send_timeout`](ThreadEntry::send_timeout) | waits up to a deadline, then gives it back | a blocking thread that may wait a little |
//! | [`send`](ThreadEntry::send) | waits for room | a blocking thread that is not the listener's consumer |
//! | switchboard-async's `send_async` | a task waits for room without blocking its worker | async producers |
//!
//! Every waiting send wakes when the listener takes a command, and fails
//! with its command (`NoListener`) if the listener is replaced, cleared or
//! dropped meanwhile: a send never outlives its listener. Commands are
//! never lost: each reaches the listener that was current when it was
//! queued, or comes back to its caller (guarantee 10).
//!
//! **Never wait for room from the listener's own loop.** A listener that
//! sends to its own thread (or, through a chain, to a thread whose listener
//! sends back to it) with `send` on a full queue waits for a receive that
//! only it can make: the loop deadlocks. From inside a listener, use
//! `try_send` and handle `Full`, or keep that path unbounded.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_core::{Engine, QueueConfig, SendError};
//!
//! let engine: Engine<u64, u64, (), u32> = Engine::new();
//! let room = engine.thread(1);
//! let listener = room.set_listener_with(&Arc::new(()), QueueConfig::bounded(2));
//! let worker = std::thread::spawn({
//!     let room = Arc::clone(&room);
//!     move || {
//!         while let Ok(n) = listener.recv() {
//!             if n > 0 {
//!                 // Re-queue follow-up work to itself: `try_send`, never
//!                 // `send`, which could wait on this very loop.
//!                 match room.try_send(n - 1) {
//!                     Ok(()) | Err(SendError::NoListener(_)) => {}
//!                     Err(SendError::Full(_dropped)) => { /* shed it */ }
//!                 }
//!             }
//!         }
//!     }
//! });
//! room.send(3).unwrap(); // from another thread: may wait for room
//! room.clear_listener(); // the worker drains and stops
//! worker.join().unwrap();
//! ```
//!
//! At the end of service, [`Engine::shutdown`] stops new listeners, clears
//! every current one and waits (with a timeout) until every listener handle
//! is dropped, naming the threads whose tasks are late (guarantee 11).
#![deny(unsafe_code)]

mod cancel;
mod caps;
mod changes;
mod config;
mod engine;
mod entry;
mod error;
mod feed;
mod graph;
pub mod guarantees;
mod hash;
mod key;
mod listener;
mod queue;
mod reader;
mod reply;
mod shutdown;
mod snapshot;
mod stats;
#[allow(unsafe_code)]
mod store;
mod sync;
mod view;
mod waiters;
mod watch;
mod written;

pub use cancel::CancelToken;
pub use caps::Caps;
pub use changes::{Change, ChangeBatch};
pub use config::Config;
#[doc(hidden)]
pub use engine::NodeProbe;
pub use engine::{Batch, Engine};
pub use entry::ThreadEntry;
pub use error::{
    InvariantViolation, Lagged, NoListener, NotConnected, RecvError, RecvTimeoutError, ReplyError,
    ReplyTimeoutError, SendError, TryRecvError, WatchError,
};
pub use feed::ChangeFeed;
pub use key::Key;
pub use listener::Listener;
pub use queue::{PendingSend, QueueConfig};
pub use reader::Reader;
pub use reply::{PendingReply, Reply};
pub use shutdown::{ShutdownReport, ShutdownWait};
pub use snapshot::{Snapshot, Subscribers, SubscribersIter};
pub use stats::Stats;
pub use sync::StateGuard;
/// The old name of [`StateGuard`], kept so that code naming it compiles.
#[doc(no_inline)]
pub use sync::StateGuard as MutexGuard;
pub use watch::SubscriberWatch;

/// A standalone waiter list, for tests and loom models of the primitive
/// every watch, token, reply and queue waits on. Not part of the API.
#[doc(hidden)]
pub use waiters::probe as wait_list_probe;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

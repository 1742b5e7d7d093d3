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
//! `arc_swap::ArcSwap`. A read is one `load()` plus a few lookups: no lock,
//! no allocation, no shared write. Writers are serialised by one mutex; a
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
//!
//! The crate's `unsafe` code is the node store (`src/store/`: node layout,
//! reclamation, the pool, the hash trie, the B+tree, the set and the
//! version pin of [`Subscribers`]), plus the two calls into it that free
//! nodes, in `src/graph.rs` (`Writer::retire` and the node owner's drop),
//! whose safety argument is the store's numbered proof. Every other module
//! is `#![deny(unsafe_code)]`. The store is model-checked with loom and run
//! under valgrind in CI.
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
//!   read-mostly fan-out; `benches/README.md` has the numbers.
//! * A held [`Snapshot`] pins the trie nodes of its version; hold it for a
//!   request, not a session. A [`Reader`] pins the version it read last,
//!   and a [`Subscribers`] of more than four members the version it came
//!   from.
//! * Trie nodes are whole cache lines (about 10% more memory than packed
//!   nodes), and memory the writer frees is kept for new nodes until the
//!   engine is dropped: a graph that shrinks keeps its peak footprint.
//! * Subscriber sets up to four members (a connection's threads: eight) are
//!   stored inline; larger ones are persistent B-trees built from the same
//!   count-free nodes as the tries, so joining a huge thread copies a few
//!   nodes, not its subscriber list.
//!
//! # Thread safety
//!
//! [`Engine`] and [`ThreadEntry`] are `Send + Sync`; share the engine as
//! `Arc<Engine<..>>`. Every operation is linearizable: it takes effect at
//! one instant, and every read sees one published graph in which the two
//! indexes agree and no edge names a dead connection. A `subscribe(t, c)`
//! racing `disconnect(c)` either fails or is undone by the disconnect.
//! [`guarantees`] lists each guarantee with the tests that check it.
//!
//! # Hot read loops
//!
//! A worker thread that fans out in a loop can hold a [`Reader`]: it keeps
//! the graph version it read last and checks, with one pointer compare,
//! that the engine still publishes it, so a read skips the per-read
//! protection an [`Engine`] read sets up (about a third of a small
//! lookup). Reads through it are as fresh as the engine's; the price is
//! that it keeps its last version alive until its next read.
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
#![deny(unsafe_code)]

mod caps;
mod engine;
mod entry;
mod error;
mod graph;
pub mod guarantees;
mod hash;
mod listener;
mod reader;
mod reply;
mod snapshot;
#[allow(unsafe_code)]
mod store;
mod sync;
mod view;
mod watch;

pub use caps::Caps;
pub use engine::{Engine, Key};
pub use entry::ThreadEntry;
pub use error::{
    InvariantViolation, NoListener, NotConnected, RecvError, RecvTimeoutError, ReplyError,
    ReplyTimeoutError, TryRecvError, WatchError,
};
pub use listener::{CancelToken, Listener};
pub use reader::Reader;
pub use reply::{PendingReply, Reply};
pub use snapshot::{Snapshot, Subscribers, SubscribersIter};
pub use sync::StateGuard;
/// The old name of [`StateGuard`], kept so that code naming it compiles.
pub type MutexGuard<'a, T> = StateGuard<'a, T>;
pub use watch::SubscriberWatch;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

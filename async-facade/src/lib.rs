//! Futures and streams over [`switchboard_core`], for any executor.
//!
//! switchboard-async lets an async host — tokio, async-std, smol or a
//! hand-written executor — run thread listeners as tasks, await replies,
//! wait on has-subscribers watches and wait for a thread to go idle, all
//! without blocking a worker thread. It re-exports the whole of
//! `switchboard_core`, so an async host depends on this one crate, and adds
//! one extension trait per core handle:
//!
//! | core handle         | extension                  | gives                                    |
//! |---------------------|----------------------------|------------------------------------------|
//! | [`Listener<M>`]     | [`ListenerExt::into_stream`] | [`ListenerStream<M>`]: `Stream<Item = M>` |
//! | [`CancelToken`]     | [`CancelTokenExt::cancelled`] | [`Cancelled`]: `Future<Output = ()>`     |
//! | [`PendingReply<R>`] | [`PendingReplyExt::into_async`] | [`ReplyFuture<R>`]: the reply          |
//! | [`SubscriberWatch`] | [`SubscriberWatchExt::changed`] | [`Changed`]: the next change          |
//! | [`SubscriberWatch`] | [`SubscriberWatchExt::into_stream`] | [`WatchStream`]: `Stream<Item = bool>` |
//! | [`Engine`]          | [`EngineExt::wait_idle`]   | [`WaitIdle`]: the thread has no subscribers |
//! | [`Engine`]          | [`EngineExt::shutdown_async`] | [`ShutdownFuture`]: every listener ended |
//! | [`ThreadEntry`]     | [`EntryExt::send_async`]   | [`SendAsync`]: the command queued, waiting for room |
//! | [`ThreadEntry`]     | [`EntryExt::wait_idle`]    | [`WaitIdle`]: this entry has no subscribers |
//! | [`ChangeFeed`]      | [`ChangeFeedExt::into_stream`] | [`ChangeStream`]: every [`ChangeBatch`], or [`Lagged`] |
//!
//! `use switchboard_async::prelude::*;` brings every extension trait into
//! scope.
//!
//! On top of those, a [`Supervisor`] runs one listener task per thread —
//! started by whichever caller needs it first, its slot cleared however it
//! ends, a panic reported as [`TaskEnd::Panicked`] — and unloads threads
//! that stayed idle for a linger. The caller spawns each
//! [`SupervisedTask`] on its own executor.
//!
//! In [cluster mode](Supervisor::cluster), a supervisor serves a thread
//! only while its node holds the thread's lease in a cluster-wide
//! [`Ownership`] service (`switchboard-redis` provides one over Redis):
//! the claim's loser serves nothing ([`TaskEnd::Refused`]), a lost lease
//! clears the listener at once ([`TaskEnd::Lost`]), and an idle unload
//! releases the lease.
//!
//! # Hello world
//!
//! A listener served as a task, a request awaited, and an idle thread
//! unloaded. `block_on` stands in for your runtime.
//!
//! ```
//! use std::sync::Arc;
//! use futures::{executor::block_on, StreamExt};
//! use switchboard_async::prelude::*;
//! use switchboard_async::{Caps, Engine, Reply};
//!
//! enum Cmd {
//!     Ping(Reply<&'static str>),
//! }
//!
//! let engine: Arc<Engine<u64, u64, (), Cmd>> = Arc::new(Engine::new());
//! engine.connect(1, Caps::NONE);
//! let entry = engine.subscribe(7, 1).unwrap();
//! let mut commands = entry.set_listener(&engine).into_stream();
//!
//! block_on(async {
//!     let serve = async {
//!         while let Some(Cmd::Ping(reply)) = commands.next().await {
//!             reply.send("pong");
//!         }
//!     };
//!     let client = async {
//!         let pending = entry.request(Cmd::Ping).unwrap();
//!         assert_eq!(pending.into_async().await, Ok("pong"));
//!
//!         // Unload the thread once nobody follows it.
//!         let idle = engine.wait_idle(7);
//!         engine.disconnect(1);
//!         idle.await;
//!         assert!(engine.remove_thread_if_idle(7)); // closes the queue: `serve` ends
//!     };
//!     futures::join!(serve, client);
//! });
//! assert!(engine.get_thread(7).is_none());
//! ```
//!
//! # Design
//!
//! The facade is glue only. Every future and stream here wraps one core
//! handle and calls its `poll_*` hook ([`Listener::poll_recv`],
//! [`CancelToken::poll_cancelled`], [`PendingReply::poll_reply`],
//! [`SubscriberWatch::poll_changed`], [`ThreadEntry::poll_send`],
//! [`ShutdownWait::poll_done`], [`ChangeFeed::poll_next_batch`]); the hook
//! registers the task's waker with the core, and the core wakes it from the
//! operation that caused the event (a send, a receive that makes room, a
//! listener being replaced, cleared or dropped, a reply, a published
//! has-subscribers change, the last listener handle dropped, a published
//! version). There is no runtime dependency, no helper
//! thread, no timer and no polling loop: a task is woken only by an event
//! it waits for.
//!
//! # Cancel safety
//!
//! Every future and stream can be dropped at any `.await` point (say, the
//! losing branch of a `select!`) without losing anything: state moves only
//! when a poll returns `Ready`, so a dropped `next()` loses no command and a
//! dropped [`Changed`] loses no change. Waiters never steal each other's
//! wake-ups: a watch or a token wakes every registered waiter. Each type
//! documents its own `# Cancel safety`.
//!
//! # Completion
//!
//! One rule for every future and stream here: a future's poll that
//! returns `Ready` is its last (it is a `FusedFuture`: afterwards
//! `is_terminated()` is `true` and a further poll returns `Pending` without
//! touching the engine); a stream yields `None` once it ended and from then
//! on (it is a `FusedStream`).
//!
//! # Thread safety
//!
//! Every future and stream is `Send` when its payload (`M`, `R`) is, and is
//! `Unpin`, so it can be polled by `&mut` in a loop.
//!
//! # Trade-offs
//!
//! * A listener stream has exactly one consumer (it owns the [`Listener`]).
//! * Watches coalesce: a slow waiter may skip intermediate flips, but always
//!   ends on the latest value.
//! * Every future here registers at most one waker in the core (the latest
//!   poll's), and a future dropped while pending frees it: many short-lived
//!   waiters never grow a waiter list beyond the ones alive at once.
#![forbid(unsafe_code)]

mod cancel;
mod changes;
mod entry;
mod fused;
mod idle;
mod listener;
mod reply;
mod send;
mod shutdown;
mod supervise;
mod watch;

pub use switchboard_core::*;

pub use cancel::{CancelTokenExt, Cancelled};
pub use changes::{ChangeFeedExt, ChangeStream};
pub use entry::EntryExt;
pub use idle::{EngineExt, WaitIdle};
pub use listener::{ListenerExt, ListenerStream};
pub use reply::{PendingReplyExt, ReplyFuture};
pub use send::SendAsync;
pub use shutdown::ShutdownFuture;
pub use supervise::{OwnedLease, Ownership, SupervisedTask, Supervisor, TaskEnd};
pub use watch::{Changed, SubscriberWatchExt, WatchStream};

/// The extension traits, for a glob import.
///
/// ```
/// use switchboard_async::prelude::*;
/// use switchboard_async::Engine;
///
/// let engine: Engine<u64, u64> = Engine::new();
/// futures::executor::block_on(engine.wait_idle(1)); // unknown thread: ready at once
/// ```
pub mod prelude {
    pub use crate::{
        CancelTokenExt, ChangeFeedExt, EngineExt, EntryExt, ListenerExt, PendingReplyExt,
        SubscriberWatchExt,
    };
}

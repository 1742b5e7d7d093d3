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
//! | [`ChangeFeed`]      | [`ChangeFeedExt::into_stream`] | [`ChangeStream`]: every [`ChangeBatch`], or [`Lagged`] |
//!
//! `use switchboard_async::prelude::*;` brings every extension trait into
//! scope.
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
//! [`SubscriberWatch::poll_changed`], [`ChangeFeed::poll_next_batch`]);
//! the hook registers the task's waker with the core, and the core wakes it
//! from the operation that caused the event (a send, a listener being
//! replaced or cleared, a reply, a published has-subscribers change, a
//! published version). There is no runtime dependency, no helper
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
//! * A waiter that is dropped while pending leaves its waker registered in
//!   the core until the next event, which then wakes that task once more;
//!   the core has no deregistration hook. Wakers of the same task are
//!   deduplicated, so a loop that re-creates a future each iteration does not
//!   grow the list.
#![forbid(unsafe_code)]

mod cancel;
mod changes;
mod idle;
mod listener;
mod reply;
mod watch;

pub use switchboard_core::*;

pub use cancel::{CancelTokenExt, Cancelled};
pub use changes::{ChangeFeedExt, ChangeStream};
pub use idle::{EngineExt, WaitIdle};
pub use listener::{ListenerExt, ListenerStream};
pub use reply::{PendingReplyExt, ReplyFuture};
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
        CancelTokenExt, ChangeFeedExt, EngineExt, ListenerExt, PendingReplyExt, SubscriberWatchExt,
    };
}

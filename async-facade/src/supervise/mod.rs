//! Supervised listeners: one listener task per thread, started by whichever
//! caller needs it first, its slot cleared however it ends, and the thread
//! unloaded once idle.

mod cluster;
mod idle;
mod task;

pub use cluster::{OwnedLease, Ownership};
pub use task::{SupervisedTask, TaskEnd};

use crate::listener::{ListenerExt, ListenerStream};
use cluster::ClusterMode;
use futures::future::{self, BoxFuture, Either, FutureExt};
use idle::{IdlePolicy, Unload};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::Duration;
use switchboard_core::{Engine, Key, QueueConfig, ThreadEntry};
use task::ClearOnDrop;

/// The host's handler, boxed: given the listener's commands and the entry.
type Handler<T, S, M> =
    dyn Fn(ListenerStream<M>, Arc<ThreadEntry<T, S, M>>) -> BoxFuture<'static, ()> + Send + Sync;

/// Runs one listener task per thread on the host's executor, and unloads
/// idle threads.
///
/// [`start`](Self::start) is the atomic get-or-start: of any number of
/// concurrent callers for one thread entry, exactly one gets a
/// [`SupervisedTask`] (the others get `None`) and spawns it; the task runs
/// the host's handler with the listener's command stream. The crate has no
/// runtime: the caller spawns the task (`tokio::spawn`, `smol::spawn`, …),
/// and the idle policy's timer is a sleep function the host passes.
///
/// # Invariants
///
/// * At most one supervised task per thread *entry* is serving: a task
///   serves while its listener (generation `g`) is the entry's current one,
///   and `start` opens a listener only when none is current
///   ([`ThreadEntry::set_listener_if_none_with`], one critical section on
///   the slot's lock).
/// * Once a task has ended, in any way (its handler returned or panicked,
///   the thread was unloaded, or the task was dropped unfinished), its
///   generation is no longer current: it clears the slot with
///   [`clear_listener_if`](ThreadEntry::clear_listener_if)`(g)`, which
///   never removes a newer listener. So the next `start` starts a new task.
///   The clear happens before the task's output is returned.
/// * A panic in the handler (or in the host's sleep) is caught at the
///   task's boundary and reported as [`TaskEnd::Panicked`], never
///   swallowed and never unwinding into the executor.
/// * In [cluster mode](Self::cluster), a task serves only between winning
///   its thread's claim and losing or releasing the lease; it clears its
///   slot before it releases the lease, and on loss clears the slot and
///   drops the handler in the same poll. Of this supervisor's tasks for
///   one thread id (an unloaded entry still draining, and its successor),
///   a later one claims only once the earlier one's lease is gone.
/// * The idle policy unloads an entry only through
///   [`Engine::remove_entry_if_idle`]: only if it has no subscriber at that
///   instant and is still the thread's current entry.
///
/// # The idle policy, and why a racing join is safe
///
/// With [`unload_when_idle`](Self::unload_when_idle), each task also
/// watches its thread's has-subscribers state: (1) it waits until the
/// thread has no subscriber, marking that version of the watch seen; (2)
/// it sleeps the linger, but any change of the watch meanwhile (someone
/// joined, even if they left again) abandons the linger and goes back to
/// (1): the linger is re-armed; (3) when a whole linger passed with no
/// change, it calls `remove_entry_if_idle`. That call is atomic against
/// `subscribe` (both take the engine's writer lock): either a subscribe
/// came first, the removal does nothing and the task goes back to (1), or
/// the removal came first and the racing subscribe creates a *new* entry,
/// whose listener the subscriber starts with its own `start` (a subscriber
/// never holds the removed entry while subscribed to it). Removal clears
/// the listener: the handler's stream ends once drained, the handler
/// returns, and the task ends with [`TaskEnd::Unloaded`]. While the old
/// task drains, the new entry may already have its own task: the "one task"
/// rule is per entry.
///
/// # Examples
///
/// A room listener answering requests, unloaded 10 ms after its last
/// member leaves. `block_on` and a thread-sleeping timer stand in for your
/// runtime (with tokio: `tokio::spawn(task)` and `tokio::time::sleep`).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use futures::{executor::block_on, StreamExt};
/// use switchboard_async::prelude::*;
/// use switchboard_async::{Caps, Engine, Reply, Supervisor, TaskEnd};
///
/// enum Cmd {
///     Count(Reply<u32>),
/// }
///
/// let engine: Arc<Engine<u64, u64, (), Cmd>> = Arc::new(Engine::new());
/// let rooms = Supervisor::new(&engine, |mut commands, _room| async move {
///     let mut asked = 0;
///     while let Some(Cmd::Count(reply)) = commands.next().await {
///         asked += 1;
///         reply.send(asked);
///     }
/// })
/// .unload_when_idle(Duration::from_millis(10), |d| async move {
///     // Your runtime's timer; a thread sleep keeps this example bare.
///     std::thread::sleep(d);
/// });
///
/// engine.connect(1, Caps::NONE);
/// let room = engine.subscribe(7, 1).unwrap();
/// let task = rooms.start(&room).expect("no listener yet: this call starts it");
/// assert!(rooms.start(&room).is_none()); // already running
///
/// let end = block_on(async {
///     let client = async {
///         let pending = room.request(Cmd::Count).unwrap();
///         assert_eq!(pending.into_async().await, Ok(1));
///         engine.disconnect(1); // the room goes idle
///     };
///     futures::join!(task, client).0
/// });
/// assert!(matches!(end, TaskEnd::Unloaded));
/// assert!(engine.get_thread(7).is_none());
/// ```
pub struct Supervisor<T: Key, C: Key, S = (), M = (), D: Send + Sync + 'static = ()> {
    engine: Weak<Engine<T, C, S, M, D>>,
    handler: Arc<Handler<T, S, M>>,
    queue: QueueConfig,
    idle: Option<IdlePolicy>,
    /// The owner every listener of this supervisor is set with (see
    /// [`is_supervising`](Self::is_supervising)).
    owner: Arc<()>,
    /// Cluster mode: serve only while holding the thread's lease.
    cluster: Option<Arc<ClusterMode<T, M>>>,
}

impl<T: Key, C: Key, S, M, D: Send + Sync + 'static> Clone for Supervisor<T, C, S, M, D> {
    /// Another handle on the same supervisor (same handler, policy and
    /// owner).
    fn clone(&self) -> Self {
        Supervisor {
            engine: Weak::clone(&self.engine),
            handler: Arc::clone(&self.handler),
            queue: self.queue,
            idle: self.idle.clone(),
            owner: Arc::clone(&self.owner),
            cluster: self.cluster.clone(),
        }
    }
}

impl<T, C, S, M, D> Supervisor<T, C, S, M, D>
where
    T: Key,
    C: Key,
    S: Send + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    /// A supervisor for `engine`'s threads that serves each with `handler`,
    /// given the listener's command stream and the thread's entry. The
    /// handler should return once its stream ends (the listener was
    /// replaced or cleared, the thread removed or unloaded, the engine shut
    /// down); it may return earlier, which frees the slot for a new task.
    ///
    /// Listeners get unbounded queues and threads are never unloaded until
    /// [`queue`](Self::queue) and [`unload_when_idle`](Self::unload_when_idle)
    /// say otherwise. The supervisor and its tasks hold the engine weakly.
    pub fn new<H, F>(engine: &Arc<Engine<T, C, S, M, D>>, handler: H) -> Self
    where
        H: Fn(ListenerStream<M>, Arc<ThreadEntry<T, S, M>>) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        Supervisor {
            engine: Arc::downgrade(engine),
            handler: Arc::new(move |commands, entry| handler(commands, entry).boxed()),
            queue: QueueConfig::unbounded(),
            idle: None,
            owner: Arc::new(()),
            cluster: None,
        }
    }

    /// The queue every listener this supervisor starts gets (see
    /// [`QueueConfig`]).
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.queue = queue;
        self
    }

    /// The idle policy: once a supervised thread has no subscriber, wait
    /// `linger` (with the host's `sleep`, `tokio::time::sleep` say); if
    /// nobody joined meanwhile, unload the thread with
    /// [`Engine::remove_entry_if_idle`], which ends its listener and task
    /// ([`TaskEnd::Unloaded`]). A join during the linger re-arms it. See
    /// the type's docs for the race argument.
    pub fn unload_when_idle<Z, F>(mut self, linger: Duration, sleep: Z) -> Self
    where
        Z: Fn(Duration) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.idle = Some(IdlePolicy {
            linger,
            sleep: Arc::new(move |d| sleep(d).boxed()),
        });
        self
    }

    /// Cluster mode: serve a thread only on the node whose claim wins.
    ///
    /// Each task this supervisor starts then first claims its thread with
    /// `ownership` (after any earlier task of this supervisor for the same
    /// thread has let its lease go):
    ///
    /// * **Refused** (another node owns the thread, or the service failed):
    ///   the task clears its slot and ends with [`TaskEnd::Refused`] without
    ///   calling the handler; commands queued meanwhile are dropped (their
    ///   replies resolve with an error). Send to the owner through the
    ///   ownership service's routing instead.
    /// * **Won**: the handler runs as usual, and the commands routed to the
    ///   lease from other nodes are turned into `M` with `to_command` and
    ///   queued for the same listener, in the order the lease yields them.
    /// * **Lost** while serving: the listener is cleared and the handler
    ///   dropped at once, in the same poll that saw
    ///   [`OwnedLease::lost`] resolve — its stream ends and every queued
    ///   command's reply resolves with an error; nothing is drained. The
    ///   task ends with [`TaskEnd::Lost`]; starting again claims again.
    /// * **Ended** (the handler returned, the thread was
    ///   [unloaded](Self::unload_when_idle), or host code panicked): the
    ///   slot is cleared first, then the lease released (awaited), so
    ///   another node's next claim succeeds at once; then the task ends.
    ///
    /// `to_command`, like every method of `ownership`, runs inside the
    /// task's panic boundary: a panic there ends the task with
    /// [`TaskEnd::Panicked`] and a cleared slot (the lease is still
    /// released, unless the panic was in `release` itself).
    ///
    /// # Examples
    ///
    /// An in-memory ownership service where this node wins every claim of
    /// even threads; `block_on` stands in for your runtime.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::future::{self, BoxFuture, FutureExt};
    /// use futures::stream::{self, BoxStream, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Engine, OwnedLease, Ownership, Reply, Supervisor, TaskEnd};
    ///
    /// #[derive(Debug)]
    /// struct Taken;
    /// impl std::fmt::Display for Taken {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("owned by another node")
    ///     }
    /// }
    /// impl std::error::Error for Taken {}
    ///
    /// struct EvenThreads;
    /// struct Held;
    /// impl Ownership<u64> for EvenThreads {
    ///     type Lease = Held;
    ///     type Error = Taken;
    ///     fn claim(&self, t: u64) -> BoxFuture<'static, Result<Held, Taken>> {
    ///         future::ready(if t % 2 == 0 { Ok(Held) } else { Err(Taken) }).boxed()
    ///     }
    /// }
    /// impl OwnedLease for Held {
    ///     type Command = String; // what other nodes route here
    ///     fn commands(&mut self) -> BoxStream<'static, String> {
    ///         stream::pending().boxed()
    ///     }
    ///     fn lost(&self) -> BoxFuture<'static, ()> {
    ///         future::pending().boxed()
    ///     }
    ///     fn release(self) -> BoxFuture<'static, ()> {
    ///         future::ready(()).boxed()
    ///     }
    /// }
    ///
    /// enum Cmd {
    ///     Hello(Reply<&'static str>),
    ///     Routed(String),
    /// }
    ///
    /// let engine: Arc<Engine<u64, u64, (), Cmd>> = Arc::new(Engine::new());
    /// let rooms = Supervisor::new(&engine, |mut commands, _room| async move {
    ///     while let Some(cmd) = commands.next().await {
    ///         match cmd {
    ///             Cmd::Hello(reply) => reply.send("served here"),
    ///             Cmd::Routed(_) => {}
    ///         }
    ///     }
    /// })
    /// .cluster(EvenThreads, Cmd::Routed);
    ///
    /// // Thread 3 is owned elsewhere: its task serves nothing.
    /// let three = engine.thread(3);
    /// let end = futures::executor::block_on(rooms.start(&three).unwrap());
    /// assert!(matches!(end, TaskEnd::Refused(_)));
    /// assert!(!three.has_listener());
    ///
    /// // Thread 4 is ours.
    /// let four = engine.thread(4);
    /// let task = rooms.start(&four).unwrap();
    /// futures::executor::block_on(async {
    ///     let client = async {
    ///         let pending = four.request(Cmd::Hello).unwrap();
    ///         assert_eq!(pending.into_async().await, Ok("served here"));
    ///         assert!(rooms.serves(&four));
    ///         engine.remove_thread(4); // the handler's stream ends
    ///     };
    ///     let (end, ()) = futures::join!(task, client);
    ///     assert!(matches!(end, TaskEnd::Ended)); // and the lease was released
    /// });
    /// ```
    pub fn cluster<O, F>(mut self, ownership: O, to_command: F) -> Self
    where
        O: Ownership<T>,
        F: Fn(<O::Lease as OwnedLease>::Command) -> M + Send + Sync + 'static,
    {
        self.cluster = Some(Arc::new(ClusterMode::new(ownership, to_command)));
        self
    }

    /// Starts `entry`'s supervised listener unless a listener is current:
    /// the atomic get-or-start. Of any number of concurrent callers, the one
    /// that started it gets `Some(task)` and must spawn (or otherwise poll)
    /// it; every other gets `None`. Also `None` once the engine was dropped
    /// or [shut down](switchboard_core::Engine::shutdown).
    ///
    /// A listener started some other way (`set_listener`) counts as
    /// current: then this returns `None` and supervises nothing.
    pub fn start(&self, entry: &Arc<ThreadEntry<T, S, M>>) -> Option<SupervisedTask> {
        let engine = self.engine.upgrade()?;
        if engine.is_shut_down() {
            return None;
        }
        let listener = entry.set_listener_if_none_with(&self.owner, self.queue)?;
        let generation = listener.generation();
        let run = Run {
            commands: listener.into_stream(),
            handler: Arc::clone(&self.handler),
            idle: self.idle.clone().map(|policy| Unload {
                engine: Weak::clone(&self.engine),
                policy,
            }),
            slot: ClearOnDrop {
                entry: Arc::clone(entry),
                generation,
            },
            cluster: self.cluster.clone(),
        };
        Some(SupervisedTask::new(run.run().boxed(), generation))
    }

    /// Whether `entry`'s current listener was started by this supervisor
    /// (or a clone of it). In cluster mode that includes a task still
    /// waiting for its claim; see [`serves`](Self::serves).
    pub fn is_supervising(&self, entry: &ThreadEntry<T, S, M>) -> bool {
        entry.listener_matches(&self.owner)
    }

    /// Whether this supervisor serves `entry` now: its current listener is
    /// this supervisor's, and in [cluster mode](Self::cluster) its task
    /// won the thread's claim and has not lost the lease or given it up.
    /// Without cluster mode, the same as
    /// [`is_supervising`](Self::is_supervising).
    pub fn serves(&self, entry: &ThreadEntry<T, S, M>) -> bool {
        if !self.is_supervising(entry) {
            return false;
        }
        match &self.cluster {
            None => true,
            Some(mode) => mode.serves(entry, entry.generation()),
        }
    }
}

impl<T: Key, C: Key, S, M, D: Send + Sync + 'static> fmt::Debug for Supervisor<T, C, S, M, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("queue", &self.queue)
            .field("linger", &self.idle.as_ref().map(|p| p.linger))
            .field("engine_alive", &(self.engine.strong_count() > 0))
            .field("cluster", &self.cluster.is_some())
            .finish_non_exhaustive()
    }
}

/// What one supervised task owns.
struct Run<T: Key, C: Key, S, M, D: Send + Sync + 'static> {
    commands: ListenerStream<M>,
    handler: Arc<Handler<T, S, M>>,
    idle: Option<Unload<T, C, S, M, D>>,
    slot: ClearOnDrop<T, S, M>,
    cluster: Option<Arc<ClusterMode<T, M>>>,
}

impl<T, C, S, M, D> Run<T, C, S, M, D>
where
    T: Key,
    C: Key,
    S: Send + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    async fn run(self) -> TaskEnd {
        let Run {
            commands,
            handler,
            idle,
            slot,
            cluster,
        } = self;
        let entry = Arc::clone(&slot.entry);
        let serve = async move {
            // The handler is called inside the task, so that a panic in
            // the call itself is caught too.
            let handler = handler(commands, Arc::clone(&entry));
            let Some(idle) = idle else {
                handler.await;
                return TaskEnd::Ended;
            };
            match future::select(handler, Box::pin(idle.run(entry))).await {
                Either::Left(((), _)) => TaskEnd::Ended,
                Either::Right((unloaded, handler)) => {
                    // Unloading cleared the listener: the handler's stream
                    // ends once drained, and it returns.
                    handler.await;
                    if unloaded {
                        TaskEnd::Unloaded
                    } else {
                        TaskEnd::Ended
                    }
                }
            }
        };
        if let Some(mode) = cluster {
            // Claims first; clears the slot before releasing the lease.
            return mode.run(slot, serve).await;
        }
        let end = match AssertUnwindSafe(serve).catch_unwind().await {
            Ok(end) => end,
            Err(payload) => TaskEnd::Panicked(payload),
        };
        // The slot is free before the host sees the end.
        drop(slot);
        end
    }
}

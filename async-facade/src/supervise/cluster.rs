//! Cluster mode: a supervised listener serves only while its node holds
//! the thread's lease in some cluster-wide ownership service (Redis, in
//! `switchboard-redis`), and stops the moment the lease is lost.
//!
//! The facade knows nothing of Redis: the [`Ownership`] trait is the whole
//! contract, runtime-free and boxed-future based, and the task below is
//! plain futures glue over it.
//!
//! # One task's life in cluster mode
//!
//! | phase | the slot | the lease | leaves by |
//! |---|---|---|---|
//! | waiting | set (commands queue) | held by an earlier task of this supervisor for the same thread, if any | that task ended (its lease released or dropped) |
//! | claiming | set (commands queue) | being claimed | won: serving; refused or failed: the slot cleared, [`TaskEnd::Refused`] |
//! | serving | set, handler running, routed commands forwarded into it | held | handler returned (or the thread unloaded): releasing; lease lost: [`TaskEnd::Lost`]; host code panicked: releasing, then [`TaskEnd::Panicked`] |
//! | releasing | cleared | released (awaited) | the task's output |
//!
//! Only a task in "serving" counts in [`Supervisor::serves`](crate::Supervisor::serves).

use super::task::ClearOnDrop;
use super::task::TaskEnd;
use futures::channel::oneshot;
use futures::future::{self, BoxFuture, Either, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use switchboard_core::{Key, ThreadEntry};

use crate::entry::EntryExt;

/// A cluster-wide ownership service: which node may serve a thread.
/// [`Supervisor::cluster`](crate::Supervisor::cluster) takes one, and then
/// starts a thread's listener only on the node whose claim wins.
///
/// `switchboard-redis` implements it with fenced leases in Redis
/// (`switchboard_redis::Cluster`); tests implement it in memory.
///
/// # Contract
///
/// * **At most one live lease per thread**, cluster-wide: `claim(t)`
///   succeeds only if no other live lease of `t` exists — a lease of this
///   very service instance included (the supervisor makes sure its own
///   tasks never claim a thread they already hold).
/// * **`lost` is prompt and final.** It resolves once the lease can no
///   longer act (expired, taken over, refused by the service), early
///   enough that no other lease of the thread could have been claimed
///   before it resolved plus the host's scheduling delay; once resolved it
///   stays resolved. It must also resolve after `release`.
/// * **Routed commands** for the thread, sent from any node, come out of
///   `commands()`, each at most once and only from the lease it was
///   routed to; the stream should end when the lease is lost.
/// * **`release` frees the thread at once**: the next `claim` of it, from
///   any node, succeeds. It should be bounded in time (a failed release
///   lets the lease expire on its own).
///
/// The supervisor calls these methods inside its task's panic boundary: an
/// implementation that panics ends the task with
/// [`TaskEnd::Panicked`] and a cleared slot, never unwinding into the
/// executor.
pub trait Ownership<T>: Send + Sync + 'static {
    /// The right to serve one thread, while not lost.
    type Lease: OwnedLease;
    /// Why a claim did not win (another node owns the thread, or the
    /// service could not be reached). It reaches the host boxed, in
    /// [`TaskEnd::Refused`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// Tries to become `t`'s owner.
    ///
    /// # Errors
    ///
    /// `Self::Error` if another live lease of `t` exists, or the service
    /// did not answer; no lease is then held.
    fn claim(&self, t: T) -> BoxFuture<'static, Result<Self::Lease, Self::Error>>;
}

/// A lease won by [`Ownership::claim`]: what the supervisor does with it
/// while its listener serves.
pub trait OwnedLease: Send + 'static {
    /// A command routed to this lease from any node (the supervisor turns
    /// each into the listener's `M` with the host's function).
    type Command: Send + 'static;

    /// The commands routed to this lease's thread. Called at most once,
    /// right after the claim. The stream should end once the lease is lost.
    fn commands(&mut self) -> BoxStream<'static, Self::Command>;

    /// Resolves once the lease can no longer act (see the contract on
    /// [`Ownership`]). Called once, right after the claim; the future does
    /// not borrow the lease.
    fn lost(&self) -> BoxFuture<'static, ()>;

    /// Gives the lease up now, so that the next claim of the thread
    /// succeeds at once. Called only on a lease whose `lost` has not
    /// resolved, after the listener was cleared.
    fn release(self) -> BoxFuture<'static, ()>;
}

/// Boxed error of a refused claim.
type Refusal = Box<dyn std::error::Error + Send + Sync + 'static>;

/// [`Ownership`] with its lease's commands already turned into `M`.
trait ErasedOwnership<T, M>: Send + Sync {
    fn claim(&self, t: T) -> BoxFuture<'static, Result<Box<dyn ErasedLease<M>>, Refusal>>;
}

trait ErasedLease<M>: Send {
    fn commands(&mut self) -> BoxStream<'static, M>;
    fn lost(&self) -> BoxFuture<'static, ()>;
    fn release(self: Box<Self>) -> BoxFuture<'static, ()>;
}

struct Erased<O, F> {
    ownership: O,
    to_command: Arc<F>,
}

struct ErasedWith<L, F> {
    lease: L,
    to_command: Arc<F>,
}

impl<T, M, O, F> ErasedOwnership<T, M> for Erased<O, F>
where
    O: Ownership<T>,
    F: Fn(<O::Lease as OwnedLease>::Command) -> M + Send + Sync + 'static,
    M: Send + 'static,
{
    fn claim(&self, t: T) -> BoxFuture<'static, Result<Box<dyn ErasedLease<M>>, Refusal>> {
        let to_command = Arc::clone(&self.to_command);
        self.ownership
            .claim(t)
            .map(move |r| match r {
                Ok(lease) => Ok(Box::new(ErasedWith { lease, to_command }) as Box<_>),
                Err(e) => Err(Box::new(e) as Refusal),
            })
            .boxed()
    }
}

impl<M, L, F> ErasedLease<M> for ErasedWith<L, F>
where
    L: OwnedLease,
    F: Fn(L::Command) -> M + Send + Sync + 'static,
    M: Send + 'static,
{
    fn commands(&mut self) -> BoxStream<'static, M> {
        let to_command = Arc::clone(&self.to_command);
        self.lease.commands().map(move |c| to_command(c)).boxed()
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        self.lease.lost()
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, ()> {
        self.lease.release()
    }
}

/// What this supervisor's tasks know of each thread they claim.
struct Held {
    /// The task's number (unique per supervisor).
    task: u64,
    /// Its entry (address; the task keeps the entry alive while this is
    /// in the map) and listener generation.
    entry: usize,
    generation: u64,
    /// Claim won and not yet lost or given up.
    serving: bool,
    /// Resolves (cancelled) once the task has released or dropped its
    /// lease; taken by the next task of the same thread.
    done: Option<oneshot::Receiver<()>>,
}

/// A supervisor's cluster mode, shared by its clones and tasks.
pub(super) struct ClusterMode<T, M> {
    ownership: Box<dyn ErasedOwnership<T, M>>,
    tasks: Mutex<HashMap<T, Held>>,
    next_task: AtomicU64,
}

fn entry_addr<T, S, M>(entry: &ThreadEntry<T, S, M>) -> usize {
    entry as *const ThreadEntry<T, S, M> as usize
}

/// Runs `f`'s future inside the task's panic boundary.
async fn catch<F: Future>(f: F) -> Result<F::Output, Box<dyn Any + Send + 'static>> {
    AssertUnwindSafe(f).catch_unwind().await
}

/// Takes `t`'s entry out of the map when the task ends, however it ends
/// (returned, or dropped unfinished), if it is still this task's; dropping
/// `done` then tells the next task of the thread that the lease is gone.
struct HeldGuard<'a, T: Key, M: Send + 'static> {
    mode: &'a ClusterMode<T, M>,
    t: T,
    task: u64,
    _done: oneshot::Sender<()>,
}

impl<T: Key, M: Send + 'static> Drop for HeldGuard<'_, T, M> {
    fn drop(&mut self) {
        let mut tasks = self.mode.lock();
        if tasks.get(&self.t).is_some_and(|h| h.task == self.task) {
            tasks.remove(&self.t);
        }
    }
}

impl<T: Key, M: Send + 'static> ClusterMode<T, M> {
    pub(super) fn new<O, F>(ownership: O, to_command: F) -> Self
    where
        O: Ownership<T>,
        F: Fn(<O::Lease as OwnedLease>::Command) -> M + Send + Sync + 'static,
    {
        ClusterMode {
            ownership: Box::new(Erased {
                ownership,
                to_command: Arc::new(to_command),
            }),
            tasks: Mutex::default(),
            next_task: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<T, Held>> {
        // A panic never happens under this lock (no host code runs there).
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_serving(&self, t: T, task: u64, serving: bool) {
        if let Some(h) = self.lock().get_mut(&t).filter(|h| h.task == task) {
            h.serving = serving;
        }
    }

    /// Whether a task of this supervisor serves `entry` at `generation`
    /// with a lease it won and has not lost.
    pub(super) fn serves<S>(&self, entry: &ThreadEntry<T, S, M>, generation: u64) -> bool {
        self.lock().get(&entry.id()).is_some_and(|h| {
            h.serving && h.entry == entry_addr(entry) && h.generation == generation
        })
    }

    /// One task in cluster mode (see the module's table): wait for this
    /// supervisor's earlier lease of the thread, claim, serve with `serve`
    /// (the handler and idle policy) while forwarding routed commands and
    /// racing `lost`, then clear the slot and release.
    pub(super) async fn run<S, F>(&self, slot: ClearOnDrop<T, S, M>, serve: F) -> TaskEnd
    where
        S: Send + 'static,
        F: Future<Output = TaskEnd> + Send,
    {
        let entry = Arc::clone(&slot.entry);
        let (t, generation) = (entry.id(), slot.generation);
        // Relaxed: only uniqueness matters.
        let task = self.next_task.fetch_add(1, Ordering::Relaxed);
        let (done, done_rx) = oneshot::channel();
        let earlier = self
            .lock()
            .insert(
                t,
                Held {
                    task,
                    entry: entry_addr(&entry),
                    generation,
                    serving: false,
                    done: Some(done_rx),
                },
            )
            .and_then(|h| h.done);
        let _held = HeldGuard {
            mode: self,
            t,
            task,
            _done: done,
        };
        // Waiting: our own earlier lease of t (an unloaded entry still
        // draining) would refuse our claim.
        if let Some(earlier) = earlier {
            let _ = earlier.await;
        }
        if entry.generation() != generation || !entry.has_listener() {
            // Cleared while waiting (removed, shut down): nothing to serve.
            return TaskEnd::Ended;
        }

        // Claiming.
        // The call itself inside the boundary too: it is host code.
        let mut lease = match catch(async { self.ownership.claim(t).await }).await {
            Ok(Ok(lease)) => lease,
            Ok(Err(refused)) => {
                drop(slot);
                return TaskEnd::Refused(refused);
            }
            Err(panic) => {
                drop(slot);
                return TaskEnd::Panicked(panic);
            }
        };

        // Serving.
        self.set_serving(t, task, true);
        let outcome = catch(async {
            let lost = lease.lost();
            let routed = lease.commands();
            let forward = forward(routed, &entry, generation);
            let serving =
                future::select(Box::pin(serve), Box::pin(forward)).map(|either| match either {
                    Either::Left((end, _)) => end,
                    // Forwarding never completes; were it to, so would this.
                    Either::Right(((), _)) => TaskEnd::Ended,
                });
            match future::select(serving, lost).await {
                Either::Left((end, _)) => end,
                Either::Right(((), serving)) => {
                    // Lost: stop serving now. Clearing closes the queue;
                    // dropping the handler drops its stream and with it
                    // every queued command (their replies resolve with an
                    // error) — it drains nothing.
                    self.set_serving(t, task, false);
                    entry.clear_listener_if(generation);
                    drop(serving);
                    TaskEnd::Lost
                }
            }
        })
        .await;
        self.set_serving(t, task, false);
        // The slot is free before the lease is: no other node serves t
        // while this one still does.
        drop(slot);
        let end = match outcome {
            Ok(TaskEnd::Lost) => return TaskEnd::Lost,
            Ok(end) => end,
            Err(panic) => TaskEnd::Panicked(panic),
        };

        // Releasing.
        match catch(async move { lease.release().await }).await {
            Ok(()) => end,
            // The first panic wins; a panic in release after a clean end
            // is reported.
            Err(panic) if !end.is_panicked() => TaskEnd::Panicked(panic),
            Err(_) => end,
        }
    }
}

/// Forwards routed commands into `entry`'s listener at `generation` while
/// it is current; never completes (the handler's end ends the serving).
/// A command that finds no listener is dropped (a request's reply then
/// resolves with an error on the sender's side).
async fn forward<T: Key, S, M>(
    mut routed: BoxStream<'static, M>,
    entry: &ThreadEntry<T, S, M>,
    generation: u64,
) {
    while let Some(m) = routed.next().await {
        if entry.generation() != generation {
            break;
        }
        if entry.send_async(m).await.is_err() {
            break;
        }
    }
    drop(routed);
    future::pending::<()>().await;
}

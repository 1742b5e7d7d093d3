//! How a supervised task ends, and the task itself as a fused future.

use crate::fused::Done;
use futures::future::{BoxFuture, FusedFuture, FutureExt};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use switchboard_core::ThreadEntry;

/// How a [`SupervisedTask`] ended.
#[non_exhaustive]
pub enum TaskEnd {
    /// The handler returned: its stream ended (the listener was replaced or
    /// cleared, the thread removed, the engine shut down) or it returned
    /// early.
    Ended,
    /// The idle policy unloaded the thread; the handler then drained its
    /// stream and returned.
    Unloaded,
    /// The handler, or the host's sleep, panicked: the payload, as
    /// [`std::panic::catch_unwind`] gives it. The slot was cleared.
    Panicked(Box<dyn Any + Send + 'static>),
    /// Cluster mode ([`Supervisor::cluster`](crate::Supervisor::cluster)):
    /// the claim was refused (another node owns the thread) or failed (the
    /// ownership service did not answer): the [`Ownership`](crate::Ownership)'s
    /// error, boxed. The task served nothing (the handler was never
    /// called) and the slot was cleared: commands queued meanwhile were
    /// dropped, their replies resolve with an error.
    Refused(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Cluster mode: the lease was lost while serving. The listener was
    /// cleared and the handler dropped at once, without draining: commands
    /// still queued were dropped and their replies resolve with an error.
    /// The lease was not released (it had ended).
    Lost,
}

impl TaskEnd {
    /// Whether the task panicked.
    pub fn is_panicked(&self) -> bool {
        matches!(self, TaskEnd::Panicked(_))
    }

    /// Why the claim was refused, if it was ([`TaskEnd::Refused`]):
    /// downcast it to the ownership's error type to see who owns the
    /// thread.
    pub fn refusal(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            TaskEnd::Refused(e) => Some(&**e),
            _ => None,
        }
    }

    /// The panic message, if the task panicked with a string payload (as
    /// `panic!("...")` does).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskEnd::Panicked(payload) => payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }
}

impl fmt::Debug for TaskEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskEnd::Ended => f.write_str("Ended"),
            TaskEnd::Unloaded => f.write_str("Unloaded"),
            TaskEnd::Refused(e) => f.debug_tuple("Refused").field(&e.to_string()).finish(),
            TaskEnd::Lost => f.write_str("Lost"),
            TaskEnd::Panicked(_) => f
                .debug_tuple("Panicked")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

/// A supervised listener's task, made by
/// [`Supervisor::start`](crate::Supervisor::start) for the one caller that
/// started it: spawn it on your executor. It resolves to how it ended
/// ([`TaskEnd`]), after the thread's slot was cleared — and in cluster
/// mode, after its lease was released (unless it was lost).
///
/// It is fused: once complete, [`is_terminated`](FusedFuture::is_terminated)
/// is true and a further poll returns `Pending`.
///
/// # Cancel safety
///
/// Dropping it unfinished (its task aborted, the runtime shut down) drops
/// the handler and clears the slot if it still holds its generation, so a
/// later [`Supervisor::start`](crate::Supervisor::start) starts a new task;
/// commands still queued are dropped with the listener (their replies
/// resolve to an error). In cluster mode the lease is dropped unreleased:
/// the ownership service lets it expire (with `switchboard-redis`, after
/// the lease length), and until then the thread's next claim is refused.
pub struct SupervisedTask {
    task: BoxFuture<'static, TaskEnd>,
    generation: u64,
    done: Done,
}

impl SupervisedTask {
    pub(super) fn new(task: BoxFuture<'static, TaskEnd>, generation: u64) -> Self {
        SupervisedTask {
            task,
            generation,
            done: Done::default(),
        }
    }

    /// The generation of the listener this task serves.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl Future for SupervisedTask {
    type Output = TaskEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskEnd> {
        let this = self.get_mut();
        let task = &mut this.task;
        this.done.poll(|| task.poll_unpin(cx))
    }
}

impl FusedFuture for SupervisedTask {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

impl fmt::Debug for SupervisedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisedTask")
            .field("generation", &self.generation)
            .field("done", &self.done.is_done())
            .finish_non_exhaustive()
    }
}

/// Clears its listener's slot when dropped, if still its generation: what
/// a task holds so that however it ends, its slot is free again.
pub(super) struct ClearOnDrop<T: Copy, S, M> {
    pub(super) entry: Arc<ThreadEntry<T, S, M>>,
    pub(super) generation: u64,
}

impl<T: Copy, S, M> Drop for ClearOnDrop<T, S, M> {
    fn drop(&mut self) {
        self.entry.clear_listener_if(self.generation);
    }
}

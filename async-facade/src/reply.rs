//! Awaiting the answer to a request.

use crate::fused::Done;
use futures::future::FusedFuture;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{PendingReply, ReplyError};

/// Awaits a [`PendingReply`].
pub trait PendingReplyExt<R> {
    /// The answer, as a future.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::{executor::block_on, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Engine, Reply};
    ///
    /// enum Cmd {
    ///     Double(u32, Reply<u32>),
    /// }
    ///
    /// let engine: Engine<u64, u64, (), Cmd> = Engine::new();
    /// let entry = engine.thread(1);
    /// let mut commands = entry.set_listener(&Arc::new(())).into_stream();
    /// let answer = entry.request(|reply| Cmd::Double(21, reply)).unwrap().into_async();
    ///
    /// block_on(async {
    ///     let Some(Cmd::Double(n, reply)) = commands.next().await else { unreachable!() };
    ///     reply.send(n * 2);
    ///     assert_eq!(answer.await, Ok(42));
    /// });
    /// ```
    fn into_async(self) -> ReplyFuture<R>;
}

impl<R> PendingReplyExt<R> for PendingReply<R> {
    fn into_async(self) -> ReplyFuture<R> {
        ReplyFuture {
            pending: self,
            done: Done::default(),
        }
    }
}

/// The answer to a request; made by [`PendingReplyExt::into_async`].
///
/// Resolves exactly once: `Ok(r)` when the listener calls
/// [`Reply::send`](crate::Reply::send), or `Err(ReplyError)` when the
/// [`Reply`](crate::Reply) is dropped unsent (the command was discarded, or
/// its listener was replaced, cleared or removed first). Woken only by that
/// event. Polled again after it resolved, it returns `Err(ReplyError)`.
///
/// # Errors
///
/// [`ReplyError`] if the `Reply` was dropped unsent.
///
/// # Cancel safety
///
/// The answer is taken only by the poll that returns it, so polling the
/// future by `&mut` (it is `Unpin`) in a `select!` that another branch wins
/// loses nothing: poll it again later. Dropping the future itself abandons
/// the request: the listener's `send` then drops the answer (nobody else
/// was waiting for it). [`into_inner`](Self::into_inner) gives the pending
/// reply back instead.
pub struct ReplyFuture<R> {
    pending: PendingReply<R>,
    done: Done,
}

impl<R> ReplyFuture<R> {
    /// Gives the pending reply back, e.g. to wait for it with a blocking
    /// [`PendingReply::wait`].
    pub fn into_inner(self) -> PendingReply<R> {
        self.pending
    }
}

// Nothing in the future is structurally pinned.
impl<R> Unpin for ReplyFuture<R> {}

impl<R> Future for ReplyFuture<R> {
    type Output = Result<R, ReplyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let pending = &mut this.pending;
        this.done.poll(|| pending.poll_reply(cx))
    }
}

impl<R> FusedFuture for ReplyFuture<R> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

impl<R> fmt::Debug for ReplyFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyFuture")
            .field("pending", &self.pending)
            .field("done", &self.done)
            .finish()
    }
}

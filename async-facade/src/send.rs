//! Waiting for room in a bounded listener queue.

use crate::fused::Done;
use futures::future::FusedFuture;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{NoListener, PendingSend, ThreadEntry};

/// A command on its way to a thread's listener; made by
/// [`EntryExt::send_async`](crate::EntryExt::send_async).
///
/// Resolves once the command is queued, or with the command given back
/// ([`NoListener`]) if there is no listener to queue it for. While the
/// queue is full it is woken when the listener receives a command (making
/// room) or when the listener is replaced or cleared; never otherwise. Each
/// poll registers only that poll's waker: polled by a second task, the
/// second task is the one woken.
///
/// # Errors
///
/// [`NoListener`] with the command inside, as described above.
///
/// # Cancel safety
///
/// The command is queued only in the poll that returns `Ready(Ok(()))`.
/// Dropping the future before that sends nothing: the command is dropped
/// with it, and its waker registration is freed. To keep the command
/// instead, call [`into_inner`](Self::into_inner), which gives it back
/// unless it was already queued. Polled by `&mut` in a `select!` loop (it is
/// `Unpin`), a losing branch loses nothing.
pub struct SendAsync<'a, E: ?Sized, M> {
    entry: &'a E,
    pending: PendingSend<M>,
    done: Done,
}

impl<'a, E: ?Sized, M> SendAsync<'a, E, M> {
    pub(crate) fn new(entry: &'a E, m: M) -> Self {
        SendAsync {
            entry,
            pending: PendingSend::new(m),
            done: Done::default(),
        }
    }

    /// The command, if it was not queued (nor given back in an error).
    pub fn into_inner(self) -> Option<M> {
        self.pending.into_inner()
    }
}

// Nothing in the future is structurally pinned.
impl<E: ?Sized, M> Unpin for SendAsync<'_, E, M> {}

impl<T: Copy, S, M> Future for SendAsync<'_, ThreadEntry<T, S, M>, M> {
    type Output = Result<(), NoListener<M>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (entry, pending) = (this.entry, &mut this.pending);
        this.done.poll(|| entry.poll_send(cx, pending))
    }
}

impl<T: Copy, S, M> FusedFuture for SendAsync<'_, ThreadEntry<T, S, M>, M> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

impl<E: ?Sized, M> fmt::Debug for SendAsync<'_, E, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendAsync")
            .field("pending", &self.pending)
            .field("done", &self.done)
            .finish()
    }
}

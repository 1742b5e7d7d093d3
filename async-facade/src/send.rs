//! Waiting for room in a bounded listener queue.

use futures::future::FusedFuture;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{NoListener, PendingSend, ThreadEntry};

/// Sends to a thread's listener from async code.
pub trait EntryExt<M> {
    /// Queues `m` for the current listener, waiting (without blocking a
    /// worker thread) for room if its bounded queue is full. On the default
    /// unbounded queue it completes at the first poll.
    ///
    /// # Errors
    ///
    /// The future resolves to [`NoListener`] with `m` inside if there is no
    /// current listener, or if the listener whose full queue it waited on
    /// was replaced or cleared meanwhile (it is never sent to a later one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::{executor::block_on, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Engine, QueueConfig};
    ///
    /// let engine: Engine<u64, u64, (), u32> = Engine::new();
    /// let entry = engine.thread(1);
    /// let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
    /// let mut commands = listener.into_stream();
    ///
    /// block_on(async {
    ///     entry.send_async(1).await.unwrap(); // room: at once
    ///     let second = entry.send_async(2); // full: waits for the listener
    ///     let (sent, first) = futures::join!(second, commands.next());
    ///     assert_eq!((sent, first), (Ok(()), Some(1)));
    ///     assert_eq!(commands.next().await, Some(2));
    /// });
    /// ```
    fn send_async(&self, m: M) -> SendAsync<'_, Self, M>;
}

impl<T: Copy, S, M> EntryExt<M> for ThreadEntry<T, S, M> {
    fn send_async(&self, m: M) -> SendAsync<'_, Self, M> {
        SendAsync {
            entry: self,
            pending: PendingSend::new(m),
            done: false,
        }
    }
}

/// A command on its way to a thread's listener; made by
/// [`EntryExt::send_async`].
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
    done: bool,
}

impl<E: ?Sized, M> SendAsync<'_, E, M> {
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
        let out = this.entry.poll_send(cx, &mut this.pending);
        this.done = out.is_ready();
        out
    }
}

impl<T: Copy, S, M> FusedFuture for SendAsync<'_, ThreadEntry<T, S, M>, M> {
    fn is_terminated(&self) -> bool {
        self.done
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

//! A listener's command queue as a [`Stream`].

use crate::fused::Done;
use futures::stream::{FusedStream, Stream};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{CancelToken, Listener};

/// Turns a [`Listener`] into a [`Stream`] of its commands.
pub trait ListenerExt<M> {
    /// The commands of this listener, in queue order. The stream ends once
    /// the listener was replaced or cleared and every command queued before
    /// that was yielded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::{executor::block_on, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::Engine;
    ///
    /// let engine: Engine<u64, u64, (), &str> = Engine::new();
    /// let entry = engine.thread(1);
    /// let mut commands = entry.set_listener(&Arc::new(())).into_stream();
    /// entry.send("hello").unwrap();
    /// entry.send("world").unwrap();
    /// entry.clear_listener(); // closes the queue; queued commands stay
    ///
    /// let all: Vec<&str> = block_on(commands.by_ref().collect());
    /// assert_eq!(all, ["hello", "world"]);
    /// assert!(commands.is_cancelled());
    /// ```
    fn into_stream(self) -> ListenerStream<M>;
}

impl<M> ListenerExt<M> for Listener<M> {
    fn into_stream(self) -> ListenerStream<M> {
        ListenerStream {
            listener: self,
            done: Done::default(),
        }
    }
}

/// The commands of one [`Listener`], as a [`Stream`]; made by
/// [`ListenerExt::into_stream`].
///
/// Woken by every send to the listener and by its queue closing (the
/// listener replaced or cleared); never by anything else. It owns the
/// listener, so it is the queue's only consumer. Ends (and stays ended) once
/// the queue is closed and drained. Dropping the stream drops the listener,
/// which frees the thread's slot if it is still current (see
/// [`Listener`]): a task that ends, however it ends, lets a new listener
/// start.
///
/// # Cancel safety
///
/// A command leaves the queue only in the poll that returns it. Dropping a
/// pending `next()` (say, the losing branch of a `select!`) loses no
/// command: the next poll returns it.
pub struct ListenerStream<M> {
    listener: Listener<M>,
    /// Set once the queue reported closed and drained.
    done: Done,
}

impl<M> ListenerStream<M> {
    /// The listener this stream reads.
    pub fn listener(&self) -> &Listener<M> {
        &self.listener
    }

    /// Gives the listener back (commands not yet yielded stay queued).
    pub fn into_inner(self) -> Listener<M> {
        self.listener
    }

    /// The listener's generation (see [`Listener::generation`]).
    pub fn generation(&self) -> u64 {
        self.listener.generation()
    }

    /// Whether the listener was replaced or cleared. Commands queued before
    /// that are still yielded.
    pub fn is_cancelled(&self) -> bool {
        self.listener.is_cancelled()
    }

    /// The listener's cancellation token (see [`Listener::token`]); await
    /// it with [`CancelTokenExt::cancelled`](crate::CancelTokenExt::cancelled).
    pub fn token(&self) -> CancelToken {
        self.listener.token()
    }
}

// Nothing in the stream is structurally pinned: it is polled through
// `&mut self`, whatever `M` is.
impl<M> Unpin for ListenerStream<M> {}

impl<M> Stream for ListenerStream<M> {
    type Item = M;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<M>> {
        let this = self.get_mut();
        let listener = &mut this.listener;
        // A closed queue ends the stream.
        this.done
            .poll_next(|| listener.poll_recv(cx).map(Result::ok), |_| false)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, if self.done.is_done() { Some(0) } else { None })
    }
}

impl<M> FusedStream for ListenerStream<M> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

impl<M> fmt::Debug for ListenerStream<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerStream")
            .field("listener", &self.listener)
            .field("done", &self.done.is_done())
            .finish()
    }
}

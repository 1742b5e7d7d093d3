//! The one completion rule of every future and stream in this crate.
//!
//! * A **future** completes once: the poll that returns `Ready` is its
//!   last. From then on [`FusedFuture::is_terminated`] is `true` and a
//!   further poll returns `Pending` without touching the engine (it has
//!   nothing more to give; `futures::future::Fuse` behaves the same way).
//! * A **stream** yields its items, then `None`; from then on
//!   [`FusedStream::is_terminated`] is `true` and every further poll
//!   returns `None` at once, again without touching the engine.
//!
//! [`Done`] keeps that rule for each type, so no type repeats it by hand.
//!
//! [`FusedFuture::is_terminated`]: futures::future::FusedFuture::is_terminated
//! [`FusedStream::is_terminated`]: futures::stream::FusedStream::is_terminated

use std::task::Poll;

/// Whether a future or stream has completed (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Done(bool);

impl Done {
    /// Polls a future's core hook unless the future completed before.
    #[inline]
    pub(crate) fn poll<T>(&mut self, poll: impl FnOnce() -> Poll<T>) -> Poll<T> {
        if self.0 {
            return Poll::Pending;
        }
        let out = poll();
        self.0 = out.is_ready();
        out
    }

    /// Polls a stream's next item unless the stream ended before; it ends
    /// with `None`, or after an item `last` says is its last.
    #[inline]
    pub(crate) fn poll_next<T>(
        &mut self,
        poll: impl FnOnce() -> Poll<Option<T>>,
        last: impl FnOnce(&T) -> bool,
    ) -> Poll<Option<T>> {
        if self.0 {
            return Poll::Ready(None);
        }
        let out = poll();
        if let Poll::Ready(item) = &out {
            self.0 = match item {
                Some(item) => last(item),
                None => true,
            };
        }
        out
    }

    /// Whether it completed (a future) or ended (a stream).
    #[inline]
    pub(crate) fn is_done(self) -> bool {
        self.0
    }
}

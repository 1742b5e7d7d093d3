//! The change feed as a stream.

use crate::fused::Done;
use futures::stream::{FusedStream, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{ChangeBatch, ChangeFeed, Key, Lagged};

/// Follows a [`ChangeFeed`] asynchronously.
pub trait ChangeFeedExt<T: Key, C: Key> {
    /// The feed's batches as a [`Stream`]: every batch, in version order,
    /// each once its version is published; `Err(Lagged)` once if the feed
    /// fell behind the engine's change log, and then the stream ends
    /// (resync with a fresh snapshot and feed).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Caps, Change, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let mut changes = engine.changes().into_stream();
    /// engine.connect(1, Caps::NONE);
    /// let batch = block_on(changes.next()).unwrap().unwrap();
    /// assert_eq!(batch.version, 1);
    /// assert_eq!(batch.changes, [Change::Connected { c: 1, caps: Caps::NONE }]);
    /// ```
    fn into_stream(self) -> ChangeStream<T, C>;
}

impl<T: Key, C: Key> ChangeFeedExt<T, C> for ChangeFeed<T, C> {
    fn into_stream(self) -> ChangeStream<T, C> {
        ChangeStream {
            feed: self,
            done: Done::default(),
        }
    }
}

/// A [`ChangeFeed`] as a `Stream<Item = Result<ChangeBatch<T, C>, Lagged>>`;
/// made by [`ChangeFeedExt::into_stream`].
///
/// Yields one batch per published version, in order, with no gap. If the
/// feed falls behind the engine's retained change log, it yields
/// `Err(Lagged)` once and ends. While the engine lives and the feed keeps
/// up, it never ends. Woken by the publish of the version it waits for
/// (its waker is registered with the core's change log), never by a timer
/// or a helper thread, and never without a new batch.
///
/// # Cancel safety
///
/// A batch leaves the feed only in the poll that yields it, so dropping a
/// pending `next()` loses nothing: the next poll yields the same batch.
/// Dropping the stream removes its waker from the log.
#[derive(Debug)]
pub struct ChangeStream<T: Key, C: Key> {
    feed: ChangeFeed<T, C>,
    /// It yielded `Err(Lagged)`, its last item.
    done: Done,
}

impl<T: Key, C: Key> ChangeStream<T, C> {
    /// Gives the feed back, at the last version the stream yielded.
    pub fn into_inner(self) -> ChangeFeed<T, C> {
        self.feed
    }
}

impl<T: Key, C: Key> Stream for ChangeStream<T, C> {
    type Item = Result<ChangeBatch<T, C>, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let feed = &mut this.feed;
        this.done
            .poll_next(|| feed.poll_next_batch(cx).map(Some), Result::is_err)
    }
}

impl<T: Key, C: Key> FusedStream for ChangeStream<T, C> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

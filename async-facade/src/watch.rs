//! Has-subscribers watches as futures and streams.

use crate::fused::Done;
use futures::future::FusedFuture;
use futures::stream::{FusedStream, Stream};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{SubscriberWatch, WatchError};

/// Awaits changes of a [`SubscriberWatch`].
pub trait SubscriberWatchExt {
    /// The next change: the latest value once the watch's version moved
    /// past the last one this watch returned (a new watch has seen the
    /// version current when it was made). Changes coalesce: a slow waiter
    /// may skip intermediate flips but always gets the latest value.
    ///
    /// # Errors
    ///
    /// The future resolves to [`WatchError::Closed`] once the thread was
    /// removed and every change before the removal was returned.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::executor::block_on;
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Caps, Engine, WatchError};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// engine.thread(7);
    /// let mut watch = engine.watch_subscribers(7).unwrap();
    ///
    /// engine.connect(1, Caps::NONE);
    /// engine.subscribe(7, 1).unwrap();
    /// assert_eq!(block_on(watch.changed()), Ok(true));
    ///
    /// engine.remove_thread(7);
    /// assert_eq!(block_on(watch.changed()), Ok(false));
    /// assert_eq!(block_on(watch.changed()), Err(WatchError::Closed));
    /// ```
    fn changed(&mut self) -> Changed<'_>;

    /// The value current at the first poll, then the value after each
    /// change; ends once the thread was removed. Consecutive items always
    /// differ (changes coalesce, as with [`changed`](Self::changed)).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::{executor::block_on_stream};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// engine.connect(1, Caps::NONE);
    /// engine.subscribe(7, 1).unwrap();
    /// let mut values = block_on_stream(engine.watch_subscribers(7).unwrap().into_stream());
    ///
    /// assert_eq!(values.next(), Some(true));
    /// engine.disconnect(1);
    /// assert_eq!(values.next(), Some(false));
    /// engine.remove_thread(7);
    /// assert_eq!(values.next(), None);
    /// ```
    fn into_stream(self) -> WatchStream;
}

impl SubscriberWatchExt for SubscriberWatch {
    fn changed(&mut self) -> Changed<'_> {
        Changed {
            watch: self,
            done: Done::default(),
        }
    }

    fn into_stream(self) -> WatchStream {
        WatchStream {
            watch: self,
            state: StreamState::First,
        }
    }
}

/// The next change of a [`SubscriberWatch`]; made by
/// [`SubscriberWatchExt::changed`].
///
/// Woken only by a real change of the thread's has-subscribers state or by
/// the thread's removal, never without a version change. Any number of
/// tasks may wait on the same thread, each with its own watch (clone it);
/// every one is woken.
///
/// # Errors
///
/// Resolves to [`WatchError::Closed`] once the thread was removed and every
/// change before the removal was returned.
///
/// # Cancel safety
///
/// The watch marks a change seen only in the poll that returns it, so
/// dropping a pending `Changed` loses no change: the next `changed()` on the
/// same watch returns it. Dropping it frees its waker registration; other
/// waiters are woken regardless.
#[derive(Debug)]
pub struct Changed<'a> {
    watch: &'a mut SubscriberWatch,
    done: Done,
}

impl Future for Changed<'_> {
    type Output = Result<bool, WatchError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let watch = &mut *this.watch;
        this.done.poll(|| watch.poll_changed(cx))
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        // Dropped while pending: free the registration its last poll left.
        if !self.done.is_done() {
            self.watch.forget_waker();
        }
    }
}

impl FusedFuture for Changed<'_> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

/// Where a [`WatchStream`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// Not polled yet: the next item is the current value.
    First,
    /// Yielded `last`; the next item is the first change to a different value.
    Running { last: bool },
    /// The thread was removed and every change before that was yielded.
    Done,
}

/// A thread's has-subscribers value over time, as a [`Stream`]; made by
/// [`SubscriberWatchExt::into_stream`].
///
/// Yields the value current at the first poll (at once, without waiting),
/// then the value after each change, and ends once the thread was removed.
/// Consecutive items always differ: a change that a slow consumer sees only
/// after the value flipped back is coalesced away. Woken only by a real
/// change or by the thread's removal.
///
/// # Cancel safety
///
/// A change is marked seen only in the poll that yields it, so dropping a
/// pending `next()` loses no change. Other waiters on the same thread are
/// woken regardless.
#[derive(Debug)]
pub struct WatchStream {
    watch: SubscriberWatch,
    state: StreamState,
}

impl WatchStream {
    /// Gives the watch back; it remembers the last change the stream saw.
    pub fn into_inner(self) -> SubscriberWatch {
        self.watch
    }
}

impl Stream for WatchStream {
    type Item = bool;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<bool>> {
        let this = self.get_mut();
        match this.state {
            StreamState::Done => Poll::Ready(None),
            StreamState::First => {
                let (value, next) = match this.watch.poll_changed(cx) {
                    // An unseen change: its value is the current one, and
                    // the watch now remembers it.
                    Poll::Ready(Ok(v)) => (v, StreamState::Running { last: v }),
                    // Removed with nothing unseen: the value is final.
                    Poll::Ready(Err(_closed)) => (this.watch.get(), StreamState::Done),
                    // Nothing unseen, and our waker is registered. A change
                    // racing this `get` is reported again by the next poll;
                    // `Running` drops it if the value is the same.
                    Poll::Pending => {
                        let v = this.watch.get();
                        (v, StreamState::Running { last: v })
                    }
                };
                this.state = next;
                Poll::Ready(Some(value))
            }
            StreamState::Running { last } => loop {
                match this.watch.poll_changed(cx) {
                    // Coalesced back to what the consumer already has:
                    // poll again, to register for the next change.
                    Poll::Ready(Ok(v)) if v == last => continue,
                    Poll::Ready(Ok(v)) => {
                        this.state = StreamState::Running { last: v };
                        return Poll::Ready(Some(v));
                    }
                    Poll::Ready(Err(_closed)) => {
                        this.state = StreamState::Done;
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            },
        }
    }
}

impl FusedStream for WatchStream {
    fn is_terminated(&self) -> bool {
        self.state == StreamState::Done
    }
}

//! The extension trait of [`ThreadEntry`].

use crate::idle::WaitIdle;
use crate::send::SendAsync;
use switchboard_core::ThreadEntry;

/// Async operations on a [`ThreadEntry`]: sending to its listener, and
/// waiting for it to go idle.
pub trait EntryExt<M> {
    /// Queues `m` for the current listener, waiting (without blocking a
    /// worker thread) for room if its bounded queue is full. On the default
    /// unbounded queue it completes at the first poll.
    ///
    /// # Errors
    ///
    /// The future resolves to [`NoListener`](switchboard_core::NoListener) with `m` inside if there is no
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

    /// Completes once this entry's thread has no subscribers, or was
    /// removed: [`EngineExt::wait_idle`](crate::EngineExt::wait_idle) keyed
    /// by the entry rather than the id, so it pairs with
    /// [`Engine::remove_entry_if_idle`](switchboard_core::Engine::remove_entry_if_idle)
    /// (atomic against a racing `subscribe`): a removal and re-creation of
    /// the same id never keeps it waiting on the new entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::executor::block_on;
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// engine.connect(1, Caps::NONE);
    /// let room = engine.subscribe(7, 1).unwrap();
    ///
    /// let idle = room.wait_idle();
    /// engine.disconnect(1);
    /// block_on(idle);
    /// assert!(engine.remove_entry_if_idle(&room));
    /// ```
    fn wait_idle(&self) -> WaitIdle;
}

impl<T: Copy, S, M> EntryExt<M> for ThreadEntry<T, S, M> {
    fn send_async(&self, m: M) -> SendAsync<'_, Self, M> {
        SendAsync::new(self, m)
    }

    fn wait_idle(&self) -> WaitIdle {
        WaitIdle::new(Some(self.watch_subscribers()))
    }
}

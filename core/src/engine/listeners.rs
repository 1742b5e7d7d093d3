//! The engine's listeners as a whole: shutdown, and clearing every
//! listener. (A thread's own listener is its entry's, `entry.rs`.)

use super::Engine;
use crate::key::Key;
use crate::shutdown::{ShutdownReport, ShutdownWait};
use crate::sync::StdArc;
use std::time::Duration;

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static>
    Engine<T, C, S, M, D>
{
    /// Shuts the engine's listeners down and waits for them: from now on
    /// [`set_listener`](crate::ThreadEntry::set_listener) returns a listener that
    /// is already cancelled and closed; every current listener is cleared
    /// (its token fires, its queue closes); then this waits until every
    /// [`Listener`](crate::Listener) handle of this engine, of any
    /// generation, has been dropped, or until `timeout`. The graph and the
    /// entries stay as they are.
    ///
    /// The report names the threads whose listener handles were still alive
    /// when the wait ended; empty means no listener of this engine is
    /// running and none can start (guarantee 11). Calling it again waits
    /// again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use switchboard_core::Engine;
    ///
    /// let engine: Arc<Engine<u64, u64, (), u32>> = Arc::new(Engine::new());
    /// let listener = engine.thread(1).set_listener(&engine);
    /// let task = std::thread::spawn(move || while listener.recv().is_ok() {});
    ///
    /// let report = engine.shutdown(Duration::from_secs(5));
    /// assert!(report.still_running.is_empty());
    /// task.join().unwrap();
    /// assert!(engine.is_shut_down());
    /// let late = engine.thread(2).set_listener(&engine);
    /// assert!(late.is_cancelled() && late.recv().is_err());
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport<T> {
        self.begin_shutdown().wait_timeout(timeout)
    }

    /// Starts [`shutdown`](Self::shutdown) (no new listener, every current
    /// one cleared) without waiting: the returned handle waits, blocking or
    /// polled (the async facade's `shutdown_async`).
    pub fn begin_shutdown(&self) -> ShutdownWait<T> {
        for slot in self.registry.shut_down() {
            slot.clear();
        }
        ShutdownWait::new(StdArc::clone(&self.registry))
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.registry.is_shut_down()
    }

    /// Clears every thread's listener; entries stay. New listeners can
    /// still start (see [`shutdown`](Self::shutdown) for the end of
    /// service).
    pub fn clear_all_listeners(&self) {
        self.current.read(|g| {
            g.threads
                .for_each(|_, e| Self::entry_of(e).clear_listener());
        });
    }
}

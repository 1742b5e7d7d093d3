//! [`ChangeFeed`]: a cursor into the engine's change log (`changes.rs`,
//! which owns the log's locking and wake-up protocol).

use crate::changes::{ChangeBatch, ChangeLog, Lookup};
use crate::error::Lagged;
use crate::key::Key;
use crate::sync::Arc;
use crate::waiters::WaitKey;
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A cursor over the engine's changes: one [`ChangeBatch`] per published
/// version, in order, with no gap, each only once its version is published
/// ([`Engine::snapshot`](crate::Engine::snapshot) already shows it). Made by
/// [`Engine::changes`](crate::Engine::changes) and
/// [`Engine::changes_since`](crate::Engine::changes_since).
///
/// The engine keeps the last [`Config::change_log`](crate::Config::change_log)
/// batches. A feed that falls further behind returns [`Lagged`] from then
/// on; the crate docs ("Following changes") show how to resync. Following a
/// feed never blocks a writer, and a slow feed never holds one back.
///
/// Each batch is copied out for the caller (one allocation per batch). A
/// clone is an independent cursor at the same position. A feed may outlive
/// its engine: it still delivers the retained batches, then nothing more.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Change, Engine};
///
/// let engine: Engine<u64, u64> = Engine::new();
/// let mut feed = engine.changes();
/// engine.connect(1, Caps::NONE);
/// engine.subscribe(7, 1).unwrap();
///
/// let batch = feed.try_next().unwrap().unwrap();
/// assert_eq!(batch.version, 1);
/// assert_eq!(batch.changes, [Change::Connected { c: 1, caps: Caps::NONE }]);
/// let batch = feed.try_next().unwrap().unwrap();
/// assert_eq!(
///     batch.changes,
///     [
///         Change::ThreadAdded { t: 7 },
///         Change::Subscribed { t: 7, c: 1 },
///         Change::Occupied { t: 7 },
///     ]
/// );
/// assert_eq!(feed.try_next(), Ok(None)); // nothing new yet
/// assert_eq!(feed.version(), 2);
/// ```
pub struct ChangeFeed<T: Key, C: Key> {
    log: Arc<ChangeLog<T, C>>,
    /// The last version delivered (or the one the feed started at).
    version: u64,
    lagged: bool,
    /// This feed's waker slot, in the wait list of stripe `registered`.
    key: WaitKey,
    /// The stripe whose wait list `key` may hold a slot of.
    registered: Option<usize>,
}

impl<T: Key, C: Key> ChangeFeed<T, C> {
    /// A feed whose next batch is that of `version + 1`.
    pub(crate) fn new(log: Arc<ChangeLog<T, C>>, version: u64) -> Self {
        ChangeFeed {
            key: WaitKey::new(),
            log,
            version,
            lagged: false,
            registered: None,
        }
    }

    /// The last version this feed delivered, or the one it started at.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Settles a lookup of version `self.version + 1`.
    fn settle(&mut self, found: Lookup<T, C>) -> Result<Option<ChangeBatch<T, C>>, Lagged> {
        match found {
            Lookup::Batch(b) => {
                self.version = b.version;
                Ok(Some(b))
            }
            Lookup::Gone => {
                self.lagged = true;
                Err(Lagged)
            }
            Lookup::NotYet => Ok(None),
        }
    }

    /// The next batch, if its version is published. Never blocks for
    /// long: it locks one stripe of the log for the copy of one batch, and
    /// not at all when nothing is new.
    ///
    /// # Errors
    ///
    /// [`Lagged`] if the next batch is no longer retained, and from then on.
    pub fn try_next(&mut self) -> Result<Option<ChangeBatch<T, C>>, Lagged> {
        if self.lagged {
            return Err(Lagged);
        }
        let found = self.log.lookup(self.version + 1);
        self.settle(found)
    }

    /// The next batch, waiting up to `timeout` for its version to be
    /// published; `Ok(None)` if none was in time. Woken by the publish,
    /// not by polling.
    ///
    /// # Errors
    ///
    /// [`Lagged`] if the next batch is no longer retained, and from then on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard_core::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let mut feed = engine.changes();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| engine.connect(1, Caps::NONE));
    ///     let batch = feed.next_timeout(Duration::from_secs(10)).unwrap().unwrap();
    ///     assert_eq!(batch.version, 1);
    /// });
    /// assert_eq!(feed.next_timeout(Duration::ZERO), Ok(None));
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ChangeBatch<T, C>>, Lagged> {
        if let found @ (Ok(Some(_)) | Err(_)) = self.try_next() {
            return found;
        }
        // `None`: too far away to represent, so wait untimed (what loom
        // models, having no clock).
        let deadline = Instant::now().checked_add(timeout);
        let found = self.log.wait(self.version + 1, deadline);
        self.settle(found)
    }

    /// Polls for the next batch, registering `cx`'s waker with the log if
    /// its version is not published yet: the building block of the async
    /// facade's `ChangeStream`. The waker is woken by that version's
    /// publish. Registering again (with the same or another waker) replaces
    /// this feed's previous registration; dropping the feed removes it.
    ///
    /// # Errors
    ///
    /// `Ready(Err(Lagged))` if the next batch is no longer retained, and
    /// from then on.
    pub fn poll_next_batch(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ChangeBatch<T, C>, Lagged>> {
        let found = match self.try_next() {
            Ok(Some(b)) => return Poll::Ready(Ok(b)),
            Err(e) => return Poll::Ready(Err(e)),
            Ok(None) => {
                // Registered in another stripe (for an earlier version):
                // leave it first, so the key holds one slot of one list.
                let stripe = self.log.stripe_of(self.version + 1);
                if let Some(old) = self.registered.filter(|&old| old != stripe) {
                    self.log.deregister(old, &self.key);
                }
                self.registered = Some(stripe);
                self.log.poll(self.version + 1, &self.key, cx.waker())
            }
        };
        match found {
            Poll::Pending => Poll::Pending,
            Poll::Ready(found) => match self.settle(found) {
                Ok(Some(b)) => Poll::Ready(Ok(b)),
                Err(e) => Poll::Ready(Err(e)),
                Ok(None) => unreachable!("the log settled a published version"),
            },
        }
    }
}

impl<T: Key, C: Key> Clone for ChangeFeed<T, C> {
    fn clone(&self) -> Self {
        let mut feed = ChangeFeed::new(Arc::clone(&self.log), self.version);
        feed.lagged = self.lagged;
        feed
    }
}

impl<T: Key, C: Key> Drop for ChangeFeed<T, C> {
    fn drop(&mut self) {
        if let Some(stripe) = self.registered {
            self.log.deregister(stripe, &self.key);
        }
    }
}

impl<T: Key, C: Key> fmt::Debug for ChangeFeed<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("version", &self.version)
            .field("lagged", &self.lagged)
            .finish_non_exhaustive()
    }
}

//! The change feed: what each published version changed, in publish order.
//!
//! Every write that publishes graph version `v` also appends one batch, the
//! changes of `v`, to the engine's [`ChangeLog`]; a [`ChangeFeed`] is a
//! cursor into it. The log is a bounded ring: it keeps the last
//! `change_log` batches ([`Config::change_log`](crate::Config::change_log)),
//! and a feed that falls further behind is told so ([`Lagged`]) instead of
//! holding the writer back.
//!
//! # Structure
//!
//! The ring is split into a few *stripes*, each a small mutex: version `v`
//! lives in stripe `v % stripes`. A feed following the head copies batch
//! `v` out of one stripe while the writer appends `v + 1` to the next one,
//! so the two do not contend. The writer can wait on a stripe's mutex only
//! for a feed copying one batch out of it (a feed a whole ring behind,
//! about to lag) or registering its waker there (a push onto a short
//! list): a few hundred nanoseconds, never for a feed to *consume*
//! anything. A feed that reads nothing costs the writer nothing.
//!
//! # Invariants (of each stripe, under its mutex)
//!
//! 1. `batches` indexes versions of this stripe only, ascending, each
//!    `stripes` apart, at most `per_stripe` of them; the newest is `last`.
//!    Their changes lie back to back in `changes`, oldest first: a batch
//!    starts at its `start` (counted from the stripe's first change ever;
//!    `changes[0]` is change number `dropped`) and ends where the next one
//!    starts, or at the end of `changes`.
//! 2. `last` is the newest version appended to this stripe (0: none). A
//!    version `v` of this stripe is published iff `v <= last`; if it is
//!    published and not in `batches`, it was dropped from the ring.
//! 3. Together the stripes hold at least the last `window` versions:
//!    `per_stripe = ceil(window / stripes)`.
//! 4. Every registered waker and sleeper waits for the next version to be
//!    appended, which belongs to this stripe: a feed waits only when its
//!    next version is not appended yet, and a feed's next version is never
//!    beyond the next one to be appended. So that append wakes all of them.
//!
//! # Orderings
//!
//! * The writer publishes the graph of `v` (the `ArcSwap` swap) *before* it
//!   locks the stripe to append `v`; a feed finds `v` only under that
//!   stripe's mutex. So whoever receives batch `v` and then loads a
//!   snapshot sees version `v` or later (loom: `change_feed.rs`).
//! * `head` (Release store after the append, Acquire load in `try_next`)
//!   is only a fast path: "nothing new" without locking, and the retention
//!   window check. Every decision that matters is re-made under the
//!   stripe's mutex.
//! * A waiting feed checks its version under the stripe's mutex and then
//!   registers its waker (or sleeps on the stripe's condition variable)
//!   before unlocking; the writer appends and takes the wakers under the
//!   same mutex. So a wait either sees the batch or is woken by its append:
//!   no lost wake-up (loom: `change_feed.rs`).
//!
//! # Cost to a writer
//!
//! With nobody following: one uncontended lock, a copy of the batch onto
//! the end of the stripe's flat ring of changes (no allocation once the
//! ring has reached its size; a ring that grew for a big batch shrinks back
//! once that batch is dropped), one Release store. A retained batch costs
//! 16 bytes plus its changes (24 bytes each with `u64` ids).

use crate::error::Lagged;
use crate::sync::{Arc, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};
use crate::{Caps, Key};
use std::collections::VecDeque;
use std::fmt;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// One change of the graph, as a [`ChangeFeed`] reports it.
///
/// Within a batch, changes come in the order a replica applies them:
/// `Occupied { t }` right after the `Subscribed` that gave `t` its first
/// subscriber, `Vacated { t }` right after the `Unsubscribed` that took its
/// last; `disconnect(c)` is an `Unsubscribed` for each of `c`'s threads
/// (ascending) then `Disconnected { c }`; `remove_thread(t)` an
/// `Unsubscribed` for each of its subscribers (ascending) then
/// `ThreadRemoved { t }`; a `subscribe` that creates its thread starts with
/// `ThreadAdded { t }`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change<T, C> {
    /// `c` became live, or a live `c` got new caps.
    Connected {
        /// The connection.
        c: C,
        /// Its caps from now on.
        caps: Caps,
    },
    /// `c` is no longer live (its `Unsubscribed`s came first).
    Disconnected {
        /// The connection.
        c: C,
    },
    /// The edge `t`–`c` was added.
    Subscribed {
        /// The thread.
        t: T,
        /// The connection.
        c: C,
    },
    /// The edge `t`–`c` was removed.
    Unsubscribed {
        /// The thread.
        t: T,
        /// The connection.
        c: C,
    },
    /// A thread entry was created (by `subscribe` or `thread()`).
    ThreadAdded {
        /// The thread.
        t: T,
    },
    /// The thread entry was removed (its `Unsubscribed`s came first).
    ThreadRemoved {
        /// The thread.
        t: T,
    },
    /// `t` went from no subscriber to one.
    Occupied {
        /// The thread.
        t: T,
    },
    /// `t` lost its last subscriber.
    Vacated {
        /// The thread.
        t: T,
    },
}

/// The changes of one published version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeBatch<T, C> {
    /// The version these changes produced.
    pub version: u64,
    /// The changes, in the order to apply them (see [`Change`]).
    pub changes: Vec<Change<T, C>>,
}

impl<T, C> Default for ChangeBatch<T, C> {
    fn default() -> Self {
        ChangeBatch {
            version: 0,
            changes: Vec::new(),
        }
    }
}

/// A buffer above this capacity is shrunk when it holds less than a
/// quarter of it.
const SHRINK_ABOVE: usize = 64;

/// The most stripes a log has (fewer if its window is smaller).
const MAX_STRIPES: usize = 4;

fn reuse<X>(buf: &mut Vec<X>) {
    if buf.capacity() > SHRINK_ABOVE && buf.capacity() > 4 * buf.len() {
        buf.shrink_to(buf.len().max(SHRINK_ABOVE));
    }
}

/// The writer's scratch space for one write: the changes recorded so far,
/// the edge count's delta, and a spare waker list (swapped with a stripe's
/// on append, so waking allocates nothing). Lives in the writer's state,
/// under the writer mutex.
pub(crate) struct ChangeBuf<T, C> {
    changes: Vec<Change<T, C>>,
    added: usize,
    removed: usize,
    wakers: Vec<(u64, Waker)>,
}

impl<T: Copy, C: Copy> ChangeBuf<T, C> {
    pub(crate) fn new() -> Self {
        ChangeBuf {
            changes: Vec::new(),
            added: 0,
            removed: 0,
            wakers: Vec::new(),
        }
    }

    /// Records one change of the write in progress.
    #[inline]
    pub(crate) fn push(&mut self, change: Change<T, C>) {
        match change {
            Change::Subscribed { .. } => self.added += 1,
            Change::Unsubscribed { .. } => self.removed += 1,
            _ => {}
        }
        self.changes.push(change);
    }

    /// Starts a new write.
    pub(crate) fn clear(&mut self) {
        reuse(&mut self.changes);
        self.changes.clear();
        (self.added, self.removed) = (0, 0);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// `edges` after the recorded changes.
    pub(crate) fn edges_after(&self, edges: usize) -> usize {
        edges + self.added - self.removed
    }
}

/// Who waits for a stripe's next version.
#[derive(Default)]
struct Waiters {
    /// Async waiters, by feed id: at most one waker per feed.
    wakers: Vec<(u64, Waker)>,
    /// Threads asleep on the stripe's condition variable.
    sleepers: usize,
}

impl Waiters {
    /// Registers `waker` for feed `id`, replacing the feed's previous one.
    fn register(&mut self, id: u64, waker: &Waker) {
        match self.wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => w.clone_from(waker),
            None => self.wakers.push((id, waker.clone())),
        }
    }

    fn deregister(&mut self, id: u64) {
        self.wakers.retain(|(i, _)| *i != id);
    }
}

/// One stripe's state: see the module's invariants.
struct StripeState<T, C> {
    /// The changes of the retained batches, back to back, oldest first.
    changes: VecDeque<Change<T, C>>,
    /// How many changes were dropped from the front of `changes` so far.
    dropped: u64,
    /// The retained batches, oldest first: version, and where its changes
    /// start (counting dropped changes too).
    batches: VecDeque<(u64, u64)>,
    last: u64,
    waiters: Waiters,
}

/// What a stripe says about a version of its own.
enum Lookup<T, C> {
    Batch(ChangeBatch<T, C>),
    /// Published, and dropped from the ring.
    Gone,
    /// Not published yet.
    NotYet,
}

impl<T: Copy, C: Copy> StripeState<T, C> {
    /// Version `v` (of this stripe), copied out if retained.
    fn lookup(&self, v: u64, stripes: u64) -> Lookup<T, C> {
        if v > self.last {
            return Lookup::NotYet;
        }
        let index = self.batches.front().and_then(|&(oldest, _)| {
            let index = usize::try_from(v.checked_sub(oldest)? / stripes).ok()?;
            (index < self.batches.len()).then_some(index)
        });
        let Some(index) = index else {
            return Lookup::Gone;
        };
        let (version, start) = self.batches[index];
        debug_assert_eq!(version, v, "stripe invariant 1");
        let (start, end) = (self.offset(start), self.end_of(index));
        Lookup::Batch(ChangeBatch {
            version,
            changes: self.changes.range(start..end).copied().collect(),
        })
    }

    /// Where change number `n` (see `dropped`) is in `changes`.
    fn offset(&self, n: u64) -> usize {
        // At most `changes.len()`, a usize (invariant 1).
        (n - self.dropped) as usize
    }

    /// Where the changes of `batches[index]` end in `changes`.
    fn end_of(&self, index: usize) -> usize {
        match self.batches.get(index + 1) {
            Some(&(_, next)) => self.offset(next),
            None => self.changes.len(),
        }
    }

    /// Appends a batch, dropping the oldest first if `keep` are retained.
    fn push(&mut self, version: u64, changes: &[Change<T, C>], keep: usize) {
        if self.batches.len() >= keep {
            let end = self.end_of(0);
            self.batches.pop_front();
            self.changes.drain(..end);
            self.dropped += end as u64;
            if self.changes.capacity() > SHRINK_ABOVE
                && self.changes.capacity() > 4 * (self.changes.len() + changes.len())
            {
                self.changes.shrink_to(SHRINK_ABOVE.max(self.changes.len()));
            }
        }
        let start = self.dropped + self.changes.len() as u64;
        self.batches.push_back((version, start));
        self.changes.extend(changes.iter().copied());
    }
}

/// A stripe, alone on its cache line(s).
#[repr(align(64))]
struct Stripe<T, C> {
    state: Mutex<StripeState<T, C>>,
    ready: Condvar,
}

/// The engine's bounded log of published batches. See the module docs.
pub(crate) struct ChangeLog<T, C> {
    /// The newest version appended (0 before any).
    head: AtomicU64,
    /// How many versions are retained.
    window: u64,
    per_stripe: usize,
    stripes: Box<[Stripe<T, C>]>,
    /// Feed ids, for waker registrations.
    next_id: AtomicU64,
}

impl<T: Copy, C: Copy> ChangeLog<T, C> {
    /// An empty log keeping the last `window` versions.
    pub(crate) fn new(window: usize) -> Self {
        let count = window.clamp(1, MAX_STRIPES);
        let stripes = (0..count)
            .map(|_| Stripe {
                state: Mutex::new(StripeState {
                    changes: VecDeque::new(),
                    dropped: 0,
                    batches: VecDeque::new(),
                    last: 0,
                    waiters: Waiters::default(),
                }),
                ready: Condvar::new(),
            })
            .collect();
        ChangeLog {
            head: AtomicU64::new(0),
            window: window as u64,
            per_stripe: window.div_ceil(count),
            stripes,
            next_id: AtomicU64::new(0),
        }
    }

    fn stripe_of(&self, v: u64) -> usize {
        // The remainder is below `stripes.len()`, a usize.
        (v % self.stripes.len() as u64) as usize
    }

    /// Whether a feed that has delivered `v` can still get every later
    /// batch, given that `published` is the latest version.
    pub(crate) fn retains_after(&self, v: u64, published: u64) -> bool {
        v <= published && published - v <= self.window
    }

    /// Appends the batch of `version`, just published, and wakes whoever
    /// waits for it. Writer only, under the writer mutex, in version order.
    pub(crate) fn append(&self, version: u64, buf: &mut ChangeBuf<T, C>) {
        let stripe = &self.stripes[self.stripe_of(version)];
        let sleepers = {
            let mut s = stripe.state.lock();
            if self.per_stripe > 0 {
                s.push(version, &buf.changes, self.per_stripe);
            }
            s.last = version;
            std::mem::swap(&mut s.waiters.wakers, &mut buf.wakers);
            s.waiters.sleepers > 0
        };
        // Release: a feed that sees this head finds the batch in its stripe
        // (it re-checks under the mutex anyway; see the module docs).
        self.head.store(version, Ordering::Release);
        if sleepers {
            stripe.ready.notify_all();
        }
        buf.wakers.drain(..).for_each(|(_, w)| w.wake());
    }
}

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
    /// Identifies this feed's waker registration.
    id: u64,
    /// The stripe this feed last registered a waker in.
    registered: Option<usize>,
}

impl<T: Key, C: Key> ChangeFeed<T, C> {
    /// A feed whose next batch is that of `version + 1`.
    pub(crate) fn new(log: Arc<ChangeLog<T, C>>, version: u64) -> Self {
        // Relaxed: the id only has to be unique.
        let id = log.next_id.fetch_add(1, Ordering::Relaxed);
        ChangeFeed {
            log,
            version,
            lagged: false,
            id,
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
        let next = self.version + 1;
        // Acquire: see `ChangeLog::append` (a fast path only).
        let head = self.log.head.load(Ordering::Acquire);
        if head < next {
            return Ok(None);
        }
        if head - next >= self.log.window {
            return self.settle(Lookup::Gone);
        }
        let stripes = self.log.stripes.len() as u64;
        let found = self.log.stripes[self.log.stripe_of(next)]
            .state
            .lock()
            .lookup(next, stripes);
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
        // `None`: too far away to represent, so wait untimed.
        let deadline = Instant::now().checked_add(timeout);
        let next = self.version + 1;
        let stripes = self.log.stripes.len() as u64;
        let stripe = &self.log.stripes[self.log.stripe_of(next)];
        let mut s = stripe.state.lock();
        let found = loop {
            let found = s.lookup(next, stripes);
            if !matches!(found, Lookup::NotYet) {
                break found;
            }
            s.waiters.sleepers += 1;
            let timed_out;
            (s, timed_out) = wait(&stripe.ready, s, deadline);
            s.waiters.sleepers -= 1;
            if timed_out {
                break s.lookup(next, stripes);
            }
        };
        drop(s);
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
        match self.try_next() {
            Ok(Some(b)) => return Poll::Ready(Ok(b)),
            Err(e) => return Poll::Ready(Err(e)),
            Ok(None) => {}
        }
        let next = self.version + 1;
        let index = self.log.stripe_of(next);
        let stripes = self.log.stripes.len() as u64;
        let mut s = self.log.stripes[index].state.lock();
        // Re-check under the mutex: a batch appended before we took it is
        // visible now; one appended after finds our waker.
        match s.lookup(next, stripes) {
            Lookup::NotYet => {
                s.waiters.register(self.id, cx.waker());
                self.registered = Some(index);
                Poll::Pending
            }
            found => {
                drop(s);
                match self.settle(found) {
                    Ok(Some(b)) => Poll::Ready(Ok(b)),
                    Err(e) => Poll::Ready(Err(e)),
                    Ok(None) => unreachable!("settled a published version"),
                }
            }
        }
    }
}

/// Waits on `ready` until notified or `deadline` (`None`: untimed); the
/// flag says whether it timed out.
fn wait<'a, X>(
    ready: &Condvar,
    guard: MutexGuard<'a, X>,
    deadline: Option<Instant>,
) -> (MutexGuard<'a, X>, bool) {
    match deadline {
        Some(deadline) => ready.wait_until(guard, deadline),
        None => (ready.wait(guard), false),
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
        if let Some(index) = self.registered {
            self.log.stripes[index]
                .state
                .lock()
                .waiters
                .deregister(self.id);
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

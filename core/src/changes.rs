//! The change feed: what each published version changed, in publish order.
//!
//! Every write that publishes graph version `v` also appends one batch, the
//! changes of `v`, to the engine's [`ChangeLog`]; a
//! [`ChangeFeed`](crate::ChangeFeed) (`feed.rs`) is a cursor into it. The
//! log is a bounded ring: it keeps the last `change_log` batches
//! ([`Config::change_log`](crate::Config::change_log)), and a feed that
//! falls further behind is told so ([`Lagged`](crate::Lagged)) instead of
//! holding the writer back. The log owns every use of its stripes' wait
//! lists (`waiters.rs`: `lookup`, `wait`, `poll`, `deregister`, `append`).
//!
//! # Structure
//!
//! The ring is split into a few *stripes*, each a small
//! [`WaitList`] (a mutex over the stripe's state, its async waiters and
//! its sleeping threads): version `v`
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
//! 4. Every waker registered and thread asleep in the stripe's wait list
//!    waits for the next version to be appended, which belongs to this
//!    stripe: a feed waits only when its
//!    next version is not appended yet, and a feed's next version is never
//!    beyond the next one to be appended. So that append wakes all of them.
//!
//! # Orderings
//!
//! * The writer publishes the graph of `v` (the `ArcSwap` swap) *before* it
//!   locks the stripe to append `v`; a feed finds `v` only under that
//!   stripe's mutex. So whoever receives batch `v` and then loads a
//!   snapshot sees version `v` or later (loom: `change_feed.rs`).
//! * `head` (Release store with the append, Acquire load in `try_next`)
//!   is only a fast path: "nothing new" without locking, and the retention
//!   window check. Every decision that matters is re-made under the
//!   stripe's mutex.
//! * A waiting feed checks its version under the stripe's lock and then
//!   registers its waker (or sleeps on the list's condition variable)
//!   before unlocking; the writer appends and takes the wakers under the
//!   same lock: the wait list's protocol. So a wait either sees the batch
//!   or is woken by its append: no lost wake-up (loom: `change_feed.rs`).
//!
//! # Cost to a writer
//!
//! With nobody following: one uncontended lock, a copy of the batch onto
//! the end of the stripe's flat ring of changes (no allocation once the
//! ring has reached its size; a ring that grew for a big batch shrinks back
//! once that batch is dropped), one Release store. A retained batch costs
//! 16 bytes plus its changes (24 bytes each with `u64` ids).

use crate::caps::Caps;
use crate::sync::{AtomicU64, Ordering};
use crate::waiters::{WaitKey, WaitList};
use std::collections::VecDeque;
use std::task::{Poll, Waker};
use std::time::Instant;

/// One change of the graph, as a [`ChangeFeed`](crate::ChangeFeed) reports it.
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

/// The writer's scratch space for one published version (the writes of one
/// group, `store/versions/`): the changes recorded so far, counts of
/// the edges they added and removed, and a spare waker list (a stripe's
/// wakers are gathered there on append, so waking allocates nothing once
/// it has grown). Lives in the writer's state, under the writer mutex.
pub(crate) struct ChangeBuf<T, C> {
    changes: Vec<Change<T, C>>,
    added: usize,
    removed: usize,
    wakers: Vec<Waker>,
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

    /// Empties the buffer once its version is in the log.
    pub(crate) fn clear(&mut self) {
        reuse(&mut self.changes);
        self.changes.clear();
        (self.added, self.removed) = (0, 0);
    }

    /// Where the next write's changes begin.
    pub(crate) fn mark(&self) -> ChangeMark {
        ChangeMark {
            len: self.changes.len(),
            added: self.added,
            removed: self.removed,
        }
    }

    /// Cuts off the changes recorded after `mark` (an abandoned write's).
    pub(crate) fn undo(&mut self, mark: ChangeMark) {
        self.changes.truncate(mark.len);
        (self.added, self.removed) = (mark.added, mark.removed);
    }

    /// Whether a change was recorded after `mark`.
    pub(crate) fn changed_since(&self, mark: ChangeMark) -> bool {
        self.changes.len() > mark.len
    }

    /// `edges` after the changes recorded since `mark`.
    pub(crate) fn edges_after(&self, edges: usize, mark: ChangeMark) -> usize {
        edges + (self.added - mark.added) - (self.removed - mark.removed)
    }
}

/// A point in a [`ChangeBuf`]: see [`ChangeBuf::mark`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChangeMark {
    len: usize,
    added: usize,
    removed: usize,
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
}

/// What the log says about a version.
pub(crate) enum Lookup<T, C> {
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

/// A stripe, alone on its cache line(s): its state under a wait list,
/// whose async waiters and sleeping threads wait for its next append.
#[repr(align(64))]
struct Stripe<T, C>(WaitList<StripeState<T, C>>);

/// The engine's bounded log of published batches. See the module docs.
pub(crate) struct ChangeLog<T, C> {
    /// The newest version appended (0 before any).
    head: AtomicU64,
    /// How many versions are retained.
    window: u64,
    per_stripe: usize,
    stripes: Box<[Stripe<T, C>]>,
}

impl<T: Copy, C: Copy> ChangeLog<T, C> {
    /// An empty log keeping the last `window` versions.
    pub(crate) fn new(window: usize) -> Self {
        let count = window.clamp(1, MAX_STRIPES);
        let stripes = (0..count)
            .map(|_| {
                Stripe(WaitList::new(StripeState {
                    changes: VecDeque::new(),
                    dropped: 0,
                    batches: VecDeque::new(),
                    last: 0,
                }))
            })
            .collect();
        ChangeLog {
            head: AtomicU64::new(0),
            window: window as u64,
            per_stripe: window.div_ceil(count),
            stripes,
        }
    }

    /// The stripe version `v` lives in.
    pub(crate) fn stripe_of(&self, v: u64) -> usize {
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
        let mut s = self.stripes[self.stripe_of(version)].0.lock();
        if self.per_stripe > 0 {
            s.push(version, &buf.changes, self.per_stripe);
        }
        s.last = version;
        // Release: a feed that sees this head finds the batch in its stripe
        // (it re-checks under the lock anyway; see the module docs).
        self.head.store(version, Ordering::Release);
        s.wake_all_into(&mut buf.wakers);
    }
}

impl<T: Copy, C: Copy> ChangeLog<T, C> {
    /// Version `v`, if published: locks its stripe only if the head says
    /// it is published and within the window.
    pub(crate) fn lookup(&self, v: u64) -> Lookup<T, C> {
        // Acquire: see `append` (a fast path only).
        let head = self.head.load(Ordering::Acquire);
        if head < v {
            return Lookup::NotYet;
        }
        if head - v >= self.window {
            return Lookup::Gone;
        }
        let stripes = self.stripes.len() as u64;
        self.stripes[self.stripe_of(v)].0.lock().lookup(v, stripes)
    }

    /// Version `v`, waiting until `deadline` (`None`: untimed) for its
    /// append; `NotYet` if none came in time.
    pub(crate) fn wait(&self, v: u64, deadline: Option<Instant>) -> Lookup<T, C> {
        let stripes = self.stripes.len() as u64;
        let found =
            self.stripes[self.stripe_of(v)]
                .0
                .wait(deadline, |s| match s.lookup(v, stripes) {
                    Lookup::NotYet => None,
                    found => Some(found),
                });
        found.unwrap_or(Lookup::NotYet)
    }

    /// Version `v`, or, if it is not published yet, `Pending` with `waker`
    /// registered in `key`'s slot of `v`'s stripe (see
    /// [`stripe_of`](Self::stripe_of)) for its append. A key that holds a
    /// slot of another stripe must be [deregistered](Self::deregister)
    /// there first.
    pub(crate) fn poll(&self, v: u64, key: &WaitKey, waker: &Waker) -> Poll<Lookup<T, C>> {
        let stripes = self.stripes.len() as u64;
        // Checked under the stripe's lock: a batch appended before we took
        // it is visible now; one appended after finds our waker.
        self.stripes[self.stripe_of(v)]
            .0
            .poll(key, waker, |s| match s.lookup(v, stripes) {
                Lookup::NotYet => None,
                found => Some(found),
            })
    }

    /// Frees `key`'s slot in stripe `index`, if it holds one there.
    pub(crate) fn deregister(&self, index: usize, key: &WaitKey) {
        self.stripes[index].0.deregister(key);
    }
}

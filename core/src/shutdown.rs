//! The engine's listener registry, and shutdown.
//!
//! Every [`Listener`](crate::Listener) handle of an engine is counted here,
//! from `set_listener` to its drop, whatever its generation; so is every
//! slot whose listener is current. [`Engine::shutdown`](crate::Engine::shutdown)
//! marks the registry shut down, clears every current listener, and waits
//! for the handle count to reach zero.
//!
//! Invariants (all under the registry's lock):
//! * `handles` is the number of live `Listener` values of this engine, and
//!   the sum of `running`'s counts (a thread id maps to the live handles of
//!   its entries, and is absent at zero).
//! * `current` holds exactly the slots whose listener is current, keyed by
//!   the slot's address (the map's `Arc` keeps the address unique).
//! * once `shut_down`, `current` never gains a slot: `set_listener` hands
//!   back a listener that is already cancelled and closed.
//!
//! Lock order: a slot's lock, then the registry's (a slot reports its
//! changes while holding its own lock); shutdown takes the slots out of
//! `current` under the registry's lock and clears them after releasing it.

use crate::key::Key;
use crate::sync::StdArc;
use crate::waiters::{WaitKey, WaitList};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A listener slot, as shutdown sees it.
pub(crate) trait Clear: Send + Sync {
    /// Cancels and closes the current listener, if any.
    fn clear(&self);
}

/// What a slot tells the registry (one per thread entry).
pub(crate) trait Track: Send + Sync {
    /// A listener handle was made. Unless shut down, `slot`'s new listener
    /// is current; returns whether it is.
    fn opened(&self, slot: StdArc<dyn Clear>) -> bool;
    /// The slot at `addr` no longer has a current listener.
    fn cleared(&self, addr: usize);
    /// A listener handle was dropped.
    fn dropped(&self);
}

struct State<T> {
    shut_down: bool,
    handles: usize,
    running: BTreeMap<T, usize>,
    current: HashMap<usize, StdArc<dyn Clear>>,
}

/// The registry of one engine (see the module docs).
pub(crate) struct Registry<T> {
    state: WaitList<State<T>>,
}

impl<T: Key> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            state: WaitList::new(State {
                shut_down: false,
                handles: 0,
                running: BTreeMap::new(),
                current: HashMap::new(),
            }),
        }
    }

    /// The tracker of thread `id`'s slot.
    pub(crate) fn tracker(self: &StdArc<Self>, id: T) -> Box<dyn Track> {
        Box::new(Tracker {
            id,
            registry: StdArc::clone(self),
        })
    }

    /// (threads with a current listener, live listener handles).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.current.len(), state.handles)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.state.lock().shut_down
    }

    /// Marks the registry shut down and returns the slots to clear.
    pub(crate) fn shut_down(&self) -> Vec<StdArc<dyn Clear>> {
        let mut state = self.state.lock();
        state.shut_down = true;
        state.current.drain().map(|(_, slot)| slot).collect()
    }

    fn still_running(state: &State<T>) -> Vec<T> {
        state.running.keys().copied().collect()
    }
}

struct Tracker<T> {
    id: T,
    registry: StdArc<Registry<T>>,
}

impl<T: Key> Track for Tracker<T> {
    fn opened(&self, slot: StdArc<dyn Clear>) -> bool {
        let mut state = self.registry.state.lock();
        // The map first: it compares ids (host code), and if that panics
        // nothing has changed yet.
        *state.running.entry(self.id).or_insert(0) += 1;
        state.handles += 1;
        if state.shut_down {
            return false;
        }
        let addr = StdArc::as_ptr(&slot) as *const () as usize;
        state.current.insert(addr, slot);
        true
    }

    fn cleared(&self, addr: usize) {
        // Dropped outside the lock: the slot's last reference may go here.
        let slot = self.registry.state.lock().current.remove(&addr);
        drop(slot);
    }

    fn dropped(&self) {
        let mut state = self.registry.state.lock();
        // The map first, as in `opened`: a panicking comparison of ids
        // leaves the counts as they were.
        match state.running.get_mut(&self.id) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                state.running.remove(&self.id);
            }
            None => {}
        }
        state.handles -= 1;
        if state.handles == 0 {
            state.wake_all();
        }
    }
}

/// What [`Engine::shutdown`](crate::Engine::shutdown) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport<T> {
    /// Threads whose listener handles were still alive when the wait ended,
    /// ascending; empty if every handle was dropped in time.
    pub still_running: Vec<T>,
}

impl<T> ShutdownReport<T> {
    /// Whether every listener handle was dropped: no listener of the engine
    /// is running, and none can start.
    pub fn is_complete(&self) -> bool {
        self.still_running.is_empty()
    }
}

/// A shutdown in progress: made by
/// [`Engine::begin_shutdown`](crate::Engine::begin_shutdown), it waits for
/// the engine's last listener handle to be dropped, blocking or by polling
/// (the async facade's `shutdown_async` holds one).
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use switchboard_core::Engine;
///
/// let engine: Engine<u64, u64> = Engine::new();
/// let listener = engine.thread(1).set_listener(&Arc::new(()));
/// let shutdown = engine.begin_shutdown();
/// assert!(listener.is_cancelled());
/// assert_eq!(shutdown.still_running(), [1]);
/// drop(listener);
/// assert!(shutdown.wait_timeout(Duration::from_secs(1)).is_complete());
/// ```
pub struct ShutdownWait<T: Key> {
    registry: StdArc<Registry<T>>,
    key: WaitKey,
}

impl<T: Key> ShutdownWait<T> {
    pub(crate) fn new(registry: StdArc<Registry<T>>) -> Self {
        ShutdownWait {
            registry,
            key: WaitKey::new(),
        }
    }

    /// Threads whose listener handles are alive now, ascending.
    pub fn still_running(&self) -> Vec<T> {
        Registry::still_running(&self.registry.state.lock())
    }

    /// Blocks until every listener handle is dropped, or `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> ShutdownReport<T> {
        let deadline = Instant::now().checked_add(timeout);
        let done = self
            .registry
            .state
            .wait(deadline, |state| (state.handles == 0).then_some(()));
        ShutdownReport {
            still_running: match done {
                Some(()) => Vec::new(),
                None => self.still_running(),
            },
        }
    }

    /// Polls for the last listener handle's drop, registering `cx`'s waker
    /// until then: the building block of the async facade's
    /// `shutdown_async`. The waker is woken when the count reaches zero.
    pub fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.registry.state.poll(&self.key, cx.waker(), |state| {
            (state.handles == 0).then_some(())
        })
    }
}

impl<T: Key> Drop for ShutdownWait<T> {
    fn drop(&mut self) {
        self.registry.state.deregister(&self.key);
    }
}

impl<T: Key> fmt::Debug for ShutdownWait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownWait")
            .field("still_running", &self.still_running())
            .finish()
    }
}

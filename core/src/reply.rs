//! One-shot replies to listener requests.
//!
//! A [`Reply`] and its [`PendingReply`] share one slot:
//!
//! | state     | entered by                         | `wait` returns        |
//! |-----------|------------------------------------|-----------------------|
//! | `Waiting` | `pair()`                           | blocks                |
//! | `Ready`   | `Reply::send`                      | `Ok(r)`, then `Taken` |
//! | `Dropped` | `Reply` dropped unsent             | `Err(ReplyError)`     |
//! | `Taken`   | the answer was returned once        | `Err(ReplyError)`     |
//!
//! `Waiting` is left exactly once, so a pending reply resolves exactly once
//! whatever happens to the command carrying the `Reply` (queued and never
//! read, dropped with a closed queue, given back by `NoListener`).

use crate::error::{ReplyError, ReplyTimeoutError};
use crate::sync::Arc;
use crate::waiters::{WaitKey, WaitList};
use std::fmt;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

enum State<R> {
    Waiting,
    Ready(R),
    Dropped,
    Taken,
}

/// The slot, in the wait list of the one waiter (the `PendingReply`,
/// blocked or polled).
type Shared<R> = WaitList<State<R>>;

/// Leaves `Waiting` for `next`, waking the waiter; a no-op in any other
/// state.
fn resolve<R>(shared: &Shared<R>, next: State<R>) {
    let mut state = shared.lock();
    if matches!(*state, State::Waiting) {
        *state = next;
        state.wake_all();
    }
}

/// Creates a connected reply pair.
pub(crate) fn pair<R>() -> (Reply<R>, PendingReply<R>) {
    let shared = Arc::new(WaitList::new(State::Waiting));
    (
        Reply {
            shared: Some(Arc::clone(&shared)),
        },
        PendingReply {
            shared,
            key: WaitKey::new(),
        },
    )
}

/// The answering half of a request: put it in the command, and the listener
/// calls [`send`](Self::send). Dropping it unsent resolves the
/// [`PendingReply`] with an error.
pub struct Reply<R> {
    /// `None` once sent.
    shared: Option<Arc<Shared<R>>>,
}

impl<R> Reply<R> {
    /// A connected pair, for a request sent some other way than
    /// [`ThreadEntry::request`](crate::ThreadEntry::request): with
    /// [`send_timeout`](crate::ThreadEntry::send_timeout), or the async
    /// facade's `send_async`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use switchboard_core::{Engine, QueueConfig, Reply};
    ///
    /// let engine: Engine<u64, u64, (), Reply<u32>> = Engine::new();
    /// let entry = engine.thread(1);
    /// let listener = entry.set_listener_with(&Arc::new(()), QueueConfig::bounded(8));
    /// let (reply, pending) = Reply::pair();
    /// entry.send_timeout(reply, Duration::from_secs(1)).unwrap();
    /// listener.recv().unwrap().send(5);
    /// assert_eq!(pending.wait(), Ok(5));
    /// ```
    pub fn pair() -> (Reply<R>, PendingReply<R>) {
        pair()
    }

    /// Answers the request. If the requester gave up, the answer is dropped.
    pub fn send(mut self, r: R) {
        if let Some(shared) = self.shared.take() {
            resolve(&shared, State::Ready(r));
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            resolve(&shared, State::Dropped);
        }
    }
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

/// The waiting half of a request made with
/// [`ThreadEntry::request`](crate::ThreadEntry::request).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use switchboard_core::{Engine, Reply};
///
/// enum Cmd {
///     Add(u32, u32, Reply<u32>),
/// }
///
/// let engine: Engine<u64, u64, (), Cmd> = Engine::new();
/// let entry = engine.thread(1);
/// let listener = entry.set_listener(&Arc::new(()));
/// let worker = std::thread::spawn(move || {
///     while let Ok(Cmd::Add(a, b, reply)) = listener.recv() {
///         reply.send(a + b);
///     }
/// });
/// let pending = entry.request(|reply| Cmd::Add(2, 3, reply)).unwrap();
/// assert_eq!(pending.wait(), Ok(5));
/// entry.clear_listener();
/// worker.join().unwrap();
/// ```
pub struct PendingReply<R> {
    shared: Arc<Shared<R>>,
    /// The registration of the latest pending `poll_reply`, if any.
    key: WaitKey,
}

impl<R> Drop for PendingReply<R> {
    fn drop(&mut self) {
        self.shared.deregister(&self.key);
    }
}

impl<R> PendingReply<R> {
    fn take(state: &mut State<R>) -> Option<Result<R, ReplyError>> {
        match std::mem::replace(state, State::Taken) {
            State::Ready(r) => Some(Ok(r)),
            State::Dropped | State::Taken => Some(Err(ReplyError)),
            State::Waiting => {
                *state = State::Waiting;
                None
            }
        }
    }

    /// Blocks until the answer arrives or the [`Reply`] is dropped.
    ///
    /// # Errors
    ///
    /// [`ReplyError`] if the `Reply` was dropped unsent: the command was
    /// discarded, or its listener was replaced, cleared or removed before
    /// answering.
    pub fn wait(self) -> Result<R, ReplyError> {
        self.shared
            .wait(None, Self::take)
            .unwrap_or(Err(ReplyError))
    }

    /// Blocks at most `timeout` for the answer.
    ///
    /// # Errors
    ///
    /// [`ReplyTimeoutError::Timeout`] if none came in time (waiting again may
    /// still get it); [`ReplyTimeoutError::Dropped`] if the `Reply` was
    /// dropped unsent or the answer was already returned.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<R, ReplyTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        match self.shared.wait(deadline, Self::take) {
            Some(r) => r.map_err(|ReplyError| ReplyTimeoutError::Dropped),
            None => Err(ReplyTimeoutError::Timeout),
        }
    }

    /// Polls for the answer, registering `cx`'s waker if it has not come:
    /// the building block of the async facade's reply future.
    pub fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Result<R, ReplyError>> {
        self.shared.poll(&self.key, cx.waker(), Self::take)
    }
}

impl<R> fmt::Debug for PendingReply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.shared.lock() {
            State::Waiting => "waiting",
            State::Ready(_) => "ready",
            State::Dropped => "dropped",
            State::Taken => "taken",
        };
        f.debug_struct("PendingReply")
            .field("state", &state)
            .finish()
    }
}

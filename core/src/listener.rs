//! Thread listeners: the task that serves a thread, its command queue and
//! its cancellation token.
//!
//! A thread entry holds one [`ListenerSlot`] behind a mutex. The slot's
//! states:
//!
//! | state     | `generation` | `current`  | `send` does              |
//! |-----------|--------------|------------|--------------------------|
//! | never set | 0            | `None`     | gives the message back   |
//! | listening | g ≥ 1        | `Some`     | queues for listener g    |
//! | cleared   | g ≥ 1        | `None`     | gives the message back   |
//!
//! `set_listener` moves any state to "listening" with `g + 1`, first
//! cancelling and closing the previous listener. `clear_listener` moves
//! "listening" to "cleared". Generations are never reused. Every transition
//! and every send happens under the slot's mutex, so a command reaches the
//! listener current when `send` took the lock, and the per-sender FIFO order
//! of the queue carries over.

use crate::error::{NoListener, RecvError, RecvTimeoutError, TryRecvError};
use crate::sync::channel::{self, Receiver, Sender};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};
use std::fmt;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A weak handle on the object that owns a listener (see
/// [`ThreadEntry::set_listener`](crate::ThreadEntry::set_listener)).
trait OwnerHandle: Send + Sync {
    /// The owner's address, whether or not it is alive. The weak handle
    /// keeps the allocation, so the address cannot be reused meanwhile.
    fn addr(&self) -> *const ();
    fn is_alive(&self) -> bool;
}

impl<O: ?Sized + Send + Sync> OwnerHandle for std::sync::Weak<O> {
    fn addr(&self) -> *const () {
        self.as_ptr() as *const ()
    }

    fn is_alive(&self) -> bool {
        self.strong_count() > 0
    }
}

/// The current listener, as the thread entry sees it.
struct Current<M> {
    tx: Sender<M>,
    /// Woken after every send and when the queue closes.
    waker: Arc<WakerCell>,
    token: CancelToken,
    owner: Box<dyn OwnerHandle>,
}

/// One task's waker, for a queue with a single consumer.
///
/// The consumer registers, then re-checks the queue; producers push, then
/// take the waker. Both sides go through the cell's mutex, so a push the
/// consumer's re-check missed is followed by a take that finds the waker.
struct WakerCell(Mutex<Option<Waker>>);

impl WakerCell {
    fn register(&self, waker: &Waker) {
        let mut slot = self.0.lock();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let waker = self.0.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Listener bookkeeping of one thread entry (see the module docs).
pub(crate) struct ListenerSlot<M> {
    generation: u64,
    current: Option<Current<M>>,
}

impl<M> ListenerSlot<M> {
    pub(crate) fn new() -> Self {
        ListenerSlot {
            generation: 0,
            current: None,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn has_listener(&self) -> bool {
        self.current.is_some()
    }

    pub(crate) fn set<O: ?Sized + Send + Sync + 'static>(
        &mut self,
        owner: &std::sync::Arc<O>,
    ) -> Listener<M> {
        self.clear();
        self.generation += 1;
        let (tx, rx) = channel::unbounded();
        let token = CancelToken::new();
        let waker = Arc::new(WakerCell(Mutex::new(None)));
        self.current = Some(Current {
            tx,
            waker: Arc::clone(&waker),
            token: token.clone(),
            owner: Box::new(std::sync::Arc::downgrade(owner)),
        });
        Listener {
            rx,
            waker,
            generation: self.generation,
            token,
        }
    }

    /// Cancels and closes the current listener, if any; returns whether
    /// there was one.
    pub(crate) fn clear(&mut self) -> bool {
        match self.current.take() {
            Some(old) => {
                old.token.cancel();
                // Dropping the only sender closes the queue; the old
                // listener can still drain what was queued before.
                drop(old.tx);
                old.waker.wake();
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear_if(&mut self, generation: u64) -> bool {
        self.generation == generation && self.clear()
    }

    pub(crate) fn matches<O: ?Sized>(&self, owner: &std::sync::Arc<O>) -> bool {
        self.current.as_ref().is_some_and(|cur| {
            cur.owner.is_alive() && cur.owner.addr() == std::sync::Arc::as_ptr(owner) as *const ()
        })
    }

    pub(crate) fn send(&self, m: M) -> Result<(), NoListener<M>> {
        match &self.current {
            Some(cur) => {
                cur.tx.send(m).map_err(|e| NoListener(e.0))?;
                cur.waker.wake();
                Ok(())
            }
            None => Err(NoListener(m)),
        }
    }
}

/// The receiving end of a thread's command queue, returned by
/// [`ThreadEntry::set_listener`](crate::ThreadEntry::set_listener).
///
/// The queue closes, and [`token`](Self::token) fires, when the listener is
/// replaced or cleared; the receive methods keep returning commands queued
/// before that, then fail.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use switchboard_core::Engine;
///
/// let engine: Engine<u64, u64, (), &str> = Engine::new();
/// let entry = engine.thread(1);
/// let owner = Arc::new(());
/// let listener = entry.set_listener(&owner);
/// entry.send("ping").unwrap();
/// assert_eq!(listener.recv(), Ok("ping"));
///
/// entry.clear_listener();
/// assert!(listener.is_cancelled());
/// assert!(listener.recv().is_err());
/// ```
pub struct Listener<M> {
    rx: Receiver<M>,
    waker: Arc<WakerCell>,
    generation: u64,
    token: CancelToken,
}

impl<M> Listener<M> {
    /// This listener's generation (the first listener of a thread is 1).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Blocks for the next command.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the listener was replaced or cleared and every
    /// command queued before that was received.
    pub fn recv(&self) -> Result<M, RecvError> {
        self.rx.recv().map_err(|_| RecvError)
    }

    /// The next command, if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none is queued now,
    /// [`TryRecvError::Closed`] once closed and drained.
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        self.rx.try_recv().map_err(|e| match e {
            channel::TryRecvError::Empty => TryRecvError::Empty,
            channel::TryRecvError::Disconnected => TryRecvError::Closed,
        })
    }

    /// Blocks for the next command, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Closed`] once closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            channel::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            channel::RecvTimeoutError::Disconnected => RecvTimeoutError::Closed,
        })
    }

    /// Polls for the next command, registering `cx`'s waker if none is
    /// queued: the building block of the async facade's listener stream.
    /// The waker is woken by the next send or by the queue closing. A
    /// listener has one consumer: a second task polling it takes over the
    /// wake-up.
    ///
    /// Returns `Ready(Err(RecvError))` once closed and drained.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<M, RecvError>> {
        match self.try_recv() {
            Ok(m) => return Poll::Ready(Ok(m)),
            Err(TryRecvError::Closed) => return Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => {}
        }
        self.waker.register(cx.waker());
        match self.try_recv() {
            Ok(m) => Poll::Ready(Ok(m)),
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Whether this listener was replaced or cleared.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A token that fires when this listener is replaced or cleared.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }
}

impl<M> fmt::Debug for Listener<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("generation", &self.generation)
            .field("cancelled", &self.is_cancelled())
            .field("queued", &self.rx.len())
            .finish()
    }
}

struct CancelInner {
    cancelled: AtomicBool,
    /// Async waiters; also the mutex sleepers park on.
    wakers: Mutex<Vec<Waker>>,
    fired: Condvar,
}

/// Fires once, when its listener is replaced or cleared.
///
/// # Examples
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use switchboard_core::Engine;
///
/// let engine: Engine<u64, u64> = Engine::new();
/// let entry = engine.thread(1);
/// let token = entry.set_listener(&Arc::new(())).token();
/// assert!(!token.wait_timeout(Duration::from_millis(1)));
/// entry.set_listener(&Arc::new(())); // replaces the first listener
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

impl CancelToken {
    fn new() -> Self {
        CancelToken {
            inner: Arc::new(CancelInner {
                cancelled: AtomicBool::new(false),
                wakers: Mutex::new(Vec::new()),
                fired: Condvar::new(),
            }),
        }
    }

    /// Fires the token; only the first call has an effect.
    fn cancel(&self) {
        // AcqRel: the swap decides the one call that fires; Release makes
        // the listener's replacement visible to whoever sees the token.
        if !self.inner.cancelled.swap(true, Ordering::AcqRel) {
            // Taking the lock orders the flag before any waiter's re-check.
            let wakers = std::mem::take(&mut *self.inner.wakers.lock());
            self.inner.fired.notify_all();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Whether the token has fired.
    pub fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the swap in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Blocks until the token fires or `timeout` passes; returns whether it
    /// fired.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait();
            return true;
        };
        let mut guard = self.inner.wakers.lock();
        while !self.is_cancelled() {
            let timed_out;
            (guard, timed_out) = self.inner.fired.wait_until(guard, deadline);
            if timed_out {
                return self.is_cancelled();
            }
        }
        true
    }

    /// Blocks until the token fires.
    pub fn wait(&self) {
        let mut guard = self.inner.wakers.lock();
        while !self.is_cancelled() {
            guard = self.inner.fired.wait(guard);
        }
    }

    /// Polls the token, registering `cx`'s waker if it has not fired: the
    /// building block of the async facade's `cancelled()`. The waker is woken
    /// once, when the token fires.
    pub fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_cancelled() {
            return Poll::Ready(());
        }
        let mut wakers = self.inner.wakers.lock();
        if self.is_cancelled() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

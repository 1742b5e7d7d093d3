//! The loom stand-in for crossbeam's channels (`sync.rs`'s `channel` under
//! `--cfg loom`; compiled only there): a mutex'd queue with a
//! condition variable, the same API subset, the same capacity (a full
//! bounded queue refuses `try_send`) and the same disconnection
//! rules (receivers see `Disconnected` once every sender is gone and the
//! queue is drained; dropping the receiver discards queued messages).

use super::loom_lock::{Condvar, Mutex};
use loom::sync::Arc;
use std::collections::VecDeque;

struct State<T> {
    queue: VecDeque<T>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    senders: usize,
    receiver: bool,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

pub(crate) struct Sender<T>(Arc<Chan<T>>);
pub(crate) struct Receiver<T>(Arc<Chan<T>>);
#[derive(Debug)]
pub(crate) struct RecvError;
#[derive(Debug)]
pub(crate) enum TryRecvError {
    Empty,
    Disconnected,
}
#[derive(Debug)]
pub(crate) enum RecvTimeoutError {
    Timeout,
    Disconnected,
}

pub(crate) enum TrySendError<T> {
    Full(T),
    Disconnected(T),
}

pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    with_capacity(None)
}

pub(crate) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    with_capacity(Some(cap))
}

fn with_capacity<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity,
            senders: 1,
            receiver: true,
        }),
        ready: Condvar::new(),
    });
    (Sender(Arc::clone(&chan)), Receiver(chan))
}

impl<T> Sender<T> {
    /// Never blocks: a full bounded queue gives the value back.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.0.state.lock();
        if !state.receiver {
            return Err(TrySendError::Disconnected(value));
        }
        if state.capacity.is_some_and(|cap| state.queue.len() >= cap) {
            return Err(TrySendError::Full(value));
        }
        state.queue.push_back(value);
        drop(state);
        self.0.ready.notify_all();
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.state.lock().queue.len()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.state.lock().senders += 1;
        Sender(Arc::clone(&self.0))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.0.ready.notify_all();
        }
    }
}

impl<T> Receiver<T> {
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.0.state.lock();
        match state.queue.pop_front() {
            Some(v) => Ok(v),
            None if state.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    pub(crate) fn recv(&self) -> Result<T, RecvError> {
        let mut state = self.0.state.lock();
        loop {
            if let Some(v) = state.queue.pop_front() {
                return Ok(v);
            }
            if state.senders == 0 {
                return Err(RecvError);
            }
            state = self.0.ready.wait(state);
        }
    }

    /// No clock under loom: an empty open queue times out at once.
    pub(crate) fn recv_timeout(
        &self,
        _timeout: std::time::Duration,
    ) -> Result<T, RecvTimeoutError> {
        self.try_recv().map_err(|e| match e {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.0.state.lock().queue.len()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.receiver = false;
        let discarded = std::mem::take(&mut state.queue);
        drop(state);
        drop(discarded);
    }
}

//! Error types. Each is small, `Send + Sync`, implements
//! [`std::error::Error`], and gives back any payload it carries.

use std::fmt;

/// The connection is not live: [`Engine::subscribe`](crate::Engine::subscribe)
/// refused and changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NotConnected;

impl fmt::Display for NotConnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection is not live")
    }
}

impl std::error::Error for NotConnected {}

/// The thread has no current listener; the message comes back.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Engine, NoListener};
///
/// let engine: Engine<u64, u64, (), String> = Engine::new();
/// let entry = engine.thread(1);
/// let NoListener(msg) = entry.send("hello".to_string()).unwrap_err();
/// assert_eq!(msg, "hello");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NoListener<M>(pub M);

impl<M> NoListener<M> {
    /// The message that could not be delivered.
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> fmt::Debug for NoListener<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoListener { .. }")
    }
}

impl<M> fmt::Display for NoListener<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("thread has no listener")
    }
}

impl<M> std::error::Error for NoListener<M> {}

/// [`Listener::recv`](crate::Listener::recv) failed: the queue is closed
/// (the listener was replaced or cleared) and drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("listener queue is closed and drained")
    }
}

impl std::error::Error for RecvError {}

/// Why [`Listener::try_recv`](crate::Listener::try_recv) returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// The queue is open but holds no message right now.
    Empty,
    /// The queue is closed and drained.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("listener queue is empty"),
            TryRecvError::Closed => f.write_str("listener queue is closed and drained"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// Why [`Listener::recv_timeout`](crate::Listener::recv_timeout) returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// No message arrived in time.
    Timeout,
    /// The queue is closed and drained.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for a command"),
            RecvTimeoutError::Closed => f.write_str("listener queue is closed and drained"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// The [`Reply`](crate::Reply) was dropped without an answer (the command
/// was discarded, or its listener replaced, cleared or removed), or the
/// answer was already taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplyError;

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reply dropped without an answer")
    }
}

impl std::error::Error for ReplyError {}

/// Why [`PendingReply::wait_timeout`](crate::PendingReply::wait_timeout)
/// returned no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplyTimeoutError {
    /// No answer yet; waiting again may still get one.
    Timeout,
    /// The reply was dropped without an answer, or the answer was already
    /// taken: no answer will ever come.
    Dropped,
}

impl fmt::Display for ReplyTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyTimeoutError::Timeout => f.write_str("timed out waiting for a reply"),
            ReplyTimeoutError::Dropped => f.write_str("reply dropped without an answer"),
        }
    }
}

impl std::error::Error for ReplyTimeoutError {}

/// Why [`SubscriberWatch::wait_changed`](crate::SubscriberWatch::wait_changed)
/// returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchError {
    /// No change arrived in time.
    Timeout,
    /// The thread was removed and every change before that was reported.
    Closed,
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Timeout => f.write_str("timed out waiting for a change"),
            WatchError::Closed => f.write_str("watched thread was removed"),
        }
    }
}

impl std::error::Error for WatchError {}

/// A broken snapshot invariant, found by
/// [`Snapshot::validate`](crate::Snapshot::validate). Seeing one is a bug in
/// this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub String);

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot invariant violated: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

/// A [`ChangeFeed`](crate::ChangeFeed) fell behind the engine's retained
/// change log ([`Config::change_log`](crate::Config::change_log)): some
/// batch it still had to deliver is gone. The feed reports it from then on;
/// resync from a fresh snapshot (see the crate docs, "Following changes").
///
/// [`Engine::changes_since`](crate::Engine::changes_since) returns it too,
/// when a version after the one asked for is no longer retained, or the one
/// asked for was never published.
///
/// # Examples
///
/// ```
/// use switchboard_core::{Caps, Config, Engine, Lagged};
///
/// let engine: Engine<u64, u64> = Engine::with_config(Config::default().change_log(1));
/// let mut feed = engine.changes();
/// engine.connect(1, Caps::NONE);
/// engine.connect(2, Caps::NONE); // version 1's batch is gone
/// assert_eq!(feed.try_next(), Err(Lagged));
/// assert_eq!(feed.try_next(), Err(Lagged)); // from then on
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Lagged;

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("change feed fell behind the retained change log")
    }
}

impl std::error::Error for Lagged {}

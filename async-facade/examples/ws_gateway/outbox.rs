//! A connection's outbox: the bounded queue between everything that
//! produces its frames (its own answers, every room's fan-out) and the task
//! that writes them to its websocket, and the switch that closes it.
//!
//! Slow-consumer policy: a push never blocks and never waits. If the
//! outbox is full, the frame is dropped and the connection is closed
//! (the socket is dropped without a close frame: a client that does not
//! drain its socket would not read one): a client that cannot keep up loses
//! its connection, never its place in the order of what it did receive,
//! and never slows a fan-out or another client. Every frame of one
//! connection goes through its one outbox, so a client sees its answers
//! (`pong` included) in order with its deliveries.

use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

/// Why a connection closes. The first reason given wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// Its outbox was full: the slow-consumer policy.
    SlowConsumer,
    /// Another websocket resumed its session and took its id over.
    Replaced,
    /// The server is shutting down.
    ShuttingDown,
    /// Cluster mode: this node is shutting down and its rooms are handed
    /// over; the client should reconnect (to another node).
    Restart,
    /// The client closed, dropped the connection, or broke the protocol.
    Ended,
}

/// The sending side of one websocket's outbox; cheap to clone. This is
/// the per-connection data a fan-out reaches a member through.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    frames: mpsc::Sender<Message>,
    close: Arc<watch::Sender<Option<Close>>>,
}

/// The receiving side, owned by the connection's writer.
pub(crate) struct Drain {
    pub(crate) frames: mpsc::Receiver<Message>,
    pub(crate) closed: watch::Receiver<Option<Close>>,
}

impl Outbox {
    /// An outbox holding up to `capacity` frames, and its drain.
    pub(crate) fn new(capacity: usize) -> (Outbox, Drain) {
        let (frames, rx) = mpsc::channel(capacity.max(1));
        let (close, closed) = watch::channel(None);
        let outbox = Outbox {
            frames,
            close: Arc::new(close),
        };
        (outbox, Drain { frames: rx, closed })
    }

    /// Queues `frame` without waiting. A full outbox closes the connection
    /// (the slow-consumer policy) and drops the frame; so does a closed one.
    /// Returns whether the frame was queued.
    pub(crate) fn push(&self, frame: Message) -> bool {
        match self.frames.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(Close::SlowConsumer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the connection to close for `why`, unless it already is
    /// closing for another reason.
    pub(crate) fn close(&self, why: Close) {
        self.close.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(why);
            }
            first
        });
    }

    /// A receiver that sees the close reason once one is given.
    pub(crate) fn closed(&self) -> watch::Receiver<Option<Close>> {
        self.close.subscribe()
    }

    /// Whether `other` is this very outbox (not merely a similar one).
    pub(crate) fn same(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.close, &other.close)
    }
}

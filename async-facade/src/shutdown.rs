//! Awaiting the end of every listener.

use crate::fused::Done;
use futures::future::FusedFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{Key, ShutdownWait};

/// Resolves once every listener handle of an engine is dropped; made by
/// [`EngineExt::shutdown_async`](crate::EngineExt::shutdown_async), which
/// starts the shutdown when called (no new listener starts, every current
/// one is cleared).
///
/// Woken once, when the engine's last `Listener` handle is dropped. It has
/// no timeout: wrap it in your runtime's (`tokio::time::timeout`), and ask
/// [`still_running`](Self::still_running) who is late.
///
/// # Cancel safety
///
/// Dropping it stops only the waiting (and frees its waker registration):
/// the shutdown itself has begun and stays in force. A new
/// `shutdown_async` waits again.
#[derive(Debug)]
pub struct ShutdownFuture<T: Key> {
    wait: ShutdownWait<T>,
    done: Done,
}

impl<T: Key> ShutdownFuture<T> {
    pub(crate) fn new(wait: ShutdownWait<T>) -> Self {
        ShutdownFuture {
            wait,
            done: Done::default(),
        }
    }

    /// Threads whose listener handles are alive now, ascending.
    pub fn still_running(&self) -> Vec<T> {
        self.wait.still_running()
    }
}

impl<T: Key> Future for ShutdownFuture<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let wait = &mut this.wait;
        this.done.poll(|| wait.poll_done(cx))
    }
}

impl<T: Key> FusedFuture for ShutdownFuture<T> {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

//! Awaiting a listener's cancellation.

use crate::fused::Done;
use futures::future::FusedFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::CancelToken;

/// Awaits a [`CancelToken`].
pub trait CancelTokenExt {
    /// Completes once the token fired (its listener was replaced or
    /// cleared); at once if it already has.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::executor::block_on;
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::Engine;
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// let entry = engine.thread(1);
    /// let listener = entry.set_listener(&Arc::new(()));
    /// let token = listener.token();
    /// let cancelled = token.cancelled();
    /// entry.clear_listener();
    /// block_on(cancelled);
    /// ```
    fn cancelled(&self) -> Cancelled;
}

impl CancelTokenExt for CancelToken {
    fn cancelled(&self) -> Cancelled {
        Cancelled {
            token: self.clone(),
            done: Done::default(),
        }
    }
}

/// Completes once its [`CancelToken`] fires; made by
/// [`CancelTokenExt::cancelled`].
///
/// Woken exactly once, when the token fires. Any number of tasks may await
/// the same token (each with its own `Cancelled`); all are woken. Polling it
/// again after it completed completes again.
///
/// # Cancel safety
///
/// Dropping it loses nothing: the token stays fired or unfired, and the
/// other waiters are still woken. Create it once outside a `select!` loop
/// and poll it by `&mut` (it is `Unpin`).
#[derive(Debug)]
pub struct Cancelled {
    token: CancelToken,
    done: Done,
}

impl Future for Cancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let token = &this.token;
        this.done.poll(|| token.poll_cancelled(cx))
    }
}

impl FusedFuture for Cancelled {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

//! Waiting for a thread to lose its last subscriber.

use crate::fused::Done;
use crate::shutdown::ShutdownFuture;
use futures::future::FusedFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_core::{Engine, Key, SubscriberWatch};

/// Awaits a thread going idle, and the engine's shutdown.
pub trait EngineExt<T: Key> {
    /// Completes once thread `t` has no subscribers, or is gone (removed, or
    /// unknown when this was called). Pair it with
    /// [`Engine::remove_thread_if_idle`], which is atomic against a racing
    /// `subscribe`, to unload idle threads.
    ///
    /// The thread is looked up now; the condition is checked at each poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::executor::block_on;
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::{Caps, Engine};
    ///
    /// let engine: Engine<u64, u64> = Engine::new();
    /// engine.connect(1, Caps::NONE);
    /// engine.subscribe(7, 1).unwrap();
    ///
    /// let idle = engine.wait_idle(7);
    /// engine.disconnect(1);
    /// block_on(idle);
    /// assert!(engine.remove_thread_if_idle(7));
    /// ```
    fn wait_idle(&self, t: T) -> WaitIdle;

    /// Starts the engine's shutdown now, as
    /// [`Engine::shutdown`](switchboard_core::Engine::shutdown) does (no new
    /// listener starts, every current one is cleared), and returns a future
    /// that resolves once every listener handle of the engine, of any
    /// generation, has been dropped. Add your own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use futures::{executor::block_on, StreamExt};
    /// use switchboard_async::prelude::*;
    /// use switchboard_async::Engine;
    ///
    /// let engine: Arc<Engine<u64, u64, (), u32>> = Arc::new(Engine::new());
    /// let mut commands = engine.thread(1).set_listener(&engine).into_stream();
    /// block_on(async {
    ///     let task = async move { while commands.next().await.is_some() {} };
    ///     futures::join!(task, engine.shutdown_async());
    /// });
    /// assert!(engine.shutdown(Duration::ZERO).still_running.is_empty());
    /// ```
    fn shutdown_async(&self) -> ShutdownFuture<T>;
}

impl<T: Key, C: Key, S: Send + 'static, M: Send + 'static, D: Send + Sync + 'static> EngineExt<T>
    for Engine<T, C, S, M, D>
{
    fn wait_idle(&self, t: T) -> WaitIdle {
        WaitIdle::new(self.watch_subscribers(t))
    }

    fn shutdown_async(&self) -> ShutdownFuture<T> {
        ShutdownFuture::new(self.begin_shutdown())
    }
}

/// Completes once a thread has no subscribers or is gone; made by
/// [`EngineExt::wait_idle`] and [`EntryExt::wait_idle`](crate::EntryExt::wait_idle).
///
/// Built on the thread's [`SubscriberWatch`]: woken only by a real change of
/// its has-subscribers state or by its removal. If the thread lost its last
/// subscriber and gained one again before the poll, it is not idle and the
/// future stays pending. Any number of tasks may wait for the same thread;
/// every one is woken.
///
/// It is fused: once it has completed,
/// [`is_terminated`](FusedFuture::is_terminated) is true and a further poll
/// returns `Pending` (as [`futures::future::Fuse`] does), so a `select!`
/// loop can poll it by `&mut` without it firing twice.
///
/// # Cancel safety
///
/// It holds only its own watch, so dropping it loses nothing and takes no
/// wake-up from other waiters.
#[derive(Debug)]
pub struct WaitIdle {
    /// `None` once complete, or when the thread was unknown.
    watch: Option<SubscriberWatch>,
    done: Done,
}

impl WaitIdle {
    /// Waits on `watch`; `None`: the thread is unknown, ready at once.
    pub(crate) fn new(watch: Option<SubscriberWatch>) -> Self {
        WaitIdle {
            watch,
            done: Done::default(),
        }
    }
}

impl Future for WaitIdle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let slot = &mut this.watch;
        this.done.poll(|| {
            if let Some(watch) = slot {
                // Idle or removed when we look, else register and re-check
                // through the watch's version: a change after `get` is
                // reported here.
                while watch.get() && !watch.is_closed() {
                    match watch.poll_changed(cx) {
                        Poll::Ready(Ok(true)) => continue,
                        Poll::Ready(Ok(false) | Err(_)) => break,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
            // Complete (or the thread was unknown): the watch is let go.
            *slot = None;
            Poll::Ready(())
        })
    }
}

impl FusedFuture for WaitIdle {
    fn is_terminated(&self) -> bool {
        self.done.is_done()
    }
}

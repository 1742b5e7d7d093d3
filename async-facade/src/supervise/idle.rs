//! The idle policy: unload a supervised thread once it stayed idle for a
//! whole linger (see the race argument on [`Supervisor`](super::Supervisor)).

use crate::watch::SubscriberWatchExt;
use futures::future::{self, BoxFuture, Either};
use std::sync::{Arc, Weak};
use std::time::Duration;
use switchboard_core::{Engine, Key, ThreadEntry};

/// The host's timer, boxed.
pub(super) type Sleep = dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync;

/// When to unload an idle thread.
#[derive(Clone)]
pub(super) struct IdlePolicy {
    pub(super) linger: Duration,
    pub(super) sleep: Arc<Sleep>,
}

/// The idle policy of one task.
pub(super) struct Unload<T: Key, C: Key, S, M, D: Send + Sync + 'static> {
    pub(super) engine: Weak<Engine<T, C, S, M, D>>,
    pub(super) policy: IdlePolicy,
}

impl<T, C, S, M, D> Unload<T, C, S, M, D>
where
    T: Key,
    C: Key,
    S: Send + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    /// Waits until `entry` was idle for a whole linger, then unloads it;
    /// `true` once unloaded. `false` if the entry was removed some other
    /// way or the engine is gone: nothing left to unload.
    pub(super) async fn run(self, entry: Arc<ThreadEntry<T, S, M>>) -> bool {
        let mut watch = entry.watch_subscribers();
        loop {
            // (1) Wait for "no subscriber", marking that version seen.
            while watch.get_and_mark_seen() {
                if watch.changed().await.is_err() {
                    return false; // removed
                }
            }
            if watch.is_closed() {
                return false;
            }
            // (2) The linger; any change meanwhile re-arms it.
            let linger = (self.policy.sleep)(self.policy.linger);
            match future::select(linger, watch.changed()).await {
                Either::Left(((), _)) => {}
                Either::Right((Ok(_), _)) => continue,
                Either::Right((Err(_), _)) => return false, // removed
            }
            // (3) Unload, atomically against a racing subscribe.
            let Some(engine) = self.engine.upgrade() else {
                return false;
            };
            if engine.remove_entry_if_idle(&entry) {
                return true;
            }
            // A subscriber came first (or the entry is no longer current,
            // and its watch is closed): back to (1).
        }
    }
}

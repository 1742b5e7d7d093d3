//! What the sim needs from a design beyond [`Registry`]: the host-facing
//! calls of an app server (fan-out as the host does it, listeners, commands,
//! requests, idle unload). Implemented for switchboard and for the maps
//! behind a lock: the reference design (`tokio::sync::Mutex`) and a
//! synchronous `parking_lot::Mutex`.

use crate::designs::{Cmd, Locked, Maps, MapsLock, RefCmd, Switchboard};
use crate::registry::Registry;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use switchboard_core::Caps;

/// A listener's serving loop, to run on a worker runtime.
pub type ListenerTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What listeners did, summed over all of them.
#[derive(Debug, Default)]
pub struct Served {
    /// Notifications applied to thread state.
    pub notifies: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
}

impl Served {
    fn count(counter: &AtomicU64) {
        // Relaxed: a statistics counter.
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sizes of a design's final graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphCounts {
    /// Live connections.
    pub connections: usize,
    /// Thread entries.
    pub threads: usize,
    /// Subscription edges.
    pub subscriptions: usize,
}

/// An app-server host on top of one design.
pub trait SimHost: Registry {
    /// Delivers an event to each subscriber of `t` the way a host using this
    /// design does: switchboard through `subscribers(t)`, the reference
    /// design through `subscribed_connection_ids` (a `Vec` built under the
    /// lock, delivered after it is released), a synchronous mutex by
    /// visiting the set under the lock (no allocation).
    fn fan_out(&self, t: u64, f: impl FnMut(u64));

    /// The smallest subscriber of `t` whose caps contain `required`.
    fn first_subscriber_with(&self, t: u64, required: u64) -> Option<u64>;

    /// Removes `t` (clearing its listener) if it has no subscriber.
    fn remove_thread_if_idle(&self, t: u64) -> bool;

    /// Installs a listener on `entry` if it has none and returns the task
    /// that serves it (it ends once the listener is cleared or replaced).
    fn ensure_listener(&self, entry: &Self::Entry, served: &Arc<Served>) -> Option<ListenerTask>;

    /// Sends a notification to `t`'s listener; `false` if it has none.
    fn notify(&self, t: u64, n: u64) -> bool;

    /// A request round trip to `t`'s listener; `None` if it has none or the
    /// request was dropped.
    fn request(&self, t: u64, n: u64) -> Option<u64>;

    /// Clears every listener (shutdown).
    fn clear_all_listeners(&self);

    /// Sizes of the current graph.
    fn counts(&self) -> GraphCounts;
}

impl SimHost for Switchboard {
    fn fan_out(&self, t: u64, mut f: impl FnMut(u64)) {
        for c in self.0.subscribers(t).iter() {
            f(c);
        }
    }

    fn first_subscriber_with(&self, t: u64, required: u64) -> Option<u64> {
        self.0.first_subscriber_with(t, Caps(required))
    }

    fn remove_thread_if_idle(&self, t: u64) -> bool {
        self.0.remove_thread_if_idle(t)
    }

    fn ensure_listener(&self, entry: &Self::Entry, served: &Arc<Served>) -> Option<ListenerTask> {
        if entry.has_listener() {
            return None;
        }
        let listener = entry.set_listener(&Arc::new(()));
        let entry = Arc::clone(entry);
        let served = Arc::clone(served);
        Some(Box::pin(async move {
            while let Ok(cmd) = poll_fn(|cx| listener.poll_recv(cx)).await {
                match cmd {
                    Cmd::Notify(_) => {
                        entry.state().events += 1;
                        Served::count(&served.notifies);
                    }
                    Cmd::Request(n, reply) => {
                        reply.send(n.wrapping_add(1));
                        Served::count(&served.requests);
                    }
                }
            }
        }))
    }

    fn notify(&self, t: u64, n: u64) -> bool {
        self.0
            .get_thread(t)
            .is_some_and(|e| e.send(Cmd::Notify(n)).is_ok())
    }

    fn request(&self, t: u64, n: u64) -> Option<u64> {
        let pending = self
            .0
            .get_thread(t)?
            .request(|reply| Cmd::Request(n, reply))
            .ok()?;
        pending.wait().ok()
    }

    fn clear_all_listeners(&self) {
        self.0.clear_all_listeners();
    }

    fn counts(&self) -> GraphCounts {
        let s = self.0.snapshot();
        GraphCounts {
            connections: s.connection_count(),
            threads: s.thread_count(),
            subscriptions: s.subscription_count(),
        }
    }
}

/// The maps behind a lock. Per-thread state and listener queues are the
/// reference design's in both (`tokio` mutex and channels, used blocking
/// from the driver threads); only the maps' lock and the fan-out differ
/// ([`MapsLock::FAN_OUT_FROM_COPY`]).
impl<L: MapsLock> SimHost for Locked<L> {
    fn fan_out(&self, t: u64, f: impl FnMut(u64)) {
        if L::FAN_OUT_FROM_COPY {
            self.read(|m| m.subscriber_ids(t)).into_iter().for_each(f);
        } else {
            self.read(|m| m.visit(t, f));
        }
    }

    fn first_subscriber_with(&self, t: u64, required: u64) -> Option<u64> {
        self.read(|m| m.first_subscriber_with(t, required))
    }

    fn remove_thread_if_idle(&self, t: u64) -> bool {
        // As the reference's `remove_thread_state`: remove under the maps'
        // lock, clear the listener after releasing it.
        match self.write(|m| m.remove_if_idle(t)) {
            Some(state) => {
                state.blocking_lock().clear_listener();
                true
            }
            None => false,
        }
    }

    fn ensure_listener(&self, entry: &Self::Entry, served: &Arc<Served>) -> Option<ListenerTask> {
        let (mut rx, cancel) = {
            let mut state = entry.blocking_lock();
            if state.has_listener() {
                return None;
            }
            state.set_listener()
        };
        let state = Arc::clone(entry);
        let served = Arc::clone(served);
        Some(Box::pin(async move {
            let _cancel = cancel;
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    RefCmd::Notify(_) => {
                        state.lock().await.events += 1;
                        Served::count(&served.notifies);
                    }
                    RefCmd::Request(n, reply) => {
                        let _ = reply.send(n.wrapping_add(1));
                        Served::count(&served.requests);
                    }
                }
            }
        }))
    }

    fn notify(&self, t: u64, n: u64) -> bool {
        let Some(state) = self.read(|m| m.threads.get(&t).map(|s| Arc::clone(&s.state))) else {
            return false;
        };
        let tx = state.blocking_lock().command_tx();
        tx.is_some_and(|tx| tx.send(RefCmd::Notify(n)).is_ok())
    }

    fn request(&self, t: u64, n: u64) -> Option<u64> {
        // As the reference's `resolve_server_request_on_thread_listener`.
        let state = self.read(|m| m.threads.get(&t).map(|s| Arc::clone(&s.state)))?;
        let tx = state.blocking_lock().command_tx()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        tx.send(RefCmd::Request(n, reply)).ok()?;
        answer.blocking_recv().ok()
    }

    fn clear_all_listeners(&self) {
        let states: Vec<_> =
            self.read(|m| m.threads.values().map(|s| Arc::clone(&s.state)).collect());
        for state in states {
            state.blocking_lock().clear_listener();
        }
    }

    fn counts(&self) -> GraphCounts {
        self.read(|m: &Maps| GraphCounts {
            connections: m.live.len(),
            threads: m.threads.len(),
            subscriptions: m.by_conn.values().map(|ts| ts.len()).sum(),
        })
    }
}

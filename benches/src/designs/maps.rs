//! The reference design's data: three `HashMap`s and a per-thread slot.
//!
//! Invariants (checked by [`Maps::validate`]): `by_conn[c]` holds `t` iff
//! `threads[t].subs` holds `c`; every such `c` is in `live`; no reverse set
//! is empty; each slot's has-subscribers watch equals `!subs.is_empty()`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// A command for a baseline thread's listener (the reference design's
/// `ThreadListenerCommand`, reduced to what the sim sends).
#[derive(Debug)]
pub enum RefCmd {
    /// An event to apply to the thread's state.
    Notify(u64),
    /// A request; the listener answers on the oneshot.
    Request(u64, oneshot::Sender<u64>),
}

/// Per-thread host state of the baselines: the reference design's
/// `ThreadState`, trimmed to a counter and the listener slot.
#[derive(Debug, Default)]
pub struct State {
    /// Events applied by the listener.
    pub events: u64,
    /// Bumped by each [`set_listener`](State::set_listener).
    pub listener_generation: u64,
    command_tx: Option<mpsc::UnboundedSender<RefCmd>>,
    cancel_tx: Option<oneshot::Sender<()>>,
}

impl State {
    /// Installs a new listener: cancels the previous one, bumps the
    /// generation and opens a new queue, whose receiver is returned with the
    /// cancel signal.
    pub fn set_listener(&mut self) -> (mpsc::UnboundedReceiver<RefCmd>, oneshot::Receiver<()>) {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        if let Some(previous) = self.cancel_tx.replace(cancel_tx) {
            let _ = previous.send(());
        }
        self.listener_generation = self.listener_generation.wrapping_add(1);
        let (tx, rx) = mpsc::unbounded_channel();
        self.command_tx = Some(tx);
        (rx, cancel_rx)
    }

    /// Cancels the listener and closes its queue.
    pub fn clear_listener(&mut self) {
        if let Some(cancel_tx) = self.cancel_tx.take() {
            let _ = cancel_tx.send(());
        }
        self.command_tx = None;
    }

    /// Whether a listener is installed.
    pub fn has_listener(&self) -> bool {
        self.command_tx.is_some()
    }

    /// A sender to the current listener's queue.
    pub fn command_tx(&self) -> Option<mpsc::UnboundedSender<RefCmd>> {
        self.command_tx.clone()
    }
}

/// The handle every baseline hands out for a thread: the reference design's
/// `Arc<tokio::sync::Mutex<ThreadState>>`.
pub type ThreadHandle = Arc<tokio::sync::Mutex<State>>;

/// One thread's entry in [`Maps::threads`]: the reference design's
/// `ThreadEntry` (state handle, subscriber set, has-subscribers watch).
#[derive(Clone, Debug)]
pub struct Slot {
    /// The thread's state, shared with whoever subscribed.
    pub state: ThreadHandle,
    /// The thread's subscribers.
    pub subs: HashSet<u64>,
    /// Whether `subs` is non-empty, for idle-unload watchers.
    pub has_subs: watch::Sender<bool>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            state: ThreadHandle::default(),
            subs: HashSet::new(),
            has_subs: watch::channel(false).0,
        }
    }
}

impl Slot {
    /// Updates the watch from `subs` (notifies only on a real change).
    pub fn update_has_subs(&self) {
        let now = !self.subs.is_empty();
        self.has_subs
            .send_if_modified(|v| std::mem::replace(v, now) != now);
    }
}

/// The three maps of the reference design. Methods do what the matching
/// [`Registry`](crate::Registry) methods document, on `&mut self`.
#[derive(Clone, Debug, Default)]
pub struct Maps {
    /// Live connections and their caps.
    pub live: HashMap<u64, u64>,
    /// Thread entries (forward index).
    pub threads: HashMap<u64, Slot>,
    /// Connection → threads (reverse index).
    pub by_conn: HashMap<u64, HashSet<u64>>,
}

impl Maps {
    /// See [`Registry::connect`](crate::Registry::connect).
    pub fn connect(&mut self, c: u64, caps: u64) -> bool {
        self.live.insert(c, caps).is_none()
    }

    /// See [`Registry::disconnect`](crate::Registry::disconnect).
    pub fn disconnect(&mut self, c: u64) -> Vec<u64> {
        self.live.remove(&c);
        let threads = self.by_conn.remove(&c).unwrap_or_default();
        let mut emptied = Vec::new();
        for t in threads {
            if let Some(slot) = self.threads.get_mut(&t) {
                slot.subs.remove(&c);
                slot.update_has_subs();
                if slot.subs.is_empty() {
                    emptied.push(t);
                }
            }
        }
        emptied.sort_unstable();
        emptied
    }

    /// See [`Registry::subscribe`](crate::Registry::subscribe).
    pub fn subscribe(&mut self, t: u64, c: u64) -> Option<ThreadHandle> {
        if !self.live.contains_key(&c) {
            return None;
        }
        self.by_conn.entry(c).or_default().insert(t);
        let slot = self.threads.entry(t).or_default();
        slot.subs.insert(c);
        slot.update_has_subs();
        Some(Arc::clone(&slot.state))
    }

    /// See [`Registry::unsubscribe`](crate::Registry::unsubscribe).
    pub fn unsubscribe(&mut self, t: u64, c: u64) -> bool {
        let Some(threads) = self.by_conn.get_mut(&c) else {
            return false;
        };
        if !threads.remove(&t) {
            return false;
        }
        if threads.is_empty() {
            self.by_conn.remove(&c);
        }
        if let Some(slot) = self.threads.get_mut(&t) {
            slot.subs.remove(&c);
            slot.update_has_subs();
        }
        true
    }

    /// Calls `f` with each subscriber of `t`.
    #[inline]
    pub fn visit(&self, t: u64, mut f: impl FnMut(u64)) {
        if let Some(slot) = self.threads.get(&t) {
            for &c in &slot.subs {
                f(c);
            }
        }
    }

    /// The subscribers of `t` as a `Vec` (the reference design's
    /// `subscribed_connection_ids`).
    pub fn subscriber_ids(&self, t: u64) -> Vec<u64> {
        self.threads
            .get(&t)
            .map(|slot| slot.subs.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The smallest subscriber of `t` whose caps contain `required`.
    pub fn first_subscriber_with(&self, t: u64, required: u64) -> Option<u64> {
        self.threads
            .get(&t)?
            .subs
            .iter()
            .copied()
            .filter(|c| {
                self.live
                    .get(c)
                    .is_some_and(|caps| caps & required == required)
            })
            .min()
    }

    /// Removes `t` if it has no subscriber; returns its state so the caller
    /// can clear its listener after releasing the maps.
    pub fn remove_if_idle(&mut self, t: u64) -> Option<ThreadHandle> {
        if !self.threads.get(&t)?.subs.is_empty() {
            return None;
        }
        self.threads.remove(&t).map(|slot| slot.state)
    }

    /// Checks the invariants listed in the module docs.
    ///
    /// # Errors
    ///
    /// The first violation found.
    pub fn validate(&self) -> Result<(), String> {
        for (t, slot) in &self.threads {
            if *slot.has_subs.borrow() == slot.subs.is_empty() {
                return Err(format!("thread {t}: watch disagrees with its set"));
            }
            for c in &slot.subs {
                if !self.live.contains_key(c) {
                    return Err(format!("edge {t}-{c} names a dead connection"));
                }
                if !self.by_conn.get(c).is_some_and(|ts| ts.contains(t)) {
                    return Err(format!("forward edge {t}-{c} without reverse edge"));
                }
            }
        }
        for (c, threads) in &self.by_conn {
            if threads.is_empty() {
                return Err(format!("connection {c}: empty reverse set stored"));
            }
            for t in threads {
                if !self.threads.get(t).is_some_and(|s| s.subs.contains(c)) {
                    return Err(format!("reverse edge {t}-{c} without forward edge"));
                }
            }
        }
        Ok(())
    }
}

//! Which threads the worker follows, and where each stands: SUBSCRIBE on
//! interest, UNSUBSCRIBE after the grace period (re-checked against the
//! engine), `ready` waiters, the confirmations owed, and which threads a
//! catch-up must bring up to date ([`Follows`]). `catchup.rs` reads the
//! streams; `worker.rs` owns the connection and turns frames into calls
//! here.
//!
//! # State per followed thread ([`Follow`])
//!
//! | state | meaning | leaves by |
//! |---|---|---|
//! | pending (in `pending`) | SUBSCRIBE sent (or to be sent on connect), not yet confirmed | the last confirmation for its channel: a sync, then confirmed |
//! | confirmed, not live | confirmed, but its baseline (the head, for a fresh follow) could not be read yet: in `behind` | a sync that reads it: live |
//! | live | confirmed; `last` is the last delivered sequence in `epoch` | the connection breaking (pending again), or the grace period ending with no local subscriber (dropped, UNSUBSCRIBE sent) |
//! | live and behind (in `behind`) | messages after `last` wait in the stream; a sync is due at the time `behind` says | a sync that reaches the head |
//!
//! Invariants:
//! * for a live thread, every message of `epoch` with a sequence in
//!   `(last, ∞)` is either still to arrive on the subscription connection
//!   or in the thread's stream (or trimmed from it, which a sync reports);
//! * deliveries of a thread are emitted with strictly increasing sequence
//!   numbers within an epoch, each exactly once; a skipped number or a new
//!   epoch is always preceded by a `Reset` for that thread;
//! * a thread is followed only while the engine says it is occupied, or
//!   within the unsubscribe grace after it was vacated;
//! * `inflight[t]` counts SUBSCRIBE/UNSUBSCRIBE commands for `t` sent on the
//!   current connection and not yet confirmed; a pending thread is synced
//!   only when its count drops to zero on a `subscribe` confirmation, so the
//!   sync starts after Redis is known to route every later message to us;
//! * `pending` holds exactly the followed threads whose SUBSCRIBE is not
//!   confirmed on this connection; while it is non-empty, confirmations are
//!   owed, and none arriving for the subscribe timeout (`progress`) means
//!   the connection is not working;
//! * a followed thread that is confirmed and not up to date is in `behind`
//!   (a catch-up read failed, timed out, or the backlog is longer than one
//!   sync reads): a later tick syncs it again. A read's failure never
//!   counts against the connection.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::conn::FrameWriter;
use crate::delivery::Delivery;
use crate::error::ReadyError;
use crate::interest::{EngineView, Interest};
use crate::script::{Names, Wire};
use crate::thread_key::ThreadKey;

/// One followed thread (see the module docs for its states).
#[derive(Debug)]
pub(crate) struct Follow {
    pub(crate) live: bool,
    /// Never synced: the first sync only takes the head as the baseline.
    pub(crate) fresh: bool,
    /// `None`: no epoch known (fresh, or the history was lost).
    pub(crate) epoch: Option<Vec<u8>>,
    pub(crate) last: u64,
    /// Entries the next catch-up read asks for (0: not known yet).
    pub(crate) read_count: usize,
    /// Syncs in a row that gave up after failed reads (the retry backoff).
    pub(crate) deferrals: u32,
    waiters: Vec<oneshot::Sender<Result<(), ReadyError>>>,
}

impl Follow {
    fn new() -> Self {
        Follow {
            live: false,
            fresh: true,
            epoch: None,
            last: 0,
            read_count: 0,
            deferrals: 0,
            waiters: Vec::new(),
        }
    }
}

/// What a message heard on pub/sub means for its thread.
#[derive(Debug)]
pub(crate) enum Heard<T> {
    /// Nothing to do: not followed, not live yet, already delivered, or
    /// in the stream for the sync that is due.
    Nothing,
    /// The next message: deliver it.
    Deliver(Delivery<T>),
    /// A gap, or another epoch: the stream has the truth.
    Gap,
}

/// The worker's per-thread bookkeeping (starts empty; see the module
/// docs).
#[derive(Debug)]
pub(crate) struct Follows<T> {
    names: Names,
    view: EngineView<T>,
    threads: HashMap<T, Follow>,
    /// Followed threads that lost their last local subscriber, and when.
    vacating: HashMap<T, Instant>,
    inflight: HashMap<T, u32>,
    /// Followed threads whose SUBSCRIBE is owed a confirmation (or not
    /// sent yet while disconnected).
    pending: HashSet<T>,
    /// Confirmed threads not up to date, and when to sync them again.
    behind: HashMap<T, Instant>,
    /// When the last subscribe confirmation arrived (or the first one
    /// started to be owed).
    progress: Instant,
}

impl<T: ThreadKey> Follows<T> {
    pub(crate) fn new(names: Names, view: EngineView<T>) -> Self {
        Follows {
            names,
            view,
            threads: HashMap::new(),
            vacating: HashMap::new(),
            inflight: HashMap::new(),
            pending: HashSet::new(),
            behind: HashMap::new(),
            progress: Instant::now(),
        }
    }

    /// The thread whose channel this is, if it is a thread's.
    pub(crate) fn thread_of(&self, channel: &[u8]) -> Option<T> {
        self.names.thread_of(channel)?.parse().ok()
    }

    pub(crate) fn get(&self, t: &T) -> Option<&Follow> {
        self.threads.get(t)
    }

    pub(crate) fn get_mut(&mut self, t: &T) -> Option<&mut Follow> {
        self.threads.get_mut(t)
    }

    /// `t` is not up to date: sync it again at `at`.
    pub(crate) fn set_behind(&mut self, t: T, at: Instant) {
        self.behind.insert(t, at);
    }

    /// `t` is up to date, or its sync is starting now.
    pub(crate) fn clear_behind(&mut self, t: &T) {
        self.behind.remove(t);
    }

    /// The threads whose sync is due at `now`, the longest due first.
    pub(crate) fn due(&self, now: Instant) -> Vec<T> {
        let mut due: Vec<(Instant, T)> = self
            .behind
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(&t, &at)| (at, t))
            .collect();
        due.sort_unstable_by_key(|&(at, _)| at);
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// Makes `t` live once its baseline is known and its SUBSCRIBE
    /// confirmed, waking its `ready` waiters.
    pub(crate) fn go_live(&mut self, t: T) {
        if let Some(f) = self.threads.get_mut(&t) {
            if !f.live && !f.fresh && !self.pending.contains(&t) {
                f.live = true;
                for w in f.waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
        }
    }

    /// On a new connection: follows exactly the threads that the engine's
    /// snapshot, not our own set, shows occupied; none is live, each is
    /// pending and owed one confirmation. Returns their channels, to
    /// SUBSCRIBE.
    pub(crate) fn resubscribe(&mut self) -> Vec<String> {
        let occupied: HashSet<T> = self.view.occupied().into_iter().collect();
        let stale: Vec<T> = self
            .threads
            .keys()
            .filter(|t| !occupied.contains(t))
            .copied()
            .collect();
        for t in stale {
            self.drop_follow(t);
        }
        self.vacating.clear();
        self.inflight.clear();
        self.behind.clear();
        for &t in &occupied {
            self.threads.entry(t).or_insert_with(Follow::new).live = false;
        }
        self.pending = self.threads.keys().copied().collect();
        self.progress = Instant::now();
        let mut channels = Vec::with_capacity(self.threads.len());
        for &t in self.threads.keys() {
            *self.inflight.entry(t).or_default() += 1;
            channels.push(self.names.channel(&t));
        }
        channels
    }

    /// The connection is gone: no thread is live.
    pub(crate) fn disconnected(&mut self) {
        for f in self.threads.values_mut() {
            f.live = false;
        }
    }

    /// A subscribe confirmation for `t`: true when it was the last one owed
    /// and `t` was pending (then catch it up).
    pub(crate) fn subscribed(&mut self, t: T) -> bool {
        self.progress = Instant::now();
        self.confirm(t) && self.pending.remove(&t)
    }

    /// An unsubscribe confirmation for `t`.
    pub(crate) fn unsubscribed(&mut self, t: T) {
        self.confirm(t);
    }

    /// Counts one confirmation; true when none is left outstanding.
    fn confirm(&mut self, t: T) -> bool {
        match self.inflight.get_mut(&t) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.inflight.remove(&t);
                true
            }
            None => false,
        }
    }

    /// Whether confirmations are owed and none came for `timeout`.
    pub(crate) fn stalled(&self, now: Instant, timeout: Duration) -> bool {
        !self.pending.is_empty() && now - self.progress > timeout
    }

    /// Stops the subscribe-timeout clock for `busy`, time the worker did
    /// not spend waiting for the connection.
    pub(crate) fn excuse(&mut self, busy: Duration, now: Instant) {
        self.progress = (self.progress + busy).min(now);
    }

    /// What message `wire` of `t`, heard on pub/sub, means; a deliverable
    /// one is counted as delivered.
    pub(crate) fn hear(&mut self, t: T, wire: &Wire<'_>) -> Heard<T> {
        let Some(f) = self.threads.get_mut(&t) else {
            return Heard::Nothing;
        };
        if !f.live {
            // Synced from the stream once confirmed.
            return Heard::Nothing;
        }
        let same_epoch = f.epoch.as_deref() == Some(wire.epoch);
        if same_epoch && wire.seq <= f.last {
            return Heard::Nothing; // already delivered (by a sync)
        }
        let first_of_new = f.epoch.is_none() && !f.fresh && f.last == 0 && wire.seq == 1;
        if (same_epoch && wire.seq == f.last + 1) || first_of_new {
            f.last = wire.seq;
            if first_of_new {
                f.epoch = Some(wire.epoch.to_vec());
            }
            return Heard::Deliver(Delivery::Message {
                t,
                seq: wire.seq,
                payload: wire.payload.to_vec(),
            });
        }
        if self.behind.contains_key(&t) {
            // In the stream; the scheduled sync reads it in order.
            return Heard::Nothing;
        }
        Heard::Gap
    }

    /// A `ready(t)` from a node handle: answered now if `t` is live or not
    /// occupied, when it goes live otherwise.
    pub(crate) async fn ready(
        &mut self,
        t: T,
        tx: oneshot::Sender<Result<(), ReadyError>>,
        conn: Option<&mut FrameWriter>,
    ) {
        if let Some(f) = self.threads.get_mut(&t) {
            if f.live {
                let _ = tx.send(Ok(()));
            } else {
                f.waiters.push(tx);
            }
        } else if self.view.is_occupied(t) {
            // The engine is ahead of the interest events.
            self.follow(t, conn).await;
            if let Some(f) = self.threads.get_mut(&t) {
                f.waiters.push(tx);
            }
        } else {
            let _ = tx.send(Err(ReadyError::NotOccupied));
        }
    }

    pub(crate) async fn on_interest(&mut self, i: Interest<T>, mut conn: Option<&mut FrameWriter>) {
        match i {
            Interest::Occupied(t) => self.follow(t, conn).await,
            Interest::Vacated(t) => {
                if self.threads.contains_key(&t) {
                    self.vacating.entry(t).or_insert_with(Instant::now);
                }
            }
            Interest::Resync(all) => {
                let all: HashSet<T> = all.into_iter().collect();
                let now = Instant::now();
                for &t in self.threads.keys() {
                    if !all.contains(&t) {
                        self.vacating.entry(t).or_insert(now);
                    }
                }
                for t in all {
                    self.follow(t, conn.as_deref_mut()).await;
                }
            }
        }
    }

    /// Follows `t` (a no-op if it already does, except that a pending
    /// unsubscribe is called off).
    async fn follow(&mut self, t: T, conn: Option<&mut FrameWriter>) {
        self.vacating.remove(&t);
        if self.threads.contains_key(&t) {
            return;
        }
        self.threads.insert(t, Follow::new());
        if self.pending.is_empty() {
            // Nothing was owed: the timeout counts from this SUBSCRIBE.
            self.progress = Instant::now();
        }
        self.pending.insert(t);
        if let Some(conn) = conn {
            *self.inflight.entry(t).or_default() += 1;
            let packed = redis::cmd("SUBSCRIBE")
                .arg(self.names.channel(&t))
                .get_packed_command();
            // A failed write surfaces as the connection breaking.
            let _ = conn.send(&packed).await;
        }
    }

    fn drop_follow(&mut self, t: T) {
        self.pending.remove(&t);
        self.behind.remove(&t);
        if let Some(f) = self.threads.remove(&t) {
            for w in f.waiters {
                let _ = w.send(Err(ReadyError::NotOccupied));
            }
        }
    }

    /// Unsubscribes the threads whose grace period ended and that the
    /// engine still shows without a local subscriber.
    pub(crate) async fn expire_vacated(
        &mut self,
        conn: &mut FrameWriter,
        now: Instant,
        grace: Duration,
    ) -> io::Result<()> {
        let due: Vec<T> = self
            .vacating
            .iter()
            .filter(|(_, &at)| now - at >= grace)
            .map(|(&t, _)| t)
            .collect();
        for t in due {
            self.vacating.remove(&t);
            if self.view.is_occupied(t) {
                continue; // re-checked: someone subscribed again
            }
            self.drop_follow(t);
            *self.inflight.entry(t).or_default() += 1;
            let packed = redis::cmd("UNSUBSCRIBE")
                .arg(self.names.channel(&t))
                .get_packed_command();
            conn.send(&packed).await?;
        }
        Ok(())
    }
}

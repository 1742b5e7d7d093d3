//! The node's worker: one task that owns the subscription connection and
//! turns what Redis sends into per-thread, gap-free deliveries.
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
//!   counts against the connection;
//! * the probe and subscribe-timeout clocks stop while the worker is busy
//!   handling a frame or catching up (`excuse`): the connection is judged
//!   only on time the worker spent waiting for it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use crate::catchup::Synced;
use crate::conn::{Frame, FrameWriter, SubConn};
use crate::interest::{EngineView, Interest};
use crate::script::{decode, Names};
use crate::{Config, Delivery, ReadyError, ThreadKey};

/// Channels per SUBSCRIBE command when (re)subscribing many threads.
const SUBSCRIBE_CHUNK: usize = 128;
/// How often the worker checks grace periods, probes and timeouts, and
/// retries the syncs that are due.
const TICK: Duration = Duration::from_millis(20);
/// How long one tick may spend on due syncs before it goes back to the
/// connection (checked between threads).
const RETRY_BUDGET: Duration = Duration::from_millis(100);

/// Between half and all of `d`, at random, so that nodes that lost Redis
/// together do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(d.subsec_nanos());
    let per_mille = (h.finish() % 1001) as u32;
    d / 2 + d / 2 * per_mille / 1000
}

/// A request from a [`Node`](crate::Node) handle.
#[derive(Debug)]
pub(crate) enum Control<T> {
    Ready(T, oneshot::Sender<Result<(), ReadyError>>),
}

/// Counters shared with the node handles; monotonic, read with `Relaxed`
/// (they are statistics, not synchronization).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reconnects: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) gap_fills: AtomicU64,
    pub(crate) probe_failures: AtomicU64,
    pub(crate) feed_resyncs: AtomicU64,
    pub(crate) catchup_timeouts: AtomicU64,
    pub(crate) claims: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) routed: AtomicU64,
    pub(crate) routed_lost: AtomicU64,
    pub(crate) routed_local: AtomicU64,
}

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
    pub(crate) waiters: Vec<oneshot::Sender<Result<(), ReadyError>>>,
}

impl Follow {
    pub(crate) fn new() -> Self {
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

/// Why the connected loop ended.
enum Exit {
    /// The node handles are gone, or the host dropped its deliveries.
    Shutdown,
    /// The connection (or Redis) failed: reconnect.
    Broken,
}

pub(crate) struct Worker<T: ThreadKey> {
    pub(crate) config: Arc<Config>,
    pub(crate) names: Names,
    pub(crate) cmd: ConnectionManager,
    /// The catch-up connection: stream reads only, with their own timeout.
    pub(crate) reads: ConnectionManager,
    pub(crate) addr: String,
    pub(crate) auth: Option<(Option<String>, String)>,
    pub(crate) probe_channel: String,
    /// This node's notice channel (routed commands' acceptances, answers
    /// and wake-ups), read with the probe.
    pub(crate) notice_channel: String,
    pub(crate) router: Arc<crate::route::Router>,
    pub(crate) control: mpsc::UnboundedReceiver<Control<T>>,
    pub(crate) interest: mpsc::UnboundedReceiver<Interest<T>>,
    pub(crate) out: mpsc::Sender<Delivery<T>>,
    pub(crate) view: EngineView<T>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) state: State<T>,
}

/// The worker's per-thread bookkeeping (starts empty).
#[derive(Debug)]
pub(crate) struct State<T> {
    pub(crate) follows: HashMap<T, Follow>,
    /// Followed threads that lost their last local subscriber, and when.
    pub(crate) vacating: HashMap<T, Instant>,
    pub(crate) inflight: HashMap<T, u32>,
    /// Followed threads whose SUBSCRIBE is owed a confirmation (or not
    /// sent yet while disconnected).
    pub(crate) pending: HashSet<T>,
    /// Confirmed threads not up to date, and when to sync them again.
    pub(crate) behind: HashMap<T, Instant>,
    /// When the last subscribe confirmation arrived (or the first one
    /// started to be owed).
    pub(crate) progress: Instant,
    probe: Probe,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        State {
            follows: HashMap::new(),
            vacating: HashMap::new(),
            inflight: HashMap::new(),
            pending: HashSet::new(),
            behind: HashMap::new(),
            progress: Instant::now(),
            probe: Probe {
                seq: 0,
                sent: None,
                next: Instant::now(),
            },
        }
    }
}

/// The liveness probe: a numbered message to the node's own channel.
#[derive(Debug)]
struct Probe {
    seq: u64,
    /// When the probe in flight was sent.
    sent: Option<Instant>,
    /// When to send the next one.
    next: Instant,
}

impl<T: ThreadKey> Worker<T> {
    /// Runs until the node is dropped: connect, serve, reconnect with
    /// backoff.
    pub(crate) async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        loop {
            let auth = self.auth.as_ref().map(|(u, p)| (u.as_deref(), p.as_str()));
            let connected = SubConn::connect(&self.addr, auth, self.config.connect_timeout).await;
            if let Ok(conn) = connected {
                let started = Instant::now();
                match self.serve(conn).await {
                    Exit::Shutdown => return,
                    Exit::Broken => {}
                }
                // A connection that lived a while starts the backoff over.
                if started.elapsed() > self.config.backoff_max {
                    backoff = self.config.backoff_min;
                }
            }
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            for f in self.state.follows.values_mut() {
                f.live = false;
            }
            let until = tokio::time::Instant::now() + jitter(backoff);
            backoff = (backoff * 2).min(self.config.backoff_max);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    c = self.control.recv() => match c {
                        Some(c) => self.on_control(c, None).await,
                        None => return,
                    },
                    i = self.interest.recv() => match i {
                        Some(i) => self.on_interest(i, None).await,
                        None => return,
                    },
                }
            }
        }
    }

    /// Serves one connection until it breaks or the node shuts down.
    async fn serve(&mut self, mut conn: SubConn) -> Exit {
        // The engine's snapshot, not our own set, says what to follow.
        let occupied: HashSet<T> = self.view.occupied().into_iter().collect();
        let stale: Vec<T> = self
            .state
            .follows
            .keys()
            .filter(|t| !occupied.contains(t))
            .copied()
            .collect();
        for t in stale {
            self.drop_follow(t);
        }
        self.state.vacating.clear();
        self.state.inflight.clear();
        self.state.behind.clear();
        for &t in &occupied {
            self.state.follows.entry(t).or_insert_with(Follow::new).live = false;
        }
        self.state.pending = self.state.follows.keys().copied().collect();
        self.state.progress = Instant::now();
        let mut channels = vec![self.probe_channel.clone(), self.notice_channel.clone()];
        for &t in self.state.follows.keys() {
            *self.state.inflight.entry(t).or_default() += 1;
            channels.push(self.names.channel(&t));
        }
        for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
            if conn
                .writer
                .send(&redis::cmd("SUBSCRIBE").arg(chunk).get_packed_command())
                .await
                .is_err()
            {
                return Exit::Broken;
            }
        }

        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.state.probe.sent = None;
        self.state.probe.next = Instant::now() + self.config.probe_interval;
        loop {
            tokio::select! {
                frame = conn.reader.next() => {
                    let Ok(frame) = frame else {
                        return Exit::Broken;
                    };
                    let busy = Instant::now();
                    let handled = self.on_frame(frame).await;
                    self.excuse(busy);
                    match handled {
                        Ok(true) => {}
                        Ok(false) => return Exit::Shutdown,
                        Err(_) => return Exit::Broken,
                    }
                }
                c = self.control.recv() => match c {
                    Some(c) => self.on_control(c, Some(&mut conn.writer)).await,
                    None => return Exit::Shutdown,
                },
                i = self.interest.recv() => match i {
                    Some(i) => self.on_interest(i, Some(&mut conn.writer)).await,
                    None => return Exit::Shutdown,
                },
                _ = tick.tick() => {
                    if self.housekeep(&mut conn.writer).await.is_err() {
                        return Exit::Broken;
                    }
                    let busy = Instant::now();
                    let open = self.retry_behind(RETRY_BUDGET).await;
                    self.excuse(busy);
                    if !open {
                        return Exit::Shutdown;
                    }
                }
            }
        }
    }

    /// Stops the probe and subscribe-timeout clocks for the time since
    /// `since`, which the worker spent busy (handling a frame, catching a
    /// thread up) rather than waiting for the connection: a long catch-up
    /// does not make a healthy connection look dead.
    fn excuse(&mut self, since: Instant) {
        let now = Instant::now();
        let d = now - since;
        if let Some(at) = self.state.probe.sent.as_mut() {
            *at = (*at + d).min(now);
        }
        self.state.progress = (self.state.progress + d).min(now);
    }

    /// Grace periods, subscribe timeouts and the probe. An error: the
    /// connection is broken or no longer delivering.
    async fn housekeep(&mut self, conn: &mut FrameWriter) -> io::Result<()> {
        let now = Instant::now();
        self.expire_vacated(conn, now).await?;
        // Confirmations arrive in order; none for the timeout while some
        // are owed means the connection is not working.
        let timeout = self.config.subscribe_timeout;
        if !self.state.pending.is_empty() && now - self.state.progress > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "subscribe not confirmed",
            ));
        }
        let probe = &mut self.state.probe;
        match probe.sent {
            Some(at) if now - at > self.config.probe_timeout => {
                self.counters.probe_failures.fetch_add(1, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "probe not received",
                ));
            }
            None if now >= probe.next => {
                probe.seq += 1;
                probe.sent = Some(now);
                let mut cmd = self.cmd.clone();
                let publish = redis::cmd("PUBLISH")
                    .arg(&self.probe_channel)
                    .arg(probe.seq)
                    .clone();
                let wait = self.config.probe_timeout;
                // Off the worker's path: a paused Redis must not stall it.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(wait, publish.query_async::<i64>(&mut cmd)).await;
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Handles one frame. `Ok(false)`: the host dropped its deliveries.
    async fn on_frame(&mut self, frame: Frame) -> io::Result<bool> {
        match frame {
            Frame::Message { channel, payload } => {
                if channel == self.notice_channel.as_bytes() {
                    self.router.dispatch(&payload);
                    return Ok(true);
                }
                if channel == self.probe_channel.as_bytes() {
                    let probe = &mut self.state.probe;
                    if payload == probe.seq.to_string().as_bytes() {
                        probe.sent = None;
                        probe.next = Instant::now() + self.config.probe_interval;
                    }
                    return Ok(true);
                }
                let Some(t) = self.thread_of(&channel) else {
                    return Ok(true);
                };
                let Some(wire) = decode(&payload) else {
                    return Ok(true);
                };
                let Some(f) = self.state.follows.get_mut(&t) else {
                    return Ok(true);
                };
                if !f.live {
                    // Synced from the stream once confirmed.
                    return Ok(true);
                }
                let behind = self.state.behind.contains_key(&t);
                let same_epoch = f.epoch.as_deref() == Some(wire.epoch);
                if same_epoch && wire.seq <= f.last {
                    return Ok(true); // already delivered (by a sync)
                }
                let first_of_new = f.epoch.is_none() && !f.fresh && f.last == 0 && wire.seq == 1;
                if (same_epoch && wire.seq == f.last + 1) || first_of_new {
                    f.last = wire.seq;
                    if first_of_new {
                        f.epoch = Some(wire.epoch.to_vec());
                    }
                    let d = Delivery::Message {
                        t,
                        seq: wire.seq,
                        payload: wire.payload.to_vec(),
                    };
                    return Ok(self.out.send(d).await.is_ok());
                }
                if behind {
                    // In the stream; the scheduled sync reads it in order.
                    return Ok(true);
                }
                // A gap, or another epoch: the stream has the truth.
                // Relaxed: a statistic.
                self.counters.gap_fills.fetch_add(1, Ordering::Relaxed);
                Ok(self.sync(t).await != Synced::HostGone)
            }
            Frame::Subscribed { channel } => {
                let Some(t) = self.thread_of(&channel) else {
                    return Ok(true);
                };
                self.state.progress = Instant::now();
                if self.confirm(t) && self.state.pending.remove(&t) {
                    return Ok(self.catch_up(t).await);
                }
                Ok(true)
            }
            Frame::Unsubscribed { channel } => {
                if let Some(t) = self.thread_of(&channel) {
                    self.confirm(t);
                }
                Ok(true)
            }
            Frame::Other => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_jitter_stays_within_half_to_all() {
        let d = Duration::from_millis(200);
        let waits: Vec<Duration> = (0..200).map(|_| jitter(d)).collect();
        assert!(waits.iter().all(|&w| w >= d / 2 && w <= d));
        assert!(waits.iter().any(|&w| w != waits[0]), "not constant");
    }
}

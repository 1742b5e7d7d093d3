//! The node's worker: one task that owns the subscription connection and
//! turns what Redis sends into per-thread, gap-free deliveries.
//!
//! Its parts: [`Follows`] (`follow.rs`), which threads it follows and where
//! each stands, with their states and invariants; [`Catchup`]
//! (`catchup.rs`), the stream reads that bring a thread up to date; the
//! liveness probe ([`Probe`]), here. The worker keeps one more invariant:
//! the probe and subscribe-timeout clocks stop while it is busy handling a
//! frame or catching up (`excuse`): the connection is judged only on time
//! the worker spent waiting for it.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use switchboard_core::Engine;
use tokio::sync::{mpsc, oneshot};

use crate::catchup::{Catchup, Synced};
use crate::config::Config;
use crate::conn::{Endpoint, Frame, FrameWriter, SubConn};
use crate::counters::Counters;
use crate::delivery::Delivery;
use crate::error::ReadyError;
use crate::follow::{Follows, Heard};
use crate::interest::{spawn_driver, EngineView, Interest};
use crate::notices::Router;
use crate::random;
use crate::script::{decode, Names};
use crate::thread_key::ThreadKey;

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
    let per_mille = (random::u64() % 1001) as u32;
    d / 2 + d / 2 * per_mille / 1000
}

/// A request from a [`Node`](crate::Node) handle.
#[derive(Debug)]
pub(crate) enum Control<T> {
    Ready(T, oneshot::Sender<Result<(), ReadyError>>),
}

/// Why the connected loop ended.
enum Exit {
    /// The node handles are gone, or the host dropped its deliveries.
    Shutdown,
    /// The connection (or Redis) failed: reconnect.
    Broken,
}

/// The worker's ways to Redis: the node's three connections (see the
/// crate docs).
pub(crate) struct Redis {
    /// Where to open the subscription connection, the worker's own.
    pub(crate) sub: Endpoint,
    /// The node's command connection: the worker sends its probes on it.
    pub(crate) cmd: ConnectionManager,
    /// The catch-up connection: stream reads only, with their own timeout.
    pub(crate) reads: ConnectionManager,
}

/// The worker task's state (see the module docs).
struct Worker<T: ThreadKey> {
    config: Arc<Config>,
    sub: Endpoint,
    cmd: ConnectionManager,
    /// This node's notice channel (routed commands' acceptances, answers
    /// and wake-ups), read with the probe.
    notice_channel: String,
    router: Arc<Router>,
    control: mpsc::UnboundedReceiver<Control<T>>,
    interest: mpsc::UnboundedReceiver<Interest<T>>,
    out: mpsc::Sender<Delivery<T>>,
    counters: Arc<Counters>,
    follows: Follows<T>,
    catchup: Catchup,
    probe: Probe,
}

/// The liveness probe: a numbered message to the node's own channel.
#[derive(Debug)]
struct Probe {
    channel: String,
    seq: u64,
    /// When the probe in flight was sent.
    sent: Option<Instant>,
    /// When to send the next one.
    next: Instant,
}

/// Starts the worker of the node named `id`, following `engine`'s
/// occupied threads (through the change feed driver it starts too).
/// Returns the node handles' ends: the worker's requests, and the
/// deliveries.
pub(crate) fn spawn<T, C, S, M, D>(
    engine: &Arc<Engine<T, C, S, M, D>>,
    config: &Arc<Config>,
    counters: &Arc<Counters>,
    names: &Names,
    id: &str,
    redis: Redis,
    router: &Arc<Router>,
) -> (
    mpsc::UnboundedSender<Control<T>>,
    mpsc::Receiver<Delivery<T>>,
)
where
    T: ThreadKey,
    C: switchboard_core::Key,
    S: Send + Sync + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    let (control, control_rx) = mpsc::unbounded_channel();
    let (interest_tx, interest_rx) = mpsc::unbounded_channel();
    let (out, rx) = mpsc::channel(config.delivery_buffer);
    spawn_driver(Arc::clone(engine), interest_tx, Arc::clone(counters));
    let worker = Worker {
        config: Arc::clone(config),
        sub: redis.sub,
        cmd: redis.cmd,
        notice_channel: names.notices(id),
        router: Arc::clone(router),
        control: control_rx,
        interest: interest_rx,
        out,
        counters: Arc::clone(counters),
        follows: Follows::new(names.clone(), EngineView::new(engine)),
        catchup: Catchup::new(
            Arc::clone(config),
            names.clone(),
            redis.reads,
            Arc::clone(counters),
        ),
        probe: Probe {
            channel: names.probe(id),
            seq: 0,
            sent: None,
            next: Instant::now(),
        },
    };
    tokio::spawn(worker.run());
    (control, rx)
}

impl<T: ThreadKey> Worker<T> {
    /// Runs until the node is dropped: connect, serve, reconnect with
    /// backoff.
    async fn run(mut self) {
        let mut backoff = self.config.backoff_min;
        loop {
            let connected = self.sub.connect(self.config.connect_timeout).await;
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
            self.follows.disconnected();
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
                        Some(i) => self.follows.on_interest(i, None).await,
                        None => return,
                    },
                }
            }
        }
    }

    /// Serves one connection until it breaks or the node shuts down.
    async fn serve(&mut self, mut conn: SubConn) -> Exit {
        let mut channels = vec![self.probe.channel.clone(), self.notice_channel.clone()];
        channels.extend(self.follows.resubscribe());
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
        self.probe.sent = None;
        self.probe.next = Instant::now() + self.config.probe_interval;
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
                    Some(i) => self.follows.on_interest(i, Some(&mut conn.writer)).await,
                    None => return Exit::Shutdown,
                },
                _ = tick.tick() => {
                    if self.housekeep(&mut conn.writer).await.is_err() {
                        return Exit::Broken;
                    }
                    let busy = Instant::now();
                    let open = self
                        .catchup
                        .retry_behind(&mut self.follows, &self.out, RETRY_BUDGET)
                        .await;
                    self.excuse(busy);
                    if !open {
                        return Exit::Shutdown;
                    }
                }
            }
        }
    }

    async fn on_control(&mut self, c: Control<T>, conn: Option<&mut FrameWriter>) {
        match c {
            Control::Ready(t, tx) => self.follows.ready(t, tx, conn).await,
        }
    }

    /// Stops the probe and subscribe-timeout clocks for the time since
    /// `since`, which the worker spent busy (handling a frame, catching a
    /// thread up) rather than waiting for the connection: a long catch-up
    /// does not make a healthy connection look dead.
    fn excuse(&mut self, since: Instant) {
        let now = Instant::now();
        let d = now - since;
        if let Some(at) = self.probe.sent.as_mut() {
            *at = (*at + d).min(now);
        }
        self.follows.excuse(d, now);
    }

    /// Grace periods, subscribe timeouts and the probe. An error: the
    /// connection is broken or no longer delivering.
    async fn housekeep(&mut self, conn: &mut FrameWriter) -> io::Result<()> {
        let now = Instant::now();
        self.follows
            .expire_vacated(conn, now, self.config.unsubscribe_grace)
            .await?;
        // Confirmations arrive in order; none for the timeout while some
        // are owed means the connection is not working.
        if self.follows.stalled(now, self.config.subscribe_timeout) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "subscribe not confirmed",
            ));
        }
        let probe = &mut self.probe;
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
                    .arg(&probe.channel)
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
                if channel == self.probe.channel.as_bytes() {
                    let probe = &mut self.probe;
                    if payload == probe.seq.to_string().as_bytes() {
                        probe.sent = None;
                        probe.next = Instant::now() + self.config.probe_interval;
                    }
                    return Ok(true);
                }
                let Some(t) = self.follows.thread_of(&channel) else {
                    return Ok(true);
                };
                let Some(wire) = decode(&payload) else {
                    return Ok(true);
                };
                match self.follows.hear(t, &wire) {
                    Heard::Nothing => Ok(true),
                    Heard::Deliver(d) => Ok(self.out.send(d).await.is_ok()),
                    Heard::Gap => {
                        // Relaxed: a statistic.
                        self.counters.gap_fills.fetch_add(1, Ordering::Relaxed);
                        let synced = self.catchup.sync(&mut self.follows, &self.out, t).await;
                        Ok(synced != Synced::HostGone)
                    }
                }
            }
            Frame::Subscribed { channel } => {
                let Some(t) = self.follows.thread_of(&channel) else {
                    return Ok(true);
                };
                if self.follows.subscribed(t) {
                    return Ok(self.catchup.catch_up(&mut self.follows, &self.out, t).await);
                }
                Ok(true)
            }
            Frame::Unsubscribed { channel } => {
                if let Some(t) = self.follows.thread_of(&channel) {
                    self.follows.unsubscribed(t);
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

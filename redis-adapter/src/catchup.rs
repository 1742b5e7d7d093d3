//! Catching a followed thread up from its stream: the baseline of a new
//! follow, the gap after a missed message, the backlog after a reconnect,
//! and the `Reset` for history that is gone.
//!
//! # Reads
//!
//! Each read is one MULTI/EXEC ([`read_cmd`]) on the node's catch-up
//! connection, under [`Config::catchup_timeout`](crate::Config::catchup_timeout),
//! asking for as many entries as fit in the configured bytes at the size of
//! the largest entry the thread's previous read returned ([`FIRST_READ`]
//! for a thread never read). A read that fails or times out is retried
//! with half as many entries, up to [`TRIES`] times; then the thread is
//! left *behind* and retried later with backoff. Neither ever touches the
//! subscription connection: a slow or failed read is not a broken
//! connection.
//!
//! A sync does at most [`READS_PER_SYNC`] reads; a longer backlog leaves
//! the thread behind with a retry due at once, so that the worker serves
//! its other threads between slices. While a thread is behind, a message
//! on pub/sub that is not the next one is ignored (it is in the stream):
//! the scheduled retry reads it in order.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::counters::Counters;
use crate::delivery::{Delivery, ResetReason};
use crate::follow::Follows;
use crate::script::{read_cmd, Fetched, Names};
use crate::thread_key::ThreadKey;

/// Entries asked for by the first read of a thread whose entry size is not
/// known yet.
pub(crate) const FIRST_READ: usize = 8;
/// Reads per sync before the worker turns to its other threads.
pub(crate) const READS_PER_SYNC: usize = 16;
/// Failed reads in a row (each with half the entries of the one before)
/// before a sync gives up until a later retry.
pub(crate) const TRIES: u32 = 4;
/// Bytes counted per entry on top of its payload (id, field name, framing).
const ENTRY_OVERHEAD: usize = 64;

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synced {
    /// Up to date with the head read last (or no longer followed).
    Done,
    /// Not yet: a retry is scheduled ([`Follows::set_behind`]).
    Behind,
    /// The host dropped its deliveries.
    HostGone,
}

/// Why a read did not return.
#[derive(Debug)]
enum ReadError {
    TimedOut,
    Failed,
}

/// The worker's catch-up reader: what a sync reads with. It keeps no
/// per-thread state of its own: each call brings the threads of the
/// [`Follows`] it is given up to date, and hands the deliveries to `out`.
pub(crate) struct Catchup {
    config: Arc<Config>,
    names: Names,
    /// The catch-up connection: stream reads only, with their own timeout.
    reads: ConnectionManager,
    counters: Arc<Counters>,
}

impl Catchup {
    pub(crate) fn new(
        config: Arc<Config>,
        names: Names,
        reads: ConnectionManager,
        counters: Arc<Counters>,
    ) -> Self {
        Catchup {
            config,
            names,
            reads,
            counters,
        }
    }

    async fn read<T: ThreadKey>(
        &self,
        t: T,
        from: u64,
        count: usize,
    ) -> Result<Fetched, ReadError> {
        let p = read_cmd(&self.names.meta(&t), &self.names.stream(&t), from, count);
        let mut conn = self.reads.clone();
        match tokio::time::timeout(self.config.catchup_timeout, p.query_async(&mut conn)).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(_)) => Err(ReadError::Failed),
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    /// Brings `t` up to date from its stream: the baseline for a fresh
    /// follow, everything after `last` otherwise, with a `Reset` for any
    /// history that is gone. See the module docs for the bounds.
    pub(crate) async fn sync<T: ThreadKey>(
        &self,
        follows: &mut Follows<T>,
        out: &mpsc::Sender<Delivery<T>>,
        t: T,
    ) -> Synced {
        let (entries_cap, bytes_cap) = (self.config.fetch_batch, self.config.fetch_bytes);
        let mut failed = 0;
        let mut reads = 0;
        loop {
            let Some(f) = follows.get(&t) else {
                return Synced::Done;
            };
            let (fresh, last) = (f.fresh, f.last);
            let count = if fresh {
                0
            } else if f.read_count == 0 {
                FIRST_READ.min(entries_cap)
            } else {
                f.read_count
            };
            let r = match self.read(t, last + 1, count).await {
                Ok(r) => r,
                Err(e) => {
                    // Relaxed: a statistic.
                    self.counters
                        .catchup_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    failed += 1;
                    if let Some(f) = follows.get_mut(&t) {
                        if matches!(e, ReadError::TimedOut) {
                            f.read_count = (count / 2).max(1);
                        }
                        if failed >= TRIES {
                            f.deferrals = f.deferrals.saturating_add(1);
                            let wait = self.config.backoff_min * 2u32.pow(f.deferrals.min(16));
                            let wait = wait.min(self.config.backoff_max);
                            follows.set_behind(t, Instant::now() + wait);
                            return Synced::Behind;
                        }
                    }
                    continue;
                }
            };
            reads += 1;
            let mut deliveries = Vec::new();
            let Some(f) = follows.get_mut(&t) else {
                return Synced::Done;
            };
            f.deferrals = 0;
            if let Some(largest) = r.entries.iter().map(|e| e.payload.len()).max() {
                let fit = bytes_cap / (largest + ENTRY_OVERHEAD);
                f.read_count = fit.clamp(1, entries_cap);
            }
            let epoch = (!r.epoch.is_empty()).then_some(r.epoch);
            if f.fresh {
                f.fresh = false;
                f.epoch = epoch;
                f.last = r.head;
                follows.clear_behind(&t);
                return Synced::Done;
            }
            let done = match (&f.epoch, epoch) {
                (_, None) => {
                    // The history is gone and nothing new was published.
                    if f.epoch.is_some() {
                        deliveries.push(Delivery::Reset {
                            t,
                            reason: ResetReason::EpochChanged,
                            next: 1,
                        });
                    }
                    f.epoch = None;
                    f.last = 0;
                    true
                }
                (Some(mine), Some(e)) if *mine != e => {
                    deliveries.push(Delivery::Reset {
                        t,
                        reason: ResetReason::EpochChanged,
                        next: 1,
                    });
                    f.epoch = Some(e);
                    f.last = 0;
                    false // read again from 1
                }
                (_, Some(e)) => {
                    f.epoch = Some(e);
                    match r.entries.first() {
                        None => {
                            if r.head > f.last {
                                let next = r.head + 1;
                                deliveries.push(Delivery::Reset {
                                    t,
                                    reason: ResetReason::Trimmed,
                                    next,
                                });
                                f.last = r.head;
                            }
                            true
                        }
                        Some(first) => {
                            if first.seq > f.last + 1 {
                                let next = first.seq;
                                deliveries.push(Delivery::Reset {
                                    t,
                                    reason: ResetReason::Trimmed,
                                    next,
                                });
                            }
                            for entry in r.entries {
                                if entry.seq > f.last {
                                    f.last = entry.seq;
                                    deliveries.push(Delivery::Message {
                                        t,
                                        seq: entry.seq,
                                        payload: entry.payload,
                                    });
                                }
                            }
                            f.last >= r.head
                        }
                    }
                }
            };
            for d in deliveries {
                if matches!(d, Delivery::Reset { .. }) {
                    // Relaxed: a statistic.
                    self.counters.resets.fetch_add(1, Ordering::Relaxed);
                }
                if out.send(d).await.is_err() {
                    return Synced::HostGone;
                }
            }
            if done {
                follows.clear_behind(&t);
                return Synced::Done;
            }
            if reads >= READS_PER_SYNC {
                // The rest at the next tick, after the other threads.
                follows.set_behind(t, Instant::now());
                return Synced::Behind;
            }
        }
    }

    /// Syncs `t` and makes it live once its baseline is known (waking its
    /// `ready` waiters). `false`: the host dropped its deliveries.
    pub(crate) async fn catch_up<T: ThreadKey>(
        &self,
        follows: &mut Follows<T>,
        out: &mpsc::Sender<Delivery<T>>,
        t: T,
    ) -> bool {
        if self.sync(follows, out, t).await == Synced::HostGone {
            return false;
        }
        follows.go_live(t);
        true
    }

    /// Retries the syncs that are due (bounded by `budget` of wall time, so
    /// that the worker goes back to its connection). `false`: the host
    /// dropped its deliveries.
    pub(crate) async fn retry_behind<T: ThreadKey>(
        &self,
        follows: &mut Follows<T>,
        out: &mpsc::Sender<Delivery<T>>,
        budget: Duration,
    ) -> bool {
        let now = Instant::now();
        for t in follows.due(now) {
            if now.elapsed() > budget {
                break;
            }
            follows.clear_behind(&t);
            if !self.catch_up(follows, out, t).await {
                return false;
            }
        }
        true
    }
}

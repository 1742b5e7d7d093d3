//! Catching a followed thread up from its stream: the baseline of a new
//! follow, the gap after a missed message, the backlog after a reconnect,
//! and the `Reset` for history that is gone.

use std::io;
use std::sync::atomic::Ordering;

use crate::script::Fetched;
use crate::worker::Worker;
use crate::{Delivery, ResetReason, ThreadKey};

impl<T: ThreadKey> Worker<T> {
    pub(crate) async fn fetch(&mut self, t: T, from: u64, count: usize) -> io::Result<Fetched> {
        let mut inv = self.scripts.fetch.key(self.names.meta(&t));
        inv.key(self.names.stream(&t)).arg(from).arg(count);
        let mut cmd = self.cmd.clone();
        match tokio::time::timeout(self.config.publish_timeout, inv.invoke_async(&mut cmd)).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => Err(io::Error::other(e)),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "fetch timed out")),
        }
    }

    /// Brings `t` up to date from its stream: the baseline for a fresh
    /// follow, everything after `last` otherwise, with a `Reset` for any
    /// history that is gone. `Ok(false)`: the host dropped its deliveries.
    pub(crate) async fn sync(&mut self, t: T) -> io::Result<bool> {
        let batch = self.config.fetch_batch;
        let rounds = (self.config.retention / batch as u64) as usize + 8;
        for _ in 0..rounds {
            let Some(f) = self.state.follows.get(&t) else {
                return Ok(true);
            };
            let (fresh, last) = (f.fresh, f.last);
            let r = self
                .fetch(t, last + 1, if fresh { 0 } else { batch })
                .await?;
            let mut out = Vec::new();
            let Some(f) = self.state.follows.get_mut(&t) else {
                return Ok(true);
            };
            let epoch = (!r.epoch.is_empty()).then_some(r.epoch);
            if f.fresh {
                f.fresh = false;
                f.epoch = epoch;
                f.last = r.head;
                return Ok(true);
            }
            let done = match (&f.epoch, epoch) {
                (_, None) => {
                    // The history is gone and nothing new was published.
                    if f.epoch.is_some() {
                        out.push(Delivery::Reset {
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
                    out.push(Delivery::Reset {
                        t,
                        reason: ResetReason::EpochChanged,
                        next: 1,
                    });
                    f.epoch = Some(e);
                    f.last = 0;
                    false // fetch again from 1
                }
                (_, Some(e)) => {
                    f.epoch = Some(e);
                    match r.entries.first() {
                        None => {
                            if r.head > f.last {
                                let next = r.head + 1;
                                out.push(Delivery::Reset {
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
                                out.push(Delivery::Reset {
                                    t,
                                    reason: ResetReason::Trimmed,
                                    next,
                                });
                            }
                            for entry in r.entries {
                                if entry.seq > f.last {
                                    f.last = entry.seq;
                                    out.push(Delivery::Message {
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
            for d in out {
                if matches!(d, Delivery::Reset { .. }) {
                    self.counters.resets.fetch_add(1, Ordering::Relaxed);
                }
                if self.out.send(d).await.is_err() {
                    return Ok(false);
                }
            }
            if done {
                return Ok(true);
            }
        }
        // Still behind after the bounded rounds: the rest arrives by
        // pub/sub, and any gap there starts another sync.
        Ok(true)
    }
}

//! Which threads the worker follows: SUBSCRIBE on interest, UNSUBSCRIBE
//! after the grace period (re-checked against the engine), `ready`
//! waiters, and the per-thread count of confirmations owed (see
//! `worker.rs` for the states and invariants).

use std::collections::HashSet;
use std::io;
use std::time::Instant;

use crate::conn::FrameWriter;
use crate::interest::Interest;
use crate::worker::{Control, Follow, Worker};
use crate::{ReadyError, ThreadKey};

impl<T: ThreadKey> Worker<T> {
    pub(crate) fn thread_of(&self, channel: &[u8]) -> Option<T> {
        self.names.thread_of(channel)?.parse().ok()
    }

    /// Counts one confirmation; true when none is left outstanding.
    pub(crate) fn confirm(&mut self, t: T) -> bool {
        match self.state.inflight.get_mut(&t) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.state.inflight.remove(&t);
                true
            }
            None => false,
        }
    }

    pub(crate) async fn on_control(&mut self, c: Control<T>, conn: Option<&mut FrameWriter>) {
        match c {
            Control::Ready(t, tx) => {
                if let Some(f) = self.state.follows.get_mut(&t) {
                    if f.live {
                        let _ = tx.send(Ok(()));
                    } else {
                        f.waiters.push(tx);
                    }
                } else if self.view.is_occupied(t) {
                    // The engine is ahead of the interest events.
                    self.follow(t, conn).await;
                    if let Some(f) = self.state.follows.get_mut(&t) {
                        f.waiters.push(tx);
                    }
                } else {
                    let _ = tx.send(Err(ReadyError::NotOccupied));
                }
            }
        }
    }

    pub(crate) async fn on_interest(&mut self, i: Interest<T>, mut conn: Option<&mut FrameWriter>) {
        match i {
            Interest::Occupied(t) => self.follow(t, conn).await,
            Interest::Vacated(t) => {
                if self.state.follows.contains_key(&t) {
                    self.state.vacating.entry(t).or_insert_with(Instant::now);
                }
            }
            Interest::Resync(all) => {
                let all: HashSet<T> = all.into_iter().collect();
                let now = Instant::now();
                for &t in self.state.follows.keys() {
                    if !all.contains(&t) {
                        self.state.vacating.entry(t).or_insert(now);
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
    pub(crate) async fn follow(&mut self, t: T, conn: Option<&mut FrameWriter>) {
        self.state.vacating.remove(&t);
        if self.state.follows.contains_key(&t) {
            return;
        }
        self.state.follows.insert(t, Follow::new());
        if self.state.pending.is_empty() {
            // Nothing was owed: the timeout counts from this SUBSCRIBE.
            self.state.progress = Instant::now();
        }
        self.state.pending.insert(t);
        if let Some(conn) = conn {
            *self.state.inflight.entry(t).or_default() += 1;
            let packed = redis::cmd("SUBSCRIBE")
                .arg(self.names.channel(&t))
                .get_packed_command();
            // A failed write surfaces as the connection breaking.
            let _ = conn.send(&packed).await;
        }
    }

    pub(crate) fn drop_follow(&mut self, t: T) {
        self.state.pending.remove(&t);
        self.state.behind.remove(&t);
        if let Some(f) = self.state.follows.remove(&t) {
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
    ) -> io::Result<()> {
        let grace = self.config.unsubscribe_grace;
        let due: Vec<T> = self
            .state
            .vacating
            .iter()
            .filter(|(_, &at)| now - at >= grace)
            .map(|(&t, _)| t)
            .collect();
        for t in due {
            self.state.vacating.remove(&t);
            if self.view.is_occupied(t) {
                continue; // re-checked: someone subscribed again
            }
            self.drop_follow(t);
            *self.state.inflight.entry(t).or_default() += 1;
            let packed = redis::cmd("UNSUBSCRIBE")
                .arg(self.names.channel(&t))
                .get_packed_command();
            conn.send(&packed).await?;
        }
        Ok(())
    }
}

//! The sharded-lock baseline: the reference design's three maps as
//! `DashMap`s, each operation locking only the shards it touches.
//!
//! Atomicity, as far as sharding allows: `subscribe` holds the connection's
//! `live` shard (read) while it adds both edges, and `disconnect` first
//! removes the connection from `live` (waiting for those readers), so a
//! subscribe racing a disconnect either fails or is undone: no zombie
//! subscriptions. Reads are per shard, not one snapshot: a fan-out sees one
//! thread's set atomically but may observe the two indexes mid-update.
//! Lock order: `live` → `by_conn` → `threads`; no operation holds two guards
//! of the same map.

use super::maps::{Slot, ThreadHandle};
use crate::registry::{Direct, Registry};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::Arc;

/// Three `DashMap`s: live connections, thread slots, reverse index.
#[derive(Debug, Default)]
pub struct Dash {
    live: DashMap<u64, u64>,
    threads: DashMap<u64, Slot>,
    by_conn: DashMap<u64, HashSet<u64>>,
}

impl Registry for Dash {
    const NAME: &'static str = "dashmap";
    type Entry = ThreadHandle;

    fn new() -> Self {
        Dash::default()
    }

    fn connect(&self, c: u64, caps: u64) -> bool {
        self.live.insert(c, caps).is_none()
    }

    fn disconnect(&self, c: u64) -> Vec<u64> {
        // Waits for any subscribe of `c` that already passed its live check.
        self.live.remove(&c);
        let threads = self
            .by_conn
            .remove(&c)
            .map(|(_, ts)| ts)
            .unwrap_or_default();
        let mut emptied = Vec::new();
        for t in threads {
            if let Some(mut slot) = self.threads.get_mut(&t) {
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

    fn subscribe(&self, t: u64, c: u64) -> Option<ThreadHandle> {
        // Held until both edges are in: `disconnect(c)` cannot pass its
        // `live.remove` meanwhile.
        let _live = self.live.get(&c)?;
        self.by_conn.entry(c).or_default().insert(t);
        let mut slot = self.threads.entry(t).or_default();
        slot.subs.insert(c);
        slot.update_has_subs();
        Some(Arc::clone(&slot.state))
    }

    fn unsubscribe(&self, t: u64, c: u64) -> bool {
        let Some(mut threads) = self.by_conn.get_mut(&c) else {
            return false;
        };
        if !threads.remove(&t) {
            return false;
        }
        if let Some(mut slot) = self.threads.get_mut(&t) {
            slot.subs.remove(&c);
            slot.update_has_subs();
        }
        let now_empty = threads.is_empty();
        drop(threads);
        if now_empty {
            self.by_conn.remove_if(&c, |_, ts| ts.is_empty());
        }
        true
    }

    #[inline]
    fn for_each_subscriber(&self, t: u64, mut f: impl FnMut(u64)) {
        if let Some(slot) = self.threads.get(&t) {
            for &c in &slot.subs {
                f(c);
            }
        }
    }

    type Reader<'a> = Direct<'a, Self>;

    fn reader(&self) -> Direct<'_, Self> {
        Direct(self)
    }

    fn validate(&self) -> Result<(), String> {
        for slot in self.threads.iter() {
            let t = *slot.key();
            if *slot.has_subs.borrow() == slot.subs.is_empty() {
                return Err(format!("thread {t}: watch disagrees with its set"));
            }
            for c in &slot.subs {
                if !self.live.contains_key(c) {
                    return Err(format!("edge {t}-{c} names a dead connection"));
                }
                if !self.by_conn.get(c).is_some_and(|ts| ts.contains(&t)) {
                    return Err(format!("forward edge {t}-{c} without reverse edge"));
                }
            }
        }
        for threads in self.by_conn.iter() {
            let c = *threads.key();
            if threads.is_empty() {
                return Err(format!("connection {c}: empty reverse set stored"));
            }
            for t in threads.iter() {
                if !self.threads.get(t).is_some_and(|s| s.subs.contains(&c)) {
                    return Err(format!("reverse edge {t}-{c} without forward edge"));
                }
            }
        }
        Ok(())
    }
}

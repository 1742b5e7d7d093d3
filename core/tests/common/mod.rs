//! A replica of the engine's graph built only from a snapshot and the
//! change feed (the crate docs' replica law: a snapshot plus the feed from
//! its version), strict about the order rules of `Change`; and a brute-force count of a snapshot, to check `Stats`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use switchboard_core::{Caps, Change, ChangeBatch, Engine, Snapshot, Stats};

pub(crate) type Batch = ChangeBatch<u64, u64>;

/// Connections with caps, threads and both indexes, at one version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Replica {
    pub(crate) version: u64,
    pub(crate) conns: BTreeMap<u64, Caps>,
    pub(crate) threads: BTreeSet<u64>,
    /// Forward index; a stored set is never empty.
    pub(crate) subs: BTreeMap<u64, BTreeSet<u64>>,
    /// Reverse index; a stored set is never empty.
    pub(crate) rev: BTreeMap<u64, BTreeSet<u64>>,
}

impl Replica {
    pub(crate) fn from_snapshot(s: &Snapshot<u64, u64>) -> Self {
        let mut r = Replica {
            version: s.version(),
            ..Replica::default()
        };
        for c in s.connections() {
            r.conns
                .insert(c, s.caps(c).expect("listed connection is live"));
            let threads: BTreeSet<u64> = s.threads_of(c).into_iter().collect();
            if !threads.is_empty() {
                r.rev.insert(c, threads);
            }
        }
        for t in s.threads() {
            r.threads.insert(t);
            let subs: BTreeSet<u64> = s.subscribers(t).iter().collect();
            if !subs.is_empty() {
                r.subs.insert(t, subs);
            }
        }
        r
    }

    /// Starts a replica by the crate docs' recipe: a snapshot and a feed from its
    /// version, retried until the feed is granted.
    pub(crate) fn resync<S, M>(
        engine: &Engine<u64, u64, S, M>,
    ) -> (Replica, switchboard_core::ChangeFeed<u64, u64>)
    where
        S: Default + Send + 'static,
        M: Send + 'static,
    {
        loop {
            let s = engine.snapshot();
            if let Ok(feed) = engine.changes_since(s.version()) {
                return (Replica::from_snapshot(&s), feed);
            }
        }
    }

    pub(crate) fn has_edge(&self, t: u64, c: u64) -> bool {
        self.subs.get(&t).is_some_and(|s| s.contains(&c))
    }

    /// Applies one batch, checking it is the next version and that every
    /// change is legal in order: an edge added only between a live
    /// connection and an existing thread, `Occupied` exactly after the
    /// `Subscribed` that gave a thread its first subscriber, `Vacated`
    /// exactly after the `Unsubscribed` that took its last, a connection
    /// disconnected and a thread removed only once they have no edge.
    pub(crate) fn apply(&mut self, batch: &Batch) -> Result<(), String> {
        if batch.version != self.version + 1 {
            return Err(format!(
                "batch {} after version {}: not the next one",
                batch.version, self.version
            ));
        }
        if batch.changes.is_empty() {
            return Err(format!("batch {} is empty", batch.version));
        }
        let mut expect: Option<Change<u64, u64>> = None;
        for (i, &change) in batch.changes.iter().enumerate() {
            let at = || format!("batch {} change {i} {change:?}", batch.version);
            if let Some(e) = expect.take() {
                if change != e {
                    return Err(format!("{}: expected {e:?}", at()));
                }
                continue;
            }
            match change {
                Change::Connected { c, caps } => {
                    if self.conns.insert(c, caps) == Some(caps) {
                        return Err(format!("{}: caps did not change", at()));
                    }
                }
                Change::Disconnected { c } => {
                    if self.conns.remove(&c).is_none() || self.rev.contains_key(&c) {
                        return Err(format!("{}: not live, or edges left", at()));
                    }
                }
                Change::Subscribed { t, c } => {
                    if !self.conns.contains_key(&c)
                        || !self.threads.contains(&t)
                        || self.has_edge(t, c)
                    {
                        return Err(format!("{}: illegal edge", at()));
                    }
                    let set = self.subs.entry(t).or_default();
                    set.insert(c);
                    if set.len() == 1 {
                        expect = Some(Change::Occupied { t });
                    }
                    self.rev.entry(c).or_default().insert(t);
                }
                Change::Unsubscribed { t, c } => {
                    if !self.has_edge(t, c) {
                        return Err(format!("{}: no such edge", at()));
                    }
                    let set = self.subs.get_mut(&t).expect("has_edge");
                    set.remove(&c);
                    if set.is_empty() {
                        self.subs.remove(&t);
                        expect = Some(Change::Vacated { t });
                    }
                    let set = self.rev.get_mut(&c).expect("indexes mirror");
                    set.remove(&t);
                    if set.is_empty() {
                        self.rev.remove(&c);
                    }
                }
                Change::ThreadAdded { t } => {
                    if !self.threads.insert(t) {
                        return Err(format!("{}: thread exists", at()));
                    }
                }
                Change::ThreadRemoved { t } => {
                    if !self.threads.remove(&t) || self.subs.contains_key(&t) {
                        return Err(format!("{}: missing, or edges left", at()));
                    }
                }
                Change::Occupied { .. } | Change::Vacated { .. } => {
                    return Err(format!("{}: not after its edge change", at()));
                }
                _ => return Err(format!("{}: unknown change", at())),
            }
        }
        if let Some(e) = expect {
            return Err(format!("batch {}: ends without {e:?}", batch.version));
        }
        self.version = batch.version;
        Ok(())
    }

    /// Whether this replica is exactly `s`: version, connections with caps,
    /// threads, both indexes.
    pub(crate) fn check_eq(&self, s: &Snapshot<u64, u64>) -> Result<(), String> {
        let other = Replica::from_snapshot(s);
        if *self != other {
            return Err(format!(
                "replica differs from the snapshot\nreplica:  {self:?}\nsnapshot: {other:?}"
            ));
        }
        Ok(())
    }

    /// The batch `op`-like writes must produce from this state (the
    /// expected changes, in order), given as closures by the tests.
    pub(crate) fn disconnect_changes(&self, c: u64) -> Vec<Change<u64, u64>> {
        if !self.conns.contains_key(&c) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &t in self.rev.get(&c).into_iter().flatten() {
            out.push(Change::Unsubscribed { t, c });
            if self.subs[&t].len() == 1 {
                out.push(Change::Vacated { t });
            }
        }
        out.push(Change::Disconnected { c });
        out
    }

    pub(crate) fn remove_thread_changes(&self, t: u64, idle_only: bool) -> Vec<Change<u64, u64>> {
        let subs = self.subs.get(&t);
        if !self.threads.contains(&t) || (idle_only && subs.is_some()) {
            return Vec::new();
        }
        let mut out: Vec<_> = subs
            .into_iter()
            .flatten()
            .map(|&c| Change::Unsubscribed { t, c })
            .collect();
        if subs.is_some() {
            out.push(Change::Vacated { t });
        }
        out.push(Change::ThreadRemoved { t });
        out
    }
}

/// `Stats`' graph counters, counted the slow way from a snapshot.
pub(crate) fn brute_force(s: &Snapshot<u64, u64>) -> (u64, usize, usize, usize, usize) {
    let connections = s.connections().count();
    let threads: Vec<u64> = s.threads().collect();
    let subscribed = threads.iter().filter(|&&t| s.has_subscribers(t)).count();
    let edges = s.connections().map(|c| s.threads_of(c).len()).sum();
    (s.version(), connections, threads.len(), subscribed, edges)
}

/// The same counters from `Stats`.
pub(crate) fn counters(st: &Stats) -> (u64, usize, usize, usize, usize) {
    (
        st.version,
        st.connections,
        st.threads,
        st.subscribed_threads,
        st.subscriptions,
    )
}

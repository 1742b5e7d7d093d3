//! The engine's writes, each one operation on the graph a transaction is
//! building ([`Edit`]): a writing method of `Engine` runs one inside a
//! write of its own, `Engine::batch` runs any number inside one.
//!
//! An operation changes the copy of the tries, records its changes and the
//! watches it flips or closes in the write's `WriteBuf` (with the cells
//! looked up now, so that nothing is hashed or compared after the
//! publish), and notes in [`Effects`] the removed entries, whose listeners
//! its caller clears after the lock.

use crate::caps::Caps;
use crate::changes::Change;
use crate::entry::ThreadEntry;
use crate::error::NotConnected;
use crate::graph::{ConnNode, ErasedEntry, Tries};
use crate::key::Key;
use crate::shutdown::Registry;
use crate::store::{HostArc, HostValue, SubscriberSet, Txn};
use crate::sync::StdArc;
use crate::written::WriteBuf;

/// A thread entry as the engine hands it out.
pub(super) type Entry<T, S, M> = StdArc<ThreadEntry<T, S, M>>;

/// The entry behind a graph's erased one.
pub(super) fn entry_of<T: Key, S: 'static, M: 'static>(e: &ErasedEntry) -> &ThreadEntry<T, S, M> {
    e.downcast_ref()
        .expect("every entry in this engine's graph has this engine's types")
}

/// [`entry_of`], shared.
pub(super) fn entry_arc<T: Key, S: Send + 'static, M: Send + 'static>(
    e: &ErasedEntry,
) -> Entry<T, S, M> {
    StdArc::clone(e)
        .downcast()
        .expect("every entry in this engine's graph has this engine's types")
}

/// What a write's caller must do once the write is published and the
/// writer lock released: clear the listeners of the threads it removed.
/// Allocates nothing for a write with at most one removal.
pub(super) struct Effects<T, S, M> {
    first: Option<Entry<T, S, M>>,
    more: Vec<Entry<T, S, M>>,
}

impl<T: Key, S, M> Effects<T, S, M> {
    pub(super) const fn new() -> Self {
        Effects {
            first: None,
            more: Vec::new(),
        }
    }

    fn removed(&mut self, e: Entry<T, S, M>) {
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.more.push(e);
        }
    }

    /// After the lock: clears the listeners of removed threads (their
    /// tokens fire, their queues close).
    #[inline]
    pub(super) fn unlocked(self) {
        let Some(first) = self.first else {
            return; // the common write: nothing removed
        };
        first.clear_listener();
        for e in self.more {
            e.clear_listener();
        }
    }
}

/// One operation's view of a write in progress: the engine's listener
/// registry (new entries report to it), the tries being built, the
/// transaction, the write buffer and the effects its caller runs after.
pub(super) struct Edit<'a, 't, T: Key, C: Key, S, M, D: Send + Sync + 'static> {
    pub(super) registry: &'a StdArc<Registry<T>>,
    pub(super) g: &'a mut Tries<T, C, D>,
    pub(super) txn: &'a mut Txn<'t>,
    pub(super) log: &'a mut WriteBuf<T, C>,
    pub(super) effects: &'a mut Effects<T, S, M>,
}

impl<T, C, S, M, D> Edit<'_, '_, T, C, S, M, D>
where
    T: Key,
    C: Key,
    S: Send + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    fn entry_of(e: &ErasedEntry) -> &ThreadEntry<T, S, M> {
        entry_of(e)
    }

    fn entry_arc(e: &ErasedEntry) -> Entry<T, S, M> {
        entry_arc(e)
    }

    /// A new entry for `t` with state `init()`, in the graph.
    fn add_thread(&mut self, t: T, init: impl FnOnce() -> S) -> Entry<T, S, M> {
        let e = StdArc::new(ThreadEntry::with_state(t, self.registry, init()));
        self.txn
            .keep_until_unlocked(StdArc::clone(&e) as ErasedEntry);
        self.g
            .threads
            .insert(t, StdArc::clone(&e) as ErasedEntry, self.txn);
        self.log.push(Change::ThreadAdded { t });
        e
    }

    /// `subscribe(t, c)`, only while `c` is live in `incarnation` if given.
    pub(super) fn subscribe(
        &mut self,
        t: T,
        c: C,
        incarnation: Option<u64>,
        init: impl FnOnce() -> S,
    ) -> Result<Entry<T, S, M>, NotConnected> {
        let Some(conn) = self.g.conns.get(&c) else {
            return Err(NotConnected);
        };
        if incarnation.is_some_and(|i| i != conn.incarnation) {
            return Err(NotConnected);
        }
        if conn.threads.contains(&t) {
            return self
                .g
                .threads
                .get(&t)
                .map(Self::entry_arc)
                .ok_or(NotConnected);
        }
        if let Some(conn) = self.g.conns.path_mut(&c, self.txn) {
            conn.threads.insert(t, self.txn);
        }
        let entry = match self.g.threads.get(&t) {
            Some(e) => Self::entry_arc(e),
            None => self.add_thread(t, init),
        };
        // One walk: the path is copied for the insert below if `t` has no
        // set yet.
        let first = match self.g.subs.path_mut(&t, self.txn) {
            Some(set) => {
                set.insert(c, self.txn);
                false
            }
            None => {
                self.g.subs.insert(t, SubscriberSet::one(c), self.txn);
                true
            }
        };
        self.log.push(Change::Subscribed { t, c });
        if first {
            self.log.push(Change::Occupied { t });
            self.log.flip(entry.watch_arc(), true);
        }
        debug_assert_eq!(self.g.check_edge(&t, &c), Ok(()));
        Ok(entry)
    }

    /// Removes the edge `t`–`c` if it exists (and, if `incarnation` is
    /// given, only while `c` is live in it). Returns whether it did.
    pub(super) fn unsubscribe(&mut self, t: T, c: C, incarnation: Option<u64>) -> bool {
        let Some(conn) = self.g.conns.get(&c) else {
            return false;
        };
        if incarnation.is_some_and(|i| i != conn.incarnation) || !conn.threads.contains(&t) {
            return false;
        }
        if let Some(conn) = self.g.conns.path_mut(&c, self.txn) {
            conn.threads.remove(&t, self.txn);
        }
        let mut emptied = false;
        // `subs[t]` holds `c` (invariant 1).
        if let Some(set) = self.g.subs.path_mut(&t, self.txn) {
            set.remove(&c, self.txn);
            emptied = set.is_empty();
        }
        self.log.push(Change::Unsubscribed { t, c });
        if emptied {
            self.g.subs.remove(&t, self.txn);
            self.log.push(Change::Vacated { t });
            if let Some(e) = self.g.threads.get(&t) {
                self.log.flip(Self::entry_of(e).watch_arc(), false);
            }
        }
        debug_assert_eq!(self.g.check_edge(&t, &c), Ok(()));
        true
    }

    /// The entry of `t`, created with `init()` if it does not exist.
    pub(super) fn thread_with(&mut self, t: T, init: impl FnOnce() -> S) -> Entry<T, S, M> {
        match self.g.threads.get(&t) {
            Some(e) => Self::entry_arc(e),
            None => self.add_thread(t, init),
        }
    }

    /// Removes `t` if it exists, and if `idle_only`, has no subscriber, and
    /// if `only`, its entry is that one.
    pub(super) fn remove_thread(
        &mut self,
        t: T,
        idle_only: bool,
        only: Option<&ThreadEntry<T, S, M>>,
    ) -> bool {
        if idle_only && self.g.subs.contains_key(&t) {
            return false;
        }
        if let Some(only) = only {
            let current = self.g.threads.get(&t).map(Self::entry_of);
            if !current.is_some_and(|e| std::ptr::eq(e, only)) {
                return false;
            }
        }
        let Some(erased) = self.g.threads.remove(&t, self.txn) else {
            return false;
        };
        let entry = Self::entry_arc(&erased);
        self.txn.keep_until_unlocked(erased);
        let (conns, log) = (&mut self.g.conns, &mut *self.log);
        let vacated = self.g.subs.remove_with(&t, self.txn, |set, txn| {
            for c in set.iter() {
                // `c` is live (invariant 2).
                if let Some(conn) = conns.path_mut(&c, txn) {
                    conn.threads.remove(&t, txn);
                }
                log.push(Change::Unsubscribed { t, c });
                // The forward edge left with `t`'s set; check the reverse
                // one (`check_edge` once it is out of `subs`).
                debug_assert!(!conns.get(&c).is_some_and(|n| n.threads.contains(&t)));
            }
        });
        if vacated.is_some() {
            self.log.push(Change::Vacated { t });
        }
        self.log.push(Change::ThreadRemoved { t });
        self.log.flip(entry.watch_arc(), false);
        self.log.close(entry.watch_arc());
        self.effects.removed(entry);
        true
    }

    /// Makes `c` live with `caps` (a new incarnation with `data()` if it was
    /// not live, else new caps). Returns whether it was newly live.
    pub(super) fn connect(&mut self, c: C, caps: Caps, data: impl FnOnce() -> D) -> bool {
        match self.g.conns.get(&c) {
            Some(node) if node.caps == caps => false,
            Some(_) => {
                if let Some(node) = self.g.conns.path_mut(&c, self.txn) {
                    node.caps = caps;
                }
                self.log.push(Change::Connected { c, caps });
                false
            }
            None => {
                self.g.incarnations += 1;
                let data = ConnNode::<T, D>::wrap_data(data());
                if let Some(d) = data.count() {
                    self.txn.keep_until_unlocked(StdArc::clone(d) as HostValue);
                }
                let node = ConnNode::new(caps, self.g.incarnations, data);
                self.g.conns.insert(c, node, self.txn);
                self.log.push(Change::Connected { c, caps });
                true
            }
        }
    }

    /// Ends `c`'s live incarnation, if any, and starts a new one with
    /// `caps` and `data` (as `ConnNode::wrap_data` made it). Returns its
    /// number.
    pub(super) fn connect_with(&mut self, c: C, caps: Caps, data: HostArc<D>) -> u64 {
        self.disconnect(c, None);
        self.g.incarnations += 1;
        let incarnation = self.g.incarnations;
        self.g
            .conns
            .insert(c, ConnNode::new(caps, incarnation, data), self.txn);
        self.log.push(Change::Connected { c, caps });
        incarnation
    }

    /// Removes `c` (if live, and in `incarnation` if given) with every edge
    /// of it. Returns the threads it left without any subscriber,
    /// ascending, or `None` if nothing changed.
    pub(super) fn disconnect(&mut self, c: C, incarnation: Option<u64>) -> Option<Vec<T>> {
        let live = self.g.conns.get(&c)?;
        if incarnation.is_some_and(|i| i != live.incarnation) {
            return None;
        }
        let mut emptied = Vec::new();
        let (subs, threads, log) = (&mut self.g.subs, &self.g.threads, &mut *self.log);
        self.g.conns.remove_with(&c, self.txn, |node, txn| {
            for t in node.threads.iter() {
                // `subs[t]` holds `c` (invariant 1).
                let Some(set) = subs.path_mut(&t, txn) else {
                    debug_assert!(false, "reverse edge {t:?}-{c:?} without forward edge");
                    continue;
                };
                set.remove(&c, txn);
                log.push(Change::Unsubscribed { t, c });
                if set.is_empty() {
                    subs.remove(&t, txn);
                    log.push(Change::Vacated { t });
                    emptied.push(t);
                    if let Some(e) = threads.get(&t) {
                        log.flip(Self::entry_of(e).watch_arc(), false);
                    }
                }
                // The reverse edge left with `c`; check the forward one
                // (`check_edge` once `c` is out of `conns`).
                debug_assert!(!subs.get(&t).is_some_and(|s| s.contains(&c) || s.is_empty()));
            }
        })?;
        self.log.push(Change::Disconnected { c });
        Some(emptied)
    }
}

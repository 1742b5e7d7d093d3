//! The reference model of `model.rs`: the ops, their return values, and
//! plain ordered maps that say what each op must do.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_core::{Caps, NotConnected, WatchError};

/// The connection data the model's engine carries: a serial number the
/// model hands out per `connect_with`, so a data value names exactly one
/// incarnation (`Tag(0)`: `connect`'s default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tag(pub(crate) u64);

/// Which incarnation an incarnation-checked op names. The harness resolves
/// it to `Exact` (`Model::resolve`) before applying the op to either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The connection's live incarnation (or its last ended one).
    Current,
    /// Its last ended incarnation (or one never handed out).
    Ended,
    /// One never handed out yet.
    Unused,
    Exact(u64),
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Connect(u64, u64),
    Disconnect(u64),
    Subscribe(u64, u64),
    Unsubscribe(u64, u64),
    Thread(u64),
    RemoveThread(u64),
    RemoveThreadIfIdle(u64),
    /// `wait_changed(0)` on the test's watch of the thread, if it exists.
    WaitChanged(u64),
    /// `connect_with(c, caps, data)`, the data a new `Tag`.
    ConnectWith(u64, u64),
    DisconnectIf(u64, Pick),
    SubscribeIf(u64, u64, Pick),
    /// `unsubscribe_if(t, c, ..)`, the incarnation picked as for `SubscribeIf`.
    UnsubscribeIf(u64, u64, Pick),
}

/// An op's return value, in comparable form.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ret {
    Bool(bool),
    Threads(Vec<u64>),
    Subscribed(Result<(), NotConnected>),
    /// `thread()` returned an entry (its identity is checked separately).
    Entry,
    /// `None`: no such thread, so no watch to ask.
    Wait(Option<Result<bool, WatchError>>),
    /// `connect_with`'s number: the model does not predict it (only that
    /// it exceeds every earlier one), so the harness checks it, records it
    /// and compares `Incarnation(0)`.
    Incarnation(u64),
    /// `disconnect_if`.
    Ended(Option<Vec<u64>>),
}

/// A live connection's incarnation and data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Session {
    /// `0` until the harness records the engine's number.
    pub(crate) incarnation: u64,
    pub(crate) data: Tag,
}

/// What the model knows of one thread's watch cell.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WatchModel {
    /// Real false<->true changes since the entry was created.
    pub(crate) version: u64,
    /// The version the test's watch last returned from `wait_changed` (or
    /// the one current when the watch was made).
    pub(crate) seen: u64,
}

/// The reference: plain ordered maps.
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    /// Live connections and their caps.
    pub(crate) conns: BTreeMap<u64, u64>,
    /// Live connections' sessions (the same keys as `conns`).
    pub(crate) sessions: BTreeMap<u64, Session>,
    /// Each connection's last ended incarnation.
    pub(crate) ended: BTreeMap<u64, u64>,
    /// The largest incarnation the engine has handed out.
    pub(crate) max_incarnation: u64,
    /// The last `Tag` handed out.
    tags: u64,
    /// Existing threads.
    pub(crate) threads: BTreeMap<u64, WatchModel>,
    /// Forward edges; a stored set is never empty.
    pub(crate) subs: BTreeMap<u64, BTreeSet<u64>>,
    /// Set by the op that removed a thread: its id and final watch state.
    pub(crate) removed: Option<(u64, WatchModel)>,
    /// Ops that changed the graph: the engine's version (guarantee 9).
    pub(crate) version: u64,
}

impl Model {
    /// The data the next `ConnectWith` gives its connection.
    #[allow(dead_code)] // used by `host_code.rs`, not by `model.rs`
    pub(crate) fn next_tag(&self) -> Tag {
        Tag(self.tags + 1)
    }

    pub(crate) fn subscribers(&self, t: u64) -> Vec<u64> {
        self.subs
            .get(&t)
            .map_or_else(Vec::new, |s| s.iter().copied().collect())
    }

    pub(crate) fn threads_of(&self, c: u64) -> Vec<u64> {
        self.subs
            .iter()
            .filter(|(_, s)| s.contains(&c))
            .map(|(&t, _)| t)
            .collect()
    }

    pub(crate) fn subscribers_with(&self, t: u64, required: u64) -> Vec<u64> {
        self.subscribers(t)
            .into_iter()
            .filter(|c| Caps(self.conns[c]).contains(Caps(required)))
            .collect()
    }

    fn flip(&mut self, t: u64) {
        self.threads
            .get_mut(&t)
            .expect("flipped thread exists")
            .version += 1;
    }

    pub(crate) fn has_edge(&self, t: u64, c: u64) -> bool {
        self.subs.get(&t).is_some_and(|s| s.contains(&c))
    }

    /// Whether `c` is live in incarnation `pick` (resolved).
    fn is_live_in(&self, c: u64, pick: Pick) -> bool {
        let live = self.sessions.get(&c).map(|s| s.incarnation);
        matches!((live, pick), (Some(i), Pick::Exact(n)) if i == n)
    }

    /// `op` with its `Pick` made `Exact`.
    pub(crate) fn resolve(&self, op: Op) -> Op {
        let exact = |c: u64, pick| {
            let unused = self.max_incarnation + 1;
            let ended = self.ended.get(&c).copied();
            Pick::Exact(match pick {
                Pick::Current => self
                    .sessions
                    .get(&c)
                    .map(|s| s.incarnation)
                    .or(ended)
                    .unwrap_or(unused),
                Pick::Ended => ended.unwrap_or(unused),
                Pick::Unused => unused,
                Pick::Exact(n) => n,
            })
        };
        match op {
            Op::DisconnectIf(c, p) => Op::DisconnectIf(c, exact(c, p)),
            Op::SubscribeIf(t, c, p) => Op::SubscribeIf(t, c, exact(c, p)),
            Op::UnsubscribeIf(t, c, p) => Op::UnsubscribeIf(t, c, exact(c, p)),
            op => op,
        }
    }

    /// What `c`'s data fan-out yields: `(c, its data)` per subscriber.
    pub(crate) fn subscriber_data(&self, t: u64) -> Vec<(u64, Tag)> {
        self.subscribers(t)
            .into_iter()
            .map(|c| (c, self.sessions[&c].data))
            .collect()
    }

    /// Applies `op` (resolved), counting a version if it changes the graph.
    pub(crate) fn apply(&mut self, op: Op) -> Ret {
        let changes = match op {
            Op::ConnectWith(..) => true,
            Op::DisconnectIf(c, p) => self.is_live_in(c, p),
            Op::SubscribeIf(t, c, p) => self.is_live_in(c, p) && !self.has_edge(t, c),
            Op::UnsubscribeIf(t, c, p) => self.is_live_in(c, p) && self.has_edge(t, c),
            Op::Connect(c, caps) => self.conns.get(&c) != Some(&caps),
            Op::Disconnect(c) => self.conns.contains_key(&c),
            Op::Subscribe(t, c) => self.conns.contains_key(&c) && !self.has_edge(t, c),
            Op::Unsubscribe(t, c) => self.has_edge(t, c),
            Op::Thread(t) => !self.threads.contains_key(&t),
            Op::RemoveThread(t) => self.threads.contains_key(&t),
            Op::RemoveThreadIfIdle(t) => {
                self.threads.contains_key(&t) && !self.subs.contains_key(&t)
            }
            Op::WaitChanged(_) => false,
        };
        self.version += u64::from(changes);
        self.apply_op(op)
    }

    fn apply_op(&mut self, op: Op) -> Ret {
        match op {
            Op::Connect(c, caps) => {
                let new = self.conns.insert(c, caps).is_none();
                if new {
                    let session = Session {
                        incarnation: 0,
                        data: Tag::default(),
                    };
                    self.sessions.insert(c, session);
                }
                Ret::Bool(new)
            }
            Op::Disconnect(c) => Ret::Threads(self.disconnect(c).unwrap_or_default()),
            Op::DisconnectIf(c, p) if self.is_live_in(c, p) => Ret::Ended(self.disconnect(c)),
            Op::DisconnectIf(..) => Ret::Ended(None),
            Op::ConnectWith(c, caps) => {
                self.disconnect(c);
                self.tags += 1;
                self.conns.insert(c, caps);
                let session = Session {
                    incarnation: 0,
                    data: Tag(self.tags),
                };
                self.sessions.insert(c, session);
                Ret::Incarnation(0)
            }
            Op::SubscribeIf(t, c, p) if self.is_live_in(c, p) => self.apply_op(Op::Subscribe(t, c)),
            Op::SubscribeIf(..) => Ret::Subscribed(Err(NotConnected)),
            Op::UnsubscribeIf(t, c, p) if self.is_live_in(c, p) => {
                self.apply_op(Op::Unsubscribe(t, c))
            }
            Op::UnsubscribeIf(..) => Ret::Bool(false),
            Op::Subscribe(t, c) => {
                if !self.conns.contains_key(&c) {
                    return Ret::Subscribed(Err(NotConnected));
                }
                self.threads.entry(t).or_default();
                let set = self.subs.entry(t).or_default();
                let first = set.is_empty();
                set.insert(c);
                if first {
                    self.flip(t);
                }
                Ret::Subscribed(Ok(()))
            }
            Op::Unsubscribe(t, c) => {
                let Some(set) = self.subs.get_mut(&t) else {
                    return Ret::Bool(false);
                };
                if !set.remove(&c) {
                    return Ret::Bool(false);
                }
                if set.is_empty() {
                    self.subs.remove(&t);
                    self.flip(t);
                }
                Ret::Bool(true)
            }
            Op::Thread(t) => {
                self.threads.entry(t).or_default();
                Ret::Entry
            }
            Op::RemoveThread(t) => self.remove(t, false),
            Op::RemoveThreadIfIdle(t) => self.remove(t, true),
            Op::WaitChanged(t) => {
                let has = self.subs.contains_key(&t);
                Ret::Wait(self.threads.get_mut(&t).map(|w| {
                    if w.version != w.seen {
                        w.seen = w.version;
                        Ok(has)
                    } else {
                        Err(WatchError::Timeout)
                    }
                }))
            }
        }
    }

    /// Ends `c`'s incarnation with every edge of it; returns the threads
    /// it left empty, or `None` if `c` was not live.
    fn disconnect(&mut self, c: u64) -> Option<Vec<u64>> {
        self.conns.remove(&c)?;
        let session = self.sessions.remove(&c).expect("same keys as conns");
        self.ended.insert(c, session.incarnation);
        let mut emptied = Vec::new();
        for (&t, set) in self.subs.iter_mut() {
            if set.remove(&c) && set.is_empty() {
                emptied.push(t);
            }
        }
        for &t in &emptied {
            self.subs.remove(&t);
            self.flip(t);
        }
        Some(emptied)
    }

    fn remove(&mut self, t: u64, idle_only: bool) -> Ret {
        if !self.threads.contains_key(&t) || (idle_only && self.subs.contains_key(&t)) {
            return Ret::Bool(false);
        }
        let mut w = self.threads.remove(&t).expect("checked above");
        if self.subs.remove(&t).is_some() {
            // Removal flips a subscribed thread to false before closing.
            w.version += 1;
        }
        self.removed = Some((t, w));
        Ret::Bool(true)
    }
}

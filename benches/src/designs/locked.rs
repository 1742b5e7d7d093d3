//! The four baselines that guard [`Maps`] as a whole: the reference design's
//! `tokio::sync::Mutex`, a `parking_lot::Mutex`, a `std::sync::RwLock`, and
//! an `ArcSwap` that clones the whole graph on every write.
//!
//! All four are linearizable: every operation runs on one consistent
//! version of the maps, so they give switchboard's atomicity (no zombie
//! subscriptions, indexes always agree).

use super::maps::{Maps, ThreadHandle};
use crate::registry::{Direct, Registry};
use arc_swap::ArcSwap;
use std::sync::{Arc, PoisonError, RwLock};

/// How a [`Locked`] design reaches its maps.
pub trait MapsLock: Send + Sync + 'static {
    /// The design's name.
    const NAME: &'static str;

    /// Wraps `maps`.
    fn wrap(maps: Maps) -> Self;

    /// Runs `f` on a consistent view of the maps.
    fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R;

    /// Runs `f` with exclusive access and publishes its changes.
    fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R;

    /// Whether a host fans out from a copy of the subscriber ids made under
    /// the lock (the reference design's way: its lock is async, and a
    /// host does not hold it while it delivers) rather than visiting them
    /// under the lock.
    const FAN_OUT_FROM_COPY: bool = false;
}

/// A baseline design: [`Maps`] behind the lock `L`.
#[derive(Debug)]
pub struct Locked<L>(L);

impl<L: MapsLock> Locked<L> {
    /// Runs `f` on a consistent view of the maps.
    pub fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R {
        self.0.read(f)
    }

    /// Runs `f` with exclusive access to the maps.
    pub fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R {
        self.0.write(f)
    }
}

/// The reference design: one `tokio::sync::Mutex` over the maps (locked with
/// `blocking_lock` from the benchmark threads).
pub type Reference = Locked<tokio::sync::Mutex<Maps>>;
/// One `parking_lot::Mutex` over the maps.
pub type PlMutex = Locked<parking_lot::Mutex<Maps>>;
/// One `std::sync::RwLock` over the maps; reads share it.
pub type StdRwLock = Locked<RwLock<Maps>>;
/// An `ArcSwap` over the maps; each write clones the whole graph.
pub type ArcSwapClone = Locked<CloneOnWrite>;

impl MapsLock for tokio::sync::Mutex<Maps> {
    const NAME: &'static str = "reference";
    const FAN_OUT_FROM_COPY: bool = true;

    fn wrap(maps: Maps) -> Self {
        tokio::sync::Mutex::new(maps)
    }

    fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R {
        f(&self.blocking_lock())
    }

    fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R {
        f(&mut self.blocking_lock())
    }
}

impl MapsLock for parking_lot::Mutex<Maps> {
    const NAME: &'static str = "pl_mutex";

    fn wrap(maps: Maps) -> Self {
        parking_lot::Mutex::new(maps)
    }

    fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R {
        f(&self.lock())
    }

    fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R {
        f(&mut self.lock())
    }
}

impl MapsLock for RwLock<Maps> {
    const NAME: &'static str = "rwlock";

    fn wrap(maps: Maps) -> Self {
        RwLock::new(maps)
    }

    fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R {
        f(&self.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R {
        f(&mut self.write().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The naive lock-free-read design: readers `load()` the maps from an
/// `ArcSwap`; a writer (serialised by a mutex) clones the whole graph,
/// changes the clone and stores it. Replaced versions are freed by whoever
/// drops the last reference, often a reader.
#[derive(Debug)]
pub struct CloneOnWrite {
    current: ArcSwap<Maps>,
    writer: parking_lot::Mutex<()>,
}

impl MapsLock for CloneOnWrite {
    const NAME: &'static str = "arcswap_clone";

    fn wrap(maps: Maps) -> Self {
        CloneOnWrite {
            current: ArcSwap::from_pointee(maps),
            writer: parking_lot::Mutex::new(()),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Maps) -> R) -> R {
        f(&self.current.load())
    }

    fn write<R>(&self, f: impl FnOnce(&mut Maps) -> R) -> R {
        let _serialised = self.writer.lock();
        let mut next = Maps::clone(&self.current.load());
        let out = f(&mut next);
        self.current.store(Arc::new(next));
        out
    }
}

impl<L: MapsLock> Registry for Locked<L> {
    const NAME: &'static str = L::NAME;
    type Entry = ThreadHandle;

    fn new() -> Self {
        Locked(L::wrap(Maps::default()))
    }

    fn connect(&self, c: u64, caps: u64) -> bool {
        self.0.write(|m| m.connect(c, caps))
    }

    fn disconnect(&self, c: u64) -> Vec<u64> {
        self.0.write(|m| m.disconnect(c))
    }

    fn subscribe(&self, t: u64, c: u64) -> Option<ThreadHandle> {
        self.0.write(|m| m.subscribe(t, c))
    }

    fn unsubscribe(&self, t: u64, c: u64) -> bool {
        self.0.write(|m| m.unsubscribe(t, c))
    }

    #[inline]
    fn for_each_subscriber(&self, t: u64, f: impl FnMut(u64)) {
        self.0.read(|m| m.visit(t, f));
    }

    type Reader<'a> = Direct<'a, Self>;

    fn reader(&self) -> Direct<'_, Self> {
        Direct(self)
    }

    fn validate(&self) -> Result<(), String> {
        self.0.read(Maps::validate)
    }

    /// One write for the whole build (one clone for [`ArcSwapClone`]).
    fn populate(&self, conns: &[(u64, u64)], edges: &[(u64, u64)]) {
        self.0.write(|m| {
            for &(c, caps) in conns {
                m.connect(c, caps);
            }
            for &(t, c) in edges {
                m.subscribe(t, c);
            }
        });
    }
}

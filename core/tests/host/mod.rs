//! The host types of the host-code tests (`host_code.rs`,
//! `host_programs.rs`): ids, states and data whose `Hash`, `Eq`, `Ord`,
//! `Clone`, `Default` and `Drop` count themselves and panic where a fuse
//! says.
#![allow(dead_code)] // each test file uses a part

use super::reference::Tag;
use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::resume_unwind;
use switchboard_core::Engine;

/// Where the fuse may blow: each kind of host call the engine makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Site {
    Hash,
    Eq,
    Ord,
    Clone,
    Default,
    Init,
    Drop,
}

/// The payload of every planted panic.
#[derive(Debug)]
pub(crate) struct HostPanic(pub(crate) Site);

thread_local! {
    /// Host calls left before the planted panic (0: disarmed).
    pub(crate) static LEFT: Cell<u64> = const { Cell::new(0) };
    /// Count only the calls at this site (`None`: every call).
    pub(crate) static ONLY: Cell<Option<Site>> = const { Cell::new(None) };
    pub(crate) static FIRED: Cell<Option<Site>> = const { Cell::new(None) };
    /// How often each site blew, over the harness's cases.
    pub(crate) static BLOWN: Cell<[u32; 7]> = const { Cell::new([0; 7]) };
    /// States and data values made and dropped on this thread.
    pub(crate) static MADE: Cell<u64> = const { Cell::new(0) };
    pub(crate) static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// Panics at the `n`-th host call from now on.
pub(crate) fn arm(n: u64) {
    LEFT.set(n);
    ONLY.set(None);
    FIRED.set(None);
}

/// Panics at the `n`-th host call at `site` from now on.
pub(crate) fn arm_at(site: Site, n: u64) {
    arm(n);
    ONLY.set(Some(site));
}

/// Disarms the fuse; which site blew, if one did.
pub(crate) fn disarm() -> Option<Site> {
    LEFT.set(0);
    FIRED.take()
}

/// One host call at `site`: panics if it is the armed one. (Not while
/// unwinding: a destructor that panics then aborts the process, in std's
/// collections as here.)
pub(crate) fn tick(site: Site) {
    let left = LEFT.get();
    if left == 0 || std::thread::panicking() || ONLY.get().is_some_and(|s| s != site) {
        return;
    }
    LEFT.set(left - 1);
    if left == 1 {
        FIRED.set(Some(site));
        let mut blown = BLOWN.get();
        blown[site as usize] += 1;
        BLOWN.set(blown);
        // `resume_unwind`: a panic without the panic hook's report.
        resume_unwind(Box::new(HostPanic(site)));
    }
}

/// Thread and connection ids. Seven hashes for ten ids: some keys share
/// their whole hash, so writes reach the trie's collision nodes too.
#[derive(Clone, Copy, Debug)]
pub(crate) struct K(pub(crate) u64);

impl Hash for K {
    fn hash<H: Hasher>(&self, h: &mut H) {
        tick(Site::Hash);
        (self.0 % 7).hash(h);
    }
}

impl PartialEq for K {
    fn eq(&self, other: &Self) -> bool {
        tick(Site::Eq);
        self.0 == other.0
    }
}

impl Eq for K {}

impl PartialOrd for K {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for K {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        tick(Site::Ord);
        self.0.cmp(&other.0)
    }
}

/// A host value that counts itself: made, dropped.
pub(crate) fn made() {
    MADE.set(MADE.get() + 1);
}

/// A thread's state.
#[derive(Debug)]
pub(crate) struct State(());

impl Default for State {
    fn default() -> Self {
        tick(Site::Default);
        made();
        State(())
    }
}

impl Drop for State {
    fn drop(&mut self) {
        DROPPED.set(DROPPED.get() + 1);
        tick(Site::Drop);
    }
}

/// A connection's data: the model's tag.
#[derive(Debug)]
pub(crate) struct Data(pub(crate) u64);

impl Data {
    pub(crate) fn new(tag: Tag) -> Self {
        made();
        Data(tag.0)
    }
}

impl Default for Data {
    fn default() -> Self {
        tick(Site::Default);
        Data::new(Tag::default())
    }
}

impl Clone for Data {
    fn clone(&self) -> Self {
        tick(Site::Clone);
        Data::new(Tag(self.0))
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        DROPPED.set(DROPPED.get() + 1);
        tick(Site::Drop);
    }
}

pub(crate) type E = Engine<K, K, State, (), Data>;

pub(crate) const THREADS: u64 = 10;
pub(crate) const CONNS: u64 = 6;
pub(crate) const CAPS: u64 = 3;

//! The writer the store's unit tests share: publishes one version per
//! transaction, holds whichever versions a test says it still reads, and
//! reclaims the rest.

use super::deferred::Deferred;
use super::node::Version;
use super::ordset::OrdTree;
use super::reclaim::{Reclaimer, Txn};
use super::share::{Share, ShareToken};
use super::trie::Trie;

// The value types the trie's unit tests store.
// SAFETY: points to no node and has no destructor.
unsafe impl Share for u64 {
    fn share(&self, _: &ShareToken) -> Self {
        *self
    }

    fn release(&mut self, _: &mut Txn<'_>) {}
}

// SAFETY: points to no node and has no destructor.
unsafe impl Share for &'static str {
    fn share(&self, _: &ShareToken) -> Self {
        self
    }

    fn release(&mut self, _: &mut Txn<'_>) {}
}

/// What a test writer keeps as its latest version: a structure whose nodes
/// it owns, or `()` for tests that keep their structure themselves.
pub(super) trait Latest {
    fn empty() -> Self;
    /// A copy sharing every node (the base of the next transaction).
    fn share(&self) -> Self;
    /// Gives up every node to `txn` (the writer's teardown).
    fn release_all(&mut self, txn: &mut Txn<'_>);
}

impl Latest for () {
    fn empty() -> Self {}
    fn share(&self) -> Self {}
    fn release_all(&mut self, _: &mut Txn<'_>) {}
}

impl<K: Copy + Send + Sync, V: Share + Send + Sync> Latest for Trie<K, V> {
    fn empty() -> Self {
        Trie::new()
    }
    fn share(&self) -> Self {
        Trie::share(self)
    }
    fn release_all(&mut self, txn: &mut Txn<'_>) {
        Share::release(self, txn);
    }
}

impl<K: Copy + Ord + Send + Sync> Latest for OrdTree<K> {
    fn empty() -> Self {
        OrdTree::new()
    }
    fn share(&self) -> Self {
        OrdTree::share(self)
    }
    fn release_all(&mut self, txn: &mut Txn<'_>) {
        self.discard_all(txn);
    }
}

/// A writer for tests (see the module docs).
pub(super) struct TestWriter<L: Latest> {
    pub(super) latest: L,
    pub(super) version: Version,
    pub(super) reclaimer: Reclaimer,
}

impl<L: Latest> TestWriter<L> {
    pub(super) fn new() -> Self {
        TestWriter {
            latest: L::empty(),
            version: 0,
            reclaimer: Reclaimer::default(),
        }
    }

    /// Runs `f` as one transaction, on a copy of the latest version, and
    /// publishes the result. If `f` panics, the transaction is abandoned
    /// and the latest version stays (as `Versions::write` does).
    pub(super) fn write<R>(&mut self, f: impl FnOnce(&mut L, &mut Txn<'_>) -> R) -> R {
        let mut later = Deferred::new();
        let version = self.version + 1;
        let mut next = self.latest.share();
        let mut txn = Txn::new(version, &mut self.reclaimer, &mut later);
        let r = f(&mut next, &mut txn);
        txn.commit();
        self.version = version;
        self.latest = next;
        r
    }

    /// Frees every retired node that no version in `held` can see.
    pub(super) fn collect(&mut self, held: &[Version]) {
        let mut later = Deferred::new();
        // SAFETY: tests pass every version they still read.
        unsafe { self.reclaimer.collect(held.iter().copied(), &mut later) }
    }
}

impl<L: Latest> Drop for TestWriter<L> {
    fn drop(&mut self) {
        let mut later = Deferred::new();
        // SAFETY: tests drop the writer after their last read, and write
        // nothing after.
        let mut txn = unsafe { Txn::teardown(&mut self.reclaimer, &mut later) };
        self.latest.release_all(&mut txn);
    }
}

/// `n` steps for a randomized store test, or a fifth of them under
/// valgrind (`.ci/run` sets `SWITCHBOARD_VALGRIND`): memcheck runs each
/// step some fifty times slower, and a fifth still reaches every shape.
pub(super) fn scaled(n: u64) -> u64 {
    if std::env::var_os("SWITCHBOARD_VALGRIND").is_some() {
        n / 5
    } else {
        n
    }
}

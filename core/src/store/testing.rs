//! The writer the store's unit tests share: publishes one version per
//! transaction, holds whichever versions a test says it still reads, and
//! reclaims the rest.

use super::{OrdTree, Pool, Reclaimer, Share, ShareToken, Trie, Txn, Version};

// The value types the trie's unit tests store.
impl Share for u64 {
    fn share(&self, _: &ShareToken) -> Self {
        *self
    }
}

impl Share for &'static str {
    fn share(&self, _: &ShareToken) -> Self {
        self
    }
}

/// What a test writer keeps as its latest version: a structure whose nodes
/// it owns, or `()` for tests that keep their structure themselves.
pub(super) trait Latest {
    fn empty() -> Self;
    /// A copy sharing every node (the base of the next transaction).
    fn share(&self) -> Self;
    /// Frees every node.
    ///
    /// # Safety
    ///
    /// As `Trie::free_all`.
    unsafe fn free_all(&mut self, pool: &Pool);
}

impl Latest for () {
    fn empty() -> Self {}
    fn share(&self) -> Self {}
    unsafe fn free_all(&mut self, _: &Pool) {}
}

impl<K, V> Latest for Trie<K, V> {
    fn empty() -> Self {
        Trie::new()
    }
    fn share(&self) -> Self {
        Trie::share(self)
    }
    unsafe fn free_all(&mut self, pool: &Pool) {
        // SAFETY: the caller's contract.
        unsafe { Trie::free_all(self, pool) }
    }
}

impl<K> Latest for OrdTree<K> {
    fn empty() -> Self {
        OrdTree::new()
    }
    fn share(&self) -> Self {
        OrdTree::share(self)
    }
    unsafe fn free_all(&mut self, pool: &Pool) {
        // SAFETY: the caller's contract.
        unsafe { OrdTree::free_all(self, pool) }
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
    /// publishes the result.
    pub(super) fn write<R>(&mut self, f: impl FnOnce(&mut L, &mut Txn<'_>) -> R) -> R {
        self.version += 1;
        let mut next = self.latest.share();
        let mut txn = Txn::new(self.version, &mut self.reclaimer);
        let r = f(&mut next, &mut txn);
        self.latest = next;
        r
    }

    /// Frees every retired node that no version in `held` can see.
    pub(super) fn collect(&mut self, held: &[Version]) {
        // SAFETY: tests pass every version they still read.
        unsafe { self.reclaimer.collect(held.iter().copied()) }
    }
}

impl<L: Latest> Drop for TestWriter<L> {
    fn drop(&mut self) {
        // SAFETY: tests drop the writer after their last read.
        unsafe { self.latest.free_all(self.reclaimer.pool()) }
    }
}

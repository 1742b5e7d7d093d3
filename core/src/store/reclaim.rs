//! Reclamation: the writer's transactions ([`Txn`]), which give up the
//! nodes a write replaces (the copies that replace them are `copy.rs`'s),
//! and the [`Reclaimer`], which frees a replaced node once no version a
//! reader may hold can see it. Why that is safe: "Reclamation" in
//! `store/mod.rs`.

use super::deferred::{Deferred, DropLater, HostValue};
use super::node::{Born, Made, Node, Version};
use super::pool::Pool;
use std::cell::RefCell;
use std::marker::PhantomData;

/// A replaced node waiting until no held version can see it.
struct Retired {
    node: Made,
    born: Version,
    died: Version,
}

/// The writer's node memory, its list of replaced nodes, and the open
/// transaction's lists (see "Reclamation" in `store/mod.rs`). Private to
/// the store: `Versions` owns the engine's.
///
/// Invariant: between transactions `made` and `young` are empty; during
/// one, `made` lists every node the transaction allocated (each once) and
/// `young` those of them it gave up again, which no version links.
#[derive(Default)]
pub(crate) struct Reclaimer {
    retired: Vec<Retired>,
    pool: Pool,
    made: RefCell<Vec<Made>>,
    young: Vec<Made>,
}

// SAFETY: the retired nodes hold `Send + Sync` keys and values (required
// where they are retired), and only the reclaimer's owner frees them.
// (Not `Sync`: the pool is the writer's alone.)
unsafe impl Send for Reclaimer {}

impl Reclaimer {
    /// The memory every node of this writer comes from.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Number of replaced nodes not yet freed.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.retired.len()
    }

    /// Frees every retired node that no version in `held` can see, handing
    /// the host values they held to `later`. Runs no host code; and the
    /// list is taken out of the reclaimer while it is filtered, so that even
    /// a panic midway would leave no freed node listed (the rest would
    /// leak, never be freed twice).
    ///
    /// # Safety
    ///
    /// `held` yields every graph version a reader may still hold (the
    /// latest version need not be listed: no retired node is visible in it).
    pub(crate) unsafe fn collect(
        &mut self,
        held: impl Iterator<Item = Version> + Clone,
        later: &mut Deferred,
    ) {
        let mut retired = std::mem::take(&mut self.retired);
        let pool = &self.pool;
        retired.retain(|r| {
            if held.clone().any(|v| r.born <= v && v < r.died) {
                return true;
            }
            // SAFETY: no held version lies in [born, died), so no reader
            // can reach the node (caller's contract); it is listed once, and
            // `retain` drops it from the list it returns.
            unsafe { r.node.free(pool, later) };
            false
        });
        self.retired = retired;
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        debug_assert!(self.made.get_mut().is_empty() && self.young.is_empty());
        let mut later = Deferred::new();
        // SAFETY: the reclaimer is dropped only once no graph version exists
        // any more (its owner outlives every version).
        unsafe { self.collect(std::iter::empty(), &mut later) }
        // `later` goes here: no lock is held (the owner's mutex is gone).
    }
}

/// One writer transaction: builds the graph version `version`. Only the
/// store makes one (`Versions::write`, and the teardown of the last
/// version), so code outside it can change nodes only inside a write.
///
/// It ends in one of two ways:
///
/// * [`commit`](Self::commit): the nodes it built become the next version
///   (the caller publishes it); the nodes it made and gave up again are
///   freed; the nodes it replaced stay retired.
/// * dropped without a commit (host code panicked inside the write, and
///   the unwind drops it): every node it made is freed, the replaced nodes
///   leave the retired list (the published version still links them), and
///   the host values of the freed nodes go to `later`. The published
///   version is as before: it never links a node this transaction made
///   (immutability), and no node it links was freed. So a write is all or
///   nothing under unwinding by construction, whatever the host code did.
///
/// Not `Send`: it belongs to the writing thread, which runs at most one
/// (`Versions::write` refuses a nested write).
pub(crate) struct Txn<'a> {
    pub(super) version: Version,
    retired: &'a mut Vec<Retired>,
    /// `retired.len()` when the transaction began.
    retired_before: usize,
    pool: &'a Pool,
    made: &'a RefCell<Vec<Made>>,
    young: &'a mut Vec<Made>,
    later: &'a mut Deferred,
    /// Whether this transaction made or gave up any node.
    pub(super) touched: bool,
    /// A teardown: no version exists any more, so a node given up is freed
    /// at once whatever its age.
    teardown: bool,
    /// Committed: nothing to undo.
    done: bool,
    _thread: PhantomData<*mut ()>,
}

impl<'a> Txn<'a> {
    /// A transaction building `version`, which must be newer than every
    /// version built before with this reclaimer; the host values of the
    /// nodes it frees go to `later`.
    pub(super) fn new(
        version: Version,
        reclaimer: &'a mut Reclaimer,
        later: &'a mut Deferred,
    ) -> Self {
        let Reclaimer {
            retired,
            pool,
            made,
            young,
        } = reclaimer;
        debug_assert!(made.get_mut().is_empty() && young.is_empty());
        Txn {
            version,
            retired_before: retired.len(),
            retired,
            pool,
            made,
            young,
            later,
            touched: false,
            teardown: false,
            done: false,
            _thread: PhantomData,
        }
    }

    /// A transaction that frees every node given up to it at once: what the
    /// last version's owner releases the latest roots into.
    ///
    /// # Safety
    ///
    /// No graph version exists any more, so no reader can reach any node
    /// ("Reclamation", step 7), and nothing builds a version after it.
    pub(super) unsafe fn teardown(reclaimer: &'a mut Reclaimer, later: &'a mut Deferred) -> Self {
        let mut txn = Txn::new(Version::MAX, reclaimer, later);
        txn.teardown = true;
        txn
    }

    /// What nodes made in this transaction are born with.
    #[inline]
    pub(super) fn born(&self) -> Born<'a> {
        Born {
            version: self.version,
            pool: self.pool,
            made: self.made,
        }
    }

    /// Whether this transaction made or gave up any node: if so, its trie
    /// must be published (the nodes it replaced are already retired).
    pub(crate) fn touched(&self) -> bool {
        self.touched
    }

    /// Keeps a host value the write made until the writer lock is released,
    /// so that its last drop never runs under the lock (if the write
    /// unwinds, its copy in a node this transaction made is freed, and this
    /// one is the last).
    pub(crate) fn keep_until_unlocked(&mut self, value: HostValue) {
        self.later.push(value);
    }

    /// Ends the transaction: what it built becomes the next version. Frees
    /// the nodes it made and gave up again.
    pub(super) fn commit(mut self) {
        for node in self.young.drain(..) {
            // SAFETY: made by this transaction, so never published ("Reclamation",
            // step 6), and given up once (`discard`): unlinked from the version
            // being built, which is the only one that could link it.
            unsafe { node.free(self.pool, self.later) };
        }
        self.made.borrow_mut().clear();
        self.done = true;
    }

    /// Gives up `node`: freed when the transaction commits if this
    /// transaction made it, retired with its visibility interval otherwise
    /// (so nothing given up is freed while the transaction runs).
    ///
    /// # Safety
    ///
    /// By the time the transaction commits, the version it builds no longer
    /// links `node` (a link the caller is about to overwrite, as a B+tree
    /// parent's slot is after its child was copied, is fine); `node` is
    /// given up once, it came from this writer, and `counted` is its kind.
    /// (Giving up a node the new version still links, or giving one up
    /// twice, would free memory readers can reach.)
    #[inline]
    pub(super) unsafe fn discard<K: Copy + Send + Sync, V: DropLater + Send + Sync>(
        &mut self,
        node: Node<K, V>,
        counted: bool,
    ) {
        self.touched = true;
        let born = node.header().born();
        if self.teardown {
            // SAFETY: given up in a teardown, when no version exists
            // ("Reclamation", step 7); unlinked from the only parent it
            // had (the caller's contract); allocated from this pool.
            unsafe { node.free(counted, self.pool, self.later) };
        } else if born == self.version {
            // Made here: on `made` already; freed when the transaction ends
            // (by `commit`, or with every node it made if it is abandoned).
            self.young.push(node.made(counted));
        } else {
            debug_assert!(born < self.version);
            self.retired.push(Retired {
                node: node.made(counted),
                born,
                died: self.version,
            });
        }
    }
}

impl Drop for Txn<'_> {
    /// Abandons an uncommitted transaction (see [`Txn`]).
    fn drop(&mut self) {
        if self.done || self.teardown {
            return;
        }
        // The nodes it replaced are still linked by the published version.
        self.retired.truncate(self.retired_before);
        self.young.clear();
        let made = std::mem::take(&mut *self.made.borrow_mut());
        for node in made {
            // SAFETY: made by this transaction, so never published: no
            // reader reaches it ("Reclamation", step 6); `made` lists each
            // node once, and nothing else frees it (`young` was cleared
            // unfreed); from this pool.
            unsafe { node.free(self.pool, self.later) };
        }
    }
}

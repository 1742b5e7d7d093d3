//! Reclamation: the writer's transactions ([`Txn`]), which copy nodes
//! instead of writing published ones and give up the nodes they replace,
//! and the [`Reclaimer`], which frees a replaced node once no version a
//! reader may hold can see it. Why that is safe: "Reclamation" in
//! `store/mod.rs`.

use super::node::{Header, Node, PartsMut};
use super::pool::Pool;
use super::{share_entry, Share, Version};
use std::ptr::NonNull;

/// Type-erased `Node::free`, for the retired list.
///
/// # Safety
///
/// As `Node::free`, for a `Node<K, V>` at `ptr`.
unsafe fn free_erased<K, V>(ptr: NonNull<Header>, counted: bool, pool: &Pool) {
    // SAFETY: the caller's contract: `ptr` is a `Node<K, V>`'s, unfreed.
    let node = unsafe { Node::<K, V>::from_raw(ptr) };
    // SAFETY: the caller's contract.
    unsafe { node.free(counted, pool) }
}

/// A replaced node waiting until no held version can see it.
struct Retired {
    ptr: NonNull<Header>,
    counted: bool,
    free: unsafe fn(NonNull<Header>, bool, &Pool),
    born: Version,
    died: Version,
}

/// The writer's node memory and its list of replaced nodes (see
/// "Reclamation" in `store/mod.rs`). Private to the store: `Versions` owns
/// the engine's.
#[derive(Default)]
pub(crate) struct Reclaimer {
    retired: Vec<Retired>,
    pool: Pool,
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

    /// Frees every retired node that no version in `held` can see.
    ///
    /// # Safety
    ///
    /// `held` yields every graph version a reader may still hold (the
    /// latest version need not be listed: no retired node is visible in it).
    pub(crate) unsafe fn collect(&mut self, held: impl Iterator<Item = Version> + Clone) {
        let pool = &self.pool;
        self.retired.retain(|r| {
            let visible = held.clone().any(|v| r.born <= v && v < r.died);
            if !visible {
                // SAFETY: no held version lies in [born, died), so no reader
                // can reach the node (caller's contract); it is listed once.
                unsafe { (r.free)(r.ptr, r.counted, pool) };
            }
            visible
        });
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        // SAFETY: the reclaimer is dropped only once no graph version exists
        // any more (its owner outlives every version).
        unsafe { self.collect(std::iter::empty()) }
    }
}

/// What a new node needs: the version it is born in and the pool its
/// memory comes from. `Copy`, so that building code can pass it around
/// while the transaction itself is borrowed elsewhere.
#[derive(Clone, Copy)]
pub(crate) struct Born<'a> {
    pub(super) version: Version,
    pub(super) pool: &'a Pool,
}

/// One writer transaction: builds the graph version `version`. Only the
/// store makes one (`Versions::write`, and the teardown of the last
/// version), so code outside it can change nodes only inside a write.
pub(crate) struct Txn<'a> {
    pub(super) version: Version,
    retired: &'a mut Vec<Retired>,
    pool: &'a Pool,
    /// Whether this transaction made or gave up any node.
    pub(super) touched: bool,
    /// A teardown: no version exists any more, so a node given up is freed
    /// at once whatever its age.
    teardown: bool,
}

impl<'a> Txn<'a> {
    /// A transaction building `version`, which must be newer than every
    /// version built before with this reclaimer.
    pub(super) fn new(version: Version, reclaimer: &'a mut Reclaimer) -> Self {
        let Reclaimer { retired, pool } = reclaimer;
        Txn {
            version,
            retired,
            pool,
            touched: false,
            teardown: false,
        }
    }

    /// A transaction that frees every node given up to it at once: what the
    /// last version's owner releases the latest roots into.
    ///
    /// # Safety
    ///
    /// No graph version exists any more, so no reader can reach any node
    /// ("Reclamation", step 7), and nothing builds a version after it.
    pub(super) unsafe fn teardown(reclaimer: &'a mut Reclaimer) -> Self {
        Txn {
            teardown: true,
            ..Txn::new(Version::MAX, reclaimer)
        }
    }

    /// What nodes made in this transaction are born with.
    #[inline]
    pub(super) fn born(&self) -> Born<'a> {
        Born {
            version: self.version,
            pool: self.pool,
        }
    }

    /// Whether this transaction made or gave up any node: if so, its trie
    /// must be published (the nodes it replaced are already retired).
    pub(crate) fn touched(&self) -> bool {
        self.touched
    }

    /// Gives up `node`, which the caller has just unlinked: freed now if
    /// this transaction made it, retired with its visibility interval
    /// otherwise.
    ///
    /// # Safety
    ///
    /// `node` was unlinked from the version this transaction builds (no
    /// node of it links to `node` any more), it is given up once, it came
    /// from this writer, and `counted` is its kind. (Freeing a node still
    /// linked, or giving one up twice, would free memory readers can reach.)
    pub(super) unsafe fn discard<K: Send + Sync, V: Send + Sync>(
        &mut self,
        node: Node<K, V>,
        counted: bool,
    ) {
        self.touched = true;
        let born = node.header().born;
        if born == self.version || self.teardown {
            // SAFETY: born in this transaction, so never published (store
            // docs, "Reclamation", step 6), or given up in a teardown, when
            // no version exists (step 7); unlinked from the only parent it
            // had (the caller's contract); allocated from this pool.
            unsafe { node.free(counted, self.pool) };
        } else {
            debug_assert!(born < self.version);
            self.retired.push(Retired {
                ptr: node.as_raw(),
                counted,
                free: free_erased::<K, V>,
                born,
                died: self.version,
            });
        }
    }
}

/// The parts of `node`, writable: the node is copied first (and the
/// original retired) unless this transaction created it.
pub(super) fn make_mut<'n, K, V>(
    node: &'n mut Node<K, V>,
    counted: bool,
    txn: &mut Txn<'_>,
) -> PartsMut<'n, K, V>
where
    K: Copy + Send + Sync,
    V: Share + Send + Sync,
{
    if node.header().born != txn.version {
        let old = *node;
        let h = old.header();
        let (children, entries) = old.parts(counted);
        *node = Node::alloc(
            h.datamap,
            h.nodemap,
            txn.born(),
            counted,
            children.iter().copied(),
            entries.iter().map(share_entry),
        );
        // SAFETY: `old` was the node in this slot; its copy replaced it just
        // above, so the version being built no longer links to it (it had
        // one parent, "Ownership"), and it is given up once, here.
        unsafe { txn.discard(old, counted) };
    }
    // SAFETY: `node` was born in this transaction, so it is unpublished and
    // reachable only through `node`, which we borrow exclusively.
    unsafe { node.parts_mut(counted) }
}

/// Replaces `*node` with `new` and gives up the old node.
pub(super) fn replace<K: Send + Sync, V: Send + Sync>(
    node: &mut Node<K, V>,
    new: Node<K, V>,
    counted: bool,
    txn: &mut Txn<'_>,
) {
    let old = std::mem::replace(node, new);
    // SAFETY: `old` was the node in this slot, its only parent link
    // ("Ownership"); `new` replaced it, and it is given up once, here.
    unsafe { txn.discard(old, counted) };
}

//! A persistent hash trie whose nodes carry no reference counts: the map the
//! snapshot graph is built from.
//!
//! `Trie<K, V>` is a map with a small, map-like API. Readers look keys up in
//! a trie reached through a published graph version; the writer changes a
//! shallow copy of the latest trie inside a [`Txn`], copying only the nodes
//! on the path to the touched key (`O(log32 n)` nodes), and publishes it.
//! It knows nothing of threads, connections or listeners.
//!
//! # Why this layout
//!
//! Measured on the engine's workload (subscribe+unsubscribe pairs at 1k–100k
//! keys, 2-core machine), a trie of reference-counted 32-slot nodes spent
//! most of its 3–8 µs per pair bumping and dropping child counters on cold
//! cache lines, and a trie of uniform 64–100-byte slots spent it copying
//! 2–3 KB per node. So:
//!
//! * children are plain pointers (no counters to touch on copy or free);
//! * each node is one allocation in the CHAMP layout: a header with two
//!   bitmaps (`datamap`: slots holding an entry inline, `nodemap`: slots
//!   holding a child), then the packed child pointers, then the packed
//!   entries. An inner node of 32 children copies in 272 bytes; entries
//!   live inline, so a lookup touches one node per level;
//! * nodes live in the writer's [`Pool`] (`store/pool.rs`): whole cache lines,
//!   recycled through per-size free lists, so that the writer's allocations
//!   never share a line with a node a reader is reading.
//!
//! The hash is consumed five bits per level from the low end (`layout.rs`);
//! the path-copying writes are in `write.rs`.
//!
//! # Invariants
//!
//! * A key is in at most one place, the one its hash bits lead to;
//!   `datamap & nodemap == 0`; `len` counts the keys.
//! * Canonical shape: a non-root node holds at least two keys in its
//!   subtree, and never exactly one entry and no child (such a node is
//!   inlined into its parent). Past the last hash bits (`shift >= 64`) a
//!   node is a *collision node*: `nodemap == 0`, `datamap` is its entry
//!   count (at least two), entries unordered, all with one full hash.
//! * Ownership, immutability and reclamation: the store's (`store/mod.rs`).

mod layout;
#[cfg(test)]
mod tests;
mod write;

use layout::{bit_for, index_of, is_collision, slot, BITS};
use write::{insert_in, remove_in};

use super::copy::make_mut;
use super::node::Node;
#[cfg(test)]
use super::node::Version;
use super::reclaim::Txn;
use super::share::{Share, ShareToken};
use crate::hash::KeyHasher;
use std::hash::Hash;

/// A persistent map from `K` to `V` (see the module docs).
///
/// A `Trie` owns nothing by itself and has no destructor: `share` copies
/// the root pointer, and node lifetimes are managed by the writer's
/// transactions and reclaimer.
pub(crate) struct Trie<K, V> {
    root: Option<Node<K, V>>,
    len: usize,
    /// The keyed hash every key of this trie is placed by (the engine's
    /// seed; the same for every version of the trie).
    hasher: KeyHasher,
}

// SAFETY: a trie is a tree of nodes, immutable once published, holding `K`s
// and `V`s; sending or sharing it sends or shares references to those
// values, sound when they are `Send + Sync`. Mutation goes through
// `&mut Trie` plus a `Txn`, under the writer's rules (module docs).
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Trie<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Trie<K, V> {}

impl<K, V> Trie<K, V> {
    /// An empty map whose keys are placed by `hasher`.
    pub(crate) fn with_hasher(hasher: KeyHasher) -> Self {
        Trie {
            root: None,
            len: 0,
            hasher,
        }
    }

    /// An empty map with a fixed seed (store tests).
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_hasher(KeyHasher::seeded(0))
    }

    /// The hash this trie places keys by (tests of the engine's seed).
    #[cfg(test)]
    pub(crate) fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A copy sharing every node (store tests; elsewhere [`Share::share`]).
    #[cfg(test)]
    pub(in crate::store) fn share(&self) -> Self {
        Trie {
            root: self.root,
            len: self.len,
            hasher: self.hasher.clone(),
        }
    }

    /// Calls `f` on every entry, in hash order. Allocates nothing.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        fn walk<K, V>(node: &Node<K, V>, shift: u32, f: &mut impl FnMut(&K, &V)) {
            let (children, entries) = node.parts(is_collision(shift));
            entries.iter().for_each(|(k, v)| f(k, v));
            for child in children {
                walk(child, shift + BITS, f);
            }
        }
        if let Some(root) = &self.root {
            walk(root, 0, &mut f);
        }
    }
}

// SAFETY: a trie points to its nodes and, through its values, to theirs:
// `share` copies the root pointer once, `release` gives every node up once
// (a node has one parent) after releasing a copy of each value (`V`'s own
// contract), and leaves the trie empty; no key is hashed or compared.
unsafe impl<K: Copy + Send + Sync, V: Share + Send + Sync> Share for Trie<K, V> {
    /// A copy sharing every node: the base of a transaction, or the trie of
    /// a published graph.
    fn share(&self, _: &ShareToken) -> Self {
        Trie {
            root: self.root,
            len: self.len,
            hasher: self.hasher.clone(),
        }
    }

    /// Gives up every node and releases every value: the whole trie leaves
    /// the version (the latest roots, when the last version goes).
    fn release(&mut self, txn: &mut Txn<'_>) {
        fn release_tree<K: Copy + Send + Sync, V: Share + Send + Sync>(
            node: Node<K, V>,
            shift: u32,
            txn: &mut Txn<'_>,
        ) {
            let collision = is_collision(shift);
            let (children, entries) = node.parts(collision);
            for (_, value) in entries {
                // The node is given up below, so its values leave with it:
                // release what each points to through a copy (the node
                // itself may still be read by older versions).
                value.share(&ShareToken(())).release(txn);
            }
            for &child in children {
                release_tree(child, shift + BITS, txn);
            }
            // SAFETY: the whole trie leaves the version (`release` empties
            // `self`), each node has one parent ("Ownership"), so it is
            // visited and given up once; its children were given up above,
            // but only its own allocation is read here.
            unsafe { txn.discard(node, collision) };
        }
        if let Some(root) = self.root.take() {
            release_tree(root, 0, txn);
        }
        self.len = 0;
    }
}

impl<K: Copy + Eq + Hash, V> Trie<K, V> {
    /// The value of `key`, if present. Never allocates or writes.
    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        // Each level of a lookup counts bits (`count_ones`) on the path to
        // the next load. Baseline x86-64 has no POPCNT instruction, and the
        // portable bit-twiddling version made a 1k-key lookup ~40% slower
        // (measured: 20.7 vs 13.7 ns per fan-out visit), so when the build
        // does not already assume POPCNT, use a copy compiled with it if
        // the CPU has it (std caches the detection: one load and a branch).
        #[cfg(all(target_arch = "x86_64", not(target_feature = "popcnt")))]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports POPCNT, detected just above; that is
            // the only requirement of a `target_feature` function.
            return unsafe { self.get_popcnt(key) };
        }
        self.get_portable(key)
    }

    /// [`get`](Self::get), compiled with POPCNT.
    ///
    /// # Safety
    ///
    /// The CPU supports POPCNT.
    #[cfg(all(target_arch = "x86_64", not(target_feature = "popcnt")))]
    #[target_feature(enable = "popcnt")]
    unsafe fn get_popcnt(&self, key: &K) -> Option<&V> {
        self.get_portable(key)
    }

    /// The lookup itself, inlined into each `get` variant.
    #[inline(always)]
    fn get_portable(&self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash(key);
        let mut node = self.root.as_ref()?;
        let mut shift = 0;
        loop {
            if is_collision(shift) {
                let (_, entries) = node.parts(true);
                return entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            }
            let h = node.header();
            if h.nodemap == u32::MAX {
                // A full inner node: the child is at the slot's own index.
                // A branch, not a data dependency: where it is predicted
                // (the top levels of a big trie are full), the child's load
                // need not wait for the header's.
                // SAFETY: a full node has 32 children; a slot is below 32.
                node = unsafe { node.child(slot(hash, shift)) };
                shift += BITS;
                continue;
            }
            let bit = bit_for(hash, shift);
            if h.datamap & bit != 0 {
                let children = h.nodemap.count_ones() as usize;
                // SAFETY: below the collision depth a node is not counted
                // (the trie's invariants); it has `children` children, and
                // `bit` is set in `datamap`, so the index is below its
                // entry count.
                let (k, v) = unsafe { node.entry(children, index_of(h.datamap, bit)) };
                return (k == key).then_some(v);
            }
            if h.nodemap & bit == 0 {
                return None;
            }
            // SAFETY: `bit` is set in `nodemap`, so the index is below the
            // child count.
            node = unsafe { node.child(index_of(h.nodemap, bit)) };
            shift += BITS;
        }
    }

    /// Whether `key` is present.
    #[inline]
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Every key, ascending.
    pub(crate) fn sorted_keys(&self) -> Vec<K>
    where
        K: Ord,
    {
        let mut keys = Vec::with_capacity(self.len);
        self.for_each(|k, _| keys.push(*k));
        keys.sort_unstable();
        keys
    }

    /// Checks the structural invariants; returns a description of the first
    /// violation. O(n); for tests and `Snapshot::validate`.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut count = 0;
        if let Some(root) = &self.root {
            check_node(&self.hasher, root, 0, 0, true, &mut count)?;
        }
        if count != self.len {
            return Err(format!(
                "trie len {} but {} keys reachable",
                self.len, count
            ));
        }
        Ok(())
    }
}

impl<K, V> Trie<K, V>
where
    K: Copy + Eq + Hash + Send + Sync,
    V: Share + Send + Sync,
{
    /// A mutable reference to the value of `key`, copying the path to where
    /// `key` is, or would be, unless this transaction already did: one walk,
    /// for a caller that writes `key` either way (it knows `key` is
    /// present, or inserts it if this returns `None`). An absent key leaves
    /// the path copied all the same: unchanged copies, which an insert then
    /// writes in place, and which make the transaction publish.
    pub(crate) fn path_mut(&mut self, key: &K, txn: &mut Txn<'_>) -> Option<&mut V> {
        let hash = self.hasher.hash(key);
        let mut node = self.root.as_mut()?;
        let mut shift = 0;
        loop {
            let collision = is_collision(shift);
            let h = node.header();
            let (datamap, nodemap) = (h.datamap, h.nodemap);
            let (children, entries) = make_mut(node, collision, txn);
            if collision {
                return entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v);
            }
            let bit = bit_for(hash, shift);
            if datamap & bit != 0 {
                let (k, v) = &mut entries[index_of(datamap, bit)];
                return (k == key).then_some(v);
            }
            if nodemap & bit == 0 {
                return None;
            }
            node = &mut children[index_of(nodemap, bit)];
            shift += BITS;
        }
    }

    /// Inserts `key -> value`, returning the previous value, released
    /// ([`Share::release`]: it points to no node any more).
    pub(crate) fn insert(&mut self, key: K, value: V, txn: &mut Txn<'_>) -> Option<V> {
        let hash = self.hasher.hash(&key);
        let old = match &mut self.root {
            Some(root) => insert_in(&self.hasher, root, hash, 0, key, value, txn),
            None => {
                txn.touched = true;
                let root = Node::alloc(
                    bit_for(hash, 0),
                    0,
                    txn.born(),
                    false,
                    std::iter::empty(),
                    std::iter::once((key, value)),
                );
                self.root = Some(root);
                None
            }
        };
        match old {
            None => self.len += 1,
            Some(mut old) => {
                old.release(txn);
                return Some(old);
            }
        }
        None
    }

    /// Removes `key`, returning its value, released ([`Share::release`]:
    /// it points to no node any more, so a set comes back empty; see
    /// [`remove_with`](Self::remove_with) to read it first). Copies nothing
    /// if `key` is absent.
    pub(crate) fn remove(&mut self, key: &K, txn: &mut Txn<'_>) -> Option<V> {
        let mut old = self.unlink(key, txn)?;
        old.release(txn);
        Some(old)
    }

    /// Removes `key` and passes its value to `read` (with the transaction,
    /// to change the rest of the version) before releasing it: the value
    /// shares nodes that this write gives up, so it can be read only here.
    /// `None` (and no copy, and no call) if `key` is absent.
    pub(crate) fn remove_with<R>(
        &mut self,
        key: &K,
        txn: &mut Txn<'_>,
        read: impl FnOnce(&V, &mut Txn<'_>) -> R,
    ) -> Option<R> {
        let mut old = self.unlink(key, txn)?;
        let out = read(&old, txn);
        old.release(txn);
        Some(out)
    }

    /// Removes `key`, returning its value unreleased (it still shares
    /// nodes, which the caller must release in this transaction).
    fn unlink(&mut self, key: &K, txn: &mut Txn<'_>) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let root = self.root.as_mut()?;
        let old = remove_in(root, self.hasher.hash(key), 0, key, txn);
        debug_assert!(old.is_some());
        self.len -= 1;
        if self.len == 0 {
            if let Some(root) = self.root.take() {
                // SAFETY: the root, just taken out of the trie (its only
                // link), given up once.
                unsafe { txn.discard(root, false) };
            }
        }
        old
    }
}

fn check_node<K: Copy + Eq + Hash, V>(
    hasher: &KeyHasher,
    node: &Node<K, V>,
    prefix: u64,
    shift: u32,
    is_root: bool,
    count: &mut usize,
) -> Result<(), String> {
    let h = node.header();
    let collision = is_collision(shift);
    let (children, entries) = node.parts(collision);
    if collision {
        if h.nodemap != 0 || entries.len() < 2 {
            return Err("collision node with children or fewer than two entries".into());
        }
        let h0 = hasher.hash(&entries[0].0);
        if entries.iter().any(|(k, _)| hasher.hash(k) != h0) || h0 != prefix {
            return Err("collision node with differing hashes".into());
        }
        *count += entries.len();
        return Ok(());
    }
    if h.datamap & h.nodemap != 0 {
        return Err("slot both inline and a child".into());
    }
    if !is_root && children.is_empty() && entries.len() < 2 {
        return Err("non-root node holding fewer than two keys".into());
    }
    let prefix_mask = if shift + BITS >= 64 {
        u64::MAX
    } else {
        (1u64 << (shift + BITS)) - 1
    };
    let mut bits = h.datamap;
    for (k, _) in entries {
        let chunk = u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        let here = prefix | (chunk << shift);
        if hasher.hash(k) & prefix_mask != here & prefix_mask {
            return Err("key stored under the wrong hash prefix".into());
        }
        *count += 1;
    }
    let mut bits = h.nodemap;
    for child in children {
        let chunk = u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        if child.header().born() > h.born() {
            // A child newer than its parent: the parent was written after
            // it was published.
            return Err("child node newer than its parent".into());
        }
        check_node(
            hasher,
            child,
            prefix | (chunk << shift),
            shift + BITS,
            false,
            count,
        )?;
    }
    Ok(())
}

//! A persistent ordered set (a B+tree) whose nodes carry no reference
//! counts, built on the trie's node layer and reclaimed by the same rule.
//!
//! `OrdTree<K>` holds the big subscriber sets that live as values inside the
//! engine's tries. The writer changes a shallow copy inside a [`Txn`],
//! copying the `O(log n)` nodes on the path to the touched key; readers
//! search and iterate without allocating or writing anything. It knows
//! nothing of threads, connections or listeners.
//!
//! # Why
//!
//! The sets were `imbl::OrdSet`s, whose path copies bump dozens of `Arc`
//! counters: a subscribe+unsubscribe pair into a 100k-member set cost about
//! 6x one into a 10-member set. Here a path copy is a plain memcpy of each
//! node, and a replaced node is retired or freed like a trie node.
//!
//! # Encoding
//!
//! Every node is a [`Node<K, ()>`](super::node::Node) in *collision mode*
//! (`collision = true` everywhere), so `datamap` is the entry count and the
//! children are the low `nodemap.count_ones()` slots:
//!
//! * a **leaf** has `nodemap == 0` and `datamap == n` entries, its keys;
//! * an **inner** node with `c` children has `nodemap` = the low `c` bits
//!   and `datamap == c` entries: entry `i` is the smallest key below child
//!   `i`.
//!
//! # Invariants
//!
//! * Keys ascend strictly across the leaves, left to right; `len` counts
//!   them. Entry `i` of an inner node is the minimum of child `i`.
//! * Every leaf is at depth `height - 1`; the empty set has no root and
//!   height 0.
//! * Sizes: a leaf holds `LEAF_MIN..=LEAF_MAX` keys, an inner node
//!   `INNER_MIN..=INNER_MAX` children, except the root: a root leaf holds at
//!   least one key, a root inner node at least two children.
//! * **Ownership** and **Immutability** as in the trie (parent module): a
//!   node is owned by the latest tree or by the retired list, never written
//!   once published, and a child is never newer than its parent.
//!
//! # Reclamation rule
//!
//! The trie's: a replaced node goes to [`Txn::discard`], which frees it when
//! the transaction commits if this transaction made it and otherwise
//! retires it with its `[born, died)` interval for `Reclaimer::collect`.
//! The path-copying writes live in `write.rs`; readers never run them. The
//! sizes above and the node accessors every part uses are `layout.rs`'s.

mod layout;
mod write;

use super::copy::replace;
use super::reclaim::Txn;
use layout::{is_leaf, keys, min_key, OrdNode, INNER_FILL, LEAF_FILL, MAX_HEIGHT};
use std::fmt;
use write::{build, even_chunks, insert_in, remove_in, Grown};

/// A persistent set of `K`, ascending (see the module docs).
///
/// Like [`Trie`](super::Trie), it owns nothing by itself and has no
/// destructor: `share` copies the root pointer, and node lifetimes are
/// managed by the writer's transactions and reclaimer.
pub(crate) struct OrdTree<K> {
    root: Option<OrdNode<K>>,
    len: usize,
    height: u8,
}

// SAFETY: a tree is a set of nodes, immutable once published, holding `K`s;
// sending or sharing it sends or shares references to them, sound when `K`
// is `Send + Sync`. Mutation goes through `&mut OrdTree` plus a `Txn`, under
// the writer's rules (module docs).
unsafe impl<K: Send + Sync> Send for OrdTree<K> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync> Sync for OrdTree<K> {}

impl<K> fmt::Debug for OrdTree<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrdTree")
            .field("len", &self.len)
            .field("height", &self.height)
            .finish()
    }
}

impl<K> OrdTree<K> {
    /// An empty set.
    pub(crate) const fn new() -> Self {
        OrdTree {
            root: None,
            len: 0,
            height: 0,
        }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy sharing every node: the base of a transaction, or the set of
    /// a published graph. Store-only: outside it, sets are shared through
    /// [`Share`](super::Share), which only the store can call.
    pub(in crate::store) fn share(&self) -> Self {
        OrdTree {
            root: self.root,
            len: self.len,
            height: self.height,
        }
    }
}

impl<K: Copy + Ord> OrdTree<K> {
    /// Whether `k` is present. Never allocates or writes.
    pub(crate) fn contains(&self, k: &K) -> bool {
        let Some(mut node) = self.root.as_ref() else {
            return false;
        };
        while !is_leaf(node) {
            let (children, mins) = node.parts(true);
            match mins.partition_point(|e| e.0 <= *k) {
                0 => return false,
                i => node = &children[i - 1],
            }
        }
        keys(node).binary_search_by(|e| e.0.cmp(k)).is_ok()
    }

    /// The keys, ascending. Allocates nothing.
    pub(crate) fn iter(&self) -> OrdIter<'_, K> {
        OrdIter::new(self.root.as_ref(), self.len)
    }

    /// The smallest key: the root's first entry.
    #[cfg(test)]
    pub(crate) fn first(&self) -> Option<K> {
        self.root.as_ref().map(min_key)
    }
}

impl<K: Copy + Ord + Send + Sync> OrdTree<K> {
    /// Inserts `k`; false, and nothing written (`txn` untouched), if it is
    /// present.
    pub(crate) fn insert(&mut self, k: K, txn: &mut Txn<'_>) -> bool {
        let Some(root) = &mut self.root else {
            txn.touched = true;
            self.root = Some(build(
                true,
                1,
                txn.born(),
                [].into_iter(),
                [(k, ())].into_iter(),
            ));
            (self.len, self.height) = (1, 1);
            return true;
        };
        match insert_in(root, k, txn) {
            Grown::Present => return false,
            Grown::Fit => {}
            Grown::Split(right) => {
                let left = *root;
                let mins = [(min_key(&left), ()), (min_key(&right), ())];
                *root = build(
                    false,
                    2,
                    txn.born(),
                    [left, right].into_iter(),
                    mins.into_iter(),
                );
                self.height += 1;
                debug_assert!(usize::from(self.height) <= MAX_HEIGHT);
            }
        }
        self.len += 1;
        true
    }

    /// Removes `k`; false, and nothing written, if it is absent.
    pub(crate) fn remove(&mut self, k: &K, txn: &mut Txn<'_>) -> bool {
        let Some(root) = &mut self.root else {
            return false;
        };
        if !remove_in(root, k, txn) {
            return false;
        }
        self.len -= 1;
        if self.len == 0 {
            // SAFETY: the set is now empty: the root is unlinked just below
            // and given up once, here.
            unsafe { txn.discard(*root, true) };
            (self.root, self.height) = (None, 0);
            return true;
        }
        // A root left with one child hands the root role down to it.
        while !is_leaf(root) && root.header().datamap == 1 {
            let only = root.parts(true).0[0];
            replace(root, only, true, txn);
            self.height -= 1;
        }
        true
    }

    /// A set of `keys`, which must ascend strictly, built bottom-up with
    /// nodes three quarters full.
    ///
    /// # Panics
    ///
    /// If `keys` yields fewer keys than its `len()`.
    pub(crate) fn from_sorted(keys: impl ExactSizeIterator<Item = K>, txn: &mut Txn<'_>) -> Self {
        let len = keys.len();
        if len == 0 {
            return Self::new();
        }
        txn.touched = true;
        let version = txn.born();
        // No check that the keys ascend here: it would compare keys (host
        // code) inside `Node::alloc`, whose iterators must run none
        // (`check` verifies the order in tests).
        let mut keys = keys.map(|k| (k, ()));
        if len <= LEAF_FILL {
            // One leaf (a small set outgrowing its inline form): no list
            // of levels to allocate.
            let root = build(true, len, version, [].into_iter(), keys.by_ref());
            debug_assert!(keys.next().is_none(), "from_sorted: keys past len()");
            return OrdTree {
                root: Some(root),
                len,
                height: 1,
            };
        }
        let mut level: Vec<OrdNode<K>> = even_chunks(len, LEAF_FILL)
            .map(|n| build(true, n, version, [].into_iter(), keys.by_ref().take(n)))
            .collect();
        debug_assert!(keys.next().is_none(), "from_sorted: keys past len()");
        let mut height = 1;
        while level.len() > 1 {
            let mut rest = &level[..];
            let parents = even_chunks(level.len(), INNER_FILL)
                .map(|n| {
                    let (group, tail) = rest.split_at(n);
                    rest = tail;
                    let mins = group.iter().map(|c| (min_key(c), ()));
                    build(false, n, version, group.iter().copied(), mins)
                })
                .collect();
            level = parents;
            height += 1;
        }
        OrdTree {
            root: level.pop(),
            len,
            height,
        }
    }

    /// Gives every node to `txn.discard` (the set is leaving the graph) and
    /// leaves `self` empty.
    pub(crate) fn discard_all(&mut self, txn: &mut Txn<'_>) {
        fn discard_tree<K: Copy + Send + Sync>(node: OrdNode<K>, txn: &mut Txn<'_>) {
            for &child in node.parts(true).0 {
                discard_tree(child, txn);
            }
            // SAFETY: the whole tree leaves the version (`discard_all`
            // empties `self`), and each node has one parent, so it is
            // visited and given up once; its children were given up above,
            // but only its own allocation is read here.
            unsafe { txn.discard(node, true) };
        }
        if let Some(root) = self.root.take() {
            discard_tree(root, txn);
        }
        (self.len, self.height) = (0, 0);
    }
}

mod check;
mod iter;
#[cfg(test)]
mod tests;

pub(crate) use iter::OrdIter;

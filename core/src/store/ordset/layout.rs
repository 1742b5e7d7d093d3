//! The B+tree's node layout (module docs, "Encoding" and "Invariants"):
//! the size bounds, and the accessors every part of the tree reads nodes
//! with.

use crate::store::node::Node;

/// Most keys in a leaf.
pub(super) const LEAF_MAX: usize = 64;
/// Most children of an inner node (its `nodemap` is a `u32`).
pub(super) const INNER_MAX: usize = 32;
/// Fewest keys in a non-root leaf.
pub(super) const LEAF_MIN: usize = LEAF_MAX / 4;
/// Fewest children of a non-root inner node.
pub(super) const INNER_MIN: usize = INNER_MAX / 4;
/// Keys per leaf in a bulk build: room to grow before splitting.
pub(super) const LEAF_FILL: usize = LEAF_MAX * 3 / 4;
/// Children per inner node in a bulk build.
pub(super) const INNER_FILL: usize = INNER_MAX * 3 / 4;
/// Highest possible tree: one of height `h` holds at least
/// `2 * INNER_MIN^(h-2) * LEAF_MIN = 2^(3h-1)` keys, and `len` is a `usize`.
pub(super) const MAX_HEIGHT: usize = 22;

pub(super) type OrdNode<K> = Node<K, ()>;

#[inline]
pub(super) fn is_leaf<K>(node: &OrdNode<K>) -> bool {
    node.header().nodemap == 0
}

/// A node's entries: keys (leaf) or children's minimums (inner).
#[inline]
pub(super) fn keys<K>(node: &OrdNode<K>) -> &[(K, ())] {
    node.parts(true).1
}

/// The smallest key below a non-empty node.
#[inline]
pub(super) fn min_key<K: Copy>(node: &OrdNode<K>) -> K {
    keys(node)[0].0
}

#[inline]
pub(super) fn max_size(leaf: bool) -> usize {
    if leaf {
        LEAF_MAX
    } else {
        INNER_MAX
    }
}

#[inline]
pub(super) fn min_size(leaf: bool) -> usize {
    if leaf {
        LEAF_MIN
    } else {
        INNER_MIN
    }
}

/// The `nodemap` of an inner node with `n` children.
#[inline]
pub(super) fn low_mask(n: usize) -> u32 {
    debug_assert!(n <= INNER_MAX);
    ((1u64 << n) - 1) as u32
}

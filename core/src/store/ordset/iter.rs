//! [`OrdIter`]: the ascending iterator over an [`OrdTree`](super::OrdTree).

use super::layout::{is_leaf, keys, OrdNode, MAX_HEIGHT};
use std::iter::FusedIterator;

/// Ascending iterator over an [`OrdTree`](super::OrdTree); lives on the stack.
///
/// It keeps the child index taken at each inner level rather than the
/// nodes, and walks down from the root again to reach the next leaf (once
/// per 16-64 keys), which keeps it small enough to return by value.
pub(crate) struct OrdIter<'a, K> {
    root: Option<&'a OrdNode<K>>,
    /// Per inner level, root first: which child the walk is in.
    path: [u8; MAX_HEIGHT],
    /// Inner levels in `path`: the leaves' depth.
    depth: usize,
    /// The current leaf's keys, and the next one's index.
    leaf: &'a [(K, ())],
    pos: usize,
    /// Keys not yet returned.
    remaining: usize,
}

// SAFETY: an iterator only reads nodes that are immutable while reachable
// (module docs); sending or sharing it shares `&K`s, sound when `K: Sync`.
unsafe impl<K: Sync> Send for OrdIter<'_, K> {}
// SAFETY: as above; `&OrdIter` gives no access to the nodes at all.
unsafe impl<K: Sync> Sync for OrdIter<'_, K> {}

impl<'a, K> OrdIter<'a, K> {
    /// An iterator over the tree at `root` holding `len` keys.
    pub(super) fn new(root: Option<&'a OrdNode<K>>, len: usize) -> Self {
        let mut it = OrdIter {
            root,
            path: [0; MAX_HEIGHT],
            depth: 0,
            leaf: &[],
            pos: 0,
            remaining: len,
        };
        if let Some(root) = it.root {
            it.descend(root, 0);
        }
        it
    }

    /// Walks from `node`, at depth `depth`, down to its leftmost leaf.
    fn descend(&mut self, mut node: &'a OrdNode<K>, mut depth: usize) {
        while !is_leaf(node) {
            self.path[depth] = 0;
            depth += 1;
            node = &node.parts(true).0[0];
        }
        (self.depth, self.leaf, self.pos) = (depth, keys(node), 0);
    }

    /// Moves to the next leaf, if any: from the root along `path` to the
    /// deepest level with a next child, then down that child's leftmost
    /// path.
    fn next_leaf(&mut self) {
        let Some(mut node) = self.root else {
            return;
        };
        let mut turn = None;
        for d in 0..self.depth {
            let children = node.parts(true).0;
            let i = usize::from(self.path[d]);
            if i + 1 < children.len() {
                turn = Some((d, children));
            }
            node = &children[i];
        }
        if let Some((d, children)) = turn {
            let next = usize::from(self.path[d]) + 1;
            // At most INNER_MAX children: the index fits in a `u8`.
            self.path[d] = next as u8;
            self.descend(&children[next], d + 1);
        }
    }
}

impl<K: Copy> Iterator for OrdIter<'_, K> {
    type Item = K;

    #[inline]
    fn next(&mut self) -> Option<K> {
        if self.pos == self.leaf.len() {
            if self.remaining == 0 {
                return None;
            }
            self.next_leaf();
        }
        let &(k, ()) = self.leaf.get(self.pos)?;
        self.pos += 1;
        self.remaining -= 1;
        Some(k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K: Copy> ExactSizeIterator for OrdIter<'_, K> {}
impl<K: Copy> FusedIterator for OrdIter<'_, K> {}

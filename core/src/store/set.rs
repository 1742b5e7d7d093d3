//! A persistent sorted set sized for subscription lists.
//!
//! Most threads have a handful of subscribers and most connections follow a
//! handful of threads, so the set has two representations, picked by size:
//!
//! | variant  | length          | clone               | insert / remove           |
//! |----------|-----------------|---------------------|---------------------------|
//! | `Empty`  | 0               | free                | becomes `Inline`          |
//! | `Inline` | 1..=`INLINE`    | memcpy, no pointers | O(`INLINE`)               |
//! | `Tree`   | beyond          | one pointer copy    | O(log len) path copy      |
//!
//! (`INLINE` is a const parameter: 4 for a thread's subscribers, 8 for a
//! connection's threads, the typical sizes of each.) `Tree` is the trie
//! module's [`OrdTree`]: its nodes carry no reference counts and live by the
//! trie's reclamation rule, so cloning a trie node full of sets touches no
//! counter, and adding one member to a set of 100k members copies a few
//! nodes (one leaf and its parents), not the set.
//!
//! Because a `Tree`'s nodes are owned like trie nodes, a set leaving the
//! graph must give them up: the trie releases ([`Share::release`]) every
//! value it removes or replaces. A `Tree` read outside a pinned graph version must
//! pin one (see `Subscribers`).
//!
//! # Invariants
//!
//! * Members are distinct and iterate in ascending order.
//! * `Inline { len, items }`: `1 <= len <= INLINE`, `items[..len]` ascending;
//!   `items[len..]` repeats `items[0]` (filler, never read).
//! * `Tree`: more than `INLINE` members (canonical: a set is `Inline` iff
//!   it fits), and the tree's own invariants.

use super::ordset::{OrdIter, OrdTree};
use super::reclaim::Txn;
use super::share::{Share, ShareToken};

/// A thread's subscribers.
pub(crate) type SubscriberSet<C> = SortedSet<C, SUBSCRIBERS_INLINE>;
/// Most subscribers a thread's set holds inline.
pub(crate) const SUBSCRIBERS_INLINE: usize = 4;
/// The threads a connection follows.
pub(crate) type ThreadSet<T> = SortedSet<T, 8>;

pub(crate) enum SortedSet<K: Copy + Ord, const INLINE: usize> {
    Empty,
    Inline { len: u8, items: [K; INLINE] },
    Tree(OrdTree<K>),
}

// SAFETY: a set points to the nodes of its tree, if any: `share` copies the
// tree's root once (`OrdTree::share`), `release` gives every node of it up
// once (`discard_all`) and leaves the set empty; `K` is `Copy` (no host
// destructor), and comparing keys happens in neither.
unsafe impl<K: Copy + Ord + Send + Sync, const INLINE: usize> Share for SortedSet<K, INLINE> {
    /// Every variant's share copies its fields as they are (`K` is `Copy`,
    /// a tree's share copies its root, length and height).
    #[inline(always)]
    fn bit_copy() -> bool {
        true
    }

    /// A copy sharing a tree's nodes (which the copy does not own; see the
    /// module docs).
    fn share(&self, _: &ShareToken) -> Self {
        match self {
            SortedSet::Empty => SortedSet::Empty,
            SortedSet::Inline { len, items } => SortedSet::Inline {
                len: *len,
                items: *items,
            },
            SortedSet::Tree(tree) => SortedSet::Tree(tree.share()),
        }
    }

    /// Gives up this set's tree nodes, if any, and leaves it empty.
    fn release(&mut self, txn: &mut Txn<'_>) {
        if let SortedSet::Tree(tree) = self {
            tree.discard_all(txn);
        }
        *self = SortedSet::Empty;
    }
}

/// Ascending iterator over a [`SortedSet`]: the inline members as a plain
/// slice, or a tree's (`slice` then empty), so that iterating a small set
/// costs what iterating a slice costs.
pub(crate) struct Iter<'a, K> {
    slice: std::slice::Iter<'a, K>,
    tree: Option<OrdIter<'a, K>>,
}

impl<K: Copy + Ord> Iterator for Iter<'_, K> {
    type Item = K;

    #[inline]
    fn next(&mut self) -> Option<K> {
        match self.slice.next() {
            Some(&k) => Some(k),
            None => self.tree.as_mut()?.next(),
        }
    }

    #[inline]
    fn fold<B, F: FnMut(B, K) -> B>(self, init: B, mut f: F) -> B {
        let acc = self.slice.copied().fold(init, &mut f);
        match self.tree {
            Some(tree) => tree.fold(acc, f),
            None => acc,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.slice.len() + self.tree.as_ref().map_or(0, ExactSizeIterator::len);
        (n, Some(n))
    }
}

/// `items` with `k` inserted at `pos`, as an exact-size iterator (what
/// `OrdTree::from_sorted` takes).
struct Merged<'a, K> {
    items: &'a [K],
    k: K,
    pos: usize,
    /// Members yielded so far.
    at: usize,
}

impl<K: Copy> Iterator for Merged<'_, K> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        let at = self.at;
        self.at += 1;
        match at.cmp(&self.pos) {
            std::cmp::Ordering::Less => self.items.get(at).copied(),
            std::cmp::Ordering::Equal => Some(self.k),
            std::cmp::Ordering::Greater => self.items.get(at - 1).copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.items.len() + 1).saturating_sub(self.at);
        (left, Some(left))
    }
}

impl<K: Copy> ExactSizeIterator for Merged<'_, K> {}

impl<K: Copy + Ord, const INLINE: usize> SortedSet<K, INLINE> {
    /// A set holding only `k`.
    pub(crate) fn one(k: K) -> Self {
        SortedSet::Inline {
            len: 1,
            items: [k; INLINE],
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            SortedSet::Empty => 0,
            SortedSet::Inline { len, .. } => usize::from(*len),
            SortedSet::Tree(tree) => tree.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, SortedSet::Empty)
    }

    /// Whether this set's members live in tree nodes (which a reader
    /// outside the graph must pin).
    #[cfg(test)]
    pub(crate) fn is_tree(&self) -> bool {
        matches!(self, SortedSet::Tree(_))
    }

    /// The members as a slice, unless the set is a tree.
    #[inline]
    fn as_slice(&self) -> Option<&[K]> {
        match self {
            SortedSet::Empty => Some(&[]),
            SortedSet::Inline { len, items } => Some(&items[..usize::from(*len)]),
            SortedSet::Tree(_) => None,
        }
    }

    #[inline]
    pub(crate) fn contains(&self, k: &K) -> bool {
        match self {
            SortedSet::Tree(tree) => tree.contains(k),
            _ => self
                .as_slice()
                .is_some_and(|items| items.binary_search(k).is_ok()),
        }
    }

    #[inline]
    pub(crate) fn iter(&self) -> Iter<'_, K> {
        match self {
            SortedSet::Tree(tree) => Iter {
                slice: [].iter(),
                tree: Some(tree.iter()),
            },
            _ => Iter {
                slice: self.as_slice().unwrap_or(&[]).iter(),
                tree: None,
            },
        }
    }

    /// An inline set of the (at most `INLINE`) members `items` yields.
    fn inline(mut items: impl Iterator<Item = K>) -> Self {
        let Some(first) = items.next() else {
            return SortedSet::Empty;
        };
        let mut out = [first; INLINE];
        let mut len = 1;
        for (slot, v) in out[1..].iter_mut().zip(items) {
            *slot = v;
            len += 1;
        }
        SortedSet::Inline {
            len: len as u8,
            items: out,
        }
    }
}

impl<K: Copy + Ord + Send + Sync, const INLINE: usize> SortedSet<K, INLINE> {
    /// Adds `k`; returns whether it was new. A tree is path-copied inside
    /// `txn`.
    pub(crate) fn insert(&mut self, k: K, txn: &mut Txn<'_>) -> bool {
        let next = match self {
            SortedSet::Tree(tree) => return tree.insert(k, txn),
            _ => {
                let items = self.as_slice().unwrap_or(&[]);
                let Err(pos) = items.binary_search(&k) else {
                    return false;
                };
                let merged = Merged {
                    items,
                    k,
                    pos,
                    at: 0,
                };
                if items.len() < INLINE {
                    Self::inline(merged)
                } else {
                    SortedSet::Tree(OrdTree::from_sorted(merged, txn))
                }
            }
        };
        *self = next;
        true
    }

    /// Removes `k`; returns whether it was present. A tree that shrinks to
    /// `INLINE` members becomes inline and gives its nodes to `txn`.
    pub(crate) fn remove(&mut self, k: &K, txn: &mut Txn<'_>) -> bool {
        let next = match self {
            SortedSet::Tree(tree) if tree.len() > INLINE + 1 => return tree.remove(k, txn),
            SortedSet::Tree(tree) => {
                // Becomes inline: the other members are read out of the
                // tree as it is, not out of a copy without `k`.
                if !tree.contains(k) {
                    return false;
                }
                let small = Self::inline(tree.iter().filter(|m| m != k));
                tree.discard_all(txn);
                small
            }
            _ => {
                let items = self.as_slice().unwrap_or(&[]);
                let Ok(pos) = items.binary_search(k) else {
                    return false;
                };
                Self::inline(items[..pos].iter().chain(&items[pos + 1..]).copied())
            }
        };
        *self = next;
        true
    }
}

impl<K: Copy + Ord, const INLINE: usize> SortedSet<K, INLINE> {
    /// Checks this module's invariants.
    pub(crate) fn check(&self) -> Result<(), String> {
        let ok = match self {
            SortedSet::Empty => true,
            SortedSet::Inline { len, items } => {
                let len = usize::from(*len);
                (1..=INLINE).contains(&len) && items[len..].iter().all(|k| *k == items[0])
            }
            SortedSet::Tree(tree) => {
                tree.check()?;
                tree.len() > INLINE
            }
        };
        if !ok {
            return Err(format!(
                "set of {} members in the wrong representation",
                self.len()
            ));
        }
        let mut prev = None;
        for k in self.iter() {
            if prev.is_some_and(|p| p >= k) {
                return Err("set members not strictly ascending".into());
            }
            prev = Some(k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Keeps no structure: each test holds its set, writes it in
    /// `w.write(|_, txn| ..)` (one version per call) and reads no old
    /// version after `w.collect(&[])`.
    type Writer = crate::store::testing::TestWriter<()>;

    #[test]
    fn smoke() {
        let mut w = Writer::new();
        let mut s = SortedSet::<u64, 4>::one(5u64);
        assert!(w.write(|_, x| s.insert(3, x)));
        assert!(!w.write(|_, x| s.insert(5, x)));
        assert_eq!(s.iter().collect::<Vec<_>>(), [3, 5]);
        assert!(w.write(|_, x| s.remove(&3, x)));
        assert!(!w.write(|_, x| s.remove(&3, x)));
        assert!(w.write(|_, x| s.remove(&5, x)));
        assert!(s.is_empty());
        s.check().unwrap();
    }

    #[test]
    fn matches_a_btreeset_through_every_representation() {
        let mut w = Writer::new();
        let mut s = SortedSet::<u64, 4>::Empty;
        let mut model = BTreeSet::new();
        let mut x = 99u64;
        for round in 0..4 {
            // Grow to a multi-level tree, then shrink to nothing.
            for _ in 0..crate::store::testing::scaled(1500) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (x >> 33) % 2000;
                let grow = round % 2 == 0 || x % 4 == 0;
                // An old copy must not change when the new one does.
                let before = s.share(&ShareToken(()));
                let old: Vec<u64> = before.iter().collect();
                if grow {
                    assert_eq!(w.write(|_, x| s.insert(k, x)), model.insert(k));
                } else {
                    assert_eq!(w.write(|_, x| s.remove(&k, x)), model.remove(&k));
                }
                assert!(before.iter().eq(old.iter().copied()));
                s.check().unwrap();
                assert_eq!(s.len(), model.len());
                w.collect(&[]);
            }
            assert!(s.iter().eq(model.iter().copied()));
            for k in 0..2000 {
                assert_eq!(s.contains(&k), model.contains(&k));
            }
        }
        for k in model.clone() {
            assert!(w.write(|_, x| s.remove(&k, x)));
            s.check().unwrap();
        }
        assert!(s.is_empty());
        w.collect(&[]);
        assert_eq!(w.reclaimer.pending(), 0);
    }

    /// At the inline threshold: a tree of `INLINE + 1` members loses an
    /// absent key without changing, and each present one (first, middle,
    /// last) by becoming inline with the rest, while a shared old copy
    /// keeps all of them.
    #[test]
    fn a_tree_one_past_inline_shrinks_only_by_a_member() {
        let mut w = Writer::new();
        let members = [10u64, 20, 30, 40, 50];
        for gone in [5, 10, 30, 50, 55] {
            let mut s = SortedSet::<u64, 4>::Empty;
            for k in members {
                w.write(|_, x| s.insert(k, x));
            }
            assert!(matches!(s, SortedSet::Tree(_)));
            let before = s.share(&ShareToken(()));
            let present = members.contains(&gone);
            assert_eq!(w.write(|_, x| s.remove(&gone, x)), present, "remove {gone}");
            s.check().unwrap();
            let rest: Vec<u64> = members.iter().copied().filter(|&k| k != gone).collect();
            assert!(s.iter().eq(rest.iter().copied()), "after removing {gone}");
            assert_eq!(matches!(s, SortedSet::Inline { .. }), present);
            assert!(before.iter().eq(members.iter().copied()));
            assert!(w.write(|_, x| s.insert(gone, x)));
            let mut all = rest;
            all.push(gone);
            all.sort();
            assert!(s.iter().eq(all), "after putting {gone} back");
            s.check().unwrap();
            w.write(|_, x| s.release(x));
            w.collect(&[]);
        }
        assert_eq!(w.reclaimer.pending(), 0);
    }

    #[test]
    fn released_trees_are_freed() {
        let mut w = Writer::new();
        let mut s = SortedSet::<u64, 4>::Empty;
        for k in 0..500 {
            w.write(|_, x| s.insert(k, x));
        }
        assert!(s.is_tree());
        w.write(|_, x| s.release(x));
        assert!(s.is_empty());
        w.collect(&[]);
        // Nothing pending, and valgrind (CI) sees no leak.
        assert_eq!(w.reclaimer.pending(), 0);
    }
}

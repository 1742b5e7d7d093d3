//! A persistent sorted set sized for subscription lists.
//!
//! Most threads have a handful of subscribers and most connections follow a
//! handful of threads, so the set has three representations, picked by size:
//!
//! | variant  | length            | clone               | insert / remove        |
//! |----------|-------------------|---------------------|------------------------|
//! | `Empty`  | 0                 | free                | becomes `Inline`       |
//! | `Inline` | 1..=`INLINE`      | memcpy, no pointers | O(`INLINE`)            |
//!
//! (`INLINE` is a const parameter: 4 for a thread's subscribers, 8 for a
//! connection's threads, the typical sizes of each.)
//! | `Shared` | up to `SHARED_MAX`| one refcount bump   | O(len) copy, len ≤ 64  |
//! | `Tree`   | beyond            | one refcount bump   | O(log len) path copy   |
//!
//! so cloning a trie node full of sets never allocates, and adding one
//! member to a set of 100k members copies a few B-tree nodes, not the set.
//!
//! # Invariants
//!
//! * Members are distinct and iterate in ascending order.
//! * `Inline { len, items }`: `1 <= len <= INLINE`, `items[..len]` ascending;
//!   `items[len..]` repeats `items[0]` (filler, never read).
//! * `Shared`: `INLINE < len <= SHARED_MAX`, ascending.
//! * `Tree`: `len > SHRINK_AT` (hysteresis: it grew past `SHARED_MAX`, and
//!   turns back into `Shared` only at `SHRINK_AT`, so a set hovering at the
//!   boundary does not convert on every operation).

use crate::sync::NodeArc;

/// A thread's subscribers.
pub(crate) type SubscriberSet<C> = SortedSet<C, 4>;
/// The threads a connection follows.
pub(crate) type ThreadSet<T> = SortedSet<T, 8>;

const SHARED_MAX: usize = 64;
const SHRINK_AT: usize = SHARED_MAX / 2;

#[derive(Clone)]
pub(crate) enum SortedSet<K: Copy + Ord, const INLINE: usize> {
    Empty,
    Inline { len: u8, items: [K; INLINE] },
    Shared(NodeArc<[K]>),
    Tree(imbl::OrdSet<K>),
}

/// Ascending iterator over a [`SortedSet`].
pub(crate) enum Iter<'a, K> {
    Slice(std::slice::Iter<'a, K>),
    Tree(imbl::ordset::Iter<'a, K, imbl::shared_ptr::DefaultSharedPtr>),
}

impl<K: Copy + Ord> Iterator for Iter<'_, K> {
    type Item = K;

    #[inline]
    fn next(&mut self) -> Option<K> {
        match self {
            Iter::Slice(it) => it.next().copied(),
            Iter::Tree(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Slice(it) => it.size_hint(),
            Iter::Tree(it) => it.size_hint(),
        }
    }
}

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
            SortedSet::Shared(items) => items.len(),
            SortedSet::Tree(tree) => tree.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, SortedSet::Empty)
    }

    /// The members as a slice, unless the set is a tree.
    #[inline]
    fn as_slice(&self) -> Option<&[K]> {
        match self {
            SortedSet::Empty => Some(&[]),
            SortedSet::Inline { len, items } => Some(&items[..usize::from(*len)]),
            SortedSet::Shared(items) => Some(items),
            SortedSet::Tree(_) => None,
        }
    }

    #[inline]
    pub(crate) fn contains(&self, k: &K) -> bool {
        match (self.as_slice(), self) {
            (Some(items), _) => items.binary_search(k).is_ok(),
            (None, SortedSet::Tree(tree)) => tree.contains(k),
            (None, _) => unreachable!("only trees have no slice"),
        }
    }

    #[inline]
    pub(crate) fn iter(&self) -> Iter<'_, K> {
        match (self.as_slice(), self) {
            (Some(items), _) => Iter::Slice(items.iter()),
            (None, SortedSet::Tree(tree)) => Iter::Tree(tree.iter()),
            (None, _) => unreachable!("only trees have no slice"),
        }
    }

    /// Adds `k`; returns whether it was new.
    pub(crate) fn insert(&mut self, k: K) -> bool {
        let next = match self {
            SortedSet::Tree(tree) => return tree.insert(k).is_none(),
            _ => {
                let items = self.as_slice().expect("not a tree");
                let Err(pos) = items.binary_search(&k) else {
                    return false;
                };
                let len = items.len() + 1;
                let merged = items[..pos]
                    .iter()
                    .copied()
                    .chain(std::iter::once(k))
                    .chain(items[pos..].iter().copied());
                if len <= INLINE {
                    let mut out = [k; INLINE];
                    for (slot, v) in out.iter_mut().zip(merged) {
                        *slot = v;
                    }
                    let first = out[0];
                    out[len..].fill(first);
                    SortedSet::Inline {
                        len: len as u8,
                        items: out,
                    }
                } else if len <= SHARED_MAX {
                    SortedSet::Shared(merged.collect())
                } else {
                    SortedSet::Tree(merged.collect())
                }
            }
        };
        *self = next;
        true
    }

    /// Removes `k`; returns whether it was present.
    pub(crate) fn remove(&mut self, k: &K) -> bool {
        let next = match self {
            SortedSet::Tree(tree) => {
                if tree.remove(k).is_none() {
                    return false;
                }
                if tree.len() > SHRINK_AT {
                    return true;
                }
                SortedSet::Shared(tree.iter().copied().collect())
            }
            _ => {
                let items = self.as_slice().expect("not a tree");
                let Ok(pos) = items.binary_search(k) else {
                    return false;
                };
                Self::from_sorted_slice_without(items, pos)
            }
        };
        *self = next;
        true
    }

    fn from_sorted_slice_without(items: &[K], pos: usize) -> Self {
        let len = items.len() - 1;
        let rest = items[..pos].iter().chain(&items[pos + 1..]).copied();
        match len {
            0 => SortedSet::Empty,
            _ if len <= INLINE => {
                let mut out = [items[usize::from(pos == 0)]; INLINE];
                for (slot, v) in out.iter_mut().zip(rest) {
                    *slot = v;
                }
                let first = out[0];
                out[len..].fill(first);
                SortedSet::Inline {
                    len: len as u8,
                    items: out,
                }
            }
            _ => SortedSet::Shared(rest.collect()),
        }
    }

    /// Checks this module's invariants.
    pub(crate) fn check(&self) -> Result<(), String> {
        let ok = match self {
            SortedSet::Empty => true,
            SortedSet::Inline { len, items } => {
                let len = usize::from(*len);
                (1..=INLINE).contains(&len) && items[len..].iter().all(|k| *k == items[0])
            }
            SortedSet::Shared(items) => (INLINE + 1..=SHARED_MAX).contains(&items.len()),
            SortedSet::Tree(tree) => tree.len() > SHRINK_AT,
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

    #[test]
    fn smoke() {
        let mut s = SortedSet::<u64, 4>::one(5u64);
        assert!(s.insert(3));
        assert!(!s.insert(5));
        assert_eq!(s.iter().collect::<Vec<_>>(), [3, 5]);
        assert!(s.remove(&3));
        assert!(!s.remove(&3));
        assert!(s.remove(&5));
        assert!(s.is_empty());
        s.check().unwrap();
    }

    #[test]
    fn matches_a_btreeset_through_every_representation() {
        let mut s = SortedSet::<u64, 4>::Empty;
        let mut model = BTreeSet::new();
        let mut x = 99u64;
        for round in 0..4 {
            // Grow well past SHARED_MAX, then shrink to nothing.
            for _ in 0..400 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (x >> 33) % 300;
                let grow = round % 2 == 0 || x % 4 == 0;
                if grow {
                    assert_eq!(s.insert(k), model.insert(k));
                } else {
                    assert_eq!(s.remove(&k), model.remove(&k));
                }
                s.check().unwrap();
                assert_eq!(s.len(), model.len());
            }
            assert!(s.iter().eq(model.iter().copied()));
            for k in 0..300 {
                assert_eq!(s.contains(&k), model.contains(&k));
            }
        }
        for k in model.clone() {
            assert!(s.remove(&k));
            s.check().unwrap();
        }
        assert!(s.is_empty());
    }
}

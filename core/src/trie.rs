//! A persistent hash array mapped trie: the map the snapshot graph is built from.
//!
//! `Trie<K, V>` is an immutable-once-shared map with a small, map-like API.
//! Cloning it is O(1) (one reference-count bump on the root); a write on a
//! clone copies only the path from the root to the touched key
//! (`O(log32 n)` nodes), sharing every other node with the clone it came from.
//! It knows nothing of threads, connections or listeners.
//!
//! # Layout
//!
//! A node is a bitmap of which of its 32 slots are present plus a packed,
//! reference-counted array of the present slots. The hash is consumed five
//! bits per level from the low end. A slot is
//!
//! | slot        | holds                                     | when                                  |
//! |-------------|-------------------------------------------|---------------------------------------|
//! | `Leaf`      | one key and its value, inline              | the only key whose hash reaches here  |
//! | `Branch`    | a child node (bitmap + slot array)         | two or more keys share the prefix     |
//! | `Collision` | keys whose 64-bit hashes are all equal     | past the last level (never for u64 ids) |
//!
//! # Invariants
//!
//! * A key is in at most one slot, the one its hash bits lead to.
//! * `bitmap.count_ones() == slots.len()` for every node.
//! * Canonical shape: a `Branch` never holds exactly one `Leaf` and nothing
//!   else (it is collapsed into its parent), and never holds zero slots; a
//!   `Collision` holds at least two entries and sits at the last level. So
//!   equal maps have equal shapes.
//! * `len` is the number of keys.
//! * Nodes are never mutated while shared: writes go through
//!   `NodeArc::make_mut`, which copies a node unless this trie holds its only
//!   reference (as it does for nodes it created earlier in the same batch).
//!
//! # Reclamation
//!
//! Nodes are reference counted; a node is freed when the last trie that
//! reaches it is dropped. The engine keeps replaced roots until no reader can
//! hold them and drops them on the writer's side (see `engine.rs`), so
//! readers never run these destructors.

use crate::hash::hash_of;
use crate::sync::NodeArc;
use std::hash::Hash;

const BITS: u32 = 5;
const MASK: u64 = (1 << BITS) - 1;
/// Past this shift the hash has no fresh bits left: equal hashes collide.
const MAX_SHIFT: u32 = 64 - BITS;

/// A persistent map from `K` to `V` (see the module docs).
pub(crate) struct Trie<K, V> {
    root: Node<K, V>,
    len: usize,
}

struct Node<K, V> {
    bitmap: u32,
    /// `None` only for the empty root (and transient placeholders).
    slots: Option<NodeArc<[Slot<K, V>]>>,
}

enum Slot<K, V> {
    Leaf(K, V),
    Branch(Node<K, V>),
    Collision(NodeArc<[(K, V)]>),
}

impl<K, V> Clone for Node<K, V> {
    fn clone(&self) -> Self {
        Node {
            bitmap: self.bitmap,
            slots: self.slots.clone(),
        }
    }
}

impl<K: Copy, V: Clone> Clone for Slot<K, V> {
    fn clone(&self) -> Self {
        match self {
            Slot::Leaf(k, v) => Slot::Leaf(*k, v.clone()),
            Slot::Branch(n) => Slot::Branch(n.clone()),
            Slot::Collision(items) => Slot::Collision(items.clone()),
        }
    }
}

impl<K, V> Clone for Trie<K, V> {
    fn clone(&self) -> Self {
        Trie {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<K, V> Default for Trie<K, V> {
    fn default() -> Self {
        Trie {
            root: Node::EMPTY,
            len: 0,
        }
    }
}

impl<K, V> Node<K, V> {
    const EMPTY: Node<K, V> = Node {
        bitmap: 0,
        slots: None,
    };

    #[inline]
    fn slots(&self) -> &[Slot<K, V>] {
        self.slots.as_deref().unwrap_or(&[])
    }
}

#[inline]
fn bit_for(hash: u64, shift: u32) -> u32 {
    1 << ((hash >> shift) & MASK)
}

#[inline]
fn index_of(bitmap: u32, bit: u32) -> usize {
    (bitmap & (bit - 1)).count_ones() as usize
}

impl<K: Copy + Eq + Hash, V: Clone> Trie<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The value of `key`, if present. Never allocates or writes.
    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let hash = hash_of(key);
        let mut node = &self.root;
        let mut shift = 0;
        loop {
            let bit = bit_for(hash, shift);
            if node.bitmap & bit == 0 {
                return None;
            }
            match &node.slots()[index_of(node.bitmap, bit)] {
                Slot::Leaf(k, v) => return (k == key).then_some(v),
                Slot::Branch(child) => {
                    node = child;
                    shift += BITS;
                }
                Slot::Collision(items) => {
                    return items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
                }
            }
        }
    }

    /// Whether `key` is present.
    #[inline]
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// A mutable reference to the value of `key`, copying the path to it if
    /// it is shared. `None` (and no copy) if the key is absent.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if !self.contains_key(key) {
            return None;
        }
        let hash = hash_of(key);
        let mut node = &mut self.root;
        let mut shift = 0;
        loop {
            let idx = index_of(node.bitmap, bit_for(hash, shift));
            let slots = NodeArc::make_mut(node.slots.as_mut()?);
            match &mut slots[idx] {
                Slot::Leaf(_, v) => return Some(v),
                Slot::Branch(child) => {
                    node = child;
                    shift += BITS;
                }
                Slot::Collision(items) => {
                    let items = NodeArc::make_mut(items);
                    return items.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v);
                }
            }
        }
    }

    /// Inserts `key -> value`, returning the previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = insert_in(&mut self.root, hash_of(&key), 0, key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`, returning its value. Copies nothing if it is absent.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        if !self.contains_key(key) {
            return None;
        }
        let old = remove_in(&mut self.root, hash_of(key), 0, key);
        debug_assert!(old.is_some());
        self.len -= 1;
        old
    }

    /// Calls `f` on every entry, in hash order. Allocates nothing.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        fn walk<K, V>(node: &Node<K, V>, f: &mut impl FnMut(&K, &V)) {
            for slot in node.slots() {
                match slot {
                    Slot::Leaf(k, v) => f(k, v),
                    Slot::Branch(child) => walk(child, f),
                    Slot::Collision(items) => items.iter().for_each(|(k, v)| f(k, v)),
                }
            }
        }
        walk(&self.root, &mut f);
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
        check_node(&self.root, 0, 0, true, &mut count)?;
        if count != self.len {
            return Err(format!(
                "trie len {} but {} keys reachable",
                self.len, count
            ));
        }
        Ok(())
    }
}

/// Builds `slots` with `slot` inserted at `idx`.
fn with_inserted<K: Copy, V: Clone>(
    slots: &[Slot<K, V>],
    idx: usize,
    slot: Slot<K, V>,
) -> NodeArc<[Slot<K, V>]> {
    slots[..idx]
        .iter()
        .cloned()
        .chain(std::iter::once(slot))
        .chain(slots[idx..].iter().cloned())
        .collect()
}

/// Builds `slots` without the slot at `idx`.
fn without<K: Copy, V: Clone>(slots: &[Slot<K, V>], idx: usize) -> NodeArc<[Slot<K, V>]> {
    slots[..idx]
        .iter()
        .cloned()
        .chain(slots[idx + 1..].iter().cloned())
        .collect()
}

/// A node holding two distinct keys whose hashes agree below `shift`.
fn pair<K: Copy + Eq, V: Clone>(
    (k1, v1, h1): (K, V, u64),
    (k2, v2, h2): (K, V, u64),
    shift: u32,
) -> Slot<K, V> {
    if shift > MAX_SHIFT {
        return Slot::Collision(NodeArc::from(vec![(k1, v1), (k2, v2)]));
    }
    let (b1, b2) = (bit_for(h1, shift), bit_for(h2, shift));
    let slots: NodeArc<[Slot<K, V>]> = if b1 == b2 {
        NodeArc::from([pair((k1, v1, h1), (k2, v2, h2), shift + BITS)])
    } else if b1 < b2 {
        NodeArc::from([Slot::Leaf(k1, v1), Slot::Leaf(k2, v2)])
    } else {
        NodeArc::from([Slot::Leaf(k2, v2), Slot::Leaf(k1, v1)])
    };
    Slot::Branch(Node {
        bitmap: b1 | b2,
        slots: Some(slots),
    })
}

fn insert_in<K: Copy + Eq + Hash, V: Clone>(
    node: &mut Node<K, V>,
    hash: u64,
    shift: u32,
    key: K,
    value: V,
) -> Option<V> {
    let bit = bit_for(hash, shift);
    let idx = index_of(node.bitmap, bit);
    if node.bitmap & bit == 0 {
        node.slots = Some(with_inserted(node.slots(), idx, Slot::Leaf(key, value)));
        node.bitmap |= bit;
        return None;
    }
    let slots = NodeArc::make_mut(node.slots.as_mut().expect("bitmap bit set"));
    let slot = &mut slots[idx];
    match slot {
        Slot::Leaf(k, v) if *k == key => Some(std::mem::replace(v, value)),
        Slot::Leaf(..) => {
            let Slot::Leaf(k, v) = std::mem::replace(slot, Slot::Branch(Node::EMPTY)) else {
                unreachable!("matched a leaf above")
            };
            let h = hash_of(&k);
            *slot = pair((k, v, h), (key, value, hash), shift + BITS);
            None
        }
        Slot::Branch(child) => insert_in(child, hash, shift + BITS, key, value),
        Slot::Collision(items) => {
            let items = NodeArc::make_mut(items);
            if let Some((_, v)) = items.iter_mut().find(|(k, _)| *k == key) {
                return Some(std::mem::replace(v, value));
            }
            let mut grown: Vec<(K, V)> = items.to_vec();
            grown.push((key, value));
            *slot = Slot::Collision(NodeArc::from(grown));
            None
        }
    }
}

/// Removes `key`, which must be present below `node`.
fn remove_in<K: Copy + Eq + Hash, V: Clone>(
    node: &mut Node<K, V>,
    hash: u64,
    shift: u32,
    key: &K,
) -> Option<V> {
    let bit = bit_for(hash, shift);
    let idx = index_of(node.bitmap, bit);
    if let Slot::Leaf(_, v) = &node.slots()[idx] {
        let removed = v.clone();
        node.bitmap &= !bit;
        node.slots = (node.bitmap != 0).then(|| without(node.slots(), idx));
        return Some(removed);
    }
    let slots = NodeArc::make_mut(node.slots.as_mut()?);
    let (removed, replacement) = match &mut slots[idx] {
        Slot::Leaf(..) => unreachable!("handled above"),
        Slot::Branch(child) => {
            let removed = remove_in(child, hash, shift + BITS, key)?;
            // Keep the shape canonical: a branch left with one leaf folds
            // into this slot (and, level by level, as far up as it can).
            let fold = child.bitmap.count_ones() == 1 && matches!(child.slots()[0], Slot::Leaf(..));
            (removed, fold.then(|| child.slots()[0].clone()))
        }
        Slot::Collision(items) => {
            let pos = items.iter().position(|(k, _)| k == key)?;
            let removed = items[pos].1.clone();
            let mut rest: Vec<(K, V)> = items.to_vec();
            rest.swap_remove(pos);
            let replacement = if rest.len() == 1 {
                let (k, v) = rest.pop().expect("one left");
                Slot::Leaf(k, v)
            } else {
                Slot::Collision(NodeArc::from(rest))
            };
            (removed, Some(replacement))
        }
    };
    if let Some(slot) = replacement {
        slots[idx] = slot;
    }
    Some(removed)
}

fn check_node<K: Copy + Eq + Hash, V>(
    node: &Node<K, V>,
    prefix: u64,
    shift: u32,
    is_root: bool,
    count: &mut usize,
) -> Result<(), String> {
    let slots = node.slots();
    if node.bitmap.count_ones() as usize != slots.len() {
        return Err(format!(
            "bitmap {:#x} but {} slots",
            node.bitmap,
            slots.len()
        ));
    }
    if !is_root {
        if slots.is_empty() {
            return Err("empty branch".into());
        }
        if slots.len() == 1 && matches!(slots[0], Slot::Leaf(..)) {
            return Err("branch holding a single leaf".into());
        }
    }
    let mask = if shift == 0 { 0 } else { (1u64 << shift) - 1 };
    let mut bits = node.bitmap;
    for slot in slots {
        let chunk = u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        let here = prefix | (chunk << shift);
        let here_mask = (mask << BITS) | MASK;
        let expect = |k: &K| -> Result<(), String> {
            let h = hash_of(k)
                & if shift + BITS >= 64 {
                    u64::MAX
                } else {
                    here_mask
                };
            if h != here & here_mask {
                return Err("key stored under the wrong hash prefix".into());
            }
            Ok(())
        };
        match slot {
            Slot::Leaf(k, _) => {
                expect(k)?;
                *count += 1;
            }
            Slot::Branch(child) => check_node(child, here, shift + BITS, false, count)?,
            Slot::Collision(items) => {
                if items.len() < 2 {
                    return Err("collision bucket with fewer than two entries".into());
                }
                let h0 = hash_of(&items[0].0);
                if items.iter().any(|(k, _)| hash_of(k) != h0) {
                    return Err("collision bucket with differing hashes".into());
                }
                expect(&items[0].0)?;
                *count += items.len();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A key whose hash is all in our hands, to force collisions.
    #[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
    struct Weak(u64);
    impl Hash for Weak {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            (self.0 % 3).hash(state); // only three distinct hashes
        }
    }

    #[test]
    fn smoke() {
        let mut t = Trie::new();
        assert_eq!(t.insert(1u64, "a"), None);
        assert_eq!(t.insert(1u64, "b"), Some("a"));
        assert_eq!(t.get(&1), Some(&"b"));
        assert_eq!(t.get(&2), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&1), Some("b"));
        assert_eq!(t.len(), 0);
        t.check().unwrap();
    }

    #[test]
    fn matches_a_btreemap_and_keeps_old_versions() {
        let mut t = Trie::new();
        let mut model = BTreeMap::new();
        let mut versions = Vec::new();
        let mut x = 12345u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 3000;
            if x % 3 == 0 {
                assert_eq!(t.remove(&key), model.remove(&key));
            } else {
                assert_eq!(t.insert(key, step), model.insert(key, step));
            }
            if step % 2000 == 0 {
                t.check().unwrap();
                versions.push((t.clone(), model.clone()));
            }
        }
        t.check().unwrap();
        assert_eq!(t.len(), model.len());
        for (k, v) in &model {
            assert_eq!(t.get(k), Some(v));
        }
        // Old versions are untouched by later writes.
        for (old, m) in &versions {
            old.check().unwrap();
            assert_eq!(old.len(), m.len());
            assert_eq!(old.sorted_keys(), m.keys().copied().collect::<Vec<_>>());
            for (k, v) in m {
                assert_eq!(old.get(k), Some(v));
            }
        }
    }

    #[test]
    fn full_hash_collisions() {
        let mut t = Trie::new();
        for i in 0..30 {
            assert_eq!(t.insert(Weak(i), i), None);
            t.check().unwrap();
        }
        assert_eq!(t.len(), 30);
        for i in 0..30 {
            assert_eq!(t.get(&Weak(i)), Some(&i));
        }
        *t.get_mut(&Weak(4)).unwrap() = 40;
        assert_eq!(t.get(&Weak(4)), Some(&40));
        for i in 0..30 {
            assert!(t.remove(&Weak(i)).is_some());
            t.check().unwrap();
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.remove(&Weak(1)), None);
    }

    #[test]
    fn get_mut_copies_only_the_clone() {
        let mut a = Trie::new();
        for i in 0..1000u64 {
            a.insert(i, i);
        }
        let b = a.clone();
        *a.get_mut(&7).unwrap() = 70;
        assert_eq!(a.get(&7), Some(&70));
        assert_eq!(b.get(&7), Some(&7));
        assert!(a.get_mut(&5000).is_none());
    }
}

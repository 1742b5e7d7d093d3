//! The trie's path-copying writes: the recursive halves of
//! [`Trie::insert`](super::Trie::insert) and
//! [`Trie::remove`](super::Trie::remove), and the pair node an insert makes
//! when two keys meet. Readers never run this code.

use super::layout::{bit_for, index_of, is_collision, BITS};
use crate::hash::KeyHasher;
use crate::store::copy::{make_mut, replace};
use crate::store::node::{Born, Node};
use crate::store::reclaim::Txn;
use crate::store::share::{share_entry, Share, ShareToken};
use std::hash::Hash;

/// A subtree holding two distinct keys whose hashes agree below `shift`.
fn pair<K: Copy, V: Share>(
    a: (K, V, u64),
    b: (K, V, u64),
    shift: u32,
    version: Born<'_>,
) -> Node<K, V> {
    if is_collision(shift) {
        return Node::alloc(
            2,
            0,
            version,
            true,
            std::iter::empty(),
            [(a.0, a.1), (b.0, b.1)].into_iter(),
        );
    }
    let (ba, bb) = (bit_for(a.2, shift), bit_for(b.2, shift));
    if ba == bb {
        let child = pair(a, b, shift + BITS, version);
        return Node::alloc(
            0,
            ba,
            version,
            false,
            std::iter::once(child),
            std::iter::empty(),
        );
    }
    let entries = if ba < bb {
        [(a.0, a.1), (b.0, b.1)]
    } else {
        [(b.0, b.1), (a.0, a.1)]
    };
    Node::alloc(
        ba | bb,
        0,
        version,
        false,
        std::iter::empty(),
        entries.into_iter(),
    )
}

pub(super) fn insert_in<K, V>(
    hasher: &KeyHasher,
    node: &mut Node<K, V>,
    hash: u64,
    shift: u32,
    key: K,
    value: V,
    txn: &mut Txn<'_>,
) -> Option<V>
where
    K: Copy + Eq + Hash + Send + Sync,
    V: Share + Send + Sync,
{
    let version = txn.born();
    if is_collision(shift) {
        if let Some(pos) = node.parts(true).1.iter().position(|(k, _)| *k == key) {
            let (_, entries) = make_mut(node, true, txn);
            return Some(std::mem::replace(&mut entries[pos].1, value));
        }
        let h = node.header();
        let grown = Node::alloc(
            h.datamap + 1,
            0,
            version,
            true,
            std::iter::empty(),
            node.parts(true)
                .1
                .iter()
                .map(share_entry)
                .chain(std::iter::once((key, value))),
        );
        replace(node, grown, true, txn);
        return None;
    }
    let bit = bit_for(hash, shift);
    let h = node.header();
    let (datamap, nodemap) = (h.datamap, h.nodemap);
    if nodemap & bit != 0 {
        let (children, _) = make_mut(node, false, txn);
        let child = &mut children[index_of(nodemap, bit)];
        return insert_in(hasher, child, hash, shift + BITS, key, value, txn);
    }
    let (children, entries) = node.parts(false);
    if datamap & bit == 0 {
        // A free slot: the entry goes inline here.
        let at = index_of(datamap, bit);
        let grown = Node::alloc(
            datamap | bit,
            nodemap,
            version,
            false,
            children.iter().copied(),
            entries[..at]
                .iter()
                .map(share_entry)
                .chain(std::iter::once((key, value)))
                .chain(entries[at..].iter().map(share_entry)),
        );
        replace(node, grown, false, txn);
        return None;
    }
    let at = index_of(datamap, bit);
    if entries[at].0 == key {
        let (_, entries) = make_mut(node, false, txn);
        return Some(std::mem::replace(&mut entries[at].1, value));
    }
    // Another key holds the slot: both move down into a new child.
    let (k, v) = share_entry(&entries[at]);
    let child = pair(
        (k, v, hasher.hash(&k)),
        (key, value, hash),
        shift + BITS,
        version,
    );
    let child_at = index_of(nodemap, bit);
    let split = Node::alloc(
        datamap & !bit,
        nodemap | bit,
        version,
        false,
        children[..child_at]
            .iter()
            .copied()
            .chain(std::iter::once(child))
            .chain(children[child_at..].iter().copied()),
        shared_without(entries, at),
    );
    replace(node, split, false, txn);
    None
}

/// `entries` shared, but for the one at `at`.
fn shared_without<K: Copy, V: Share>(
    entries: &[(K, V)],
    at: usize,
) -> impl Iterator<Item = (K, V)> + '_ {
    entries[..at]
        .iter()
        .chain(&entries[at + 1..])
        .map(share_entry)
}

/// Replaces `node` (`counted` or not) by a copy with the same children and
/// without entry `at`, whose bitmaps are `maps` (`datamap`, `nodemap`);
/// returns that entry's value.
fn without_entry<K, V>(
    node: &mut Node<K, V>,
    at: usize,
    (datamap, nodemap): (u32, u32),
    counted: bool,
    txn: &mut Txn<'_>,
) -> V
where
    K: Copy + Send + Sync,
    V: Share + Send + Sync,
{
    let (children, entries) = node.parts(counted);
    let removed = entries[at].1.share(&ShareToken(()));
    let shrunk = Node::alloc(
        datamap,
        nodemap,
        txn.born(),
        counted,
        children.iter().copied(),
        shared_without(entries, at),
    );
    replace(node, shrunk, counted, txn);
    removed
}

/// Removes `key`, which must be present below `node`.
pub(super) fn remove_in<K, V>(
    node: &mut Node<K, V>,
    hash: u64,
    shift: u32,
    key: &K,
    txn: &mut Txn<'_>,
) -> Option<V>
where
    K: Copy + Eq + Hash + Send + Sync,
    V: Share + Send + Sync,
{
    let version = txn.born();
    if is_collision(shift) {
        let pos = node.parts(true).1.iter().position(|(k, _)| k == key)?;
        let count = node.header().datamap;
        return Some(without_entry(node, pos, (count - 1, 0), true, txn));
    }
    let bit = bit_for(hash, shift);
    let h = node.header();
    let (datamap, nodemap) = (h.datamap, h.nodemap);
    if datamap & bit != 0 {
        let at = index_of(datamap, bit);
        return Some(without_entry(
            node,
            at,
            (datamap & !bit, nodemap),
            false,
            txn,
        ));
    }
    let child_at = index_of(nodemap, bit);
    let removed = {
        let (children, _) = make_mut(node, false, txn);
        remove_in(&mut children[child_at], hash, shift + BITS, key, txn)?
    };
    // Keep the shape canonical: a child left holding a single entry (and
    // no child of its own) is inlined here, level by level.
    let child = node.parts(false).0[child_at];
    let child_collision = is_collision(shift + BITS);
    let (grand, child_entries) = child.parts(child_collision);
    if grand.is_empty() && child_entries.len() == 1 {
        let (children, entries) = node.parts(false);
        let at = index_of(datamap, bit);
        let inlined = Node::alloc(
            datamap | bit,
            nodemap & !bit,
            version,
            false,
            children[..child_at]
                .iter()
                .copied()
                .chain(children[child_at + 1..].iter().copied()),
            entries[..at]
                .iter()
                .map(share_entry)
                .chain(std::iter::once(share_entry(&child_entries[0])))
                .chain(entries[at..].iter().map(share_entry)),
        );
        replace(node, inlined, false, txn);
        // SAFETY: `inlined` took `child`'s entry and does not link `child`;
        // its old parent was just replaced, so nothing in the version being
        // built links to it. Given up once, here.
        unsafe { txn.discard(child, child_collision) };
    }
    Some(removed)
}

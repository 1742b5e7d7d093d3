//! The B+tree's path-copying writes: the recursive halves of
//! [`OrdTree::insert`](super::OrdTree::insert) and
//! [`OrdTree::remove`](super::OrdTree::remove), the splices, splits and
//! merges they make, and the bulk build's chunking. Readers never run this
//! code.

use super::layout::{is_leaf, keys, low_mask, max_size, min_key, min_size, OrdNode};
use crate::store::copy::{make_mut, replace};
use crate::store::node::{Born, Node, Parts};
use crate::store::reclaim::Txn;

/// The child of an inner node whose range holds `k`: the last one whose
/// minimum is at most `k` (the first one if `k` is below them all).
#[inline]
fn child_for<K: Ord>(entries: &[(K, ())], k: &K) -> usize {
    entries.partition_point(|e| e.0 <= *k).saturating_sub(1)
}

/// A new node of `n` items: for a leaf no children and `n` keys, for an
/// inner node `n` children and their `n` minimums.
pub(super) fn build<K: Copy>(
    leaf: bool,
    n: usize,
    version: Born<'_>,
    children: impl Iterator<Item = OrdNode<K>>,
    entries: impl Iterator<Item = (K, ())>,
) -> OrdNode<K> {
    debug_assert!(n <= max_size(leaf));
    let nodemap = if leaf { 0 } else { low_mask(n) };
    Node::alloc(n as u32, nodemap, version, true, children, entries)
}

/// `node`'s items with `[at, at + del)` replaced by `children`/`entries`
/// (`children` empty for a leaf), as one new node or, past the maximum
/// size, two halves. `node` itself is left for the caller to give up.
fn splice<K: Copy>(
    node: &OrdNode<K>,
    (at, del): (usize, usize),
    children: &[OrdNode<K>],
    entries: &[(K, ())],
    version: Born<'_>,
) -> (OrdNode<K>, Option<OrdNode<K>>) {
    let leaf = is_leaf(node);
    let (old_children, old_entries) = node.parts(true);
    let n = old_entries.len() - del + entries.len();
    if n <= max_size(leaf) {
        // The common case, copied slice by slice. (A leaf has no children:
        // `get` rather than slicing.)
        let old = |r: std::ops::Range<usize>| {
            (old_children.get(r.clone()).unwrap_or(&[]), &old_entries[r])
        };
        let parts = [
            old(0..at),
            (children, entries),
            old(at + del..old_entries.len()),
        ];
        return (concat(leaf, n, version, parts), None);
    }
    let children = (old_children.iter().take(at))
        .chain(children)
        .chain(old_children.iter().skip(at + del))
        .copied();
    let entries = (old_entries[..at].iter())
        .chain(entries)
        .chain(&old_entries[at + del..])
        .copied();
    let (left, right) = halves(leaf, n, version, children, entries);
    (left, Some(right))
}

/// A new node of `n` items: those of `parts`, in order, each slice copied
/// as one block.
fn concat<K: Copy, const P: usize>(
    leaf: bool,
    n: usize,
    version: Born<'_>,
    parts: [Parts<'_, K, ()>; P],
) -> OrdNode<K> {
    debug_assert!(n <= max_size(leaf));
    let nodemap = if leaf { 0 } else { low_mask(n) };
    Node::alloc_concat(n as u32, nodemap, version, true, parts)
}

/// Two new nodes sharing `n` items evenly, the right one taking any odd one.
fn halves<K: Copy>(
    leaf: bool,
    n: usize,
    version: Born<'_>,
    children: impl Iterator<Item = OrdNode<K>> + Clone,
    entries: impl Iterator<Item = (K, ())> + Clone,
) -> (OrdNode<K>, OrdNode<K>) {
    let half = n / 2;
    let (lc, le) = (children.clone().take(half), entries.clone().take(half));
    let left = build(leaf, half, version, lc, le);
    let right = build(
        leaf,
        n - half,
        version,
        children.skip(half),
        entries.skip(half),
    );
    (left, right)
}

/// Points slot `i` of an inner node at `child` and refreshes its minimum,
/// copying the node first unless this transaction made it.
fn set_child<K: Copy + Send + Sync>(
    node: &mut OrdNode<K>,
    i: usize,
    child: OrdNode<K>,
    txn: &mut Txn<'_>,
) {
    let min = min_key(&child);
    let (children, entries) = make_mut(node, true, txn);
    children[i] = child;
    entries[i] = (min, ());
}

/// What inserting below a node did.
pub(super) enum Grown<K> {
    /// The key was there already; nothing was written.
    Present,
    /// Inserted; the node still fits.
    Fit,
    /// Inserted; the node split and this is its new right half.
    Split(OrdNode<K>),
}

/// Inserts `k` below `node`, copying the path to it. Writes nothing if
/// `k` is present.
pub(super) fn insert_in<K>(node: &mut OrdNode<K>, k: K, txn: &mut Txn<'_>) -> Grown<K>
where
    K: Copy + Ord + Send + Sync,
{
    if is_leaf(node) {
        let Err(at) = keys(node).binary_search_by(|e| e.0.cmp(&k)) else {
            return Grown::Present;
        };
        let (new, right) = splice(node, (at, 0), &[], &[(k, ())], txn.born());
        replace(node, new, true, txn);
        return right.map_or(Grown::Fit, Grown::Split);
    }
    let i = child_for(keys(node), &k);
    let mut child = node.parts(true).0[i];
    match insert_in(&mut child, k, txn) {
        Grown::Present => Grown::Present,
        Grown::Fit => {
            set_child(node, i, child, txn);
            Grown::Fit
        }
        Grown::Split(right) => {
            let mins = [(min_key(&child), ()), (min_key(&right), ())];
            let (new, split) = splice(node, (i, 1), &[child, right], &mins, txn.born());
            replace(node, new, true, txn);
            split.map_or(Grown::Fit, Grown::Split)
        }
    }
}

/// Removes `k` from below `node`, copying the path to it; false (and
/// nothing written) if absent. `node` may be left under its minimum size,
/// for its parent to fix.
pub(super) fn remove_in<K>(node: &mut OrdNode<K>, k: &K, txn: &mut Txn<'_>) -> bool
where
    K: Copy + Ord + Send + Sync,
{
    if is_leaf(node) {
        let Ok(at) = keys(node).binary_search_by(|e| e.0.cmp(k)) else {
            return false;
        };
        let (new, _) = splice(node, (at, 1), &[], &[], txn.born());
        replace(node, new, true, txn);
        return true;
    }
    let i = child_for(keys(node), k);
    let mut child = node.parts(true).0[i];
    if !remove_in(&mut child, k, txn) {
        return false;
    }
    if child.header().datamap as usize >= min_size(is_leaf(&child)) {
        set_child(node, i, child, txn);
    } else {
        rebalance(node, i, child, txn);
    }
    true
}

/// Fixes child `i` of an inner node, now `child` and under its minimum:
/// merges it with an adjacent sibling if both fit in one node, else shares
/// their items evenly between the two. Both old nodes are given up.
fn rebalance<K>(node: &mut OrdNode<K>, i: usize, child: OrdNode<K>, txn: &mut Txn<'_>)
where
    K: Copy + Ord + Send + Sync,
{
    let version = txn.born();
    // The right sibling, or the left one for the last child (an inner node
    // has at least two children).
    let siblings = node.parts(true).0;
    let (at, left, right) = if i + 1 < siblings.len() {
        (i, child, siblings[i + 1])
    } else {
        (i - 1, siblings[i - 1], child)
    };
    let leaf = is_leaf(&child);
    let ((lc, le), (rc, re)) = (left.parts(true), right.parts(true));
    let n = le.len() + re.len();
    if n <= max_size(leaf) {
        let merged = concat(leaf, n, version, [(lc, le), (rc, re)]);
        let mins = [(min_key(&merged), ())];
        let (new, _) = splice(node, (at, 2), &[merged], &mins, version);
        replace(node, new, true, txn);
    } else {
        let children = lc.iter().chain(rc).copied();
        let entries = le.iter().chain(re).copied();
        let (l, r) = halves(leaf, n, version, children, entries);
        let (slots, mins) = make_mut(node, true, txn);
        (slots[at], slots[at + 1]) = (l, r);
        (mins[at], mins[at + 1]) = ((min_key(&l), ()), (min_key(&r), ()));
    }
    // SAFETY: both were children of `node` and have just been replaced in
    // it (merged and spliced out, or overwritten by the halves), their only
    // links ("Ownership"); each is given up once, here.
    unsafe {
        txn.discard(left, true);
        txn.discard(right, true);
    }
}

/// Sizes of `ceil(n / fill)` chunks of `n > 0` items, as even as possible.
pub(super) fn even_chunks(n: usize, fill: usize) -> impl Iterator<Item = usize> {
    let chunks = n.div_ceil(fill);
    let (base, extra) = (n / chunks, n % chunks);
    (0..chunks).map(move |i| base + usize::from(i < extra))
}

//! Path copies: [`make_mut`] (copy a node the transaction did not make
//! before writing it) and [`replace`] (put a new node in an old one's place
//! and give the old one up), what the trie and the B+tree write with.

use super::node::{Node, PartsMut};
use super::reclaim::Txn;
use super::share::{share_entry, Share};

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
    if node.header().born() != txn.version {
        let old = *node;
        // SAFETY: `Share::bit_copy` is the contract that a value's bytes
        // are its share (and `K` is `Copy`): `share_entry`'s result.
        *node = unsafe { Node::alloc_copy(&old, txn.born(), counted, V::bit_copy(), share_entry) };
        // SAFETY: as in `replace`: `*node` (or, at a B+tree call site, the
        // parent slot the caller writes it back to before the commit) was
        // the one link to `old`, and its copy has just taken that place; it
        // is given up once, here.
        unsafe { txn.discard(old, counted) };
    }
    // SAFETY: `node` was born in this transaction, so no reader reaches it
    // (unpublished), and the writer holds no other reference into it while
    // the parts are borrowed through `node` (a parent's slot may hold the
    // same pointer, which is not a reference).
    unsafe { node.parts_mut(counted) }
}

/// Replaces `*node` with `new` and gives up the old node.
pub(super) fn replace<K: Copy + Send + Sync, V: Share + Send + Sync>(
    node: &mut Node<K, V>,
    new: Node<K, V>,
    counted: bool,
    txn: &mut Txn<'_>,
) {
    let old = std::mem::replace(node, new);
    // SAFETY: `*node` is the version's one link to `old` ("Ownership"),
    // or, at the B+tree's call sites, a copy of that link which the caller
    // writes into the parent's slot (`set_child`, `splice`) before the
    // transaction commits; either way the version being built links `new`
    // instead of `old` by then, which is what `discard` asks. `old` is
    // given up once, here.
    unsafe { txn.discard(old, counted) };
}

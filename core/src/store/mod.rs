//! The node store: every line of code that allocates, copies, shares or
//! frees graph nodes, and the crate's `unsafe` code with it.
//!
//! The graph's maps ([`Trie`], a hash trie) and its large subscriber sets
//! ([`OrdTree`](ordset::OrdTree), a B+tree, inside [`SortedSet`](set::SortedSet)) are persistent structures
//! built from one kind of node ([`node`]): a cache-line-aligned allocation
//! from the writer's `Pool`, with no reference counts. A version shares
//! every node it did not change with the version before it, so a node's
//! lifetime is not any one value's: it is decided here, by the rule below.
//! Code outside the store reads nodes through shared references tied to a
//! graph version it holds, and changes them only inside a writer's [`Txn`],
//! which only [`Versions::write`] makes: the store copies the latest roots,
//! publishes the next version, retires the one it replaced and frees nodes;
//! the engine only says what changes.
//!
//! | file | what it holds |
//! |---|---|
//! | `pool.rs` | the writer's cache-line slots |
//! | `deferred.rs` | [`Deferred`]: host values freed nodes held, dropped after the writer lock; `DropLater`, how a value leaves a freed node |
//! | `node/` | node layout: header, child pointers, entries, accessors; [`Version`]; `make.rs`: `alloc`, `alloc_concat`, `alloc_copy` (with `Born`, what a new node needs), `Made` and `free` |
//! | `reclaim.rs` | transactions (give up replaced nodes, commit or abandon) and the `Reclaimer` |
//! | `share.rs` | [`Share`] and [`ShareToken`]: what a stored value does when the store copies or releases it; [`share_fields!`]; [`HostArc`], a host value's count that a `()` value goes without |
//! | `copy.rs` | path copies: `make_mut` (copy instead of write) and `replace` |
//! | `trie/` | the hash trie |
//! | `ordset/` | the B+tree |
//! | `set.rs` | [`SortedSet`](set::SortedSet): inline up to a few members, else an `OrdTree` |
//! | `hazard/` | hazard slots: the per-thread pins of `Versions::read`, and the writer's scan of them |
//! | `pin.rs` | [`PinnedSet`](pin::PinnedSet): a set read out of a version, with the pin that keeps the version alive (`Subscribers`) |
//! | `publish.rs` | [`Publish`], [`Roots`], [`Extra`]: what the store needs of the engine's version type and writer state; [`Keep`], the owner reference every version holds |
//! | `versions/` | [`Versions`]: the cell readers load, the writer mutex, the latest roots, the retired versions and the reclaimer; `write` (copy, combine, publish, retire, collect) and the teardown; `writing.rs`, the nested-write mark |
//! | `testing.rs` | the writer the store's unit tests share |
//!
//! Each file imports only from files above it in this table (a file's
//! tests may also use `testing.rs`), and this file only declares them and
//! re-exports what the rest of the crate uses.
//!
//! # Memory verbs
//!
//! * **give up** (`Txn::discard`, `OrdTree::discard_all`): a writer unlinks
//!   a node from the version it is building. A node made in the same
//!   transaction is *freed* when the transaction commits; an older one is
//!   *retired*.
//! * **commit** (`Txn::commit`): the transaction's nodes become the next
//!   version's. **abandon** (an uncommitted `Txn` dropped, when host code
//!   panicked inside the write): every node the transaction made is freed
//!   and the nodes it retired leave the retired list, since the published
//!   version still links them.
//! * **release** ([`Share::release`]): give up every node a value points
//!   to, leaving it pointing to none. A [`Trie`] releases every value it
//!   removes or replaces before handing it back (`remove_with` lends it
//!   to the caller first), so no value that still shares nodes leaves a
//!   write.
//! * **share** ([`Share::share`]): copy a value or root that points to
//!   nodes, without owning them. Only the store shares (a [`ShareToken`]
//!   proves it): [`Versions::write`] to start a transaction and to keep the
//!   latest roots, path copies, and [`PinnedSet`](pin::PinnedSet).
//! * **retire**: put a replaced node on the `Reclaimer`'s list with the
//!   versions that can see it, `[born, died)`. Also said of a replaced graph
//!   version, which [`Versions`] keeps, with its number, until no reader
//!   holds it.
//! * **collect** (`Reclaimer::collect`): free every retired node that no
//!   held version can see.
//! * **free** (`Node::free`): hand a node's values to a [`Deferred`] and
//!   give its memory back to the `Pool`, which keeps it for new nodes.
//! * **drop later** ([`Share::drop_later`], [`Deferred`]): host values (a
//!   thread entry, a connection's data) leave freed nodes for a list the
//!   writing thread drops once the writer lock is released, so that no host
//!   destructor runs while the store's state is half-changed.
//!
//! # Ownership and immutability
//!
//! 1. **Ownership.** Every node is owned by exactly one of: the latest
//!    version (reachable from its roots), the pending roots of a group of
//!    committed, unpublished writes (`versions/`, "Combining"), the
//!    retired list, or the open transaction (made by it: on its list of
//!    new nodes). No node has
//!    two parents in one version. A value a trie removes or replaces is
//!    released in the same transaction, by the trie (see "release"), so its
//!    nodes move to the retired list with it and no value that shares nodes
//!    outlives the write that unlinked them.
//! 2. **Immutability.** A node born in an earlier transaction (`born <
//!    txn.version`: an earlier version's, or an earlier write's of the
//!    same pending group) is never written: the writer copies it and
//!    retires the original. A node born in the current transaction is reachable only
//!    from the unpublished next version, so the writer may change or free it
//!    in place.
//! 3. **Visibility.** Numbers here are *stamps*: every transaction gets
//!    the next one, and a published version is known by the stamp of the
//!    last transaction of its group. A node is visible in exactly the
//!    published versions whose stamp lies in `[born, died)`, where `died`
//!    is the stamp of the transaction that replaced it (the latest version
//!    sees every node it owns): the versions are published in stamp order,
//!    and none with a stamp between two groups' last.
//!
//! # Reclamation: why freeing a retired node is safe
//!
//! [`Versions`] publishes versions through one `ArcSwap` cell and its
//! mirror (the same address in a plain atomic pointer, for hazard pins),
//! which only it can store to, and keeps every replaced version, with the number it gave
//! it, in its writer's `retired` list. The writer, under its mutex, frees a
//! retired node in `Reclaimer::collect` when no version in that list lies
//! in the node's `[born, died)`. The steps that make this free happen after
//! every read of the node:
//!
//! 1. **Readers reach versions only through the cell.** A reader holds a
//!    version by a hazard pin (`Versions::read`, for the length of one
//!    call, lending `&G` only), an `ArcSwap` load guard (a [`Snapshot`], a
//!    [`PinnedSet`](pin::PinnedSet)'s pin), a full `Arc` (a `Reader`'s cache, a
//!    [`PinnedSet`](pin::PinnedSet)'s pin made from one), or a clone of a guard or an
//!    `Arc`; it reads nodes only through a version it holds (every read
//!    path borrows from the held version, `view.rs`). A pin is cleared
//!    when its holder drops it, on an unwind too (`hazard::Pin`'s drop).
//! 2. **The swap settles every guard.** `Writer::retire` (`versions/`)
//!    runs after `ArcSwap::swap` has replaced the version in the cell.
//!    `swap` pays every reader debt on the old version: for each guard still in a debt slot it
//!    takes a reference count on the reader's behalf. Edge: the reader's
//!    `SeqCst` store of its debt and the writer's `SeqCst` scan of the debt
//!    slots are ordered in the single `SeqCst` order; a reader that released
//!    its guard first did so with a `SeqCst` compare-and-swap on its slot,
//!    which the writer's scan reads, so the reader's node reads happen before
//!    the scan (release/acquire through the slot). After `swap` returns, the
//!    old version's strong count counts every reader still holding it by
//!    a guard or an `Arc`. Hazard pins are not counted: the writer stores
//!    the new address in the mirror, and `retire` then keeps any version
//!    a slot holds. Edge (`hazard/`, H1-H3): the reader's store to its
//!    slot and the writer's store to the mirror are each followed by a
//!    `SeqCst` fence, so either the writer's scan reads the reader's slot
//!    (the pin, or a later `Release` store sequenced after the reader's
//!    reads) or the reader's confirming load reads the new address and the
//!    pin retries without having read anything.
//! 3. **No new reader can reach a replaced version.** The cell no longer
//!    holds it (2), so a new guard or `Arc` can only be a clone of an
//!    existing one, which step 2 counts.
//! 4. **A count of one and no slot means no reader is left.** `retire`
//!    drops a retired version whose strong count is 1 (only the list holds
//!    it) and that no hazard slot holds (2; a reader whose unpin the scan
//!    read is ordered before the drop by that `Release`/`Acquire` pair). Readers never
//!    drop the last reference (the list holds one), so the writer's drop is
//!    the last: `Arc::drop`'s `fetch_sub` reads 1 and its `Acquire` fence
//!    synchronises with every reader's `Release` decrement. Edge: each
//!    reader's reads of the version's nodes happen before its decrement,
//!    hence before that fence, hence before anything the writer does next.
//! 5. **`collect` frees only nodes no held version can see.** Every version
//!    a reader may still hold is the latest one (which sees no retired node,
//!    by 1) or a version left in the list (4); `collect` is passed the
//!    numbers of the list's versions and keeps every node visible (3) in one
//!    of them. The numbers are right because the store both stamped and
//!    built every version (`Versions::write`: the copy of the latest roots
//!    that a group's transactions changed, published with the stamp of the
//!    group's last transaction, which is at least every stamp a node of
//!    the group was born with and less than every later transaction's; the
//!    version `swap` returns is the one published before it). A node it
//!    frees was visible only in versions dropped in step 4, after all their
//!    reads (4), or in versions never published.
//! 6. **Nodes born in a transaction** are never published before it
//!    commits (2 of "Ownership and immutability"): the writer alone reaches
//!    them. The transaction lists each one as it is made; one it gives up
//!    again is freed at the commit, after every link to it was overwritten
//!    (`Txn::discard`'s contract), and if the transaction is abandoned,
//!    every one is freed, each once, from that list. An abandoned
//!    transaction also takes the nodes it retired off the retired list:
//!    the published version, which it never changed, still links them.
//! 7. **The last version frees the rest.** Every version holds a `Keep`, a
//!    reference to the versions' owner (`publish.rs`, built in `versions/`; the store asserts
//!    that each version it builds kept its `Keep`); dropping the
//!    [`Versions`] breaks the owner's reference cycle through `retired`.
//!    A version is dropped by whoever drops its last reference, after an
//!    `Acquire` fence that synchronises with every other holder's `Release`
//!    decrement (as in 4), so every read through it happens before its
//!    `Keep` is dropped, with a `Release` decrement of the owner's count.
//!    The owner's last decrement reads 1 and its `Acquire` fence
//!    synchronises with all of those. Edge: every read through any version
//!    happens before the owner's drop, which releases the latest roots into
//!    a teardown transaction (`Txn::teardown`: it frees every node given up
//!    at once) and then, in the `Reclaimer`'s drop, frees the retired ones:
//!    by then no version, hence no reader, exists.
//!
//! 8. **A version's allocation is reused only when it could be freed.**
//!    `retire` keeps one version it would drop (count one, no slot: 4) as
//!    the writer's spare, and the next publish writes the new version into
//!    its allocation (`Arc::get_mut`, which checks that nothing else holds
//!    it) instead of allocating one. That is what the allocator may do with
//!    a freed version's memory anyway, so every reader argument above
//!    already covers a new version at an old address: a stale address in a
//!    reader's hand is confirmed only by a load that reads the new
//!    version's publishing store (H1-H2, the pin; arc-swap's debts
//!    likewise), which happens after the rewrite; the spare's roots are
//!    never read, and it is dropped with the retired list (7).
//!
//! The pool never hands a slot to a new node while a freed node's reader
//! could still read it: a slot is reused only after its node was freed
//! (5, 6, 7). Builds with `--cfg loom` or `--cfg switchboard_system_nodes`
//! give every node its own `malloc` block, so that loom (which poisons freed
//! nodes, `node/make.rs`) and valgrind (CI) see any read of a freed node.
//!
//! [`Snapshot`]: crate::Snapshot

mod copy;
mod deferred;
#[cfg(any(not(loom), test))]
mod hazard;
mod node;
mod ordset;
mod pin;
mod pool;
mod publish;
mod reclaim;
mod set;
mod share;
#[cfg(test)]
mod testing;
mod trie;
mod versions;

pub(crate) use deferred::{Deferred, HostValue};
pub(crate) use node::Version;
pub(crate) use pin::PinnedSubscribers;
pub(crate) use pool::NodeCount;
pub(crate) use publish::{Extra, Keep, Publish, Roots};
pub(crate) use reclaim::Txn;
pub(crate) use set::{Iter as SetIter, SubscriberSet, ThreadSet};
pub(crate) use share::{
    host_bit_copy, share_fields, shared_bit_copy, unit, HostArc, HostField, Share, ShareToken,
};
pub(crate) use trie::Trie;
pub(crate) use versions::Versions;

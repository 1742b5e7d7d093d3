//! Making and freeing nodes: [`Born`] (what a new node needs), the
//! allocations (`alloc`, `alloc_concat`, `alloc_copy`, all ending in
//! `finish`), [`Made`] (a node with its types erased, as the transaction's
//! and the retired lists hold it) and `free`. Layout and reads are the
//! parent module's.

#[cfg(loom)]
use super::POISONED;
use super::{counts, counts_of, shape, Header, Node, Parts, Version, COUNTED};
use crate::store::deferred::{Deferred, DropLater};
use crate::store::pool::Pool;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// What a new node needs: the version it is born in, the pool its memory
/// comes from, and the list of the open transaction's nodes it goes on.
/// `Copy`, so that building code can pass it around while the transaction
/// itself is borrowed elsewhere. Only a transaction makes one
/// (`Txn::born`).
#[derive(Clone, Copy)]
pub(in crate::store) struct Born<'a> {
    pub(in crate::store) version: Version,
    pub(in crate::store) pool: &'a Pool,
    pub(in crate::store) made: &'a RefCell<Vec<Made>>,
}

/// A node allocation with its type erased: what the open transaction's
/// list of new nodes, and the retired list, hold.
#[derive(Clone, Copy)]
pub(in crate::store) struct Made {
    pub(in crate::store) ptr: NonNull<Header>,
    pub(in crate::store) counted: bool,
    free: unsafe fn(NonNull<Header>, bool, &Pool, &mut Deferred),
}

impl Made {
    /// Frees the node (see [`Node::free`]).
    ///
    /// # Safety
    ///
    /// As `Node::free`: no reader can reach the node, it is freed once, and
    /// `pool` is the one it came from.
    pub(in crate::store) unsafe fn free(self, pool: &Pool, later: &mut Deferred) {
        // SAFETY: the caller's contract; `free` was instantiated for the
        // node's own `K` and `V` when it was made (`Node::made`).
        unsafe { (self.free)(self.ptr, self.counted, pool, later) }
    }
}

/// `Node::free` with the node's types erased.
///
/// # Safety
///
/// As `Node::free`, for a `Node<K, V>` at `ptr`.
unsafe fn free_erased<K: Copy, V: DropLater>(
    ptr: NonNull<Header>,
    counted: bool,
    pool: &Pool,
    later: &mut Deferred,
) {
    // SAFETY: the caller's contract: `ptr` is a live `Node<K, V>`'s.
    let node = unsafe { Node::<K, V>::from_raw(ptr) };
    // SAFETY: the caller's contract.
    unsafe { node.free(counted, pool, later) }
}

impl<K: Copy, V: DropLater> Node<K, V> {
    /// Allocates a node from its parts: `nodemap.count_ones()` children
    /// (pointers, copied) and as many entries as `datamap` says (moved in).
    pub(in crate::store) fn alloc(
        datamap: u32,
        nodemap: u32,
        born: Born<'_>,
        counted: bool,
        children: impl Iterator<Item = Node<K, V>>,
        entries: impl Iterator<Item = (K, V)>,
    ) -> Self {
        let (nc, nd) = counts(datamap, nodemap, counted);
        let s = shape::<K, V>(nc, nd);
        let base = born.pool.alloc(s.layout).as_ptr();
        let (mut wc, mut wd) = (0, 0);
        // SAFETY: `base` is a fresh allocation of `s.layout`; each write goes
        // to its own in-bounds, aligned place (`take` bounds the counts). If
        // an iterator panics midway the allocation leaks; nothing reads or
        // drops it.
        unsafe {
            for c in children.take(nc) {
                ptr::write(base.add(s.children).cast::<Node<K, V>>().add(wc), c);
                wc += 1;
            }
            for e in entries.take(nd) {
                ptr::write(base.add(s.entries).cast::<(K, V)>().add(wd), e);
                wd += 1;
            }
        }
        // Every caller passes exactly the counts its maps promise; anything
        // else would leave uninitialised slots behind a valid header.
        assert!(wc == nc && wd == nd, "node parts do not match its bitmaps");
        // SAFETY: as above: every part is in.
        unsafe { Self::finish(base, datamap, nodemap, born, counted) }
    }

    /// Allocates a node whose children and entries are those of `parts`,
    /// in order, each slice copied as one block (the B+tree's splices and
    /// merges; `alloc`'s iterators would copy them item by item).
    ///
    /// # Panics
    ///
    /// If the slices do not add up to the counts the bitmaps give.
    pub(in crate::store) fn alloc_concat<const P: usize>(
        datamap: u32,
        nodemap: u32,
        born: Born<'_>,
        counted: bool,
        parts: [Parts<'_, K, V>; P],
    ) -> Self
    where
        V: Copy,
    {
        let (nc, nd) = counts(datamap, nodemap, counted);
        let (tc, td) = (parts.iter()).fold((0, 0), |(c, d), p| (c + p.0.len(), d + p.1.len()));
        assert!(tc == nc && td == nd, "node parts do not match its bitmaps");
        let s = shape::<K, V>(nc, nd);
        let base = born.pool.alloc(s.layout).as_ptr();
        let (mut c, mut d) = (0, 0);
        for (children, entries) in parts {
            // SAFETY: `base` is a fresh allocation of `shape(nc, nd)`, and
            // the slices add up to `nc` children and `nd` entries (checked
            // above), so each block lands in bounds and aligned, after the
            // ones before it, overlapping nothing (a fresh allocation);
            // children are `Copy` pointers and `(K, V)` is `Copy`.
            unsafe {
                ptr::copy_nonoverlapping(
                    children.as_ptr(),
                    base.add(s.children).cast::<Node<K, V>>().add(c),
                    children.len(),
                );
                ptr::copy_nonoverlapping(
                    entries.as_ptr(),
                    base.add(s.entries).cast::<(K, V)>().add(d),
                    entries.len(),
                );
            }
            (c, d) = (c + children.len(), d + entries.len());
        }
        // SAFETY: as above: every part is in.
        unsafe { Self::finish(base, datamap, nodemap, born, counted) }
    }

    /// Writes the header of the node at `base`, last, and puts the node
    /// on the transaction's list from the moment it is whole (if the
    /// transaction is abandoned, every node it made is freed from there).
    ///
    /// # Safety
    ///
    /// `base` is a fresh pool allocation of the shape `datamap` and
    /// `nodemap` give, with every child and entry written.
    #[inline]
    unsafe fn finish(
        base: *mut u8,
        datamap: u32,
        nodemap: u32,
        born: Born<'_>,
        counted: bool,
    ) -> Self {
        // SAFETY: the caller's contract; the header goes last.
        let node = unsafe {
            ptr::write(
                base.cast::<Header>(),
                Header {
                    datamap,
                    nodemap,
                    born_kind: born.version | if counted { COUNTED } else { 0 },
                },
            );
            Node {
                ptr: NonNull::new_unchecked(base.cast()),
                _entries: PhantomData,
            }
        };
        born.made.borrow_mut().push(node.made(counted));
        node
    }

    /// A copy of `old` (same bitmaps and kind, the same child pointers,
    /// each entry copied by `copy_entry`), born in `born`: a path copy's
    /// allocation, with the children copied as one block and the entries
    /// in a plain indexed loop (what `alloc`'s iterators cost a copy
    /// measurably more instructions for).
    ///
    /// # Safety
    ///
    /// If `bit_copy`, a copy of an entry's bytes must be what `copy_entry`
    /// returns for it (`Share::bit_copy`): the entries are then copied as
    /// one block instead.
    pub(in crate::store) unsafe fn alloc_copy(
        old: &Self,
        born: Born<'_>,
        counted: bool,
        bit_copy: bool,
        copy_entry: impl Fn(&(K, V)) -> (K, V),
    ) -> Self {
        let h = old.header();
        let (datamap, nodemap) = (h.datamap, h.nodemap);
        let (children, entries) = old.parts(counted);
        let s = shape::<K, V>(children.len(), entries.len());
        let base = born.pool.alloc(s.layout).as_ptr();
        // SAFETY: `base` is a fresh allocation of `shape(nc, nd)` for the
        // old node's counts; the children are `Copy` pointers copied into
        // their own in-bounds, aligned place (no overlap: a fresh
        // allocation), and each entry goes to its own place, as one block
        // only where that is what `copy_entry` makes (the caller's
        // contract). If
        // `copy_entry` panics midway the allocation leaks; nothing reads or
        // drops it.
        unsafe {
            ptr::copy_nonoverlapping(
                children.as_ptr(),
                base.add(s.children).cast::<Node<K, V>>(),
                children.len(),
            );
            let dst = base.add(s.entries).cast::<(K, V)>();
            if bit_copy {
                // The caller's contract: these bytes are `copy_entry`'s.
                ptr::copy_nonoverlapping(entries.as_ptr(), dst, entries.len());
            } else {
                for (i, e) in entries.iter().enumerate() {
                    ptr::write(dst.add(i), copy_entry(e));
                }
            }
        }
        // SAFETY: as above: every part is in, in a fresh allocation of the
        // old node's shape (same bitmaps).
        unsafe { Self::finish(base, datamap, nodemap, born, counted) }
    }

    /// This node with its types erased.
    pub(in crate::store) fn made(&self, counted: bool) -> Made {
        Made {
            ptr: self.ptr,
            counted,
            free: free_erased::<K, V>,
        }
    }

    /// Frees this node's allocation, giving each entry's value to `later`
    /// ([`DropLater::drop_later`]: host values are dropped after the writer
    /// lock, never here) and not its children (each has its own owner).
    /// Runs no host code (`K` is `Copy`: it has no destructor).
    ///
    /// # Safety
    ///
    /// No reader can reach the node any more, it is freed once, `counted`
    /// is its kind, and `pool` is the one it was allocated from.
    pub(in crate::store) unsafe fn free(self, counted: bool, pool: &Pool, later: &mut Deferred) {
        let (nc, nd) = counts_of(self.header(), counted);
        let s = shape::<K, V>(nc, nd);
        let base = self.ptr.as_ptr().cast::<u8>();
        let entries = base.wrapping_add(s.entries).cast::<(K, V)>();
        // Values with no drop glue (sets, `()`) have nothing to hand out.
        for i in 0..if std::mem::needs_drop::<V>() { nd } else { 0 } {
            // SAFETY: the caller's contract; the entries were initialised
            // by `alloc` and each is moved out once, here (the memory is
            // given back below without being read again).
            let (_, value) = unsafe { ptr::read(entries.add(i)) };
            value.drop_later(later);
        }
        #[cfg(loom)]
        {
            // Keep the allocation (leaked) with a poisoned header, so that a
            // later access fails loudly instead of reading freed memory.
            // SAFETY: the header is still allocated (under loom nothing is
            // given back); by the caller's contract no reader can reach the
            // node any more, so no other thread reads or writes it (a model
            // in which one still could fails on the poison in `header`, or
            // in loom's own race detection on the graph's `Arc`s).
            unsafe { (*self.ptr.as_ptr()).born_kind = POISONED };
            let _ = pool;
        }
        #[cfg(not(loom))]
        // SAFETY: the caller's contract; allocated by `alloc` from this
        // pool with `s.layout`.
        unsafe {
            pool.free(self.ptr.cast(), s.layout);
        }
    }
}

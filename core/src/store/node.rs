//! Node layout: one allocation per node (a header, the child pointers,
//! the entries), built, read and freed here. The rules every `unsafe`
//! block relies on are the store's ("Ownership", "Immutability",
//! "Reclamation", in `store/mod.rs`).

use super::deferred::{Deferred, DropLater};
use super::pool::Pool;
use std::alloc::Layout;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// A graph version number: the engine's publish counter, and what every
/// node records as the version that made it.
pub(crate) type Version = u64;

/// What every node allocation starts with.
#[repr(C)]
pub(super) struct Header {
    /// Slots holding an entry inline; in a *counted* node, the entry count.
    pub(super) datamap: u32,
    /// Slots holding a child node.
    pub(super) nodemap: u32,
    /// The version whose transaction created this node, with [`COUNTED`]
    /// set in a counted node (see [`Node`]).
    born_kind: Version,
}

/// The bit of `Header::born_kind` that marks a counted node. No version
/// number reaches it (one a nanosecond would take 292 years).
const COUNTED: Version = 1 << 63;

impl Header {
    /// The version whose transaction created this node.
    #[inline]
    pub(super) fn born(&self) -> Version {
        self.born_kind & !COUNTED
    }

    /// Whether this is a counted node (see [`Node`]).
    #[inline]
    fn counted(&self) -> bool {
        self.born_kind & COUNTED != 0
    }
}

/// A pointer to one node allocation: `Header`, then `nodemap.count_ones()`
/// child `Node`s, then the entries `(K, V)`: `datamap.count_ones()` of them,
/// or `datamap` itself in a *counted* node (the trie's hash-collision nodes
/// and every B+tree node). Whether a node is counted is not stored: the
/// caller knows (the trie by its depth, the B+tree always) and passes it as
/// `counted`.
///
/// A handle is a copyable pointer with no ownership of its own: which copy
/// owns the node is the store's rule ("Ownership"), and the operations that
/// end a node's life (`free`, `Txn::discard`) are `unsafe`.
#[repr(transparent)]
pub(super) struct Node<K, V> {
    ptr: NonNull<Header>,
    _entries: PhantomData<(K, V)>,
}

impl<K, V> Clone for Node<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Node<K, V> {}

/// What a new node needs: the version it is born in, the pool its memory
/// comes from, and the list of the open transaction's nodes it goes on.
/// `Copy`, so that building code can pass it around while the transaction
/// itself is borrowed elsewhere. Only a transaction makes one
/// (`Txn::born`).
#[derive(Clone, Copy)]
pub(super) struct Born<'a> {
    pub(super) version: Version,
    pub(super) pool: &'a Pool,
    pub(super) made: &'a RefCell<Vec<Made>>,
}

/// A node allocation with its type erased: what the open transaction's
/// list of new nodes, and the retired list, hold.
#[derive(Clone, Copy)]
pub(super) struct Made {
    pub(super) ptr: NonNull<Header>,
    pub(super) counted: bool,
    free: unsafe fn(NonNull<Header>, bool, &Pool, &mut Deferred),
}

impl Made {
    /// Frees the node (see [`Node::free`]).
    ///
    /// # Safety
    ///
    /// As `Node::free`: no reader can reach the node, it is freed once, and
    /// `pool` is the one it came from.
    pub(super) unsafe fn free(self, pool: &Pool, later: &mut Deferred) {
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

/// A node's children and entries.
pub(super) type Parts<'a, K, V> = (&'a [Node<K, V>], &'a [(K, V)]);
/// A node's children and entries, writable.
pub(super) type PartsMut<'a, K, V> = (&'a mut [Node<K, V>], &'a mut [(K, V)]);

/// Byte offsets of a node's parts, and its layout.
struct Shape {
    layout: Layout,
    children: usize,
    entries: usize,
}

#[inline]
fn shape<K, V>(children: usize, entries: usize) -> Shape {
    // Only overflows for counts no node has (at most 32 of each).
    let header = Layout::new::<Header>();
    let (l, children_at) = header
        .extend(Layout::array::<Node<K, V>>(children).expect("small"))
        .expect("small");
    let (l, entries_at) = l
        .extend(Layout::array::<(K, V)>(entries).expect("small"))
        .expect("small");
    debug_assert_eq!(children_at, CHILDREN_AT);
    debug_assert_eq!(entries_at, self::entries_at::<K, V>(children));
    Shape {
        layout: l.pad_to_align(),
        children: children_at,
        entries: entries_at,
    }
}

/// How many entries a node holds: one per `datamap` bit, or `datamap`
/// itself for a counted node. The kind comes from the header, never from
/// the caller, so every access to a node's parts and every free sizes the
/// node as it was allocated; the caller's `counted` (what the structure's
/// rules say the node is) is only checked in debug builds. (Measured: this
/// costs fewer instructions per write than checking the caller's flag
/// against the header.)
#[inline]
fn entry_count(h: &Header, counted: bool) -> usize {
    debug_assert_eq!(h.counted(), counted, "a node read as the wrong kind");
    if h.counted() {
        h.datamap as usize
    } else {
        h.datamap.count_ones() as usize
    }
}

/// The `born` of a node freed under loom (never a real version).
#[cfg(loom)]
const POISONED: Version = Version::MAX;

/// Where a node's children start: right after the header.
const CHILDREN_AT: usize = std::mem::size_of::<Header>();

/// Where a node's entries start, given its child count: after the children,
/// rounded up to the entries' alignment (what `shape` computes, cheaply).
#[inline]
const fn entries_at<K, V>(children: usize) -> usize {
    let end = CHILDREN_AT + children * std::mem::size_of::<usize>();
    let align = std::mem::align_of::<(K, V)>();
    end.div_ceil(align) * align
}

impl<K, V> Node<K, V> {
    /// A handle to the node allocation at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`as_raw`](Self::as_raw) on a `Node<K, V>` whose
    /// allocation is still live.
    pub(super) unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        Node {
            ptr,
            _entries: PhantomData,
        }
    }

    #[inline]
    pub(super) fn header(&self) -> &Header {
        // SAFETY: `ptr` points at a live node (the reclamation rule keeps
        // every node reachable from a held version alive), whose header was
        // written before the node was linked in.
        let h = unsafe { self.ptr.as_ref() };
        // Under loom, freed nodes are poisoned instead (see `free`): every
        // access goes through here, so a model in which a reader could reach
        // a node after the writer freed it fails on this assertion.
        #[cfg(loom)]
        assert!(
            h.born_kind != POISONED,
            "reached a node the writer had freed"
        );
        h
    }

    /// Child `i`, without the bounds check of [`parts`](Self::parts) (the
    /// trie's lookup).
    ///
    /// # Safety
    ///
    /// The node has at least `i + 1` children.
    #[inline]
    pub(super) unsafe fn child(&self, i: usize) -> &Node<K, V> {
        debug_assert!(i < self.header().nodemap.count_ones() as usize);
        // SAFETY: in bounds of the initialised children (the caller's
        // contract); the node is live and unwritten while readable (module
        // docs).
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .cast::<u8>()
                .add(CHILDREN_AT)
                .cast::<Node<K, V>>()
                .add(i)
        }
    }

    /// Entry `i`, without the checks of [`parts`](Self::parts) (the trie's
    /// lookup).
    ///
    /// # Safety
    ///
    /// The node is not counted, has `children` children and more than `i`
    /// entries.
    #[inline]
    pub(super) unsafe fn entry(&self, children: usize, i: usize) -> &(K, V) {
        debug_assert!(!self.header().counted());
        debug_assert!(i < self.header().datamap.count_ones() as usize);
        // SAFETY: as in `child`, for the entries part, which starts after
        // `children` children (the caller's contract).
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .cast::<u8>()
                .add(entries_at::<K, V>(children))
                .cast::<(K, V)>()
                .add(i)
        }
    }

    /// The child pointers and entries. `counted`: whether this is a counted
    /// node (see [`Node`]).
    #[inline]
    pub(super) fn parts(&self, counted: bool) -> Parts<'_, K, V> {
        let h = self.header();
        let nc = h.nodemap.count_ones() as usize;
        let nd = entry_count(h, counted);
        let s = shape::<K, V>(nc, nd);
        let base = self.ptr.as_ptr().cast::<u8>();
        // SAFETY: the allocation was made with `shape(nc, nd)` and its
        // `nc` children and `nd` entries were initialised before the node
        // was linked in; it stays alive and unwritten while readable
        // (module docs).
        unsafe {
            (
                std::slice::from_raw_parts(base.add(s.children).cast::<Node<K, V>>(), nc),
                std::slice::from_raw_parts(base.add(s.entries).cast::<(K, V)>(), nd),
            )
        }
    }

    /// Mutable access to the parts of a node born in the current
    /// transaction.
    ///
    /// # Safety
    ///
    /// The node is unpublished and reachable only through the caller's
    /// exclusive borrow.
    #[inline]
    pub(super) unsafe fn parts_mut(&mut self, counted: bool) -> PartsMut<'_, K, V> {
        let (nc, nd) = {
            let h = self.header();
            (h.nodemap.count_ones() as usize, entry_count(h, counted))
        };
        let s = shape::<K, V>(nc, nd);
        let base = self.ptr.as_ptr().cast::<u8>();
        // SAFETY: as in `parts`, and the caller guarantees exclusivity.
        unsafe {
            (
                std::slice::from_raw_parts_mut(base.add(s.children).cast::<Node<K, V>>(), nc),
                std::slice::from_raw_parts_mut(base.add(s.entries).cast::<(K, V)>(), nd),
            )
        }
    }
}

impl<K: Copy, V: DropLater> Node<K, V> {
    /// Allocates a node from its parts: `nodemap.count_ones()` children
    /// (pointers, copied) and as many entries as `datamap` says (moved in).
    pub(super) fn alloc(
        datamap: u32,
        nodemap: u32,
        born: Born<'_>,
        counted: bool,
        children: impl Iterator<Item = Node<K, V>>,
        entries: impl Iterator<Item = (K, V)>,
    ) -> Self {
        let nc = nodemap.count_ones() as usize;
        let nd = if counted {
            datamap as usize
        } else {
            datamap.count_ones() as usize
        };
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
    pub(super) fn alloc_concat<const P: usize>(
        datamap: u32,
        nodemap: u32,
        born: Born<'_>,
        counted: bool,
        parts: [Parts<'_, K, V>; P],
    ) -> Self
    where
        V: Copy,
    {
        let nc = nodemap.count_ones() as usize;
        let nd = if counted {
            datamap as usize
        } else {
            datamap.count_ones() as usize
        };
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
    pub(super) unsafe fn alloc_copy(
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
    pub(super) fn made(&self, counted: bool) -> Made {
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
    pub(super) unsafe fn free(self, counted: bool, pool: &Pool, later: &mut Deferred) {
        let (nc, nd) = {
            let h = self.header();
            (h.nodemap.count_ones() as usize, entry_count(h, counted))
        };
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

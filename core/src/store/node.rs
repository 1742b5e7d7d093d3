//! Node layout: one allocation per node (a header, the child pointers,
//! the entries), built, read and freed here. The rules every `unsafe`
//! block relies on are the store's ("Ownership", "Immutability",
//! "Reclamation", in `store/mod.rs`).

use super::pool::Pool;
use super::reclaim::Born;
use super::Version;
use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// What every node allocation starts with.
#[repr(C)]
pub(super) struct Header {
    /// Slots holding an entry inline; in a *counted* node, the entry count.
    pub(super) datamap: u32,
    /// Slots holding a child node.
    pub(super) nodemap: u32,
    /// The version whose transaction created this node.
    pub(super) born: Version,
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
/// itself for a counted node.
#[inline]
fn entry_count(h: &Header, counted: bool) -> usize {
    if counted {
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
    /// The allocation this handle points to (for the retired list).
    pub(super) fn as_raw(&self) -> NonNull<Header> {
        self.ptr
    }

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
        assert!(h.born != POISONED, "reached a node the writer had freed");
        h
    }

    /// Child `i` of a node with at least `i + 1` children.
    #[inline]
    pub(super) fn child(&self, i: usize) -> &Node<K, V> {
        debug_assert!(i < self.header().nodemap.count_ones() as usize);
        // SAFETY: in bounds of the initialised children (caller passes an
        // index below the child count); the node is live and unwritten
        // while readable (module docs).
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

    /// Entry `i` of a (non-counted) node with `children` children.
    #[inline]
    pub(super) fn entry(&self, children: usize, i: usize) -> &(K, V) {
        debug_assert!(i < self.header().datamap.count_ones() as usize);
        // SAFETY: as in `child`, for the entries part.
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
        // SAFETY: as above; the header goes last, once the parts are in.
        unsafe {
            ptr::write(
                base.cast::<Header>(),
                Header {
                    datamap,
                    nodemap,
                    born: born.version,
                },
            );
            Node {
                ptr: NonNull::new_unchecked(base.cast()),
                _entries: PhantomData,
            }
        }
    }

    /// Frees this node's allocation, dropping its entries (not its children:
    /// each has its own owner).
    ///
    /// # Safety
    ///
    /// No reader can reach the node any more, it is freed once, `counted`
    /// is its kind, and `pool` is the one it was allocated from.
    pub(super) unsafe fn free(self, counted: bool, pool: &Pool) {
        let (nc, nd) = {
            let h = self.header();
            (h.nodemap.count_ones() as usize, entry_count(h, counted))
        };
        let s = shape::<K, V>(nc, nd);
        let base = self.ptr.as_ptr().cast::<u8>();
        // SAFETY: the caller's contract; the entries were initialised by
        // `alloc` and are dropped once, here.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                base.add(s.entries).cast::<(K, V)>(),
                nd,
            ));
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
            unsafe { (*self.ptr.as_ptr()).born = POISONED };
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

//! Node layout: one allocation per node (a header, the child pointers,
//! the entries), read here and built and freed in `make.rs` (`Born`, what
//! a new node needs; `Made`, a node on a transaction's or the retired
//! list). The rules every `unsafe` block relies on are the store's
//! ("Ownership", "Immutability", "Reclamation", in `store/mod.rs`).

mod make;

pub(super) use make::{Born, Made};

use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;

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

/// How many children and entries a node of these bitmaps holds: one child
/// per `nodemap` bit, and one entry per `datamap` bit, or `datamap` itself
/// for a counted node. What every alloc sizes a new node by.
#[inline]
fn counts(datamap: u32, nodemap: u32, counted: bool) -> (usize, usize) {
    let entries = if counted {
        datamap as usize
    } else {
        datamap.count_ones() as usize
    };
    (nodemap.count_ones() as usize, entries)
}

/// [`counts`] of an existing node. The kind comes from the header, never
/// from the caller, so every access to a node's parts and every free sizes
/// the node as it was allocated; the caller's `counted` (what the
/// structure's rules say the node is) is only checked in debug builds.
/// (Measured: this costs fewer instructions per write than checking the
/// caller's flag against the header.)
#[inline]
fn counts_of(h: &Header, counted: bool) -> (usize, usize) {
    debug_assert_eq!(h.counted(), counted, "a node read as the wrong kind");
    counts(h.datamap, h.nodemap, h.counted())
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
        let (nc, nd) = counts_of(h, counted);
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
        let (nc, nd) = counts_of(self.header(), counted);
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

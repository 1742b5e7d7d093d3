//! The writer's node memory: cache-line slots carved from blocks the pool
//! owns, recycled through per-size free lists.
//!
//! # Why
//!
//! Readers keep the nodes of the published version in their caches while
//! the writer allocates and frees nodes all the time. With `malloc`
//! placement, new nodes and the allocator's own bookkeeping (block headers,
//! free-list links) landed in cache lines next to nodes readers were
//! reading, and that false sharing made some runs of a reader under a
//! flat-out writer keep 36-49% of its solo rate where others kept 73-82%
//! (measured, 2 cores, 10 processes each: which runs were slow depended on
//! where the thread's `malloc` arena put things). Here every node starts
//! on a cache line and owns whole lines, and freeing or reusing a slot
//! writes only that slot, which no reader can reach any more. It is also
//! cheaper than `malloc` + `free`: a free-list pop or a bump.
//!
//! # Invariants
//!
//! * Every slot handed out is `LINE`-aligned and a whole number of lines,
//!   inside a block of `blocks`; a slot is either handed out (owned by one
//!   node) or on exactly one free list, the one for its size in lines, its
//!   first word linking to the next free slot.
//! * `bump..bump + left` is the unused tail of the newest block.
//! * Nodes larger than `MAX_LINES` lines (only collision nodes of hundreds
//!   of keys reach that) get a block of their own, freed when they are.
//!
//! Memory given back to the pool is reused for nodes, never returned to
//! the system before the pool (the engine) goes.
//!
//! The pool counts the nodes it has handed out and not taken back, in a
//! plain counter only the writer writes (a load and a store, no atomic
//! read-modify-write; readers never touch it). A [`NodeCount`] shares it, so
//! that tests can check, after the engine and every snapshot are gone, that
//! every node came back: a leaked node is a failing `cargo test`, not only a
//! valgrind report. Debug builds also check it when the pool is dropped.
//!
//! Builds with `--cfg loom` or `--cfg switchboard_system_nodes` bypass the
//! pool: every node is its own `malloc` block, so that loom can poison
//! freed nodes and valgrind can see every use of freed node memory (a slot
//! recycled by the pool would hide it). CI runs valgrind that way.

use crate::sync::{StdArc, StdCounter};
use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::NonNull;

/// The cache line size nodes are laid out for.
const LINE: usize = 64;
/// Largest pooled node, in lines (4 KiB).
const MAX_LINES: usize = 64;
/// Size of the first block; each next one doubles, up to `BLOCK_MAX`.
const BLOCK_MIN: usize = 4 << 10;
const BLOCK_MAX: usize = 256 << 10;

// `grow` makes a block of at least `BLOCK_MIN` bytes, and `bump` relies on
// a fresh block holding the largest pooled slot.
const _: () = assert!(BLOCK_MIN >= MAX_LINES * LINE);
const _: () = assert!(BLOCK_MIN <= BLOCK_MAX);

/// Node memory of one writer (see the module docs). Not `Sync`: only the
/// writer, under its mutex, allocates and frees.
pub(crate) struct Pool {
    /// Free slots by size: `free[n - 1]` lists free slots of `n` lines.
    free: [Cell<Option<NonNull<u8>>>; MAX_LINES],
    bump: Cell<*mut u8>,
    left: Cell<usize>,
    /// Every block (start and layout), freed with the pool.
    blocks: Cell<Vec<(NonNull<u8>, Layout)>>,
    /// Nodes handed out and not given back (see the module docs): written
    /// by the pool's owner only, read by [`NodeCount`]s.
    live: StdArc<StdCounter>,
}

/// The live-node count of one pool, readable after the pool is gone (see
/// the module docs).
#[derive(Clone, Debug)]
pub(crate) struct NodeCount(StdArc<StdCounter>);

impl NodeCount {
    /// Nodes handed out and not yet given back.
    pub(crate) fn live(&self) -> usize {
        self.0.get()
    }
}

// SAFETY: the pool owns its blocks outright; moving it to another thread
// moves that ownership. (It is not `Sync`: `Cell`s.)
unsafe impl Send for Pool {}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            free: std::array::from_fn(|_| Cell::new(None)),
            bump: Cell::new(std::ptr::null_mut()),
            left: Cell::new(0),
            blocks: Cell::new(Vec::new()),
            live: StdArc::default(),
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

/// Lines a node of `layout` takes.
#[inline]
fn lines(layout: Layout) -> usize {
    layout.size().div_ceil(LINE)
}

/// Whether nodes bypass the pool (see the module docs).
const SYSTEM: bool = cfg!(any(loom, switchboard_system_nodes));

/// The block of its own a node of `layout` gets instead of a pool slot, if
/// any: its exact layout when bypassing the pool, whole lines when it is
/// too large for a slot.
#[inline]
fn own_block(layout: Layout) -> Option<Layout> {
    let n = lines(layout);
    if SYSTEM {
        Some(layout)
    } else if n > MAX_LINES {
        Some(Layout::from_size_align(n * LINE, LINE).expect("small"))
    } else {
        None
    }
}

impl Pool {
    /// Memory for one node of `layout` (whose alignment is at most a line).
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        assert!(layout.align() <= LINE, "node aligned beyond a cache line");
        self.live.add(1);
        let n = lines(layout);
        if let Some(own) = own_block(layout) {
            // SAFETY: the layout has a non-zero size (a node holds a header).
            let p = unsafe { alloc::alloc(own) };
            return NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(own));
        }
        if let Some(slot) = self.free[n - 1].get() {
            // SAFETY: a free slot's first word holds the next free slot of
            // its size (invariants); the slot is ours, and lines-aligned.
            let next = unsafe { slot.cast::<Option<NonNull<u8>>>().read() };
            self.free[n - 1].set(next);
            return slot;
        }
        self.bump(n * LINE)
    }

    /// Carves `size` bytes (whole lines) from the newest block, starting a
    /// new block if it has too little left.
    fn bump(&self, size: usize) -> NonNull<u8> {
        if self.left.get() < size {
            self.grow();
        }
        let p = self.bump.get();
        // SAFETY: `left >= size` bytes follow `bump` inside the newest
        // block (invariants; `grow` makes room for the largest slot).
        unsafe {
            self.bump.set(p.add(size));
            self.left.set(self.left.get() - size);
            NonNull::new_unchecked(p)
        }
    }

    /// Starts a new block (the rest of the current one is left unused).
    #[cold]
    fn grow(&self) {
        let mut blocks = self.blocks.take();
        let size = blocks
            .last()
            .map_or(BLOCK_MIN, |(_, l)| (l.size() * 2).min(BLOCK_MAX));
        let layout = Layout::from_size_align(size, LINE).expect("small");
        // SAFETY: non-zero size.
        let p = unsafe { alloc::alloc(layout) };
        let Some(p) = NonNull::new(p) else {
            alloc::handle_alloc_error(layout)
        };
        blocks.push((p, layout));
        self.blocks.set(blocks);
        self.bump.set(p.as_ptr());
        self.left.set(size);
    }

    /// Takes back the memory of a node of `layout`.
    ///
    /// # Safety
    ///
    /// `p` came from `self.alloc(layout)`, is given back once, and nothing
    /// reads or writes it afterwards.
    #[inline]
    #[cfg_attr(loom, allow(dead_code))] // loom builds leak nodes (`Node::free`)
    pub(crate) unsafe fn free(&self, p: NonNull<u8>, layout: Layout) {
        self.live.add(usize::MAX); // minus one
        let n = lines(layout);
        if let Some(own) = own_block(layout) {
            // SAFETY: the caller's contract: allocated just so in `alloc`.
            unsafe { alloc::dealloc(p.as_ptr(), own) };
            return;
        }
        // SAFETY: the slot is ours again (caller's contract), lines-aligned
        // and at least a line long: its first word can hold the link.
        unsafe {
            p.cast::<Option<NonNull<u8>>>()
                .write(self.free[n - 1].get());
        }
        self.free[n - 1].set(Some(p));
    }

    /// A handle on this pool's live-node count that outlives the pool.
    pub(crate) fn node_count(&self) -> NodeCount {
        NodeCount(StdArc::clone(&self.live))
    }

    /// Bytes of blocks the pool holds (for tests).
    #[cfg(test)]
    pub(crate) fn block_bytes(&self) -> usize {
        let blocks = self.blocks.take();
        let bytes = blocks.iter().map(|(_, l)| l.size()).sum();
        self.blocks.set(blocks);
        bytes
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // (Under loom freed nodes are poisoned and kept, never given back.)
        let live = self.live.get();
        debug_assert!(
            live == 0 || cfg!(loom) || std::thread::panicking(),
            "{live} nodes were never given back to the pool (leaked)"
        );
        for (p, layout) in self.blocks.take() {
            // SAFETY: allocated in `grow` with this layout; the pool's owner
            // frees every node before it drops the pool (nodes are never
            // read past their engine's last version).
            unsafe { alloc::dealloc(p.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_lines_and_recycled_by_size() {
        let pool = Pool::default();
        let small = Layout::from_size_align(40, 8).unwrap();
        let big = Layout::from_size_align(200, 8).unwrap();
        let a = pool.alloc(small);
        let b = pool.alloc(big);
        let c = pool.alloc(small);
        if SYSTEM {
            // SAFETY: each allocated above, freed once.
            unsafe {
                pool.free(a, small);
                pool.free(b, big);
                pool.free(c, small);
            }
            return;
        }
        // Distinct, non-overlapping slots of whole lines.
        for p in [a, b, c] {
            assert_eq!(p.as_ptr() as usize % LINE, 0);
        }
        assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, LINE);
        assert_eq!(c.as_ptr() as usize - b.as_ptr() as usize, 4 * LINE);
        // SAFETY: allocated above, freed once, not used again.
        unsafe { pool.free(a, small) };
        assert_eq!(pool.alloc(small), a, "a freed slot is reused for its size");
        // SAFETY: as above.
        unsafe { pool.free(b, big) };
        let d = pool.alloc(small);
        assert_ne!(d, b, "slots are reused only for their size");
        assert_eq!(pool.alloc(big), b);
        // SAFETY: the four live slots, each freed once.
        unsafe {
            pool.free(a, small);
            pool.free(b, big);
            pool.free(c, small);
            pool.free(d, small);
        }
    }

    #[test]
    fn counts_live_nodes_past_its_own_drop() {
        let pool = Pool::default();
        let count = pool.node_count();
        let layouts =
            [40, 200, MAX_LINES * LINE + 1].map(|n| Layout::from_size_align(n, 8).unwrap());
        let slots: Vec<_> = layouts.iter().map(|&l| (pool.alloc(l), l)).collect();
        assert_eq!(count.live(), 3, "pooled and own-block nodes alike");
        let (p, l) = slots[1];
        // SAFETY: allocated above, freed once.
        unsafe { pool.free(p, l) };
        assert_eq!(count.live(), 2);
        let again = pool.alloc(l);
        assert_eq!(count.live(), 3, "a recycled slot counts again");
        // SAFETY: each live slot freed once.
        unsafe {
            pool.free(again, l);
            pool.free(slots[0].0, slots[0].1);
            pool.free(slots[2].0, slots[2].1);
        }
        drop(pool);
        assert_eq!(count.live(), 0);
    }

    #[test]
    fn grows_in_blocks_and_handles_huge_nodes() {
        let pool = Pool::default();
        let layout = Layout::from_size_align(LINE, 8).unwrap();
        let slots: Vec<_> = (0..1000).map(|_| pool.alloc(layout)).collect();
        let mut sorted: Vec<usize> = slots.iter().map(|p| p.as_ptr() as usize).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000, "every slot distinct");
        if !SYSTEM {
            assert!(pool.block_bytes() >= 1000 * LINE);
        }
        let huge = Layout::from_size_align(MAX_LINES * LINE + 1, 8).unwrap();
        let h = pool.alloc(huge);
        assert!(SYSTEM || h.as_ptr() as usize % LINE == 0);
        // SAFETY: allocated above, each freed once.
        unsafe {
            pool.free(h, huge);
            for p in slots {
                pool.free(p, layout);
            }
        }
    }
}

//! Hazard slots: how one read through `Engine` keeps the latest graph
//! version alive for the length of the call with a single fence.
//!
//! An `ArcSwap` load guard costs two locked instructions (the debt slot's
//! swap, and the compare-and-swap that clears it), which is what a mutex's
//! lock and unlock cost too; measured on `has_subscribers` at 100k threads
//! it made `Engine` 1.1-1.3x a `parking_lot::Mutex<HashMap>`, while the same
//! lookup with one fence per read was 0.85x (benches/HISTORY.md,
//! "`engine_has` brought under the mutex"). A read scoped to one call
//! (`Versions::read`) pins instead: the reading thread publishes the
//! version's address in a slot of its own (a plain store and one `SeqCst`
//! fence), checks that the version is still the latest, reads, and clears
//! the slot with a plain `Release` store. The writer, before dropping a
//! replaced version, looks for its address in every slot ([`holds`]).
//!
//! # The protocol (steps H1-H3; "Reclamation" in `store/mod.rs` builds on it)
//!
//! * **H1, pin** ([`Block::pin`]): store the address `p` read from the cell
//!   in the slot (`Release`), `fence(SeqCst)`, load the cell (`Acquire`);
//!   if it still holds `p`, `p` is pinned, else retry with the new address.
//! * **H2, replace** (`Versions::write`): store the new version's address
//!   in the cell (`Release`), then, before deciding to drop the old version
//!   `old`, `fence(SeqCst)` and load every slot (`Acquire`, [`holds`]); keep
//!   `old` if any slot holds it.
//! * **H3, unpin** ([`Pin`]'s drop): store null in the slot (`Release`).
//!
//! Why a writer that finds no slot holding `old` may drop it: take a reader
//! whose pin returned `old`. Its fence and the writer's are ordered in the
//! single `SeqCst` order. If the reader's came first, the writer's slot load
//! (after its fence) reads the reader's store of `old` or a later store to
//! that slot: reading `old` keeps the version; a later store is the
//! reader's unpin or a later pin's `Release` store, sequenced after every
//! read the reader made through `old`, so the writer's `Acquire` load
//! synchronises with it and those reads happen before the drop. If the
//! writer's fence came first, the reader's cell load (after its fence)
//! reads the writer's store of the new address or a later one, so it is not
//! `old` and the pin retries: it never returned `old`. The address can only
//! come back in the cell after `old` is freed and its memory reused for a
//! newer version, which is then the latest, and the argument repeats for it.
//! The address a pin returns was read from the cell before the pin's
//! `SeqCst` fence (the first load, or the confirming load of the previous
//! round), and that fence is also an acquire fence: the load that read
//! the writer's `Release` store of the address synchronises with it, so
//! everything written into the version before it was published is visible
//! to the reader. (The confirming load's own `Acquire` is therefore not
//! needed; it costs nothing on x86-64 and keeps the step easy to read.)
//!
//! The loom model (`loom_model` below) checks this protocol: the writer's
//! drop of the version is a write that conflicts with every read the
//! reader made through a pin unless the steps above order them, and the
//! new version's contents are written after the reader started. Removing
//! the reader's fence, the writer's fence or scan, or the unpin's
//! `Release` makes it fail. (Weakening the publishing store to `Relaxed`
//! does not: loom orders any two `SeqCst` fences, which C++ does not, so
//! that edge rests on the argument above.) A second model races two
//! claims for one given-back block; it fails if the claim is a load and a
//! store instead of a compare-and-swap.
//!
//! # Slots
//!
//! Each thread claims one [`Block`] of [`SLOTS`] slots from a process-wide
//! [`SlotRegistry`] the first time it pins, and gives it back when it exits. A
//! pin takes the block's first null slot: only the owning thread writes a
//! non-null address to its block, so a null slot is free. Pins nest (a read
//! inside a callback of another read); past [`SLOTS`] nested pins, or while
//! the thread's locals are being torn down, [`pin`] returns `None` and the
//! caller falls back to an `ArcSwap` guard. Blocks are never freed while the
//! registry exists (the process-wide one, never), so a block pointer read
//! from the list stays valid. Only threads that ever pinned have a block,
//! and exited threads' blocks are reused, so the writer's scan covers as
//! many blocks as the most such threads alive at once: one cache line
//! each, the same walk `ArcSwap::swap` makes over its per-thread debt
//! nodes on every write.

use crate::sync::{fence, AtomicBool, AtomicPtr, Ordering};
use std::marker::PhantomData;
use std::ptr;

/// Slots per thread: how deep pins nest before falling back.
pub(super) const SLOTS: usize = 4;

/// One thread's slots, on a cache line of its own (the owner writes it on
/// every read; nobody else writes it).
///
/// Invariants: only the thread that claimed the block (`owned`) stores a
/// non-null address in a slot, and it clears every slot it set before
/// giving the block back; `next` is written only before the block is
/// pushed onto the registry's list.
#[repr(align(64))]
pub(super) struct Block {
    slots: [AtomicPtr<()>; SLOTS],
    owned: AtomicBool,
    next: AtomicPtr<Block>,
}

impl Block {
    fn new() -> Self {
        Block {
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            owned: AtomicBool::new(true),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pins the version `cell` holds (H1) in the first free slot; `None` if
    /// all are taken. Call it only from the thread that owns the block.
    #[inline]
    pub(super) fn pin<'b>(&'b self, cell: &AtomicPtr<()>) -> Option<Pin<'b>> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.load(Ordering::Relaxed).is_null())?;
        let mut p = cell.load(Ordering::Relaxed);
        loop {
            // Release: a writer that reads this store (or a later one of
            // this slot) sees every read made under earlier pins (H2).
            slot.store(p, Ordering::Release);
            fence(Ordering::SeqCst);
            let now = cell.load(Ordering::Acquire);
            if now == p {
                return Some(Pin {
                    slot,
                    ptr: p,
                    _owner: PhantomData,
                });
            }
            p = now;
        }
    }

    /// Gives the block back for another thread to claim. Every slot must
    /// be clear.
    fn give_back(&self) {
        debug_assert!(self
            .slots
            .iter()
            .all(|s| s.load(Ordering::Relaxed).is_null()));
        self.owned.store(false, Ordering::Release);
    }
}

/// A pinned address: the version stays alive until this is dropped (H3).
/// Not `Send`: the slot belongs to the pinning thread.
pub(super) struct Pin<'b> {
    slot: &'b AtomicPtr<()>,
    ptr: *mut (),
    _owner: PhantomData<*const ()>,
}

impl Pin<'_> {
    /// The pinned address (never null: the cell always holds a version).
    #[inline]
    pub(super) fn ptr(&self) -> *mut () {
        self.ptr
    }
}

impl Drop for Pin<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: every read through the pinned version happens before a
        // writer's `Acquire` load that reads this null (H3).
        self.slot.store(ptr::null_mut(), Ordering::Release);
    }
}

/// Every thread's [`Block`]: a push-only list.
///
/// Invariant: every block on the list came from `Box::into_raw` and is
/// freed only by the registry's drop (the list only grows).
pub(super) struct SlotRegistry {
    head: AtomicPtr<Block>,
}

impl SlotRegistry {
    #[cfg(not(loom))]
    const fn new() -> Self {
        SlotRegistry {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A new, empty registry (the loom model's; the process has one).
    #[cfg(loom)]
    pub(super) fn new() -> Self {
        SlotRegistry {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The blocks, newest first.
    fn blocks(&self) -> impl Iterator<Item = &Block> {
        let mut next = self.head.load(Ordering::Acquire);
        std::iter::from_fn(move || {
            // SAFETY: a non-null pointer on the list is a block the
            // registry owns and frees only in its drop (invariant), which
            // cannot run while `&self` lives; its `next` was written before
            // the `AcqRel` compare-and-swap that published it, which the
            // `Acquire` load of `head` above synchronises with (the pushes
            // form one release sequence on `head`).
            let block = unsafe { next.as_ref() }?;
            next = block.next.load(Ordering::Acquire);
            Some(block)
        })
    }

    /// A block for the calling thread: a given-back one, or a new one.
    pub(super) fn claim(&self) -> &Block {
        // Look before the compare-and-swap: a block in use sits on a line
        // its owner writes on every read, which a failed CAS would still
        // take from it.
        if let Some(free) = self.blocks().find(|b| {
            !b.owned.load(Ordering::Relaxed)
                && b.owned
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        }) {
            return free;
        }
        let block = Box::into_raw(Box::new(Block::new()));
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            // SAFETY: `block` is not on the list yet: this thread alone
            // reaches it.
            unsafe { &*block }.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange(head, block, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: on the list now, owned by the registry, which
                // outlives `&self` (invariant).
                Ok(_) => return unsafe { &*block },
                Err(now) => head = now,
            }
        }
    }

    /// Whether a slot pins `p` (H2): the writer calls it after storing the
    /// new version in the cell.
    pub(super) fn holds(&self, p: *mut ()) -> bool {
        fence(Ordering::SeqCst);
        self.blocks()
            .any(|b| b.slots.iter().any(|s| s.load(Ordering::Acquire) == p))
    }
}

impl Drop for SlotRegistry {
    fn drop(&mut self) {
        let mut next = self.head.load(Ordering::Acquire);
        while !next.is_null() {
            // SAFETY: on the list, so from `Box::into_raw` (invariant) and
            // freed once, here; `&mut self`: nobody else can reach it.
            let block = unsafe { Box::from_raw(next) };
            next = block.next.load(Ordering::Relaxed);
        }
    }
}

#[cfg(not(loom))]
mod process {
    use super::{Block, Pin, SlotRegistry};
    use crate::sync::AtomicPtr;
    use std::cell::Cell;

    /// The process's slots (never dropped).
    static REGISTRY: SlotRegistry = SlotRegistry::new();

    /// The calling thread's block, claimed at its first pin and given
    /// back when the thread exits.
    struct Local {
        block: Cell<Option<&'static Block>>,
    }

    impl Drop for Local {
        fn drop(&mut self) {
            if let Some(block) = self.block.get() {
                block.give_back();
            }
        }
    }

    thread_local! {
        static LOCAL: Local = const { Local { block: Cell::new(None) } };
    }

    /// Pins the address `cell` holds for the calling thread (H1); `None`
    /// if the thread's slots are all taken or its locals are gone.
    #[inline]
    pub(in crate::store) fn pin(cell: &AtomicPtr<()>) -> Option<Pin<'static>> {
        let block = LOCAL
            .try_with(|local| match local.block.get() {
                Some(block) => block,
                None => {
                    let block = REGISTRY.claim();
                    local.block.set(Some(block));
                    block
                }
            })
            .ok()?;
        block.pin(cell)
    }

    /// Whether any thread's slot pins `p` (H2).
    pub(in crate::store) fn holds(p: *mut ()) -> bool {
        REGISTRY.holds(p)
    }
}

#[cfg(not(loom))]
pub(super) use process::{holds, pin};

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_model;

//! [`Versions`]: the engine's published graph versions, and the only code
//! that copies the latest roots, publishes a version and frees nodes.
//!
//! The engine reads through [`Versions::read`] (a hazard pin for one call,
//! `hazard/`), [`Versions::load`] and [`Versions::cached`], and
//! writes through [`Versions::write`], which copies the latest roots,
//! hands the copy to the engine inside one [`Txn`], publishes it, retires
//! the version it replaced and collects the nodes no held version can see.
//!
//! # Combining
//!
//! Writes that queue for the writer mutex are published together. Each
//! write still runs on its caller's thread, in its own transaction, one
//! after the other under the mutex; a write that finds another writer
//! waiting for the mutex leaves its committed roots *pending* (unpublished)
//! and sleeps until they are published, and the last write of the group
//! (the one that finds no writer waiting, or the [`GROUP`]th) publishes
//! them all as one version. So a caller's host code runs only on its own
//! thread, a write that panics abandons only its own transaction (the
//! pending roots are as the earlier writes of the group left them), and
//! every caller returns only once its write is published: each write takes
//! effect at its group's publish, within its call, so it stays
//! linearizable.
//!
//! Every transaction gets its own *stamp* (the number its nodes are born
//! with), so a write never changes in place a node an earlier write of its
//! group made: it copies it, as it copies published nodes, and the earlier
//! write's nodes stay as that write committed them. A published version is
//! known to the reclaimer by the stamp of its group's last transaction;
//! no version is published with a stamp between two groups' last, so a
//! node's `[born, died)` in stamps holds exactly the published versions
//! that link it (`store/mod.rs`, "Reclamation", step 5).
//!
//! Liveness: a write defers only if it sees, under the mutex, a writer
//! counted in `waiting` (which counts itself before it blocks on the mutex
//! and uncounts itself once it holds it). That writer takes the mutex after
//! the deferring one releases it, and either publishes the group or defers
//! in turn, so the chain ends with a publish. A write that panics wakes the
//! deferred writers instead, and one that wakes with its group unpublished
//! and no writer waiting publishes the group itself.
//! The cell, the latest roots, the retired versions and the reclaimer are
//! private here, so safe code outside the store cannot share nodes,
//! publish a version the store did not build, or free anything (the proof:
//! "Reclamation" in `store/mod.rs`).

#[cfg(all(test, not(loom)))]
mod tests;
mod writing;

use super::deferred::Deferred;
#[cfg(not(loom))]
use super::hazard;
use super::node::Version;
use super::pool::NodeCount;
use super::publish::{Extra, Keep, Publish};
use super::reclaim::{Reclaimer, Txn};
use super::share::{Share, ShareToken};
use crate::sync::{
    Arc, ArcSwap, AtomicPtr, AtomicUsize, Cached, Condvar, Guard, Mutex, MutexGuard, Ordering,
};
use std::panic::{self, AssertUnwindSafe};
use writing::Writing;

/// Clears the extra state when dropped (see [`Extra::clear`]).
struct Cleared<'a, E: Extra>(&'a mut E);

impl<E: Extra> Drop for Cleared<'_, E> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// The most writes one group publishes together (see "Combining"): bounds
/// how long the first of them waits.
const GROUP: usize = 32;

/// The writer's state, under its mutex.
///
/// Invariants: `latest` holds the roots of the version in the cell, whose
/// number is `version` and whose stamp is `published`; `pending`, if any,
/// holds the roots the writes of the current group committed (built from
/// `latest`, every node they made born after `published`), and `grouped`
/// counts those writes, `deferred` those of them asleep until the publish;
/// `stamp` is the last stamp a transaction got (no node is born later);
/// `retired` holds, with its stamp, every replaced version that a reader
/// may still hold (and maybe some none holds); the reclaimer's nodes are
/// those replaced since, none reachable from `latest` or `pending`.
struct Writer<G: Publish> {
    latest: G::Roots,
    pending: Option<G::Roots>,
    version: Version,
    published: Version,
    stamp: Version,
    grouped: usize,
    deferred: usize,
    retired: Vec<(Version, Arc<G>)>,
    /// A replaced version no reader holds any more, kept whole so that the
    /// next publish reuses its allocation instead of asking the allocator
    /// for an aligned one ("Reclamation", step 8). Its roots are stale and
    /// never read.
    spare: Option<Arc<G>>,
    reclaimer: Reclaimer,
    extra: G::Extra,
}

/// Owns every node: the latest version's (through `latest`) and the
/// replaced ones (through the reclaimer). Every version holds it ([`Keep`]),
/// so it goes, and frees the nodes, only once no version exists.
struct Owner<G: Publish> {
    writer: Mutex<Writer<G>>,
}

impl<G: Publish> Writer<G> {
    /// Takes `replaced` (stamp `number`), just swapped out of the cell,
    /// drops every retired version no reader holds, and frees the nodes
    /// none of the rest can see (their host values go to `later`).
    fn retire(&mut self, number: Version, replaced: Arc<G>, later: &mut Deferred) {
        self.retired.push((number, replaced));
        // Strong count 1 and no hazard slot: only this list holds the
        // version. The cell and its mirror no longer do (both were
        // replaced), every reader that loaded it from the cell before the
        // swap is counted (`swap` paid its debts), and a reader pinning it
        // through the mirror shows in a slot (`hazard/`, H2): nobody can
        // reach it again, and dropping (or reusing, step 8) this last
        // reference happens after every reader's reads of it
        // ("Reclamation", steps 2-4). A pin never
        // becomes a count (`read` lends `&G` only), so the two checks may
        // come in either order.
        let mut i = 0;
        while let Some((_, g)) = self.retired.get(i) {
            if Arc::strong_count(g) > 1 || pinned(Arc::as_ptr(g)) {
                i += 1;
                continue;
            }
            let (_, g) = self.retired.swap_remove(i);
            // The first one becomes the spare (dropped at once otherwise:
            // a version's drop runs no host code).
            if self.spare.is_none() {
                self.spare = Some(g);
            }
        }
        let held = self.retired.iter().map(|&(v, _)| v);
        // SAFETY: the versions a reader may hold are the latest one (in
        // which no retired node is visible) and those still in `retired`,
        // all of which `held` lists, each with the stamp the store gave it
        // when it published it ("Reclamation", step 5).
        unsafe { self.reclaimer.collect(held, later) }
    }
}

impl<G: Publish> Drop for Owner<G> {
    fn drop(&mut self) {
        // Declared before the lock: the host values go after it is released.
        let mut later = Deferred::new();
        let w = &mut *self.writer.lock();
        debug_assert!(w.pending.is_none(), "a group outlived its writers");
        // SAFETY: the owner goes only when no version exists (each holds a
        // `Keep`), so no reader can reach any node ("Reclamation", step 7),
        // and no write follows.
        let mut txn = unsafe { Txn::teardown(&mut w.reclaimer, &mut later) };
        // Frees the latest version's nodes at once; the replaced ones go in
        // the reclaimer's own drop, right after.
        w.latest.release(&mut txn);
    }
}

/// Whether a reader's hazard slot pins the version at `g` (`hazard/`,
/// H2). Loom builds read only through guards (see `Versions::read`).
fn pinned<G>(g: *const G) -> bool {
    #[cfg(not(loom))]
    return hazard::holds(g.cast_mut().cast());
    #[cfg(loom)]
    {
        let _ = g;
        false
    }
}

/// `roots` as version `version`, holding a [`Keep`] of `owner`, in the
/// allocation of `spare` if given (and unshared: it always is, see
/// `Writer::spare`), else in a new one. Called only where no version can
/// be dropped meanwhile (under the writer mutex, or before the first is
/// published): only the writer drops versions while the [`Versions`]
/// exists, so `owner`'s count moves only if `wrap` dropped its `Keep`.
fn wrap<G: Publish>(
    owner: &Arc<Owner<G>>,
    spare: Option<Arc<G>>,
    roots: G::Roots,
    version: Version,
) -> Arc<G> {
    let keep = Keep::new(owner);
    let owners = Arc::strong_count(owner);
    let graph = G::wrap(roots, version, keep);
    assert_eq!(
        Arc::strong_count(owner),
        owners,
        "a published version must keep its `Keep`"
    );
    match spare {
        Some(mut spare) => match Arc::get_mut(&mut spare) {
            Some(place) => {
                // Drops the old version's contents (its `Keep`: never the
                // owner's last reference, the `Versions` holds one).
                *place = graph;
                spare
            }
            None => Arc::new(graph),
        },
        None => Arc::new(graph),
    }
}

/// The engine's graph versions: the cell readers load from and the writer
/// state behind one mutex (see the module docs).
///
/// Invariant: `mirror` holds the address of the version in `cell`, except
/// between the writer's swap of `cell` and its store to `mirror`, when it
/// holds the one just replaced (still alive: the writer holds it).
pub(crate) struct Versions<G: Publish> {
    cell: ArcSwap<G>,
    mirror: Mirror,
    owner: Arc<Owner<G>>,
    /// Writers blocked on (or about to block on) the writer mutex: a
    /// write that sees one defers its publish to it ("Combining").
    waiting: AtomicUsize,
    /// Where deferred writers sleep until their group is published.
    published: Condvar,
}

/// The latest version's address, for [`Versions::read`]'s hazard pins, on
/// lines of its own (readers load it on every read, the writer stores it
/// once per write).
#[repr(align(128))]
struct Mirror(AtomicPtr<()>);

/// The address a version is pinned by.
fn address<G>(g: &Arc<G>) -> *mut () {
    Arc::as_ptr(g).cast_mut().cast()
}

impl<G: Publish> Versions<G> {
    /// An empty graph (`empty` makes its roots: one copy for the writer,
    /// one for version 0), published as version 0, with `extra` kept for
    /// the writer.
    pub(crate) fn new(extra: G::Extra, empty: impl Fn() -> G::Roots) -> Self {
        let owner = Arc::new(Owner {
            writer: Mutex::new(Writer {
                latest: empty(),
                pending: None,
                version: 0,
                published: 0,
                stamp: 0,
                grouped: 0,
                deferred: 0,
                retired: Vec::new(),
                spare: None,
                reclaimer: Reclaimer::default(),
                extra,
            }),
        });
        let first = wrap(&owner, None, empty(), 0);
        Versions {
            mirror: Mirror(AtomicPtr::new(address(&first))),
            cell: ArcSwap::new(first),
            owner,
            waiting: AtomicUsize::new(0),
            published: Condvar::new(),
        }
    }

    /// Runs `read` on the latest version, kept alive for the call by a
    /// hazard pin (`hazard/`: a plain store, one fence, a plain store
    /// after), or by an `ArcSwap` guard where the thread has no free slot
    /// (pins nested more than four deep) and in loom builds. The natural
    /// read of `Engine`: it never writes shared memory.
    #[inline]
    pub(crate) fn read<R>(&self, read: impl FnOnce(&G) -> R) -> R {
        #[cfg(not(loom))]
        if let Some(pin) = hazard::pin(&self.mirror.0) {
            // SAFETY: the mirror holds only addresses of versions this
            // store published (`write`), each kept alive by the cell or the
            // retired list until `Writer::retire` finds no slot pinning it
            // (H2) or the `Versions` goes, which `&self` rules out for this
            // call. `pin` confirmed the address was the latest after
            // publishing it in a slot (H1), so the version stays alive
            // until `pin` drops, after `read` returns; its contents were
            // written before the mirror's `Release` store that the pin's
            // `Acquire` load read.
            return read(unsafe { &*pin.ptr().cast::<G>() });
        }
        read(&self.cell.load())
    }

    /// The latest version, held by an `ArcSwap` load guard (for values
    /// that outlive a call; a read within one call uses [`read`](Self::read)).
    #[inline]
    pub(crate) fn load(&self) -> Guard<Arc<G>> {
        self.cell.load()
    }

    /// A cache of the latest version for one reader (`Reader`).
    pub(crate) fn cached(&self) -> Cached<'_, G> {
        Cached::new(&self.cell)
    }

    /// How many nodes the writer's pool holds (`NodeProbe`). Takes the
    /// writer mutex.
    pub(crate) fn node_count(&self) -> NodeCount {
        self.owner.writer.lock().reclaimer.pool().node_count()
    }

    /// One write, under the writer mutex: `edit` changes a copy of the
    /// latest roots (with the pending writes of its group: see
    /// "Combining") inside one transaction and returns `(changed, output)`;
    /// it must not copy or give up a node unless it changes something. If it
    /// did either, or an earlier write of the group did, the write returns
    /// only once the group is published as the next version: by this
    /// write, or by a later write of the group while this one sleeps. The
    /// publish retires the version it replaced, frees unreachable nodes and
    /// runs the publishing write's `after` on the new version, still under
    /// the mutex (so in publish order), with every write of the group
    /// recorded in the extra state.
    ///
    /// # Host code
    ///
    /// `edit` and `after` may run host code (the keys' `Hash`/`Eq`/`Ord`, a
    /// state's `Default`, a closure). If `edit` panics, its transaction is
    /// abandoned, which frees every node it made and un-retires every node
    /// it replaced (`Txn`), and its part of the extra state is cut off: the
    /// pending roots, the latest version, its number and the retired lists
    /// are as before, and the panic reaches this caller once the mutex is
    /// released. Host values the write gave up (freed nodes' values, values
    /// the edit kept with `Txn::keep_until_unlocked`) are dropped on this
    /// thread after the mutex is released, in the normal case and in the
    /// unwind alike. A write started on a thread that is already inside a
    /// write (host code under the mutex calling a writing method) panics
    /// instead of waiting for itself; that panic unwinds the outer write too.
    pub(crate) fn write<O>(
        &self,
        edit: impl FnOnce(&mut G::Roots, &mut Txn<'_>, &mut G::Extra) -> (bool, O),
        after: impl FnOnce(&G, &mut G::Extra),
    ) -> O {
        // Drop order is the design: `later` is declared first, so it is
        // dropped last, after the mutex guard and the writing mark (both
        // inside the block), in the unwind as in the normal case.
        let mut later = Deferred::new();
        let out = {
            let _writing = Writing::enter();
            let mut guard = self.lock();
            let w = &mut *guard;
            let mark = w.extra.mark();
            w.stamp += 1;
            let base = w.pending.as_ref().unwrap_or(&w.latest);
            let mut next = base.share(&ShareToken(()));
            let mut txn = Txn::new(w.stamp, &mut w.reclaimer, &mut later);
            let extra = &mut w.extra;
            let edited = panic::catch_unwind(AssertUnwindSafe(|| edit(&mut next, &mut txn, extra)));
            match edited {
                Ok((changed, out)) => {
                    let touched = txn.touched();
                    debug_assert!(
                        changed || !touched,
                        "a write that changed nothing copied nodes"
                    );
                    txn.commit();
                    if changed || touched {
                        w.pending = Some(next);
                    }
                    if w.pending.is_some() {
                        self.finish(guard, after, &mut later);
                    }
                    Ok(out)
                }
                Err(panic) => {
                    // Abandoned: frees what it made, un-retires what it
                    // replaced (`Txn`'s drop).
                    drop(txn);
                    w.extra.undo(mark);
                    if w.deferred > 0 {
                        // The group's deferred writers were counting on this
                        // write to publish or defer: one of them takes over.
                        self.published.notify_all();
                    }
                    Err(panic)
                }
            }
        };
        drop(later);
        match out {
            Ok(out) => out,
            Err(panic) => panic::resume_unwind(panic),
        }
    }

    /// The writer mutex, counting this writer in `waiting` while it waits
    /// for it.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Writer<G>> {
        if let Some(guard) = self.owner.writer.try_lock() {
            return guard;
        }
        // Relaxed: read only under the mutex, whose release/acquire orders
        // a writer's uncount before any later holder's read ("Combining";
        // a stale read can only be a count too high for an earlier holder,
        // which waits for a writer that does come).
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let guard = self.owner.writer.lock();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        guard
    }

    /// Ends a write whose group has pending roots: defers the publish to a
    /// writer waiting for the mutex, sleeping until it is done, or
    /// publishes the group now.
    fn finish(
        &self,
        mut guard: MutexGuard<'_, Writer<G>>,
        after: impl FnOnce(&G, &mut G::Extra),
        later: &mut Deferred,
    ) {
        guard.grouped += 1;
        if guard.grouped < GROUP && self.waiting.load(Ordering::Relaxed) > 0 {
            let group = guard.version;
            guard.deferred += 1;
            loop {
                guard = self.published.wait(guard);
                if guard.version != group {
                    return; // published by a later write of the group
                }
                if self.waiting.load(Ordering::Relaxed) == 0 {
                    break; // no writer left to publish it (one panicked)
                }
            }
        }
        self.publish(&mut guard, after, later);
    }

    /// Publishes the pending roots as the next version (one swap), retires
    /// the one it replaces, collects, wakes the group's deferred writers
    /// and runs `after` on the new version.
    fn publish(
        &self,
        w: &mut Writer<G>,
        after: impl FnOnce(&G, &mut G::Extra),
        later: &mut Deferred,
    ) {
        let next = w.pending.take().expect("a group to publish");
        w.version += 1;
        w.latest = next.share(&ShareToken(()));
        let graph = wrap(&self.owner, w.spare.take(), next, w.version);
        let old = self.cell.swap(Arc::clone(&graph));
        // Release: a reader whose pin reads this address sees the
        // version's contents (H1). `retire` fences before its scan (H2).
        self.mirror.0.store(address(&graph), Ordering::Release);
        let replaced = std::mem::replace(&mut w.published, w.stamp);
        w.retire(replaced, old, later);
        w.grouped = 0;
        if w.deferred > 0 {
            // Before `after`, which runs host code (wakers): the deferred
            // writers' wake-up does not depend on it. They run once this
            // writer releases the mutex.
            w.deferred = 0;
            self.published.notify_all();
        }
        let extra = Cleared(&mut w.extra);
        after(&graph, &mut *extra.0);
    }
}

impl<G: Publish> Drop for Versions<G> {
    fn drop(&mut self) {
        // Break the cycle retired version (or spare) -> `Keep` -> owner ->
        // retired list; versions readers still hold keep the owner (and its nodes)
        // alive until they go.
        let (retired, spare) = {
            let mut w = self.owner.writer.lock();
            (std::mem::take(&mut w.retired), w.spare.take())
        };
        drop((retired, spare));
    }
}

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

use super::deferred::Deferred;
#[cfg(not(loom))]
use super::hazard;
use super::node::Version;
use super::pool::NodeCount;
use super::reclaim::{Reclaimer, Txn};
use super::share::{Share, ShareToken};
use crate::sync::{
    Arc, ArcSwap, AtomicPtr, AtomicUsize, Cached, Condvar, Guard, Mutex, MutexGuard, Ordering,
};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

/// The roots of a version (the engine's tries): shared into each new
/// version, released into a teardown when the last version goes.
pub(crate) trait Roots: Share + Send + Sync + 'static {}

/// A published version as readers see it (the engine's `Graph`): the store
/// builds one with [`wrap`](Publish::wrap) for every version it publishes.
pub(crate) trait Publish: Send + Sync + Sized + 'static {
    /// What it is built from.
    type Roots: Roots;
    /// Writer state kept under the writer mutex with the roots (the
    /// engine's change buffer): what a group of writes records for its
    /// publish.
    type Extra: Extra;

    /// Version `version` of the graph, made of `roots`. It must keep `keep`
    /// for as long as it exists: `keep` keeps the nodes `roots` points to
    /// alive (the store checks that it was not dropped).
    fn wrap(roots: Self::Roots, version: Version, keep: Keep) -> Self;
}

/// What the writes of a group record for their publish (the engine's
/// changes and watch flips): each write appends to it, an abandoned write's
/// part is cut off again, and the publish's `after` empties it.
pub(crate) trait Extra: Send + 'static {
    /// Where a write's part begins.
    type Mark: Copy;
    /// The current end: where the next write's part begins.
    fn mark(&self) -> Self::Mark;
    /// Cuts off everything recorded after `mark` (an abandoned write's part).
    fn undo(&mut self, mark: Self::Mark);
    /// Empties it once its version is published and `after` has run (on an
    /// unwind out of `after` too, so that nothing of it reaches the next
    /// version's publish).
    fn clear(&mut self);
}

impl Extra for () {
    type Mark = ();
    fn mark(&self) {}
    fn undo(&mut self, (): ()) {}
    fn clear(&mut self) {}
}

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

/// Keeps every node of a [`Versions`] alive: each published version holds
/// one, so the nodes outlive every version (and every reader). A reference
/// to the versions' owner with its type erased (two words, no allocation),
/// so that the version type can hold it without naming itself.
///
/// Invariant: `owner` came from `Arc::into_raw` on an `Arc<Owner<G>>`, for
/// the `G` that `release` was instantiated with, and this value owns that
/// reference.
pub(crate) struct Keep {
    owner: NonNull<()>,
    release: unsafe fn(NonNull<()>),
}

// SAFETY: `Keep` is an owned `Arc<Owner<G>>`, and `Owner<G>` is `Send +
// Sync` (a mutex around `Send` state); dropping it from any thread is what
// dropping the `Arc` would be.
unsafe impl Send for Keep {}
// SAFETY: `&Keep` gives access to nothing.
unsafe impl Sync for Keep {}

impl Keep {
    fn new<G: Publish>(owner: &Arc<Owner<G>>) -> Self {
        // What `Keep`'s `Send` and `Sync` rest on, checked for this `G`.
        const fn send_sync<T: Send + Sync>() {}
        const { send_sync::<Owner<G>>() };
        /// # Safety
        ///
        /// `p` came from `Arc::into_raw` on an `Arc<Owner<G>>`, and the
        /// reference it stands for is not used again.
        unsafe fn release<G: Publish>(p: NonNull<()>) {
            // SAFETY: the caller's contract.
            drop(unsafe { Arc::from_raw(p.as_ptr().cast_const().cast::<Owner<G>>()) });
        }
        let raw = Arc::into_raw(Arc::clone(owner)).cast_mut().cast::<()>();
        Keep {
            owner: NonNull::new(raw).expect("an `Arc` is never null"),
            release: release::<G>,
        }
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        // SAFETY: the invariant; the reference is given up once, here.
        unsafe { (self.release)(self.owner) }
    }
}

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

/// Marks the calling thread as inside a write for as long as it lives, so
/// that a nested write (host code run under the writer mutex calling a
/// writing method of any engine) panics instead of deadlocking or
/// interleaving two transactions on one thread.
struct Writing(());

#[cfg(not(loom))]
thread_local! {
    static WRITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Writing {
    #[inline]
    fn enter() -> Self {
        #[cfg(not(loom))]
        {
            let nested = WRITING.try_with(|w| w.replace(true)).unwrap_or(false);
            assert!(
                !nested,
                "a writing method of a switchboard engine was called from host code \
                 running inside a write (a key's Hash/Eq/Ord, a state's Default, a \
                 closure): it would wait for itself"
            );
        }
        Writing(())
    }
}

impl Drop for Writing {
    #[inline]
    fn drop(&mut self) {
        #[cfg(not(loom))]
        let _ = WRITING.try_with(|w| w.set(false));
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::store::set::SubscriberSet;
    use crate::store::trie::Trie;

    type Sets = Trie<u64, SubscriberSet<u64>>;

    impl Roots for Sets {}

    /// A version as the engine's `Graph` is: roots, number, `Keep`.
    struct TestGraph {
        sets: Sets,
        version: Version,
        _keep: Keep,
    }

    impl Publish for TestGraph {
        type Roots = Sets;
        type Extra = ();

        fn wrap(sets: Sets, version: Version, keep: Keep) -> Self {
            TestGraph {
                sets,
                version,
                _keep: keep,
            }
        }
    }

    /// Adds `n` members to the set of `key` (a tree beyond 4).
    fn fill(v: &Versions<TestGraph>, key: u64, n: u64) {
        v.write(
            |sets, txn, ()| {
                for c in 0..n {
                    match sets.get_mut(&key, txn) {
                        Some(set) => {
                            set.insert(c, txn);
                        }
                        None => {
                            sets.insert(key, SubscriberSet::one(c), txn);
                        }
                    }
                }
                (true, ())
            },
            |_, ()| {},
        );
    }

    #[test]
    fn teardown_frees_every_node_after_the_last_version() {
        let v = Versions::<TestGraph>::new((), Trie::new);
        let nodes = v.node_count();
        for key in 0..40 {
            fill(&v, key, 30);
        }
        let held = Arc::clone(&*v.load());
        // Remove, replace and remove-and-read sets that are trees.
        let read = v.write(
            |sets, txn, ()| {
                let removed = sets.remove(&1, txn).expect("present");
                assert!(removed.is_empty(), "a removed value comes back released");
                let replaced = sets.insert(2, SubscriberSet::one(7), txn);
                assert!(replaced.is_some_and(|s| s.is_empty()));
                let len = sets.remove_with(&3, txn, |set, _| set.len());
                (true, len)
            },
            |_, ()| {},
        );
        assert_eq!(read, Some(30));
        assert!(nodes.live() > 0);
        drop(v);
        // The held version still reads its sets: nothing was freed under it.
        assert_eq!(held.sets.get(&1).map(|s| s.iter().count()), Some(30));
        assert_eq!(held.version, 40);
        assert!(nodes.live() > 0);
        drop(held);
        assert_eq!(nodes.live(), 0, "the last version frees every node");
    }

    /// A version type that loses its `Keep`: the store refuses to publish it.
    struct Forgetful;

    impl Publish for Forgetful {
        type Roots = Sets;
        type Extra = ();

        fn wrap(_: Sets, _: Version, _: Keep) -> Self {
            Forgetful
        }
    }

    #[test]
    #[should_panic(expected = "must keep its `Keep`")]
    fn a_version_that_drops_its_keep_is_not_published() {
        let _ = Versions::<Forgetful>::new((), Trie::new);
    }
}

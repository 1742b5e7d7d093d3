//! Benchmarks of switchboard against the designs it replaces, and the `sim`
//! host that runs a scripted app-server workload on three of them.
//!
//! Every design implements one [`Registry`] trait, so the criterion groups
//! (`benches/registry.rs`), the `targets` and `memory` binaries and the
//! tests run the same workload under the same names on each:
//!
//! | name | design |
//! |---|---|
//! | `switchboard` | [`switchboard_core::Engine`] ([`designs::Switchboard`]) |
//! | `reference` | one `tokio::sync::Mutex` over the three maps, as the reference app server ([`designs::Reference`]) |
//! | `pl_mutex` | `parking_lot::Mutex<maps>` ([`designs::PlMutex`]) |
//! | `rwlock` | `std::sync::RwLock<maps>` ([`designs::StdRwLock`]) |
//! | `dashmap` | three `DashMap`s ([`designs::Dash`]) |
//! | `arcswap_clone` | `ArcSwap<maps>`, cloning the whole graph per write ([`designs::ArcSwapClone`]) |
//!
//! The baselines keep the per-thread entry the reference design keeps (an
//! `Arc`'d, mutex-guarded [`designs::State`] plus a has-subscribers watch),
//! so their memory and write figures compare like with like with
//! switchboard's `ThreadEntry`.
//!
//! # Example
//!
//! ```
//! use switchboard_benches::designs::{PlMutex, Switchboard};
//! use switchboard_benches::Registry;
//!
//! fn fan_out<R: Registry>() -> Vec<u64> {
//!     let r = R::new();
//!     r.connect(1, 0);
//!     r.connect(2, 0);
//!     assert!(r.subscribe(10, 1).is_some());
//!     assert!(r.subscribe(10, 2).is_some());
//!     assert!(r.subscribe(10, 3).is_none()); // 3 is not connected
//!     let mut seen = Vec::new();
//!     r.for_each_subscriber(10, |c| seen.push(c));
//!     seen.sort();
//!     seen
//! }
//!
//! assert_eq!(fan_out::<Switchboard>(), [1, 2]);
//! assert_eq!(fan_out::<PlMutex>(), [1, 2]);
//! ```

pub mod alloc;
pub mod designs;
pub mod hist;
pub mod measure;
pub mod sim;
pub mod workload;

/// What one reader thread holds while it reads a [`Registry`]: the per-thread
/// read handle a host would give each of its worker threads.
pub trait ReadHandle {
    /// Calls `f` with each subscriber of `t`, on one consistent view (as
    /// [`Registry::for_each_subscriber`]).
    fn for_each_subscriber(&mut self, t: u64, f: impl FnMut(u64));
}

/// The read handle of a design with no per-thread read state: every read
/// goes through the shared registry.
#[derive(Debug)]
pub struct Direct<'a, R>(pub &'a R);

impl<R: Registry> ReadHandle for Direct<'_, R> {
    #[inline]
    fn for_each_subscriber(&mut self, t: u64, f: impl FnMut(u64)) {
        self.0.for_each_subscriber(t, f);
    }
}

/// One subscription-registry design under test.
///
/// Ids are `u64`s (thread ids `t`, connection ids `c`); capability bits are
/// a plain `u64`. Every method takes `&self` and may be called from any
/// thread. Each implementation gives the same atomicity as switchboard where
/// its design allows (see each type's docs).
pub trait Registry: Send + Sync + 'static {
    /// The name used in benchmark ids and tables.
    const NAME: &'static str;

    /// The per-thread handle `subscribe` returns (an `Arc` in every design).
    type Entry: Send + Sync + 'static;

    /// An empty registry.
    fn new() -> Self;

    /// Marks `c` live with `caps`; `true` if it was not live before.
    fn connect(&self, c: u64, caps: u64) -> bool;

    /// Drops `c` and its subscriptions; returns the threads left with no
    /// subscriber, ascending. Unknown `c`: empty.
    fn disconnect(&self, c: u64) -> Vec<u64>;

    /// Subscribes `c` to `t`, creating the thread's entry if needed, and
    /// returns the entry; `None` (and no change) if `c` is not live.
    fn subscribe(&self, t: u64, c: u64) -> Option<Self::Entry>;

    /// Removes the edge `t`–`c`; `true` iff it existed.
    fn unsubscribe(&self, t: u64, c: u64) -> bool;

    /// Calls `f` with each subscriber of `t`, on one consistent view, without
    /// allocating where the design allows.
    fn for_each_subscriber(&self, t: u64, f: impl FnMut(u64));

    /// The per-thread read handle reader loops use ([`Direct`] where the
    /// design has none).
    type Reader<'a>: ReadHandle
    where
        Self: 'a;

    /// A read handle for the calling thread.
    fn reader(&self) -> Self::Reader<'_>;

    /// Checks that the indexes mirror each other and that no edge names a
    /// dead connection. Call it when no write is running.
    ///
    /// # Errors
    ///
    /// A description of the first violation found.
    fn validate(&self) -> Result<(), String>;

    /// Connects `conns` (`(c, caps)`) and then adds `edges` (`(t, c)`).
    /// Designs whose single writes are expensive in bulk (a whole-graph
    /// clone) override it to build once; the result is the same graph.
    fn populate(&self, conns: &[(u64, u64)], edges: &[(u64, u64)]) {
        for &(c, caps) in conns {
            self.connect(c, caps);
        }
        for &(t, c) in edges {
            let _ = self.subscribe(t, c);
        }
    }
}

/// Runs `$body` once for every design, with `$r` bound to the design's type
/// (the list every bench and binary iterates, in table order).
#[macro_export]
macro_rules! for_each_design {
    ($r:ident => $body:block) => {{
        {
            type $r = $crate::designs::Switchboard;
            $body
        }
        {
            type $r = $crate::designs::Reference;
            $body
        }
        {
            type $r = $crate::designs::PlMutex;
            $body
        }
        {
            type $r = $crate::designs::StdRwLock;
            $body
        }
        {
            type $r = $crate::designs::Dash;
            $body
        }
        {
            type $r = $crate::designs::ArcSwapClone;
            $body
        }
    }};
}

/// The design names, in table order.
pub const DESIGNS: [&str; 6] = [
    "switchboard",
    "reference",
    "pl_mutex",
    "rwlock",
    "dashmap",
    "arcswap_clone",
];

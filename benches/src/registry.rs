//! [`Registry`]: the trait every design implements, its per-thread
//! [`ReadHandle`], and the list of designs ([`DESIGNS`],
//! [`for_each_design!`](crate::for_each_design)) every bench and binary
//! iterates.

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

//! The reconnect storm: a deploy or a network blip drops every client, and
//! every client comes back at once. Every connection disconnects, then
//! reconnects and resubscribes to its threads, from two writer threads,
//! while one reader fans out over the threads the whole time.
//!
//! Shared by the `storm` criterion group and the `targets` binary. Sizes
//! are a fifth of the (20k connections with 8 subscriptions each
//! over 4k threads, not 100k over 20k) so that a run fits a 2-core machine.
//! The designs write one call at a time ([`singles`]); switchboard also
//! with each resume as one `Engine::batch` and the disconnects in batches
//! of [`DISCONNECT_BATCH`] ([`batches`]).

use crate::designs::Engine;
use crate::hist::Histogram;
use crate::Registry;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchboard_core::Caps;

/// Connections.
pub const CONNS: u64 = 20_000;
/// Subscriptions per connection.
pub const SUBS: u64 = 8;
/// Threads the subscriptions spread over.
pub const THREADS: u64 = 4_000;
/// Writer threads.
pub const WRITERS: u64 = 2;
/// Disconnects per batch in the batched storm.
pub const DISCONNECT_BATCH: u64 = 64;

/// The threads connection `c` follows: 8 distinct ones.
fn plan(c: u64) -> impl Iterator<Item = u64> {
    (0..SUBS).map(move |k| (c + k * (THREADS / SUBS)) % THREADS)
}

/// Every connection with its subscriptions.
pub fn build<R: Registry>() -> R {
    let r = R::new();
    let conns: Vec<(u64, u64)> = (0..CONNS).map(|c| (c, 0)).collect();
    let edges: Vec<(u64, u64)> = (0..CONNS)
        .flat_map(|c| plan(c).map(move |t| (t, c)))
        .collect();
    r.populate(&conns, &edges);
    r
}

/// One storm over `r`: `writer(r, w)` for each writer, while a reader fans
/// out; the storm's wall time, the reader's latencies added to `reads`.
pub fn run<R: Registry>(r: &R, reads: &mut Histogram, writer: impl Fn(&R, u64) + Sync) -> Duration {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut h = Histogram::new();
            let mut t = 0;
            // Relaxed: a stop flag polled in a loop.
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                r.for_each_subscriber(t, |c| {
                    black_box(c);
                });
                h.record(start.elapsed());
                t = (t + 1) % THREADS;
            }
            h
        });
        let start = Instant::now();
        std::thread::scope(|w| {
            for i in 0..WRITERS {
                let writer = &writer;
                w.spawn(move || writer(r, i));
            }
        });
        let took = start.elapsed();
        done.store(true, Ordering::Relaxed);
        reads.merge(&reader.join().expect("the reader"));
        took
    })
}

/// The connections writer `w` handles.
fn mine(w: u64) -> impl Iterator<Item = u64> {
    (w..CONNS).step_by(WRITERS as usize)
}

/// Writer `w`'s part of a storm, one call at a time.
pub fn singles<R: Registry>(r: &R, w: u64) {
    for c in mine(w) {
        r.disconnect(c);
    }
    for c in mine(w) {
        r.connect(c, 0);
        for t in plan(c) {
            black_box(r.subscribe(t, c));
        }
    }
}

/// Writer `w`'s part of a storm through switchboard's batches: disconnects
/// [`DISCONNECT_BATCH`] to a batch, each resume one batch.
pub fn batches(e: &Engine, w: u64) {
    let all: Vec<u64> = mine(w).collect();
    for chunk in all.chunks(DISCONNECT_BATCH as usize) {
        e.batch(|b| {
            for &c in chunk {
                b.disconnect(c);
            }
        });
    }
    for &c in &all {
        e.batch(|b| {
            b.connect(c, Caps::NONE);
            for t in plan(c) {
                black_box(b.subscribe(t, c).is_ok());
            }
        });
    }
}

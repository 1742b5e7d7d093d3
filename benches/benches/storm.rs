//! The reconnect storm: a deploy or a network blip drops every client, and
//! every client comes back at once. Every connection disconnects, then
//! reconnects and resubscribes to its threads, from two writer threads,
//! while one reader fans out over the threads the whole time.
//!
//! Designs: switchboard one call at a time (`switchboard_singles`),
//! switchboard with each resume as one `Engine::batch` and the disconnects
//! in batches of 64 (`switchboard_batches`), and the `parking_lot::Mutex`
//! and dashmap designs one call at a time (what their APIs offer). Sizes
//! are a fifth of the issue's (20k connections with 8 subscriptions each
//! over 4k threads, not 100k over 20k) so that a run fits a 2-core machine.
//! The time is the storm's wall time; after each design the reader's p99
//! over every storm of the run is printed.
//!
//! ```text
//! cargo bench -p switchboard-benches --bench storm
//! ```
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use switchboard_benches::designs::{Dash, Engine, PlMutex, Switchboard};
use switchboard_benches::hist::{fmt_ns, Histogram};
use switchboard_benches::Registry;
use switchboard_core::Caps;

const CONNS: u64 = 20_000;
const SUBS: u64 = 8;
const THREADS: u64 = 4_000;
const WRITERS: u64 = 2;
/// Disconnects per batch in the batched storm.
const DISCONNECT_BATCH: u64 = 64;

/// The threads connection `c` follows: 8 distinct ones.
fn plan(c: u64) -> impl Iterator<Item = u64> {
    (0..SUBS).map(move |k| (c + k * (THREADS / SUBS)) % THREADS)
}

/// Every connection with its subscriptions.
fn build<R: Registry>() -> R {
    let r = R::new();
    let conns: Vec<(u64, u64)> = (0..CONNS).map(|c| (c, 0)).collect();
    let edges: Vec<(u64, u64)> = (0..CONNS)
        .flat_map(|c| plan(c).map(move |t| (t, c)))
        .collect();
    r.populate(&conns, &edges);
    r
}

/// One storm: `writer(w)` for each writer, while a reader fans out; the
/// storm's wall time, the reader's latencies added to `reads`.
fn storm(
    reads: &mut Histogram,
    fan_out: impl Fn(u64) + Sync,
    writer: impl Fn(u64) + Sync,
) -> Duration {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut h = Histogram::new();
            let mut t = 0;
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                fan_out(t);
                h.record(start.elapsed());
                t = (t + 1) % THREADS;
            }
            h
        });
        let start = Instant::now();
        std::thread::scope(|w| {
            for i in 0..WRITERS {
                let writer = &writer;
                w.spawn(move || writer(i));
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

fn singles<R: Registry>(r: &R, w: u64) {
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

fn batches(e: &Engine, w: u64) {
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

fn bench_design<R: Registry>(
    c: &mut Criterion,
    name: &str,
    writer: impl Fn(&R, u64) + Sync + Copy,
) {
    let mut g = c.benchmark_group("reconnect_storm");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    let mut built: Option<R> = None;
    let mut reads = Histogram::new();
    g.bench_function(BenchmarkId::new(name, CONNS), |b| {
        let r = built.get_or_insert_with(build::<R>);
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    storm(
                        &mut reads,
                        |t| {
                            r.for_each_subscriber(t, |c| {
                                black_box(c);
                            })
                        },
                        |w| writer(r, w),
                    )
                })
                .sum()
        });
    });
    g.finish();
    if let Some(r) = built {
        if let Err(e) = r.validate() {
            panic!("{name}: invalid graph after the storms: {e}");
        }
    }
    if !reads.is_empty() {
        eprintln!(
            "reconnect_storm/{name}: reader p50 {} p99 {} over {} reads",
            fmt_ns(reads.quantile_ns(0.5)),
            fmt_ns(reads.quantile_ns(0.99)),
            reads.len()
        );
    }
}

fn reconnect_storm(c: &mut Criterion) {
    bench_design::<Switchboard>(c, "switchboard_singles", singles::<Switchboard>);
    bench_design::<Switchboard>(c, "switchboard_batches", |r, w| batches(&r.0, w));
    bench_design::<PlMutex>(c, "pl_mutex", singles::<PlMutex>);
    bench_design::<Dash>(c, "dashmap", singles::<Dash>);
}

criterion_group! {
    name = groups;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = reconnect_storm
}
criterion_main!(groups);

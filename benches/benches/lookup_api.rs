//! The `lookup_api` group: every read path of switchboard's public API
//! (through `Engine`, a held `Snapshot` and a per-thread `Reader`, each
//! with `subscribers(t).iter()`, `for_each_subscriber`, `has_subscribers`
//! and `first_subscriber_with`) beside the same read on a
//! `parking_lot::Mutex` over the baseline maps, on the standard workload at
//! 1k / 10k / 100k threads (4 subscribers each, a random thread per
//! lookup). Beside `for_each_subscriber`, the fan-out with connection data
//! (`for_each_subscriber_data`, `engine_for_each_data` and
//! `reader_for_each_data`) on an engine built from the same workload whose
//! connections each carry an `Arc` of a small struct (an outbox handle, as a
//! gateway keeps), the visit reading a field through it. Then one and two readers on a thread of 100 subscribers through
//! `subscribers(t)`: the aggregate time per lookup, so the scaling ratio is
//! the `1_reader` time / the `2_readers` time.
//!
//! ```text
//! cargo bench -p switchboard-benches --bench lookup_api
//! cargo bench -p switchboard-benches --bench lookup_api -- --quick   # a smoke run
//! ```
//!
//! Ids are `lookup_api/PATH/THREADS` (PATH: `engine_iter`,
//! `snapshot_for_each`, `reader_first_with`, `pl_mutex_has`, ...) and
//! `lookup_api/big_thread_PATH/READERS`.
#![allow(missing_docs)]

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};
use switchboard_benches::designs::{Engine, PlMutex, Switchboard};
use switchboard_benches::workload::{thread_id, Rng, Workload, ATTEST};
use switchboard_core::Caps;

/// What a gateway keeps per connection: a handle to its outbox.
struct Outbox {
    id: u64,
}

/// The benches' engine, carrying an outbox per connection.
type DataEngine = switchboard_core::Engine<
    u64,
    u64,
    switchboard_benches::designs::HostState,
    switchboard_benches::designs::Cmd,
    Arc<Outbox>,
>;

/// `w`'s graph, built in the same order as `Workload::build`, each
/// connection with its own outbox.
fn with_data(w: &Workload) -> DataEngine {
    let engine = DataEngine::new();
    let spare = w.spare.iter().map(|&c| (c, 0));
    for (c, caps) in w.conns.iter().copied().chain(spare) {
        engine.connect_with(c, Caps(caps), Arc::new(Outbox { id: c }));
    }
    for &(t, c) in &w.edges {
        let _ = engine.subscribe(t, c);
    }
    engine
}

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Subscribers of the one thread the two-reader rows read.
const BIG: usize = 100;

/// Benchmarks `read` (a read of one thread, folded into a value for
/// `black_box`) on random threads among `n`, as `name/n`.
fn path(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: usize,
    mut read: impl FnMut(u64) -> u64,
) {
    g.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_custom(|iters| {
            let mut rng = Rng::new(1);
            let start = Instant::now();
            for _ in 0..iters {
                black_box(read(thread_id(rng.below(n))));
            }
            start.elapsed()
        });
    });
}

#[inline]
fn sum(acc: u64, c: u64) -> u64 {
    acc.wrapping_add(c)
}

/// Every read path at `n` threads.
fn paths(g: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    let w = Workload::standard(n);
    let Switchboard(engine) = w.build::<Switchboard>();
    let mutex = w.build::<PlMutex>();
    let e = &engine;
    let attest = Caps(ATTEST);
    path(g, "engine_iter", n, |t| {
        e.subscribers(t).iter().fold(0, sum)
    });
    path(g, "engine_for_each", n, |t| {
        let mut acc = 0;
        e.for_each_subscriber(t, |c| acc = sum(acc, c));
        acc
    });
    let data = with_data(&w);
    let d = &data;
    path(g, "engine_for_each_data", n, |t| {
        let mut acc = 0;
        d.for_each_subscriber_data(t, |c, o| acc = sum(acc, c ^ o.id));
        acc
    });
    path(g, "engine_has", n, |t| u64::from(e.has_subscribers(t)));
    path(g, "engine_first_with", n, |t| {
        e.first_subscriber_with(t, attest).unwrap_or(0)
    });
    // A snapshot held across the reads, as a request handler holds one.
    let s = &engine.snapshot();
    path(g, "snapshot_iter", n, |t| {
        s.subscribers(t).iter().fold(0, sum)
    });
    path(g, "snapshot_for_each", n, |t| {
        let mut acc = 0;
        s.for_each_subscriber(t, |c| acc = sum(acc, c));
        acc
    });
    path(g, "snapshot_has", n, |t| u64::from(s.has_subscribers(t)));
    path(g, "snapshot_first_with", n, |t| {
        s.first_subscriber_with(t, attest).unwrap_or(0)
    });
    let mut r = engine.reader();
    path(g, "reader_iter", n, |t| {
        r.subscribers(t).iter().fold(0, sum)
    });
    path(g, "reader_for_each", n, |t| {
        let mut acc = 0;
        r.for_each_subscriber(t, |c| acc = sum(acc, c));
        acc
    });
    let mut rd = data.reader();
    path(g, "reader_for_each_data", n, |t| {
        let mut acc = 0;
        rd.for_each_subscriber_data(t, |c, o| acc = sum(acc, c ^ o.id));
        acc
    });
    path(g, "reader_has", n, |t| u64::from(r.has_subscribers(t)));
    path(g, "reader_first_with", n, |t| {
        r.first_subscriber_with(t, attest).unwrap_or(0)
    });
    let m = &mutex;
    path(g, "pl_mutex_for_each", n, |t| {
        let mut acc = 0;
        m.read(|maps| maps.visit(t, |c| acc = sum(acc, c)));
        acc
    });
    path(g, "pl_mutex_has", n, |t| {
        u64::from(m.read(|maps| maps.threads.get(&t).is_some_and(|s| !s.subs.is_empty())))
    });
    path(g, "pl_mutex_first_with", n, |t| {
        m.read(|maps| maps.first_subscriber_with(t, ATTEST))
            .unwrap_or(0)
    });
}

/// `iters` reads of thread `t` through `subscribers(t)`, timed.
type ReadLoop = fn(&Engine, u64, u64) -> Duration;

fn lookup_api(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup_api");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        paths(&mut g, n);
    }
    // One thread of `BIG` subscribers, read by one and by two threads at
    // once through `subscribers(t)`: a shared write per read (a reference
    // count every reader bumps) would show as a 2-reader time near the
    // 1-reader one instead of half of it.
    let w = Workload::big_thread(BIG);
    let Switchboard(engine) = w.build::<Switchboard>();
    let t = w.threads[0];
    let readers: [(&str, ReadLoop); 2] = [
        ("big_thread_engine_iter", |e, t, iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(
                    e.subscribers(black_box(t))
                        .iter()
                        .fold(0u64, u64::wrapping_add),
                );
            }
            start.elapsed()
        }),
        ("big_thread_reader_iter", |e, t, iters| {
            let mut r = e.reader();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(
                    r.subscribers(black_box(t))
                        .iter()
                        .fold(0u64, u64::wrapping_add),
                );
            }
            start.elapsed()
        }),
    ];
    for (name, read) in readers {
        for (k, label) in [(1usize, "1_reader"), (2, "2_readers")] {
            g.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter_custom(|iters| in_parallel(k, || read(&engine, t, iters)) / k as u32);
            });
        }
    }
    g.finish();
}

/// Runs `read` on `k` threads at once; the slowest one's time.
fn in_parallel(k: usize, read: impl Fn() -> Duration + Sync) -> Duration {
    let start = Barrier::new(k);
    thread::scope(|s| {
        let handles: Vec<_> = (0..k)
            .map(|_| {
                let (start, read) = (&start, &read);
                s.spawn(move || {
                    start.wait();
                    read()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader panicked"))
            .max()
            .unwrap_or_default()
    })
}

criterion_group! {
    name = groups;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = lookup_api
}
criterion_main!(groups);

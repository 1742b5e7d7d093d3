//! The criterion groups: every design (`switchboard_benches::DESIGNS`) on the
//! same workloads at 1k / 10k / 100k threads (4 subscribers each, N/2
//! connections), under the same benchmark names, so one run compares them
//! side by side.
//!
//! ```text
//! cargo bench -p switchboard-benches                       # everything
//! cargo bench -p switchboard-benches -- lookup_2_readers   # one group
//! cargo bench -p switchboard-benches -- 'lookup/switchboard'
//! ```
//!
//! Ids are `GROUP/DESIGN/THREADS` (`lookup_under_churn/DESIGN/flat_out/N`).
//! Every group measures through `iter_custom` with the loops in
//! `switchboard_benches::measure`, which the `targets` binary shares.
#![allow(missing_docs)]

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use std::time::Duration;
use switchboard_benches::hist::fmt_ns;
use switchboard_benches::measure::{self, Pace};
use switchboard_benches::workload::Workload;
use switchboard_benches::{for_each_design, Registry};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const JOIN_SIZES: [usize; 3] = [10, 10_000, 100_000];
const PACED: u64 = 250_000;
const FEED_SIZES: [usize; 2] = [1_000, 100_000];

/// Benchmarks `f(registry, workload, iters)` for design `R` as `id`,
/// building the registry once, on the first call (so a filtered-out
/// benchmark builds nothing). `first` runs once after the build.
fn bench<R: Registry>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    w: &Workload,
    f: impl Fn(&R, &Workload, u64) -> Duration,
    first: impl Fn(&R, &Workload),
) {
    let mut built: Option<R> = None;
    g.bench_function(id, |b| {
        let r = built.get_or_insert_with(|| {
            let r = w.build();
            first(&r, w);
            r
        });
        b.iter_custom(|iters| f(r, w, iters));
    });
    if let Some(r) = built {
        if let Err(e) = r.validate() {
            panic!("{}: invalid graph after the benchmark: {e}", R::NAME);
        }
    }
}

fn nothing<R>(_: &R, _: &Workload) {}

/// 1. Fan-out visit of one random thread, one reader, through each design's
///    per-thread read handle.
fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let w = Workload::standard(n);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(R::NAME, n), &w,
                |r, w, iters| measure::lookups(r, w, iters, 1), nothing);
        });
        // switchboard without a per-thread `Reader` (every other design
        // reads the same way through its handle or without one).
        bench::<switchboard_benches::designs::Switchboard>(
            &mut g,
            BenchmarkId::new("switchboard_engine", n),
            &w,
            |r, w, iters| measure::lookups_direct(r, w, iters, 1),
            nothing,
        );
    }
    g.finish();
}

/// 2. Two readers at once; the time is the aggregate time per lookup, so
///    the scaling ratio is `lookup` time / this time.
fn lookup_2_readers(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup_2_readers");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let w = Workload::standard(n);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(R::NAME, n), &w,
                |r, w, iters| measure::lookups_parallel(r, w, 2, iters) / 2, nothing);
        });
    }
    g.finish();
}

/// Prints the reader's p99 under a flat-out writer (criterion reports
/// means, not tails).
fn print_churn_p99<R: Registry>(r: &R, w: &Workload) {
    let iters = 200_000;
    let (h, churn) = measure::with_churn(r, w, Pace::FlatOut, || {
        measure::lookups_timed(r, w, iters, 9)
    });
    println!(
        "lookup_under_churn/{}/flat_out/{}: reader p50 {} p99 {} p99.9 {} ({} lookups timed one by one, writer {:.0}k writes/s)",
        R::NAME,
        w.threads.len(),
        fmt_ns(h.quantile_ns(0.5)),
        fmt_ns(h.quantile_ns(0.99)),
        fmt_ns(h.quantile_ns(0.999)),
        h.len(),
        churn.rate() / 1e3,
    );
}

/// 3. One reader while one writer subscribes/unsubscribes, flat out and
///    paced at 250k writes/s. Compare with `lookup` for the share of its
///    solo throughput the reader keeps.
fn lookup_under_churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup_under_churn");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let w = Workload::standard(n);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(format!("{}/flat_out", R::NAME), n), &w,
                |r, w, iters| measure::with_churn(r, w, Pace::FlatOut, || measure::lookups(r, w, iters, 2)).0,
                print_churn_p99::<R>);
            bench::<R>(&mut g, BenchmarkId::new(format!("{}/250k_per_s", R::NAME), n), &w,
                |r, w, iters| measure::with_churn(r, w, Pace::PerSecond(PACED), || measure::lookups(r, w, iters, 3)).0,
                nothing);
        });
    }
    g.finish();
}

/// 4. A subscribe+unsubscribe pair, and a connection cycle (connect, 4
///    subscribes, disconnect).
fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscribe_unsubscribe");
    g.sampling_mode(SamplingMode::Flat);
    for n in SIZES {
        let w = Workload::standard(n);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(R::NAME, n), &w,
                |r, w, iters| measure::pairs(r, w, iters, 4), nothing);
        });
    }
    g.finish();
    let mut g = c.benchmark_group("connection_cycle");
    g.sampling_mode(SamplingMode::Flat);
    for n in SIZES {
        let w = Workload::standard(n);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(R::NAME, n), &w,
                |r, w, iters| measure::connection_cycles(r, w, iters, 5), nothing);
        });
    }
    g.finish();
}

/// 5. Subscribe+unsubscribe into a thread that already has 10 / 10k / 100k
///    subscribers.
fn join_big_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("join_big_thread");
    g.sampling_mode(SamplingMode::Flat);
    for k in JOIN_SIZES {
        let w = Workload::big_thread(k);
        for_each_design!(R => {
            bench::<R>(&mut g, BenchmarkId::new(R::NAME, k), &w,
                |r, w, iters| measure::pairs(r, w, iters, 6), nothing);
        });
    }
    g.finish();
}

/// Runs `f` while another thread follows `engine`'s change feed, copying
/// out every batch (and starting over if it lags).
fn with_follower<O>(engine: &switchboard_benches::designs::Engine, f: impl FnOnce() -> O) -> O {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut feed = engine.changes();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match feed.next_timeout(Duration::from_millis(1)) {
                    Ok(batch) => drop(std::hint::black_box(batch)),
                    Err(_lagged) => feed = engine.changes(),
                }
            }
        });
        let out = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

/// 6. Group 4's subscribe+unsubscribe pair for switchboard alone, with no
///    change-feed consumer and with one following every batch on another
///    thread: what the change log costs a writer.
fn writes_with_feed(c: &mut Criterion) {
    use switchboard_benches::designs::Switchboard;
    let mut g = c.benchmark_group("subscribe_unsubscribe_feed");
    g.sampling_mode(SamplingMode::Flat);
    for n in FEED_SIZES {
        let w = Workload::standard(n);
        bench::<Switchboard>(
            &mut g,
            BenchmarkId::new("no_consumer", n),
            &w,
            |r, w, iters| measure::pairs(r, w, iters, 4),
            nothing,
        );
        bench::<Switchboard>(
            &mut g,
            BenchmarkId::new("one_consumer", n),
            &w,
            |r, w, iters| with_follower(&r.0, || measure::pairs(r, w, iters, 4)),
            nothing,
        );
    }
    g.finish();
}

criterion_group! {
    name = groups;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = lookup, lookup_2_readers, lookup_under_churn, writes, join_big_thread, writes_with_feed
}
criterion_main!(groups);

//! The reconnect storm: a deploy or a network blip drops every client, and
//! every client comes back at once. Every connection disconnects, then
//! reconnects and resubscribes to its threads, from two writer threads,
//! while one reader fans out over the threads the whole time.
//!
//! Designs: switchboard one call at a time (`switchboard_singles`),
//! switchboard with each resume as one `Engine::batch` and the disconnects
//! in batches of 64 (`switchboard_batches`), and the `parking_lot::Mutex`
//! and dashmap designs one call at a time (what their APIs offer). The
//! workload is `switchboard_benches::storm`'s (shared with `targets`): 20k
//! connections with 8 subscriptions each over 4k threads.
//! The time is the storm's wall time; after each design the reader's p99
//! over every storm of the run is printed.
//!
//! ```text
//! cargo bench -p switchboard-benches --bench storm
//! ```
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::time::Duration;
use switchboard_benches::designs::{Dash, PlMutex, Switchboard};
use switchboard_benches::hist::{fmt_ns, Histogram};
use switchboard_benches::storm::{self, batches, build, singles, CONNS};
use switchboard_benches::Registry;

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
        b.iter_custom(|iters| (0..iters).map(|_| storm::run(r, &mut reads, writer)).sum());
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

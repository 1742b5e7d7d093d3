//! The `queue` group: a command's send plus its receive through the engine
//! (`ThreadEntry::send` / `Listener::try_recv`) against a bare crossbeam
//! channel of the same kind, unbounded and bounded(1024). Target: the
//! engine within 1.3x of the bare channel (the target in benches/README.md).
//!
//! ```text
//! cargo bench -p switchboard-benches --bench queue
//! cargo bench -p switchboard-benches --bench queue -- 'queue/one'
//! ```
//!
//! Ids are `queue/{one,burst_64}/{engine,bare}/{unbounded,bounded_1024}`:
//! `one` sends a command and receives it; `burst_64` sends 64, then
//! receives 64 (per-command time, through a queue that holds a backlog).
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use switchboard_core::{Engine, Listener, QueueConfig, ThreadEntry};

const BURST: u64 = 64;
const BOUNDED: usize = 1024;

/// One way to queue `u64`s and take them back.
trait Queue {
    fn send(&self, m: u64);
    fn recv(&self) -> u64;
}

struct Bare(
    crossbeam_channel::Sender<u64>,
    crossbeam_channel::Receiver<u64>,
);

impl Queue for Bare {
    #[inline]
    fn send(&self, m: u64) {
        self.0.send(m).expect("receiver alive");
    }

    #[inline]
    fn recv(&self) -> u64 {
        self.1.try_recv().expect("a queued command")
    }
}

struct Through {
    entry: Arc<ThreadEntry<u64, (), u64>>,
    listener: Listener<u64>,
    _engine: Engine<u64, u64, (), u64>,
}

impl Through {
    fn new(config: QueueConfig) -> Self {
        let engine = Engine::new();
        let entry = engine.thread(1);
        let listener = entry.set_listener_with(&Arc::new(()), config);
        Through {
            entry,
            listener,
            _engine: engine,
        }
    }
}

impl Queue for Through {
    #[inline]
    fn send(&self, m: u64) {
        self.entry.send(m).expect("listener current");
    }

    #[inline]
    fn recv(&self) -> u64 {
        self.listener.try_recv().expect("a queued command")
    }
}

fn one<Q: Queue>(q: &Q, iters: u64) {
    for i in 0..iters {
        q.send(black_box(i));
        black_box(q.recv());
    }
}

fn burst<Q: Queue>(q: &Q, iters: u64) {
    for _ in 0..iters {
        for i in 0..BURST {
            q.send(black_box(i));
        }
        for _ in 0..BURST {
            black_box(q.recv());
        }
    }
}

fn kinds() -> [(&'static str, QueueConfig); 2] {
    [
        ("unbounded", QueueConfig::unbounded()),
        ("bounded_1024", QueueConfig::bounded(BOUNDED)),
    ]
}

fn bare(config: QueueConfig) -> Bare {
    let (tx, rx) = match config.capacity() {
        None => crossbeam_channel::unbounded(),
        Some(cap) => crossbeam_channel::bounded(cap),
    };
    Bare(tx, rx)
}

fn queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(1));
    for (name, config) in kinds() {
        let q = Through::new(config);
        g.bench_function(BenchmarkId::new("one/engine", name), |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                one(&q, iters);
                start.elapsed()
            })
        });
        let q = bare(config);
        g.bench_function(BenchmarkId::new("one/bare", name), |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                one(&q, iters);
                start.elapsed()
            })
        });
    }
    g.throughput(Throughput::Elements(BURST));
    for (name, config) in kinds() {
        let q = Through::new(config);
        g.bench_function(BenchmarkId::new("burst_64/engine", name), |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                burst(&q, iters);
                start.elapsed()
            })
        });
        let q = bare(config);
        g.bench_function(BenchmarkId::new("burst_64/bare", name), |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                burst(&q, iters);
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, queue);
criterion_main!(benches);

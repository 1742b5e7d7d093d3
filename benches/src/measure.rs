//! The timed loops behind every benchmark group, shared by the criterion
//! benches (through `iter_custom`) and the `targets` binary, so both measure
//! exactly the same thing.
//!
//! Every loop picks threads with [`Rng`] from the workload's index range
//! (`thread_id(i)` is thread `i` of every [`Workload`]) and passes each
//! result through [`black_box`].

use crate::alloc;
use crate::hist::Histogram;
use crate::registry::{Direct, ReadHandle, Registry};
use crate::workload::{thread_id, Rng, Workload};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// One fan-out visit of a random thread (the `lookup` unit of work).
#[inline]
fn visit_one(r: &mut impl ReadHandle, rng: &mut Rng, n: usize) {
    let t = thread_id(rng.below(n));
    let mut sum = 0u64;
    r.for_each_subscriber(t, |c| sum = sum.wrapping_add(c));
    black_box(sum);
}

/// `iters` fan-out visits of random threads on the calling thread, through
/// the design's per-thread read handle ([`Registry::reader`]); returns the
/// time they took.
pub fn lookups<R: Registry>(r: &R, w: &Workload, iters: u64, seed: u64) -> Duration {
    lookups_through(&mut r.reader(), w, iters, seed)
}

/// [`lookups`] through the shared registry itself
/// ([`Registry::for_each_subscriber`]), with no per-thread handle.
pub fn lookups_direct<R: Registry>(r: &R, w: &Workload, iters: u64, seed: u64) -> Duration {
    lookups_through(&mut Direct(r), w, iters, seed)
}

fn lookups_through(r: &mut impl ReadHandle, w: &Workload, iters: u64, seed: u64) -> Duration {
    let mut rng = Rng::new(seed);
    let n = w.threads.len();
    let start = Instant::now();
    for _ in 0..iters {
        visit_one(r, &mut rng, n);
    }
    start.elapsed()
}

/// `iters` fan-out visits, each timed on its own (for percentiles; the
/// clock reads add ~20-40 ns to each sample).
pub fn lookups_timed<R: Registry>(r: &R, w: &Workload, iters: u64, seed: u64) -> Histogram {
    let mut rng = Rng::new(seed);
    let n = w.threads.len();
    let mut h = Histogram::new();
    let mut r = r.reader();
    for _ in 0..iters {
        let start = Instant::now();
        visit_one(&mut r, &mut rng, n);
        h.record(start.elapsed());
    }
    h
}

/// `readers` threads each doing `iters` visits at once; returns the wall
/// time from their common start to the last one's end. The aggregate time
/// per visit is `wall / (readers * iters)`.
pub fn lookups_parallel<R: Registry>(r: &R, w: &Workload, readers: usize, iters: u64) -> Duration {
    let start = Barrier::new(readers);
    thread::scope(|s| {
        let handles: Vec<_> = (0..readers)
            .map(|i| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    lookups(r, w, iters, i as u64 + 1)
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

/// How fast the churning writer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As fast as the design allows.
    FlatOut,
    /// At most this many writes (single subscribes or unsubscribes) per
    /// second, spinning between them.
    PerSecond(u64),
}

/// What the writer did while [`with_churn`]'s reader ran.
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    /// Writes done (each subscribe and each unsubscribe counts one).
    pub writes: u64,
    /// How long the writer ran.
    pub elapsed: Duration,
}

impl Churn {
    /// Writes per second achieved.
    pub fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `reader` on the calling thread while another thread subscribes and
/// unsubscribes spare connections to random threads in a loop, at `pace`.
/// The writer starts with the reader and stops when it returns.
pub fn with_churn<R: Registry, O>(
    r: &R,
    w: &Workload,
    pace: Pace,
    reader: impl FnOnce() -> O,
) -> (O, Churn) {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(2);
    thread::scope(|s| {
        let writer = s.spawn(|| {
            start.wait();
            churn_writer(r, w, pace, &stop)
        });
        start.wait();
        let out = reader();
        // Relaxed: a stop flag; the join below synchronises.
        stop.store(true, Ordering::Relaxed);
        (out, writer.join().expect("writer panicked"))
    })
}

fn churn_writer<R: Registry>(r: &R, w: &Workload, pace: Pace, stop: &AtomicBool) -> Churn {
    let mut rng = Rng::new(0xC4_0A11);
    let n = w.threads.len();
    let start = Instant::now();
    let gap_ns = match pace {
        Pace::FlatOut => 0,
        Pace::PerSecond(rate) => 1_000_000_000 / rate.max(1),
    };
    let wait_turn = |writes: u64| {
        if gap_ns > 0 {
            let due = start + Duration::from_nanos(writes * gap_ns);
            while Instant::now() < due && !stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
    };
    let mut writes = 0u64;
    // Relaxed: a stop flag polled in a loop.
    while !stop.load(Ordering::Relaxed) {
        let t = thread_id(rng.below(n));
        let c = w.spare[(writes / 2) as usize % w.spare.len()];
        wait_turn(writes);
        black_box(r.subscribe(t, c));
        wait_turn(writes + 1);
        black_box(r.unsubscribe(t, c));
        writes += 2;
    }
    Churn {
        writes,
        elapsed: start.elapsed(),
    }
}

/// `iters` subscribe+unsubscribe pairs of a spare connection to a random
/// thread (each pair adds and removes a real edge).
pub fn pairs<R: Registry>(r: &R, w: &Workload, iters: u64, seed: u64) -> Duration {
    let mut rng = Rng::new(seed);
    let n = w.threads.len();
    let start = Instant::now();
    for i in 0..iters {
        let t = thread_id(rng.below(n));
        let c = w.spare[i as usize % w.spare.len()];
        black_box(r.subscribe(t, c));
        black_box(r.unsubscribe(t, c));
    }
    start.elapsed()
}

/// `iters` connection cycles: connect a fresh id, subscribe it to 4 random
/// threads, disconnect it.
pub fn connection_cycles<R: Registry>(r: &R, w: &Workload, iters: u64, seed: u64) -> Duration {
    let mut rng = Rng::new(seed);
    let n = w.threads.len();
    let start = Instant::now();
    for i in 0..iters {
        let c = w.fresh_conn(i as usize);
        black_box(r.connect(c, 0));
        for _ in 0..4 {
            black_box(r.subscribe(thread_id(rng.below(n)), c));
        }
        black_box(r.disconnect(c));
    }
    start.elapsed()
}

/// Heap bytes a freshly built `R` holding `w` occupies, measured by the
/// [`CountingAlloc`](crate::alloc::CountingAlloc), which must be the
/// binary's global allocator (without it this returns 0). Call it while no
/// other thread allocates.
pub fn heap_bytes<R: Registry>(w: &Workload) -> isize {
    let was_counting = alloc::set_counting(true);
    let before = alloc::current();
    let r: R = w.build();
    let bytes = alloc::current() - before;
    drop(r);
    alloc::set_counting(was_counting);
    bytes
}

/// The memory table (markdown) of every design on the standard workload at
/// each of `sizes` threads: heap bytes and bytes per subscription, and the
/// ratio to `pl_mutex`. Needs the counting allocator (see [`heap_bytes`]).
pub fn memory_table(sizes: &[usize]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    out.push_str(
        "| design | threads | subscriptions | heap | bytes / subscription | × pl_mutex |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for &n in sizes {
        let w = Workload::standard(n);
        let subs = w.edges.len() as f64;
        let mutex = heap_bytes::<crate::designs::PlMutex>(&w) as f64 / subs;
        for_each_design!(R => {
            let bytes = heap_bytes::<R>(&w);
            let per = bytes as f64 / subs;
            let _ = writeln!(
                out,
                "| {} | {n} | {} | {:.1} MiB | {per:.1} | {:.2}× |",
                R::NAME,
                w.edges.len(),
                bytes as f64 / (1u64 << 20) as f64,
                per / mutex,
            );
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designs::{PlMutex, Switchboard};

    fn smoke<R: Registry>() {
        let w = Workload::standard(64);
        let r: R = w.build();
        lookups(&r, &w, 100, 1);
        lookups_direct(&r, &w, 100, 1);
        assert_eq!(lookups_timed(&r, &w, 100, 1).len(), 100);
        lookups_parallel(&r, &w, 2, 100);
        let (_, churn) = with_churn(&r, &w, Pace::PerSecond(100_000), || {
            lookups(&r, &w, 1000, 2)
        });
        assert_eq!(churn.writes % 2, 0);
        pairs(&r, &w, 100, 3);
        connection_cycles(&r, &w, 100, 4);
        r.validate().unwrap();
        // Net effect of every write loop is nil: the graph is as built.
        let mut subs = 0;
        for i in 0..w.threads.len() {
            r.for_each_subscriber(thread_id(i), |_| subs += 1);
        }
        assert_eq!(subs, w.edges.len());
    }

    #[test]
    fn smoke_switchboard() {
        smoke::<Switchboard>();
    }

    #[test]
    fn smoke_pl_mutex() {
        smoke::<PlMutex>();
    }
}

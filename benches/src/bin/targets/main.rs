//! `targets`: one short run of every benchmark group for every design,
//! printed as tables, with each performance target (benches/README.md) marked met or
//! missed for switchboard.
//!
//! ```text
//! cargo run --release -p switchboard-benches --bin targets -- [--budget-ms MS] [--sizes 1000,10000,100000] [--churn-repeats N] [--storm-only]
//! ```
//!
//! Each figure is the median of three runs of about `--budget-ms` (default
//! 200 ms) each, using the same loops as the criterion groups
//! (`switchboard_benches::measure`). Memory uses the counting allocator,
//! switched on only while the memory figures are taken.
//!
//! The reconnect storm (`switchboard_benches::storm`) runs once per design
//! ([`STORMS`] timed storms after an untimed one), with its two targets
//! (`--storm-only`: just those).
//!
//! The churn rows vary by about ±10 points between processes, so they are
//! also measured in `--churn-repeats` (default 5) fresh processes of this
//! binary (`--churn-only`, switchboard and `pl_mutex`); the verdicts use
//! the median over those, printed with its range.

mod report;

use report::{print_churn, print_raw, print_storm, print_targets};
use std::collections::BTreeMap;
use std::time::Duration;
use switchboard_benches::alloc::CountingAlloc;
use switchboard_benches::designs::{Dash, PlMutex, Switchboard};
use switchboard_benches::hist::{fmt_ns, Histogram};
use switchboard_benches::measure::{self, Pace};
use switchboard_benches::storm;
use switchboard_benches::workload::Workload;
use switchboard_benches::{for_each_design, Registry, DESIGNS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Writes per second of the paced churn rows.
const PACED: u64 = 250_000;
/// Subscriber counts of the join rows.
const JOIN_SIZES: [usize; 3] = [10, 10_000, 100_000];
/// Timed reconnect storms per design (after one untimed).
const STORMS: usize = 3;

/// One design's reconnect storms: the median wall time, and the reader's
/// p99 over every timed storm.
#[derive(Debug, Clone, Copy)]
struct Storm {
    wall: Duration,
    reader_p99_ns: u64,
}

/// Every design's reconnect storms.
fn storm_rows() -> Vec<(&'static str, Storm)> {
    eprintln!("targets: reconnect storms");
    vec![
        (
            "switchboard, one call at a time",
            storms::<Switchboard>(storm::singles::<Switchboard>),
        ),
        (
            "switchboard, batches",
            storms::<Switchboard>(|r, w| storm::batches(&r.0, w)),
        ),
        ("pl_mutex", storms::<PlMutex>(storm::singles::<PlMutex>)),
        ("dashmap", storms::<Dash>(storm::singles::<Dash>)),
    ]
}

/// [`STORMS`] reconnect storms over `R` (`switchboard_benches::storm`),
/// each design's graph built once and checked after.
fn storms<R: Registry>(writer: impl Fn(&R, u64) + Sync + Copy) -> Storm {
    let r: R = storm::build();
    storm::run(&r, &mut Histogram::new(), writer);
    let mut reads = Histogram::new();
    let mut walls: Vec<Duration> = (0..STORMS)
        .map(|_| storm::run(&r, &mut reads, writer))
        .collect();
    r.validate().expect("a valid graph after the storms");
    walls.sort();
    Storm {
        wall: walls[walls.len() / 2],
        reader_p99_ns: reads.quantile_ns(0.99),
    }
}

/// Figures of one design at one size (nanoseconds per operation unless
/// said otherwise).
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    lookup: f64,
    /// Lookup through the shared registry, with no per-thread handle.
    lookup_direct: f64,
    /// Aggregate time per lookup with two readers.
    two_readers: f64,
    churn_reader: f64,
    churn_p99: f64,
    churn_writes_per_s: f64,
    paced_reader: f64,
    paced_writes_per_s: f64,
    pair: f64,
    cycle: f64,
}

/// Runs `f(iters)` with `iters` grown until one run takes about `budget`,
/// then three more times; returns the iteration count and the median time
/// per iteration in nanoseconds.
fn measure(budget: Duration, mut f: impl FnMut(u64) -> Duration) -> (u64, f64) {
    let mut iters = 1u64;
    loop {
        let d = f(iters);
        if d >= budget / 10 || iters >= 1 << 34 {
            let scale = budget.as_secs_f64() / d.as_secs_f64().max(1e-9);
            iters = ((iters as f64 * scale) as u64).max(1);
            break;
        }
        iters *= 10;
    }
    let mut v = Vec::with_capacity(3);
    for _ in 0..3 {
        let d = f(iters);
        v.push(d.as_nanos() as f64 / iters as f64);
        // A design that collapses under contention only once the run is
        // long enough can overshoot the budget by orders of magnitude:
        // shrink the next run to fit.
        if d > budget * 3 {
            let scale = budget.as_secs_f64() / d.as_secs_f64();
            iters = ((iters as f64 * scale) as u64).max(1);
        }
    }
    v.sort_by(f64::total_cmp);
    (iters, v[1])
}

/// The single-reader figures a churn row needs.
#[derive(Debug, Default, Clone, Copy)]
struct ChurnFigures {
    lookup: f64,
    churn_reader: f64,
    churn_p99: f64,
    churn_writes_per_s: f64,
    paced_reader: f64,
    paced_writes_per_s: f64,
}

fn churn_figures<R: Registry>(r: &R, w: &Workload, budget: Duration) -> ChurnFigures {
    let (_, lookup) = measure(budget, |n| measure::lookups(r, w, n, 1));
    let mut churn_writes = Vec::new();
    let (_, churn_reader) = measure(budget, |n| {
        let (d, churn) = measure::with_churn(r, w, Pace::FlatOut, || measure::lookups(r, w, n, 2));
        churn_writes.push(churn.rate());
        d
    });
    // Per-lookup timing for the p99, sized from the rate under churn (the
    // clock reads add ~20-40 ns per sample).
    let timed = ((budget.as_nanos() as f64 / churn_reader) as u64).max(1000);
    let (h, _) = measure::with_churn(r, w, Pace::FlatOut, || {
        measure::lookups_timed(r, w, timed, 3)
    });
    let mut paced_writes = Vec::new();
    let (_, paced_reader) = measure(budget, |n| {
        let (d, churn) = measure::with_churn(r, w, Pace::PerSecond(PACED), || {
            measure::lookups(r, w, n, 4)
        });
        paced_writes.push(churn.rate());
        d
    });
    ChurnFigures {
        lookup,
        churn_reader,
        churn_p99: h.quantile_ns(0.99) as f64,
        churn_writes_per_s: median(churn_writes),
        paced_reader,
        paced_writes_per_s: median(paced_writes),
    }
}

fn figures<R: Registry>(w: &Workload, budget: Duration) -> Figures {
    let r: R = w.build();
    let c = churn_figures(&r, w, budget);
    let (_, lookup_direct) = measure(budget, |n| measure::lookups_direct(&r, w, n, 1));
    let (_, two_readers) = measure(budget, |n| measure::lookups_parallel(&r, w, 2, n) / 2);
    let (_, pair) = measure(budget, |n| measure::pairs(&r, w, n, 5));
    let (_, cycle) = measure(budget, |n| measure::connection_cycles(&r, w, n, 6));
    if let Err(e) = r.validate() {
        panic!("{}: graph invalid after the run: {e}", R::NAME);
    }
    Figures {
        lookup: c.lookup,
        lookup_direct,
        two_readers,
        churn_reader: c.churn_reader,
        churn_p99: c.churn_p99,
        churn_writes_per_s: c.churn_writes_per_s,
        paced_reader: c.paced_reader,
        paced_writes_per_s: c.paced_writes_per_s,
        pair,
        cycle,
    }
}

/// One process's churn-row figures for switchboard at one size: what the
/// `--churn-only` child prints, one line per size.
#[derive(Debug, Clone, Copy)]
struct ChurnRun {
    /// Reader keeps (solo lookup time / lookup time), percent, flat out.
    keeps: f64,
    /// Reader throughput over the `pl_mutex` reader's, flat out.
    vs_mutex: f64,
    p99: f64,
    /// Reader keeps at 250k writes/s, percent.
    paced_keeps: f64,
}

impl ChurnRun {
    fn of(s: &ChurnFigures, mutex: &ChurnFigures) -> Self {
        ChurnRun {
            keeps: 100.0 * s.lookup / s.churn_reader,
            vs_mutex: mutex.churn_reader / s.churn_reader,
            p99: s.churn_p99,
            paced_keeps: 100.0 * s.lookup / s.paced_reader,
        }
    }

    fn line(&self, n: usize) -> String {
        format!(
            "churn {n} {} {} {} {}",
            self.keeps, self.vs_mutex, self.p99, self.paced_keeps
        )
    }

    fn parse(line: &str) -> Option<(usize, Self)> {
        let mut f = line.strip_prefix("churn ")?.split_whitespace();
        let n = f.next()?.parse().ok()?;
        let mut x = || f.next()?.parse::<f64>().ok();
        let run = ChurnRun {
            keeps: x()?,
            vs_mutex: x()?,
            p99: x()?,
            paced_keeps: x()?,
        };
        Some((n, run))
    }
}

/// The `--churn-only` child: churn rows of switchboard and `pl_mutex` at
/// each size, printed as [`ChurnRun`] lines.
fn churn_only(sizes: &[usize], budget: Duration) {
    for &n in sizes {
        let w = Workload::standard(n);
        let s: Switchboard = w.build();
        let sb = churn_figures(&s, &w, budget);
        drop(s);
        let m: PlMutex = w.build();
        let mutex = churn_figures(&m, &w, budget);
        println!("{}", ChurnRun::of(&sb, &mutex).line(n));
    }
}

/// Runs `repeats` `--churn-only` children one after another; returns each
/// size's runs.
fn churn_repeats(
    sizes: &[usize],
    budget: Duration,
    repeats: usize,
) -> BTreeMap<usize, Vec<ChurnRun>> {
    let exe = std::env::current_exe().expect("own executable");
    let list = sizes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut runs: BTreeMap<usize, Vec<ChurnRun>> = BTreeMap::new();
    for i in 0..repeats {
        eprintln!(
            "targets: churn repetition {} of {repeats} (own process)",
            i + 1
        );
        let out = std::process::Command::new(&exe)
            .args([
                "--churn-only",
                "--budget-ms",
                &budget.as_millis().to_string(),
            ])
            .args(["--sizes", &list])
            .output()
            .expect("run the churn child");
        assert!(out.status.success(), "churn child failed: {out:?}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((n, run)) = ChurnRun::parse(line) {
                runs.entry(n).or_default().push(run);
            }
        }
    }
    runs
}

/// Median and range of `xs`, formatted: `median [min–max]`.
fn spread(xs: impl Iterator<Item = f64>, fmt: impl Fn(f64) -> String) -> (f64, String) {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let text = format!("{} [{}–{}]", fmt(med), fmt(v[0]), fmt(v[v.len() - 1]));
    (med, text)
}

fn join_cost<R: Registry>(w: &Workload, budget: Duration) -> f64 {
    let r: R = w.build();
    measure(budget, |n| measure::pairs(&r, w, n, 7)).1
}

/// The median of the last three values (those of `measure`'s three timed
/// runs; earlier ones are calibration runs).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.drain(..v.len().saturating_sub(3));
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy
/// one in the output.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

/// How many CPUs two busy threads get right now: process CPU time over
/// wall time while both spin for half a second (Linux `/proc/self/stat`,
/// 10 ms ticks). Near 2.0 on an idle 2-core machine; near 1.0 when another
/// process holds a core, which makes every two-thread figure meaningless.
fn parallelism_now() -> Option<f64> {
    fn cpu_ticks() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after ")".
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }
    let before = cpu_ticks()?;
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while start.elapsed() < Duration::from_millis(500) {
                    std::hint::spin_loop();
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    Some((cpu_ticks()? - before) as f64 / 100.0 / wall)
}

fn ns(x: f64) -> String {
    fmt_ns(x.round() as u64)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

fn main() {
    let mut budget = Duration::from_millis(200);
    let mut sizes = vec![1_000, 10_000, 100_000];
    let mut repeats = 5usize;
    let mut child = false;
    let mut storm_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--budget-ms" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--budget-ms MS");
                budget = Duration::from_millis(ms);
            }
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes N,N,..")
                    .split(',')
                    .map(|s| s.parse().expect("--sizes takes thread counts"))
                    .collect();
            }
            "--churn-repeats" => {
                repeats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--churn-repeats N");
            }
            "--churn-only" => child = true,
            "--storm-only" => storm_only = true,
            "--help" | "-h" => {
                println!(
                    "usage: targets [--budget-ms MS] [--sizes 1000,10000,100000] [--churn-repeats N] [--storm-only]"
                );
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }

    if child {
        churn_only(&sizes, budget);
        return;
    }
    let storm_runs = storm_rows();
    if storm_only {
        print_storm(&storm_runs);
        return;
    }

    let load_before = loadavg();
    let mut figs: BTreeMap<(&str, usize), Figures> = BTreeMap::new();
    let mut probes = vec![parallelism_now()];
    for &n in &sizes {
        let w = Workload::standard(n);
        for_each_design!(R => {
            eprintln!("targets: {} at {n} threads", R::NAME);
            figs.insert((R::NAME, n), figures::<R>(&w, budget));
        });
        probes.push(parallelism_now());
    }
    let mut joins: BTreeMap<(&str, usize), f64> = BTreeMap::new();
    for k in JOIN_SIZES {
        let w = Workload::big_thread(k);
        for_each_design!(R => {
            eprintln!("targets: {} join into {k} subscribers", R::NAME);
            joins.insert((R::NAME, k), join_cost::<R>(&w, budget));
        });
    }
    let mem_size = *sizes.iter().max().expect("at least one size");
    let mut memory: BTreeMap<&str, f64> = BTreeMap::new();
    let w = Workload::standard(mem_size);
    for_each_design!(R => {
        let bytes = measure::heap_bytes::<R>(&w);
        memory.insert(R::NAME, bytes as f64 / w.edges.len() as f64);
    });

    let churn = churn_repeats(&sizes, budget, repeats);

    probes.push(parallelism_now());
    let probes: Vec<String> = probes
        .iter()
        .map(|p| p.map_or("n/a".into(), |p| format!("{p:.2}")))
        .collect();
    println!(
        "targets: {} CPUs, budget {} ms per figure (median of 3); load average before {load_before}, \
         after {}; CPUs two spinning threads got, before / after each size / at the end: {}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        budget.as_millis(),
        loadavg(),
        probes.join(" / "),
    );
    print_raw(&sizes, &figs, &joins, &memory, mem_size);
    print_churn(&sizes, &churn);
    print_targets(&sizes, &figs, &joins, &memory, mem_size, &churn);
    print_storm(&storm_runs);
}

//! The report `targets` prints: the raw figures per design, the churn
//! runs, and each performance target with its verdict.

use super::*;

pub(super) fn print_raw(
    sizes: &[usize],
    figs: &BTreeMap<(&str, usize), Figures>,
    joins: &BTreeMap<(&str, usize), f64>,
    memory: &BTreeMap<&str, f64>,
    mem_size: usize,
) {
    println!("### Per design (time per operation; reader figures are the reader's own)\n");
    println!(
        "| design | threads | lookup | lookup, no handle | 2 readers (aggregate) | scaling | churn: reader | keeps | p99 | writer writes/s | 250k/s: reader | keeps | writes/s | sub+unsub | connection cycle |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        for d in DESIGNS {
            let f = figs[&(d, n)];
            println!(
                "| {d} | {n} | {} | {} | {} | {:.2}× | {} | {:.0}% | {} | {:.0}k | {} | {:.0}% | {:.0}k | {} | {} |",
                ns(f.lookup),
                ns(f.lookup_direct),
                ns(f.two_readers),
                f.lookup / f.two_readers,
                ns(f.churn_reader),
                100.0 * f.lookup / f.churn_reader,
                ns(f.churn_p99),
                f.churn_writes_per_s / 1e3,
                ns(f.paced_reader),
                100.0 * f.lookup / f.paced_reader,
                f.paced_writes_per_s / 1e3,
                ns(f.pair),
                ns(f.cycle),
            );
        }
    }
    println!("\n### join_big_thread (subscribe+unsubscribe into one thread) and memory\n");
    print!("| design |");
    for k in JOIN_SIZES {
        print!(" join {k} |");
    }
    println!(
        " join ratio {}/{} | bytes/subscription at {mem_size} |",
        JOIN_SIZES[2], JOIN_SIZES[0]
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for d in DESIGNS {
        print!("| {d} |");
        for k in JOIN_SIZES {
            print!(" {} |", ns(joins[&(d, k)]));
        }
        println!(
            " {:.2}× | {:.1} |",
            joins[&(d, JOIN_SIZES[2])] / joins[&(d, JOIN_SIZES[0])],
            memory[d]
        );
    }
}

/// The churn rows over every repetition: median [min–max] per size.
pub(super) fn print_churn(sizes: &[usize], churn: &BTreeMap<usize, Vec<ChurnRun>>) {
    let Some(k) = churn.values().map(Vec::len).min() else {
        return;
    };
    println!("\n### Churn rows over {k} processes (switchboard; median [min–max])\n");
    println!("| threads | flat out: reader keeps | × pl_mutex reader | reader p99 | 250k writes/s: reader keeps |");
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let runs = &churn[n];
        let pct = |x: f64| format!("{x:.0}%");
        let times = |x: f64| format!("{x:.1}×");
        println!(
            "| {n} | {} | {} | {} | {} |",
            spread(runs.iter().map(|r| r.keeps), pct).1,
            spread(runs.iter().map(|r| r.vs_mutex), times).1,
            spread(runs.iter().map(|r| r.p99), ns).1,
            spread(runs.iter().map(|r| r.paced_keeps), pct).1,
        );
    }
}

pub(super) fn print_targets(
    sizes: &[usize],
    figs: &BTreeMap<(&str, usize), Figures>,
    joins: &BTreeMap<(&str, usize), f64>,
    memory: &BTreeMap<&str, f64>,
    mem_size: usize,
    churn: &BTreeMap<usize, Vec<ChurnRun>>,
) {
    const SB: &str = "switchboard";
    const MUTEX: &str = "pl_mutex";
    println!("\n### Performance targets (switchboard)\n");
    println!("| target (must) | measured | verdict |");
    println!("|---|---|---|");
    let at = |n: usize| (figs[&(SB, n)], figs[&(MUTEX, n)]);

    let ratios: Vec<String> = sizes
        .iter()
        .map(|&n| {
            let (s, m) = at(n);
            format!("{:.2}× at {n}", s.lookup / m.lookup)
        })
        .collect();
    let ok = sizes.iter().all(|&n| {
        let (s, m) = at(n);
        s.lookup <= m.lookup
    });
    println!(
        "| lookup ≤ 1.0× pl_mutex, every size | {} | {} |",
        ratios.join(", "),
        verdict(ok)
    );

    let direct: Vec<String> = sizes
        .iter()
        .map(|&n| {
            let (s, m) = at(n);
            format!("{:.2}× at {n}", s.lookup_direct / m.lookup)
        })
        .collect();
    let ok = sizes.iter().all(|&n| {
        let (s, m) = at(n);
        s.lookup_direct <= m.lookup
    });
    println!(
        "| (same, through `Engine` without a `Reader`) | {} | {} |",
        direct.join(", "),
        verdict(ok)
    );

    let scaling: Vec<f64> = sizes
        .iter()
        .map(|&n| at(n).0.lookup / at(n).0.two_readers)
        .collect();
    let min = scaling.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "| 2 readers ≥ 1.8× one reader | {} | {} |",
        join_sizes(sizes, &scaling, "×"),
        verdict(min >= 1.8)
    );

    // The churn rows: medians over the repeated processes when there are
    // any (they vary by ±10 points between processes), else this run's.
    let med = |n: usize, this_run: f64, pick: fn(&ChurnRun) -> f64| match churn.get(&n) {
        Some(runs) if !runs.is_empty() => spread(runs.iter().map(pick), |x| x.to_string()).0,
        _ => this_run,
    };
    let source = match churn.values().map(Vec::len).min() {
        Some(k) if k > 0 => format!(" (median of {k} processes)"),
        _ => String::new(),
    };
    let keeps: Vec<f64> = sizes
        .iter()
        .map(|&n| {
            med(n, 100.0 * at(n).0.lookup / at(n).0.churn_reader, |r| {
                r.keeps
            })
        })
        .collect();
    println!(
        "| churn flat out: reader keeps ≥ 45%{source} | {} | {} |",
        join_sizes(sizes, &keeps, "%"),
        verdict(keeps.iter().all(|&k| k >= 45.0))
    );
    let vs_mutex: Vec<f64> = sizes
        .iter()
        .map(|&n| {
            med(n, at(n).1.churn_reader / at(n).0.churn_reader, |r| {
                r.vs_mutex
            })
        })
        .collect();
    println!(
        "| churn flat out: reader ≥ 5× the mutex reader{source} | {} | {} |",
        join_sizes(sizes, &vs_mutex, "×"),
        verdict(vs_mutex.iter().all(|&k| k >= 5.0))
    );
    let p99: Vec<f64> = sizes
        .iter()
        .map(|&n| med(n, at(n).0.churn_p99, |r| r.p99))
        .collect();
    println!(
        "| churn flat out: reader p99 ≤ 2 µs{source} | {} | {} |",
        sizes
            .iter()
            .zip(&p99)
            .map(|(n, p)| format!("{} at {n}", ns(*p)))
            .collect::<Vec<_>>()
            .join(", "),
        verdict(p99.iter().all(|&p| p <= 2_000.0))
    );
    let paced: Vec<f64> = sizes
        .iter()
        .map(|&n| {
            med(n, 100.0 * at(n).0.lookup / at(n).0.paced_reader, |r| {
                r.paced_keeps
            })
        })
        .collect();
    println!(
        "| 250k writes/s: reader keeps ≥ 70%{source} | {} | {} |",
        join_sizes(sizes, &paced, "%"),
        verdict(paced.iter().all(|&k| k >= 70.0))
    );

    let big = *sizes.iter().max().expect("sizes");
    let small = *sizes.iter().min().expect("sizes");
    let (pair_big, pair_small) = (at(big).0.pair, at(small).0.pair);
    println!(
        "| sub+unsub ≤ 2 µs at {big} and ≤ 3× its {small} figure | {} at {big}, {} at {small} ({:.2}×) | {} |",
        ns(pair_big),
        ns(pair_small),
        pair_big / pair_small,
        verdict(pair_big <= 2_000.0 && pair_big <= 3.0 * pair_small)
    );
    let (j_big, j_small) = (joins[&(SB, JOIN_SIZES[2])], joins[&(SB, JOIN_SIZES[0])]);
    println!(
        "| join a thread of {} ≤ 4× joining one of {} | {} vs {} ({:.2}×) | {} |",
        JOIN_SIZES[2],
        JOIN_SIZES[0],
        ns(j_big),
        ns(j_small),
        j_big / j_small,
        verdict(j_big <= 4.0 * j_small)
    );
    let mem_ratio = memory[SB] / memory[MUTEX];
    println!(
        "| memory ≤ 2× pl_mutex bytes/subscription | {:.1} vs {:.1} B at {mem_size} ({:.2}×) | {} |",
        memory[SB],
        memory[MUTEX],
        mem_ratio,
        verdict(mem_ratio <= 2.0)
    );
}

pub(super) fn join_sizes(sizes: &[usize], v: &[f64], unit: &str) -> String {
    sizes
        .iter()
        .zip(v)
        .map(|(n, x)| {
            if unit == "%" {
                format!("{x:.0}% at {n}")
            } else {
                format!("{x:.2}{unit} at {n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reconnect storms, and their targets: batches at or under the mutex
/// design's wall time, the reader's p99 during the storm ≤ 2 µs.
pub(super) fn print_storm(runs: &[(&str, Storm)]) {
    println!(
        "\n### Reconnect storm ({} connections × {} subscriptions over {} threads, {} writers, 1 reader; median of {STORMS} storms)\n",
        storm::CONNS,
        storm::SUBS,
        storm::THREADS,
        storm::WRITERS
    );
    println!("| design | storm wall time | reader p99 during the storms |");
    println!("|---|---:|---:|");
    for (name, s) in runs {
        println!(
            "| {name} | {:.0} ms | {} |",
            s.wall.as_secs_f64() * 1e3,
            fmt_ns(s.reader_p99_ns)
        );
    }
    let find = |name: &str| runs.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
    let (Some(batches), Some(mutex)) = (find("switchboard, batches"), find("pl_mutex")) else {
        return;
    };
    let ratio = batches.wall.as_secs_f64() / mutex.wall.as_secs_f64();
    println!("\n| target (must) | measured | verdict |");
    println!("|---|---|---|");
    println!(
        "| reconnect storm with batches ≤ 1.0× pl_mutex wall time | {ratio:.2}× | {} |",
        verdict(ratio <= 1.0)
    );
    println!(
        "| reader p99 during the batched storm ≤ 2 µs (pl_mutex's: {}) | {} | {} |",
        fmt_ns(mutex.reader_p99_ns),
        fmt_ns(batches.reader_p99_ns),
        verdict(batches.reader_p99_ns <= 2_000)
    );
}

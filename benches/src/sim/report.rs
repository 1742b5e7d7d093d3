//! The outcome of a sim run and the side-by-side table.

use super::{GraphCounts, Tally};
use crate::hist::{fmt_ns, Histogram};
use std::fmt::Write as _;
use std::time::Duration;

/// The outcome of one design's run.
#[derive(Debug)]
pub struct Report {
    /// The design.
    pub name: &'static str,
    /// Setup time (initial connects, subscribes and listener loads).
    pub setup: Duration,
    /// Length of the run phase.
    pub elapsed: Duration,
    /// What the drivers did during the run phase.
    pub tally: Tally,
    /// Commands and requests the listeners served, setup to shutdown.
    pub served: (u64, u64),
    /// Fan-out latency.
    pub fan_out: Histogram,
    /// Subscribe latency.
    pub subscribe: Histogram,
    /// Disconnect latency.
    pub disconnect: Histogram,
    /// Request round-trip latency.
    pub request: Histogram,
    /// Peak heap bytes above the level at the start of the run (needs the
    /// counting allocator; 0 without it).
    pub peak_heap: isize,
    /// The final graph's size.
    pub counts: GraphCounts,
    /// The final graph's invariant check.
    pub valid: Result<(), String>,
}

/// `1234567.0` → `1.23M`.
pub fn fmt_count(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Bytes as `12.3 MiB`.
pub fn fmt_bytes(b: isize) -> String {
    let x = b as f64;
    if x.abs() >= (1 << 30) as f64 {
        format!("{:.2} GiB", x / (1u64 << 30) as f64)
    } else if x.abs() >= (1 << 20) as f64 {
        format!("{:.1} MiB", x / (1u64 << 20) as f64)
    } else if x.abs() >= 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// Picks one histogram of a report.
type HistOf = fn(&Report) -> &Histogram;

/// The side-by-side results table (markdown), one column per report and,
/// when there are two, a ratio column (first / second for throughput,
/// second / first for latency and memory, so > 1 favours the first).
pub fn table(reports: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>, Option<f64>)> = Vec::new();
    let pair = reports.len() == 2;
    let ratio = |a: f64, b: f64| (pair && b > 0.0).then(|| a / b);
    let rate_row = |label: &str, f: &dyn Fn(&Report) -> u64| {
        let rates: Vec<f64> = reports
            .iter()
            .map(|r| f(r) as f64 / r.elapsed.as_secs_f64().max(1e-9))
            .collect();
        let cells = rates
            .iter()
            .map(|&x| format!("{}/s", fmt_count(x)))
            .collect();
        let rt = if pair {
            ratio(rates[0], rates[1])
        } else {
            None
        };
        (label.to_string(), cells, rt)
    };
    rows.push(rate_row("fan-outs", &|r| r.tally.fanouts));
    rows.push(rate_row("deliveries", &|r| r.tally.deliveries));
    rows.push(rate_row("subscribes (churn)", &|r| r.tally.subscribes));
    rows.push(rate_row("disconnects (churn)", &|r| r.tally.disconnects));
    rows.push(rate_row("commands sent", &|r| r.tally.notifies));
    rows.push(rate_row("request round trips", &|r| r.tally.requests));
    rows.push(rate_row("idle threads unloaded", &|r| r.tally.unloads));
    let hists: [(&str, HistOf); 4] = [
        ("fan-out", |r| &r.fan_out),
        ("subscribe", |r| &r.subscribe),
        ("disconnect", |r| &r.disconnect),
        ("request round trip", |r| &r.request),
    ];
    for (label, h) in hists {
        for (q, qn) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
            let v: Vec<u64> = reports.iter().map(|r| h(r).quantile_ns(q)).collect();
            let rt = if pair {
                ratio(v[1] as f64, v[0] as f64)
            } else {
                None
            };
            rows.push((
                format!("{label} {qn}"),
                v.iter().map(|&ns| fmt_ns(ns)).collect(),
                rt,
            ));
        }
    }
    let peaks: Vec<isize> = reports.iter().map(|r| r.peak_heap).collect();
    rows.push((
        "peak heap".into(),
        peaks.iter().map(|&b| fmt_bytes(b)).collect(),
        if pair {
            ratio(peaks[1] as f64, peaks[0] as f64)
        } else {
            None
        },
    ));
    rows.push((
        "setup".into(),
        reports
            .iter()
            .map(|r| format!("{:.2}s", r.setup.as_secs_f64()))
            .collect(),
        None,
    ));
    rows.push((
        "final conns / threads / subs".into(),
        reports
            .iter()
            .map(|r| {
                let c = r.counts;
                format!("{} / {} / {}", c.connections, c.threads, c.subscriptions)
            })
            .collect(),
        None,
    ));
    rows.push((
        "final snapshot validate()".into(),
        reports
            .iter()
            .map(|r| match &r.valid {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAILED: {e}"),
            })
            .collect(),
        None,
    ));

    let mut out = String::new();
    let _ = write!(out, "| |");
    for r in reports {
        let _ = write!(out, " {} |", r.name);
    }
    if pair {
        let _ = write!(out, " {} advantage |", reports[0].name);
    }
    out.push('\n');
    out.push_str("|---|");
    for _ in reports {
        out.push_str("---:|");
    }
    if pair {
        out.push_str("---:|");
    }
    out.push('\n');
    for (label, cells, rt) in rows {
        let _ = write!(out, "| {label} |");
        for c in cells {
            let _ = write!(out, " {c} |");
        }
        if pair {
            match rt {
                Some(x) => {
                    let _ = write!(out, " {x:.2}× |");
                }
                None => out.push_str(" |"),
            }
        }
        out.push('\n');
    }
    out
}

//! The outcome of a sim run and the side-by-side table.

use super::host::GraphCounts;
use super::tally::Tally;
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

/// One table row: its label, a cell per report, and the value behind each
/// cell when the row has an advantage ratio (`higher` says whether a
/// higher value is better).
struct Row {
    label: String,
    cells: Vec<String>,
    values: Option<(Vec<f64>, bool)>,
}

impl Row {
    /// The first report's advantage over report `i`: > 1 favours the
    /// first.
    fn advantage(&self, i: usize) -> Option<f64> {
        let (v, higher) = self.values.as_ref()?;
        let (a, b) = if *higher { (v[0], v[i]) } else { (v[i], v[0]) };
        (b > 0.0).then(|| a / b)
    }
}

/// The side-by-side results table (markdown): one column per report, then
/// the first report's advantage over each other one (its throughput over
/// theirs, their latency and memory over its own; > 1 favours the first).
pub fn table(reports: &[Report]) -> String {
    let mut rows: Vec<Row> = Vec::new();
    let rate_row = |label: &str, f: &dyn Fn(&Report) -> u64| {
        let rates: Vec<f64> = reports
            .iter()
            .map(|r| f(r) as f64 / r.elapsed.as_secs_f64().max(1e-9))
            .collect();
        Row {
            label: label.to_string(),
            cells: rates
                .iter()
                .map(|&x| format!("{}/s", fmt_count(x)))
                .collect(),
            values: Some((rates, true)),
        }
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
            rows.push(Row {
                label: format!("{label} {qn}"),
                cells: v.iter().map(|&ns| fmt_ns(ns)).collect(),
                values: Some((v.iter().map(|&ns| ns as f64).collect(), false)),
            });
        }
    }
    let peaks: Vec<isize> = reports.iter().map(|r| r.peak_heap).collect();
    rows.push(Row {
        label: "peak heap".into(),
        cells: peaks.iter().map(|&b| fmt_bytes(b)).collect(),
        values: Some((peaks.iter().map(|&b| b as f64).collect(), false)),
    });
    rows.push(Row {
        label: "setup".into(),
        cells: reports
            .iter()
            .map(|r| format!("{:.2}s", r.setup.as_secs_f64()))
            .collect(),
        values: None,
    });
    rows.push(Row {
        label: "final conns / threads / subs".into(),
        cells: reports
            .iter()
            .map(|r| {
                let c = r.counts;
                format!("{} / {} / {}", c.connections, c.threads, c.subscriptions)
            })
            .collect(),
        values: None,
    });
    rows.push(Row {
        label: "final snapshot validate()".into(),
        cells: reports
            .iter()
            .map(|r| match &r.valid {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAILED: {e}"),
            })
            .collect(),
        values: None,
    });

    let mut out = String::new();
    let _ = write!(out, "| |");
    for r in reports {
        let _ = write!(out, " {} |", r.name);
    }
    let others = reports.get(1..).unwrap_or(&[]);
    if let Some(first) = reports.first() {
        for r in others {
            let _ = write!(out, " {} vs {} |", first.name, r.name);
        }
    }
    out.push('\n');
    out.push_str("|---|");
    for _ in reports.iter().chain(others) {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} |", row.label);
        for c in &row.cells {
            let _ = write!(out, " {c} |");
        }
        for i in 1..reports.len() {
            match row.advantage(i) {
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

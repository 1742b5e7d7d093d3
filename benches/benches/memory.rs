//! Group 6, `memory`: bytes per subscription at 100k threads for every
//! design (a counting global allocator; not a criterion timing). Runs
//! unless a filter argument excludes it, like a criterion group.
#![allow(missing_docs)]

use switchboard_benches::alloc::CountingAlloc;
use switchboard_benches::measure::memory_table;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Criterion options that take a value (so the value is not a filter).
const VALUED: [&str; 14] = [
    "--warm-up-time",
    "--measurement-time",
    "--sample-size",
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--nresamples",
    "--output-format",
    "--plotting-backend",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if VALUED.contains(&a.as_str()) {
            i += 1; // skip its value
        } else if !a.starts_with('-') {
            filters.push(a.clone());
        }
        i += 1;
    }
    if args.iter().any(|a| a == "--list") {
        println!("memory: bench");
        return;
    }
    if !filters.is_empty() && !filters.iter().any(|f| "memory".contains(f.as_str())) {
        return;
    }
    println!("memory (bytes per subscription, 100000 threads, 4 subscribers each)");
    print!("{}", memory_table(&[100_000]));
}

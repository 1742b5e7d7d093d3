//! `memory`: heap bytes per subscription of every design, measured with a
//! counting global allocator on the standard workload (N threads, 4
//! subscribers each, N/2 connections).
//!
//! ```text
//! cargo run --release -p switchboard-benches --bin memory -- [THREADS...]
//! ```
//!
//! Default: 100000 threads. `cargo bench` prints the same table (the
//! `memory` bench target).

use switchboard_benches::alloc::CountingAlloc;
use switchboard_benches::measure::memory_table;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    let mut sizes = Vec::new();
    for a in std::env::args().skip(1) {
        match a.parse::<usize>() {
            Ok(n) if n > 0 => sizes.push(n),
            _ => {
                eprintln!("usage: memory [THREADS...]   (default 100000)");
                std::process::exit(2);
            }
        }
    }
    if sizes.is_empty() {
        sizes.push(100_000);
    }
    print!("{}", memory_table(&sizes));
}

//! One writer's loops on one thread, for counting instructions: the
//! `targets` write pair (`measure::pairs` on the standard workload) and
//! the reconnect storm's writers run one after the other
//! (`storm::batches`, `storm::singles`), each in a function of its own so
//! that callgrind can count just that function.
//!
//! ```text
//! cargo build --release -p switchboard-benches --bin write_loop
//! valgrind --tool=callgrind --toggle-collect='write_loop::pairs' \
//!     target/release/write_loop pairs 100000 50000
//! valgrind --tool=callgrind --toggle-collect='write_loop::storm' \
//!     target/release/write_loop storm-batches
//! ```
//!
//! Callgrind's "Collected" count divided by the pairs is the figure the
//! history's instruction tables give (the same count on every run); the
//! printed time is one run's wall time, as noisy as the machine.
//!
//! | arguments | runs |
//! |---|---|
//! | `pairs N P` | `P` subscribe+unsubscribe pairs at `N` threads, switchboard |
//! | `pairs-mutex N P` | the same through `pl_mutex` |
//! | `storm-batches` | both storm writers' work, with batches |
//! | `storm-singles` | the same, one call at a time |
//! | `storm-mutex` | the same through `pl_mutex` |

use std::time::{Duration, Instant};
use switchboard_benches::designs::{PlMutex, Switchboard};
use switchboard_benches::workload::Workload;
use switchboard_benches::{measure, storm, Registry};

const USAGE: &str =
    "usage: write_loop pairs|pairs-mutex THREADS PAIRS | storm-batches|storm-singles|storm-mutex";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> Option<u64> { args.get(i)?.parse().ok() };
    let took = match (args.first().map(String::as_str), number(1), number(2)) {
        (Some("pairs"), Some(n), Some(p)) if p > 0 => per_pair::<Switchboard>(n, p),
        (Some("pairs-mutex"), Some(n), Some(p)) if p > 0 => per_pair::<PlMutex>(n, p),
        (Some("storm-batches"), _, _) => {
            let r: Switchboard = storm::build();
            timed(|| storm(|w| storm::batches(&r.0, w)))
        }
        (Some("storm-singles"), _, _) => {
            let r: Switchboard = storm::build();
            timed(|| storm(|w| storm::singles(&r, w)))
        }
        (Some("storm-mutex"), _, _) => {
            let r: PlMutex = storm::build();
            timed(|| storm(|w| storm::singles(&r, w)))
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    println!("{took:?}");
}

/// Time per pair of `pairs` pairs at `threads` threads.
fn per_pair<R: Registry>(threads: u64, pairs: u64) -> Duration {
    let w = Workload::standard(threads as usize);
    let r: R = w.build();
    let took = self::pairs(&r, &w, pairs);
    took / u32::try_from(pairs).unwrap_or(u32::MAX)
}

/// The pair loop, alone in its function (callgrind's toggle).
#[inline(never)]
fn pairs<R: Registry>(r: &R, w: &Workload, pairs: u64) -> Duration {
    measure::pairs(r, w, pairs, 7)
}

/// Every storm writer's part, one after the other, alone in its function.
#[inline(never)]
fn storm(writer: impl Fn(u64)) {
    for w in 0..storm::WRITERS {
        writer(w);
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

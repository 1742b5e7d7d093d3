//! What a write costs as threads that have read through the engine pile
//! up: before dropping a replaced version the writer looks at every such
//! thread's slots (one cache line per thread, `core/src/store/hazard.rs`),
//! as `ArcSwap::swap` walks its per-thread debt nodes.
//!
//! ```text
//! cargo run --release -p switchboard-benches --bin writer_scan
//! ```
//!
//! Builds 10k threads of 4 subscribers over 1k connections, then times
//! 200k subscribe+unsubscribe pairs with 0, 16, 64 and 256 idle threads
//! alive that each made one `has_subscribers` read (so each holds a slot
//! block) and then wait.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;
use switchboard_core::{Caps, Engine};

const CONNS: u64 = 1_000;
const THREADS: u64 = 10_000;
const PAIRS: u64 = 200_000;

fn main() {
    let engine = Arc::new(Engine::<u64, u64>::new());
    for c in 0..CONNS {
        engine.connect(c, Caps::NONE);
    }
    for t in 0..THREADS {
        for k in 0..4 {
            engine.subscribe(t, (t * 7 + k * 13) % CONNS).unwrap();
        }
    }
    let mut idle = Vec::new();
    for n in [0usize, 16, 64, 256] {
        let started = Arc::new(Barrier::new(n - idle.len() + 1));
        while idle.len() < n {
            let (engine, started) = (Arc::clone(&engine), Arc::clone(&started));
            let (stop, wait) = mpsc::channel::<()>();
            let handle = thread::spawn(move || {
                std::hint::black_box(engine.has_subscribers(3));
                started.wait();
                let _ = wait.recv();
            });
            idle.push((stop, handle));
        }
        started.wait();
        let start = Instant::now();
        for i in 0..PAIRS {
            let t = (i * 7_919) % THREADS;
            let c = (i * 104_729) % CONNS;
            engine.subscribe(t, c).unwrap();
            engine.unsubscribe(t, c);
        }
        let per = start.elapsed().as_nanos() as f64 / PAIRS as f64;
        println!("{n:>4} idle threads that read once: subscribe+unsubscribe {per:.0} ns");
    }
    for (stop, handle) in idle {
        drop(stop);
        handle.join().unwrap();
    }
}

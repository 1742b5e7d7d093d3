//! The `sim` workload: a scripted app server run against one design.
//!
//! The script, identical for every design (same seed, same id sequence):
//!
//! * **setup**: `clients` connections connect (one in four with the
//!   [`ATTEST`] capability) and each subscribes to `subs_per_client` random
//!   threads among `threads`; every thread that gets a subscriber is loaded:
//!   a listener is installed and its serving task spawned on a worker.
//! * **run**, for `duration`, on `event_threads` event sources and one
//!   client-churn thread, while `workers` single-threaded tokio runtimes run
//!   the listener tasks:
//!   * an event source picks a random thread and fans an event out to its
//!     subscribers (timed: *fan-out*); every 4th event also goes to the
//!     thread's listener as a command; every 64th event asks the first
//!     [`ATTEST`]-capable subscriber's thread listener for an answer and
//!     waits for it (timed: *request round trip*);
//!   * the churn thread picks a random client, disconnects it (timed:
//!     *disconnect*), unloads each thread that left idle with
//!     `remove_thread_if_idle` (its listener is cleared), reconnects the same
//!     id and subscribes it to fresh random threads (timed: *subscribe*),
//!     loading any thread that has no listener.
//! * **shutdown**: every listener is cleared, workers stop, and the final
//!   graph is validated.
//!
//! Progress is reported once a second through the caller's callback.

mod host;
mod report;
mod tally;

pub use host::{GraphCounts, ListenerTask, Served, SimHost};
pub use report::{fmt_bytes, fmt_count, table, Report};
pub use tally::Tally;

use tally::SharedTally;

use crate::alloc;
use crate::hist::Histogram;
use crate::workload::{conn_id, thread_id, Rng, ATTEST};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The sim's knobs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Length of the run phase, per design.
    pub duration: Duration,
    /// Thread id range.
    pub threads: usize,
    /// Client (connection) id range.
    pub clients: usize,
    /// Threads each client subscribes to on (re)connect.
    pub subs_per_client: usize,
    /// Event-source OS threads.
    pub event_threads: usize,
    /// Worker OS threads running listener tasks.
    pub workers: usize,
    /// Seed of the script.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            duration: Duration::from_secs(5),
            threads: 10_000,
            clients: 20_000,
            subs_per_client: 4,
            event_threads: 2,
            workers: 2,
            seed: 42,
        }
    }
}

/// Runs the script against `H`, calling `progress` with one line a second.
pub fn run<H: SimHost>(cfg: &Config, mut progress: impl FnMut(&str)) -> Report {
    let heap_base = alloc::reset_peak();
    let served = Arc::new(Served::default());
    let workers = Workers::start(cfg.workers.max(1));
    let threads = cfg.threads.max(1);
    let clients = cfg.clients.max(1);

    let setup_start = Instant::now();
    let host = H::new();
    let mut rng = Rng::new(cfg.seed);
    let mut loads = 0;
    for i in 0..clients {
        let c = conn_id(i);
        host.connect(c, caps_of(i));
        for _ in 0..cfg.subs_per_client {
            if let Some(e) = host.subscribe(thread_id(rng.below(threads)), c) {
                if let Some(task) = host.ensure_listener(&e, &served) {
                    workers.spawn(task);
                    loads += 1;
                }
            }
        }
    }
    let setup = setup_start.elapsed();
    progress(&format!(
        "[{:<11}] setup {:.2}s: {clients} clients, {loads} threads loaded, heap {}",
        H::NAME,
        setup.as_secs_f64(),
        fmt_bytes(alloc::current() - heap_base),
    ));

    let stop = AtomicBool::new(false);
    let tallies: Vec<SharedTally> = (0..=cfg.event_threads)
        .map(|_| SharedTally::default())
        .collect();
    let run_start = Instant::now();
    let (fan_out, request, subscribe, disconnect) = thread::scope(|s| {
        let events: Vec<_> = (0..cfg.event_threads)
            .map(|i| {
                let (host, stop, tally) = (&host, &stop, &tallies[i]);
                let seed = cfg.seed.wrapping_add(1 + i as u64);
                s.spawn(move || event_source(host, threads, seed, tally, stop))
            })
            .collect();
        let churn = {
            let (host, stop, tally) = (&host, &stop, &tallies[cfg.event_threads]);
            let (workers, served) = (&workers, &served);
            s.spawn(move || churn(host, cfg, tally, stop, workers, served))
        };

        let mut last = Tally::default();
        let mut tick = 1;
        loop {
            let end = run_start + cfg.duration;
            let next = run_start + Duration::from_secs(tick);
            let now = Instant::now();
            if now >= end {
                break;
            }
            thread::sleep(next.min(end) - now);
            if Instant::now() >= next {
                let now_tally = tallies
                    .iter()
                    .fold(Tally::default(), |a, t| a.add(t.read()));
                progress(&progress_line(H::NAME, tick, &last, &now_tally, heap_base));
                last = now_tally;
                tick += 1;
            }
        }
        // Relaxed: a stop flag; the joins below synchronise.
        stop.store(true, Ordering::Relaxed);
        let mut fan_out = Histogram::new();
        let mut request = Histogram::new();
        for h in events {
            let (f, r) = h.join().expect("event source panicked");
            fan_out.merge(&f);
            request.merge(&r);
        }
        let (sub, disc) = churn.join().expect("churn thread panicked");
        (fan_out, request, sub, disc)
    });
    let elapsed = run_start.elapsed();
    let tally = tallies
        .iter()
        .fold(Tally::default(), |a, t| a.add(t.read()));

    host.clear_all_listeners();
    workers.stop();
    let counts = host.counts();
    let valid = host.validate();
    let peak_heap = alloc::peak() - heap_base;
    drop(host);
    Report {
        name: H::NAME,
        setup,
        elapsed,
        tally,
        served: (
            served.notifies.load(Ordering::Relaxed),
            served.requests.load(Ordering::Relaxed),
        ),
        fan_out,
        subscribe,
        disconnect,
        request,
        peak_heap,
        counts,
        valid,
    }
}

/// Client `i`'s caps: one in four can answer requests.
fn caps_of(i: usize) -> u64 {
    if i % 4 == 0 {
        ATTEST
    } else {
        0
    }
}

fn event_source<H: SimHost>(
    host: &H,
    threads: usize,
    seed: u64,
    shared: &SharedTally,
    stop: &AtomicBool,
) -> (Histogram, Histogram) {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut fan_out = Histogram::new();
    let mut request = Histogram::new();
    let mut k = 0u64;
    // Relaxed: a stop flag polled in a loop.
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            let t = thread_id(rng.below(threads));
            let start = Instant::now();
            let mut n = 0;
            host.fan_out(t, |c| {
                black_box(c);
                n += 1;
            });
            fan_out.record(start.elapsed());
            tally.fanouts += 1;
            tally.deliveries += n;
            if k % 4 == 0 {
                if host.notify(t, k) {
                    tally.notifies += 1;
                } else {
                    tally.notifies_dropped += 1;
                }
            }
            if k % 64 == 0 && host.first_subscriber_with(t, ATTEST).is_some() {
                let start = Instant::now();
                match host.request(t, k) {
                    Some(answer) => {
                        debug_assert_eq!(answer, k + 1);
                        request.record(start.elapsed());
                        tally.requests += 1;
                    }
                    None => tally.requests_failed += 1,
                }
            }
            k += 1;
        }
        shared.publish(&tally);
    }
    (fan_out, request)
}

fn churn<H: SimHost>(
    host: &H,
    cfg: &Config,
    shared: &SharedTally,
    stop: &AtomicBool,
    workers: &Workers,
    served: &Arc<Served>,
) -> (Histogram, Histogram) {
    let mut rng = Rng::new(cfg.seed ^ 0xC0FF_EE00);
    let mut tally = Tally::default();
    let mut subscribe = Histogram::new();
    let mut disconnect = Histogram::new();
    let (threads, clients) = (cfg.threads.max(1), cfg.clients.max(1));
    // Relaxed: a stop flag polled in a loop.
    while !stop.load(Ordering::Relaxed) {
        let i = rng.below(clients);
        let c = conn_id(i);
        let start = Instant::now();
        let emptied = host.disconnect(c);
        disconnect.record(start.elapsed());
        tally.disconnects += 1;
        for t in emptied {
            if host.remove_thread_if_idle(t) {
                tally.unloads += 1;
            }
        }
        host.connect(c, caps_of(i));
        for _ in 0..cfg.subs_per_client {
            let t = thread_id(rng.below(threads));
            let start = Instant::now();
            let entry = host.subscribe(t, c);
            subscribe.record(start.elapsed());
            tally.subscribes += 1;
            if let Some(task) = entry.and_then(|e| host.ensure_listener(&e, served)) {
                workers.spawn(task);
                tally.loads += 1;
            }
        }
        shared.publish(&tally);
    }
    (subscribe, disconnect)
}

fn progress_line(name: &str, tick: u64, last: &Tally, now: &Tally, heap_base: isize) -> String {
    format!(
        "[{name:<11} {tick:>3}s] fan-outs {}/s | subscribes {}/s | disconnects {}/s | requests {}/s | unloads {}/s | heap {}",
        fmt_count((now.fanouts - last.fanouts) as f64),
        fmt_count((now.subscribes - last.subscribes) as f64),
        fmt_count((now.disconnects - last.disconnects) as f64),
        fmt_count((now.requests - last.requests) as f64),
        fmt_count((now.unloads - last.unloads) as f64),
        fmt_bytes(alloc::current() - heap_base),
    )
}

/// Worker OS threads, each running a current-thread tokio runtime that
/// serves the listener tasks spawned onto it.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
    next: AtomicUsize,
}

impl Workers {
    fn start(n: usize) -> Self {
        let mut workers = Workers {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            next: AtomicUsize::new(0),
        };
        for i in 0..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let thread = thread::Builder::new()
                .name(format!("sim-worker-{i}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("a current-thread runtime builds");
                    let _ = handle_tx.send(rt.handle().clone());
                    rt.block_on(async {
                        let _ = stop_rx.await;
                    });
                })
                .expect("worker thread spawns");
            workers
                .handles
                .push(handle_rx.recv().expect("worker sends its handle"));
            workers.stops.push(stop_tx);
            workers.threads.push(thread);
        }
        workers
    }

    fn spawn(&self, task: ListenerTask) {
        // Relaxed: round-robin counter.
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(task));
    }

    fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for t in self.threads {
            t.join().expect("worker panicked");
        }
    }
}

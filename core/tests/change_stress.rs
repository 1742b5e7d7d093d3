//! Guarantee 9 under concurrency, sized by the `const`s below: two writers
//! churn on overlapping ids while a follower applies the change feed to a
//! replica (`common::Replica`, which checks versions are contiguous and
//! every change legal in order).
//!
//! * With a log large enough to hold the whole run, the follower never
//!   lags, and ends equal to the final snapshot.
//! * With a tiny log and a follower that dawdles, it lags, resyncs by
//!   the crate docs' recipe, and still ends equal.
// Tests use std primitives freely; the shim rule is for the library.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::Replica;
use switchboard_core::{Caps, Config, Engine, Lagged};

type E = Engine<u64, u64>;

const WRITERS: u64 = 2;
const WRITER_OPS: usize = 20_000;
const THREADS: u64 = 16;
const CONNS: u64 = 8;
/// The tiny log of the lagging run.
const TINY_LOG: usize = 2;
/// The dawdling follower sleeps this long every `DAWDLE_EVERY` batches.
const DAWDLE: Duration = Duration::from_millis(1);
const DAWDLE_EVERY: usize = 200;
/// A run that takes longer than this is stuck.
const DEADLINE: Duration = Duration::from_secs(120);

/// A small xorshift generator: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One writer's churn: every kind of write, on ids the other writer uses
/// too.
fn churn(e: &E, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..WRITER_OPS {
        let (t, c) = (rng.below(THREADS), rng.below(CONNS));
        match rng.below(16) {
            0..=1 => {
                e.connect(c, Caps(rng.below(4)));
            }
            2 => {
                e.disconnect(c);
            }
            3..=8 => {
                let _ = e.subscribe(t, c);
            }
            9..=12 => {
                e.unsubscribe(t, c);
            }
            13 => {
                e.thread(t);
            }
            14 => {
                e.remove_thread(t);
            }
            _ => {
                e.remove_thread_if_idle(t);
            }
        }
    }
}

/// Runs the writers while `follow` follows; returns what `follow` returns.
fn with_writers<R>(e: &Arc<E>, follow: impl FnOnce(&AtomicUsize) -> R) -> R {
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for w in 0..WRITERS {
            let (e, done) = (Arc::clone(e), &done);
            s.spawn(move || {
                churn(&e, 17 + w);
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        follow(&done)
    })
}

/// Whether the writers are done and `r` has every version.
fn caught_up(e: &E, done: &AtomicUsize, r: &Replica) -> bool {
    done.load(Ordering::SeqCst) == WRITERS as usize && r.version == e.version()
}

#[test]
fn smoke() {
    let e = E::with_config(Config::default().change_log(WRITER_OPS));
    let (mut r, mut feed) = Replica::resync(&e);
    churn(&e, 1);
    while let Some(b) = feed.try_next().unwrap() {
        r.apply(&b).unwrap();
    }
    r.check_eq(&e.snapshot()).unwrap();
}

#[test]
fn follower_applies_every_batch_of_two_racing_writers() {
    let log = WRITERS as usize * WRITER_OPS + 1;
    let e = Arc::new(E::with_config(Config::default().change_log(log)));
    let (mut r, mut feed) = Replica::resync(&e);
    let start = Instant::now();
    let batches = with_writers(&e, |done| {
        let mut batches = 0usize;
        while !caught_up(&e, done, &r) {
            assert!(start.elapsed() < DEADLINE, "stuck at version {}", r.version);
            let Some(b) = feed.next_timeout(Duration::from_millis(10)).unwrap() else {
                continue;
            };
            r.apply(&b).unwrap();
            // Never visible before its version is published.
            assert!(e.snapshot().version() >= b.version);
            batches += 1;
        }
        batches
    });
    r.check_eq(&e.snapshot()).unwrap();
    assert_eq!(batches as u64, e.version(), "one batch per version");
}

#[test]
fn lagging_follower_resyncs_by_the_recipe_and_ends_equal() {
    let e = Arc::new(E::with_config(Config::default().change_log(TINY_LOG)));
    let (mut r, mut feed) = Replica::resync(&e);
    // A certain lag first: more versions than the log keeps.
    for c in 0..=TINY_LOG as u64 {
        e.connect(c, Caps::NONE);
    }
    let start = Instant::now();
    let resyncs = with_writers(&e, |done| {
        let (mut resyncs, mut applied) = (0usize, 0usize);
        while !caught_up(&e, done, &r) {
            assert!(start.elapsed() < DEADLINE, "stuck at version {}", r.version);
            match feed.next_timeout(Duration::from_millis(10)) {
                Ok(Some(b)) => {
                    r.apply(&b).unwrap();
                    applied += 1;
                    if applied % DAWDLE_EVERY == 0 {
                        thread::sleep(DAWDLE);
                    }
                }
                Ok(None) => {}
                Err(Lagged) => {
                    assert_eq!(feed.try_next(), Err(Lagged), "lag is sticky");
                    (r, feed) = Replica::resync(&e);
                    resyncs += 1;
                }
            }
        }
        resyncs
    });
    r.check_eq(&e.snapshot()).unwrap();
    assert!(resyncs >= 1);
    eprintln!("resynced {resyncs} times");
}

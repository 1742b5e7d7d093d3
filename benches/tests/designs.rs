//! Every design against one plain model, so the benchmarks compare designs
//! that do the same thing; plus race checks and a short sim run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard_benches::designs::{PlMutex, Reference, Switchboard};
use switchboard_benches::sim::{self, Config};
use switchboard_benches::workload::Rng;
use switchboard_benches::{for_each_design, Registry};

fn subscribers<R: Registry>(r: &R, t: u64) -> BTreeSet<u64> {
    let mut s = BTreeSet::new();
    r.for_each_subscriber(t, |c| {
        assert!(s.insert(c), "{c} visited twice");
    });
    s
}

fn smoke_one<R: Registry>() {
    let r = R::new();
    assert!(r.connect(1, 0));
    assert!(!r.connect(1, 1), "second connect only updates caps");
    assert!(r.subscribe(10, 2).is_none(), "dead connection refused");
    assert!(subscribers(&r, 10).is_empty());
    assert!(r.subscribe(10, 1).is_some());
    assert!(r.subscribe(10, 1).is_some(), "idempotent");
    assert!(r.connect(2, 0));
    assert!(r.subscribe(10, 2).is_some());
    assert!(r.subscribe(11, 2).is_some());
    assert_eq!(subscribers(&r, 10), BTreeSet::from([1, 2]));
    assert!(r.unsubscribe(10, 1));
    assert!(!r.unsubscribe(10, 1));
    assert_eq!(r.disconnect(2), [10, 11]);
    assert_eq!(r.disconnect(2), Vec::<u64>::new());
    assert!(r.subscribe(10, 2).is_none(), "no zombie after disconnect");
    r.validate().unwrap();
}

#[test]
fn smoke() {
    for_each_design!(R => { smoke_one::<R>(); });
}

/// Random operations applied to the design and to `BTreeMap`s.
fn model_one<R: Registry>(seed: u64) {
    let r = R::new();
    let mut live: BTreeSet<u64> = BTreeSet::new();
    let mut subs: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut rng = Rng::new(seed);
    for step in 0..2_000 {
        let t = rng.below(12) as u64;
        let c = rng.below(8) as u64;
        match rng.below(10) {
            0 => assert_eq!(r.connect(c, 0), live.insert(c), "step {step}"),
            1 => {
                let mut emptied: Vec<u64> = Vec::new();
                if live.remove(&c) {
                    for (t, set) in subs.iter_mut() {
                        if set.remove(&c) && set.is_empty() {
                            emptied.push(*t);
                        }
                    }
                }
                assert_eq!(r.disconnect(c), emptied, "step {step}");
            }
            2..=5 => {
                let ok = live.contains(&c);
                if ok {
                    subs.entry(t).or_default().insert(c);
                }
                assert_eq!(r.subscribe(t, c).is_some(), ok, "step {step}");
            }
            6 | 7 => {
                let existed = subs.get_mut(&t).is_some_and(|s| s.remove(&c));
                assert_eq!(r.unsubscribe(t, c), existed, "step {step}");
            }
            _ => {
                let want = subs.get(&t).cloned().unwrap_or_default();
                assert_eq!(subscribers(&r, t), want, "step {step}");
            }
        }
    }
    r.validate().unwrap();
}

#[test]
fn every_design_matches_the_model() {
    for seed in 0..4 {
        for_each_design!(R => { model_one::<R>(seed); });
    }
}

/// `subscribe(t, c)` racing `disconnect(c)`: once the last disconnect
/// returns, `c` follows nothing.
fn no_zombies_one<R: Registry>() {
    let r = R::new();
    for round in 0..200u64 {
        let c = round % 4;
        r.connect(c, 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for t in 0..20 {
                    let _ = r.subscribe(t, c);
                }
            });
            s.spawn(|| {
                r.disconnect(c);
            });
        });
        r.disconnect(c);
        for t in 0..20 {
            assert!(
                !subscribers(&r, t).contains(&c),
                "{}: zombie {t}-{c}",
                R::NAME
            );
        }
        r.validate().unwrap();
    }
}

#[test]
fn no_zombie_subscriptions() {
    for_each_design!(R => { no_zombies_one::<R>(); });
}

fn tiny() -> Config {
    Config {
        duration: Duration::from_millis(300),
        threads: 200,
        clients: 100,
        ..Config::default()
    }
}

#[test]
fn sim_runs_clean_on_every_host() {
    let reports = [
        sim::run::<Switchboard>(&tiny(), |_| {}),
        sim::run::<Reference>(&tiny(), |_| {}),
        sim::run::<PlMutex>(&tiny(), |_| {}),
    ];
    for r in &reports {
        assert_eq!(r.valid, Ok(()), "{}", r.name);
        assert!(r.tally.fanouts > 0, "{}: no fan-out", r.name);
        assert!(r.tally.subscribes > 0, "{}: no churn", r.name);
        assert!(r.tally.requests > 0, "{}: no request answered", r.name);
        assert_eq!(
            r.counts.connections, 100,
            "{}: every client reconnected",
            r.name
        );
        assert!(r.served.1 >= r.tally.requests, "{}", r.name);
    }
    let table = sim::table(&reports);
    assert!(table.contains("| fan-outs |"), "{table}");
    assert!(
        table.contains("| switchboard vs reference | switchboard vs pl_mutex |"),
        "{table}"
    );
    assert!(
        table.contains("final snapshot validate() | ok | ok | ok |"),
        "{table}"
    );
}

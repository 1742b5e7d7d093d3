//! Unit tests against a `BTreeSet`, with held versions; sized for
//! valgrind (CI runs `store::` under memcheck).

use super::*;
use crate::store::node::Version;
use std::collections::BTreeSet;

type Writer = crate::store::testing::TestWriter<OrdTree<u64>>;

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `0, step, 2 * step, ...`: `n` keys.
fn spaced(n: u64, step: u64) -> impl ExactSizeIterator<Item = u64> {
    (0..n as usize).map(move |i| i as u64 * step)
}

/// Checks `tree` and compares it with `model`.
fn assert_matches(tree: &OrdTree<u64>, model: &BTreeSet<u64>) {
    tree.check().unwrap();
    assert_eq!(tree.len(), model.len());
    assert_eq!(tree.iter().len(), model.len());
    assert!(tree.iter().eq(model.iter().copied()));
    assert_eq!(tree.first(), model.first().copied());
}

#[test]
fn smoke() {
    let mut w = Writer::new();
    assert!(w.write(|t, x| t.insert(2, x)));
    assert!(w.write(|t, x| t.insert(1, x) && t.insert(3, x)));
    assert!(!w.write(|t, x| t.insert(2, x)));
    assert_eq!(w.latest.iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(w.latest.contains(&2) && !w.latest.contains(&4));
    assert_eq!((w.latest.len(), w.latest.first()), (3, Some(1)));
    assert!(w.write(|t, x| t.remove(&1, x)));
    assert!(!w.write(|t, x| t.remove(&1, x)));
    w.latest.check().unwrap();
    assert_eq!(w.latest.first(), Some(2));
    assert!(w.write(|t, x| t.remove(&2, x) && t.remove(&3, x)));
    assert!(w.latest.is_empty() && w.latest.first().is_none());
    assert_eq!(w.latest.iter().next(), None);
    w.latest.check().unwrap();
    w.collect(&[]);
    assert_eq!(w.reclaimer.pending(), 0);
}

#[test]
fn matches_a_btreeset_and_keeps_held_versions() {
    const TARGET: usize = 6_000;
    let mut w = Writer::new();
    let mut model = BTreeSet::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut held: Vec<(Version, OrdTree<u64>, BTreeSet<u64>)> = Vec::new();
    let (mut growing, mut max_height, mut txns) = (true, 0, 0);
    while growing || !model.is_empty() {
        txns += 1;
        let ops = 1 + rng.next() % 64;
        w.write(|t, txn| {
            for _ in 0..ops {
                let r = rng.next();
                let key = (r >> 8) % 30_000;
                // Growing: 3 in 4 inserts; shrinking: 3 in 4 removes.
                if (r % 4 != 0) == growing {
                    assert_eq!(t.insert(key, txn), model.insert(key));
                } else {
                    // Mostly a present key, now and then an absent one.
                    let k = model.range(key..).next().copied().unwrap_or(key);
                    assert_eq!(t.remove(&k, txn), model.remove(&k));
                }
            }
        });
        assert_matches(&w.latest, &model);
        for _ in 0..8 {
            let k = rng.next() % 30_001;
            assert_eq!(w.latest.contains(&k), model.contains(&k));
        }
        max_height = max_height.max(w.latest.height);
        growing &= model.len() < TARGET;
        if txns % 25 == 0 {
            held.push((w.version, w.latest.share(), model.clone()));
        }
        if held.len() > 4 {
            // Let go of the oldest held version, still intact.
            let (_, old, m) = held.remove(0);
            assert_matches(&old, &m);
        }
        let versions: Vec<Version> = held.iter().map(|h| h.0).collect();
        w.collect(&versions);
    }
    assert!(max_height >= 3, "grew only to height {max_height}");
    assert_eq!(w.latest.height, 0);
    for (_, old, m) in &held {
        assert_matches(old, m);
    }
    held.clear();
    w.collect(&[]);
    assert_eq!(w.reclaimer.pending(), 0);
}

#[test]
fn sequential_inserts_and_removes_reach_height_four() {
    const N: u64 = 20_000;
    for ascending in [true, false] {
        let mut w = Writer::new();
        let key = |i: u64| if ascending { i } else { N - 1 - i };
        let mut model = BTreeSet::new();
        for batch in (0..N).collect::<Vec<_>>().chunks(500) {
            w.write(|t, x| batch.iter().for_each(|&i| assert!(t.insert(key(i), x))));
            model.extend(batch.iter().map(|&i| key(i)));
            w.latest.check().unwrap();
            w.collect(&[]);
        }
        assert_matches(&w.latest, &model);
        assert_eq!(w.latest.height, 4);
        for batch in (0..N).collect::<Vec<_>>().chunks(500) {
            w.write(|t, x| batch.iter().for_each(|&i| assert!(t.remove(&key(i), x))));
            batch.iter().for_each(|&i| assert!(model.remove(&key(i))));
            assert_matches(&w.latest, &model);
            w.collect(&[]);
        }
        assert_eq!(w.reclaimer.pending(), 0);
    }
}

#[test]
fn from_sorted_then_discard_all() {
    for n in [0u64, 1, 63, 64, 65, 2049, 100_000] {
        let mut w = Writer::new();
        let model: BTreeSet<u64> = (0..n).map(|i| 3 * i).collect();
        let touched = w.write(|t, x| {
            *t = OrdTree::from_sorted(model.iter().copied(), x);
            x.touched()
        });
        assert_eq!(touched, n > 0);
        assert_matches(&w.latest, &model);
        assert!(!w.latest.contains(&1) && w.latest.contains(&(3 * n.max(1) - 3)) == (n > 0));
        let mut it = w.latest.iter();
        for left in (0..n as usize).rev() {
            assert!(it.next().is_some());
            assert_eq!(it.size_hint(), (left, Some(left)));
        }
        assert_eq!((it.next(), it.next()), (None, None));
        // A held version survives later writes and the set's discard.
        let (v, old) = (w.version, w.latest.share());
        let mut later = model.clone();
        w.write(|t, x| {
            assert_eq!(t.insert(1, x), later.insert(1));
            assert_eq!(t.remove(&0, x), later.remove(&0));
        });
        assert_matches(&w.latest, &later);
        w.collect(&[v]);
        w.write(|t, x| t.discard_all(x));
        assert_matches(&w.latest, &BTreeSet::new());
        w.collect(&[v]);
        assert_matches(&old, &model);
        w.collect(&[]);
        assert_eq!(w.reclaimer.pending(), 0);
    }
}

#[test]
fn discarding_a_set_made_in_the_same_transaction_frees_it_at_once() {
    let mut w = Writer::new();
    w.write(|t, x| {
        *t = OrdTree::from_sorted(spaced(5_000, 1), x);
        for k in (0..5_000).step_by(7) {
            assert!(t.remove(&k, x));
        }
        t.check().unwrap();
        t.discard_all(x);
    });
    assert!(w.latest.is_empty());
    assert_eq!(w.reclaimer.pending(), 0);
}

#[test]
fn no_op_writes_touch_nothing() {
    let mut w = Writer::new();
    assert!(w.write(|t, x| !t.remove(&1, x) && !x.touched()));
    w.write(|t, x| *t = OrdTree::from_sorted(spaced(5_000, 2), x));
    let pending = w.reclaimer.pending();
    for k in [0, 2, 5_000, 9_998] {
        assert!(w.write(|t, x| !t.insert(k, x) && !x.touched()));
    }
    for k in [1, 5_001, 9_999, 20_000, u64::MAX] {
        assert!(w.write(|t, x| !t.remove(&k, x) && !x.touched()));
    }
    assert_eq!(w.reclaimer.pending(), pending);
    assert_matches(&w.latest, &spaced(5_000, 2).collect());
}

/// Times one insert+remove pair of a fresh key, per set size, in one
/// transaction per pair and in one per operation.
#[test]
#[ignore = "timing: cargo test --release --lib store::ordset -- --ignored --nocapture"]
fn measure_insert_remove_pairs() {
    use std::time::Instant;
    const PAIRS: u32 = 200_000;
    for n in [10u64, 10_000, 100_000] {
        let mut w = Writer::new();
        w.write(|t, x| *t = OrdTree::from_sorted(spaced(n, 2), x));
        let mut rng = Rng(42);
        let mut time = |per_op: bool| {
            let start = Instant::now();
            for p in 0..PAIRS {
                let k = 2 * (rng.next() % n) + 1;
                if per_op {
                    w.write(|t, x| t.insert(k, x));
                    w.write(|t, x| t.remove(&k, x));
                } else {
                    w.write(|t, x| t.insert(k, x) && t.remove(&k, x));
                }
                if p % 64 == 0 {
                    w.collect(&[]);
                }
            }
            start.elapsed() / PAIRS
        };
        let (pair_txn, op_txn) = (time(false), time(true));
        println!("n={n:>6}: pair/txn {pair_txn:?}, op/txn {op_txn:?}");
    }
}

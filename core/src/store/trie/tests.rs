//! Unit tests of the trie against a `BTreeMap`, with held versions.

use super::*;
use crate::sync::StdArc;
use std::collections::BTreeMap;

/// A key whose hash is all in our hands, to force collisions.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
struct Weak(u64);
impl Hash for Weak {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 % 3).hash(state); // only three distinct hashes
    }
}

type Writer<K, V> = crate::store::testing::TestWriter<Trie<K, V>>;

#[test]
fn smoke() {
    let mut w = Writer::new();
    assert_eq!(w.write(|t, x| t.insert(1u64, "a", x)), None);
    assert_eq!(w.write(|t, x| t.insert(1u64, "b", x)), Some("a"));
    assert_eq!(w.latest.get(&1), Some(&"b"));
    assert_eq!(w.latest.get(&2), None);
    assert_eq!(w.latest.len(), 1);
    assert_eq!(w.write(|t, x| t.remove(&1, x)), Some("b"));
    assert_eq!(w.latest.len(), 0);
    w.latest.check().unwrap();
    w.collect(&[]);
    assert_eq!(w.reclaimer.pending(), 0);
}

#[test]
fn matches_a_btreemap_and_keeps_held_versions() {
    let mut w = Writer::new();
    let mut model = BTreeMap::new();
    type Held = Vec<(Version, Trie<u64, u64>, BTreeMap<u64, u64>)>;
    let mut held: Held = Vec::new();
    let mut x = 12345u64;
    let steps = crate::store::testing::scaled(20_000);
    for step in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = x % 3000;
        if x % 3 == 0 {
            assert_eq!(w.write(|t, txn| t.remove(&key, txn)), model.remove(&key));
        } else {
            assert_eq!(
                w.write(|t, txn| t.insert(key, step, txn)),
                model.insert(key, step)
            );
        }
        if step % (steps / 10) == 0 {
            w.latest.check().unwrap();
            held.push((w.version, w.latest.share(), model.clone()));
        }
        if step % (steps / 4) == steps / 4 - 1 {
            // Let go of the oldest held version.
            held.remove(0);
        }
        let versions: Vec<Version> = held.iter().map(|h| h.0).collect();
        w.collect(&versions);
    }
    w.latest.check().unwrap();
    assert_eq!(w.latest.len(), model.len());
    for (k, v) in &model {
        assert_eq!(w.latest.get(k), Some(v));
    }
    // Held versions are untouched by later writes and still readable.
    for (_, old, m) in &held {
        old.check().unwrap();
        assert_eq!(old.len(), m.len());
        assert_eq!(old.sorted_keys(), m.keys().copied().collect::<Vec<_>>());
        for (k, v) in m {
            assert_eq!(old.get(k), Some(v));
        }
    }
    held.clear();
    w.collect(&[]);
    assert_eq!(w.reclaimer.pending(), 0);
}

#[test]
fn full_hash_collisions() {
    let mut w = Writer::new();
    for i in 0..30 {
        assert_eq!(w.write(|t, x| t.insert(Weak(i), i, x)), None);
        w.latest.check().unwrap();
    }
    assert_eq!(w.latest.len(), 30);
    for i in 0..30 {
        assert_eq!(w.latest.get(&Weak(i)), Some(&i));
    }
    w.write(|t, x| *t.path_mut(&Weak(4), x).unwrap() = 40);
    assert_eq!(w.latest.get(&Weak(4)), Some(&40));
    assert_eq!(w.write(|t, x| t.insert(Weak(4), 41, x)), Some(40));
    for i in 0..30 {
        assert!(w.write(|t, x| t.remove(&Weak(i), x)).is_some());
        w.latest.check().unwrap();
    }
    assert_eq!(w.latest.len(), 0);
    assert_eq!(w.write(|t, x| t.remove(&Weak(1), x)), None);
}

/// `path_mut` finds exactly the keys that are there: an absent key whose
/// slot holds another key's entry, leads to a child, is empty, or shares a
/// full hash with other keys (a collision node) gets `None`, and the
/// unchanged path copies leave both versions as they were.
#[test]
fn path_mut_finds_present_keys_only() {
    let mut w = Writer::new();
    w.write(|t, x| {
        for i in (0..2000u64).step_by(2) {
            t.insert(i, i, x);
        }
    });
    let before = w.latest.share();
    let v = w.version;
    for i in 0..2100u64 {
        let found = w.write(|t, x| t.path_mut(&i, x).map(|v| *v));
        assert_eq!(found, (i < 2000 && i % 2 == 0).then_some(i), "key {i}");
    }
    assert!(w.write(|t, x| t.path_mut(&3, x).is_none()));
    w.write(|t, x| *t.path_mut(&8, x).unwrap() = 80);
    w.collect(&[v]);
    assert_eq!(w.latest.get(&8), Some(&80));
    assert_eq!(before.get(&8), Some(&8));
    assert_eq!(w.latest.len(), 1000);
    w.latest.check().unwrap();
    before.check().unwrap();

    let mut c = Writer::new();
    c.write(|t, x| {
        for i in (0..12u64).step_by(2) {
            t.insert(Weak(i), i, x);
        }
    });
    for i in 0..14u64 {
        let found = c.write(|t, x| t.path_mut(&Weak(i), x).map(|v| *v));
        assert_eq!(
            found,
            (i < 12 && i % 2 == 0).then_some(i),
            "colliding key {i}"
        );
    }
    c.latest.check().unwrap();
}

#[test]
fn path_mut_copies_only_the_new_version() {
    let mut w = Writer::new();
    w.write(|t, x| {
        for i in 0..1000u64 {
            t.insert(i, i, x);
        }
    });
    let before = w.latest.share();
    let v = w.version;
    w.write(|t, x| *t.path_mut(&7, x).unwrap() = 70);
    assert!(w.write(|t, x| t.path_mut(&5000, x).is_none()));
    w.collect(&[v]);
    assert_eq!(w.latest.get(&7), Some(&70));
    assert_eq!(before.get(&7), Some(&7));
    before.check().unwrap();
    w.latest.check().unwrap();
}

#[test]
fn values_are_dropped_exactly_once() {
    let value: crate::store::deferred::HostValue = StdArc::new(());
    {
        let mut w = Writer::new();
        for round in 0..3u64 {
            w.write(|t, x| {
                for i in 0..500u64 {
                    t.insert(i, StdArc::clone(&value), x);
                }
            });
            let held = w.version;
            w.write(|t, x| {
                for i in (0..500u64).step_by(3 + round as usize) {
                    t.remove(&i, x);
                }
            });
            w.collect(&[held]);
            w.collect(&[]);
            assert_eq!(w.reclaimer.pending(), 0);
            // Only the latest version's entries hold clones now.
            assert_eq!(StdArc::strong_count(&value), 1 + w.latest.len());
        }
    }
    assert_eq!(StdArc::strong_count(&value), 1);
}

/// The deepest level a key sits at (0: the root), and how many keys sit in
/// collision nodes.
fn shape<K, V>(t: &Trie<K, V>) -> (u32, usize) {
    fn walk<K, V>(node: &Node<K, V>, shift: u32, deepest: &mut u32, collided: &mut usize) {
        let collision = is_collision(shift);
        let (children, entries) = node.parts(collision);
        if !entries.is_empty() {
            *deepest = (*deepest).max(shift / BITS);
        }
        if collision {
            *collided += entries.len();
        }
        for child in children {
            walk(child, shift + BITS, deepest, collided);
        }
    }
    let (mut deepest, mut collided) = (0, 0);
    if let Some(root) = &t.root {
        walk(root, 0, &mut deepest, &mut collided);
    }
    (deepest, collided)
}

#[test]
fn wide_keys_built_to_collide_unkeyed_spread_in_a_seeded_trie() {
    let keys = crate::hash::tests::colliding_wide_keys(2000);
    let mut w: Writer<(u64, u64), u64> = Writer::new();
    for (i, &k) in keys.iter().enumerate() {
        w.write(|t, x| t.insert(k, i as u64, x));
    }
    w.latest.check().unwrap();
    let (deepest, collided) = shape(&w.latest);
    // 2000 well-spread keys over 32-way levels: about three levels deep.
    assert_eq!(collided, 0, "keys in collision nodes");
    assert!(deepest <= 5, "keys {deepest} levels deep");
    // The forced-collision key type does reach collision nodes (the
    // measure above can see them).
    let mut weak = Writer::new();
    for i in 0..30 {
        weak.write(|t, x| t.insert(Weak(i), i, x));
    }
    assert_eq!(shape(&weak.latest).1, 30);
}

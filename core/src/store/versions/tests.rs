//! `Versions`' unit tests: the teardown frees every node, and a version
//! type that drops its `Keep` is refused.

use super::*;
use crate::store::publish::Roots;
use crate::store::set::SubscriberSet;
use crate::store::trie::Trie;

type Sets = Trie<u64, SubscriberSet<u64>>;

impl Roots for Sets {}

/// A version as the engine's `Graph` is: roots, number, `Keep`.
struct TestGraph {
    sets: Sets,
    version: Version,
    _keep: Keep,
}

impl Publish for TestGraph {
    type Roots = Sets;
    type Extra = ();

    fn wrap(sets: Sets, version: Version, keep: Keep) -> Self {
        TestGraph {
            sets,
            version,
            _keep: keep,
        }
    }
}

/// Adds `n` members to the set of `key` (a tree beyond 4).
fn fill(v: &Versions<TestGraph>, key: u64, n: u64) {
    v.write(
        |sets, txn, ()| {
            for c in 0..n {
                match sets.path_mut(&key, txn) {
                    Some(set) => {
                        set.insert(c, txn);
                    }
                    None => {
                        sets.insert(key, SubscriberSet::one(c), txn);
                    }
                }
            }
            (true, ())
        },
        |_, ()| {},
    );
}

#[test]
fn teardown_frees_every_node_after_the_last_version() {
    let v = Versions::<TestGraph>::new((), Trie::new);
    let nodes = v.node_count();
    for key in 0..40 {
        fill(&v, key, 30);
    }
    let held = Arc::clone(&*v.load());
    // Remove, replace and remove-and-read sets that are trees.
    let read = v.write(
        |sets, txn, ()| {
            let removed = sets.remove(&1, txn).expect("present");
            assert!(removed.is_empty(), "a removed value comes back released");
            let replaced = sets.insert(2, SubscriberSet::one(7), txn);
            assert!(replaced.is_some_and(|s| s.is_empty()));
            let len = sets.remove_with(&3, txn, |set, _| set.len());
            (true, len)
        },
        |_, ()| {},
    );
    assert_eq!(read, Some(30));
    assert!(nodes.live() > 0);
    drop(v);
    // The held version still reads its sets: nothing was freed under it.
    assert_eq!(held.sets.get(&1).map(|s| s.iter().count()), Some(30));
    assert_eq!(held.version, 40);
    assert!(nodes.live() > 0);
    drop(held);
    assert_eq!(nodes.live(), 0, "the last version frees every node");
}

/// A version type that loses its `Keep`: the store refuses to publish it.
struct Forgetful;

impl Publish for Forgetful {
    type Roots = Sets;
    type Extra = ();

    fn wrap(_: Sets, _: Version, _: Keep) -> Self {
        Forgetful
    }
}

#[test]
#[should_panic(expected = "must keep its `Keep`")]
fn a_version_that_drops_its_keep_is_not_published() {
    let _ = Versions::<Forgetful>::new((), Trie::new);
}

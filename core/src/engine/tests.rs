//! The engine's use of its [`Config`]: the hash seed.

use super::Engine;
use crate::config::Config;

/// Where `engine`'s tries place the ids 0..64.
fn placement(engine: &Engine<u64, u64>) -> Vec<u64> {
    let graph = engine.latest();
    (0..64u64)
        .map(|t| {
            let (a, b) = (graph.threads.hasher(), graph.conns.hasher());
            assert_eq!(a.hash(&t), b.hash(&t), "one seed for every trie");
            a.hash(&t)
        })
        .collect()
}

#[test]
fn a_fixed_seed_gives_every_engine_the_same_placement() {
    let seeded = |s| placement(&Engine::with_config(Config::default().hash_seed(s)));
    assert_eq!(seeded(9), seeded(9));
    assert_ne!(seeded(9), seeded(10), "the seed changes nothing");
}

#[test]
fn without_a_seed_every_engine_draws_its_own() {
    assert_ne!(placement(&Engine::new()), placement(&Engine::new()));
}

//! The trie's keyed hash.
//!
//! Gateways name threads and connections by what clients send (room names,
//! session ids), so the trie's placement must not be predictable: with an
//! unkeyed hash, keys wider than a word (`(u64, u64)`, `[u8; 16]`) can be
//! built to collide completely, and colliding keys make the trie's
//! operations linear in their number. Every engine therefore hashes with a
//! seed of its own: random at [`Engine::new`](crate::Engine::new), or the
//! one [`Config::hash_seed`](crate::Config::hash_seed) names for
//! reproducible runs.
//!
//! The hash is foldhash's fast variant (the default hasher of `hashbrown`):
//! a word key costs one 64×64→128-bit multiply of the key with the seeds,
//! folded (high half XOR low half). The trie consumes the low bits first
//! (five per level), and for small ids foldhash's low bits are uneven under
//! some seeds (3,200 ids put 8 in one of 32 first-level slots in one CI
//! run; 57 of 2,000 seeds spread them outside 45-160 per slot), so its
//! result goes through one more mixing step: fold the high half down,
//! multiply by an odd constant, fold again (0 of 2,000 seeds outside
//! 61-160). Each step is invertible, so the step adds no collision. It is
//! "minimally DoS-resistant" in foldhash's words: it defeats collisions
//! built without knowing the seed, not an attacker who can read the
//! process's memory or time many lookups to recover it.

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;
use std::hash::{BuildHasher, Hash};

/// How an engine's tries place keys: a seeded hash state, the same for
/// every version of the engine's tries (a key's place never changes while
/// the engine lives).
#[derive(Clone, Debug)]
pub(crate) struct KeyHasher(SeedableRandomState);

impl KeyHasher {
    /// A random seed (per engine, and per process for the shared part).
    pub(crate) fn random() -> Self {
        KeyHasher(SeedableRandomState::random())
    }

    /// A fixed seed: the same placement in every run and process.
    pub(crate) fn seeded(seed: u64) -> Self {
        KeyHasher(SeedableRandomState::with_seed(
            seed,
            SharedSeed::global_fixed(),
        ))
    }

    /// A seed with a given shared part (tests of the fold below).
    #[cfg(test)]
    fn with_shared(seed: u64, shared: &'static SharedSeed) -> Self {
        KeyHasher(SeedableRandomState::with_seed(seed, shared))
    }

    /// The hash of `key`.
    #[inline(always)]
    pub(crate) fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        // Each step is invertible (an xor-shift, a multiply by an odd
        // constant), and every input bit reaches the low five.
        let h = self.0.hash_one(key);
        let h = (h ^ (h >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::KeyHasher;
    use std::collections::HashSet;

    #[test]
    fn distinct_small_ids_spread_over_the_low_bits() {
        for hasher in [
            KeyHasher::seeded(0),
            KeyHasher::seeded(7),
            KeyHasher::random(),
        ] {
            let mut seen = [0u32; 32];
            for id in 0u64..3200 {
                seen[(hasher.hash(&id) & 31) as usize] += 1;
            }
            // 100 expected per bucket; a poor mixer puts everything in a few.
            assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
        }
    }

    /// The same under 256 shared seeds (what a process draws at random):
    /// without the final mixing step, some of them leave first-level slots
    /// nearly empty.
    #[test]
    fn small_ids_spread_under_every_shared_seed() {
        // `with_shared` takes a `'static` seed: 256 of them, built at
        // compile time (not leaked, so the sanitizers' leak check stays quiet).
        static SHARED: [foldhash::SharedSeed; 256] = {
            let mut seeds = [const { foldhash::SharedSeed::from_u64(0) }; 256];
            let mut i = 0;
            while i < 256 {
                seeds[i] = foldhash::SharedSeed::from_u64(i as u64);
                i += 1;
            }
            seeds
        };
        for (s, shared) in (0u64..).zip(&SHARED) {
            let hasher = KeyHasher::with_shared(s.wrapping_mul(0x9E37_79B9), shared);
            let mut seen = [0u32; 32];
            for id in 0u64..3200 {
                seen[(hasher.hash(&id) & 31) as usize] += 1;
            }
            assert!(
                seen.iter().all(|&n| (45..=160).contains(&n)),
                "shared seed {s}: {seen:?}"
            );
        }
    }

    /// The unkeyed hash the trie used before: fold each word in with one
    /// multiply, fold the high half down. Kept here as the attack target.
    fn unkeyed(words: &[u64]) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let h = words
            .iter()
            .fold(0u64, |h, &x| (h.rotate_left(23) ^ x).wrapping_mul(K));
        h ^ (h >> 32) ^ (h >> 47)
    }

    /// `n` two-word keys that all have one unkeyed hash: the second word
    /// cancels whatever the first one did to the state.
    pub(crate) fn colliding_wide_keys(n: u64) -> Vec<(u64, u64)> {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        const TARGET: u64 = 0x0123_4567_89ab_cdef;
        (1..=n)
            .map(|a| (a, TARGET ^ a.wrapping_mul(K).rotate_left(23)))
            .collect()
    }

    #[test]
    fn wide_keys_built_to_collide_unkeyed_do_not_collide_seeded() {
        let keys = colliding_wide_keys(2000);
        // The attack works on the unkeyed hash: one hash for all.
        let unkeyed: HashSet<u64> = keys.iter().map(|&(a, b)| unkeyed(&[a, b])).collect();
        assert_eq!(unkeyed.len(), 1);
        for hasher in [
            KeyHasher::seeded(0),
            KeyHasher::seeded(1),
            KeyHasher::random(),
        ] {
            let hashes: HashSet<u64> = keys.iter().map(|k| hasher.hash(k)).collect();
            assert_eq!(hashes.len(), keys.len(), "seeded hashes collide");
            // And they spread over the trie's first level.
            let mut seen = [0u32; 32];
            for k in &keys {
                seen[(hasher.hash(k) & 31) as usize] += 1;
            }
            assert!(seen.iter().all(|&n| (20..=110).contains(&n)), "{seen:?}");
        }
    }

    #[test]
    fn a_seed_fixes_the_placement_and_seeds_differ() {
        let keys: Vec<u64> = (0..64).collect();
        let of = |h: &KeyHasher| keys.iter().map(|k| h.hash(k)).collect::<Vec<_>>();
        assert_eq!(of(&KeyHasher::seeded(42)), of(&KeyHasher::seeded(42)));
        assert_ne!(of(&KeyHasher::seeded(42)), of(&KeyHasher::seeded(43)));
        assert_ne!(of(&KeyHasher::random()), of(&KeyHasher::random()));
    }
}

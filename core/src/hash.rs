//! A cheap, well-mixed 64-bit hash for the trie's keys.
//!
//! Keys are small `Copy` ids (u64 newtypes in practice), so the hasher
//! folds each written word with one multiply by an odd constant and folds
//! the high half down, so the low bits the trie consumes first (five per
//! level) depend on the whole id. Two instructions on the read path instead
//! of SipHash's dozens. Not DoS-resistant: ids are chosen by the host, not
//! by clients.

use std::hash::{Hash, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(K);
    }

    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The fold already multiplied by an odd constant (a bijection on
        // every run of low bits); folding the high half down lets every
        // input bit reach the low bits the trie consumes first.
        let h = self.0;
        h ^ (h >> 32) ^ (h >> 47)
    }
}

/// The trie hash of `key`.
#[inline]
pub(crate) fn hash_of<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FoldHasher::default();
    key.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::hash_of;

    #[test]
    fn distinct_small_ids_spread_over_the_low_bits() {
        let mut seen = [0u32; 32];
        for id in 0u64..3200 {
            seen[(hash_of(&id) & 31) as usize] += 1;
        }
        // 100 expected per bucket; a poor mixer puts everything in a few.
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }
}

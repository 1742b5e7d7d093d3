//! The crate's one source of random numbers: node ids, epoch candidates,
//! the start of routed command ids, reconnect jitter. None of them needs
//! to be secret, only to differ between nodes and runs.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A random `u64`: the clock and the process id hashed with std's random
/// SipHash keys (a fresh `RandomState`, so fresh keys, per draw).
pub(crate) fn u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// 32 random hex digits.
pub(crate) fn hex() -> String {
    format!("{:016x}{:016x}", u64(), u64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn smoke_draws_differ() {
        let draws: Vec<u64> = (0..100).map(|_| super::u64()).collect();
        assert!(draws.iter().any(|&d| d != draws[0]), "not constant");
        let (a, b) = (super::hex(), super::hex());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

//! The benchmark workloads: which connections and threads exist and who
//! follows what. Every design is built from the same [`Workload`].
//!
//! Ids are scattered 64-bit values (a bijective mix of an index), as real
//! thread and connection ids are: no design gets dense small keys.

use crate::registry::Registry;

/// Subscribers per thread in the standard workload.
pub const SUBS_PER_THREAD: usize = 4;
/// Extra live connections with no subscription, used by write workloads so
/// that each subscribe adds a new edge.
pub const SPARE_CONNS: usize = 64;
/// The capability bit the sim and workloads use for "can answer requests".
pub const ATTEST: u64 = 1;

/// SplitMix64's finaliser: a bijection on `u64` that scatters indexes.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The id of thread number `i`.
#[inline]
pub fn thread_id(i: usize) -> u64 {
    mix(i as u64)
}

/// The id of connection number `i` (disjoint from thread ids only by
/// chance; the two id spaces are separate anyway).
#[inline]
pub fn conn_id(i: usize) -> u64 {
    mix((i as u64) | 1 << 63)
}

/// A small, fast PRNG (xorshift64*) for picking ids inside timed loops.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(mix(seed) | 1)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// A graph to build into a design: `threads.len()` threads with
/// [`SUBS_PER_THREAD`] subscribers each among `threads.len() / 2`
/// connections (so each connection follows about 8 threads), plus
/// [`SPARE_CONNS`] live connections that follow nothing.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Thread ids.
    pub threads: Vec<u64>,
    /// Subscribed connection ids, with their caps.
    pub conns: Vec<(u64, u64)>,
    /// Live connections with no subscription.
    pub spare: Vec<u64>,
    /// `(thread, connection)` edges.
    pub edges: Vec<(u64, u64)>,
}

impl Workload {
    /// The standard workload at `n_threads` threads (at least 8).
    pub fn standard(n_threads: usize) -> Self {
        let n_threads = n_threads.max(8);
        let n_conns = n_threads / 2;
        let threads: Vec<u64> = (0..n_threads).map(thread_id).collect();
        let conns: Vec<(u64, u64)> = (0..n_conns)
            .map(|i| (conn_id(i), if i % 4 == 0 { ATTEST } else { 0 }))
            .collect();
        let edges = (0..n_threads)
            .flat_map(|i| {
                let conns = &conns;
                (0..SUBS_PER_THREAD)
                    .map(move |k| (thread_id(i), conns[(i * SUBS_PER_THREAD + k) % n_conns].0))
            })
            .collect();
        let spare = (n_conns..n_conns + SPARE_CONNS).map(conn_id).collect();
        Workload {
            threads,
            conns,
            spare,
            edges,
        }
    }

    /// One thread followed by `subscribers` connections (the
    /// `join_big_thread` workload), plus the spare connections.
    pub fn big_thread(subscribers: usize) -> Self {
        let t = thread_id(0);
        let conns: Vec<(u64, u64)> = (0..subscribers).map(|i| (conn_id(i), 0)).collect();
        let edges = conns.iter().map(|&(c, _)| (t, c)).collect();
        let spare = (subscribers..subscribers + SPARE_CONNS)
            .map(conn_id)
            .collect();
        Workload {
            threads: vec![t],
            conns,
            spare,
            edges,
        }
    }

    /// A new `R` holding this graph.
    pub fn build<R: Registry>(&self) -> R {
        let r = R::new();
        let mut all = self.conns.clone();
        all.extend(self.spare.iter().map(|&c| (c, 0)));
        r.populate(&all, &self.edges);
        r
    }

    /// A connection id that is not in the workload (for connect/disconnect
    /// cycles), numbered `i`.
    pub fn fresh_conn(&self, i: usize) -> u64 {
        conn_id(self.conns.len() + SPARE_CONNS + 1 + i % 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_shape() {
        let w = Workload::standard(1000);
        assert_eq!(w.threads.len(), 1000);
        assert_eq!(w.conns.len(), 500);
        assert_eq!(w.edges.len(), 4000);
        let mut edges = w.edges.clone();
        edges.sort_unstable();
        edges.dedup();
        assert_eq!(edges.len(), 4000, "no duplicate edge");
    }

    #[test]
    fn rng_below_is_in_range() {
        let mut r = Rng::new(7);
        for n in [1, 2, 3, 1000, 100_000] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }
}

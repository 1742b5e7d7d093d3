//! Loom model checks for `switchboard-core`.
//!
//! The models live in `tests/`, one file per guarantee, and compile only
//! under `--cfg loom` (a normal `cargo test --workspace` builds them empty).
//! Run them with:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p switchboard-loom-tests
//! ```
//!
//! Never with `--workspace`: `--cfg loom` reaches every crate in the build.
//!
//! Under `--cfg loom`, `switchboard-core`'s `sync` module swaps its
//! primitives for loom's: mutexes, condition variables, atomics, the
//! engine's `Arc`s, a mutex around an `Arc` for `ArcSwap`, and a mutex'd
//! queue for crossbeam's channel. What that does not prove is written in
//! `core/src/sync.rs`: arc-swap's and crossbeam's own internals, the
//! passage of time (no clock: timed waits time out at once), and `SeqCst`
//! beyond `AcqRel`.
#![forbid(unsafe_code)]

/// Small helpers shared by the models.
pub mod support {
    /// The engine type every model uses: `u64` ids, `u32` host state,
    /// `u32` commands.
    pub type Engine<M = u32> = switchboard_core::Engine<u64, u64, u32, M>;
}

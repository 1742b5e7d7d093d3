//! Loom model checks for `switchboard-core`.
//!
//! The models live in `tests/`, one file per guarantee, and compile only
//! under `--cfg loom` (a normal `cargo test --workspace` builds them empty).
//! Run them with:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p switchboard-loom-tests
//! RUSTFLAGS="--cfg loom --cfg switchboard_loom_publish" LOOM_MAX_PREEMPTIONS=3 \
//!     CARGO_TARGET_DIR=target/loom-publish cargo test --release -p switchboard-loom-tests
//! ```
//!
//! The second line is the second loom configuration (see
//! `core/src/sync.rs`): the snapshot cell publishes through a loom atomic
//! with arc-swap's orderings (`Acquire` load, `AcqRel` swap) instead of a
//! mutex, which would synchronize every reader with every writer and hide
//! any weakened ordering on the publish path. That cell keeps every
//! version alive, so `reclamation.rs` runs in the first configuration only;
//! every other model runs in both. CI runs both (`.ci/run`).
//!
//! Measured on the project's 2-core machine (shared with other builds):
//! a few seconds for the models of each configuration once built; each configuration's release
//! build takes 2-5 minutes from scratch (its own target directory), about
//! 2 minutes after a change to the core. Never with `--workspace`:
//! `--cfg loom` reaches every crate in the build.
//!
//! | file | guarantee | property asserted |
//! |---|---|---|
//! | `subscribe_vs_disconnect.rs` | 3 | no snapshot shows the connection afterwards; the subscribe failed or was undone |
//! | `subscribe_unsubscribe_watch.rs` | 2, 4 | indexes agree; the watch ends on the right value with an odd number of flips |
//! | `snapshot_consistency.rs` | 2 | every snapshot taken during writes validates and shows a consistent state |
//! | `idle_unload_vs_subscribe.rs` | 3 | the subscriber's entry is the engine's current entry; never a subscriber on a removed one |
//! | `listener_vs_send.rs` | 5 | every message reaches exactly one listener (FIFO) or comes back; the old token fired |
//! | `request_vs_replace.rs` | 6 | the pending reply resolves (a hang is a deadlock loom reports) |
//! | `stale_clear.rs` | 5 | a stale `clear_listener_if` never removes the newer listener |
//! | `watch_wakeup.rs` | 4 | the waiter never sleeps through a change, is woken after publish, sees close last |
//! | `reclamation.rs` | 2, 7 | no reader reaches a trie node the writer freed (freed nodes are poisoned under loom), whether it holds a snapshot, reads once, or caches its version in a `Reader`; a `Reader` never reads an older version than before |
//! | `async_wakeups.rs` | facade | every future and stream is woken by its event (no lost wake-up) |
//! | `change_feed.rs` | 9 | a received batch is already published (snapshot version ≥ its version); a consumer waiting untimed in `next_timeout`, or a `ChangeStream`, is woken by the publish; batches are contiguous or the feed says it lagged |
//! | `waiter_list.rs` | 4, 10 | the waiter list: an async or blocked waiter racing a change is woken; a waiter dropped while pending frees its slot and steals no wake-up |
//! | `bounded_queue.rs` | 10 | bounded `send` vs `recv` vs `clear_listener`: no command lost or duplicated, no deadlock; a waiting send gets its command back when the listener is cleared or dropped; `send_async` is woken by the receive that makes room |
//! | `shutdown_vs_set_listener.rs` | 11 | after `shutdown` reports none running no listener serves, and one started after it is already cancelled and closed |
//! | `clear_vs_recv.rs` | 5 | once `recv` fails on a cleared listener, `is_cancelled()` is true |
//! | `cancel_wait_vs_replace.rs` | 5 | the untimed `CancelToken::wait()` returns when `set_listener` replaces it, only once fired |
//! | `incarnations.rs` | 12 | `connect_with` replacing an incarnation racing a `subscribe_if` naming the old one leaves no edge on the new one; a fan-out after the replacement returned never yields the old data |
//! | `subscribe_fast_path.rs` | 3 | `subscribe`'s fast path returns the entry of the version whose edge it saw, racing removal and re-creation |
//! | `get_or_start.rs` | 5 | `set_listener_if_none` and `Supervisor::start` racing on a thread with no listener (and no listener home yet): exactly one starts, the thread has a listener; a send racing the first listener is queued for it or given back |
//!
//! Each model was checked for teeth by breaking the core on purpose (the
//! liveness check in `subscribe`, notify-before-publish, the generation
//! check in `clear_listener_if`, the lock in the watch's notify, the re-check
//! in `Listener::poll_recv`, reclamation ignoring held versions, the change
//! log appended before the publish, the append waking no waiter): the
//! corresponding model failed each time.
//! Each file names, in its header, the planted bug it is known to catch
//! (the newer ones from a planted-bug audit).
//!
//! Under `--cfg loom`, `switchboard-core`'s `sync` module swaps its
//! primitives for loom's: mutexes, condition variables, atomics, the
//! engine's `Arc`s, a mutex around an `Arc` for `ArcSwap`, and a mutex'd
//! queue for crossbeam's channel. What that does not prove is written in
//! `core/src/sync.rs`: arc-swap's and crossbeam's own internals, the
//! passage of time (no clock: timed waits time out at once), and `SeqCst`
//! beyond `AcqRel`. The trie's node pool is bypassed under loom (every
//! node is its own allocation, poisoned when freed); the pool is a
//! single-threaded structure of the writer's, covered by unit tests and by
//! valgrind in both modes.
#![forbid(unsafe_code)]

/// Small helpers shared by the models.
pub mod support {
    /// The engine type every model uses: `u64` ids, `u32` host state,
    /// `u32` commands.
    pub type Engine<M = u32> = switchboard_core::Engine<u64, u64, u32, M>;
}

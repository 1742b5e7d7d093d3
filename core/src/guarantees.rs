//! The guarantees of `../shared/SPEC.md`, each with the tests that check it.
//!
//! This module holds no code. Test files are under `core/tests/`; loom
//! models (each asserting its property under every interleaving loom
//! explores, bounded preemptions) are under `loom-tests/tests/`.
//!
//! 1. **Lock-free reads.** Reads are one `ArcSwap::load()` plus trie lookups
//!    (`engine.rs`); nothing on the read path takes a lock.
//!    `subscribers` and `snapshot` allocate nothing (inline or shared sets,
//!    a load guard). A [`Reader`](crate::Reader) replaces the load by one
//!    relaxed pointer compare while nothing new is published. Checked by:
//!    `stress.rs` (readers run while writers race) and the benchmarks
//!    (reader throughput under a churning writer).
//! 2. **Linearizable, consistent snapshots.** One publish per operation,
//!    under the writer mutex. Checked by: `Snapshot::validate` in
//!    `snapshot.rs`, `model.rs` (every op against a `BTreeMap` model) and
//!    `stress.rs` (snapshots validated while writers race); loom:
//!    `snapshot_consistency.rs`, `subscribe_unsubscribe_watch.rs`; a
//!    long-lived `Reader` is checked against the model after every op in
//!    `model.rs`, and must never read an older version than before (loom:
//!    `reclamation.rs`, `cached_reader_races_publish_and_reclaim`).
//! 3. **No zombie subscriptions.** `subscribe` checks liveness on the graph
//!    it publishes; `disconnect` removes every edge of `c` in the same
//!    publish. Checked by: `connections.rs` (reused ids start empty),
//!    `stress.rs` (subscribe racing disconnect); loom:
//!    `subscribe_vs_disconnect.rs`, `idle_unload_vs_subscribe.rs`.
//! 4. **Watches see every change.** Version bumps only on a real flip, after
//!    publish, under the writer mutex. Checked by: `watches.rs`, `model.rs`
//!    (version counts against the model), `stress.rs` (a waiter racing a
//!    toggling writer); loom: `watch_wakeup.rs` (no lost wake-up, notified
//!    only after publish).
//! 5. **Listeners.** One slot per entry, every transition under its mutex.
//!    Checked by: `listeners.rs`, `stress.rs` (listener churn: every message
//!    reaches exactly one listener or comes back); loom:
//!    `listener_vs_send.rs`, `stale_clear.rs`.
//! 6. **Requests never hang.** The reply slot leaves "waiting" exactly once,
//!    on send or on drop. Checked by: `requests.rs`; loom:
//!    `request_vs_replace.rs` (a hang is a deadlock loom reports).
//! 7. **Nothing leaks.** Retired graph versions are dropped by the writer
//!    once unreferenced, and replaced trie nodes given back to the writer's
//!    node pool once no held version can see them; the last version's drop
//!    frees the rest, pool included. Checked by:
//!    `leaks.rs` (host state and entries freed by the next write and by
//!    the engine's drop), `reclamation.rs` (readers holding versions across
//!    churn, cached `Reader`s across churn, a snapshot outliving its
//!    engine; run under valgrind memcheck
//!    in CI), the node store's unit tests; loom: `reclamation.rs` (freed nodes
//!    are poisoned under loom, so reaching one fails the model).
//! 8. **Bad input is an answer, not a panic.** Checked by: `connections.rs`,
//!    `subscriptions.rs`, `threads.rs`, `listeners.rs` (unknown ids, double
//!    disconnects, duplicate subscribes, sends with no listener).

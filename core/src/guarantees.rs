//! The engine's guarantees (a line each in the repository's `README.md`,
//! under "Guarantees", with the same numbers), each with the tests that
//! check it.
//!
//! This module holds no code. Test files are under `core/tests/`; loom
//! models (each asserting its property under every interleaving loom
//! explores, bounded preemptions) are under `loom-tests/tests/`, and run in
//! two configurations: the snapshot cell as a mutex, and publishing through
//! an atomic with arc-swap's orderings (`switchboard_loom_publish`), which
//! checks the orderings of the publish path (see `sync.rs`).
//!
//! 1. **Lock-free reads.** Reads are one `ArcSwap::load()` plus trie lookups
//!    (`engine/mod.rs`); nothing on the read path takes a lock.
//!    `subscribers` and `snapshot` allocate nothing (inline or shared sets,
//!    a load guard). A [`Reader`](crate::Reader) replaces the load by one
//!    relaxed pointer compare while nothing new is published. Checked by:
//!    `stress.rs` (readers run while writers race) and the benchmarks
//!    (reader throughput under a churning writer).
//! 2. **Linearizable, consistent snapshots.** One publish per operation,
//!    under the writer mutex, or one for a group of combined operations
//!    (writers queued for the mutex, `store/versions/`), each of which
//!    takes effect at that publish and returns only after it. Checked by:
//!    `combining.rs` (concurrent writers each see their own write once
//!    they return, and the change feed replays every write once);
//!    loom: `combining.rs` (two and three writers: each result, the
//!    published versions holding exactly their writes, no writer left
//!    asleep); `Snapshot::validate` in
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
//!    `subscribe_vs_disconnect.rs`, `idle_unload_vs_subscribe.rs`,
//!    `subscribe_fast_path.rs` (the already-subscribed fast path racing a
//!    removal and re-creation of the thread).
//! 4. **Watches see every change.** Version bumps only on a real flip, after
//!    publish, under the writer mutex. Checked by: `watches.rs`, `model.rs`
//!    (version counts against the model), `stress.rs` (a waiter racing a
//!    toggling writer); loom: `watch_wakeup.rs` (no lost wake-up, notified
//!    only after publish), `async_wakeups.rs`.
//! 5. **Listeners.** One slot per entry, every transition under its mutex.
//!    Checked by: `listeners.rs`, `stress.rs` (listener churn: every message
//!    reaches exactly one listener or comes back); loom:
//!    `listener_vs_send.rs`, `stale_clear.rs`, `clear_vs_recv.rs` (a
//!    listener whose queue closed is cancelled), `cancel_wait_vs_replace.rs`
//!    (the untimed `CancelToken::wait` returns). The get-or-start
//!    (`set_listener_if_none`, the facade's `Supervisor::start`) starts
//!    exactly one listener however many callers race, and the lazily
//!    allocated listener home is built once: `listener_home.rs`, the
//!    facade's `supervise.rs`, `benches/tests/lazy_home.rs` (no home
//!    until the first listener); loom: `get_or_start.rs`.
//! 6. **Requests never hang.** The reply slot leaves "waiting" exactly once,
//!    on send or on drop. Checked by: `requests.rs`; loom:
//!    `request_vs_replace.rs` (a hang is a deadlock loom reports).
//! 7. **Nothing leaks.** Retired graph versions are dropped by the writer
//!    once unreferenced, and replaced trie nodes given back to the writer's
//!    node pool once no held version can see them; the last version's drop
//!    frees the rest, pool included. Checked by:
//!    `leaks.rs` (host state and entries freed by the next write and by
//!    the engine's drop; every trie node given back, counted by the pool),
//!    `model.rs` and `stress.rs` (every node given back at the end; debug
//!    builds also check the count whenever a pool is dropped), `reclamation.rs` (readers holding versions across
//!    churn, cached `Reader`s across churn, a snapshot outliving its
//!    engine; run under valgrind memcheck
//!    in CI), the node store's unit tests; loom: `reclamation.rs` (freed nodes
//!    are poisoned under loom, so reaching one fails the model).
//! 8. **Bad input is an answer, not a panic.** Checked by: `connections.rs`,
//!    `subscriptions.rs`, `threads.rs`, `listeners.rs` (unknown ids, double
//!    disconnects, duplicate subscribes, sends with no listener).
//! 9. **The feed is the truth.** Each publishing write records its changes
//!    inside its write closure and appends them to the change log
//!    (`changes.rs`) after the graph is published, under the writer mutex,
//!    so batches come in version order with no gap; a feed behind the
//!    retained window gets `Lagged`. The log is a few striped short locks:
//!    a writer never waits for a consumer to catch up (at most for one
//!    batch copy out of the stripe it appends to). Checked by: `replica.rs`
//!    (the replica law over thousands of random sequences, each batch's
//!    exact changes, the retention window, `Stats` against a brute-force
//!    count after every op), `model.rs` (a version per changing op, none
//!    for no-ops; `Stats` against the model), `changes.rs` (numbering,
//!    `Lagged`, waiting, waker registration), `change_stress.rs` (a
//!    follower of two racing writers ends equal with contiguous versions;
//!    with a tiny log it lags, resyncs by the recipe and ends equal); loom:
//!    `change_feed.rs` (a received batch is already published, a waiting
//!    consumer is woken by the publish, contiguous-or-lagged, the async
//!    stream is woken). The cost of the copy is measured by the benches'
//!    `subscribe_unsubscribe_feed` group.
//! 10. **Backpressure without loss or deadlock.** A bounded queue never
//!     holds more than its capacity (crossbeam's bounded channel, every
//!     queueing under the slot's mutex); a command that cannot be queued
//!     comes back in [`SendError`](crate::SendError) or
//!     [`NoListener`](crate::NoListener); a send waiting for room waits
//!     outside the slot's lock on the queue's event count, which every
//!     receive from a bounded queue and every close moves (`queue.rs`), so
//!     it wakes when the listener receives and fails with its command when
//!     the listener is replaced, cleared or dropped. Checked by: `queues.rs`
//!     (capacity under concurrent producers with every kind of send, a send
//!     waiting when the listener is cleared, replaced, dropped or removed, a
//!     panicking listener task, replacements racing waiting senders: every
//!     command received once or given back), `waiters.rs` (the waiter list: dropped
//!     waiters free their slots); facade: `send.rs` (`send_async` woken by
//!     the receive, the latest waker woken, cancel safety); loom:
//!     `bounded_queue.rs` (send vs recv vs clear: no command lost or
//!     duplicated, no deadlock, the command comes back),
//!     `waiter_list.rs` (register, wake and deregister races).
//! 11. **Shutdown is complete.** `shutdown` marks the engine's listener
//!     registry shut down (so `set_listener` hands back a closed listener),
//!     clears every current listener, and waits for the registry's count of
//!     live `Listener` handles to reach zero. Checked by: `shutdown.rs`
//!     (prompt tasks, a task holding its listener past the timeout named in
//!     `still_running`, listeners of detached entries); facade:
//!     `shutdown.rs` (`shutdown_async` resolves on the last drop); loom:
//!     `shutdown_vs_set_listener.rs` (no listener serves after shutdown
//!     reports none running; one started after it is already closed).
//! 12. **Incarnations never mix.** Each live connection carries its
//!     incarnation (a number the writer hands out, strictly increasing per
//!     engine, never live again once ended) and its data in its entry of
//!     the graph; `connect_with` ends a live incarnation and starts the new
//!     one in one publish, and `disconnect_if` / `subscribe_if` /
//!     `unsubscribe_if` compare the incarnation on the graph they publish,
//!     under the writer mutex, so an operation naming an ended incarnation
//!     changes and publishes nothing.
//!     A fan-out reads the data from the same version as the subscriber
//!     set, so it never yields an incarnation that version had ended.
//!     Checked by: `model.rs` (`connect_with`, `disconnect_if`,
//!     `subscribe_if` and `unsubscribe_if` with the current, an ended and a never-issued
//!     incarnation among every other op, against the model: stale ops
//!     change nothing and take no version; `data`, `incarnation`,
//!     `is_subscribed` and the data fan-out of the engine, snapshots and a
//!     long-lived `Reader` always give the current incarnation's; every new
//!     incarnation exceeds all earlier ones), `replica.rs` (the exact
//!     changes of each of these ops, the replica law), `incarnations.rs`
//!     (the feed of a replacement, `connect` keeping the session, ended
//!     data dropped once no version shows it, and
//!     `readers_never_see_an_ended_incarnation`: a writer cycling
//!     incarnations against two readers fanning out with data, which
//!     never see an incarnation older than one whose `connect_with` had
//!     returned, never go back, and a stale closer whose every
//!     `disconnect_if` / `subscribe_if` changes nothing); loom:
//!     `incarnations.rs` (`connect_with` replacing an incarnation racing
//!     a `subscribe_if` naming the old one leaves no zombie edge; a fan-out
//!     after the replacement returned never yields the old data).
//! 13. **Host code cannot break the engine.** A write runs inside one store
//!     transaction that lists every node it makes; host code that panics
//!     unwinds through it uncommitted, which frees those nodes, takes the
//!     nodes it retired off the retired list and publishes nothing, so the
//!     graph, the version number, the change log, the counts and the
//!     watches are as before, and the writer mutex is released by the
//!     unwind. Values a freed node held (thread entries, connection data)
//!     and values a write creates go to a list the writing thread drops
//!     after the mutex (`store/deferred.rs`), so no host destructor runs
//!     under it; watch flips after a publish look nothing up. A write from
//!     host code running inside a write panics instead of deadlocking. A
//!     read's hazard pin is cleared by its drop, on an unwind too. With
//!     combining, each write has its own transaction on its own thread: one
//!     that panics abandons only itself, and the writes of its group that
//!     wait for it to publish are woken to publish themselves.
//!     Checked by: `host_code.rs` (a proptest harness against the reference
//!     model whose keys, states and data panic in `Hash`, `Eq`, `Ord`,
//!     `Clone`, `Default`, `Drop` or `thread_with`'s init at the N-th call:
//!     after each caught panic the engine agrees with the model as if the
//!     call had not been made, or, for a destructor, as if it had completed;
//!     the snapshot validates, the change feed replays to the model with no
//!     gap, watch versions match, and at the end no node and no host value
//!     is leaked or dropped twice; also run under valgrind in CI), the three
//!     programs that broke the engine (a panicking `Hash` in `subscribe`, a
//!     panicking state destructor in reclamation, destructors that call
//!     each writing method), a nested write from host code, and a panicking
//!     read visitor (no version stays pinned); `shutdown.rs`
//!     (`every_live_handle_of_a_thread_counts_until_dropped`); store unit
//!     tests `hazard::tests` (`the_scan_sees_a_pin_at_every_depth`,
//!     `a_panicking_read_unpins`); loom: `store::hazard::loom_model`
//!     (`a_pin_in_the_last_slot_of_a_panicking_read_is_seen_then_cleared`);
//!     `combining.rs` (`a_write_that_panics_in_a_group_takes_nothing_else_with_it`,
//!     `a_waker_that_panics_in_a_publish_leaves_nothing_for_the_next_one`);
//!     loom: `combining.rs` (`a_panicking_writer_does_not_strand_a_deferred_one`).

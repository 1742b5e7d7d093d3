//! Catching up, against a real redis-server: a backlog of large payloads
//! is read in byte-bounded slices without stalling Redis for other nodes,
//! a catch-up read that times out keeps the subscription connection, many
//! threads caught up at once do not make the liveness probe replace a
//! healthy connection, and an epoch change is reported even when the new
//! head is already past the old one.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use switchboard_core::Engine;
use switchboard_redis::{Config, Delivery, Node, ResetReason};

const MIB: usize = 1024 * 1024;

/// A node whose host reads nothing until `gate` is notified.
async fn gated_member(config: Config) -> (Member, Arc<tokio::sync::Notify>) {
    let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
    let (node, mut deliveries) = Node::start(Arc::clone(&engine), config.delivery_buffer(1))
        .await
        .expect("node starts");
    let m = Member {
        engine,
        node,
        log: Log::default(),
    };
    let gate = Arc::new(tokio::sync::Notify::new());
    let (g, log) = (Arc::clone(&gate), Arc::clone(&m.log));
    tokio::spawn(async move {
        g.notified().await;
        while let Some(d) = deliveries.recv().await {
            log.lock().unwrap().push(d);
        }
    });
    (m, gate)
}

fn pubsub_clients(server: &RedisServer) -> usize {
    server
        .cmd::<String>(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .lines()
        .count()
}

/// Publishes `n` payloads of `size` bytes to `t` from `node`.
async fn publish_big(node: &Node<u64>, t: u64, n: usize, size: usize, tag: &str) -> Vec<Sent> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut payload = format!("{tag}-{i}-").into_bytes();
        payload.resize(size, b'z');
        let at = Instant::now();
        let r = node.publish(t, &payload).await.expect("publish");
        out.push(Sent {
            at,
            t,
            seq: r.seq,
            epoch: r.epoch,
            payload,
        });
    }
    out
}

/// Builds a backlog of `n` payloads of 1 MiB on thread 1 for a gated node
/// that Redis has disconnected (its pub/sub output buffer limit is 256 kB).
async fn backlog(server: &RedisServer, config: impl Fn() -> Config, n: usize) -> Backlog {
    let a = member(config()).await;
    let (b, gate) = gated_member(config()).await;
    b.follow(&[1]).await;
    // Each node has a subscription connection (its probe channel): two.
    assert_eq!(pubsub_clients(server), 2);
    let mut sent = publish_big(&a.node, 1, 2, MIB, "first").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pubsub_clients(server) > 1 {
        assert!(Instant::now() < deadline, "Redis dropped the gated node");
        sent.extend(publish_big(&a.node, 1, 1, MIB, "more").await);
    }
    sent.extend(publish_big(&a.node, 1, n, MIB, "backlog").await);
    Backlog { a, b, gate, sent }
}

struct Backlog {
    a: Member,
    b: Member,
    gate: Arc<tokio::sync::Notify>,
    sent: Vec<Sent>,
}

/// Small publishes to thread 2 every 5 ms until `stop`: (failures, the
/// slowest answer).
fn small_publisher(
    node: Node<u64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Duration, usize)> {
    tokio::spawn(async move {
        let (mut failed, mut slowest, mut ok) = (0, Duration::ZERO, 0);
        for _ in 0..10_000 {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let at = Instant::now();
            match node.publish(2, b"small").await {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
            slowest = slowest.max(at.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (failed, slowest, ok)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_backlog_is_caught_up_without_stalling_redis() {
    let Some(server) = RedisServer::start_with(
        "large_backlog_is_caught_up_without_stalling_redis",
        &["--client-output-buffer-limit", "pubsub 256kb 128kb 1"],
    ) else {
        return;
    };
    const BACKLOG: usize = 96;
    let Backlog { a, b, gate, sent } =
        backlog(&server, || test_config(&server.url()), BACKLOG).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let small = small_publisher(a.node.clone(), Arc::clone(&stop));
    let reconnects_before = b.node.stats().reconnects;
    let started = Instant::now();
    gate.notify_one();
    settle(&b.log, &sent, Duration::from_secs(20)).await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (failed, slowest, ok) = small.await.unwrap();
    let r = check(&b.log.lock().unwrap(), &sent, &HashMap::new());
    println!(
        "caught up {} MiB in {took:?}; other publishes: {ok} ok, {failed} failed, slowest {slowest:?}; {:?}",
        sent.len(),
        b.node.stats()
    );
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    assert!(r.resets.is_empty(), "{r:?}");
    assert!(
        b.node.stats().reconnects <= reconnects_before + 1,
        "one reconnect (the cut), no more: {:?}",
        b.node.stats()
    );
    assert!(ok > 0);
    assert_eq!(failed, 0, "no publish times out while a node catches up");
    assert!(
        slowest < Duration::from_millis(250),
        "Redis is never stalled for long: slowest {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_catch_up_read_keeps_the_connection() {
    let Some(server) = RedisServer::start_with(
        "a_timed_out_catch_up_read_keeps_the_connection",
        &["--client-output-buffer-limit", "pubsub 256kb 128kb 1"],
    ) else {
        return;
    };
    // One entry per read, so the catch-up spans many reads; a read waits
    // at most 150 ms.
    let config = || {
        test_config(&server.url())
            .catchup_timeout(Duration::from_millis(150))
            .catchup_read(512, MIB)
    };
    let Backlog { b, gate, sent, .. } = backlog(&server, config, 40).await;
    let reconnects_before = b.node.stats().reconnects;
    gate.notify_one();
    // Mid catch-up, Redis stops answering for 400 ms (less than the probe
    // timeout): reads time out, and must be retried on the same
    // subscription connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.log.lock().unwrap().len() < 6 {
        assert!(Instant::now() < deadline, "the catch-up started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.pause();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.resume();
    settle(&b.log, &sent, Duration::from_secs(20)).await;
    let r = check(&b.log.lock().unwrap(), &sent, &HashMap::new());
    let stats = b.node.stats();
    println!("{stats:?}");
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    assert!(r.resets.is_empty(), "{r:?}");
    assert!(stats.catchup_timeouts >= 1, "a read timed out: {stats:?}");
    assert!(
        stats.reconnects <= reconnects_before + 1,
        "the timed-out read did not replace the connection: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_many_threads_keeps_a_healthy_connection() {
    let Some(server) = RedisServer::start("catching_up_many_threads_keeps_a_healthy_connection")
    else {
        return;
    };
    // A probe timeout far shorter than catching 3,000 threads up takes.
    let config = test_config(&server.url())
        .probe(Duration::from_millis(50), Duration::from_millis(200))
        .subscribe_timeout(Duration::from_millis(200));
    let m = member(config).await;
    let threads: Vec<u64> = (100..3100).collect();
    m.follow(&threads).await;
    assert_eq!(m.node.stats().reconnects, 0);
    let mut sent = Vec::new();
    for round in 0..3u8 {
        for &t in &threads {
            let r = m.node.publish(t, &[round]).await.unwrap();
            sent.push(Sent {
                at: Instant::now(),
                t,
                seq: r.seq,
                epoch: r.epoch,
                payload: vec![round],
            });
        }
        if round == 0 {
            let killed: i64 = server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            assert_eq!(killed, 1);
        }
    }
    settle(&m.log, &sent, Duration::from_secs(20)).await;
    let r = check(&m.log.lock().unwrap(), &sent, &HashMap::new());
    let stats = m.node.stats();
    println!("{stats:?}");
    assert_eq!(
        (r.lost, r.duplicated, r.reordered, r.resets.len()),
        (0, 0, 0, 0),
        "{r:?}"
    );
    assert_eq!(stats.probe_failures, 0, "{stats:?}");
    assert_eq!(stats.reconnects, 1, "only the killed connection: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_change_past_the_old_head_is_one_reset() {
    let Some(mut server) = RedisServer::start("epoch_change_past_the_old_head_is_one_reset") else {
        return;
    };
    let url = server.url();
    let a = member(test_config(&url)).await;
    // B reconnects slowly (1.5 to 3 s after a break): A republishes first.
    let b = member(test_config(&url).backoff(Duration::from_secs(3), Duration::from_secs(3))).await;
    const THREADS: [u64; 2] = [1, 2];
    b.follow(&THREADS).await;
    let mut before = Vec::new();
    for t in THREADS {
        before.extend(publish_big(&a.node, t, 5, 16, "old").await);
    }
    settle(&b.log, &before, Duration::from_secs(10)).await;
    server.kill_and_restart(Duration::ZERO);
    let restarted = Instant::now();
    // Past the old head (5) in the new epoch, before B is back.
    let mut after = Vec::new();
    for t in THREADS {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match a.node.publish(t, b"new-0").await {
                Ok(r) => {
                    assert_eq!(r.seq, 1, "a new epoch starts at 1");
                    after.push(Sent {
                        at: Instant::now(),
                        t,
                        seq: r.seq,
                        epoch: r.epoch,
                        payload: b"new-0".to_vec(),
                    });
                    break;
                }
                Err(_) => {
                    assert!(Instant::now() < deadline, "publish recovers");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        after.extend(publish_big(&a.node, t, 9, 16, "new").await);
    }
    assert!(
        restarted.elapsed() < Duration::from_millis(1200),
        "republished before B reconnects: {:?}",
        restarted.elapsed()
    );
    assert_eq!(b.node.stats().reconnects, 1, "B is still away");
    settle(&b.log, &after, Duration::from_secs(15)).await;
    let log = b.log.lock().unwrap().clone();
    let r = check(&log, &after, &HashMap::new());
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    let want: BTreeMap<u64, usize> = THREADS.iter().map(|&t| (t, 1)).collect();
    assert_eq!(r.resets, want, "exactly one Reset per thread: {log:?}");
    assert!(log.iter().all(|d| !matches!(
        d,
        Delivery::Reset { reason, next, .. } if (*reason, *next) != (ResetReason::EpochChanged, 1)
    )));
}

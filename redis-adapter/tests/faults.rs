//! Fault tests against a real redis-server: three nodes, a few threads,
//! numbered messages from several publishers; each asserts
//! lost = duplicated = reordered = 0 per node, or an explicit `Reset`.
//!
//! Each test starts its own server on a free 127.0.0.1 port (see
//! `support`); without redis-server they say loudly that they are skipped
//! and pass, unless `SWITCHBOARD_REQUIRE_REDIS=1`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use switchboard_core::Engine;
use switchboard_redis::{Config, Delivery, Node, ResetReason};

const THREADS: [u64; 4] = [1, 2, 3, 4];

async fn cluster(config: impl Fn() -> Config) -> Vec<Member> {
    let mut members = Vec::new();
    for _ in 0..3 {
        let m = member(config()).await;
        m.follow(&THREADS).await;
        members.push(m);
    }
    members
}

/// Runs one publisher per member, `count` messages each, one every `every`.
fn publish_all(
    members: &[Member],
    count: usize,
    every: Duration,
) -> Vec<tokio::task::JoinHandle<Published>> {
    members
        .iter()
        .enumerate()
        .map(|(id, m)| {
            tokio::spawn(publisher(
                m.node.clone(),
                id,
                THREADS.to_vec(),
                count,
                every,
            ))
        })
        .collect()
}

async fn join(handles: Vec<tokio::task::JoinHandle<Published>>) -> Vec<Published> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Settles every member and asserts a clean report with no `Reset`.
async fn assert_clean(members: &[Member], sent: &[Sent]) {
    for (i, m) in members.iter().enumerate() {
        settle(&m.log, sent, Duration::from_secs(15)).await;
        let r = check(&m.log.lock().unwrap(), sent, &HashMap::new());
        assert_eq!(
            (r.lost, r.duplicated, r.reordered),
            (0, 0, 0),
            "node {i}: {r:?}"
        );
        assert!(r.resets.is_empty(), "node {i}: unexpected resets {r:?}");
        assert_eq!(
            r.delivered,
            sent.len(),
            "node {i}: every acknowledged message once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_steady_state() {
    let Some(server) = RedisServer::start("f1_steady_state") else {
        return;
    };
    let members = cluster(|| test_config(&server.url())).await;
    let published = join(publish_all(&members, 300, Duration::from_micros(500))).await;
    let sent = all_sent(&published);
    assert_eq!(sent.len(), 900, "no publish fails in steady state");
    assert_clean(&members, &sent).await;
    for m in &members {
        assert_eq!(
            m.node.stats().gap_fills,
            0,
            "steady state needs no stream read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_subscribe_race() {
    let Some(server) = RedisServer::start("f7_subscribe_race") else {
        return;
    };
    let a = member(test_config(&server.url())).await;
    let b = member(test_config(&server.url())).await;
    let race: Vec<u64> = (10..16).collect();
    a.follow(&race).await;
    let publishing = tokio::spawn(publisher(
        a.node.clone(),
        0,
        race.clone(),
        1200,
        Duration::from_micros(300),
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // B's first subscribers arrive while A publishes; record when each
    // thread became ready on B.
    let mut ready_at = HashMap::new();
    for &t in &race {
        b.follow(&[t]).await;
        ready_at.insert(t, Instant::now());
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let sent = publishing.await.unwrap().ok;
    // Everything whose publish started after ready(t) resolved.
    let mut from_seq = HashMap::new();
    for s in &sent {
        if s.at > ready_at[&s.t] {
            let f = from_seq.entry(s.t).or_insert(s.seq);
            *f = (*f).min(s.seq);
        }
    }
    assert_eq!(
        from_seq.len(),
        race.len(),
        "every thread published after ready"
    );
    settle(&b.log, &sent, Duration::from_secs(15)).await;
    let r = check(&b.log.lock().unwrap(), &sent, &from_seq);
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    assert!(r.resets.is_empty(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_pubsub_connections_killed() {
    let Some(server) = RedisServer::start("f3_pubsub_connections_killed") else {
        return;
    };
    let members = cluster(|| test_config(&server.url())).await;
    let handles = publish_all(&members, 400, Duration::from_millis(1));
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Every node back on a subscription connection (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while server
            .cmd::<String>(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count()
            < 3
        {
            assert!(Instant::now() < deadline, "nodes reconnected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let killed: i64 = server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert_eq!(killed, 3, "one subscription connection per node");
    }
    let sent = all_sent(&join(handles).await);
    assert_eq!(
        sent.len(),
        1200,
        "killing subscribers does not fail publishes"
    );
    assert_clean(&members, &sent).await;
    for m in &members {
        assert!(m.node.stats().reconnects >= 2, "{:?}", m.node.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_redis_paused() {
    let Some(server) = RedisServer::start("f2_redis_paused") else {
        return;
    };
    let members = cluster(|| test_config(&server.url())).await;
    let handles = publish_all(&members, 300, Duration::from_millis(4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.resume();
    let published = join(handles).await;
    assert!(
        published.iter().any(|p| p.failed > 0),
        "publishes during the pause time out"
    );
    let sent = all_sent(&published);
    // A timed-out publish may still have run: it is then delivered like any
    // other, so compare the acknowledged ones only and the continuity.
    for (i, m) in members.iter().enumerate() {
        settle(&m.log, &sent, Duration::from_secs(15)).await;
        let r = check(&m.log.lock().unwrap(), &sent, &HashMap::new());
        assert_eq!(
            (r.lost, r.duplicated, r.reordered),
            (0, 0, 0),
            "node {i}: {r:?}"
        );
        assert!(r.resets.is_empty(), "node {i}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_redis_restarted_empty() {
    let Some(mut server) = RedisServer::start("f5_redis_restarted_empty") else {
        return;
    };
    let members = cluster(|| test_config(&server.url())).await;
    let before = all_sent(&join(publish_all(&members, 60, Duration::from_millis(1))).await);
    for m in &members {
        settle(&m.log, &before, Duration::from_secs(10)).await;
    }
    let old_epochs: HashMap<u64, String> = before.iter().map(|s| (s.t, s.epoch.clone())).collect();

    let handles = publish_all(&members, 200, Duration::from_millis(3));
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.kill_and_restart(Duration::ZERO);
    let during = Instant::now();
    let mut published = join(handles).await;
    // Then a round once every node's command connection is back.
    for m in &members {
        let deadline = Instant::now() + Duration::from_secs(10);
        while m.node.publish(99, b"probe").await.is_err() {
            assert!(
                Instant::now() < deadline,
                "publish recovers after the restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    published.extend(join(publish_all(&members, 40, Duration::from_millis(1))).await);
    // Acknowledged in the new epochs: all must arrive after one Reset.
    let after: Vec<Sent> = all_sent(&published)
        .into_iter()
        .filter(|s| old_epochs.get(&s.t) != Some(&s.epoch))
        .collect();
    let per_thread: BTreeMap<u64, usize> = after.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.t).or_default() += 1;
        m
    });
    assert_eq!(
        per_thread.len(),
        THREADS.len(),
        "every thread published after the restart"
    );
    for (i, m) in members.iter().enumerate() {
        settle(&m.log, &after, Duration::from_secs(15)).await;
        let r = check(&m.log.lock().unwrap(), &after, &HashMap::new());
        assert_eq!(
            (r.lost, r.duplicated, r.reordered),
            (0, 0, 0),
            "node {i}: {r:?}"
        );
        let want: BTreeMap<u64, usize> = THREADS.iter().map(|&t| (t, 1)).collect();
        assert_eq!(r.resets, want, "node {i}: exactly one Reset per thread");
    }
    assert!(during.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5b_publish_while_down_is_an_error_in_bounded_time() {
    let Some(mut server) = RedisServer::start("f5b_publish_while_down") else {
        return;
    };
    let m = member(test_config(&server.url())).await;
    m.node.publish(1, b"up").await.expect("published while up");
    server.pause();
    let started = Instant::now();
    let r = m.node.publish(1, b"paused").await;
    assert!(r.is_err(), "never Ok while Redis cannot answer: {r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "bounded wait: {:?}",
        started.elapsed()
    );
    server.resume();
    // Down: killed, nothing listening on the port.
    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let r = m.node.publish(1, b"down").await;
        assert!(r.is_err(), "never Ok while Redis is down: {r:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "bounded wait: {:?}",
            started.elapsed()
        );
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if m.node.publish(1, b"back").await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "publish recovers after a restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_slow_node_disconnected_by_output_buffer_limit() {
    let Some(server) = RedisServer::start_with(
        "f4_slow_node",
        &["--client-output-buffer-limit", "pubsub 256kb 128kb 1"],
    ) else {
        return;
    };
    let url = server.url();
    let fast_a = member(test_config(&url)).await;
    let fast_b = member(test_config(&url)).await;
    let slow = member_slow(
        test_config(&url).delivery_buffer(8),
        Duration::from_millis(3),
    )
    .await;
    for m in [&fast_a, &fast_b, &slow] {
        m.follow(&THREADS).await;
    }
    let members = [fast_a, fast_b, slow];
    // Large payloads, published faster than the slow host drains them,
    // until Redis has dropped the slow node (bounded).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let big = vec![b'x'; 16 * 1024];
    let mut handles = Vec::new();
    for (id, m) in members.iter().enumerate() {
        let (node, big, stop) = (m.node.clone(), big.clone(), Arc::clone(&stop));
        handles.push(tokio::spawn(async move {
            let mut p = Published::default();
            for i in 0..400usize {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let t = THREADS[i % THREADS.len()];
                let mut payload = format!("p{id}-{i}-").into_bytes();
                payload.extend_from_slice(&big);
                let at = Instant::now();
                match node.publish(t, &payload).await {
                    Ok(r) => p.ok.push(Sent {
                        at,
                        t,
                        seq: r.seq,
                        epoch: r.epoch,
                        payload,
                    }),
                    Err(_) => p.failed += 1,
                }
            }
            p
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut dropped = false;
    while !dropped && Instant::now() < deadline && !handles.iter().all(|h| h.is_finished()) {
        let clients: String = server.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        dropped = clients.lines().count() < 3;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = all_sent(&join(handles).await);
    assert!(
        dropped,
        "Redis dropped the slow node's subscription connection"
    );
    assert!(sent.len() >= 100);
    assert_clean(&members, &sent).await;
    assert!(
        members[2].node.stats().reconnects >= 1,
        "the slow node reconnected: {:?}",
        members[2].node.stats()
    );
    for m in &members[..2] {
        assert_eq!(
            m.node.stats().reconnects,
            0,
            "fast nodes keep their connection"
        );
    }
}

/// The child side of f6: a node in its own process that follows the
/// threads and publishes until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_child_node() {
    let Ok(url) = std::env::var("SB_F6_CHILD_URL") else {
        return;
    };
    let m = member(test_config(&url)).await;
    m.follow(&THREADS).await;
    println!("child ready");
    // Bounded: the parent kills it long before this ends.
    publisher(
        m.node.clone(),
        9,
        THREADS.to_vec(),
        20_000,
        Duration::from_millis(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_node_process_killed() {
    let Some(server) = RedisServer::start("f6_node_process_killed") else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "f6_child_node",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SB_F6_CHILD_URL", server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child node");
    let stdout = child.stdout.take().unwrap();
    // Killed on every path out of this test, a failed assertion included.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(child);
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(50)
            .any(|l| l.is_ok_and(|l| l.contains("child ready")))
    });
    let members = [
        member(test_config(&server.url())).await,
        member(test_config(&server.url())).await,
    ];
    for m in &members {
        m.follow(&THREADS).await;
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .is_ok_and(|r| r.unwrap_or(false)),
        "child node ready"
    );
    let handles = publish_all(&members, 300, Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.0.kill().expect("kill the child node");
    let _ = child.0.wait();
    let sent = all_sent(&join(handles).await);
    assert_eq!(sent.len(), 600);
    for (i, m) in members.iter().enumerate() {
        settle(&m.log, &sent, Duration::from_secs(15)).await;
        let r = check(&m.log.lock().unwrap(), &sent, &HashMap::new());
        assert_eq!(
            (r.lost, r.duplicated, r.reordered),
            (0, 0, 0),
            "node {i}: {r:?}"
        );
        assert!(r.resets.is_empty(), "node {i}: {r:?}");
        // The child's messages are numbered in the same threads.
        assert!(
            r.delivered > sent.len(),
            "node {i} also got the child's messages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_history_is_an_explicit_reset() {
    let Some(server) = RedisServer::start_with(
        "trimmed_history_is_an_explicit_reset",
        &["--client-output-buffer-limit", "pubsub 256kb 128kb 1"],
    ) else {
        return;
    };
    const RETENTION: u64 = 30;
    let config = || test_config(&server.url()).retention(RETENTION);
    let a = member(config()).await;
    // The lagging node: its host reads nothing until the gate opens.
    let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
    let (node, mut deliveries) = Node::start(Arc::clone(&engine), config().delivery_buffer(1))
        .await
        .unwrap();
    let lagging = Member {
        engine,
        node,
        log: Log::default(),
    };
    lagging.follow(&THREADS).await;
    a.follow(&THREADS).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let (g, log) = (Arc::clone(&gate), Arc::clone(&lagging.log));
    tokio::spawn(async move {
        g.notified().await;
        while let Some(d) = deliveries.recv().await {
            log.lock().unwrap().push(d);
        }
    });
    let big = vec![b'y'; 16 * 1024];
    let mut sent = Vec::new();
    let mut i = 0usize;
    let mut publish_round = |n: usize| {
        let (node, big) = (a.node.clone(), big.clone());
        let start = i;
        i += n;
        async move {
            let mut out = Vec::new();
            for i in start..start + n {
                let t = THREADS[i % THREADS.len()];
                let mut payload = format!("a-{i}-").into_bytes();
                payload.extend_from_slice(&big);
                let r = node.publish(t, &payload).await.expect("publish");
                out.push(Sent {
                    at: Instant::now(),
                    t,
                    seq: r.seq,
                    epoch: r.epoch,
                    payload,
                });
            }
            out
        }
    };
    // Until Redis has dropped the lagging node (bounded), then more than the
    // retention per thread after that.
    let pubsub_clients = || {
        server
            .cmd::<String>(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count()
    };
    for _ in 0..40 {
        sent.extend(publish_round(100).await);
        if pubsub_clients() == 1 {
            break;
        }
    }
    assert_eq!(
        pubsub_clients(),
        1,
        "the lagging node was disconnected by the output buffer limit"
    );
    sent.extend(publish_round(3 * RETENTION as usize * THREADS.len()).await);
    gate.notify_one();
    let head: HashMap<u64, u64> = sent.iter().map(|s| (s.t, s.seq)).collect();
    let retained: Vec<Sent> = sent
        .iter()
        .filter(|s| s.seq + RETENTION > head[&s.t])
        .cloned()
        .collect();
    settle(&lagging.log, &retained, Duration::from_secs(15)).await;
    let log = lagging.log.lock().unwrap().clone();
    let r = check(&log, &retained, &HashMap::new());
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    let want: BTreeMap<u64, usize> = THREADS.iter().map(|&t| (t, 1)).collect();
    assert_eq!(r.resets, want, "one Reset per thread");
    assert!(log
        .iter()
        .all(|d| !matches!(d, Delivery::Reset { reason, .. } if *reason != ResetReason::Trimmed)));
    assert!(
        lagging.node.stats().reconnects >= 1,
        "{:?}",
        lagging.node.stats()
    );
    // The fast node saw everything.
    settle(&a.log, &sent, Duration::from_secs(10)).await;
    let r = check(&a.log.lock().unwrap(), &sent, &HashMap::new());
    assert_eq!(
        (r.lost, r.duplicated, r.reordered, r.resets.len()),
        (0, 0, 0, 0),
        "{r:?}"
    );
}

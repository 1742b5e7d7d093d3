//! catchup-sim: how a node catches up, at the sizes where it used to
//! fail, with the default `Config`, on its own redis-server.
//!
//! ```sh
//! cargo run --release -p switchboard-redis --bin catchup-sim
//! ```
//!
//! 1. Many threads (`--threads 12000,20000`): a node follows every thread;
//!    its subscription connection is killed while another node publishes
//!    one message per thread: how long until every message is delivered,
//!    and how many times the node replaced its connection.
//! 2. A backlog of large payloads (`--backlog 200` messages of 1 MiB to
//!    one thread) built while a node is cut off (Redis's pub/sub output
//!    buffer limit drops it): how long the catch-up takes, and the slowest
//!    publish another node saw meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Engine};
use switchboard_redis::{Config, Delivery, Node, NodeStats};
use tokio::sync::Notify;

#[path = "support/server.rs"]
mod server;
use server::Server;

const MIB: usize = 1024 * 1024;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

/// A node whose host counts deliveries, once `gate` opens.
async fn counting_node(
    url: &str,
    config: Config,
    gate: Option<Arc<Notify>>,
) -> (Arc<Engine<u64, u64>>, Node<u64>, Arc<AtomicU64>) {
    let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
    let _ = url;
    let (node, mut deliveries) = Node::start(Arc::clone(&engine), config)
        .await
        .expect("node starts");
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    tokio::spawn(async move {
        if let Some(g) = gate {
            g.notified().await;
        }
        while let Some(d) = deliveries.recv().await {
            if matches!(d, Delivery::Message { .. }) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (engine, node, count)
}

/// Publishes one message to each thread, from `tasks` concurrent publishers.
async fn publish_each(node: &Node<u64>, threads: u64, tasks: u64) {
    let mut handles = Vec::new();
    for k in 0..tasks {
        let node = node.clone();
        handles.push(tokio::spawn(async move {
            let mut t = k;
            while t < threads {
                node.publish(t, b"m").await.expect("publish");
                t += tasks;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

async fn wait_for(count: &AtomicU64, want: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while count.load(Ordering::Relaxed) < want {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

async fn many_threads(n: u64) -> (Duration, bool, NodeStats) {
    let server = Server::start(&[]).expect("redis-server");
    let url = server.url();
    let (engine, x, count) = counting_node(&url, Config::new(&url), None).await;
    let (_, y, _) = counting_node(&url, Config::new(&url), None).await;
    for t in 0..n {
        engine.connect(t, Caps::NONE);
        engine.subscribe(t, t).expect("subscribe");
    }
    for t in 0..n {
        x.ready(t).await.expect("ready");
    }
    publish_each(&y, n, 8).await;
    assert!(wait_for(&count, n, Duration::from_secs(60)).await);
    let killed = Instant::now();
    let _: i64 = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query(&mut c)
        })
        .expect("kill");
    publish_each(&y, n, 8).await;
    let done = wait_for(&count, 2 * n, Duration::from_secs(120)).await;
    (killed.elapsed(), done, x.stats())
}

async fn backlog(n: usize) -> (Duration, bool, Duration, u64, NodeStats) {
    let server = Server::start(&["--client-output-buffer-limit", "pubsub 256kb 128kb 1"])
        .expect("redis-server");
    let url = server.url();
    let gate = Arc::new(Notify::new());
    let config = Config::new(&url).delivery_buffer(1);
    let (engine, x, count) = counting_node(&url, config, Some(Arc::clone(&gate))).await;
    let (_, y, _) = counting_node(&url, Config::new(&url), None).await;
    engine.connect(1, Caps::NONE);
    engine.subscribe(1, 1).expect("subscribe");
    x.ready(1).await.expect("ready");
    let big = vec![b'z'; MIB];
    let mut sent = 0u64;
    // Until Redis drops the gated node (bounded), then the backlog.
    for _ in 0..64 {
        y.publish(1, &big).await.expect("publish");
        sent += 1;
        let clients: String = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("CLIENT")
                    .arg("LIST")
                    .arg("TYPE")
                    .arg("pubsub")
                    .query(&mut c)
            })
            .unwrap_or_default();
        if clients.lines().count() < 2 {
            break;
        }
    }
    for _ in 0..n {
        y.publish(1, &big).await.expect("publish");
        sent += 1;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (s, other) = (Arc::clone(&stop), y.clone());
    let small = tokio::spawn(async move {
        let (mut slowest, mut failed) = (Duration::ZERO, 0u64);
        while !s.load(Ordering::Relaxed) {
            let at = Instant::now();
            if other.publish(2, b"small").await.is_err() {
                failed += 1;
            }
            slowest = slowest.max(at.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (slowest, failed)
    });
    let started = Instant::now();
    gate.notify_one();
    let done = wait_for(&count, sent, Duration::from_secs(120)).await;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (slowest, failed) = small.await.unwrap();
    (took, done, slowest, failed, x.stats())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let threads: Vec<u64> = arg("--threads", "12000,20000")
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let n: usize = arg("--backlog", "200").parse().unwrap_or(200);
    println!("| case | recovered in | all delivered | reconnects | probe failures | catch-up read failures |");
    println!("|---|---:|---|---:|---:|---:|");
    for t in threads {
        let (took, done, s) = many_threads(t).await;
        println!(
            "| {t} threads, subscription connection killed | {:.2} s | {done} | {} | {} | {} |",
            took.as_secs_f64(),
            s.reconnects,
            s.probe_failures,
            s.catchup_timeouts
        );
    }
    let (took, done, slowest, failed, s) = backlog(n).await;
    println!(
        "| {n} x 1 MiB backlog on one thread | {:.2} s | {done} | {} | {} | {} |",
        took.as_secs_f64(),
        s.reconnects,
        s.probe_failures,
        s.catchup_timeouts
    );
    println!();
    println!(
        "during the backlog's catch-up another node's publishes: slowest {:.1} ms, {failed} failed",
        slowest.as_secs_f64() * 1e3
    );
}

//! cluster-sim: three switchboard nodes over one redis-server, measuring
//! cross-node delivery latency and throughput beside the floor (a bare
//! PUBLISH → subscriber round trip on the same server, same run).
//!
//! ```sh
//! cargo run --release -p switchboard-redis --bin cluster-sim -- --duration 10
//! ```
//!
//! Flags: `--duration SECS` (10), `--threads N` (64), `--rate MSGS_PER_S`
//! per node (2000), `--floor N` round trips (2000). It starts its own
//! `redis-server` on a free 127.0.0.1 port and stops it at the end.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_core::{Caps, Engine};
use switchboard_redis::{Config, Delivery, Node};

/// The thread of the sequential measurement (followed by node 1 only).
const PING: u64 = u64::MAX;

struct Args {
    duration: u64,
    threads: u64,
    rate: u64,
    floor: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        duration: 10,
        threads: 64,
        rate: 2000,
        floor: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--duration" => a.duration = value("--duration")?.max(1),
            "--threads" => a.threads = value("--threads")?.max(1),
            "--rate" => a.rate = value("--rate")?.max(1),
            "--floor" => a.floor = value("--floor")?.max(10) as usize,
            "-h" | "--help" => {
                return Err(
                    "usage: cluster-sim [--duration S] [--threads N] [--rate R] [--floor N]".into(),
                )
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// The redis-server this run owns.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Result<Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run redis-server ({e}); install it: apt-get install -y redis-server"
                )
            })?;
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let up = redis::Client::open(server.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-server did not start".into())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latency samples in microseconds.
#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn quantile(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0[i] as f64
    }
}

/// The floor: PUBLISH on one connection, received on a subscriber, one at a time.
async fn floor(url: &str, n: usize) -> redis::RedisResult<(Samples, f64)> {
    let client = redis::Client::open(url)?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut sub = client.get_async_pubsub().await?;
    sub.subscribe("floor").await?;
    let mut messages = sub.on_message();
    let mut samples = Samples::default();
    let started = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        redis::cmd("PUBLISH")
            .arg("floor")
            .arg(i)
            .query_async::<i64>(&mut publisher)
            .await?;
        match tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
            Ok(Some(_)) => samples.0.push(t0.elapsed().as_micros() as u64),
            _ => return Err((redis::ErrorKind::IoError, "floor message lost").into()),
        }
    }
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    Ok((samples, per_s))
}

/// What the receivers share.
#[derive(Default)]
struct Shared {
    samples: Samples,
    second: Vec<u64>,
    deliveries: u64,
    cross: u64,
    lost: u64,
    duplicated: u64,
    resets: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server = match Server::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cluster-sim: {e}");
            std::process::exit(1);
        }
    };
    let url = server.url();
    println!(
        "cluster-sim: redis-server on {url}; 3 nodes, {} threads, {} msgs/s per node, {} s",
        args.threads, args.rate, args.duration
    );

    let (mut floor_samples, floor_rate) = match floor(&url, args.floor).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cluster-sim: floor failed: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "floor: {} round trips, p50 {:.0} µs",
        args.floor,
        floor_samples.quantile(0.5)
    );

    let origin = Instant::now();
    let shared = Arc::new(Mutex::new(Shared::default()));
    // Node 1's host reports each delivery on PING to the sequential probe.
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut nodes = Vec::new();
    for id in 0..3u8 {
        let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
        let config = Config::new(url.as_str()).node_id(format!("sim{id}"));
        let (node, mut deliveries) = match Node::start(Arc::clone(&engine), config).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("cluster-sim: node {id}: {e}");
                std::process::exit(1);
            }
        };
        // One local client per thread on every node: every node follows all.
        for t in 0..args.threads {
            engine.connect(t, Caps::NONE);
            let _ = engine.subscribe(t, t);
        }
        if id == 1 {
            engine.connect(PING, Caps::NONE);
            let _ = engine.subscribe(PING, PING);
            if let Err(e) = node.ready(PING).await {
                eprintln!("cluster-sim: ready(ping): {e}");
                std::process::exit(1);
            }
        }
        for t in 0..args.threads {
            if let Err(e) = node.ready(t).await {
                eprintln!("cluster-sim: ready({t}): {e}");
                std::process::exit(1);
            }
        }
        let shared = Arc::clone(&shared);
        let ping_tx = ping_tx.clone();
        let fan_out = Arc::clone(&engine);
        tokio::spawn(async move {
            let mut last: HashMap<u64, u64> = HashMap::new();
            while let Some(d) = deliveries.recv().await {
                let now = origin.elapsed().as_micros() as u64;
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                match d {
                    Delivery::Message { t: PING, .. } => {
                        let _ = ping_tx.send(());
                    }
                    Delivery::Message { t, seq, payload } => {
                        let mut sockets = 0usize;
                        fan_out.for_each_subscriber(t, |_| sockets += 1);
                        s.deliveries += sockets as u64;
                        let prev = last.insert(t, seq);
                        match prev {
                            Some(p) if seq <= p => s.duplicated += 1,
                            Some(p) => s.lost += seq - p - 1,
                            None => {}
                        }
                        if payload.len() == 9 && payload[0] != id {
                            let sent =
                                u64::from_le_bytes(payload[1..9].try_into().unwrap_or_default());
                            s.cross += 1;
                            let us = now.saturating_sub(sent);
                            s.samples.0.push(us);
                            s.second.push(us);
                        }
                    }
                    Delivery::Reset { t, next, .. } => {
                        s.resets += 1;
                        last.insert(t, next - 1);
                    }
                    _ => {}
                }
            }
        });
        nodes.push(node);
    }

    // Sequential: node 0 publishes, node 1's host receives, one at a time
    // (the same shape as the floor, through the whole adapter).
    let mut sequential = Samples::default();
    for i in 0..args.floor {
        let t0 = Instant::now();
        if nodes[0].publish(PING, &i.to_le_bytes()).await.is_err() {
            eprintln!("cluster-sim: sequential publish failed");
            std::process::exit(1);
        }
        match tokio::time::timeout(Duration::from_secs(2), ping_rx.recv()).await {
            Ok(Some(())) => sequential.0.push(t0.elapsed().as_micros() as u64),
            _ => {
                eprintln!("cluster-sim: sequential message lost");
                std::process::exit(1);
            }
        }
    }
    println!(
        "sequential cross-node: {} round trips, p50 {:.0} µs",
        args.floor,
        sequential.quantile(0.5)
    );

    // Publishers: per node, paced at `rate` messages/s over the threads.
    let stop = Instant::now() + Duration::from_secs(args.duration);
    let failed = Arc::new(Mutex::new(0u64));
    let mut publishers = Vec::new();
    for (id, node) in nodes.iter().enumerate() {
        let node = node.clone();
        let threads = args.threads;
        let rate = args.rate;
        let failed = Arc::clone(&failed);
        publishers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut i = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                let mut payload = vec![id as u8];
                payload.extend_from_slice(&(origin.elapsed().as_micros() as u64).to_le_bytes());
                if node
                    .publish((i * 7 + id as u64) % threads, &payload)
                    .await
                    .is_err()
                {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                }
                i += 1;
            }
        }));
    }

    let started = Instant::now();
    let mut prev = 0u64;
    for sec in 1..=args.duration {
        tokio::time::sleep_until((started + Duration::from_secs(sec)).into()).await;
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut window = Samples(std::mem::take(&mut s.second));
        println!(
            "{sec:>3}s  deliveries/s {:>8}  cross-node p50 {:>6.0} µs  p99 {:>6.0} µs  lost {} dup {} resets {}",
            s.deliveries - prev,
            window.quantile(0.5),
            window.quantile(0.99),
            s.lost,
            s.duplicated,
            s.resets
        );
        prev = s.deliveries;
    }
    for p in publishers {
        let _ = p.await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    let stats: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
    let (f50, f99, f999) = (
        floor_samples.quantile(0.5),
        floor_samples.quantile(0.99),
        floor_samples.quantile(0.999),
    );
    let (c50, c99, c999) = (
        s.samples.quantile(0.5),
        s.samples.quantile(0.99),
        s.samples.quantile(0.999),
    );
    println!();
    println!("| path | p50 | p99 | p99.9 | rate |");
    println!("|---|---:|---:|---:|---:|");
    println!("| floor: bare PUBLISH → subscriber | {f50:.0} µs | {f99:.0} µs | {f999:.0} µs | {floor_rate:.0} round trips/s |");
    let (q50, q99, q999) = (
        sequential.quantile(0.5),
        sequential.quantile(0.99),
        sequential.quantile(0.999),
    );
    println!("| switchboard-redis cross-node, one at a time | {q50:.0} µs | {q99:.0} µs | {q999:.0} µs | |");
    println!(
        "| switchboard-redis cross-node, under load | {c50:.0} µs | {c99:.0} µs | {c999:.0} µs | {:.0} deliveries/s |",
        s.deliveries as f64 / elapsed
    );
    println!();
    println!(
        "p50 / floor p50: one at a time {:.2}, under load {:.2} (target <= 2); cross-node samples {}; lost {} duplicated {} resets {}; publish errors {}; reconnects {}",
        q50 / f50,
        c50 / f50,
        s.cross,
        s.lost,
        s.duplicated,
        s.resets,
        failed.lock().unwrap_or_else(|p| p.into_inner()),
        stats.iter().map(|x| x.reconnects).sum::<u64>()
    );
    drop(server);
}

//! lease-sim: what thread ownership costs, on its own redis-server.
//!
//! ```sh
//! cargo run --release -p switchboard-redis --bin lease-sim -- --n 2000
//! ```
//!
//! Measures, in one run: a claim (+ release) one at a time; renewals
//! (`--leases` leases renewed every 100 ms for 3 s: Redis CPU per renewal,
//! from `INFO cpu`); a fenced publish beside a plain one; a routed request
//! round trip between two nodes beside a local `ThreadEntry::request`
//! and a bare Redis round trip (PING); and the failover time after an
//! owner stops renewing (as a killed process does), with a 1 s lease.
//! Flags: `--n N` (2000 samples per path), `--leases N` (1000),
//! `--failovers N` (10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_async::PendingReplyExt;
use switchboard_core::{Engine, Reply};
use switchboard_redis::{Config, Node};

#[path = "support/server.rs"]
mod server;
use server::Server;

/// Latencies, summarised as p50 / p99 in microseconds.
fn summary(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let q = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    format!("{:.0} µs | {:.0} µs", q(0.5), q(0.99))
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// Redis's own CPU time so far (user + system), from `INFO cpu`.
fn redis_cpu(url: &str) -> f64 {
    let info: String = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("INFO").arg("cpu").query(&mut c))
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}

type Local = Engine<u64, u64, (), (Vec<u8>, Reply<Vec<u8>>)>;

async fn node(url: &str, lease: Duration, renew: Duration) -> Node<u64> {
    let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
    let config = Config::new(url).lease(lease, renew);
    let (node, mut deliveries) = Node::start(engine, config).await.expect("node starts");
    tokio::spawn(async move { while deliveries.recv().await.is_some() {} });
    node
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (n, leases, failovers) = (
        arg("--n", 2000),
        arg("--leases", 1000),
        arg("--failovers", 10),
    );
    let server = match Server::start(&[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lease-sim: {e}");
            std::process::exit(1);
        }
    };
    let url = server.url();
    let a = node(&url, Duration::from_secs(5), Duration::from_secs(1)).await;
    let b = node(&url, Duration::from_secs(5), Duration::from_secs(1)).await;
    let mut rows = Vec::new();

    // The floor: one Redis round trip.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut v = Vec::new();
    for _ in 0..n {
        let at = Instant::now();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .unwrap();
        v.push(at.elapsed());
    }
    rows.push(("floor: PING round trip", summary(v)));

    // Claim, then release, one at a time (distinct threads).
    let (mut claims, mut releases) = (Vec::new(), Vec::new());
    for t in 0..n as u64 {
        let at = Instant::now();
        let l = a.claim(t).await.expect("claim");
        claims.push(at.elapsed());
        let at = Instant::now();
        l.release().await.expect("release");
        releases.push(at.elapsed());
    }
    rows.push(("claim (Lua: check, token, lease)", summary(claims)));
    rows.push(("release", summary(releases)));

    // Publish, plain and fenced.
    let lease = a.claim(u64::MAX).await.unwrap();
    let (mut plain, mut fenced) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let at = Instant::now();
        a.publish(u64::MAX - 1, b"x").await.unwrap();
        plain.push(at.elapsed());
        let at = Instant::now();
        lease.publish(b"x").await.unwrap();
        fenced.push(at.elapsed());
    }
    rows.push(("publish (plain)", summary(plain)));
    rows.push(("publish (fenced)", summary(fenced)));

    // A routed request: b asks, a's lease answers.
    let mut lease = lease;
    let mut commands = lease.commands();
    let answering = tokio::spawn(async move {
        while let Some(c) = commands.next().await {
            let p = c.payload().to_vec();
            let _ = c.reply(&p).await;
        }
    });
    let mut routed = Vec::new();
    for i in 0..n as u32 {
        let at = Instant::now();
        let r = b
            .request(u64::MAX, &i.to_be_bytes(), Duration::from_secs(2))
            .await;
        assert_eq!(r.expect("answered"), i.to_be_bytes());
        routed.push(at.elapsed());
    }
    rows.push(("routed request, node b -> owner a", summary(routed)));
    answering.abort();

    // Under load: 64 threads owned by a, 16 requesters on b for 3 s.
    let mut servers = Vec::new();
    for t in 3_000_000..3_000_064u64 {
        let mut lease = a.claim(t).await.expect("claim");
        let mut commands = lease.commands();
        servers.push(tokio::spawn(async move {
            while let Some(c) = commands.next().await {
                let p = c.payload().to_vec();
                let _ = c.reply(&p).await;
            }
            drop(lease);
        }));
    }
    let until = Instant::now() + Duration::from_secs(3);
    let mut askers = Vec::new();
    for k in 0..16u64 {
        let b = b.clone();
        askers.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0u64);
            let mut i = k;
            while Instant::now() < until {
                let t = 3_000_000 + i % 64;
                let at = Instant::now();
                match b.request(t, &i.to_be_bytes(), Duration::from_secs(2)).await {
                    Ok(r) if r == i.to_be_bytes() => lat.push(at.elapsed()),
                    _ => failed += 1,
                }
                i += 16;
            }
            (lat, failed)
        }));
    }
    let (mut loaded, mut loaded_failed) = (Vec::new(), 0);
    for h in askers {
        let (l, f) = h.await.unwrap();
        loaded.extend(l);
        loaded_failed += f;
    }
    let loaded_rate = loaded.len() as f64 / 3.0;
    rows.push((
        "routed request under load (16 requesters, 64 owned threads)",
        summary(loaded),
    ));
    for s in servers {
        s.abort();
    }

    // A local request through the engine (a listener on an OS thread).
    let engine: Arc<Local> = Arc::new(Engine::new());
    let entry = engine.thread(1);
    let owner = Arc::new(());
    let listener = entry.set_listener(&owner);
    let serving = std::thread::spawn(move || {
        while let Ok((p, r)) = listener.recv() {
            r.send(p);
        }
    });
    let mut local = Vec::new();
    for i in 0..n as u32 {
        let at = Instant::now();
        let pending = entry
            .request(|r| (i.to_be_bytes().to_vec(), r))
            .map_err(|_| "no listener")
            .unwrap();
        assert_eq!(pending.into_async().await.unwrap(), i.to_be_bytes());
        local.push(at.elapsed());
    }
    rows.push(("local ThreadEntry::request", summary(local)));
    entry.clear_listener();
    let _ = serving.join();

    // Renewals: Redis CPU per renewal.
    let r = node(
        &url,
        Duration::from_millis(1000),
        Duration::from_millis(100),
    )
    .await;
    let mut held = Vec::new();
    for t in 0..leases as u64 {
        held.push(r.claim(1_000_000 + t).await.unwrap());
    }
    let (cpu0, renewed0, at) = (redis_cpu(&url), r.stats().renewals, Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu, renewed) = (redis_cpu(&url) - cpu0, r.stats().renewals - renewed0);
    let per_s = renewed as f64 / at.elapsed().as_secs_f64();
    let lost = held.iter().filter(|l| l.is_lost()).count();
    drop(held);

    // Failover: the owner stops renewing (its lease dropped, as when its
    // process dies); how long until another node's claim succeeds.
    let f = node(&url, Duration::from_secs(1), Duration::from_millis(200)).await;
    let mut failover = Vec::new();
    for k in 0..failovers as u64 {
        let t = 2_000_000 + k;
        let dying = f.claim(t).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await; // renewed once
        drop(dying);
        let at = Instant::now();
        loop {
            if b.claim(t).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        failover.push(at.elapsed());
    }
    failover.sort_unstable();

    println!("| path | p50 | p99 |");
    println!("|---|---:|---:|");
    for (name, s) in &rows {
        println!("| {name} | {s} |");
    }
    println!();
    println!(
        "renewals: {leases} leases every 100 ms: {per_s:.0} renewals/s for {:.0} ms of Redis CPU per s ({:.1} µs of Redis CPU per renewal); leases lost: {lost}",
        cpu * 1000.0 / 3.0,
        cpu * 1e6 / renewed.max(1) as f64
    );
    println!("routed requests under load: {loaded_rate:.0} answered/s, {loaded_failed} failed");
    println!(
        "failover (1 s lease, owner stops renewing, claimant polls every 5 ms): p50 {:.0} ms, max {:.0} ms over {failovers}",
        failover[failover.len() / 2].as_secs_f64() * 1e3,
        failover[failover.len() - 1].as_secs_f64() * 1e3
    );
    drop(server);
}

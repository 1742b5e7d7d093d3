//! Test support: a private redis-server per test, a three-node cluster,
//! numbered publishers, and the loss/duplicate/reorder check.
//!
//! Every server listens on 127.0.0.1 only, on a free port, with no
//! persistence, and is killed when its handle drops. Every wait is bounded.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::{Caps, Engine};
use switchboard_redis::{Config, Deliveries, Delivery, Node};

pub const INSTALL: &str = "apt-get update && apt-get install -y redis-server";

/// A redis-server child process on a loopback port.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// Whether `redis-server` can be run here.
fn have_server() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl RedisServer {
    /// Starts a server, or returns `None` (after saying so, loudly) when
    /// redis-server is not installed and `SWITCHBOARD_REQUIRE_REDIS` is not
    /// set. With it set, a missing server fails the test.
    pub fn start(test: &str) -> Option<RedisServer> {
        Self::start_with(test, &[])
    }

    pub fn start_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
        if !have_server() {
            if std::env::var_os("SWITCHBOARD_REQUIRE_REDIS").is_some() {
                panic!("SWITCHBOARD_REQUIRE_REDIS is set but redis-server is missing: {INSTALL}");
            }
            // Straight to the process's stderr: libtest captures eprintln!,
            // and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test}: redis-server is not installed.\n\
                 !!! Install it to run the Redis tests: {INSTALL}\n\
                 !!! (set SWITCHBOARD_REQUIRE_REDIS=1 to make this a failure)\n"
            );
            return None;
        }
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--dir", "/tmp", "--daemonize", "no"])
        .args(&self.extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("spawn redis-server"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} failed");
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGKILL, then a new empty server on the same port.
    pub fn kill_and_restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.restart();
    }

    /// SIGKILL (the port stays free until `restart`).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A new empty server on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// Runs one command on a fresh connection.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Settings that make faults show quickly in tests.
pub fn test_config(url: &str) -> Config {
    Config::new(url)
        .publish_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .subscribe_timeout(Duration::from_millis(1000))
        .probe(Duration::from_millis(200), Duration::from_millis(800))
        .backoff(Duration::from_millis(20), Duration::from_millis(300))
        .unsubscribe_grace(Duration::from_millis(200))
}

pub type Log = Arc<Mutex<Vec<Delivery<u64>>>>;

/// One node with its engine and a task collecting its deliveries.
pub struct Member {
    pub engine: Arc<Engine<u64, u64>>,
    pub node: Node<u64>,
    pub log: Log,
}

/// Drains `deliveries` into a log, sleeping `per_delivery` after each.
pub fn collect(mut deliveries: Deliveries<u64>, per_delivery: Duration) -> Log {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    tokio::spawn(async move {
        while let Some(d) = deliveries.recv().await {
            l.lock().unwrap().push(d);
            if !per_delivery.is_zero() {
                tokio::time::sleep(per_delivery).await;
            }
        }
    });
    log
}

pub async fn member(config: Config) -> Member {
    member_slow(config, Duration::ZERO).await
}

pub async fn member_slow(config: Config, per_delivery: Duration) -> Member {
    let engine: Arc<Engine<u64, u64>> = Arc::new(Engine::new());
    let (node, deliveries) = Node::start(Arc::clone(&engine), config)
        .await
        .expect("node starts");
    Member {
        engine,
        node,
        log: collect(deliveries, per_delivery),
    }
}

impl Member {
    /// A local subscriber (connection `1000 + t`) for each thread, then
    /// waits for the node to be ready for each.
    pub async fn follow(&self, threads: &[u64]) {
        for &t in threads {
            self.engine.connect(1000 + t, Caps::NONE);
            self.engine.subscribe(t, 1000 + t).unwrap();
        }
        for &t in threads {
            tokio::time::timeout(Duration::from_secs(10), self.node.ready(t))
                .await
                .expect("ready in time")
                .expect("ready");
        }
    }
}

/// What a publisher was told.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When the publish call started.
    pub at: Instant,
    pub t: u64,
    pub seq: u64,
    pub epoch: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Published {
    pub ok: Vec<Sent>,
    pub failed: usize,
}

/// Publishes `count` numbered messages round-robin over `threads`, one
/// every `every`, and records every answer.
pub async fn publisher(
    node: Node<u64>,
    id: usize,
    threads: Vec<u64>,
    count: usize,
    every: Duration,
) -> Published {
    let mut p = Published::default();
    for i in 0..count {
        let t = threads[i % threads.len()];
        let payload = format!("p{id}-{i}").into_bytes();
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
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
    }
    p
}

/// The result of checking one node's deliveries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub lost: usize,
    pub duplicated: usize,
    pub reordered: usize,
    /// Resets per thread.
    pub resets: BTreeMap<u64, usize>,
    pub delivered: usize,
}

/// Checks a node's deliveries against what publishers were told.
///
/// Per thread, the deliveries are cut into segments at each `Reset`. Within
/// a segment, each sequence must be the previous one plus one (the first
/// must be the `Reset`'s `next`). Every acknowledged publish in `sent` (all
/// of one epoch per thread: the caller filters), from `from_seq[t]` on,
/// must be in the last segment with its payload.
pub fn check(log: &[Delivery<u64>], sent: &[Sent], from_seq: &HashMap<u64, u64>) -> Report {
    let mut r = Report::default();
    let mut by_thread: BTreeMap<u64, Vec<&Delivery<u64>>> = BTreeMap::new();
    for d in log {
        by_thread.entry(d.thread()).or_default().push(d);
    }
    let mut last_segment: HashMap<u64, HashMap<u64, Vec<u8>>> = HashMap::new();
    for (&t, ds) in &by_thread {
        let mut prev: Option<u64> = None;
        let mut seen: HashMap<u64, Vec<u8>> = HashMap::new();
        for d in ds {
            match d {
                Delivery::Reset { next, .. } => {
                    *r.resets.entry(t).or_default() += 1;
                    prev = Some(next - 1);
                    seen.clear();
                }
                Delivery::Message { seq, payload, .. } => {
                    r.delivered += 1;
                    if seen.contains_key(seq) {
                        r.duplicated += 1;
                        continue;
                    }
                    match prev {
                        Some(p) if *seq == p + 1 => {}
                        Some(p) if *seq <= p => r.reordered += 1,
                        Some(p) => r.lost += (*seq - p - 1) as usize,
                        None => {}
                    }
                    prev = Some(prev.map_or(*seq, |p| p.max(*seq)));
                    seen.insert(*seq, payload.clone());
                }
                _ => {}
            }
        }
        last_segment.insert(t, seen);
    }
    for s in sent {
        if s.seq < from_seq.get(&s.t).copied().unwrap_or(0) {
            continue;
        }
        match last_segment.get(&s.t).and_then(|m| m.get(&s.seq)) {
            Some(p) if *p == s.payload => {}
            Some(_) => r.reordered += 1, // another message under this number
            None => r.lost += 1,
        }
    }
    r
}

/// Waits (bounded) until `log` holds, for every thread in `sent`, the
/// newest acknowledged sequence.
pub async fn settle(log: &Log, sent: &[Sent], limit: Duration) {
    let mut want: HashMap<u64, u64> = HashMap::new();
    for s in sent {
        let w = want.entry(s.t).or_default();
        *w = (*w).max(s.seq);
    }
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let done = {
            let log = log.lock().unwrap();
            want.iter().all(|(&t, &seq)| {
                log.iter().rev().any(|d| matches!(d, Delivery::Message { t: dt, seq: ds, .. } if *dt == t && *ds >= seq))
            })
        };
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn all_sent(p: &[Published]) -> Vec<Sent> {
    p.iter().flat_map(|p| p.ok.iter().cloned()).collect()
}

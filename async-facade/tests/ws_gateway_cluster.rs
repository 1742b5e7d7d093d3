//! The websocket gateway in cluster mode: three gateway processes on one
//! redis-server (each started and killed by this test, on loopback), and
//! real websocket clients spread over them: joins, leaves, says, asks,
//! resumes that move a session to another node, abrupt closes; then one
//! gateway is SIGKILLed mid-run and its clients resume on the others.
//! Every frame is checked afterwards (`ws_gateway_cluster/check.rs`).
//! A second, small run stops one of two nodes with SIGINT (Ctrl-C) and
//! checks its hand-over: 1012 closes, its leases released at once (not
//! expired), every acked say delivered once on the surviving node.
//!
//! The gateways are this very test binary, re-run as a child process that
//! runs only `gateway_process` (which serves when `WS_GATEWAY_ARGS` is
//! set, and passes at once otherwise).

#[path = "ws_gateway_cluster/check.rs"]
mod check;
#[allow(dead_code)] // `ws_gateway.rs` uses the rest
#[path = "ws_gateway/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../examples/ws_gateway/main.rs"]
mod gateway;
#[path = "ws_gateway_cluster/sigint.rs"]
mod sigint;

use check::{Figures, Life};
use client::{Client, End, Rng};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEASE_MS: u64 = 1000;
const RENEW_MS: u64 = LEASE_MS / 4;
/// Sessions alive at once, spread over the three nodes.
const SLOTS: usize = 180;
const ROOMS: u64 = 6;
/// Requests per websocket, after its `resume` and joins.
const OPS: usize = 10;

/// The child: a gateway, until SIGINT (graceful) or SIGKILL.
#[test]
fn gateway_process() {
    let Ok(args) = std::env::var("WS_GATEWAY_ARGS") else {
        return;
    };
    let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(gateway::serve_until_ctrl_c(args));
}

/// A child process killed when dropped (a panicking test included).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private redis-server, or `None` (said loudly) when not installed.
fn redis_server() -> Option<(Proc, u16)> {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var_os("SWITCHBOARD_REQUIRE_REDIS").is_none(),
            "redis-server is missing"
        );
        eprintln!("!!! SKIPPED: redis-server is not installed (apt-get install -y redis-server)");
        return None;
    }
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let server = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_cli(port, &["ping"]).trim() != "PONG" {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((server, port))
}

/// A gateway process; returns it and its address.
fn gateway(redis: u16, node: &str) -> (Proc, SocketAddr) {
    gateway_with_lease(redis, node, LEASE_MS)
}

/// A gateway process with room and session leases of `lease_ms`.
fn gateway_with_lease(redis: u16, node: &str, lease_ms: u64) -> (Proc, SocketAddr) {
    let args = format!(
        "--addr 127.0.0.1:0 --redis redis://127.0.0.1:{redis} --node {node} --linger-ms 200 \
         --lease-ms {lease_ms} --route-timeout-ms 500"
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "gateway_process",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("WS_GATEWAY_ARGS", args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a gateway");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("the gateway's address").unwrap();
        // libtest prints `test gateway_process ... ` first, same line.
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.trim().parse().unwrap();
        }
    };
    // Keep draining its stdout (the shutdown report) in the background.
    std::thread::spawn(move || lines.for_each(drop));
    (proc, addr)
}

/// Every life of every session, in order, with takeovers recorded.
type Lives = Arc<Mutex<Vec<Life>>>;

/// A new websocket on `addr` resuming `session`, joined to `rooms`.
async fn resumed(addr: SocketAddr, session: &str, rooms: &[String]) -> Option<Client> {
    let mut c = Client::try_connect(addr).await?;
    let r = c
        .request(json!({"op": "resume", "session": session}))
        .await?;
    assert_eq!(r["op"], "resumed", "{r}");
    c.conn = r["conn"].as_u64().unwrap();
    for room in rooms {
        let j = c.request(json!({"op": "join", "room": room})).await?;
        assert_eq!(j["op"], "joined", "{j}");
    }
    Some(c)
}

/// One session: lives on several nodes in turn. `alive(i)` says whether
/// node `i` still runs.
async fn session(
    slot: usize,
    addrs: Vec<SocketAddr>,
    alive: Arc<Mutex<Vec<bool>>>,
    lives: Lives,
    rounds: usize,
) {
    let mut rng = Rng(slot as u64 + 1);
    let session = format!("s{slot}");
    let mut node = slot % addrs.len();
    let mut rooms: Vec<String> = (0..2)
        .map(|k| format!("room-{}", (slot as u64 + k * 3) % ROOMS))
        .collect();
    rooms.dedup();
    let pick_live = |rng: &mut Rng, not: usize| loop {
        let n = rng.below(addrs.len() as u64) as usize;
        if n != not && alive.lock().unwrap()[n] {
            return n;
        }
    };
    let mut c = match resumed(addrs[node], &session, &rooms).await {
        Some(c) => c,
        None => return,
    };
    for round in 0..rounds {
        let mut ended = false;
        for _ in 0..OPS {
            let pick = rng.below(100);
            let room = format!("room-{}", rng.below(ROOMS));
            let answer = if pick < 55 {
                let room = rooms[rng.below(rooms.len() as u64) as usize].clone();
                let text = format!("{session}-{}", rng.below(1 << 30));
                c.request(json!({"op": "say", "room": room, "text": text}))
                    .await
            } else if pick < 65 {
                c.request(json!({"op": "ask", "room": room})).await
            } else if pick < 75 {
                let r = c.request(json!({"op": "join", "room": room})).await;
                if !rooms.contains(&room) {
                    rooms.push(room);
                }
                r
            } else if pick < 82 && rooms.len() > 1 {
                let room = rooms.swap_remove(rng.below(rooms.len() as u64) as usize);
                c.request(json!({"op": "leave", "room": room})).await
            } else {
                c.request(json!({"op": "ping"})).await
            };
            if answer.is_none() {
                ended = true; // the node closed us (killed, or shut down)
                break;
            }
            tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
        }
        let last = round + 1 == rounds;
        if ended {
            // Our node went away: resume on a live one.
            let mut to = pick_live(&mut rng, node);
            let mut next = resumed(addrs[to], &session, &rooms).await;
            if next.is_none() {
                to = pick_live(&mut rng, to);
                next = resumed(addrs[to], &session, &rooms).await;
            }
            lives.lock().unwrap().push(Life {
                client: c,
                taken_over: None,
            });
            node = to;
            c = match next {
                Some(next) => next,
                None => return,
            };
        } else if last {
            break;
        } else if rng.below(3) == 0 {
            // Move: a new websocket on another node takes the session
            // over; the old one is closed there (4000).
            let to = pick_live(&mut rng, node);
            let sent = Instant::now();
            let Some(next) = resumed(addrs[to], &session, &[]).await else {
                // The target died meanwhile: keep this life's record.
                c.close().await;
                lives.lock().unwrap().push(Life {
                    client: c,
                    taken_over: None,
                });
                return;
            };
            let acked = next.frames[1].0;
            let mut old = c;
            let code = tokio::time::timeout(Duration::from_secs(5), old.until_closed())
                .await
                .ok();
            if alive.lock().unwrap()[node] {
                assert_eq!(code, Some(4000), "the old websocket is closed as replaced");
            }
            lives.lock().unwrap().push(Life {
                client: old,
                taken_over: Some((sent, acked)),
            });
            node = to;
            c = next;
            for room in &rooms {
                if c.request(json!({"op": "join", "room": room}))
                    .await
                    .is_none()
                {
                    break;
                }
            }
        } else if rng.below(2) == 0 {
            // An abrupt close, then a resume (on the same node or not).
            c.drop_abruptly();
            let to = pick_live(&mut rng, usize::MAX);
            lives.lock().unwrap().push(Life {
                client: c,
                taken_over: None,
            });
            node = to;
            c = match resumed(addrs[to], &session, &rooms).await {
                Some(c) => c,
                None => return,
            };
        }
    }
    // The end: read past the window (so the check can claim every say
    // acked before it), leave everything, close.
    tokio::time::sleep(check::WINDOW).await;
    let mut open = c.request(json!({"op": "ping"})).await.is_some();
    for room in rooms {
        open = open
            && c.request(json!({"op": "leave", "room": room}))
                .await
                .is_some();
    }
    if open {
        c.close().await;
    }
    lives.lock().unwrap().push(Life {
        client: c,
        taken_over: None,
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Rooms' owners as seen by asks from `c`: waits until every room in
/// `rooms` is answered by an owner other than `dead`; the time it took.
async fn new_owners(c: &mut Client, rooms: &[String], dead: &str) -> Duration {
    let start = Instant::now();
    for room in rooms {
        let j = c
            .request(json!({"op": "join", "room": room}))
            .await
            .unwrap();
        assert_eq!(j["op"], "joined");
    }
    let mut pending: Vec<&String> = rooms.iter().collect();
    while !pending.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "no new owner");
        let mut still = Vec::new();
        for room in pending {
            let a = c.request(json!({"op": "ask", "room": room})).await.unwrap();
            if a["op"] != "count" || a["owner"] == dead {
                still.push(room);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_with_a_killed_one() {
    let Some((_redis, port)) = redis_server() else {
        return;
    };
    let started = Instant::now();
    let names = ["n1", "n2", "n3"];
    let mut procs = Vec::new();
    let mut addrs = Vec::new();
    for name in names {
        let (p, a) = gateway(port, name);
        procs.push(Some(p));
        addrs.push(a);
    }
    let alive = Arc::new(Mutex::new(vec![true; 3]));
    let lives: Lives = Arc::default();

    // n3 owns the first rooms: its client joins them first.
    let mut seeder = Client::connect(addrs[2]).await;
    for r in 0..ROOMS / 2 {
        let j = seeder
            .request(json!({"op": "join", "room": format!("room-{r}")}))
            .await;
        assert_eq!(j.unwrap()["op"], "joined");
    }
    // Phase 1: every node, every room, moves and abrupt closes; the kill
    // lands while phase 2's sessions are running.
    let mut tasks = Vec::new();
    for slot in 0..SLOTS {
        let (addrs, alive, lives) = (addrs.clone(), Arc::clone(&alive), Arc::clone(&lives));
        tasks.push(tokio::spawn(session(slot, addrs, alive, lives, 4)));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Which rooms n3 owns now (asked through n1).
    let mut watcher = Client::connect(addrs[0]).await;
    let all_rooms: Vec<String> = (0..ROOMS).map(|r| format!("room-{r}")).collect();
    let mut owned_by_n3 = Vec::new();
    for room in &all_rooms {
        let a = watcher
            .request(json!({"op": "ask", "room": room}))
            .await
            .unwrap();
        if a["owner"] == "n3" {
            owned_by_n3.push(room.clone());
        }
    }
    assert!(!owned_by_n3.is_empty(), "n3 owns rooms");
    // SIGKILL n3 mid-run.
    alive.lock().unwrap()[2] = false;
    let killed_at = Instant::now();
    drop(procs[2].take());
    let failover = new_owners(&mut watcher, &owned_by_n3, "n3").await;
    let failover_from_kill = killed_at.elapsed();
    watcher.close().await;
    drop(seeder);

    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("sessions end in time")
            .expect("a session task panicked");
    }
    let run_time = started.elapsed();

    // Everyone left: every room unloads on every node, no lease remains.
    let deadline = Instant::now() + Duration::from_secs(10);
    for addr in &addrs[..2] {
        let mut c = Client::connect(*addr).await;
        loop {
            let s = c.stats().await;
            let idle = s["rooms_loaded"] == 0 && s["listeners_running"] == 0;
            if idle && s["connections"] == 1 && s["sessions"] == 0 {
                assert!(s["cluster"]["nodes"].as_u64().unwrap() >= 2, "{s}");
                break;
            }
            assert!(Instant::now() < deadline, "not unloaded: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.close().await;
    }
    let leases = |pattern: &str| {
        let keys = redis_cli(port, &["--scan", "--pattern", pattern]);
        keys.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    loop {
        let rooms = leases("wsgw.o.*");
        // Session ids are 2^52 + ..: 16 digits; node prefixes (2^53 + ..)
        // stay held while their node runs.
        let sessions: Vec<_> = leases("wsgw.c.o.*")
            .into_iter()
            .filter(|k| k.trim_start_matches("wsgw.c.o.").parse::<u64>().unwrap() < 1 << 53)
            .collect();
        if rooms.is_empty() && sessions.is_empty() {
            break;
        }
        // n3's leases were never released: they expire.
        assert!(
            Instant::now() < deadline,
            "leases left: {rooms:?} {sessions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let lives = std::mem::take(&mut *lives.lock().unwrap());
    let closed_by_kill = lives
        .iter()
        .filter(|l| l.client.node == "n3" && l.client.end == End::ByServer(1006))
        .count();
    let figures: Figures = check::check(&lives);
    let mut same: Vec<Duration> = figures
        .by_node
        .iter()
        .filter(|x| x.1)
        .map(|x| x.0)
        .collect();
    let mut cross: Vec<Duration> = figures
        .by_node
        .iter()
        .filter(|x| !x.1)
        .map(|x| x.0)
        .collect();
    same.sort();
    cross.sort();
    println!(
        "cluster run: {} lives, {} says, {} deliveries ({:.0}/s over {:.1} s), must {} must-not {}, \
         {} maybe-published delivered, {} websockets cut by the kill\n\
         say->msg same node p50 {:?} p99 {:?} ({} samples); cross node p50 {:?} p99 {:?} ({})\n\
         failover: n3's {} room(s) owned anew {:?} after the kill (lease {LEASE_MS} ms, renew {RENEW_MS} ms)",
        lives.len(),
        figures.says,
        figures.deliveries,
        figures.deliveries as f64 / run_time.as_secs_f64(),
        run_time.as_secs_f64(),
        figures.must,
        figures.must_not,
        figures.maybe_delivered,
        closed_by_kill,
        percentile(&same, 0.5),
        percentile(&same, 0.99),
        same.len(),
        percentile(&cross, 0.5),
        percentile(&cross, 0.99),
        cross.len(),
        owned_by_n3.len(),
        failover_from_kill,
    );
    assert!(
        figures.must > 1000,
        "the run claims too little: {}",
        figures.must
    );
    let bound = Duration::from_millis(LEASE_MS + RENEW_MS + 300);
    assert!(
        failover <= bound,
        "n3's rooms were owned anew after {failover:?} (bound {bound:?})"
    );
}

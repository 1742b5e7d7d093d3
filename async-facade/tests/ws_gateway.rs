//! The websocket gateway example (`examples/ws_gateway/`), run in-process
//! on 127.0.0.1:0 and driven by real websocket clients (tokio-tungstenite):
//! the protocol frame by frame, reconnects that take an id over, the
//! slow-consumer policy, shutdown, and a churn run of several hundred
//! connections whose every delivery is checked (`ws_gateway/check.rs`
//! states the rule).

#[path = "ws_gateway/check.rs"]
mod check;
#[path = "ws_gateway/churn.rs"]
mod churn;
#[path = "ws_gateway/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../examples/ws_gateway/main.rs"]
mod gateway;

use client::{Client, LIMIT};
use gateway::{Config, Report, Server};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server on a free loopback port, and the switch that stops it.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Report>,
}

async fn start(config: Config) -> Running {
    let config = Config {
        addr: "127.0.0.1:0".into(),
        ..config
    };
    let server = Server::bind(config).await.expect("bind a loopback port");
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    /// Stops the server; its report, after checking it shut down cleanly.
    async fn stop(self) -> Report {
        let _ = self.stop.send(());
        let report = tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("shutdown in time")
            .expect("server task");
        assert_eq!(report.listeners_still_running, Vec::<u64>::new());
        assert_eq!(report.connections_aborted, 0);
        report.graph.as_ref().expect("the final graph validates");
        assert_eq!(report.connections_left, 0, "{report:?}");
        report
    }
}

fn quick() -> Config {
    Config {
        linger: Duration::from_millis(50),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let server = start(quick()).await;
    let mut a = Client::connect(server.addr).await;
    let mut b = Client::connect(server.addr).await;
    assert_ne!(a.conn, b.conn);

    let joined = a
        .request(json!({"op": "join", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(joined["op"], "joined");
    assert_eq!(joined["room"], "lobby");
    b.request(json!({"op": "join", "room": "lobby"}))
        .await
        .unwrap();

    let said = a
        .request(json!({"op": "say", "room": "lobby", "text": "hi"}))
        .await
        .unwrap();
    let mid = a.sent.last().unwrap().id;
    assert_eq!(
        (said["op"].as_str(), said["seq"].as_u64()),
        (Some("said"), Some(1))
    );
    // The sayer's own copy came first, then `said`.
    let msg = &a.frames[a.frames.len() - 2].1;
    let expected = json!({"op": "msg", "room": "lobby", "seq": 1, "inc": 1,
                          "from": a.conn, "mid": mid, "text": "hi"});
    assert_eq!(msg, &expected);
    assert_eq!(b.next().await.unwrap(), expected);

    let count = b
        .request(json!({"op": "ask", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(
        (count["op"].as_str(), count["count"].as_u64()),
        (Some("count"), Some(1))
    );
    let pong = b.request(json!({"op": "ping"})).await.unwrap();
    assert_eq!(pong["op"], "pong");

    let stats = a.stats().await;
    assert_eq!(stats["connections"], 2);
    assert_eq!(stats["rooms_loaded"], 1);
    assert_eq!(stats["listeners_running"], 1);
    assert_eq!(stats["subscriptions"], 2);

    let left = a
        .request(json!({"op": "leave", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(
        left,
        json!({"op": "left", "re": left["re"], "room": "lobby", "was_member": true})
    );
    let again = a
        .request(json!({"op": "leave", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(again["was_member"], false);
    let refused = a
        .request(json!({"op": "say", "room": "lobby", "text": "no"}))
        .await
        .unwrap();
    assert_eq!(
        refused,
        json!({"op": "error", "re": refused["re"], "room": "lobby", "error": "not_member"})
    );

    // b leaves too: after the linger the room unloads, and a new load
    // numbers its messages from 1 again with the next `inc`.
    b.request(json!({"op": "leave", "room": "lobby"}))
        .await
        .unwrap();
    wait_for_stats(&mut a, |s| {
        s["rooms_loaded"] == 0 && s["listeners_running"] == 0
    })
    .await;
    let unloaded = a
        .request(json!({"op": "ask", "room": "lobby"}))
        .await
        .unwrap();
    assert_eq!(unloaded["error"], "not_loaded");
    a.request(json!({"op": "join", "room": "lobby"}))
        .await
        .unwrap();
    a.request(json!({"op": "say", "room": "lobby", "text": "again"}))
        .await
        .unwrap();
    let msg = &a.frames[a.frames.len() - 2].1;
    assert_eq!(
        (msg["seq"].as_u64(), msg["inc"].as_u64()),
        (Some(1), Some(2))
    );

    a.close().await;
    b.drop_abruptly();
    let report = server.stop().await;
    assert_eq!(
        report.rooms_left, 1,
        "a's room was still lingering or loaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_answered() {
    let server = start(quick()).await;
    let mut a = Client::connect(server.addr).await;
    let cases = [
        (json!({"op": "dance"}), "unknown_op"),
        (json!({"op": "join"}), "bad_request"),
        (json!({"op": "join", "room": ""}), "bad_room"),
        (json!({"op": "join", "room": "r".repeat(129)}), "bad_room"),
        (json!({"op": "say", "room": "r"}), "bad_request"),
        (
            json!({"op": "say", "room": "nowhere", "text": "x"}),
            "not_member",
        ),
        (json!({"op": "ask", "room": "nowhere"}), "not_loaded"),
        (json!({"op": "resume"}), "bad_request"),
        (json!({"room": 5}), "bad_request"),
    ];
    for (request, reason) in cases {
        let answer = a.request(request.clone()).await.unwrap();
        assert_eq!(
            (answer["op"].as_str(), answer["error"].as_str()),
            (Some("error"), Some(reason)),
            "{request}"
        );
    }
    // Not JSON: no id to echo, but an answer all the same.
    a.send_raw("{not json").await;
    let answer = a.next().await.unwrap();
    assert_eq!(answer, json!({"op": "error", "error": "bad_json"}));
    a.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let server = start(quick()).await;
    let mut a = Client::connect(server.addr).await;
    let join = a.send(json!({"op": "join", "room": "r"})).await;
    let say = a.send(json!({"op": "say", "room": "r", "text": "t"})).await;
    let ping = a.send(json!({"op": "ping"})).await;
    let mut ops = Vec::new();
    for _ in 0..4 {
        let frame = a.next().await.unwrap();
        ops.push((
            frame["op"].as_str().unwrap().to_owned(),
            frame["re"].as_u64(),
        ));
    }
    let expected = [
        ("joined", Some(join)),
        ("msg", None),
        ("said", Some(say)),
        ("pong", Some(ping)),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(op, re)| (op.to_string(), *re))
        .collect();
    assert_eq!(ops, expected);
    a.close().await;
    server.stop().await;
}

#[test]
fn flags() {
    let args = ["--addr", "127.0.0.1:0", "--linger-ms", "5", "--outbox", "3"];
    let config = Config::from_args(args.map(String::from)).unwrap();
    assert_eq!(config.addr, "127.0.0.1:0");
    assert_eq!(config.linger, Duration::from_millis(5));
    assert_eq!(config.outbox, 3);
    assert!(Config::from_args(["--bogus".into(), "1".into()]).is_err());
    assert!(Config::from_args(["--outbox".into()]).is_err());
    assert!(Config::from_args(["--linger-ms".into(), "soon".into()]).is_err());
}

async fn wait_for_stats(
    client: &mut Client,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let stats = client.stats().await;
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never settled: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_takes_the_id_over() {
    let server = start(quick()).await;
    let mut old = Client::connect(server.addr).await;
    let resumed = old
        .request(json!({"op": "resume", "session": "s1"}))
        .await
        .unwrap();
    assert_eq!(resumed["op"], "resumed");
    let id = resumed["conn"].as_u64().unwrap();
    assert_ne!(id, old.conn, "a new session gets a fresh id");
    old.request(json!({"op": "join", "room": "a"}))
        .await
        .unwrap();
    let mut other = Client::connect(server.addr).await;
    other
        .request(json!({"op": "join", "room": "a"}))
        .await
        .unwrap();

    let mut new = Client::connect(server.addr).await;
    let resumed = new
        .request(json!({"op": "resume", "session": "s1"}))
        .await
        .unwrap();
    assert_eq!(resumed["conn"], id, "the session's id is taken over");
    assert_eq!(
        old.until_closed().await,
        4000,
        "the old websocket is closed"
    );

    // A new incarnation: no rooms.
    let refused = new
        .request(json!({"op": "say", "room": "a", "text": "x"}))
        .await
        .unwrap();
    assert_eq!(refused["error"], "not_member");
    other
        .request(json!({"op": "say", "room": "a", "text": "1"}))
        .await
        .unwrap();
    let pong = new.request(json!({"op": "ping"})).await.unwrap();
    assert_eq!(new.frames.last().unwrap().1, pong);
    assert!(
        new.frames.iter().all(|(_, f)| f["op"] != "msg"),
        "{:?}",
        new.frames
    );

    new.request(json!({"op": "join", "room": "a"}))
        .await
        .unwrap();
    other
        .request(json!({"op": "say", "room": "a", "text": "2"}))
        .await
        .unwrap();
    let msg = new.next().await.unwrap();
    assert_eq!(
        (msg["text"].as_str(), msg["from"].as_u64()),
        (Some("2"), Some(other.conn))
    );
    let stats = other.stats().await;
    assert_eq!(
        (stats["connections"].as_u64(), stats["sessions"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(stats["subscriptions"], 2);

    new.drop_abruptly();
    other.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_incarnation_changes_nothing() {
    use gateway::outbox::{Close, Outbox};
    use gateway::protocol::Refusal;
    let hub = gateway::Hub::new(quick());
    let (first, _first_frames) = Outbox::new(8);
    let (second, mut second_frames) = Outbox::new(8);
    let hello = hub.connect(first.clone());
    let old = hub.resume("s", hello, &first).unwrap();
    hub.join(old, "r").unwrap();
    let hello = hub.connect(second.clone());
    let new = hub.resume("s", hello, &second).unwrap();
    assert_eq!(new.id, old.id);
    assert!(new.inc > old.inc);
    assert_eq!(*first.closed().borrow(), Some(Close::Replaced));
    assert_eq!(*second.closed().borrow(), None);
    hub.join(new, "r").unwrap();

    // The old websocket's late requests and its close.
    assert_eq!(hub.leave(old, "r"), Err(Refusal::NotConnected));
    assert_eq!(hub.join(old, "q"), Err(Refusal::NotConnected));
    let late_say = hub.say(old, "r", json!(1), "late".into()).await;
    assert_eq!(late_say, Err(Refusal::NotMember));
    assert!(!hub.disconnect(old));

    // The new incarnation is untouched: still in r, and r's fan-out
    // reaches its outbox only.
    assert_eq!(hub.say(new, "r", json!(2), "hi".into()).await, Ok(1));
    let msg = second_frames.frames.try_recv().expect("the member's copy");
    let msg: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(
        (msg["from"].as_u64(), msg["mid"].as_u64()),
        (Some(new.id), Some(2))
    );
    let snapshot = hub.snapshot();
    snapshot.validate().unwrap();
    assert_eq!(
        (snapshot.connection_count(), snapshot.subscription_count()),
        (1, 1)
    );
    assert!(hub.disconnect(new));
    assert_eq!(hub.snapshot().connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_and_slows_no_one() {
    let server = start(Config {
        outbox: 8,
        ..quick()
    })
    .await;
    let mut slow = Client::connect(server.addr).await;
    slow.request(json!({"op": "join", "room": "r"}))
        .await
        .unwrap();
    let mut fast = Client::connect(server.addr).await;
    fast.request(json!({"op": "join", "room": "r"}))
        .await
        .unwrap();
    // `slow` reads nothing from here on: the socket's buffers fill, then
    // its outbox, and the server closes it. `fast` is never held up.
    // Bounded: 10,000 says of 8 KiB is far more than loopback socket
    // buffers hold.
    let text = "x".repeat(8 << 10);
    let mut closed = false;
    for round in 0..10_000 {
        let said = fast
            .request(json!({"op": "say", "room": "r", "text": text}))
            .await
            .unwrap();
        assert_eq!(said["op"], "said", "{said}");
        if round % 25 == 24 && fast.stats().await["slow_consumers_closed"] == 1 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow consumer was never closed");
    let stats = fast.stats().await;
    assert_eq!(stats["connections"], 1);
    assert_eq!(stats["subscriptions"], 1);
    let code = slow.until_closed().await;
    assert!(matches!(code, 1006 | 1008), "{code}");
    fast.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket() {
    let server = start(quick()).await;
    let mut clients = Vec::new();
    for room in ["a", "b", "a"] {
        let mut c = Client::connect(server.addr).await;
        c.request(json!({"op": "join", "room": room}))
            .await
            .unwrap();
        clients.push(tokio::spawn(async move { c.until_closed().await }));
    }
    let report = server.stop().await;
    assert_eq!(
        report.rooms_left, 2,
        "rooms stay loaded; their listeners ended"
    );
    assert_eq!(report.stats.listeners_running(), 0);
    for c in clients {
        assert_eq!(c.await.unwrap(), 1001, "going away");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_of_hundreds_of_connections() {
    let server = start(quick()).await;
    let began = std::time::Instant::now();
    let slots: Vec<_> = (0..churn::SLOTS as u64)
        .map(|slot| tokio::spawn(churn::slot(server.addr, slot)))
        .collect();
    let mut lives = Vec::new();
    for slot in slots {
        let slot = tokio::time::timeout(Duration::from_secs(60), slot);
        lives.extend(slot.await.expect("the churn ends").expect("slot task"));
    }
    let elapsed = began.elapsed();

    // Everyone left: every room unloads after the linger.
    let mut last = Client::connect(server.addr).await;
    wait_for_stats(&mut last, |s| {
        s["rooms_loaded"] == 0
            && s["listeners_running"] == 0
            && s["connections"] == 1
            && s["subscriptions"] == 0
    })
    .await;
    last.close().await;
    let report = server.stop().await;
    assert_eq!(report.rooms_left, 0);
    assert_eq!(report.stats.slow_consumers_closed, 0);

    let mut figures = check::check(&lives);
    figures.latencies.sort_unstable();
    assert!(
        figures.must > figures.says,
        "the rule claimed too little: {figures:?}"
    );
    println!(
        "ws_gateway churn: {} websockets over {} sessions, {} says, {} deliveries in {:.2} s \
         ({:.0} deliveries/s), say→delivery p50 {:?} p99 {:?}; rule: {} must, {} must-not",
        lives.len(),
        churn::SLOTS,
        figures.says,
        figures.deliveries,
        elapsed.as_secs_f64(),
        figures.deliveries as f64 / elapsed.as_secs_f64(),
        percentile(&figures.latencies, 0.50),
        percentile(&figures.latencies, 0.99),
        figures.must,
        figures.must_not,
    );
}

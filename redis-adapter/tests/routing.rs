//! Routed commands and requests (the crate docs' "One owner per thread"):
//! a command accepted reaches exactly one lease, at most once, or its
//! sender gets an error — across a takeover, a fenced owner, a request
//! dropped unanswered, and an owner that takes nothing.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::*;
use switchboard_redis::{Commands, Config, Lease, RouteError};

fn config(url: &str) -> Config {
    test_config(url)
        .lease(Duration::from_millis(600), Duration::from_millis(150))
        .route_timeout(Duration::from_millis(400))
}

/// Collects a lease's plain commands (payloads) until its stream ends.
fn consume(mut commands: Commands<u64>) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = Arc::clone(&got);
    let task = tokio::spawn(async move {
        while let Some(c) = commands.next().await {
            g.lock()
                .unwrap()
                .push(String::from_utf8_lossy(c.payload()).into_owned());
        }
    });
    (got, task)
}

async fn next(commands: &mut Commands<u64>) -> switchboard_redis::RoutedCommand {
    tokio::time::timeout(Duration::from_secs(5), commands.next())
        .await
        .expect("a command in time")
        .expect("the stream is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_send_request_reply() {
    let Some(server) = RedisServer::start("smoke_send_request_reply") else {
        return;
    };
    let a = member(config(&server.url())).await;
    let b = member(config(&server.url())).await;
    assert!(matches!(
        b.node.send(1, b"x").await,
        Err(RouteError::NoOwner)
    ));
    assert!(matches!(
        b.node.request(1, b"x", Duration::from_secs(1)).await,
        Err(RouteError::NoOwner)
    ));

    let mut lease = a.node.claim(1).await.unwrap();
    let mut commands = lease.commands();
    let started = Instant::now();
    b.node.send(1, b"hello").await.expect("accepted");
    let send_took = started.elapsed();
    let c = next(&mut commands).await;
    assert_eq!((c.payload(), c.is_request()), (&b"hello"[..], false));

    // A request answered by the owner.
    let node = b.node.clone();
    let asking =
        tokio::spawn(async move { node.request(1, b"ping", Duration::from_secs(5)).await });
    let c = next(&mut commands).await;
    assert_eq!((c.payload(), c.is_request()), (&b"ping"[..], true));
    c.reply(b"pong").await.unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), b"pong");

    // The owner's own node routes to itself the same way.
    a.node.send(1, b"self").await.unwrap();
    assert_eq!(next(&mut commands).await.payload(), b"self");

    // A request dropped unanswered: the requester hears at once.
    let node = b.node.clone();
    let asking =
        tokio::spawn(async move { node.request(1, b"drop me", Duration::from_secs(5)).await });
    drop(next(&mut commands).await);
    let started = Instant::now();
    assert!(matches!(asking.await.unwrap(), Err(RouteError::Lost)));
    assert!(started.elapsed() < Duration::from_secs(2));

    // Round trips, one at a time.
    let mut rtts = Vec::new();
    let node = b.node.clone();
    let asking = tokio::spawn(async move {
        let mut rtts = Vec::new();
        for i in 0..200u32 {
            let at = Instant::now();
            let a = node
                .request(1, &i.to_be_bytes(), Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(a, (i + 1).to_be_bytes());
            rtts.push(at.elapsed());
        }
        rtts
    });
    for _ in 0..200 {
        let c = next(&mut commands).await;
        let i = u32::from_be_bytes(c.payload().try_into().unwrap());
        c.reply(&(i + 1).to_be_bytes()).await.unwrap();
    }
    rtts.extend(asking.await.unwrap());
    rtts.sort();
    println!(
        "routed send accepted in {send_took:?}; request round trip p50 {:?} p99 {:?} (debug build, 200 one at a time)",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
    let stats = b.node.stats();
    assert_eq!(stats.routed, 1 + 1 + 1 + 200, "{stats:?}");
    assert_eq!(stats.routed_lost, 1, "the dropped request: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_takes_nothing_gets_nothing_later() {
    let Some(server) = RedisServer::start("an_owner_that_takes_nothing") else {
        return;
    };
    let a = member(config(&server.url())).await;
    let b = member(config(&server.url())).await;
    let mut lease = a.node.claim(2).await.unwrap();
    // Nobody reads 2's commands: the send is withdrawn at its timeout.
    let started = Instant::now();
    assert!(matches!(
        b.node.send(2, b"unread").await,
        Err(RouteError::Timeout)
    ));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(matches!(
        b.node
            .request(2, b"unread too", Duration::from_millis(300))
            .await,
        Err(RouteError::Timeout)
    ));
    let waiting: i64 = server.cmd(&["XLEN", "sb.i.2"]);
    assert_eq!(waiting, 0, "withdrawn from the inbox");
    // A lease that starts reading now gets neither.
    let mut commands = lease.commands();
    assert!(
        tokio::time::timeout(Duration::from_millis(400), commands.next())
            .await
            .is_err(),
        "a command whose sender got an error is never delivered"
    );
    assert_eq!(b.node.stats().routed_lost, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accepted_command_reaches_exactly_one_lease_across_a_takeover() {
    let Some(server) = RedisServer::start("each_accepted_command_reaches_exactly_one_lease") else {
        return;
    };
    let a = member(config(&server.url())).await;
    let b = member(config(&server.url())).await;
    let c = member(config(&server.url())).await;
    let mut first: Lease<u64> = a.node.claim(3).await.unwrap();
    let (got_a, task_a) = consume(first.commands());
    const SENDS: usize = 300;
    let node = b.node.clone();
    let sending = tokio::spawn(async move {
        let (mut ok, mut failed) = (BTreeSet::new(), BTreeSet::new());
        for i in 0..SENDS {
            let payload = format!("cmd-{i}");
            match node.send(3, payload.as_bytes()).await {
                Ok(()) => ok.insert(payload),
                Err(_) => failed.insert(payload),
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (ok, failed)
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    // A's lease vanishes behind its back and C takes over: A's taker is
    // fenced by Redis from then on.
    let _: i64 = server.cmd(&["DEL", "sb.o.3"]);
    // Meanwhile 3 has no owner: sends are refused (a send in flight at
    // the DEL is withdrawn at its 400 ms timeout, the next ones find no
    // owner).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut second = loop {
        match c.node.claim(3).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let (got_c, task_c) = consume(second.commands());
    let (ok, failed) = sending.await.unwrap();
    // A learns it lost the lease; its stream ends.
    tokio::time::timeout(Duration::from_secs(2), first.lost())
        .await
        .expect("a lost 3");
    tokio::time::timeout(Duration::from_secs(2), task_a)
        .await
        .expect("a's stream ended")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ga, gc) = (got_a.lock().unwrap().clone(), got_c.lock().unwrap().clone());
    let (sa, sc): (BTreeSet<String>, BTreeSet<String>) =
        (ga.iter().cloned().collect(), gc.iter().cloned().collect());
    println!(
        "{} accepted ({} by A, {} by C), {} refused",
        ok.len(),
        sa.len(),
        sc.len(),
        failed.len()
    );
    assert_eq!((sa.len(), sc.len()), (ga.len(), gc.len()), "no duplicate");
    assert!(sa.is_disjoint(&sc), "no command reached both leases");
    let delivered: BTreeSet<String> = sa.union(&sc).cloned().collect();
    assert_eq!(
        delivered, ok,
        "every accepted command reached a lease, and only those"
    );
    assert!(!sa.is_empty() && !sc.is_empty(), "both leases served");
    assert!(!failed.is_empty(), "sends without an owner were refused");
    assert_eq!(ok.len() + failed.len(), SENDS);
    task_c.abort();
    drop(second.commands());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_owner_cannot_answer() {
    let Some(server) = RedisServer::start("a_fenced_owner_cannot_answer") else {
        return;
    };
    let a = member(config(&server.url())).await;
    let b = member(config(&server.url())).await;
    let mut lease = a.node.claim(4).await.unwrap();
    let mut commands = lease.commands();
    let node = b.node.clone();
    let asking = tokio::spawn(async move { node.request(4, b"q", Duration::from_secs(5)).await });
    let q = next(&mut commands).await;
    // Taken over before it answers.
    let _: i64 = server.cmd(&["DEL", "sb.o.4"]);
    let _new = b.node.claim(4).await.unwrap();
    assert!(matches!(q.reply(b"too late").await, Err(RouteError::Lost)));
    assert!(matches!(asking.await.unwrap(), Err(RouteError::Lost)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_owner_takes_nothing() {
    let Some(server) = RedisServer::start("a_fenced_owner_takes_nothing") else {
        return;
    };
    // A renews rarely: it still believes in its lease after the takeover.
    let a =
        member(test_config(&server.url()).lease(Duration::from_secs(20), Duration::from_secs(5)))
            .await;
    let b = member(config(&server.url())).await;
    let c = member(config(&server.url())).await;
    let mut stale = a.node.claim(5).await.unwrap();
    let (got_a, _task_a) = consume(stale.commands());
    let _: i64 = server.cmd(&["DEL", "sb.o.5"]);
    let mut current = c.node.claim(5).await.unwrap();
    let node = b.node.clone();
    let sending = tokio::spawn(async move { node.send(5, b"after").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Wake A's taker as if the command were for it: Redis must refuse it.
    let _: i64 = server.cmd(&["PUBLISH", &format!("sb.r.{}", a.node.id()), "w:5"]);
    tokio::time::timeout(Duration::from_secs(1), stale.lost())
        .await
        .expect("the refused take tells A");
    assert!(
        got_a.lock().unwrap().is_empty(),
        "A took nothing after the takeover"
    );
    let mut commands = current.commands();
    assert_eq!(next(&mut commands).await.payload(), b"after");
    sending.await.unwrap().expect("accepted by C");
    assert!(a.node.stats().fenced >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_hands_out_no_more_commands() {
    let Some(server) = RedisServer::start("a_lost_lease_hands_out_no_more_commands") else {
        return;
    };
    let a = member(config(&server.url())).await;
    let b = member(config(&server.url())).await;
    let mut lease = a.node.claim(10).await.unwrap();
    let mut commands = lease.commands();
    // Three requests taken by A's lease, not yet read by A's host.
    let mut asking = Vec::new();
    for i in 0..3u8 {
        let node = b.node.clone();
        asking.push(tokio::spawn(async move {
            node.request(10, &[i], Duration::from_secs(3)).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.cmd::<i64>(&["XLEN", "sb.i.10"]) > 0 || b.node.stats().routed < 3 {
        assert!(Instant::now() < deadline, "taken by A");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Taken over before A's host reads them.
    let _: i64 = server.cmd(&["DEL", "sb.o.10"]);
    let _new = b.node.claim(10).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), lease.lost())
        .await
        .expect("a learns it");
    // A lost lease handles nothing more: the stream ends, and the
    // requests it held are told so at once.
    assert!(commands.next().await.is_none(), "no command after lost()");
    drop(commands);
    let started = Instant::now();
    for r in asking {
        assert!(matches!(r.await.unwrap(), Err(RouteError::Lost)));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

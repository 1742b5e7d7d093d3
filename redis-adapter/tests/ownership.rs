//! One owner per thread across nodes (the crate docs' "At most one lease
//! of a thread can act"), against a real
//! redis-server: claims racing from three nodes, a fenced publish refused
//! by Redis, an owner process stopped (SIGSTOP) past its lease, Redis
//! restarted empty, and the cost of a claim and a renewal.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use switchboard_redis::{ClaimError, Config, Delivery, Lease, PublishError};

/// Short leases, so that faults show quickly.
fn lease_config(url: &str) -> Config {
    test_config(url).lease(Duration::from_millis(600), Duration::from_millis(150))
}

/// Waits (bounded) for `lease.lost()`; how long it took.
async fn lost_within(lease: &Lease<u64>, limit: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, lease.lost())
        .await
        .unwrap_or_else(|_| panic!("lost() within {limit:?}"));
    started.elapsed()
}

/// A stream entry as XRANGE returns it: the id and the field/value pairs.
type RawEntry = (String, Vec<(String, Vec<u8>)>);

/// The payloads in `t`'s stream, in order.
fn stream(server: &RedisServer, t: u64) -> Vec<String> {
    let raw: Vec<RawEntry> = server.cmd(&["XRANGE", &format!("sb.s.{t}"), "-", "+"]);
    raw.into_iter()
        .map(|(_, fields)| String::from_utf8_lossy(&fields[0].1).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_claim_owner_publish_release() {
    let Some(server) = RedisServer::start("smoke_claim_owner_publish_release") else {
        return;
    };
    let a = member(lease_config(&server.url())).await;
    let b = member(lease_config(&server.url())).await;
    b.follow(&[7]).await;
    assert_eq!(a.node.owner(7).await.unwrap(), None);

    let lease = a.node.claim(7).await.expect("a claims 7");
    assert_eq!(lease.thread(), 7);
    let owner = a.node.owner(7).await.unwrap().expect("leased");
    assert_eq!(
        (owner.node.as_str(), owner.token),
        (a.node.id(), lease.token())
    );
    match b.node.claim(7).await {
        Err(ClaimError::Owned { node, token }) => {
            assert_eq!((node.as_str(), token), (a.node.id(), lease.token()));
        }
        other => panic!("b must see a's lease: {other:?}"),
    }
    // Held across several renewals: longer than the lease length.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!lease.is_lost());
    let p = lease
        .publish(b"from the owner")
        .await
        .expect("fenced publish");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.log.lock().unwrap().iter().any(
        |d| matches!(d, Delivery::Message { t: 7, seq, payload } if *seq == p.seq && payload == b"from the owner"),
    ) {
        assert!(Instant::now() < deadline, "delivered to the follower");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = a.node.stats();
    assert!(stats.renewals >= 3, "{stats:?}");
    assert_eq!((stats.claims, stats.leases_lost, stats.fenced), (1, 0, 0));

    let first = lease.token();
    lease.release().await.expect("released");
    assert_eq!(a.node.owner(7).await.unwrap(), None);
    let next = b.node.claim(7).await.expect("claimable at once");
    assert!(next.token() > first, "{} > {first}", next.token());
    assert_eq!(a.node.stats().leases_lost, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_racing_claims_get_one_lease_each() {
    let Some(server) = RedisServer::start("three_nodes_racing_claims") else {
        return;
    };
    // Leases long enough that none is renewed or expires during the test.
    let config =
        || test_config(&server.url()).lease(Duration::from_secs(20), Duration::from_secs(5));
    let members = [
        member(config()).await,
        member(config()).await,
        member(config()).await,
    ];
    const THREADS: u64 = 1000;
    let started = Instant::now();
    let mut racers = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let node = m.node.clone();
        racers.push(tokio::spawn(async move {
            // Each node in its own order, so that they meet in the middle.
            let order: Vec<u64> = match i {
                0 => (0..THREADS).collect(),
                1 => (0..THREADS).rev().collect(),
                _ => (0..THREADS).map(|k| (k * 7) % THREADS).collect(),
            };
            let (mut won, mut refused) = (Vec::new(), Vec::new());
            for t in order {
                match node.claim(t).await {
                    Ok(lease) => won.push(lease),
                    Err(ClaimError::Owned { node, token }) => refused.push((t, node, token)),
                    Err(e) => panic!("claim {t}: {e}"),
                }
            }
            (won, refused)
        }));
    }
    let mut owners: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    let mut refusals = Vec::new();
    let mut leases = Vec::new();
    for (i, r) in racers.into_iter().enumerate() {
        let (won, refused) = r.await.unwrap();
        for lease in won {
            let prior = owners.insert(
                lease.thread(),
                (members[i].node.id().to_owned(), lease.token()),
            );
            assert!(prior.is_none(), "two leases of thread {}", lease.thread());
            leases.push(lease);
        }
        refusals.extend(refused);
    }
    let took = started.elapsed();
    println!(
        "{} claims from 3 nodes in {took:?}: {:.0} µs each",
        3 * THREADS,
        took.as_secs_f64() * 1e6 / (3 * THREADS) as f64
    );
    assert_eq!(
        owners.len(),
        THREADS as usize,
        "every thread has exactly one lease"
    );
    assert_eq!(refusals.len(), 2 * THREADS as usize);
    for (t, node, token) in refusals {
        assert_eq!(
            owners[&t],
            (node, token),
            "a refusal names the winner of {t}"
        );
    }
    let total: u64 = members.iter().map(|m| m.node.stats().claims).sum();
    assert_eq!(total, THREADS);
    for (t, (node, token)) in [0, 500, 999].map(|t| (t, owners[&t].clone())) {
        let o = members[0].node.owner(t).await.unwrap().unwrap();
        assert_eq!((o.node, o.token), (node, token));
    }
    drop(leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_refuses_a_stale_token() {
    let Some(server) = RedisServer::start("redis_refuses_a_stale_token") else {
        return;
    };
    // A renews rarely: it still believes in its lease when B takes over.
    let a =
        member(test_config(&server.url()).lease(Duration::from_secs(20), Duration::from_secs(5)))
            .await;
    let b = member(lease_config(&server.url())).await;
    let old = a.node.claim(3).await.unwrap();
    old.publish(b"a-1").await.expect("a owns 3");
    // A's lease vanishes behind its back (as if it expired while A's
    // clock ran slow); B claims.
    let deleted: i64 = server.cmd(&["DEL", "sb.o.3"]);
    assert_eq!(deleted, 1);
    let new = b.node.claim(3).await.expect("b claims 3");
    assert!(new.token() > old.token());
    assert!(!old.is_lost(), "A cannot know yet");
    // Redis checks the token: A's write is refused, and A learns it.
    match old.publish(b"a-late").await {
        Err(PublishError::Fenced) => {}
        other => panic!("a stale token must be fenced: {other:?}"),
    }
    lost_within(&old, Duration::from_millis(100)).await;
    new.publish(b"b-1").await.expect("b owns 3");
    assert_eq!(
        stream(&server, 3),
        ["a-1", "b-1"],
        "the late write never landed"
    );
    assert_eq!(a.node.stats().fenced, 1, "{:?}", a.node.stats());
    // A lease released by its owner is lost to it, and a second release
    // says so.
    let token = new.token();
    new.release().await.unwrap();
    let again = a.node.claim(3).await.unwrap();
    assert!(again.token() > token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_lost_and_its_renewal_refused() {
    let Some(server) = RedisServer::start("an_expired_lease_is_lost") else {
        return;
    };
    let a = member(lease_config(&server.url())).await;
    let lease = a.node.claim(4).await.unwrap();
    // Another node takes over (the lease key replaced behind A's back):
    // A's next renewal is refused by Redis.
    let _: i64 = server.cmd(&["DEL", "sb.o.4"]);
    let b = member(lease_config(&server.url())).await;
    let taken = b.node.claim(4).await.unwrap();
    let took = lost_within(&lease, Duration::from_secs(1)).await;
    assert!(
        // One renew interval (150 ms), with slack for a loaded machine.
        took <= Duration::from_millis(400),
        "within one renew interval: {took:?}"
    );
    assert!(matches!(
        lease.publish(b"late").await,
        Err(PublishError::Fenced)
    ));
    let stats = a.node.stats();
    assert!(stats.fenced >= 2, "the renewal and the publish: {stats:?}");
    assert_eq!(stats.leases_lost, 1, "{stats:?}");
    assert!(matches!(lease.release().await, Err(ClaimError::Lost)));
    assert!(!taken.is_lost());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_tokens_still_grow() {
    let Some(mut server) = RedisServer::start("redis_restarted_empty_tokens_still_grow") else {
        return;
    };
    let a = member(lease_config(&server.url())).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let l = a.node.claim(9).await.unwrap();
        tokens.push(l.token());
        l.release().await.unwrap();
    }
    let held = a.node.claim(9).await.unwrap();
    tokens.push(held.token());
    server.kill_and_restart(Duration::ZERO);
    // The lease is gone with the data: the holder learns it within the
    // lease length plus one renew interval.
    lost_within(&held, Duration::from_millis(600 + 150 + 300)).await;
    let b = member(lease_config(&server.url())).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        match b.node.claim(9).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "claim after restart: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokens.push(after.token());
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing across the restart: {tokens:?}"
    );
    assert!(matches!(
        held.publish(b"old owner").await,
        Err(PublishError::Fenced)
    ));
    after.publish(b"new owner").await.unwrap();
    assert_eq!(stream(&server, 9), ["new owner"]);
}

/// The child side of the SIGSTOP test: claims thread 5, then publishes
/// fenced messages until its lease is lost; then tries once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_owner_child() {
    let Ok(url) = std::env::var("SB_PAUSED_OWNER_URL") else {
        return;
    };
    let m = member(lease_config(&url)).await;
    let lease = m.node.claim(5).await.expect("child claims 5");
    println!("claimed {}", lease.token());
    for n in 0..2000 {
        // Whether lost is known, checked before each write: a write after
        // the lease ended must be refused either way.
        let known_lost = lease.is_lost();
        let r = lease.publish(format!("child-{n}").as_bytes()).await;
        match r {
            Ok(_) => println!("published {n} lost_known={known_lost}"),
            Err(PublishError::Fenced) => {
                println!("fenced {n} lost_known={known_lost}");
                break;
            }
            Err(e) => println!("error {n} {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(Duration::from_secs(2), lease.lost())
        .await
        .expect("lost fired");
    println!("lost fired; stats {:?}", m.node.stats());
    println!("child done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_stopped_past_its_lease_is_fenced() {
    let Some(server) = RedisServer::start("owner_stopped_past_its_lease_is_fenced") else {
        return;
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "paused_owner_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SB_PAUSED_OWNER_URL", server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child node");
    let stdout = child.stdout.take().unwrap();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-CONT", &self.0.id().to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = KillOnDrop(child);
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .take(5000)
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out: Vec<String> = Vec::new();
    async fn next(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .ok()
            .flatten()
            .expect("the child reports until it is done")
    }
    let child_token = loop {
        let l = next(&mut lines).await;
        // libtest prints the test's name on the same line.
        if let Some(at) = l.find("claimed ") {
            break l[at + 8..].trim().parse::<u64>().unwrap();
        }
    };
    let b = member(lease_config(&server.url())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    // The lease expires in Redis (600 ms); B claims it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lease = loop {
        match b.node.claim(5).await {
            Ok(l) => break l,
            Err(ClaimError::Owned { .. }) => {
                assert!(
                    Instant::now() < deadline,
                    "the stopped owner's lease expires"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let claimed_after = stopped.elapsed();
    assert!(lease.token() > child_token);
    lease.publish(b"b-first").await.unwrap();
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    loop {
        let l = next(&mut lines).await;
        let done = l == "child done";
        out.push(l);
        if done {
            break;
        }
    }
    lease.publish(b"b-second").await.unwrap();
    println!("b claimed {claimed_after:?} after the stop; the child said: {out:?}");
    // Every write the child was told succeeded landed before B's first
    // one; none of its writes follow B's in the stream.
    let entries = stream(&server, 5);
    let first_b = entries
        .iter()
        .position(|e| e == "b-first")
        .expect("b's write landed");
    assert!(
        entries[first_b..].iter().all(|e| e.starts_with("b-")),
        "nothing from the old owner after the new one's first write: {entries:?}"
    );
    assert!(entries[..first_b].iter().all(|e| e.starts_with("child-")));
    assert!(first_b >= 1, "the child published while it owned 5");
    let acknowledged = out.iter().filter(|l| l.starts_with("published ")).count();
    assert_eq!(
        acknowledged, first_b,
        "each acknowledged child write, before B's"
    );
    // It stopped on a refusal, and learned it had lost the lease.
    assert!(out.iter().any(|l| l.starts_with("fenced ")), "{out:?}");
    assert!(out.iter().any(|l| l.starts_with("lost fired")), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_cut_off_past_its_lease_is_fenced_after_healing() {
    let Some(server) = RedisServer::start("owner_cut_off_past_its_lease") else {
        return;
    };
    let proxy = support::proxy::Proxy::start(server.port).await;
    // A talks to Redis through the proxy only.
    let a = member(lease_config(&proxy.url()).publish_timeout(Duration::from_millis(300))).await;
    let b = member(lease_config(&server.url())).await;
    let lease = a.node.claim(6).await.unwrap();
    lease.publish(b"a-before").await.unwrap();
    proxy.cut();
    let cut_at = Instant::now();
    // A write A makes while it still believes in its lease: stuck in the
    // partition, it times out here, and reaches Redis only after healing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!lease.is_lost());
    let during = lease.publish(b"a-during").await;
    assert!(
        matches!(during, Err(PublishError::Timeout | PublishError::Redis(_))),
        "not known to be published: {during:?}"
    );
    // A learns it lost the lease by its own deadline, with no word from Redis.
    let lost_after = cut_at.elapsed() + lost_within(&lease, Duration::from_secs(2)).await;
    assert!(
        // The lease length, with slack for a loaded machine.
        lost_after <= Duration::from_millis(600 + 250),
        "lost at the latest one renew interval after the lease expired: {lost_after:?}"
    );
    // B claims once Redis let A's lease expire.
    let deadline = Instant::now() + Duration::from_secs(5);
    let taken = loop {
        match b.node.claim(6).await {
            Ok(l) => break l,
            Err(ClaimError::Owned { .. }) => {
                assert!(Instant::now() < deadline, "A's lease expires in Redis");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // B's own connection failed once (a CI run saw "broken pipe"):
            // not what this test is about; its connection manager
            // reconnects, and B tries again within the deadline.
            Err(ClaimError::Redis(e)) if e.is_io_error() => {
                assert!(Instant::now() < deadline, "B reconnects: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        lost_after <= cut_at.elapsed(),
        "A knew before B could claim"
    );
    taken.publish(b"b-first").await.unwrap();
    proxy.heal();
    // The held write and renewals now reach Redis: refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        lease.publish(b"a-after").await,
        Err(PublishError::Fenced)
    ));
    taken.publish(b"b-second").await.unwrap();
    assert_eq!(
        stream(&server, 6),
        ["a-before", "b-first", "b-second"],
        "nothing A wrote after its lease ended landed"
    );
    assert!(!taken.is_lost());
}

//! Interest follows the engine: SUBSCRIBE on the first local subscriber,
//! UNSUBSCRIBE after the grace period (re-checked), resync after the change
//! feed lags. Checked against the server's own view (PUBSUB NUMSUB and
//! PUBSUB CHANNELS).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use switchboard_core::{Caps, Config as EngineConfig, Engine};
use switchboard_redis::{Delivery, Node, ReadyError};

fn subscribers(server: &RedisServer, t: u64) -> i64 {
    let (_, n): (String, i64) = server.cmd(&["PUBSUB", "NUMSUB", &format!("sb.t.{t}")]);
    n
}

fn channels(server: &RedisServer) -> BTreeSet<String> {
    server
        .cmd::<Vec<String>>(&["PUBSUB", "CHANNELS", "sb.t.*"])
        .into_iter()
        .collect()
}

/// Waits (bounded) for `f` to hold.
async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_subscribe_grace_unsubscribe() {
    let Some(server) = RedisServer::start("smoke_subscribe_grace_unsubscribe") else {
        return;
    };
    let m = member(test_config(&server.url()).unsubscribe_grace(Duration::from_millis(300))).await;
    assert_eq!(subscribers(&server, 1), 0);
    m.follow(&[1]).await;
    assert_eq!(
        subscribers(&server, 1),
        1,
        "ready means Redis has the subscription"
    );
    assert_eq!(m.node.ready(2).await, Err(ReadyError::NotOccupied));

    // The last subscriber leaves: still subscribed within the grace period.
    let left = Instant::now();
    m.engine.unsubscribe(1, 1001);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(subscribers(&server, 1), 1, "grace period");
    eventually(
        "unsubscribed after the grace",
        Duration::from_secs(3),
        || subscribers(&server, 1) == 0,
    )
    .await;
    assert!(left.elapsed() >= Duration::from_millis(300));

    // Back within the grace period: the unsubscribe is called off.
    m.follow(&[3]).await;
    m.engine.unsubscribe(3, 1003);
    tokio::time::sleep(Duration::from_millis(50)).await;
    m.engine.subscribe(3, 1003).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(subscribers(&server, 3), 1, "re-checked before acting");
    assert_eq!(m.node.ready(3).await, Ok(()));
    let p = m.node.publish(3, b"still here").await.unwrap();
    eventually("delivered", Duration::from_secs(3), || {
        m.log
            .lock()
            .unwrap()
            .iter()
            .any(|d| matches!(d, Delivery::Message { t: 3, seq, .. } if *seq == p.seq))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagged_feed_resyncs_from_a_snapshot() {
    let Some(server) = RedisServer::start("lagged_feed_resyncs") else {
        return;
    };
    // A change log of 2 versions: a burst of writes makes the driver lag.
    let engine: Arc<Engine<u64, u64>> =
        Arc::new(Engine::with_config(EngineConfig::default().change_log(2)));
    let config = test_config(&server.url()).unsubscribe_grace(Duration::from_millis(100));
    let (node, deliveries) = Node::start(Arc::clone(&engine), config).await.unwrap();
    let _log = collect(deliveries, Duration::ZERO);
    eventually(
        "the driver took its first snapshot",
        Duration::from_secs(5),
        || node.stats().feed_resyncs >= 1,
    )
    .await;
    // Bursts until the driver has lagged at least once (bounded).
    for round in 0..50u64 {
        if round >= 5 && node.stats().feed_resyncs >= 2 {
            break;
        }
        for t in 0..40u64 {
            engine.connect(t, Caps::NONE);
            engine.subscribe(t, t).unwrap();
        }
        for t in 0..40u64 {
            if (t + round) % 3 != 0 {
                engine.disconnect(t);
            }
        }
    }
    let want: BTreeSet<String> = (0..40u64)
        .filter(|&t| engine.has_subscribers(t))
        .map(|t| format!("sb.t.{t}"))
        .collect();
    assert!(!want.is_empty());
    eventually(
        "Redis subscriptions equal the engine's occupied threads",
        Duration::from_secs(5),
        || channels(&server) == want,
    )
    .await;
    assert!(
        node.stats().feed_resyncs >= 2,
        "the feed lagged and was resynced: {:?}",
        node.stats()
    );
    for t in (0..40u64).filter(|&t| engine.has_subscribers(t)) {
        assert_eq!(node.ready(t).await, Ok(()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_history_is_a_reset_then_numbering_restarts() {
    let Some(server) = RedisServer::start("expired_history_is_a_reset") else {
        return;
    };
    let config = || test_config(&server.url()).history_ttl(Some(Duration::from_secs(1)));
    let a = member(config()).await;
    let b = member(config()).await;
    b.follow(&[5]).await;
    for i in 0..3u8 {
        assert_eq!(a.node.publish(5, &[i]).await.unwrap().seq, u64::from(i) + 1);
    }
    // The thread's keys expire; the next publish starts a new epoch.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let p = a.node.publish(5, b"new").await.unwrap();
    assert_eq!(p.seq, 1);
    eventually(
        "the new epoch's first message",
        Duration::from_secs(5),
        || b.log.lock().unwrap().len() >= 5,
    )
    .await;
    let log = b.log.lock().unwrap().clone();
    let seqs: Vec<String> = log
        .iter()
        .map(|d| match d {
            Delivery::Message { seq, .. } => format!("m{seq}"),
            Delivery::Reset { reason, next, .. } => format!("reset:{reason:?}:{next}"),
            _ => "other".into(),
        })
        .collect();
    assert_eq!(seqs, ["m1", "m2", "m3", "reset:EpochChanged:1", "m1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribing_many_threads_outlasts_the_subscribe_timeout() {
    let Some(server) = RedisServer::start("resubscribing_many_threads") else {
        return;
    };
    // Catching 1,500 threads up takes longer than the subscribe timeout:
    // the timeout is about confirmations stopping, not about the total.
    let config = test_config(&server.url()).subscribe_timeout(Duration::from_millis(150));
    let m = member(config).await;
    let threads: Vec<u64> = (100..1600).collect();
    m.follow(&threads).await;
    let mut sent = Vec::new();
    for round in 0..2 {
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
    let r = check(
        &m.log.lock().unwrap(),
        &sent,
        &std::collections::HashMap::new(),
    );
    assert_eq!(
        (r.lost, r.duplicated, r.reordered, r.resets.len()),
        (0, 0, 0, 0),
        "{r:?}"
    );
    assert!(
        m.node.stats().reconnects <= 2,
        "no reconnect loop: {:?}",
        m.node.stats()
    );
}

//! The liveness probe: a subscription connection that stays up but stops
//! delivering (a proxy drops Redis's bytes) is replaced, and the node
//! catches up from the streams with nothing lost.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::proxy::Proxy;
use support::*;

const THREADS: [u64; 3] = [1, 2, 3];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_subscription_is_detected_and_replaced() {
    let Some(server) = RedisServer::start("silent_subscription_is_detected_and_replaced") else {
        return;
    };
    let proxy = Proxy::start(server.port).await;
    let direct = member(test_config(&server.url())).await;
    let behind_proxy = member(test_config(&proxy.url())).await;
    direct.follow(&THREADS).await;
    behind_proxy.follow(&THREADS).await;

    let publishing = tokio::spawn(publisher(
        direct.node.clone(),
        0,
        THREADS.to_vec(),
        600,
        Duration::from_millis(3),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        proxy.silence_pubsub(),
        1,
        "one subscription connection behind the proxy"
    );
    let sent = publishing.await.unwrap().ok;
    assert_eq!(sent.len(), 600);

    settle(&behind_proxy.log, &sent, Duration::from_secs(15)).await;
    let r = check(&behind_proxy.log.lock().unwrap(), &sent, &HashMap::new());
    assert_eq!((r.lost, r.duplicated, r.reordered), (0, 0, 0), "{r:?}");
    assert!(r.resets.is_empty(), "{r:?}");
    let stats = behind_proxy.node.stats();
    assert!(
        stats.probe_failures >= 1 && stats.reconnects >= 1,
        "the probe replaced it: {stats:?}"
    );
    assert_eq!(direct.node.stats().probe_failures, 0);
}

//! Compile-time checks: every public type and future is `Send` (and the
//! handles `Sync`), so a host can use them from any tokio task.

use switchboard_redis::{
    ClaimError, Cluster, ClusterLease, Commands, Config, Deliveries, Delivery, Lease, Node,
    NodeStats, Owner, PublishError, Published, ReadyError, ResetReason, RouteError, RoutedCommand,
    StartError,
};

fn send<T: Send>(_: &T) {}
fn stream<S: futures::Stream + Unpin + Send>() {}
fn send_sync<T: Send + Sync>() {}

#[test]
fn smoke() {
    send_sync::<Node<u64>>();
    send_sync::<Deliveries<u64>>();
    send_sync::<Delivery<u64>>();
    send_sync::<Config>();
    send_sync::<NodeStats>();
    send_sync::<Published>();
    send_sync::<ResetReason>();
    send_sync::<PublishError>();
    send_sync::<ReadyError>();
    send_sync::<StartError>();
    send_sync::<Lease<u64>>();
    send_sync::<Owner>();
    send_sync::<ClaimError>();
    send_sync::<RouteError>();
    send_sync::<RoutedCommand>();
    send_sync::<Commands<u64>>();
    stream::<Commands<u64>>();
    send_sync::<Cluster<u64>>();
    send_sync::<ClusterLease<u64>>();
    stream::<Deliveries<u64>>();
}

#[allow(dead_code, clippy::diverging_sub_expression, unreachable_code)]
fn futures_are_send(node: Node<u64>, mut deliveries: Deliveries<u64>) {
    send(&node.publish(1, b"x"));
    send(&node.ready(1));
    send(&deliveries.recv());
    send(&node.claim(1));
    send(&node.owner(1));
    send(&node.send(1, b"x"));
    send(&node.request(1, b"x", std::time::Duration::from_secs(1)));
    let engine = std::sync::Arc::new(switchboard_core::Engine::<u64, u64>::new());
    send(&Node::start(engine, Config::new("redis://127.0.0.1:1")));
}

#[allow(dead_code)]
fn lease_futures_are_send(lease: Lease<u64>) {
    send(&lease.lost());
    send(&lease.publish(b"x"));
    send(&lease.release());
}

#[allow(dead_code)]
fn reply_is_send(c: RoutedCommand) {
    send(&c.reply(b"x"));
}

#[allow(dead_code)]
fn cluster_futures_are_send(cluster: Cluster<u64>) {
    send(&cluster.send(1, b"x"));
    send(&cluster.request(1, b"x", std::time::Duration::from_secs(1)));
}

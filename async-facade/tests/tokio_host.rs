//! The tokio host example (`examples/tokio_host.rs`), run as a test: its
//! `main` end to end, and its host (listeners as tasks, clients that
//! subscribe, talk through request/reply and disconnect, idle rooms
//! unloaded by the `Supervisor`'s idle policy, shutdown with
//! `shutdown_async`) under waves of clients. Plus many tasks waiting on one room.

#[path = "../examples/tokio_host.rs"]
mod example;

use example::{client, Host, Hub};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::Caps;

/// Bounds every await in these tests: a lost wake-up fails, not hangs.
const LIMIT: Duration = Duration::from_secs(5);

#[test]
fn smoke() {
    // The example's own `main`: three clients, then every room unloads.
    example::main();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_come_and_go_and_idle_rooms_unload() {
    const ROOMS: u64 = 8;
    const CLIENTS: u64 = 24;
    const WAVES: u64 = 3;
    let host = Host::new();
    for wave in 0..WAVES {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let conn = wave * CLIENTS + k;
                let mut rooms = vec![k % ROOMS, (3 * k + 1) % ROOMS, (5 * k + 2) % ROOMS];
                rooms.sort_unstable();
                rooms.dedup();
                tokio::spawn(client(Arc::clone(&host), conn, rooms))
            })
            .collect();
        for c in clients {
            tokio::time::timeout(LIMIT, c).await.unwrap().unwrap();
        }
        // Everyone left: every room unloads by itself.
        let rooms: Vec<u64> = (0..ROOMS).collect();
        tokio::time::timeout(LIMIT, host.rooms_unloaded(&rooms))
            .await
            .unwrap();
        let snap = host.hub.snapshot();
        assert_eq!(snap.thread_count(), 0, "wave {wave}");
        assert_eq!(snap.connection_count(), 0, "wave {wave}");
        snap.validate().unwrap();
    }
    // Every listener task of every wave ends: shutdown resolves.
    tokio::time::timeout(LIMIT, host.hub.shutdown_async())
        .await
        .unwrap();
    assert_eq!(host.hub.stats().live_listener_handles, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_wait_on_one_room() {
    let hub = Arc::new(Hub::new());
    hub.connect(1, Caps::NONE);
    hub.subscribe(7, 1).unwrap();
    let idle: Vec<_> = (0..8).map(|_| tokio::spawn(hub.wait_idle(7))).collect();
    let watches: Vec<_> = (0..8)
        .map(|_| {
            let mut watch = hub.watch_subscribers(7).unwrap();
            tokio::spawn(async move { watch.changed().await })
        })
        .collect();
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let streams: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = hub.watch_subscribers(7).unwrap().into_stream();
            let first_tx = first_tx.clone();
            tokio::spawn(async move {
                let first = stream.next().await;
                first_tx.send(first).unwrap();
                stream.collect::<Vec<bool>>().await
            })
        })
        .collect();
    for _ in 0..8 {
        let first = tokio::time::timeout(LIMIT, first_rx.recv()).await.unwrap();
        assert_eq!(first, Some(Some(true)));
    }
    assert!(idle.iter().all(|t| !t.is_finished()));

    hub.disconnect(1);
    for t in idle {
        tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
    }
    for t in watches {
        assert_eq!(
            tokio::time::timeout(LIMIT, t).await.unwrap().unwrap(),
            Ok(false)
        );
    }
    assert!(hub.remove_thread_if_idle(7));
    for t in streams {
        // After `true`: the flip to `false`, then the end (removal).
        let rest = tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
        assert_eq!(rest, [false]);
    }
}

//! The cluster supervisor (`Supervisor::cluster` with a `Cluster`) against
//! a real redis-server: nodes each with an engine and a cluster
//! supervisor; exactly one serves a thread; requests made anywhere reach
//! it; a lost lease clears the owner's listener at once (pending replies
//! fail) and another node takes over; an idle unload releases the lease.
//!
//! Planted bugs, one at a time, and the test that failed:
//! * `ClusterLease::release` dropping the lease instead of releasing it
//!   → `an_idle_unload_releases_the_lease` (B refused for the lease length);
//! * `ClusterLease::lost` never resolving → `a_deleted_lease_clears_...`
//!   and `a_partitioned_owner_...` (A keeps its listener);
//! * the merged command stream ignoring Redis (local commands only) →
//!   `smoke_one_owner_serves_requests_from_every_node`;
//! * an in-process answer not checked against the lease →
//!   `an_in_process_answer_after_the_lease_ended_is_refused`;
//! * `Cluster::request` never taking the in-process path →
//!   `smoke_one_owner_serves_requests_from_every_node` (`routed_local`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{future, StreamExt};
use support::proxy::Proxy;
use support::*;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine, ListenerStream, Reply, Supervisor, TaskEnd, ThreadEntry};
use switchboard_redis::{ClaimError, Cluster, Config, Node, RouteError, RoutedCommand};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

const LEASE: Duration = Duration::from_millis(600);
const RENEW: Duration = Duration::from_millis(150);
const LIMIT: Duration = Duration::from_secs(10);

fn config(url: &str) -> Config {
    test_config(url)
        .lease(LEASE, RENEW)
        .route_timeout(Duration::from_millis(400))
}

enum Cmd {
    Routed(RoutedCommand),
    /// Holds its reply and never returns (until dropped).
    Stall(Reply<String>),
    Whoami(Reply<String>),
}

type E = Engine<u64, u64, (), Cmd>;
type Room = Arc<ThreadEntry<u64, (), Cmd>>;

struct Host {
    name: String,
    engine: Arc<E>,
    node: Node<u64>,
    cluster: Cluster<u64>,
    rooms: Supervisor<u64, u64, (), Cmd>,
}

async fn host(name: &str, config: Config, linger: Option<Duration>) -> Host {
    let engine = Arc::new(E::new());
    let (node, deliveries) = Node::start(Arc::clone(&engine), config.node_id(name))
        .await
        .expect("node starts");
    let _ = collect(deliveries, Duration::ZERO);
    let cluster = Cluster::new(&node);
    let me = name.to_owned();
    let rooms = Supervisor::new(&engine, move |commands: ListenerStream<Cmd>, _: Room| {
        serve(commands, me.clone())
    })
    .cluster(cluster.clone(), Cmd::Routed);
    let rooms = match linger {
        Some(l) => rooms.unload_when_idle(l, sleep),
        None => rooms,
    };
    Host {
        name: name.to_owned(),
        engine,
        node,
        cluster,
        rooms,
    }
}

async fn serve(mut commands: ListenerStream<Cmd>, me: String) {
    while let Some(cmd) = commands.next().await {
        match cmd {
            Cmd::Routed(c) => {
                let answer = format!("{} by {me}", String::from_utf8_lossy(c.payload()));
                let _ = c.reply(answer.as_bytes()).await;
            }
            Cmd::Stall(reply) => {
                future::pending::<()>().await;
                drop(reply);
            }
            Cmd::Whoami(reply) => reply.send(me.clone()),
        }
    }
}

impl Host {
    fn start(&self, t: u64) -> (Room, Option<JoinHandle<TaskEnd>>) {
        let room = self.engine.thread(t);
        let task = self.rooms.start(&room).map(tokio::spawn);
        (room, task)
    }

    async fn ask(&self, t: u64, q: &str) -> Result<String, RouteError> {
        self.cluster
            .request(t, q.as_bytes(), Duration::from_secs(3))
            .await
            .map(|a| String::from_utf8(a).unwrap())
    }
}

/// Waits (bounded) until `f` holds; when it was seen.
async fn until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        sleep(Duration::from_millis(2)).await;
    }
}

async fn end_of(task: JoinHandle<TaskEnd>) -> TaskEnd {
    timeout(LIMIT, task)
        .await
        .expect("the task ended in time")
        .expect("the task did not unwind into the executor")
}

fn p50_p99(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_one_owner_serves_requests_from_every_node() {
    let Some(server) = RedisServer::start("smoke_one_owner_serves_requests") else {
        return;
    };
    let mut hosts = Vec::new();
    for name in ["a", "b", "c"] {
        hosts.push(host(name, config(&server.url()), None).await);
    }
    // Every node needs thread 1 at once: one claim wins.
    let started: Vec<(Room, JoinHandle<TaskEnd>)> = hosts
        .iter()
        .map(|h| {
            let (room, task) = h.start(1);
            (room, task.expect("each node's first start"))
        })
        .collect();
    until("two refused", LIMIT, || {
        started.iter().filter(|(_, t)| t.is_finished()).count() == 2
    })
    .await;
    let mut owner = None;
    for (i, (room, task)) in started.into_iter().enumerate() {
        if !task.is_finished() {
            until("the winner serves", LIMIT, || hosts[i].rooms.serves(&room)).await;
            owner = Some((i, room, task));
            continue;
        }
        let end = end_of(task).await;
        let refusal = end.refusal().and_then(|e| e.downcast_ref::<ClaimError>());
        assert!(matches!(refusal, Some(ClaimError::Owned { .. })), "{end:?}");
        assert!(!room.has_listener() && !hosts[i].rooms.serves(&room));
    }
    let (o, room, task) = owner.expect("one winner");
    let owner_name = hosts[o].name.clone();
    let in_redis = hosts[o].node.owner(1).await.unwrap().expect("leased");
    assert_eq!(in_redis.node, owner_name);
    assert!(hosts[o].cluster.is_local(1));

    // A request made on any node is answered by the owner.
    for h in &hosts {
        assert_eq!(h.ask(1, "q").await.unwrap(), format!("q by {owner_name}"));
        assert_eq!(h.cluster.is_local(1), h.name == owner_name);
        h.cluster.send(1, b"plain").await.unwrap();
    }
    let stats = hosts[o].node.stats();
    assert_eq!(
        (stats.routed_local, stats.routed),
        (2, 0),
        "the owner's own calls stay in-process: {stats:?}"
    );
    // Local engine commands reach the same listener.
    let me = room.request(Cmd::Whoami).map_err(drop).unwrap();
    assert_eq!(me.into_async().await.unwrap(), owner_name);

    // What the in-process path saves: 200 requests one at a time each way.
    let other = &hosts[(o + 1) % 3];
    let mut local = Vec::new();
    let mut to_self = Vec::new();
    let mut remote = Vec::new();
    for i in 0..200 {
        let q = i.to_string();
        let at = Instant::now();
        assert!(hosts[o].ask(1, &q).await.unwrap().starts_with(&q));
        local.push(at.elapsed());
        let at = Instant::now();
        let a = hosts[o]
            .node
            .request(1, q.as_bytes(), Duration::from_secs(3))
            .await
            .unwrap();
        assert!(a.starts_with(q.as_bytes()));
        to_self.push(at.elapsed());
        let at = Instant::now();
        assert!(other.ask(1, &q).await.unwrap().starts_with(&q));
        remote.push(at.elapsed());
    }
    let (l, s, r) = (p50_p99(local), p50_p99(to_self), p50_p99(remote));
    println!(
        "request p50/p99 (debug build, 200 one at a time): Cluster in-process {:?}/{:?}; \
         Node::request to its own node via Redis {:?}/{:?}; from another node {:?}/{:?}",
        l.0, l.1, s.0, s.1, r.0, r.1
    );
    assert!(l.0 < s.0, "in-process is cheaper than through Redis");

    room.clear_listener();
    assert!(matches!(end_of(task).await, TaskEnd::Ended));
    assert!(hosts[o].node.owner(1).await.unwrap().is_none(), "released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lease_clears_the_owners_listener_within_one_renew_interval() {
    let Some(server) = RedisServer::start("a_deleted_lease_clears_the_listener") else {
        return;
    };
    let a = host("a", config(&server.url()), None).await;
    let b = host("b", config(&server.url()), None).await;
    let (room, task) = a.start(2);
    let task = task.unwrap();
    until("a serves", LIMIT, || a.rooms.serves(&room)).await;
    // The handler stalls on the first; the rest wait in its queue: a
    // local request, and a request routed from b (taken by a's lease).
    let held = room.request(Cmd::Stall).map_err(drop).unwrap();
    until("the handler stalls", LIMIT, || room.queue_len() == 0).await;
    let queued = room.request(Cmd::Whoami).map_err(drop).unwrap();
    let cluster = b.cluster.clone();
    let routed = tokio::spawn(async move {
        cluster
            .request(2, b"q", Duration::from_secs(5))
            .await
            .map(drop)
    });
    until("b's request taken", LIMIT, || room.queue_len() == 2).await;

    // The lease vanishes: a's next renewal is refused.
    let _: i64 = server.cmd(&["DEL", "sb.o.2"]);
    let deleted = Instant::now();
    let end = end_of(task).await;
    let took = deleted.elapsed();
    assert!(matches!(end, TaskEnd::Lost), "{end:?}");
    assert!(!room.has_listener() && !a.rooms.serves(&room));
    println!("listener cleared {took:?} after the lease was deleted (renew {RENEW:?})");
    assert!(
        took <= RENEW + Duration::from_millis(100),
        "within one renew interval (with slack for the machine): {took:?}"
    );
    let (held, queued) = timeout(LIMIT, future::join(held.into_async(), queued.into_async()))
        .await
        .unwrap();
    assert!(held.is_err() && queued.is_err(), "pending replies fail");
    let routed = timeout(LIMIT, routed).await.unwrap().unwrap();
    assert!(matches!(routed, Err(RouteError::Lost)), "{routed:?}");
    assert!(a.node.stats().leases_lost >= 1 && a.node.stats().fenced >= 1);

    // b takes over at once; a's requests now go to b.
    let (room_b, task_b) = b.start(2);
    until("b serves", LIMIT, || b.rooms.serves(&room_b)).await;
    assert!(!a.cluster.is_local(2));
    assert_eq!(a.ask(2, "q").await.unwrap(), "q by b");
    room_b.clear_listener();
    assert!(matches!(end_of(task_b.unwrap()).await, TaskEnd::Ended));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_owner_clears_its_listener_before_another_node_serves() {
    let Some(server) = RedisServer::start("a_partitioned_owner_clears") else {
        return;
    };
    let proxy = Proxy::start(server.port).await;
    // a reaches Redis only through the proxy.
    let a = host(
        "a",
        config(&proxy.url()).publish_timeout(Duration::from_millis(300)),
        None,
    )
    .await;
    let b = host("b", config(&server.url()), None).await;
    let (room, task) = a.start(3);
    let task = task.unwrap();
    until("a serves", LIMIT, || a.rooms.serves(&room)).await;
    assert_eq!(b.ask(3, "q").await.unwrap(), "q by a");
    let held = room.request(Cmd::Stall).map_err(drop).unwrap();
    let queued = room.request(Cmd::Whoami).map_err(drop).unwrap();

    proxy.cut();
    let cut = Instant::now();
    let a_end = tokio::spawn(async move {
        let end = end_of(task).await;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (end, Instant::now(), wall.as_micros() as u64)
    });
    // b tries to serve 3 every 20 ms until its claim wins.
    let (room_b, b_won) = loop {
        assert!(cut.elapsed() < LIMIT, "b never took over");
        let (room_b, task_b) = b.start(3);
        let task_b = task_b.expect("b's slot is free");
        let seen = until("b's claim decided", LIMIT, || {
            task_b.is_finished() || b.rooms.serves(&room_b)
        })
        .await;
        if !task_b.is_finished() {
            break (room_b, seen);
        }
        assert!(end_of(task_b).await.refusal().is_some());
        sleep(Duration::from_millis(20)).await;
    };
    let token = b.node.owner(3).await.unwrap().expect("b's lease").token;
    let (end, a_cleared, a_cleared_wall) = timeout(LIMIT, a_end).await.unwrap().unwrap();
    assert!(matches!(end, TaskEnd::Lost), "{end:?}");
    let since_cut = a_cleared - cut;
    println!(
        "a's listener cleared {since_cut:?} after the cut (lease {LEASE:?}); b's claim \
         (token = Redis µs) came {} µs after that, b seen serving {:?} after the cut",
        token as i64 - a_cleared_wall as i64,
        b_won - cut
    );
    assert!(
        since_cut <= LEASE + RENEW,
        "cleared at the latest one renew interval past the lease: {since_cut:?}"
    );
    assert!(
        a_cleared <= b_won,
        "a stopped serving before b was seen serving"
    );
    let (held, queued) = timeout(LIMIT, future::join(held.into_async(), queued.into_async()))
        .await
        .unwrap();
    assert!(held.is_err() && queued.is_err(), "pending replies fail");
    assert!(!room.has_listener());

    proxy.heal();
    // After healing, a's requests reach the new owner.
    let deadline = Instant::now() + LIMIT;
    let answer = loop {
        match a.ask(3, "q").await {
            Ok(answer) => break answer,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer, "q by b");
    room_b.clear_listener();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_unload_releases_the_lease() {
    let Some(server) = RedisServer::start("an_idle_unload_releases_the_lease") else {
        return;
    };
    // A long lease: only a release lets b in quickly.
    let long = |url: &str| config(url).lease(Duration::from_secs(5), Duration::from_secs(1));
    let a = host("a", long(&server.url()), Some(Duration::from_millis(100))).await;
    let b = host("b", long(&server.url()), None).await;
    a.engine.connect(1, Caps::NONE);
    let room = a.engine.subscribe(4, 1).unwrap();
    let task = tokio::spawn(a.rooms.start(&room).unwrap());
    until("a serves", LIMIT, || a.rooms.serves(&room)).await;
    let (_, refused) = b.start(4);
    assert!(end_of(refused.unwrap()).await.refusal().is_some());

    a.engine.disconnect(1);
    let end = end_of(task).await;
    assert!(matches!(end, TaskEnd::Unloaded), "{end:?}");
    assert!(a.engine.get_thread(4).is_none());
    assert!(
        a.node.owner(4).await.unwrap().is_none(),
        "released in Redis"
    );
    let claimed = Instant::now();
    let (room_b, task_b) = b.start(4);
    let served = until("b serves", Duration::from_secs(1), || {
        b.rooms.serves(&room_b)
    })
    .await;
    println!("b serves {:?} after a's unload", served - claimed);
    room_b.clear_listener();
    assert!(matches!(end_of(task_b.unwrap()).await, TaskEnd::Ended));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_answer_after_the_lease_ended_is_refused() {
    use switchboard_async::{OwnedLease, Ownership};
    let Some(server) = RedisServer::start("an_in_process_answer_after_the_lease_ended") else {
        return;
    };
    let a = host("a", config(&server.url()), None).await;
    let mut lease = a.cluster.claim(5).await.expect("a claims 5");
    let lost = lease.lost();
    let mut commands = lease.commands();
    let cluster = a.cluster.clone();
    let asking = tokio::spawn(async move { cluster.request(5, b"q", LIMIT).await });
    let c = timeout(LIMIT, commands.next()).await.unwrap().unwrap();
    assert!(c.is_request());
    let _: i64 = server.cmd(&["DEL", "sb.o.5"]);
    timeout(LIMIT, lost)
        .await
        .expect("lost within a renew interval");
    assert!(!a.cluster.is_local(5));
    assert!(matches!(c.reply(b"too late").await, Err(RouteError::Lost)));
    let asked = timeout(LIMIT, asking).await.unwrap().unwrap();
    assert!(matches!(asked, Err(RouteError::Lost)), "{asked:?}");
    assert_eq!(a.node.stats().routed_local, 1);
}

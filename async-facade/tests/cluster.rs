//! The supervisor's cluster mode (`Supervisor::cluster`) against an
//! in-memory `Ownership`: several "nodes" (each an engine and a cluster
//! supervisor) share one registry that grants at most one live lease per
//! thread, routes commands to the holder, and can take a lease away.
//!
//! Known to catch (planted one at a time, each failing the test named):
//! a task that serves without claiming, or keeps serving when refused
//! (`smoke`); a loss that only clears the slot and lets the handler drain
//! its queue (`a_lost_lease_clears_the_listener_and_fails_pending_replies`);
//! an unload that does not release the lease
//! (`an_idle_unload_releases_the_lease_after_clearing_the_slot`); a
//! release before the slot is cleared
//! (`the_slot_is_cleared_before_the_lease_is_released`); a loss that is
//! never acted on (`a_lost_lease_...`, the task never ends);
//! a new task that claims while this supervisor's earlier task of the
//! same thread still holds the lease (`a_new_entry_waits_for_the_earlier_lease`);
//! a panic in host code that escapes the task or skips the release
//! (`panics_in_host_code_are_reported_and_the_slot_cleared`).

use futures::channel::{mpsc, oneshot};
use futures::future::{self, BoxFuture, FutureExt, Shared};
use futures::stream::{BoxStream, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{
    Caps, Engine, ListenerStream, OwnedLease, Ownership, Reply, Supervisor, TaskEnd, ThreadEntry,
};
use tokio::time::{sleep, timeout};

const LIMIT: Duration = Duration::from_secs(10);

/// One live lease in the registry.
struct Live {
    node: u32,
    id: u64,
    routes: mpsc::UnboundedSender<String>,
    /// Dropped to make the lease lost.
    lost: Option<oneshot::Sender<()>>,
}

/// A check run by each release (given the thread).
type OnRelease = Box<dyn Fn(u64) + Send + Sync>;

#[derive(Default)]
struct Registry {
    live: Mutex<HashMap<u64, Live>>,
    next_id: AtomicUsize,
    claims: AtomicUsize,
    releases: AtomicUsize,
    /// Run by each release (a test records what it sees then).
    on_release: Mutex<Option<OnRelease>>,
    panic_in_claim: Mutex<Option<u64>>,
}

impl Registry {
    fn owner(&self, t: u64) -> Option<u32> {
        self.live.lock().unwrap().get(&t).map(|l| l.node)
    }

    /// Routes `cmd` to `t`'s holder; false if none.
    fn route(&self, t: u64, cmd: &str) -> bool {
        self.live
            .lock()
            .unwrap()
            .get(&t)
            .is_some_and(|l| l.routes.unbounded_send(cmd.to_owned()).is_ok())
    }

    /// Takes `t`'s lease away (expired, taken over): its `lost` resolves.
    fn take_away(&self, t: u64) {
        let live = self.live.lock().unwrap().remove(&t);
        drop(live);
    }
}

#[derive(Debug, PartialEq)]
struct Owned(u32);

impl std::fmt::Display for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "owned by node {}", self.0)
    }
}
impl std::error::Error for Owned {}

struct Fake {
    node: u32,
    registry: Arc<Registry>,
}

struct FakeLease {
    t: u64,
    id: u64,
    registry: Arc<Registry>,
    routes: Option<mpsc::UnboundedReceiver<String>>,
    lost: Shared<oneshot::Receiver<()>>,
}

impl Ownership<u64> for Fake {
    type Lease = FakeLease;
    type Error = Owned;

    fn claim(&self, t: u64) -> BoxFuture<'static, Result<FakeLease, Owned>> {
        if *self.registry.panic_in_claim.lock().unwrap() == Some(t) {
            panic!("claim failed loudly");
        }
        let mut live = self.registry.live.lock().unwrap();
        if let Some(l) = live.get(&t) {
            return future::ready(Err(Owned(l.node))).boxed();
        }
        self.registry.claims.fetch_add(1, Ordering::SeqCst);
        let id = self.registry.next_id.fetch_add(1, Ordering::SeqCst) as u64;
        let (routes, rx) = mpsc::unbounded();
        let (lost_tx, lost_rx) = oneshot::channel();
        live.insert(
            t,
            Live {
                node: self.node,
                id,
                routes,
                lost: Some(lost_tx),
            },
        );
        future::ready(Ok(FakeLease {
            t,
            id,
            registry: Arc::clone(&self.registry),
            routes: Some(rx),
            lost: lost_rx.shared(),
        }))
        .boxed()
    }
}

impl OwnedLease for FakeLease {
    type Command = String;

    fn commands(&mut self) -> BoxStream<'static, String> {
        self.routes.take().expect("commands() once").boxed()
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        self.lost.clone().map(drop).boxed()
    }

    fn release(self) -> BoxFuture<'static, ()> {
        if let Some(f) = self.registry.on_release.lock().unwrap().as_ref() {
            f(self.t);
        }
        let mut live = self.registry.live.lock().unwrap();
        if live.get(&self.t).is_some_and(|l| l.id == self.id) {
            if let Some(mut l) = live.remove(&self.t) {
                l.lost.take();
            }
            self.registry.releases.fetch_add(1, Ordering::SeqCst);
        }
        future::ready(()).boxed()
    }
}

enum Cmd {
    Count(Reply<u32>),
    /// Holds its reply and never returns (until dropped).
    Stall(Reply<u32>),
    Routed(String),
}

type E = Engine<u64, u64, (), Cmd>;
type Room = Arc<ThreadEntry<u64, (), Cmd>>;
type Log = Arc<Mutex<Vec<String>>>;

/// One node: an engine and its cluster supervisor; the handler logs the
/// routed commands it serves.
struct Node {
    engine: Arc<E>,
    rooms: Supervisor<u64, u64, (), Cmd>,
    routed: Log,
    handlers: Arc<AtomicUsize>,
}

fn node(id: u32, registry: &Arc<Registry>) -> Node {
    node_with(id, registry, None)
}

fn node_with(id: u32, registry: &Arc<Registry>, linger: Option<Duration>) -> Node {
    let engine = Arc::new(E::new());
    let routed: Log = Arc::default();
    let handlers = Arc::new(AtomicUsize::new(0));
    let (log, calls) = (Arc::clone(&routed), Arc::clone(&handlers));
    let rooms = Supervisor::new(&engine, move |commands: ListenerStream<Cmd>, _: Room| {
        calls.fetch_add(1, Ordering::SeqCst);
        serve(commands, Arc::clone(&log))
    })
    .cluster(
        Fake {
            node: id,
            registry: Arc::clone(registry),
        },
        |s: String| {
            if s == "boom" {
                panic!("to_command failed");
            }
            Cmd::Routed(s)
        },
    );
    let rooms = match linger {
        Some(l) => rooms.unload_when_idle(l, sleep),
        None => rooms,
    };
    Node {
        engine,
        rooms,
        routed,
        handlers,
    }
}

async fn serve(mut commands: ListenerStream<Cmd>, log: Log) {
    let mut counted = 0;
    while let Some(cmd) = commands.next().await {
        match cmd {
            Cmd::Count(reply) => {
                counted += 1;
                reply.send(counted);
            }
            Cmd::Stall(reply) => {
                future::pending::<()>().await;
                drop(reply);
            }
            Cmd::Routed(s) => log.lock().unwrap().push(s),
        }
    }
}

async fn end_of(task: tokio::task::JoinHandle<TaskEnd>) -> TaskEnd {
    timeout(LIMIT, task)
        .await
        .expect("the task ended in time")
        .expect("the task did not unwind into the executor")
}

async fn count(room: &Room) -> u32 {
    let reply = room.request(Cmd::Count).map_err(drop).unwrap();
    timeout(LIMIT, reply.into_async()).await.unwrap().unwrap()
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        sleep(Duration::from_millis(5)).await;
    }
    panic!("not in time: {what}");
}

#[tokio::test]
async fn smoke() {
    let registry = Arc::new(Registry::default());
    let (a, b) = (node(1, &registry), node(2, &registry));
    let room_a = a.engine.thread(7);
    let task_a = tokio::spawn(a.rooms.start(&room_a).expect("first start"));
    until("a serves 7", || a.rooms.serves(&room_a)).await;
    assert_eq!(registry.owner(7), Some(1));
    assert_eq!(count(&room_a).await, 1);

    // A routed command reaches a's handler.
    assert!(registry.route(7, "from b"));
    until("routed command served", || {
        a.routed.lock().unwrap().as_slice() == ["from b"]
    })
    .await;

    // b's claim is refused: its task serves nothing and frees the slot.
    let room_b = b.engine.thread(7);
    let task_b = b.rooms.start(&room_b).expect("b's slot is free");
    assert!(b.rooms.is_supervising(&room_b));
    assert!(!b.rooms.serves(&room_b), "not before the claim is won");
    let end = end_of(tokio::spawn(task_b)).await;
    let refusal = end.refusal().expect("refused").downcast_ref::<Owned>();
    assert_eq!(refusal, Some(&Owned(1)), "{end:?}");
    assert!(!room_b.has_listener());
    assert_eq!(b.handlers.load(Ordering::SeqCst), 0, "handler never called");
    assert_eq!(registry.claims.load(Ordering::SeqCst), 1);

    // a's handler ends: the slot is cleared, then the lease released.
    assert!(a.engine.remove_thread(7));
    assert!(matches!(end_of(task_a).await, TaskEnd::Ended));
    assert!(!a.rooms.serves(&room_a));
    assert_eq!(registry.releases.load(Ordering::SeqCst), 1);
    assert_eq!(registry.owner(7), None);
    // ... so b's next start wins at once.
    let task_b = tokio::spawn(b.rooms.start(&room_b).expect("free again"));
    until("b serves 7", || b.rooms.serves(&room_b)).await;
    assert_eq!(registry.owner(7), Some(2));
    assert_eq!(count(&room_b).await, 1);
    room_b.clear_listener();
    assert!(matches!(end_of(task_b).await, TaskEnd::Ended));
}

#[tokio::test]
async fn a_lost_lease_clears_the_listener_and_fails_pending_replies() {
    let registry = Arc::new(Registry::default());
    let a = node(1, &registry);
    let room = a.engine.thread(3);
    let task = tokio::spawn(a.rooms.start(&room).unwrap());
    until("a serves 3", || a.rooms.serves(&room)).await;
    // The handler stalls on the first; the second waits in the queue.
    let held = room.request(Cmd::Stall).map_err(drop).unwrap();
    let queued = room.request(Cmd::Count).map_err(drop).unwrap();
    sleep(Duration::from_millis(20)).await;
    assert!(room.has_listener());

    registry.take_away(3);
    let end = end_of(task).await;
    assert!(matches!(end, TaskEnd::Lost), "{end:?}");
    assert!(!room.has_listener(), "cleared");
    assert!(!a.rooms.serves(&room));
    assert!(room.send(Cmd::Routed("late".into())).is_err());
    // Both replies resolve with an error: the held one (handler dropped)
    // and the queued one (queue dropped, not drained).
    let (held, queued) = timeout(LIMIT, future::join(held.into_async(), queued.into_async()))
        .await
        .expect("replies resolve");
    assert!(held.is_err() && queued.is_err(), "{held:?} {queued:?}");
    assert_eq!(
        registry.releases.load(Ordering::SeqCst),
        0,
        "nothing to release"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_unload_releases_the_lease_after_clearing_the_slot() {
    const LINGER: Duration = Duration::from_millis(100);
    let registry = Arc::new(Registry::default());
    let a = node_with(1, &registry, Some(LINGER));
    let b = node(2, &registry);
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (engine, s) = (Arc::clone(&a.engine), Arc::clone(&seen));
    *registry.on_release.lock().unwrap() = Some(Box::new(move |t| {
        let listening = engine.get_thread(t).is_some_and(|e| e.has_listener());
        s.lock().unwrap().push(listening);
    }));
    a.engine.connect(1, Caps::NONE);
    let room = a.engine.subscribe(5, 1).unwrap();
    let task = tokio::spawn(a.rooms.start(&room).unwrap());
    until("a serves 5", || a.rooms.serves(&room)).await;
    sleep(LINGER * 3).await;
    assert_eq!(registry.owner(5), Some(1), "occupied: kept");

    a.engine.disconnect(1);
    let end = end_of(task).await;
    assert!(matches!(end, TaskEnd::Unloaded), "{end:?}");
    assert!(a.engine.get_thread(5).is_none());
    assert_eq!(registry.releases.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.lock().unwrap(), [false], "released after the clear");
    // Another node's next claim wins at once.
    let room_b = b.engine.thread(5);
    let task_b = tokio::spawn(b.rooms.start(&room_b).unwrap());
    until("b serves 5", || b.rooms.serves(&room_b)).await;
    room_b.clear_listener();
    assert!(matches!(end_of(task_b).await, TaskEnd::Ended));
}

#[tokio::test]
async fn a_new_entry_waits_for_the_earlier_lease() {
    // The old entry's handler takes a while to return once its stream
    // ends; a new entry of the same thread starts meanwhile. Its claim
    // must wait for the old lease rather than be refused by it.
    let registry = Arc::new(Registry::default());
    let engine = Arc::new(E::new());
    let rooms = Supervisor::new(
        &engine,
        |mut commands: ListenerStream<Cmd>, _: Room| async move {
            while let Some(cmd) = commands.next().await {
                if let Cmd::Count(r) = cmd {
                    r.send(1);
                }
            }
            sleep(Duration::from_millis(100)).await; // slow to wind down
        },
    )
    .cluster(
        Fake {
            node: 1,
            registry: Arc::clone(&registry),
        },
        Cmd::Routed,
    );
    let old = engine.thread(9);
    let old_task = tokio::spawn(rooms.start(&old).unwrap());
    until("serving", || rooms.serves(&old)).await;
    assert!(engine.remove_thread(9));
    let new = engine.thread(9);
    let new_task = tokio::spawn(rooms.start(&new).expect("a new entry"));
    assert!(matches!(end_of(old_task).await, TaskEnd::Ended));
    until("the new entry serves", || rooms.serves(&new)).await;
    assert_eq!(count(&new).await, 1);
    assert_eq!(registry.claims.load(Ordering::SeqCst), 2);
    new.clear_listener();
    assert!(matches!(end_of(new_task).await, TaskEnd::Ended));
}

#[tokio::test]
async fn panics_in_host_code_are_reported_and_the_slot_cleared() {
    let registry = Arc::new(Registry::default());
    let a = node(1, &registry);

    // In to_command: reported, slot cleared, lease still released.
    let room = a.engine.thread(1);
    let task = tokio::spawn(a.rooms.start(&room).unwrap());
    until("serving", || a.rooms.serves(&room)).await;
    assert!(registry.route(1, "boom"));
    let end = end_of(task).await;
    assert_eq!(end.panic_message(), Some("to_command failed"), "{end:?}");
    assert!(!room.has_listener());
    assert!(!a.rooms.serves(&room));
    assert_eq!(registry.owner(1), None, "released");
    assert_eq!(registry.releases.load(Ordering::SeqCst), 1);

    // In the claim itself.
    *registry.panic_in_claim.lock().unwrap() = Some(2);
    let room = a.engine.thread(2);
    let end = end_of(tokio::spawn(a.rooms.start(&room).unwrap())).await;
    assert_eq!(end.panic_message(), Some("claim failed loudly"), "{end:?}");
    assert!(!room.has_listener());
    // ... and the supervisor still works.
    *registry.panic_in_claim.lock().unwrap() = None;
    let task = tokio::spawn(a.rooms.start(&room).expect("slot free"));
    until("serving after the panic", || a.rooms.serves(&room)).await;
    assert_eq!(count(&room).await, 1);
    room.clear_listener();
    assert!(matches!(end_of(task).await, TaskEnd::Ended));
}

#[tokio::test]
async fn the_slot_is_cleared_before_the_lease_is_released() {
    // A handler that hands its stream to someone else and returns: the
    // listener stays current until the task clears it, which must happen
    // before the release lets another node serve the thread.
    let registry = Arc::new(Registry::default());
    let engine = Arc::new(E::new());
    let kept: Arc<Mutex<Option<ListenerStream<Cmd>>>> = Arc::default();
    let k = Arc::clone(&kept);
    let rooms = Supervisor::new(&engine, move |commands: ListenerStream<Cmd>, _: Room| {
        *k.lock().unwrap() = Some(commands);
        future::ready(())
    })
    .cluster(
        Fake {
            node: 1,
            registry: Arc::clone(&registry),
        },
        Cmd::Routed,
    );
    let room = engine.thread(4);
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (r, s) = (Arc::clone(&room), Arc::clone(&seen));
    *registry.on_release.lock().unwrap() = Some(Box::new(move |_| {
        s.lock().unwrap().push(r.has_listener());
    }));
    let end = end_of(tokio::spawn(rooms.start(&room).unwrap())).await;
    assert!(matches!(end, TaskEnd::Ended), "{end:?}");
    assert_eq!(*seen.lock().unwrap(), [false], "cleared, then released");
    assert!(
        kept.lock().unwrap().is_some(),
        "the stream outlived the task"
    );
    assert!(!room.has_listener());
}

//! A small host on tokio, end to end: listeners as tasks, clients that
//! subscribe, talk through request/reply and disconnect, and idle threads
//! unloaded with `wait_idle` + `remove_thread_if_idle`.

use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{Caps, Engine, Listener, NotConnected, Reply, ThreadEntry, WaitIdle};
use tokio::task::JoinHandle;

type RoomId = u64;
type ConnId = u64;

#[derive(Default)]
struct Room {
    lines: usize,
}

enum Command {
    /// Appends a line; answers with the room's line count.
    Post(Reply<usize>),
    /// Answers with the room's line count.
    Count(Reply<usize>),
}

type Hub = Engine<RoomId, ConnId, Room, Command>;
type RoomEntry = ThreadEntry<RoomId, Room, Command>;

/// Bounds every await in these tests: a lost wake-up fails, not hangs.
const LIMIT: Duration = Duration::from_secs(5);

struct Host {
    hub: Arc<Hub>,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    started: AtomicUsize,
    unloads: AtomicUsize,
}

impl Host {
    fn new() -> Arc<Self> {
        Arc::new(Host {
            hub: Arc::new(Hub::new()),
            listeners: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            unloads: AtomicUsize::new(0),
        })
    }

    fn join(self: &Arc<Self>, conn: ConnId, room: RoomId) -> Result<Arc<RoomEntry>, NotConnected> {
        let entry = self.hub.subscribe(room, conn)?;
        if !entry.has_listener() {
            let listener = entry.set_listener(&self.hub);
            let idle = self.hub.wait_idle(room); // `conn` is subscribed: this entry
            let task = serve(Arc::clone(self), Arc::clone(&entry), listener, idle);
            self.started.fetch_add(1, Ordering::SeqCst);
            self.listeners.lock().unwrap().push(tokio::spawn(task));
        }
        Ok(entry)
    }

    async fn listeners_finished(&self) {
        loop {
            let tasks = std::mem::take(&mut *self.listeners.lock().unwrap());
            if tasks.is_empty() {
                return;
            }
            for t in tasks {
                t.await.expect("listener task panicked");
            }
        }
    }
}

async fn serve(
    host: Arc<Host>,
    entry: Arc<RoomEntry>,
    listener: Listener<Command>,
    mut idle: WaitIdle,
) {
    let room = entry.id();
    let mut cancelled = listener.token().cancelled();
    let mut commands = listener.into_stream();
    loop {
        tokio::select! {
            biased;
            () = &mut cancelled => break,
            Some(command) = commands.next() => handle(&entry, command),
            () = &mut idle => {
                if host.hub.remove_thread_if_idle(room) {
                    host.unloads.fetch_add(1, Ordering::SeqCst);
                }
                idle = host.hub.wait_idle(room);
            }
        }
    }
    while let Some(command) = commands.next().await {
        handle(&entry, command);
    }
}

fn handle(entry: &RoomEntry, command: Command) {
    let mut room = entry.state();
    match command {
        Command::Post(reply) => {
            room.lines += 1;
            reply.send(room.lines);
        }
        Command::Count(reply) => reply.send(room.lines),
    }
}

/// Connects, joins `rooms`, posts to each `posts` times (every post must be
/// answered), then disconnects.
async fn client(host: Arc<Host>, conn: ConnId, rooms: Vec<RoomId>, posts: usize) {
    host.hub.connect(conn, Caps::NONE);
    let mut entries = Vec::new();
    for &room in &rooms {
        entries.push(host.join(conn, room).expect("connected"));
    }
    for i in 0..posts {
        for entry in &entries {
            let answer = entry
                .request(Command::Post)
                .expect("a followed room always has a listener")
                .into_async()
                .await
                .expect("a followed room always answers");
            assert!(answer >= 1);
        }
        if i % 2 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for entry in &entries {
        let count = entry
            .request(Command::Count)
            .unwrap()
            .into_async()
            .await
            .unwrap();
        assert!(count >= posts, "room {}: {count} < {posts}", entry.id());
    }
    host.hub.disconnect(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smoke() {
    let host = Host::new();
    tokio::time::timeout(LIMIT, client(Arc::clone(&host), 1, vec![1], 1))
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, host.listeners_finished())
        .await
        .unwrap();
    assert_eq!(host.unloads.load(Ordering::SeqCst), 1);
    assert_eq!(host.hub.snapshot().thread_count(), 0);
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
                tokio::spawn(client(Arc::clone(&host), conn, rooms, 5))
            })
            .collect();
        for c in clients {
            tokio::time::timeout(LIMIT, c).await.unwrap().unwrap();
        }
        // Everyone left: every room unloads and every listener task ends.
        tokio::time::timeout(LIMIT, host.listeners_finished())
            .await
            .unwrap();
        let snap = host.hub.snapshot();
        assert_eq!(snap.thread_count(), 0, "wave {wave}");
        assert_eq!(snap.connection_count(), 0, "wave {wave}");
        snap.validate().unwrap();
    }
    let unloads = host.unloads.load(Ordering::SeqCst) as u64;
    // Each wave loads every room at least once; each load ends in one unload.
    assert!(unloads >= WAVES * ROOMS, "{unloads}");
    assert!(unloads <= host.started.load(Ordering::SeqCst) as u64);
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

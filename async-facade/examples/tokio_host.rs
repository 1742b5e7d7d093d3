//! A small chat hub on tokio.
//!
//! Each room is a switchboard thread served by one supervised listener
//! task ([`Supervisor`]), with a bounded queue (a slow room pushes back on
//! its clients instead of growing without limit). Whichever join finds the
//! room without a listener starts its task (exactly one, however many join
//! at once) and spawns it on tokio; the task answers requests until its
//! stream ends. The supervisor unloads a room once nobody has followed it
//! for a short linger (a join meanwhile keeps it), which ends the task
//! after it answered what was queued. A task that ends in any way, a panic
//! included (reported, not swallowed), frees the room's slot: the next
//! join starts a new one. Clients are tasks that connect, join rooms, talk
//! through request/reply, and disconnect. At the end the host shuts the hub
//! down and awaits every listener task with `shutdown_async`.
//!
//! ```text
//! cargo run -p switchboard-async --example tokio_host
//! ```
//!
//! `tests/tokio_host.rs` runs this file itself (its `main`, and its host
//! under waves of clients), so the example cannot drift from what is
//! tested.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{
    Caps, Engine, ListenerStream, NotConnected, QueueConfig, Reply, Supervisor, TaskEnd,
    ThreadEntry,
};

type RoomId = u64;
type ConnId = u64;

/// A room's state, kept in its thread entry.
#[derive(Default)]
pub(crate) struct Room {
    history: Vec<String>,
}

/// What a room's listener task is asked to do.
pub(crate) enum Command {
    /// Appends a line; answers with the room's line count.
    Post {
        from: ConnId,
        text: String,
        reply: Reply<usize>,
    },
    /// Answers with the room's history.
    History(Reply<Vec<String>>),
}

pub(crate) type Hub = Engine<RoomId, ConnId, Room, Command>;
type RoomEntry = ThreadEntry<RoomId, Room, Command>;

/// Commands a room's queue holds before its clients wait for room.
const ROOM_QUEUE: QueueConfig = QueueConfig::bounded(64);

/// How long a room with no member stays loaded.
const LINGER: Duration = Duration::from_millis(20);

/// The hub.
pub(crate) struct Host {
    pub(crate) hub: Arc<Hub>,
    rooms: Supervisor<RoomId, ConnId, Room, Command>,
}

impl Host {
    pub(crate) fn new() -> Arc<Self> {
        let hub = Arc::new(Hub::new());
        let rooms = Supervisor::new(&hub, serve_room)
            .queue(ROOM_QUEUE)
            .unload_when_idle(LINGER, tokio::time::sleep);
        Arc::new(Host { hub, rooms })
    }

    /// Subscribes `conn` to `room`, starting the room's listener task if it
    /// has none (never started, unloaded, or its task ended): of racing
    /// joins, exactly one starts it.
    fn join(&self, conn: ConnId, room: RoomId) -> Result<Arc<RoomEntry>, NotConnected> {
        let entry = self.hub.subscribe(room, conn)?;
        if let Some(task) = self.rooms.start(&entry) {
            let generation = task.generation();
            println!("room {room}: listener {generation} started");
            tokio::spawn(async move {
                match task.await {
                    TaskEnd::Unloaded => println!("room {room}: idle, unloaded"),
                    TaskEnd::Panicked(_) => eprintln!("room {room}: listener panicked"),
                    _ => println!("room {room}: listener {generation} stopped"),
                }
            });
        }
        Ok(entry)
    }

    /// Waits until every room of `rooms` is unloaded (a room's watch
    /// closes when its thread is removed).
    pub(crate) async fn rooms_unloaded(&self, rooms: &[RoomId]) {
        for &room in rooms {
            if let Some(watch) = self.hub.watch_subscribers(room) {
                let mut changes = watch.into_stream();
                while changes.next().await.is_some() {}
            }
        }
    }
}

/// The handler of one room's listener: every command until the stream
/// ends (the room unloaded, or the hub shut down), queued ones included.
async fn serve_room(mut commands: ListenerStream<Command>, entry: Arc<RoomEntry>) {
    while let Some(command) = commands.next().await {
        handle(&entry, command);
    }
}

fn handle(entry: &RoomEntry, command: Command) {
    match command {
        Command::Post { from, text, reply } => {
            let mut room = entry.state();
            room.history.push(format!("{from}: {text}"));
            reply.send(room.history.len());
        }
        Command::History(reply) => reply.send(entry.state().history.clone()),
    }
}

/// A client session: connect, join, talk, read, leave.
pub(crate) async fn client(host: Arc<Host>, conn: ConnId, rooms: Vec<RoomId>) {
    host.hub.connect(conn, Caps::NONE);
    for &room in &rooms {
        let entry = host.join(conn, room).expect("we just connected");
        let text = format!("hello from {conn}");
        let (reply, answer) = Reply::pair();
        entry
            .send_async(Command::Post {
                from: conn,
                text,
                reply,
            })
            .await
            .expect("a joined room has a listener");
        let posted = answer.into_async().await.expect("the listener answers");
        println!("conn {conn}: posted to room {room} (line {posted})");
    }
    tokio::time::sleep(Duration::from_millis(10)).await; // chat a little
    let lobby = host.hub.get_thread(rooms[0]).expect("we still follow it");
    let (reply, answer) = Reply::pair();
    lobby
        .send_async(Command::History(reply))
        .await
        .expect("a followed room has a listener");
    let history = answer.into_async().await.expect("the listener answers");
    println!("conn {conn}: room {} says {history:?}", rooms[0]);
    let emptied = host.hub.disconnect(conn);
    println!("conn {conn}: left; rooms now idle: {emptied:?}");
}

const LOBBY: RoomId = 1;
const GAMES: RoomId = 2;
const MUSIC: RoomId = 3;

#[tokio::main]
pub(crate) async fn main() {
    let host = Host::new();
    let clients = [
        tokio::spawn(client(Arc::clone(&host), 10, vec![LOBBY, GAMES])),
        tokio::spawn(client(Arc::clone(&host), 11, vec![LOBBY, MUSIC])),
        tokio::spawn(client(Arc::clone(&host), 12, vec![LOBBY])),
    ];
    for c in clients {
        c.await.expect("client task panicked");
    }

    // Every client left, so every room goes idle and its listener unloads it.
    tokio::time::timeout(
        Duration::from_secs(5),
        host.rooms_unloaded(&[LOBBY, GAMES, MUSIC]),
    )
    .await
    .expect("idle rooms unload by themselves");
    let rooms_left = host.hub.snapshot().thread_count();
    println!("rooms still loaded: {rooms_left}");
    assert_eq!(rooms_left, 0);

    // Shut down: no listener starts from now on, and every listener task
    // (a room's, or one a late join started) has ended once this resolves.
    let shutdown = host.hub.shutdown_async();
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("every listener task ends");
    println!("hub shut down");
}

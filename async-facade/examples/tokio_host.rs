//! A small chat hub on tokio.
//!
//! Each room is a switchboard thread served by one listener task, with a
//! bounded queue (a slow room pushes back on its clients instead of growing
//! without limit). The task selects over its cancellation, its command
//! stream and the room going idle: it answers requests, unloads the room
//! once nobody follows it, and stops (after answering what was queued) once
//! unloaded or replaced. A task that ends in any way, a panic included,
//! drops its listener, which frees the room's slot: the next join starts a
//! new one. Clients are tasks that connect, join rooms, talk through
//! request/reply, and disconnect. At the end the host shuts the hub down and
//! awaits every listener task with `shutdown_async`.
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
    Caps, Engine, Listener, NotConnected, QueueConfig, Reply, ThreadEntry, WaitIdle,
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

/// The hub.
pub(crate) struct Host {
    pub(crate) hub: Arc<Hub>,
}

impl Host {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Host {
            hub: Arc::new(Hub::new()),
        })
    }

    /// Subscribes `conn` to `room`, starting the room's listener task if it
    /// has none: never started, unloaded, or its task ended (its dropped
    /// listener freed the slot). Two racing joins may both start one; the
    /// first then hands over to the second.
    fn join(&self, conn: ConnId, room: RoomId) -> Result<Arc<RoomEntry>, NotConnected> {
        let entry = self.hub.subscribe(room, conn)?;
        if !entry.has_listener() {
            let listener = entry.set_listener_with(&self.hub, ROOM_QUEUE);
            // Made while `conn` is subscribed, so it watches this entry.
            let idle = self.hub.wait_idle(room);
            tokio::spawn(serve_room(
                Arc::clone(&self.hub),
                Arc::clone(&entry),
                listener,
                idle,
            ));
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

/// The task serving one room.
async fn serve_room(
    hub: Arc<Hub>,
    entry: Arc<RoomEntry>,
    listener: Listener<Command>,
    mut idle: WaitIdle,
) {
    let room = entry.id();
    let generation = listener.generation();
    let mut cancelled = listener.token().cancelled();
    let mut commands = listener.into_stream();
    println!("room {room}: listener {generation} started");
    loop {
        tokio::select! {
            // Cancellation first: once replaced or unloaded, never act on
            // a stale idle signal.
            biased;
            () = &mut cancelled => break,
            Some(command) = commands.next() => handle(&entry, command),
            () = &mut idle => {
                // Atomic against a racing subscribe: if someone joined since
                // we were woken, the room stays and we wait again. If it
                // goes, our listener is cleared and `cancelled` fires. Bound
                // to our entry: a newer entry for the same id is not ours
                // to unload.
                if hub.remove_entry_if_idle(&entry) {
                    println!("room {room}: idle, unloading");
                }
                idle = hub.wait_idle(room);
            }
        }
    }
    // The queue is closed now: answer what was queued before, then stop.
    while let Some(command) = commands.next().await {
        handle(&entry, command);
    }
    println!("room {room}: listener {generation} stopped");
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

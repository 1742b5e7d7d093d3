//! A room's listener: one task per loaded room, started and supervised by
//! the hub's [`Supervisor`](switchboard_async::Supervisor), serving the
//! room's commands in order (each say is numbered and fanned out here, so
//! every member gets a room's messages in `seq` order).
//!
//! The supervisor unloads the room once nobody has been in it for the
//! linger (a join meanwhile re-arms it), and frees the room's slot however
//! the task ends, a panic included: the next join starts a new one.

use super::engine::{Engine, RoomCmd, RoomEntry, RoomId};
use super::protocol;
use futures::StreamExt;
use std::sync::{Arc, Weak};
use switchboard_async::ListenerStream;
use tokio_tungstenite::tungstenite::Message;

/// The handler of one load of one room: serves until its stream ends
/// (the room was unloaded, or the server is shutting down).
pub(crate) async fn serve(
    engine: Weak<Engine>,
    mut commands: ListenerStream<RoomCmd>,
    entry: Arc<RoomEntry>,
) {
    while let Some(command) = commands.next().await {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        // Once unloaded, the stream still yields what was queued before:
        // refuse it (dropping a reply answers its sender with an error)
        // rather than fan out to the members of a later load. Only this
        // task's supervisor unloads this entry, and not while `handle`
        // runs, so a current entry stays current through it.
        if is_current(&engine, &entry) {
            handle(&engine, &entry, command);
        }
    }
}

fn handle(engine: &Engine, entry: &RoomEntry, command: RoomCmd) {
    match command {
        RoomCmd::Say {
            from,
            mid,
            text,
            reply,
        } => {
            let (seq, frame) = {
                let mut room = entry.state();
                room.seq += 1;
                let frame = protocol::msg(&room.name, room.seq, room.inc, from, &mid, &text);
                (room.seq, frame)
            };
            fan_out(engine, entry.id(), &Message::text(frame));
            reply.send(seq);
        }
        RoomCmd::Ask(reply) => reply.send(entry.state().seq),
        // Cluster mode's commands go to `owner.rs`, never here.
        RoomCmd::Routed(_) => {}
    }
}

/// Whether `entry` is still its room's current entry.
fn is_current(engine: &Engine, entry: &Arc<RoomEntry>) -> bool {
    engine
        .get_thread(entry.id())
        .is_some_and(|e| Arc::ptr_eq(&e, entry))
}

/// Sends `frame` to every member of `room`, never waiting (a full outbox
/// closes its connection).
fn fan_out(engine: &Engine, room: RoomId, frame: &Message) {
    engine.for_each_subscriber_data(room, |_, outbox| {
        outbox.push(frame.clone());
    });
}

//! A room's listener: one task per loaded room, started and supervised by
//! the hub's [`Supervisor`](switchboard_async::Supervisor), serving the
//! room's commands in order (each say is numbered and fanned out here, so
//! every member gets a room's messages in `seq` order).
//!
//! The supervisor unloads the room once nobody has been in it for the
//! linger (a join meanwhile re-arms it), and frees the room's slot however
//! the task ends, a panic included: the next join starts a new one.

use super::hub::{Hub, RoomEntry};
use super::protocol;
use futures::StreamExt;
use serde_json::Value;
use std::sync::{Arc, Weak};
use switchboard_async::{ListenerStream, Reply};
use tokio_tungstenite::tungstenite::Message;

/// What a room's listener is asked to do.
#[derive(Debug)]
pub(crate) enum RoomCmd {
    /// Number the message, fan it out to every member, answer its `seq`.
    Say {
        from: u64,
        mid: Value,
        text: String,
        reply: Reply<u64>,
    },
    /// Answer how many messages this load has seen.
    Ask(Reply<u64>),
}

/// The handler of one load of one room: serves until its stream ends
/// (the room was unloaded, or the server is shutting down).
pub(crate) async fn serve(
    hub: Weak<Hub>,
    mut commands: ListenerStream<RoomCmd>,
    entry: Arc<RoomEntry>,
) {
    while let Some(command) = commands.next().await {
        let Some(hub) = hub.upgrade() else { return };
        // Once unloaded, the stream still yields what was queued before:
        // refuse it (dropping a reply answers its sender with an error)
        // rather than fan out to the members of a later load. Only this
        // task's supervisor unloads this entry, and not while `handle`
        // runs, so a current entry stays current through it.
        if hub.is_current(&entry) {
            handle(&hub, &entry, command);
        }
    }
}

fn handle(hub: &Hub, entry: &RoomEntry, command: RoomCmd) {
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
            hub.fan_out(entry.id(), &Message::text(frame));
            reply.send(seq);
        }
        RoomCmd::Ask(reply) => reply.send(entry.state().seq),
    }
}

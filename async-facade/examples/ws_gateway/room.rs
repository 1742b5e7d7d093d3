//! A room's listener: one task per loaded room, serving its commands in
//! order (each say is numbered and fanned out here, so every member gets a
//! room's messages in `seq` order), and unloading the room once nobody has
//! been in it for the linger.
//!
//! The task ends when its listener is cancelled (the room was unloaded, or
//! the server is shutting down) or when its room is no longer current. If
//! it ends in any other way, a panic included, its dropped listener frees
//! the room's slot and the next join starts a new listener.

use super::hub::{Hub, RoomEntry};
use super::protocol;
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{Listener, Reply};
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

/// The task serving one load of one room.
pub(crate) async fn serve(hub: Arc<Hub>, entry: Arc<RoomEntry>, listener: Listener<RoomCmd>) {
    let linger = hub.config().linger;
    let mut cancelled = listener.token().cancelled();
    let mut commands = listener.into_stream();
    let mut unload = Box::pin(idle_for(Arc::clone(&entry), linger));
    loop {
        tokio::select! {
            // Cancellation first: once unloaded, never serve again.
            biased;
            () = &mut cancelled => break,
            command = commands.next() => match command {
                Some(command) => handle(&hub, &entry, command),
                None => break,
            },
            () = &mut unload => {
                // Atomic against a racing join: if someone joined since,
                // the room stays and we wait again. If it goes, our
                // listener is cancelled and the loop ends.
                if !hub.unload_if_idle(&entry) && !hub.is_current(&entry) {
                    break;
                }
                unload.set(idle_for(Arc::clone(&entry), linger));
            }
        }
    }
    // The queue is closed: refuse what is still queued (dropping a reply
    // answers its sender with an error). Its senders have left the room,
    // or the server is shutting down.
    while let Some(command) = commands.next().await {
        drop(command);
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

/// Completes once the room has had no member for `linger` in a row: the
/// linger starts over whenever someone joins meanwhile. Also completes at
/// once if the entry is removed.
async fn idle_for(entry: Arc<RoomEntry>, linger: Duration) {
    // Tied to this entry: a later load of the same room is not ours.
    let mut watch = entry.watch_subscribers();
    loop {
        while watch.get() {
            if watch.changed().await.is_err() {
                return; // removed
            }
        }
        if watch.is_closed() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(linger) => return,
            // A join (or a join and a leave) during the linger: look again.
            changed = watch.changed() => if changed.is_err() { return },
        }
    }
}

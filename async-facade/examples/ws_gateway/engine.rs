//! The gateway's engine: what its threads, connections, states, commands
//! and data are. Rooms are threads (`u64` ids, mapped from their names by
//! the hub), each with its [`Room`] state and a listener taking
//! [`RoomCmd`]s; connections are `u64` ids, each with its [`Outbox`] as
//! its data.

use super::outbox::Outbox;
use serde_json::Value;
use std::sync::Arc;
use switchboard_async::{Reply, Supervisor, ThreadEntry};
use switchboard_redis::RoutedCommand;

/// A connection id: what `hello` and `resumed` tell the client.
pub(crate) type ConnId = u64;
/// One incarnation of a connection id: what a websocket acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    /// The engine's incarnation number: never reused.
    pub(crate) inc: u64,
}

/// A room's thread id in the engine.
pub(crate) type RoomId = u64;

/// The gateway's engine: rooms by id, connections by id with their outbox,
/// each room's state in its entry, commands to each room's listener.
pub(crate) type Engine = switchboard_async::Engine<RoomId, ConnId, Room, RoomCmd, Outbox>;
pub(crate) type RoomEntry = ThreadEntry<RoomId, Room, RoomCmd>;
/// The supervisor of the room listeners.
pub(crate) type Listeners = Supervisor<RoomId, ConnId, Room, RoomCmd, Outbox>;

/// One load of a room: the state in its thread entry, given by the join
/// that creates the entry (`Hub::join`). A room is unloaded when the
/// supervisor removes the idle entry; the next join loads it again, with
/// a new entry and the next `inc`. It has no `Default`: no room exists
/// without its name and number.
#[derive(Debug)]
pub(crate) struct Room {
    /// The room's name.
    pub(crate) name: Arc<str>,
    /// Which load of the room this is (1, 2, …).
    pub(crate) inc: u64,
    /// Messages said in this load; written only by the room's listener.
    pub(crate) seq: u64,
}

/// What a room's listener is asked to do.
#[derive(Debug)]
pub(crate) enum RoomCmd {
    /// Number the message, fan it out to every member, answer its `seq`.
    Say {
        from: ConnId,
        mid: Value,
        text: String,
        reply: Reply<u64>,
    },
    /// Answer how many messages this load has seen.
    Ask(Reply<u64>),
    /// Cluster mode: a say or ask routed to this node as the room's owner
    /// (`owner.rs`), from any node.
    Routed(RoutedCommand),
}

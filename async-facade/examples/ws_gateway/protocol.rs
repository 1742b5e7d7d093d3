//! The wire protocol: JSON text frames, one object each.
//!
//! Requests are parsed from a `serde_json::Value` by hand, so that any
//! malformed request still gets an error frame that echoes its `"id"` (and
//! its `"room"` when it has one). Answers are built with `json!`; a
//! request's `"id"` (any JSON value) comes back as `"re"`, and is left out
//! when the request had none.

use serde_json::{json, Map, Value};

/// The longest room name accepted, in bytes.
pub(crate) const MAX_ROOM: usize = 128;
/// The longest session string accepted, in bytes.
pub(crate) const MAX_SESSION: usize = 128;

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    /// The request's `"id"`, echoed as `"re"` (and as a say's `"mid"`).
    pub(crate) id: Option<Value>,
    pub(crate) op: Op,
}

/// What a request asks for.
#[derive(Debug)]
pub(crate) enum Op {
    Join { room: String },
    Leave { room: String },
    Say { room: String, text: String },
    Ask { room: String },
    Stats,
    Resume { session: String },
    Ping,
}

/// Why a request was refused: the `"error"` string of an error frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a JSON object.
    BadJson,
    /// A field is missing or has the wrong type, or a binary frame.
    BadRequest,
    /// `"op"` names no operation.
    UnknownOp,
    /// The room name is empty or longer than [`MAX_ROOM`] bytes (or a
    /// session string longer than [`MAX_SESSION`]).
    BadRoom,
    /// A say's text is longer than the server's limit.
    TooLong,
    /// The server knows as many room names (or sessions) as it keeps.
    TooMany,
    /// A say from a connection that is not in the room.
    NotMember,
    /// An ask to a room that is not loaded (no listener is serving it).
    NotLoaded,
    /// The room's listener went away before answering.
    NoListener,
    /// This websocket's connection was taken over by a `resume` elsewhere.
    NotConnected,
    /// The server is shutting down.
    ShuttingDown,
    /// Cluster mode: a session could not be taken over in time (Redis
    /// away).
    Unavailable,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::BadJson => "bad_json",
            Refusal::BadRequest => "bad_request",
            Refusal::UnknownOp => "unknown_op",
            Refusal::BadRoom => "bad_room",
            Refusal::TooLong => "too_long",
            Refusal::TooMany => "too_many",
            Refusal::NotMember => "not_member",
            Refusal::NotLoaded => "not_loaded",
            Refusal::NoListener => "no_listener",
            Refusal::NotConnected => "not_connected",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Unavailable => "unavailable",
        }
    }
}

/// A request that could not be parsed: enough to answer it.
#[derive(Debug)]
pub(crate) struct BadRequest {
    pub(crate) id: Option<Value>,
    pub(crate) room: Option<String>,
    pub(crate) why: Refusal,
}

/// Parses one text frame.
///
/// # Errors
///
/// What to answer when the frame is not a well-formed request.
pub(crate) fn parse(text: &str) -> Result<Request, BadRequest> {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text) else {
        return Err(BadRequest {
            id: None,
            room: None,
            why: Refusal::BadJson,
        });
    };
    let id = fields.remove("id");
    let room = match fields.remove("room") {
        Some(Value::String(room)) => Some(room),
        Some(_) => return Err(bad(id, None, Refusal::BadRequest)),
        None => None,
    };
    let op = fields.remove("op");
    let Some(Value::String(op)) = op else {
        return Err(bad(id, room, Refusal::BadRequest));
    };
    let needs_room = matches!(op.as_str(), "join" | "leave" | "say" | "ask");
    let room = if needs_room {
        match room {
            Some(r) if !r.is_empty() && r.len() <= MAX_ROOM => r,
            Some(r) => return Err(bad(id, Some(r), Refusal::BadRoom)),
            None => return Err(bad(id, None, Refusal::BadRequest)),
        }
    } else {
        String::new()
    };
    let op = match op.as_str() {
        "join" => Op::Join { room },
        "leave" => Op::Leave { room },
        "say" => match fields.remove("text") {
            Some(Value::String(text)) => Op::Say { room, text },
            _ => return Err(bad(id, Some(room), Refusal::BadRequest)),
        },
        "ask" => Op::Ask { room },
        "stats" => Op::Stats,
        "ping" => Op::Ping,
        "resume" => match fields.remove("session") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SESSION => {
                Op::Resume { session: s }
            }
            Some(Value::String(_)) => return Err(bad(id, None, Refusal::BadRoom)),
            _ => return Err(bad(id, None, Refusal::BadRequest)),
        },
        _ => return Err(bad(id, None, Refusal::UnknownOp)),
    };
    Ok(Request { id, op })
}

fn bad(id: Option<Value>, room: Option<String>, why: Refusal) -> BadRequest {
    BadRequest { id, room, why }
}

/// An answer frame: `body` (an object) with `"re"` set to the request's
/// id, if any.
pub(crate) fn answer(id: &Option<Value>, mut body: Value) -> String {
    if let (Some(id), Value::Object(fields)) = (id, &mut body) {
        fields.insert("re".into(), id.clone());
    }
    body.to_string()
}

/// `{"op":"error","re":..,"room":R,"error":"<reason>"}`.
pub(crate) fn error(id: &Option<Value>, room: Option<&str>, why: Refusal) -> String {
    let mut fields = Map::new();
    fields.insert("op".into(), "error".into());
    if let Some(room) = room {
        fields.insert("room".into(), room.into());
    }
    fields.insert("error".into(), why.as_str().into());
    answer(id, Value::Object(fields))
}

/// `{"op":"hello","conn":c}` (and `"node":NAME` in cluster mode): the
/// first frame of every websocket.
pub(crate) fn hello(conn: u64, node: Option<&str>) -> String {
    match node {
        Some(node) => json!({"op": "hello", "conn": conn, "node": node}),
        None => json!({"op": "hello", "conn": conn}),
    }
    .to_string()
}

/// The frame every member of a room gets for one say.
pub(crate) fn msg(room: &str, seq: u64, inc: u64, from: u64, mid: &Value, text: &str) -> String {
    json!({
        "op": "msg", "room": room, "seq": seq, "inc": inc,
        "from": from, "mid": mid, "text": text,
    })
    .to_string()
}

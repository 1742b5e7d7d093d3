//! A room's owner in cluster mode: the listener the hub's cluster
//! `Supervisor` runs on the one node whose claim of the room won, for as
//! long as its lease holds (the supervisor drops it the moment the lease
//! is lost, and releases the lease when the room unloads).
//!
//! Every say and ask of the room, from any node, reaches it as a routed
//! request (`ClusterPart::route`; in-process from this node) and is served
//! in arrival order: a say is published through the lease, **fenced**
//! (Redis refuses it once another lease of the room exists, so an owner
//! that lost its lease unawares cannot publish after its successor), then
//! answered with its Redis `seq`. Its payload carries the room, the load
//! (`inc`: this lease's fencing token, larger for every later owner), the
//! sayer and the text; every node's delivery loop makes the `msg` frame.

use super::cluster::ClusterPart;
use super::engine::{Engine, RoomCmd, RoomEntry};
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::{Arc, Weak};
use switchboard_async::ListenerStream;

/// Serves one lease of one room until its stream ends (unloaded, shut
/// down) or the supervisor drops it (lease lost).
pub(crate) async fn serve(
    engine: Weak<Engine>,
    part: Arc<ClusterPart>,
    mut commands: ListenerStream<RoomCmd>,
    entry: Arc<RoomEntry>,
) {
    let room = entry.id();
    // The claim has won by now: the token is this load's number.
    let Some(token) = part.cluster.token(room) else {
        return;
    };
    entry.state().inc = token;
    // The room's head as this owner knows it (for asks).
    let mut head = part.delivered.get(room);
    while let Some(command) = commands.next().await {
        let RoomCmd::Routed(c) = command else {
            // Local Say/Ask are the single-process path; never sent here.
            continue;
        };
        let current = engine.upgrade().is_some_and(|e| {
            e.get_thread(room)
                .is_some_and(|current| Arc::ptr_eq(&current, &entry))
        });
        if !current {
            // Unloaded meanwhile: dropping `c` answers its sender `Lost`.
            continue;
        }
        let Ok(request) = serde_json::from_slice::<Value>(c.payload()) else {
            continue;
        };
        let answer = match request["k"].as_str() {
            Some("say") => {
                let payload = json!({
                    "room": request["room"], "inc": token, "from": request["from"],
                    "mid": request["mid"], "text": request["text"],
                });
                match part
                    .cluster
                    .publish(room, token, payload.to_string().as_bytes())
                    .await
                {
                    Ok(published) => {
                        head = head.max(published.seq);
                        json!({"seq": published.seq})
                    }
                    // Fenced, or Redis did not answer (then it may have
                    // been published: the sayer is told it failed).
                    Err(_) => json!({"error": "no_listener"}),
                }
            }
            Some("ask") => {
                head = head.max(part.delivered.get(room));
                json!({"count": head, "node": part.name})
            }
            _ => continue,
        };
        // Answered off the serving path: a remote answer is a Redis round
        // trip, and the order of answers does not matter.
        tokio::spawn(async move {
            let _ = c.reply(answer.to_string().as_bytes()).await;
        });
    }
}

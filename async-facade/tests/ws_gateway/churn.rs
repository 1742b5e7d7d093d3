//! The churn run's clients: each slot is one session living several
//! websockets in turn, each sending random requests (join, leave, say, ask,
//! ping, stats) and ending by a close, a dropped TCP stream, or a takeover
//! by the next one. Everything they see is checked afterwards
//! (`check.rs`); what only the client can know is checked on the spot.

use super::check;
use super::client::{Client, Rng};
use serde_json::json;
use std::net::SocketAddr;

/// Connections alive at once, each living `LIVES` websockets in turn.
pub(crate) const SLOTS: usize = 300;
const LIVES: usize = 3;
/// Requests per websocket, after its `resume`.
const OPS: usize = 12;
const ROOMS: u64 = 16;

/// A new websocket resuming `session`; checks the id it gets.
async fn resumed(addr: SocketAddr, session: &str, id: &mut Option<u64>) -> Client {
    let mut c = Client::connect(addr).await;
    let r = c
        .request(json!({"op": "resume", "session": session}))
        .await
        .unwrap();
    let conn = r["conn"].as_u64().expect("resumed names the id");
    assert_eq!(*id.get_or_insert(conn), conn, "a session keeps its id");
    c.conn = conn;
    c
}

/// One request of the churn, checked on the spot where the client alone
/// decides the answer.
async fn op(c: &mut Client, rng: &mut Rng, rooms: &mut Vec<String>) {
    let pick = rng.below(100);
    let room = format!("room-{}", rng.below(ROOMS));
    if pick < 25 {
        let joined = c
            .request(json!({"op": "join", "room": room}))
            .await
            .unwrap();
        assert_eq!(joined["op"], "joined", "{joined}");
        if !rooms.contains(&room) {
            rooms.push(room);
        }
    } else if pick < 40 {
        let room = rooms.get(rng.below(4) as usize).cloned().unwrap_or(room);
        let left = c
            .request(json!({"op": "leave", "room": room}))
            .await
            .unwrap();
        assert_eq!(left["was_member"], rooms.contains(&room), "{left}");
        rooms.retain(|r| *r != room);
    } else if pick < 75 {
        let member = !rooms.is_empty() && pick < 72;
        let room = if member {
            rooms[rng.below(rooms.len() as u64) as usize].clone()
        } else {
            room
        };
        let text = format!("{} says {}", c.conn, rng.below(1 << 20));
        let said = c
            .request(json!({"op": "say", "room": room, "text": text}))
            .await
            .unwrap();
        let expected = if rooms.contains(&room) {
            "said"
        } else {
            "error"
        };
        assert_eq!(said["op"], expected, "{said}");
    } else if pick < 88 {
        c.request(json!({"op": "ask", "room": room})).await.unwrap();
    } else if pick < 96 {
        c.request(json!({"op": "ping"})).await.unwrap();
    } else {
        c.stats().await;
    }
}

/// One slot: `LIVES` websockets of one session, each ending by a close, a
/// dropped TCP stream, or a takeover by the next one.
pub(crate) async fn slot(addr: SocketAddr, slot: u64) -> Vec<check::Life> {
    let mut rng = Rng(slot);
    let session = format!("session-{slot}");
    let mut id = None;
    let mut lives = Vec::new();
    let mut c = resumed(addr, &session, &mut id).await;
    for life in 0..LIVES {
        let mut rooms = Vec::new();
        for _ in 0..OPS {
            op(&mut c, &mut rng, &mut rooms).await;
        }
        let last = life + 1 == LIVES;
        let end = rng.below(3);
        let mut taken_over = None;
        let next = if end == 2 && !last {
            // Takeover: the next websocket resumes while this one is open.
            let next = resumed(addr, &session, &mut id).await;
            let resume = &next.sent[0];
            let acked = next.frames[resume.answer.unwrap()].0;
            taken_over = Some((resume.sent, acked));
            assert_eq!(c.until_closed().await, 4000);
            Some(next)
        } else {
            if end == 0 {
                c.close().await;
            } else {
                c.drop_abruptly();
            }
            None
        };
        let replacement = match next {
            Some(next) => next,
            None if last => {
                lives.push(check::Life {
                    client: c,
                    taken_over,
                });
                break;
            }
            None => resumed(addr, &session, &mut id).await,
        };
        lives.push(check::Life {
            client: std::mem::replace(&mut c, replacement),
            taken_over,
        });
    }
    lives
}

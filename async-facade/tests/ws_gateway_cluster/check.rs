//! The delivery rule the cluster run is held to, and its check: the
//! single-process rule (`tests/ws_gateway/check.rs`) with the cluster's
//! documented windows. A say is published by its room's owner before it
//! is acked, but each node delivers it to its own members when Redis
//! hands it over, up to [`WINDOW`] later (the node's delivery lag). So
//! rule 2 counts a membership only if it lasted `WINDOW` past the ack (and
//! needs an answer to a request sent `WINDOW` after the ack), the sayer
//! may read its `said` before its own `msg`, and rule 3 allows a join sent
//! within `WINDOW` after the ack to get it. A say answered `no_listener`
//! (its owner failed over before answering) may or may not have been
//! published: it may be delivered, at most once, never anything else.
//! `seq` is the room's Redis sequence: on each websocket it increases
//! strictly per room, across loads too, and no two acked says of a room
//! share one.
//!
//! Every instant here is a client's: a request's `sent` is taken just
//! before its frame is written, an answer's or a message's just after it is
//! read. All clients share one monotonic clock, so `a < b` between two of
//! them means that `a`'s event happened before `b`'s. What the server
//! guarantees, and so what may be claimed:
//!
//! - a say's fan-out happens after its request is sent and before its
//!   `said` is read (`said` is pushed after the fan-out);
//! - a join's subscription is published after its request is sent and
//!   before its `joined` is read; a leave's (or a disconnect's, or a
//!   takeover's) unsubscription likewise between its request and its
//!   answer;
//! - a connection's frames arrive in the order they were pushed to its one
//!   outbox, and its requests are served one at a time, in order.
//!
//! So, for a say S in room R (sent at `S.sent`, `said` read at `S.said`)
//! and a websocket W, with W's membership intervals in R as
//! `[join sent, joined read] … [end sent, end acked]`, where an interval
//! ends with W's leave (acked by `left`), W's resume (acked by its own
//! `resumed`), a takeover by another websocket (acked by that one's
//! `resumed`), or W's own close or drop (never acked: W reads no more):
//!
//! 1. **At most once.** W gets S's `msg` at most once, with S's room, seq,
//!    text and sayer, and a `msg` names only a say that was made.
//! 2. **Must.** If some interval has `joined read < S.sent` and `end sent >
//!    S.said` (or no end), and W had a request sent after `S.said` answered
//!    (W was still reading then), W got S's `msg`, before that answer. The
//!    sayer itself, a member since before `S.sent`, gets its `msg` before
//!    its `said`.
//! 3. **Must not.** If every interval has `join sent > S.said` or `end
//!    acked < S.sent`, W did not get S (this covers an ended incarnation:
//!    a websocket taken over gets no `msg` of a say sent after the
//!    takeover was acked, and the new incarnation none of a room it has
//!    not joined). A refused say reaches no one.
//! 4. Otherwise the membership overlapped the fan-out by a margin no
//!    client can see, and either outcome is allowed.
//! 5. On each websocket, a room's `seq` strictly increases within one
//!    load (`inc`).
//! 6. Every request has exactly one answer (every ask a `count` or a
//!    refusal), except on a websocket the server closed.

use super::client::{Client, End};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The longest a node may take to hand a published say to its members
/// (loopback, three debug-built nodes and the clients on two cores).
pub(crate) const WINDOW: Duration = Duration::from_secs(2);

/// One websocket's record, once it ended.
pub(crate) struct Life {
    pub(crate) client: Client,
    /// When another websocket's `resume` took this one's id over: sent, acked.
    pub(crate) taken_over: Option<(Instant, Instant)>,
}

struct Say {
    room: String,
    text: String,
    from: u64,
    node: String,
    sent: Instant,
    /// Answered `no_listener`: may have been published.
    maybe: bool,
    /// `said` read at, its index, its seq; `None` when refused.
    said: Option<(Instant, usize, u64)>,
}

struct Interval {
    join_sent: Instant,
    joined: Instant,
    end_sent: Option<Instant>,
    end_acked: Option<Instant>,
}

/// What the run delivered and how much the rule could claim.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) says: usize,
    pub(crate) deliveries: usize,
    pub(crate) must: usize,
    pub(crate) must_not: usize,
    pub(crate) latencies: Vec<Duration>,
    /// (say→delivery latency, whether the receiver was on the sayer's node).
    pub(crate) by_node: Vec<(Duration, bool)>,
    pub(crate) maybe_delivered: usize,
}

/// Checks the rule above; panics on the first violation.
pub(crate) fn check(lives: &[Life]) -> Figures {
    let mut says: HashMap<u64, Say> = HashMap::new();
    // Room → life → that life's intervals in the room.
    let mut intervals: HashMap<String, HashMap<usize, Vec<Interval>>> = HashMap::new();
    for (w, life) in lives.iter().enumerate() {
        let c = &life.client;
        let closed_by_server = matches!(c.end, End::ByServer(_));
        let own_end = match c.end {
            End::Closed(at) | End::Dropped(at) => Some(at),
            End::Open | End::ByServer(_) => None,
        };
        let (end_sent, end_acked) = match life.taken_over {
            Some((sent, acked)) => (Some(sent), Some(acked)),
            None => (own_end, None),
        };
        let mut conn = c.conn;
        for s in &c.sent {
            let Some(a) = s.answer else {
                assert!(closed_by_server, "life {w}: {} unanswered", s.body);
                if s.body["op"] == "say" {
                    // Its node went away before answering: the owner
                    // may have published it.
                    let say = Say {
                        room: s.body["room"].as_str().unwrap().to_owned(),
                        text: s.body["text"].as_str().unwrap().to_owned(),
                        from: conn,
                        node: c.node.clone(),
                        sent: s.sent,
                        maybe: true,
                        said: None,
                    };
                    assert!(says.insert(s.id, say).is_none());
                }
                continue;
            };
            let (at, answer) = &c.frames[a];
            let room = s.body["room"].as_str().unwrap_or_default().to_owned();
            let open = intervals
                .entry(room.clone())
                .or_default()
                .entry(w)
                .or_default();
            match (
                s.body["op"].as_str().unwrap(),
                answer["op"].as_str().unwrap(),
            ) {
                ("resume", "resumed") => {
                    assert!(open.is_empty(), "resume is each life's first request");
                    conn = answer["conn"].as_u64().unwrap();
                }
                ("join", "joined") => {
                    if open.last().map_or(true, |i| i.end_sent.is_some()) {
                        open.push(Interval {
                            join_sent: s.sent,
                            joined: *at,
                            end_sent: None,
                            end_acked: None,
                        });
                    }
                }
                ("leave", "left") => {
                    let last = open.last_mut().filter(|i| i.end_sent.is_none());
                    assert_eq!(answer["was_member"], last.is_some(), "life {w}: {answer}");
                    if let Some(i) = last {
                        (i.end_sent, i.end_acked) = (Some(s.sent), Some(*at));
                    }
                }
                ("say", op) => {
                    let said = (op == "said").then(|| (*at, a, answer["seq"].as_u64().unwrap()));
                    let text = s.body["text"].as_str().unwrap().to_owned();
                    let why = answer["error"].as_str().unwrap_or_default();
                    if op == "error" {
                        let allowed = ["no_listener", "not_member", "shutting_down"];
                        assert!(allowed.contains(&why), "life {w}: {answer}");
                    }
                    let say = Say {
                        room,
                        text,
                        from: conn,
                        node: c.node.clone(),
                        sent: s.sent,
                        maybe: why == "no_listener",
                        said,
                    };
                    assert!(says.insert(s.id, say).is_none());
                }
                ("ask", "count") => {
                    assert!(answer["owner"].is_string(), "one owner answers: {answer}");
                }
                ("ask", "error") => {
                    let why = answer["error"].as_str().unwrap();
                    assert!(matches!(why, "not_loaded" | "no_listener"), "{answer}");
                }
                ("ping", "pong") | ("stats", "stats") | ("join" | "leave", "error") => {}
                (op, answer) => panic!("life {w}: {op} answered by {answer}"),
            }
        }
        for open in intervals.values_mut().filter_map(|room| room.get_mut(&w)) {
            for i in open.iter_mut().filter(|i| i.end_sent.is_none()) {
                (i.end_sent, i.end_acked) = (end_sent, end_acked);
            }
        }
    }

    let mut figures = Figures {
        says: says.len(),
        ..Figures::default()
    };
    // No two acked says of a room share a seq.
    let mut seqs: HashMap<(&str, u64), u64> = HashMap::new();
    for (mid, say) in &says {
        if let Some((_, _, seq)) = say.said {
            let other = seqs.insert((say.room.as_str(), seq), *mid);
            assert!(other.is_none(), "says {mid} and {other:?} share seq {seq}");
        }
    }
    // Rule 1, and 5: each life's msgs, by mid.
    let mut received: Vec<HashMap<u64, usize>> = Vec::new();
    for (w, life) in lives.iter().enumerate() {
        let mut got = HashMap::new();
        let mut last_seq: HashMap<(String, u64), u64> = HashMap::new();
        for (index, (at, frame)) in life.client.frames.iter().enumerate() {
            if frame["op"] != "msg" {
                continue;
            }
            let mid = frame["mid"].as_u64().expect("every say had an id");
            let say = says
                .get(&mid)
                .unwrap_or_else(|| panic!("life {w}: unknown say {frame}"));
            let seq = match say.said {
                Some((_, _, seq)) => seq,
                None if say.maybe => {
                    figures.maybe_delivered += 1;
                    frame["seq"].as_u64().unwrap()
                }
                None => panic!("refused say delivered: {frame}"),
            };
            assert_eq!(frame["room"], say.room.as_str());
            assert_eq!(frame["text"], say.text.as_str());
            assert_eq!(
                (frame["from"].as_u64(), frame["seq"].as_u64()),
                (Some(say.from), Some(seq))
            );
            assert!(got.insert(mid, index).is_none(), "life {w}: {frame} twice");
            let member = intervals
                .get(&say.room)
                .is_some_and(|room| room.contains_key(&w));
            assert!(member, "life {w} never joined, yet got {frame}");
            assert!(frame["inc"].as_u64().is_some(), "{frame}");
            let previous = last_seq.insert((say.room.clone(), 0), seq);
            assert!(
                previous.map_or(true, |p| p < seq),
                "life {w}: seq went back: {frame}"
            );
            figures.deliveries += 1;
            figures.latencies.push(at.duration_since(say.sent));
            let same = life.client.node == say.node;
            figures.by_node.push((at.duration_since(say.sent), same));
        }
        received.push(got);
    }
    // Rules 2 and 3 (a life that never joined the room got nothing of
    // it, checked above).
    let nobody = HashMap::new();
    for (mid, say) in &says {
        let Some((said_at, said_index, _)) = say.said else {
            continue; // reached no one: checked above
        };
        for (&w, open) in intervals.get(&say.room).unwrap_or(&nobody) {
            let life = &lives[w];
            let got = received[w].get(mid).copied();
            let _ = said_index;
            let late = said_at + WINDOW;
            let member = open
                .iter()
                .any(|i| i.joined < say.sent && i.end_sent.map_or(true, |e| e > late));
            let reading = life
                .client
                .sent
                .iter()
                .find(|s| s.sent > late)
                .and_then(|s| s.answer);
            if let (true, Some(horizon)) = (member, reading) {
                figures.must += 1;
                let got =
                    got.unwrap_or_else(|| panic!("life {w} missed say {mid} in {}", say.room));
                assert!(got < horizon, "life {w}: say {mid} after a later answer");
            }
            let outside = open
                .iter()
                .all(|i| i.join_sent > late || i.end_acked.is_some_and(|e| e < say.sent));
            if outside {
                figures.must_not += 1;
                assert_eq!(
                    got, None,
                    "life {w} got say {mid} in {} outside its membership",
                    say.room
                );
            }
        }
    }
    figures
}

//! One websocket: its reader (this task: requests, served one at a time,
//! in order) and its writer (a task draining its outbox onto the socket).

use super::hub::{Conn, Hub};
use super::outbox::{Close, Drain, Outbox};
use super::protocol::{self, answer, error, Op, Request};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The largest frame a client may send.
const MAX_FRAME: usize = 64 << 10;
/// How long a closing connection may take to flush and say goodbye.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Frames written before one flush.
const BATCH: usize = 64;

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// Serves one accepted TCP connection until it closes, the server shuts
/// down (`shutdown` turns true), or its id is taken over.
pub(crate) async fn serve(hub: Arc<Hub>, tcp: TcpStream, mut shutdown: watch::Receiver<bool>) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let handshake = tokio_tungstenite::accept_async_with_config(tcp, Some(config));
    let ws = tokio::select! {
        ws = handshake => ws,
        () = stopping(&mut shutdown) => return,
    };
    let Ok(ws) = ws else { return };
    let (sink, mut stream) = ws.split();
    let (outbox, drain) = Outbox::new(hub.config().outbox);
    let mut closed = outbox.closed();
    let mut writer = tokio::spawn(write(sink, drain));

    let mut me = hub.connect(outbox.clone());
    outbox.push(Message::text(protocol::hello(me.id, hub.node_name())));
    let why = loop {
        tokio::select! {
            biased;
            why = closing(&mut closed) => break why,
            () = stopping(&mut shutdown) => break Some(hub.shutdown_close()),
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame = handle(&hub, &mut me, &outbox, &text).await;
                    outbox.push(Message::text(frame));
                }
                Some(Ok(Message::Binary(_))) => {
                    let frame = error(&None, None, protocol::Refusal::BadRequest);
                    outbox.push(Message::text(frame));
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break Some(Close::Ended),
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
            },
        }
    };
    outbox.close(why.unwrap_or(Close::Ended));
    // The first reason given wins: maybe a fan-out's, meanwhile.
    let why = outbox.closed().borrow().unwrap_or(Close::Ended);
    // Only this incarnation: if our id was taken over, this does nothing.
    hub.disconnect(me);
    if why == Close::SlowConsumer {
        hub.count_slow_consumer();
    }
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    // Dropping both halves closes the socket.
    drop(stream);
}

/// Completes once the server is shutting down (or gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// Completes with the close reason once one is given.
async fn closing(closed: &mut watch::Receiver<Option<Close>>) -> Option<Close> {
    closed
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|why| *why)
}

/// Serves one request; returns its answer.
async fn handle(hub: &Arc<Hub>, me: &mut Conn, outbox: &Outbox, text: &str) -> String {
    let Request { id, op } = match protocol::parse(text) {
        Ok(request) => request,
        Err(bad) => return error(&bad.id, bad.room.as_deref(), bad.why),
    };
    match op {
        Op::Join { room } => match hub.join(*me, &room) {
            Ok(()) => {
                hub.ready(&room).await;
                answer(&id, json!({"op": "joined", "room": room}))
            }
            Err(why) => error(&id, Some(&room), why),
        },
        Op::Leave { room } => match hub.leave(*me, &room) {
            Ok(was) => answer(&id, json!({"op": "left", "room": room, "was_member": was})),
            Err(why) => error(&id, Some(&room), why),
        },
        Op::Say { room, text } => {
            let mid = id.clone().unwrap_or(Value::Null);
            match hub.say(*me, &room, mid, text).await {
                Ok(seq) => answer(&id, json!({"op": "said", "room": room, "seq": seq})),
                Err(why) => error(&id, Some(&room), why),
            }
        }
        Op::Ask { room } => match hub.ask(&room).await {
            Ok((count, None)) => answer(&id, json!({"op": "count", "room": room, "count": count})),
            Ok((count, Some(owner))) => answer(
                &id,
                json!({"op": "count", "room": room, "count": count, "owner": owner}),
            ),
            Err(why) => error(&id, Some(&room), why),
        },
        Op::Stats => {
            let s = hub.stats();
            let mut body = json!({
                    "op": "stats",
                    "connections": s.engine.connections,
                    "rooms_loaded": s.rooms_loaded(),
                    "listeners_running": s.listeners_running(),
                    "subscriptions": s.engine.subscriptions,
                    "rooms_known": s.rooms_known,
                    "sessions": s.sessions,
                    "slow_consumers_closed": s.slow_consumers_closed,
                    "version": s.engine.version,
            });
            if let Some((node, cluster)) = hub.cluster_stats() {
                body["node"] = node.into();
                body["cluster"] = cluster;
            }
            answer(&id, body)
        }
        Op::Resume { session } => match hub.take_session(&session, *me, outbox).await {
            Ok(conn) => {
                *me = conn;
                answer(&id, json!({"op": "resumed", "conn": conn.id}))
            }
            Err(why) => error(&id, None, why),
        },
        Op::Ping => answer(&id, json!({"op": "pong"})),
    }
}

/// The writer: outbox → socket, a batch per flush, until the connection
/// closes; then (unless for a slow consumer) what is already queued, and a
/// close frame.
async fn write(mut sink: Sink, drain: Drain) {
    let Drain {
        mut frames,
        mut closed,
    } = drain;
    let mut slow = closed.clone();
    let slow = async move {
        let _ = slow.wait_for(|why| *why == Some(Close::SlowConsumer)).await;
    };
    tokio::pin!(slow);
    loop {
        let first = tokio::select! {
            biased;
            _ = closing(&mut closed) => break,
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        let batch = async {
            sink.feed(first).await?;
            for _ in 1..BATCH {
                match frames.try_recv() {
                    Ok(frame) => sink.feed(frame).await?,
                    Err(_) => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            // A client that stopped reading: give up at once.
            () = &mut slow => return,
            written = batch => if written.is_err() { return },
        }
    }
    let why = closed.borrow().unwrap_or(Close::Ended);
    let (code, reason) = match why {
        Close::SlowConsumer => return,
        Close::Replaced => (CloseCode::Library(4000), "session resumed elsewhere"),
        Close::ShuttingDown => (CloseCode::Away, "server shutting down"),
        Close::Restart => (CloseCode::Restart, "node shutting down: reconnect"),
        Close::Ended => (CloseCode::Normal, ""),
    };
    // Bounded: fan-outs may still be pushing.
    let capacity = frames.max_capacity();
    for _ in 0..capacity {
        match frames.try_recv() {
            Ok(frame) => {
                if sink.feed(frame).await.is_err() {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    let close = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

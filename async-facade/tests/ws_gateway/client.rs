//! A recording websocket client for the gateway tests: every frame it
//! receives is kept with the instant it was read, every request with the
//! instants it was sent and answered.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bounds every wait of a client: a lost frame fails, not hangs.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// Request ids, unique across the test binary (a say's id is its `mid`).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One request as the client saw it.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub(crate) id: u64,
    pub(crate) body: Value,
    /// Taken just before the frame was written.
    pub(crate) sent: Instant,
    /// The answer's index in `frames`, if one came.
    pub(crate) answer: Option<usize>,
}

/// How a websocket ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Still open (or dropped without a word from either side yet).
    Open,
    /// The client sent a close frame (after its last answer).
    Closed(Instant),
    /// The client dropped the TCP stream, no close frame.
    Dropped(Instant),
    /// The server closed it, with this close code.
    ByServer(u16),
}

pub(crate) struct Client {
    ws: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    /// The id `hello` gave, then the one each `resume` gave.
    pub(crate) conn: u64,
    /// The node `hello` named (cluster mode).
    pub(crate) node: String,
    /// Every frame received, with the instant it was read.
    pub(crate) frames: Vec<(Instant, Value)>,
    pub(crate) sent: Vec<Sent>,
    pub(crate) end: End,
}

impl Client {
    /// Connects and reads `hello`.
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).await.expect("connect")
    }

    /// Connects and reads `hello`; `None` if the server is gone (a node
    /// killed while we connect).
    pub(crate) async fn try_connect(addr: SocketAddr) -> Option<Client> {
        let url = format!("ws://{addr}");
        // No Nagle: small request frames go out at once, as the server's do.
        let connect = tokio_tungstenite::connect_async_with_config(url, None, true);
        let (ws, _) = tokio::time::timeout(LIMIT, connect)
            .await
            .expect("connect in time")
            .ok()?;
        let mut client = Client {
            ws: Some(ws),
            conn: 0,
            node: String::new(),
            frames: Vec::new(),
            sent: Vec::new(),
            end: End::Open,
        };
        let hello = client.next().await?;
        assert_eq!(hello["op"], "hello", "{hello}");
        client.conn = hello["conn"].as_u64().expect("hello names the connection");
        client.node = hello["node"].as_str().unwrap_or_default().to_owned();
        Some(client)
    }

    /// Reads one frame (recorded); `None` once the server closed.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        let ws = self.ws.as_mut()?;
        loop {
            let frame = tokio::time::timeout(LIMIT, ws.next())
                .await
                .expect("a frame in time");
            let at = Instant::now();
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.frames.push((at, v.clone()));
                    return Some(v);
                }
                Some(Ok(Message::Close(close))) => {
                    let code = close.map_or(1005, |c| u16::from(c.code));
                    self.end = End::ByServer(code);
                    self.ws = None;
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    self.end = End::ByServer(u16::from(CloseCode::Abnormal));
                    self.ws = None;
                    return None;
                }
            }
        }
    }

    /// Sends `body` with a fresh `"id"`; returns that id.
    pub(crate) async fn send(&mut self, mut body: Value) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        body["id"] = id.into();
        let sent = Instant::now();
        self.sent.push(Sent {
            id,
            body: body.clone(),
            sent,
            answer: None,
        });
        if let Some(ws) = self.ws.as_mut() {
            // A server that closed on us shows up at the next read.
            let _ = ws.send(Message::text(body.to_string())).await;
        }
        id
    }

    /// Sends a text frame as it is (no id, not recorded as a request).
    pub(crate) async fn send_raw(&mut self, text: &str) {
        if let Some(ws) = self.ws.as_mut() {
            ws.send(Message::text(text)).await.expect("send");
        }
    }

    /// Sends `body` and reads until its answer (`"re"` = its id); every
    /// frame on the way is recorded. `None` if the server closed first.
    pub(crate) async fn request(&mut self, body: Value) -> Option<Value> {
        let id = self.send(body).await;
        let index = self.sent.len() - 1;
        loop {
            let frame = self.next().await?;
            if frame["re"] == id {
                self.sent[index].answer = Some(self.frames.len() - 1);
                return Some(frame);
            }
        }
    }

    /// Reads until the server closes; returns its close code.
    pub(crate) async fn until_closed(&mut self) -> u16 {
        while self.next().await.is_some() {}
        match self.end {
            End::ByServer(code) => code,
            other => panic!("not closed by the server: {other:?}"),
        }
    }

    /// A close frame, then the end of the stream.
    pub(crate) async fn close(&mut self) {
        let at = Instant::now();
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(LIMIT, ws.close(None)).await;
        }
        self.end = End::Closed(at);
    }

    /// Drops the TCP stream without a close frame.
    pub(crate) fn drop_abruptly(&mut self) {
        let at = Instant::now();
        drop(self.ws.take());
        self.end = End::Dropped(at);
    }

    /// The connection's `stats` counts.
    pub(crate) async fn stats(&mut self) -> Value {
        let stats = self.request(json!({"op": "stats"})).await.expect("stats");
        assert_eq!(stats["op"], "stats", "{stats}");
        stats
    }
}

/// A small deterministic generator (splitmix64), for the tests' scripted
/// clients: each gets its own.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

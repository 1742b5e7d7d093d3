//! The subscription connection: a plain TCP connection in RESP2 pub/sub
//! mode, read frame by frame by the node's worker.
//!
//! Why not the `redis` crate's `PubSub`: it reads the socket into an
//! unbounded channel, so a node that falls behind grows its memory without
//! limit and Redis never notices. Here the worker reads the socket itself,
//! only when it is ready for the next frame: when the host stops draining
//! deliveries, the worker stops reading, the kernel's socket buffers fill, Redis's
//! output buffer for this client grows, and Redis's own
//! `client-output-buffer-limit pubsub` disconnects the node, which then
//! recovers from the per-thread streams. Memory stays bounded end to end.
//!
//! Commands are packed by the `redis` crate; replies are parsed by the small
//! RESP2 reader below (pub/sub mode only ever sends arrays of bulk strings
//! and integers, plus simple strings and errors before it is entered).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 16 * 1024;
/// The largest value the reader accepts (a bulk string or array length).
const MAX_LEN: i64 = 512 * 1024 * 1024;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Value>),
}

/// What the subscription connection reports, in the order Redis sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A `message` on a subscribed channel.
    Message { channel: Vec<u8>, payload: Vec<u8> },
    /// Redis confirmed `SUBSCRIBE channel`.
    Subscribed { channel: Vec<u8> },
    /// Redis confirmed `UNSUBSCRIBE channel`.
    Unsubscribed { channel: Vec<u8> },
    /// Anything else (a reply to AUTH, a pong): ignored by the worker.
    Other,
}

/// Parses one value from the front of `buf`: `Ok(None)` if `buf` holds
/// only part of it, `Ok(Some((value, bytes used)))` otherwise.
pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<(Value, usize)>> {
    parse_at(buf, 0, 0)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad RESP from redis: {what}"),
    )
}

/// The line starting at `at` (without its CRLF) and the index after the CRLF.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("integer"))
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> io::Result<Option<(Value, usize)>> {
    if depth > 8 {
        return Err(bad("nesting"));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Value::Simple(body.to_vec()), next))),
        b'-' => Ok(Some((Value::Error(body.to_vec()), next))),
        b':' => Ok(Some((Value::Int(int(body)?), next))),
        b'$' => {
            let len = int(body)?;
            if len < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            if len > MAX_LEN {
                return Err(bad("bulk length"));
            }
            let end = next + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(bad("bulk terminator"));
            }
            Ok(Some((Value::Bulk(buf[next..end].to_vec()), end + 2)))
        }
        b'*' => {
            let len = int(body)?;
            if len < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            if len > MAX_LEN {
                return Err(bad("array length"));
            }
            let mut items = Vec::with_capacity((len as usize).min(16));
            let mut at = next;
            for _ in 0..len {
                match parse_at(buf, at, depth + 1)? {
                    Some((v, n)) => {
                        items.push(v);
                        at = n;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(items), at)))
        }
        _ => Err(bad("type byte")),
    }
}

/// Turns a value read in pub/sub mode into a frame; an error reply is an
/// error (the worker reconnects).
pub(crate) fn frame(value: Value) -> io::Result<Frame> {
    match value {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let kind = match it.next() {
                Some(Value::Bulk(k)) => k,
                _ => return Ok(Frame::Other),
            };
            let channel = match it.next() {
                Some(Value::Bulk(c)) => c,
                _ => return Ok(Frame::Other),
            };
            Ok(match kind.as_slice() {
                b"message" => match it.next() {
                    Some(Value::Bulk(payload)) => Frame::Message { channel, payload },
                    _ => return Err(bad("message without payload")),
                },
                b"subscribe" => Frame::Subscribed { channel },
                b"unsubscribe" => Frame::Unsubscribed { channel },
                _ => Frame::Other,
            })
        }
        Value::Error(e) => Err(io::Error::other(format!(
            "redis error on the subscription connection: {}",
            String::from_utf8_lossy(&e)
        ))),
        _ => Ok(Frame::Other),
    }
}

/// The read side of a subscription connection: a buffer of bytes read
/// and not yet parsed.
#[derive(Debug)]
pub(crate) struct FrameReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    /// Bytes before `start` are parsed and handed out.
    start: usize,
}

impl FrameReader {
    /// The next frame, reading from the socket only when the buffer holds
    /// no complete one. Nothing is read while nobody awaits this: that is
    /// the backpressure that reaches Redis.
    ///
    /// Cancel-safe: bytes are consumed only when a whole frame is returned,
    /// and `read_buf` is cancel-safe.
    pub(crate) async fn next(&mut self) -> io::Result<Frame> {
        loop {
            if let Some((value, used)) = parse(&self.buf[self.start..])? {
                self.start += used;
                return frame(value);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(READ_CHUNK);
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "redis closed the subscription connection",
                ));
            }
        }
    }
}

/// The write side of a subscription connection.
#[derive(Debug)]
pub(crate) struct FrameWriter {
    write: OwnedWriteHalf,
}

impl FrameWriter {
    /// Writes one packed command.
    pub(crate) async fn send(&mut self, packed: &[u8]) -> io::Result<()> {
        self.write.write_all(packed).await
    }
}

/// Where the subscription connection goes: a TCP address, and the AUTH
/// to send first if the URL has a password.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    addr: String,
    auth: Option<(Option<String>, String)>,
}

impl Endpoint {
    /// The endpoint of a parsed `redis://` URL.
    ///
    /// # Errors
    ///
    /// A message if the URL is not plain TCP.
    pub(crate) fn new(info: &redis::ConnectionInfo) -> Result<Endpoint, String> {
        let addr = match &info.addr {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            _ => return Err("only redis:// (plain TCP) is supported".into()),
        };
        let auth = info
            .redis
            .password
            .clone()
            .map(|p| (info.redis.username.clone(), p));
        Ok(Endpoint { addr, auth })
    }

    /// Opens a subscription connection (see [`SubConn::connect`]).
    pub(crate) async fn connect(&self, timeout: Duration) -> io::Result<SubConn> {
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_deref(), p.as_str()));
        SubConn::connect(&self.addr, auth, timeout).await
    }
}

/// A live subscription connection; dropping it closes the socket.
#[derive(Debug)]
pub(crate) struct SubConn {
    pub(crate) reader: FrameReader,
    pub(crate) writer: FrameWriter,
}

impl SubConn {
    /// Connects to `addr` within `timeout`, authenticating first if a
    /// password is given.
    pub(crate) async fn connect(
        addr: &str,
        auth: Option<(Option<&str>, &str)>,
        timeout: Duration,
    ) -> io::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut conn = SubConn {
            reader: FrameReader {
                read,
                buf: Vec::with_capacity(READ_CHUNK),
                start: 0,
            },
            writer: FrameWriter { write },
        };
        if let Some((user, password)) = auth {
            let mut cmd = redis::cmd("AUTH");
            if let Some(user) = user {
                cmd.arg(user);
            }
            cmd.arg(password);
            conn.writer.send(&cmd.get_packed_command()).await?;
            tokio::time::timeout(timeout, conn.reader.next())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "AUTH timed out"))??;
        }
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        let (v, used) = parse(msg).unwrap().unwrap();
        assert_eq!(used, msg.len());
        assert_eq!(
            frame(v).unwrap(),
            Frame::Message {
                channel: b"ch".to_vec(),
                payload: b"hello".to_vec()
            }
        );
    }

    #[test]
    fn partial_values_wait_for_more() {
        let msg = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
        for cut in 0..msg.len() {
            assert_eq!(parse(&msg[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (v, _) = parse(msg).unwrap().unwrap();
        assert_eq!(
            frame(v).unwrap(),
            Frame::Subscribed {
                channel: b"ch".to_vec()
            }
        );
    }

    #[test]
    fn binary_payloads_and_errors() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\n\r\n\0\xff\r\n";
        let (v, _) = parse(msg).unwrap().unwrap();
        assert_eq!(
            frame(v).unwrap(),
            Frame::Message {
                channel: b"c".to_vec(),
                payload: b"\r\n\0\xff".to_vec()
            }
        );
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$3\r\nabcXY").is_err());
        let (v, _) = parse(b"-ERR nope\r\n").unwrap().unwrap();
        assert!(frame(v).is_err());
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Value::Nil, 5)));
    }
}

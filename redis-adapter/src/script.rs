//! What lives in Redis, the Lua script that writes it, and the read that
//! catches a node up.
//!
//! Per thread `t`, under the configured prefix `p`:
//!
//! | key / channel | type | holds |
//! |---|---|---|
//! | `p.m.{t}` | hash | `s`: the last sequence number given out, `e`: the epoch |
//! | `p.s.{t}` | stream | one entry per message, id `{seq}-0`, field `d` = payload; capped at the retention |
//! | `p.t.{t}` | channel | `{seq}:{epoch}:{payload}` for every message |
//! | `p.n.{node}` | channel | the liveness probe of one node |
//! | `p.o.{t}` | hash, expiring (the lease length) | the lease: `n` = owner node, `k` = its fencing token |
//! | `p.f.{t}` | string, never expires | the fence: the greatest token ever given out for `t` |
//! | `p.i.{t}` | stream | routed commands not yet taken by `t`'s owner: fields `i` (id), `r` (reply channel), `k` (`s` send / `r` request), `d` (payload) |
//! | `p.r.{node}` | channel | notices to one node: `a:{id}` accepted, `r:{id}:{bytes}` an answer, `l:{id}` the lease that took it ended unanswered, `w:{t}` commands wait for `t` |
//!
//! Invariants (kept by [`PUBLISH`], the only writer):
//! * the hash and the stream are written in one script, so a stream entry
//!   `{seq}-0` exists for every `seq` the hash gave out, until it is trimmed;
//! * within one epoch, sequence numbers are `1, 2, 3, …` with no gap, and
//!   PUBLISH runs in that order (Redis runs one script at a time);
//! * the epoch is set once (HSETNX), when the hash is created, from a
//!   candidate unique to the publish that creates it (a random per-node part
//!   and a counter: the same node must not bring back an old epoch); a new
//!   epoch means the thread's history was lost (Redis
//!   restarted empty, or the keys expired), and the stream is then started
//!   afresh so that its ids restart at `1-0`.
//!
//! Ownership invariants (kept by [`CLAIM`], [`RENEW`], [`RELEASE`] and the
//! fenced publish, one script each, each checking the token):
//! * a lease exists only with the token its claim gave out, and only until
//!   it expires or is released: no script ever extends a lease whose token
//!   differs, or creates one while another lives;
//! * tokens only grow per thread: a claim gives `max(fence + 1, now)`,
//!   with `now` Redis's own clock in microseconds (`TIME`), and stores it as
//!   the new fence. If Redis restarts empty the fence is gone, but the
//!   clock has moved on: the next token is still greater than every earlier
//!   one, unless Redis's clock went backwards across the restart, or a
//!   thread was claimed more than once per microsecond on average before
//!   it (both stated in the crate's limits);
//! * an owner-only write (renew, release, fenced publish) runs only if the
//!   lease holds exactly its token: an expired lease, a released one, or
//!   one taken over by a greater token refuses it.

use std::fmt::Display;

use redis::Script;

/// Runs in one step: allocate the next sequence number, append to the
/// capped stream, publish. Returns `{seq, epoch}`.
///
/// KEYS: meta hash, stream. ARGV: channel, payload, epoch candidate,
/// retention (MAXLEN), ttl in seconds (0: none).
pub(crate) const PUBLISH: &str = r#"
if redis.call('hsetnx', KEYS[1], 'e', ARGV[3]) == 1 then
  redis.call('del', KEYS[2])
end
local seq = redis.call('hincrby', KEYS[1], 's', 1)
local epoch = redis.call('hget', KEYS[1], 'e')
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[4], string.format('%d-0', seq), 'd', ARGV[2])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('expire', KEYS[1], ttl)
  redis.call('expire', KEYS[2], ttl)
end
redis.call('publish', ARGV[1], string.format('%d:', seq) .. epoch .. ':' .. ARGV[2])
return {seq, epoch}
"#;

/// Becomes `t`'s owner if no lease lives. Returns `{1, node, token}` (this
/// claim won) or `{0, node, token}` (the live lease's owner).
///
/// KEYS: lease hash, fence. ARGV: node id, lease length in ms.
pub(crate) const CLAIM: &str = r#"
local held = redis.call('hmget', KEYS[1], 'n', 'k')
if held[1] then
  return {0, held[1], tonumber(held[2])}
end
local now = redis.call('time')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local token = tonumber(redis.call('get', KEYS[2]) or '0') + 1
if token < floor then
  token = floor
end
local k = string.format('%d', token)
redis.call('set', KEYS[2], k)
redis.call('hset', KEYS[1], 'n', ARGV[1], 'k', k)
redis.call('pexpire', KEYS[1], ARGV[2])
return {1, ARGV[1], token}
"#;

/// Extends the lease if it still holds this token. Returns 1, or 0 if the
/// lease expired, was released or was taken over.
///
/// KEYS: lease hash. ARGV: token, lease length in ms.
pub(crate) const RENEW: &str = r#"
if redis.call('hget', KEYS[1], 'k') == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Ends the lease if it still holds this token. Returns 1, or 0 as
/// [`RENEW`].
///
/// KEYS: lease hash. ARGV: token.
pub(crate) const RELEASE: &str = r#"
if redis.call('hget', KEYS[1], 'k') == ARGV[1] then
  redis.call('del', KEYS[1])
  return 1
end
return 0
"#;

/// Prefixed to [`PUBLISH`] for a fenced publish: refuses with a `FENCED`
/// error unless the lease holds this token.
///
/// KEYS: as PUBLISH, then the lease hash. ARGV: as PUBLISH, then the token.
const FENCE: &str = r#"
if redis.call('hget', KEYS[3], 'k') ~= ARGV[6] then
  return redis.error_reply('FENCED the lease of this token has ended')
end
"#;

/// Queues a routed command for `t`'s owner, if `t` has a live lease, and
/// wakes the owner's node. Returns `{1, entry id}`, or `{0, ''}` if `t`
/// has no owner.
///
/// KEYS: lease hash, inbox. ARGV: command id, reply channel, kind,
/// payload, the notice-channel prefix (`p.r.`), the thread's name.
pub(crate) const SEND: &str = r#"
local owner = redis.call('hget', KEYS[1], 'n')
if not owner then
  return {0, ''}
end
local sid = redis.call('xadd', KEYS[2], '*', 'i', ARGV[1], 'r', ARGV[2], 'k', ARGV[3], 'd', ARGV[4])
redis.call('publish', ARGV[5] .. owner, 'w:' .. ARGV[6])
return {1, sid}
"#;

/// Takes up to `count` waiting commands for the lease holding `token`:
/// each leaves the inbox and its sender is told it was accepted, in one
/// step, so a command is taken by one lease at most once. Refuses with a
/// `FENCED` error otherwise.
///
/// KEYS: lease hash, inbox. ARGV: token, count.
pub(crate) const TAKE: &str = r#"
if redis.call('hget', KEYS[1], 'k') ~= ARGV[1] then
  return redis.error_reply('FENCED the lease of this token has ended')
end
local got = redis.call('xrange', KEYS[2], '-', '+', 'COUNT', ARGV[2])
for _, e in ipairs(got) do
  redis.call('xdel', KEYS[2], e[1])
  local f = e[2]
  redis.call('publish', f[4], 'a:' .. f[2])
end
return got
"#;

/// Answers a request, if the lease still holds `token`; otherwise tells
/// the requester that the lease ended, and refuses with `FENCED`.
///
/// KEYS: lease hash. ARGV: token, reply channel, command id, answer.
pub(crate) const REPLY: &str = r#"
if redis.call('hget', KEYS[1], 'k') ~= ARGV[1] then
  redis.call('publish', ARGV[2], 'l:' .. ARGV[3])
  return redis.error_reply('FENCED the lease of this token has ended')
end
redis.call('publish', ARGV[2], 'r:' .. ARGV[3] .. ':' .. ARGV[4])
return 1
"#;

/// The error code of a publish refused by [`FENCE`].
pub(crate) const FENCED: &str = "FENCED";

/// The scripts, loaded once per node.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) publish: Script,
    pub(crate) fenced_publish: Script,
    pub(crate) claim: Script,
    pub(crate) renew: Script,
    pub(crate) release: Script,
    pub(crate) send: Script,
    pub(crate) take: Script,
    pub(crate) reply: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            publish: Script::new(PUBLISH),
            fenced_publish: Script::new(&format!("{FENCE}{PUBLISH}")),
            claim: Script::new(CLAIM),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            send: Script::new(SEND),
            take: Script::new(TAKE),
            reply: Script::new(REPLY),
        }
    }
}

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }
    pub(crate) fn meta(&self, t: &impl Display) -> String {
        format!("{}.m.{t}", self.prefix)
    }
    pub(crate) fn stream(&self, t: &impl Display) -> String {
        format!("{}.s.{t}", self.prefix)
    }
    pub(crate) fn channel(&self, t: &impl Display) -> String {
        format!("{}.t.{t}", self.prefix)
    }
    pub(crate) fn lease(&self, t: &impl Display) -> String {
        format!("{}.o.{t}", self.prefix)
    }
    pub(crate) fn fence(&self, t: &impl Display) -> String {
        format!("{}.f.{t}", self.prefix)
    }
    pub(crate) fn inbox(&self, t: &impl Display) -> String {
        format!("{}.i.{t}", self.prefix)
    }
    /// The prefix of every node's notice channel (`p.r.`).
    pub(crate) fn notices_prefix(&self) -> String {
        format!("{}.r.", self.prefix)
    }
    pub(crate) fn notices(&self, node: &str) -> String {
        format!("{}.r.{node}", self.prefix)
    }
    pub(crate) fn probe(&self, node: &str) -> String {
        format!("{}.n.{node}", self.prefix)
    }
    /// The thread name in a thread channel, or `None` for another channel.
    pub(crate) fn thread_of<'a>(&self, channel: &'a [u8]) -> Option<&'a str> {
        let rest = channel.strip_prefix(self.prefix.as_bytes())?;
        std::str::from_utf8(rest.strip_prefix(b".t.")?).ok()
    }
}

/// A message as published: `{seq}:{epoch}:{payload}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Wire<'a> {
    pub(crate) seq: u64,
    pub(crate) epoch: &'a [u8],
    pub(crate) payload: &'a [u8],
}

/// Splits a published message; `None` if it is not one of ours.
pub(crate) fn decode(bytes: &[u8]) -> Option<Wire<'_>> {
    let colon = bytes.iter().position(|&b| b == b':')?;
    let seq = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
    let rest = &bytes[colon + 1..];
    let colon = rest.iter().position(|&b| b == b':')?;
    Some(Wire {
        seq,
        epoch: &rest[..colon],
        payload: &rest[colon + 1..],
    })
}

/// The catch-up read: a thread's head (`s`), epoch (`e`) and up to `count`
/// stream entries from sequence `from` on, in one MULTI/EXEC (HMGET, then
/// a plain XRANGE with COUNT): atomic, so the entries belong to the epoch
/// read with them, and no entry passes through Lua (a Lua XRANGE costs
/// Redis about ten times the CPU of a plain one for large payloads, and
/// blocks every other client meanwhile). `count == 0` reads the head and
/// epoch only.
pub(crate) fn read_cmd(meta: &str, stream: &str, from: u64, count: usize) -> redis::Pipeline {
    let mut p = redis::pipe();
    p.atomic().cmd("HMGET").arg(meta).arg("s").arg("e");
    if count > 0 {
        p.cmd("XRANGE")
            .arg(stream)
            .arg(format!("{from}-0"))
            .arg("+")
            .arg("COUNT")
            .arg(count);
    }
    p
}

/// One stream entry read back by [`read_cmd`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) payload: Vec<u8>,
}

/// What [`read_cmd`] returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Fetched {
    /// The last sequence number given out in `epoch` (0: no hash).
    pub(crate) head: u64,
    /// Empty if the thread has no hash (nothing published since Redis
    /// started, or its keys expired).
    pub(crate) epoch: Vec<u8>,
    /// Ascending, consecutive unless trimmed before the first one.
    pub(crate) entries: Vec<Entry>,
}

/// A stream entry as Redis returns it: the id and the field/value pairs.
type RawEntry = (String, Vec<(String, Vec<u8>)>);

impl redis::FromRedisValue for Fetched {
    fn from_redis_value(v: &redis::Value) -> redis::RedisResult<Self> {
        let items: Vec<redis::Value> = redis::FromRedisValue::from_redis_value(v)?;
        let mut items = items.into_iter();
        let meta = items.next().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::TypeError, "empty EXEC reply"))
        })?;
        let (head, epoch): (Option<u64>, Option<Vec<u8>>) =
            redis::FromRedisValue::from_redis_value(&meta)?;
        let (Some(head), Some(epoch)) = (head, epoch) else {
            // No hash: whatever the stream still holds belongs to no epoch.
            return Ok(Fetched {
                head: 0,
                epoch: Vec::new(),
                entries: Vec::new(),
            });
        };
        let raw: Vec<RawEntry> = match items.next() {
            Some(v) => redis::FromRedisValue::from_redis_value(&v)?,
            None => Vec::new(),
        };
        let mut entries = Vec::with_capacity(raw.len());
        for (id, fields) in raw {
            let seq = id
                .split_once('-')
                .and_then(|(s, _)| s.parse().ok())
                .ok_or_else(|| {
                    redis::RedisError::from((
                        redis::ErrorKind::TypeError,
                        "stream id is not {seq}-0",
                    ))
                })?;
            let payload = fields
                .into_iter()
                .find(|(k, _)| k == "d")
                .map(|(_, v)| v)
                .unwrap_or_default();
            entries.push(Entry { seq, payload });
        }
        Ok(Fetched {
            head,
            epoch,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let w = decode(b"12:ab01:hello:world").unwrap();
        assert_eq!(
            w,
            Wire {
                seq: 12,
                epoch: b"ab01",
                payload: b"hello:world"
            }
        );
        assert_eq!(decode(b"x:ab:p"), None);
        assert_eq!(decode(b"12"), None);
        assert_eq!(decode(b"12:ab").map(|w| w.seq), None);
    }

    #[test]
    fn catch_up_read_parses_exec_replies() {
        use redis::{FromRedisValue, Value};
        let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
        let entry = |id: &[u8], d: &[u8]| {
            Value::Array(vec![bulk(id), Value::Array(vec![bulk(b"d"), bulk(d)])])
        };
        let exec = Value::Array(vec![
            Value::Array(vec![bulk(b"7"), bulk(b"ep")]),
            Value::Array(vec![entry(b"6-0", b"six"), entry(b"7-0", b"seven")]),
        ]);
        let f = Fetched::from_redis_value(&exec).unwrap();
        assert_eq!((f.head, f.epoch.as_slice()), (7, &b"ep"[..]));
        let seqs: Vec<u64> = f.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [6, 7]);
        assert_eq!(f.entries[1].payload, b"seven");
        // No hash: no epoch, and a stale stream's entries are ignored.
        let exec = Value::Array(vec![
            Value::Array(vec![Value::Nil, Value::Nil]),
            Value::Array(vec![entry(b"1-0", b"stale")]),
        ]);
        let f = Fetched::from_redis_value(&exec).unwrap();
        assert_eq!((f.head, f.epoch.len(), f.entries.len()), (0, 0, 0));
        // Head only (count 0).
        let exec = Value::Array(vec![Value::Array(vec![bulk(b"3"), bulk(b"e")])]);
        assert_eq!(Fetched::from_redis_value(&exec).unwrap().head, 3);
        let bad = Value::Array(vec![
            Value::Array(vec![bulk(b"3"), bulk(b"e")]),
            Value::Array(vec![entry(b"x", b"?")]),
        ]);
        assert!(Fetched::from_redis_value(&bad).is_err());
    }

    #[test]
    fn names_round_trip() {
        let n = Names::new("sb");
        assert_eq!(n.channel(&42u64), "sb.t.42");
        assert_eq!(n.thread_of(b"sb.t.42"), Some("42"));
        assert_eq!(n.thread_of(b"sb.n.42"), None);
        assert_eq!(n.thread_of(b"other.t.42"), None);
    }
}

//! A node's settings.

use std::time::Duration;

/// How a [`Node`](crate::Node) talks to Redis.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use switchboard_redis::Config;
///
/// let config = Config::new("redis://127.0.0.1:6379")
///     .prefix("chat")
///     .retention(50_000)
///     .unsubscribe_grace(Duration::from_millis(500));
/// assert_eq!(config.retention_len(), 50_000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) node_id: Option<String>,
    pub(crate) retention: u64,
    pub(crate) history_ttl: Option<Duration>,
    pub(crate) publish_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) subscribe_timeout: Duration,
    pub(crate) unsubscribe_grace: Duration,
    pub(crate) probe_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) delivery_buffer: usize,
    pub(crate) fetch_batch: usize,
    pub(crate) fetch_bytes: usize,
    pub(crate) catchup_timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) renew_interval: Duration,
    pub(crate) route_timeout: Duration,
}

impl Config {
    /// Defaults for the Redis at `url` (`redis://host:port[/db]`, with an
    /// optional `user:password@`): prefix `sb`, retention 10,000 messages
    /// per thread, no history TTL, publish timeout 1 s, connect timeout 1 s,
    /// subscribe timeout 2 s, unsubscribe grace 1 s, a liveness probe every
    /// 1 s with a 2 s timeout, reconnect backoff 50 ms doubling to 2 s,
    /// 1,024 deliveries buffered, catch-up reads of at most 512 entries and
    /// 4 MiB each with a 5 s deadline, leases of 5 s renewed every 1 s,
    /// routed commands accepted within 2 s.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            prefix: "sb".to_owned(),
            node_id: None,
            retention: 10_000,
            history_ttl: None,
            publish_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            subscribe_timeout: Duration::from_secs(2),
            unsubscribe_grace: Duration::from_secs(1),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            delivery_buffer: 1024,
            fetch_batch: 512,
            fetch_bytes: 4 * 1024 * 1024,
            catchup_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(5),
            renew_interval: Duration::from_secs(1),
            route_timeout: Duration::from_secs(2),
        }
    }

    /// The prefix of every key and channel (nodes that talk to each other
    /// share it).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This node's name (its probe channel); random by default.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// How many messages each thread's stream keeps (at least 1). A node
    /// that falls further behind than this gets a `Reset`.
    pub fn retention(mut self, messages: u64) -> Self {
        self.retention = messages;
        self
    }

    /// The configured retention.
    pub fn retention_len(&self) -> u64 {
        self.retention
    }

    /// Expire a thread's stream and counter after this long without a
    /// publish. A thread that expires starts a new epoch, and its
    /// followers get a `Reset`. Default: never.
    pub fn history_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.history_ttl = ttl;
        self
    }

    /// How long `publish` waits for Redis before it returns an error.
    pub fn publish_timeout(mut self, d: Duration) -> Self {
        self.publish_timeout = d;
        self
    }

    /// How long one connection attempt may take.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long Redis may take to confirm a SUBSCRIBE before the
    /// subscription connection is considered broken.
    pub fn subscribe_timeout(mut self, d: Duration) -> Self {
        self.subscribe_timeout = d;
        self
    }

    /// How long after a thread's last local subscriber leaves the node
    /// waits before it unsubscribes (re-checked before it acts).
    pub fn unsubscribe_grace(mut self, d: Duration) -> Self {
        self.unsubscribe_grace = d;
        self
    }

    /// The liveness probe: a message to the node's own channel every
    /// `interval`; the subscription connection is replaced if one is not
    /// received within `timeout`.
    pub fn probe(mut self, interval: Duration, timeout: Duration) -> Self {
        self.probe_interval = interval;
        self.probe_timeout = timeout;
        self
    }

    /// Reconnect backoff: starts at `min`, doubles up to `max`; each wait
    /// is a random part (half to all) of the current step.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// How many deliveries the node buffers for the host (at least 1).
    /// A host that does not keep up stops the node reading from Redis, and
    /// Redis's pub/sub output buffer limit then disconnects the node, which
    /// recovers from the streams.
    pub fn delivery_buffer(mut self, n: usize) -> Self {
        self.delivery_buffer = n;
        self
    }

    /// How much one catch-up read (a node filling a gap or catching up
    /// after a reconnect from a thread's stream) may ask for: at most
    /// `entries` entries, and as many as fit in `bytes` at the size of the
    /// largest entry the thread's previous read returned (the first read of
    /// a thread asks for 8). A read that times out is retried with half as
    /// many entries. Defaults: 512 entries, 4 MiB.
    ///
    /// A long backlog is read in several such slices, and the node serves
    /// its other threads in between.
    pub fn catchup_read(mut self, entries: usize, bytes: usize) -> Self {
        self.fetch_batch = entries;
        self.fetch_bytes = bytes;
        self
    }

    /// How long one catch-up read may take (default 5 s). Catch-up reads
    /// use a connection of their own, so this is independent of the
    /// publish timeout. A read that times out is retried with fewer
    /// entries, and after repeated failures later, with backoff; it never
    /// replaces the subscription connection.
    pub fn catchup_timeout(mut self, d: Duration) -> Self {
        self.catchup_timeout = d;
        self
    }

    /// Thread ownership ([`Node::claim`](crate::Node::claim)): a lease
    /// lasts `length` after its claim or last renewal in Redis, and its
    /// node renews it every `renew` (which must be shorter). A node that
    /// cannot renew learns that its lease is lost at the latest `renew`
    /// after it expired; a thread whose owner died is claimable after at
    /// most `length`. Defaults: 5 s, 1 s.
    pub fn lease(mut self, length: Duration, renew: Duration) -> Self {
        self.lease = length;
        self.renew_interval = renew;
        self
    }

    /// How long [`Node::send`](crate::Node::send) waits for the thread's
    /// owner to take a command before it withdraws it and returns
    /// `Timeout` (default 2 s). A request has its own timeout.
    pub fn route_timeout(mut self, d: Duration) -> Self {
        self.route_timeout = d;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.retention == 0 {
            return Err("retention must be at least 1".into());
        }
        if self.delivery_buffer == 0 {
            return Err("delivery_buffer must be at least 1".into());
        }
        if self.fetch_batch == 0 || self.fetch_bytes == 0 {
            return Err("catchup_read needs at least 1 entry and 1 byte".into());
        }
        if self.renew_interval.is_zero() || self.renew_interval >= self.lease {
            return Err("lease needs 0 < renew < length".into());
        }
        if self.lease.as_millis() > u128::from(u32::MAX) {
            return Err("lease length too long".into());
        }
        if self.route_timeout.is_zero() {
            return Err("route_timeout must be positive".into());
        }
        if self.catchup_timeout.is_zero() {
            return Err("catchup_timeout must be positive".into());
        }
        if self.prefix.is_empty() || self.prefix.contains(['\r', '\n', ' ']) {
            return Err("prefix must be non-empty, without spaces or newlines".into());
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err("backoff needs 0 < min <= max".into());
        }
        if self.probe_interval.is_zero() || self.probe_timeout.is_zero() {
            return Err("probe interval and timeout must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_defaults_are_valid_and_bad_settings_are_refused() {
        let ok = Config::new("redis://127.0.0.1:6379");
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!((ok.fetch_batch, ok.fetch_bytes), (512, 4 * 1024 * 1024));
        assert_eq!(ok.catchup_timeout, Duration::from_secs(5));
        assert_eq!(
            (ok.lease, ok.renew_interval),
            (Duration::from_secs(5), Duration::from_secs(1))
        );
        let ms = Duration::from_millis;
        let bad = [
            ok.clone().lease(ms(500), ms(500)),
            ok.clone().lease(ms(500), Duration::ZERO),
            ok.clone().catchup_read(0, 1),
            ok.clone().catchup_read(1, 0),
            ok.clone().catchup_timeout(Duration::ZERO),
            ok.clone().route_timeout(Duration::ZERO),
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        assert_eq!(ok.lease(ms(600), ms(150)).validate(), Ok(()));
    }
}

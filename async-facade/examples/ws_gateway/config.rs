//! The server's settings: defaults, environment and flags.

use std::time::Duration;

/// The server's settings.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) addr: String,
    /// How long a room stays loaded with nobody in it.
    pub(crate) linger: Duration,
    /// Frames a connection's outbox holds (the slow-consumer limit).
    pub(crate) outbox: usize,
    /// Commands a room's listener queue holds before sayers wait.
    pub(crate) room_queue: usize,
    /// The longest text a say may carry, in bytes.
    pub(crate) max_text: usize,
    /// Room names the server keeps.
    pub(crate) max_rooms: usize,
    /// Sessions the server keeps.
    pub(crate) max_sessions: usize,
    /// How long shutdown waits for listeners, then for connections.
    pub(crate) grace: Duration,
    /// Cluster mode: the Redis URL (`--redis`).
    pub(crate) redis: Option<String>,
    /// Cluster mode: this node's name (`--node`).
    pub(crate) node: String,
    /// Cluster mode: the lease length of room owners and sessions
    /// (renewed every quarter of it).
    pub(crate) lease: Duration,
    /// Cluster mode: how long a routed say, ask or takeover waits for its
    /// owner's answer.
    pub(crate) route_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:9001".into(),
            linger: Duration::from_millis(1000),
            outbox: 1024,
            room_queue: 256,
            max_text: 16 << 10,
            max_rooms: 100_000,
            max_sessions: 1_000_000,
            grace: Duration::from_secs(5),
            redis: None,
            node: format!("node-{}", std::process::id()),
            lease: Duration::from_secs(2),
            route_timeout: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// The defaults, then `WS_GATEWAY_LINGER_MS`, then the flags.
    ///
    /// # Errors
    ///
    /// A message naming the bad flag or value.
    pub(crate) fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config::default();
        if let Ok(ms) = std::env::var("WS_GATEWAY_LINGER_MS") {
            config.linger = Duration::from_millis(number("WS_GATEWAY_LINGER_MS", &ms)?);
        }
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--addr" => config.addr = value,
                "--linger-ms" => config.linger = Duration::from_millis(number(&flag, &value)?),
                "--outbox" => config.outbox = number(&flag, &value)?.max(1) as usize,
                "--redis" => config.redis = Some(value),
                "--node" => config.node = value,
                "--lease-ms" => {
                    config.lease = Duration::from_millis(number(&flag, &value)?.max(40));
                }
                "--route-timeout-ms" => {
                    config.route_timeout = Duration::from_millis(number(&flag, &value)?.max(10));
                }
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(config)
    }
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: not a number: {value}"))
}

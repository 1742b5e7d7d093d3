//! Errors: small values with a lowercase `Display` and `std::error::Error`.

use std::fmt;

/// Why a [`Node`](crate::Node) could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is not usable (the message says why).
    Config(String),
    /// Redis could not be reached within the connect timeout.
    Redis(redis::RedisError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(why) => write!(f, "invalid switchboard-redis config: {why}"),
            StartError::Redis(e) => write!(f, "redis unreachable: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Redis(e) => Some(e),
            StartError::Config(_) => None,
        }
    }
}

/// Why [`Node::publish`](crate::Node::publish) did not confirm a message.
///
/// An error means "not known to be published": the script may still have
/// run (say, Redis answered after the timeout). Retrying may then publish
/// the payload twice, under two sequence numbers; a host that must not
/// duplicate puts its own id in the payload.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// No answer within the publish timeout (Redis down, paused or slow).
    Timeout,
    /// Redis answered with an error, or the connection failed.
    Redis(redis::RedisError),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Timeout => f.write_str("publish timed out: not known to be published"),
            PublishError::Redis(e) => write!(f, "publish failed: {e}"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Redis(e) => Some(e),
            PublishError::Timeout => None,
        }
    }
}

/// Why [`Node::ready`](crate::Node::ready) did not resolve with `Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadyError {
    /// The thread has no local subscriber (when asked, or it lost its last
    /// one and the node unsubscribed before the subscription was confirmed).
    NotOccupied,
    /// The node has shut down.
    Closed,
}

impl fmt::Display for ReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyError::NotOccupied => f.write_str("thread has no local subscriber"),
            ReadyError::Closed => f.write_str("node has shut down"),
        }
    }
}

impl std::error::Error for ReadyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        assert_eq!(
            ReadyError::NotOccupied.to_string(),
            "thread has no local subscriber"
        );
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(PublishError::Timeout);
        assert!(e.to_string().starts_with("publish timed out"));
        assert!(StartError::Config("x".into()).to_string().contains("x"));
    }
}

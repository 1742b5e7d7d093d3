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
    /// A [`Lease::publish`](crate::Lease::publish) refused: the lease has
    /// ended (expired, released, or taken over by a greater token). Nothing
    /// was published; Redis itself checked the token, or the lease was
    /// already known to be lost.
    Fenced,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Timeout => f.write_str("publish timed out: not known to be published"),
            PublishError::Redis(e) => write!(f, "publish failed: {e}"),
            PublishError::Fenced => f.write_str("publish refused: the lease has ended"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PublishError::Redis(e) => Some(e),
            PublishError::Timeout | PublishError::Fenced => None,
        }
    }
}

/// Why [`Node::claim`](crate::Node::claim) or
/// [`Lease::release`](crate::Lease::release) did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClaimError {
    /// A live lease of the thread is held by `node` with `token` (this
    /// node included, if it already holds one).
    Owned {
        /// The owner's node id.
        node: String,
        /// The owner's fencing token.
        token: u64,
    },
    /// The lease had already ended (expired or taken over) when it was
    /// released.
    Lost,
    /// No answer within the publish timeout: the claim may or may not have
    /// been made (if it was, it expires unrenewed after the lease length).
    Timeout,
    /// Redis answered with an error, or the connection failed.
    Redis(redis::RedisError),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Owned { node, token } => {
                write!(f, "thread is owned by node {node} (token {token})")
            }
            ClaimError::Lost => f.write_str("lease had already ended"),
            ClaimError::Timeout => f.write_str("claim timed out"),
            ClaimError::Redis(e) => write!(f, "claim failed: {e}"),
        }
    }
}

impl std::error::Error for ClaimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClaimError::Redis(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a question about a thread's owner, or a command to it, failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RouteError {
    /// The thread has no live lease.
    NoOwner,
    /// No answer in time.
    Timeout,
    /// The lease that took the command ended before answering.
    Lost,
    /// Redis answered with an error, or the connection failed.
    Redis(redis::RedisError),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NoOwner => f.write_str("thread has no owner"),
            RouteError::Timeout => f.write_str("owner did not answer in time"),
            RouteError::Lost => f.write_str("owner's lease ended before it answered"),
            RouteError::Redis(e) => write!(f, "routing failed: {e}"),
        }
    }
}

impl std::error::Error for RouteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouteError::Redis(e) => Some(e),
            _ => None,
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
        let owned = ClaimError::Owned {
            node: "n1".into(),
            token: 7,
        };
        assert_eq!(owned.to_string(), "thread is owned by node n1 (token 7)");
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(owned);
        assert!(e.source().is_none());
        assert_eq!(RouteError::NoOwner.to_string(), "thread has no owner");
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(RouteError::Lost);
        assert!(e.to_string().starts_with("owner's lease ended"));
        assert_eq!(
            PublishError::Fenced.to_string(),
            "publish refused: the lease has ended"
        );
    }
}

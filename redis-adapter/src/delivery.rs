//! What a node hands its host.

/// One event for the host, in per-thread order.
///
/// For each thread, a node's deliveries are `Message`s with sequence numbers
/// `n, n+1, n+2, …` (each exactly once), interrupted only by a `Reset`,
/// after which they continue from the `Reset`'s `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery<T> {
    /// A message published to `t` (by any node, this one included).
    Message {
        /// The thread.
        t: T,
        /// Its number in the thread's current epoch (1, 2, 3, …).
        seq: u64,
        /// What was published.
        payload: Vec<u8>,
    },
    /// Messages of `t` could not be recovered: the host should resync
    /// whatever it derives from them (reload the thread's state, tell its
    /// clients).
    Reset {
        /// The thread.
        t: T,
        /// Why.
        reason: ResetReason,
        /// The sequence number of the next message this node delivers for `t`.
        next: u64,
    },
}

impl<T: Copy> Delivery<T> {
    /// The thread this delivery is about.
    ///
    /// ```
    /// use switchboard_redis::Delivery;
    ///
    /// let d = Delivery::Message { t: 7u64, seq: 1, payload: b"hi".to_vec() };
    /// assert_eq!(d.thread(), 7);
    /// ```
    pub fn thread(&self) -> T {
        match self {
            Delivery::Message { t, .. } | Delivery::Reset { t, .. } => *t,
        }
    }
}

/// Why a [`Delivery::Reset`] was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The thread's history was lost (Redis restarted empty, or its keys
    /// expired): numbering restarts at 1 in a new epoch.
    EpochChanged,
    /// The node fell further behind than the retention: the messages
    /// before `next` were trimmed from the thread's stream.
    Trimmed,
}

//! Connection capability bits.

use std::ops::{BitOr, BitOrAssign};

/// A connection's capability bits: what a client can do (answer an
/// attestation request, receive raw events, ...). The host assigns the bits.
///
/// # Examples
///
/// ```
/// use switchboard_core::Caps;
///
/// const ATTEST: Caps = Caps(1 << 0);
/// const RAW: Caps = Caps(1 << 1);
/// let caps = ATTEST | RAW;
/// assert!(caps.contains(ATTEST));
/// assert!(caps.contains(Caps::NONE));
/// assert!(!ATTEST.contains(caps));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Caps(pub u64);

impl Caps {
    /// No capability. Every `Caps` contains it.
    pub const NONE: Caps = Caps(0);
    /// Every capability bit.
    pub const ALL: Caps = Caps(u64::MAX);

    /// Whether every bit of `required` is set in `self`.
    #[inline]
    pub const fn contains(self, required: Caps) -> bool {
        self.0 & required.0 == required.0
    }

    /// The bits set in either.
    #[inline]
    pub const fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }
}

impl BitOr for Caps {
    type Output = Caps;

    fn bitor(self, rhs: Caps) -> Caps {
        self.union(rhs)
    }
}

impl BitOrAssign for Caps {
    fn bitor_assign(&mut self, rhs: Caps) {
        *self = self.union(rhs);
    }
}

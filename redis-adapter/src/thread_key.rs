//! The thread ids a node can name in Redis.

use std::fmt::Display;
use std::str::FromStr;

/// A thread id a node can name in Redis: an engine key whose `Display`
/// form parses back with `FromStr` (every integer type does).
pub trait ThreadKey: switchboard_core::Key + Display + FromStr {}

impl<T: switchboard_core::Key + Display + FromStr> ThreadKey for T {}

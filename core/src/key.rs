//! [`Key`]: what a thread or connection id must be. A leaf module: every
//! layer (the listener registry, entries, views, the engine) names keys
//! through it, so none of them imports the crate root for it.

use std::fmt;
use std::hash::Hash;

/// What a thread or connection id must be: a small copyable key (a `u64`
/// newtype in practice). Implemented for every type that qualifies.
///
/// The engine calls the key's `Hash`, `Eq`, `Ord` and (in debug builds'
/// assertion messages) `Debug`: host code that may panic without breaking
/// the engine (see the crate docs, "Host code").
pub trait Key: Copy + Eq + Hash + Ord + Send + Sync + fmt::Debug + 'static {}

impl<K: Copy + Eq + Hash + Ord + Send + Sync + fmt::Debug + 'static> Key for K {}

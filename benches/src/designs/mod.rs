//! The designs under test, each implementing [`Registry`](crate::Registry).
//!
//! The five baselines share [`Maps`] (the reference design's three maps:
//! live connections, thread entries with their subscriber sets, and the
//! reverse index) and its per-thread [`Slot`]; they differ in what guards
//! the maps. [`Switchboard`] adapts the engine itself.

mod dash;
mod locked;
mod maps;
mod switchboard;

pub use dash::Dash;
pub use locked::{ArcSwapClone, CloneOnWrite, Locked, MapsLock, PlMutex, Reference, StdRwLock};
pub use maps::{Maps, RefCmd, Slot, State, ThreadHandle};
pub use switchboard::{Cmd, Engine, HostState, Switchboard};

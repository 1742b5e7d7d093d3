//! switchboard itself, as one more [`Registry`].

use crate::registry::{ReadHandle, Registry};
use std::sync::Arc;
use switchboard_core::{Caps, Reply, ThreadEntry};

/// A command for a switchboard thread's listener (what the sim sends).
#[derive(Debug)]
pub enum Cmd {
    /// An event to apply to the thread's state.
    Notify(u64),
    /// A request; the listener answers on the [`Reply`].
    Request(u64, Reply<u64>),
}

/// Per-thread host state of the switchboard design (its listener slot lives
/// in the engine's `ThreadEntry`).
#[derive(Debug, Default)]
pub struct HostState {
    /// Events applied by the listener.
    pub events: u64,
}

/// The engine type every bench and the sim use.
pub type Engine = switchboard_core::Engine<u64, u64, HostState, Cmd>;

/// The switchboard engine. Reader loops use a
/// [`Reader`](switchboard_core::Reader) per thread and its
/// `for_each_subscriber`, the cheapest read; `Registry::for_each_subscriber`
/// is [`Engine::for_each_subscriber`](switchboard_core::Engine::for_each_subscriber).
#[derive(Debug, Default)]
pub struct Switchboard(pub Engine);

impl ReadHandle for switchboard_core::Reader<'_, u64, u64> {
    #[inline]
    fn for_each_subscriber(&mut self, t: u64, f: impl FnMut(u64)) {
        switchboard_core::Reader::for_each_subscriber(self, t, f);
    }
}

impl Registry for Switchboard {
    const NAME: &'static str = "switchboard";
    type Entry = Arc<ThreadEntry<u64, HostState, Cmd>>;

    fn new() -> Self {
        Switchboard(Engine::new())
    }

    fn connect(&self, c: u64, caps: u64) -> bool {
        self.0.connect(c, Caps(caps))
    }

    fn disconnect(&self, c: u64) -> Vec<u64> {
        self.0.disconnect(c)
    }

    fn subscribe(&self, t: u64, c: u64) -> Option<Self::Entry> {
        self.0.subscribe(t, c).ok()
    }

    fn unsubscribe(&self, t: u64, c: u64) -> bool {
        self.0.unsubscribe(t, c)
    }

    #[inline]
    fn for_each_subscriber(&self, t: u64, f: impl FnMut(u64)) {
        self.0.for_each_subscriber(t, f);
    }

    type Reader<'a> = switchboard_core::Reader<'a, u64, u64>;

    fn reader(&self) -> Self::Reader<'_> {
        self.0.reader()
    }

    fn validate(&self) -> Result<(), String> {
        self.0.snapshot().validate().map_err(|e| e.to_string())
    }
}

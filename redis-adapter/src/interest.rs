//! Which threads this node follows: the engine's occupied threads.
//!
//! This is the seam between the engine and the node's worker. The worker
//! only sees [`Interest`] events and an [`EngineView`] (the engine's
//! present occupancy, read from a snapshot); it never keeps its own idea of
//! which threads have local subscribers beyond what these say.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::Engine;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ThreadKey;

/// An occupancy change, in engine order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interest<T> {
    /// `t` went from no local subscriber to one.
    Occupied(T),
    /// `t` lost its last local subscriber.
    Vacated(T),
    /// The driver lost track: these are every occupied thread now.
    Resync(Vec<T>),
}

type OccupiedFn<T> = Box<dyn Fn() -> Vec<T> + Send + Sync>;
type IsOccupiedFn<T> = Box<dyn Fn(T) -> bool + Send + Sync>;

/// The engine's present occupancy, for the worker: every occupied thread
/// (after a reconnect) and one thread's (before an unsubscribe acts).
pub(crate) struct EngineView<T> {
    occupied: OccupiedFn<T>,
    is_occupied: IsOccupiedFn<T>,
}

impl<T> std::fmt::Debug for EngineView<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineView")
    }
}

impl<T: ThreadKey> EngineView<T> {
    pub(crate) fn new<C, S, M>(engine: &Arc<Engine<T, C, S, M>>) -> Self
    where
        C: switchboard_core::Key,
        S: Default + Send + Sync + 'static,
        M: Send + 'static,
    {
        let e1 = Arc::clone(engine);
        let e2 = Arc::clone(engine);
        EngineView {
            occupied: Box::new(move || occupied_now(&e1)),
            is_occupied: Box::new(move |t| e2.has_subscribers(t)),
        }
    }

    /// Every thread with a local subscriber, from one snapshot.
    pub(crate) fn occupied(&self) -> Vec<T> {
        (self.occupied)()
    }

    pub(crate) fn is_occupied(&self, t: T) -> bool {
        (self.is_occupied)(t)
    }
}

fn occupied_now<T, C, S, M>(engine: &Engine<T, C, S, M>) -> Vec<T>
where
    T: ThreadKey,
    C: switchboard_core::Key,
    S: Default + Send + Sync + 'static,
    M: Send + 'static,
{
    let s = engine.snapshot();
    s.threads().filter(|&t| s.has_subscribers(t)).collect()
}

/// How often the interim driver compares snapshots.
const POLL: Duration = Duration::from_millis(2);

/// Spawns the task that turns the engine's occupancy changes into
/// [`Interest`] events; it ends when `tx` is closed.
///
/// Interim driver, until the engine's change feed is merged: it compares
/// the occupied set of consecutive snapshots every [`POLL`] (a scan of the
/// thread table, so its cost grows with the thread count). It sends a
/// `Resync` first, so the worker starts from the engine's state.
pub(crate) fn spawn_driver<T, C, S, M>(
    engine: Arc<Engine<T, C, S, M>>,
    tx: mpsc::UnboundedSender<Interest<T>>,
) -> JoinHandle<()>
where
    T: ThreadKey,
    C: switchboard_core::Key,
    S: Default + Send + Sync + 'static,
    M: Send + 'static,
{
    tokio::spawn(async move {
        let first = occupied_now(&engine);
        let mut known: HashSet<T> = first.iter().copied().collect();
        if tx.send(Interest::Resync(first)).is_err() {
            return;
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let now: HashSet<T> = occupied_now(&engine).into_iter().collect();
            for &t in now.difference(&known) {
                if tx.send(Interest::Occupied(t)).is_err() {
                    return;
                }
            }
            for &t in known.difference(&now) {
                if tx.send(Interest::Vacated(t)).is_err() {
                    return;
                }
            }
            known = now;
        }
    })
}

//! Which threads this node follows: the engine's occupied threads.
//!
//! This is the seam between the engine and the node's worker. The worker
//! only sees [`Interest`] events and an [`EngineView`] (the engine's
//! present occupancy, read from a snapshot); it never keeps its own idea of
//! which threads have local subscribers beyond what these say.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt;
use switchboard_async::{Change, ChangeFeed, ChangeFeedExt, Engine, Snapshot};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::counters::Counters;
use crate::thread_key::ThreadKey;

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
    pub(crate) fn new<C, S, M, D>(engine: &Arc<Engine<T, C, S, M, D>>) -> Self
    where
        C: switchboard_core::Key,
        S: Send + Sync + 'static,
        M: Send + 'static,
        D: Send + Sync + 'static,
    {
        let e1 = Arc::clone(engine);
        let e2 = Arc::clone(engine);
        EngineView {
            occupied: Box::new(move || occupied(&e1.snapshot())),
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

/// The occupied threads of `s`: those with a local subscriber.
fn occupied<T, C, D>(s: &Snapshot<T, C, D>) -> Vec<T>
where
    T: ThreadKey,
    C: switchboard_core::Key,
    D: Send + Sync + 'static,
{
    s.threads().filter(|&t| s.has_subscribers(t)).collect()
}

/// How many times the driver retries the snapshot-then-feed recipe before
/// it falls back to a feed taken before the snapshot (see [`resync`]).
const RESYNC_TRIES: usize = 64;

/// Spawns the task that turns the engine's change feed (as
/// switchboard-async's `ChangeStream`) into [`Interest`] events; it ends
/// when `tx` is closed.
///
/// It starts, and restarts after [`Lagged`](switchboard_core::Lagged),
/// with a `Resync` of the engine's snapshot, then forwards every
/// `Occupied` and `Vacated` of every batch, in version order.
pub(crate) fn spawn_driver<T, C, S, M, D>(
    engine: Arc<Engine<T, C, S, M, D>>,
    tx: mpsc::UnboundedSender<Interest<T>>,
    counters: Arc<Counters>,
) -> JoinHandle<()>
where
    T: ThreadKey,
    C: switchboard_core::Key,
    S: Send + Sync + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    tokio::spawn(async move {
        let Some(feed) = resync(&engine, &tx, &counters).await else {
            return;
        };
        let mut batches = feed.into_stream();
        loop {
            let batch = tokio::select! {
                b = batches.next() => b,
                _ = tx.closed() => return,
            };
            match batch {
                Some(Ok(batch)) => {
                    for change in batch.changes {
                        let event = match change {
                            Change::Occupied { t } => Interest::Occupied(t),
                            Change::Vacated { t } => Interest::Vacated(t),
                            _ => continue,
                        };
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                }
                // Lagged (the stream then ends): start again from a snapshot.
                Some(Err(_)) | None => match resync(&engine, &tx, &counters).await {
                    Some(f) => batches = f.into_stream(),
                    None => return,
                },
            }
        }
    })
}

/// Sends the engine's occupied threads as a `Resync` and returns a feed
/// that continues from that snapshot (`None`: `tx` is closed).
///
/// The resync recipe of switchboard-core's crate docs ("Following
/// changes"): take a snapshot, then a feed from its version; retry if
/// the window moved on in between. After [`RESYNC_TRIES`] misses (writes
/// outpacing the change log), it takes the feed first and the snapshot
/// second: the feed may then repeat changes the snapshot already shows,
/// which the worker tolerates (following twice is a no-op, and an
/// unsubscribe re-checks the engine before it acts).
async fn resync<T, C, S, M, D>(
    engine: &Engine<T, C, S, M, D>,
    tx: &mpsc::UnboundedSender<Interest<T>>,
    counters: &Counters,
) -> Option<ChangeFeed<T, C>>
where
    T: ThreadKey,
    C: switchboard_core::Key,
    S: Send + Sync + 'static,
    M: Send + 'static,
    D: Send + Sync + 'static,
{
    let mut found = None;
    for _ in 0..RESYNC_TRIES {
        let s = engine.snapshot();
        if let Ok(f) = engine.changes_since(s.version()) {
            found = Some((s, f));
            break;
        }
        tokio::task::yield_now().await;
    }
    let (s, f) = match found {
        Some(found) => found,
        None => {
            let f = engine.changes();
            (engine.snapshot(), f)
        }
    };
    // Relaxed: a statistic.
    counters.feed_resyncs.fetch_add(1, Ordering::Relaxed);
    let threads = occupied(&s);
    drop(s);
    tx.send(Interest::Resync(threads)).ok()?;
    Some(f)
}

//! A node's notice channel: the routed commands' acceptances, answers and
//! losses for the senders waiting on this node, and the wake-ups for its
//! leases' command takers (see `route.rs` for the protocol).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};

use crate::random;

/// What a node hears on its notice channel about one of its commands.
#[derive(Debug)]
pub(crate) enum Notice {
    Accepted,
    Answer(Vec<u8>),
    Lost,
}

/// The node's share of the notice channel: senders waiting for their
/// commands' notices, and the command takers of its leases waiting to be
/// woken. Shared by the node handles and the worker (which reads the
/// channel).
#[derive(Debug)]
pub(crate) struct Router {
    /// Ids start at a random point: two nodes misconfigured with the same
    /// node id (one notice channel) still do not take each other's notices.
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<Notice>>>,
    /// The wake-ups of this node's command takers, by thread name.
    pub(crate) wakes: Mutex<HashMap<String, Arc<Notify>>>,
}

/// Removes a sender's registration when its call ends, however it ends.
pub(crate) struct Waiting<'a> {
    router: &'a Router,
    id: u64,
}

impl Waiting<'_> {
    /// The id the sender's notices carry.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.router.waiting).remove(&self.id);
    }
}

pub(crate) fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Router {
    fn default() -> Self {
        // Half the range: ids never wrap in practice.
        Router {
            next_id: AtomicU64::new(random::u64() >> 1),
            waiting: Mutex::default(),
            wakes: Mutex::default(),
        }
    }
}

impl Router {
    /// Registers a sender: its command's id (to send with it) and the
    /// notices for that id.
    pub(crate) fn register(&self) -> (Waiting<'_>, mpsc::UnboundedReceiver<Notice>) {
        // Relaxed: only uniqueness matters.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.waiting).insert(id, tx);
        (Waiting { router: self, id }, rx)
    }

    /// Handles one message from the node's notice channel.
    pub(crate) fn dispatch(&self, payload: &[u8]) {
        let Some((kind, rest)) = payload.split_first() else {
            return;
        };
        let Some(rest) = rest.strip_prefix(b":") else {
            return;
        };
        if *kind == b'w' {
            if let Ok(t) = std::str::from_utf8(rest) {
                if let Some(n) = lock(&self.wakes).get(t) {
                    n.notify_one();
                }
            }
            return;
        }
        let (id, answer) = match kind {
            b'r' => {
                let Some(colon) = rest.iter().position(|&b| b == b':') else {
                    return;
                };
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        let Some(id) = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()) else {
            return;
        };
        let notice = match (kind, answer) {
            (b'a', _) => Notice::Accepted,
            (b'r', Some(a)) => Notice::Answer(a.to_vec()),
            (b'l', _) => Notice::Lost,
            _ => return,
        };
        if let Some(tx) = lock(&self.waiting).get(&id) {
            let _ = tx.send(notice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn smoke_notices_reach_their_waiter() {
        let router = Router::default();
        let (w, mut rx) = router.register();
        let id = w.id;
        router.dispatch(format!("a:{id}").as_bytes());
        router.dispatch(format!("r:{id}:x:y").as_bytes());
        router.dispatch(format!("l:{id}").as_bytes());
        router.dispatch(b"garbage");
        router.dispatch(format!("a:{}", id + 1).as_bytes()); // nobody waits
        assert!(matches!(rx.try_recv(), Ok(Notice::Accepted)));
        assert!(matches!(rx.try_recv(), Ok(Notice::Answer(a)) if a == b"x:y"));
        assert!(matches!(rx.try_recv(), Ok(Notice::Lost)));
        assert!(rx.try_recv().is_err());
        drop(w);
        assert!(lock(&router.waiting).is_empty(), "unregistered on drop");
    }

    #[test]
    fn wake_ups_are_kept_until_taken() {
        let router = Router::default();
        let n = Arc::new(Notify::new());
        lock(&router.wakes).insert("7".into(), Arc::clone(&n));
        router.dispatch(b"w:7");
        // notify_one stores a permit: the next wait returns at once.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), n.notified())
                .await
                .expect("woken");
        });
    }
}

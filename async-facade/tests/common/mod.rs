//! Shared test helpers: a waker that counts its wake-ups, and polling by hand.
#![allow(dead_code)]

use futures::task::{waker, ArcWake};
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

struct Count(AtomicUsize);

impl ArcWake for Count {
    fn wake_by_ref(arc: &Arc<Self>) {
        arc.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One task's waker, counting how often it was woken.
pub(crate) struct Probe {
    count: Arc<Count>,
    waker: Waker,
}

impl Probe {
    pub(crate) fn new() -> Self {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = waker(Arc::clone(&count));
        Probe { count, waker }
    }

    /// How many times this waker was woken so far.
    pub(crate) fn wakes(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }

    pub(crate) fn poll<F: Future + Unpin>(&self, f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(&self.waker))
    }

    pub(crate) fn poll_next<S: Stream + Unpin>(&self, s: &mut S) -> Poll<Option<S::Item>> {
        Pin::new(s).poll_next(&mut Context::from_waker(&self.waker))
    }
}

/// Long enough for another thread to have parked in the waiter under test.
pub(crate) const SETTLE: Duration = Duration::from_millis(20);

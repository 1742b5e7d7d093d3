//! A counting global allocator, for the memory figures of the `memory`,
//! `targets` and `sim` binaries.
//!
//! A binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: switchboard_benches::alloc::CountingAlloc = switchboard_benches::alloc::CountingAlloc;
//! ```
//!
//! and switches counting on with [`set_counting`]. While counting is off an
//! allocation costs one extra relaxed load; while it is on, one shared
//! `fetch_add` (plus a `fetch_max` when a new peak is reached). Counts are
//! signed: memory allocated before counting started and freed after shows
//! as a negative delta, so measure a build and its teardown inside one
//! counting window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes and their peak while
/// [`set_counting`] is on.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

/// Turns counting on or off; returns whether it was on.
pub fn set_counting(on: bool) -> bool {
    // Relaxed: a flag for statistics; no data is published through it.
    COUNTING.swap(on, Ordering::Relaxed)
}

/// Bytes allocated minus bytes freed while counting was on.
pub fn current() -> isize {
    CURRENT.load(Ordering::Relaxed)
}

/// The highest [`current`] value since the last [`reset_peak`].
pub fn peak() -> isize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak window at the current value, which it returns.
pub fn reset_peak() -> isize {
    let now = current();
    PEAK.store(now, Ordering::Relaxed);
    now
}

#[inline]
fn grow(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let bytes = bytes as isize;
        // Relaxed: independent statistics counters.
        let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if now > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }
}

#[inline]
fn shrink(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        // Relaxed: independent statistics counters.
        CURRENT.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counters only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (that is, from `System`)
        // with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract and
        // `ptr` came from `System`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

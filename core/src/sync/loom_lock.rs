//! loom's mutex and condition variable behind the production API
//! (parking_lot's guard-returning `lock()`): `sync.rs`'s `Mutex`, `Condvar`
//! and `MutexGuard` under `--cfg loom`, and what the other loom stand-ins
//! (`loom_cell.rs`, `loom_channel.rs`) are built from. Compiled only there.

use std::time::Instant;

/// The guard [`Mutex::lock`] returns.
pub(crate) use loom::sync::MutexGuard;

/// loom's mutex with parking_lot's guard-returning `lock()`.
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .expect("loom mutexes are never poisoned in a passing model")
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // loom's only error here is `WouldBlock` (it never poisons on
        // `try_lock`).
        self.0.try_lock().ok()
    }
}

/// loom's condition variable. loom has no clock, so `wait_until` times
/// out at once: models exercise the timeout path, and use untimed
/// waits (a `Duration::MAX` timeout) where they need to block.
#[derive(Debug)]
pub(crate) struct Condvar(loom::sync::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar(loom::sync::Condvar::new())
    }

    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).expect("not poisoned")
    }

    pub(crate) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        _deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        (guard, true)
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

//! [`Writing`]: the mark that turns a nested write on one thread into a
//! panic instead of a deadlock.

/// Marks the calling thread as inside a write for as long as it lives, so
/// that a nested write (host code run under the writer mutex calling a
/// writing method of any engine) panics instead of deadlocking or
/// interleaving two transactions on one thread.
pub(super) struct Writing(());

#[cfg(not(loom))]
thread_local! {
    static WRITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Writing {
    #[inline]
    pub(super) fn enter() -> Self {
        #[cfg(not(loom))]
        {
            let nested = WRITING.try_with(|w| w.replace(true)).unwrap_or(false);
            assert!(
                !nested,
                "a writing method of a switchboard engine was called from host code \
                 running inside a write (a key's Hash/Eq/Ord, a state's Default, a \
                 closure): it would wait for itself"
            );
        }
        Writing(())
    }
}

impl Drop for Writing {
    #[inline]
    fn drop(&mut self) {
        #[cfg(not(loom))]
        let _ = WRITING.try_with(|w| w.set(false));
    }
}

//! Engine configuration.

/// How an [`Engine`](crate::Engine) is set up: give it to
/// [`Engine::with_config`](crate::Engine::with_config).
///
/// # Examples
///
/// ```
/// use switchboard_core::{Config, Engine};
///
/// // Keep the changes of the last 64 versions only.
/// let engine: Engine<u64, u64> = Engine::with_config(Config::default().change_log(64));
/// assert_eq!(engine.version(), 0);
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) change_log: usize,
}

impl Config {
    /// How many versions the change log keeps by default.
    pub const DEFAULT_CHANGE_LOG: usize = 4096;

    /// Keeps the changes of the last `versions` published versions for
    /// [`ChangeFeed`](crate::ChangeFeed)s (default
    /// [`DEFAULT_CHANGE_LOG`](Self::DEFAULT_CHANGE_LOG)). A feed that falls
    /// further behind gets [`Lagged`](crate::Lagged) and resyncs from a
    /// snapshot. `0` keeps nothing: every feed lags at the first version
    /// published after it started, and writes skip the copy into the log.
    ///
    /// The log's memory grows with use, up to `versions` batches: 16 bytes
    /// each plus their changes (24 bytes each with `u64` ids), so a full
    /// default log of subscribe/unsubscribe batches takes about 250 KiB.
    pub fn change_log(mut self, versions: usize) -> Self {
        self.change_log = versions;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            change_log: Self::DEFAULT_CHANGE_LOG,
        }
    }
}

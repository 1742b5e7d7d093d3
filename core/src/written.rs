//! [`WriteBuf`]: what the writes published as one version record for that
//! publish: their changes, for the change log, and the watches they flip
//! or close, told once the version is published.
//!
//! The store keeps it under the writer mutex (`Publish::Extra`): every
//! write of a group (`store/versions/`, "Combining") appends its part, an
//! abandoned write's part is cut off again (`Extra::undo`), and the
//! publishing write tells the watches ([`published`](WriteBuf::published));
//! the store then empties it (`Extra::clear`).

use crate::changes::{Change, ChangeBuf, ChangeMark};
use crate::store::Extra;
use crate::sync::Arc;
use crate::watch::WatchCell;
use std::collections::HashSet;

/// See the module docs.
pub(crate) struct WriteBuf<T, C> {
    /// The changes, in the order made.
    pub(crate) changes: ChangeBuf<T, C>,
    /// Watch flips, in the order made: each cell ends on its last one.
    flips: Vec<(Arc<WatchCell>, bool)>,
    /// Watches of removed threads, closed after the flips.
    closes: Vec<Arc<WatchCell>>,
    /// Scratch space for [`published`](Self::published): the addresses of
    /// the cells already told (empty between publishes).
    seen: HashSet<usize>,
}

/// A point in a [`WriteBuf`]: where one write's part begins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteMark {
    changes: ChangeMark,
    flips: usize,
    closes: usize,
}

impl<T: Copy, C: Copy> WriteBuf<T, C> {
    pub(crate) fn new() -> Self {
        WriteBuf {
            changes: ChangeBuf::new(),
            flips: Vec::new(),
            closes: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Records one change of the write in progress.
    #[inline]
    pub(crate) fn push(&mut self, change: Change<T, C>) {
        self.changes.push(change);
    }

    /// `cell` ends on `value` in the version being built (unless a later
    /// write flips it again).
    #[inline]
    pub(crate) fn flip(&mut self, cell: Arc<WatchCell>, value: bool) {
        self.flips.push((cell, value));
    }

    /// `cell`'s thread is removed: the watch closes after the flips.
    pub(crate) fn close(&mut self, cell: Arc<WatchCell>) {
        self.closes.push(cell);
    }

    /// Once the version is published, under the writer mutex (so in
    /// publish order): each watch ends on the value the published graph
    /// gives it (a thread occupied and vacated again within one version
    /// flips nothing), then removed threads' watches close. Runs no host
    /// code but the watchers' wakers. (The store empties the buffer after.)
    #[inline]
    pub(crate) fn published(&mut self) {
        if !self.flips.is_empty() || !self.closes.is_empty() {
            self.tell();
        }
    }

    fn tell(&mut self) {
        if let [(cell, value)] = self.flips.as_slice() {
            cell.set(*value);
        } else {
            // The last flip of each cell is its value in the new graph.
            for (cell, value) in self.flips.iter().rev() {
                if self.seen.insert(Arc::as_ptr(cell) as usize) {
                    cell.set(*value);
                }
            }
            self.seen.clear();
        }
        for cell in &self.closes {
            cell.close();
        }
    }
}

impl<T: Copy + Send + 'static, C: Copy + Send + 'static> Extra for WriteBuf<T, C> {
    type Mark = WriteMark;

    #[inline]
    fn mark(&self) -> WriteMark {
        WriteMark {
            changes: self.changes.mark(),
            flips: self.flips.len(),
            closes: self.closes.len(),
        }
    }

    fn undo(&mut self, mark: WriteMark) {
        self.changes.undo(mark.changes);
        self.flips.truncate(mark.flips);
        self.closes.truncate(mark.closes);
    }

    fn clear(&mut self) {
        self.changes.clear();
        self.flips.clear();
        self.closes.clear();
        self.seen.clear();
    }
}

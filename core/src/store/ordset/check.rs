//! The B+tree's invariant check (module docs, "Invariants").

use super::layout::{low_mask, max_size, min_size, OrdNode, MAX_HEIGHT};
use super::OrdTree;

impl<K: Copy + Ord> OrdTree<K> {
    /// Checks the invariants (module docs); returns a description of the
    /// first violation. O(n); for tests and `Snapshot::validate`.
    pub(crate) fn check(&self) -> Result<(), String> {
        let Some(root) = &self.root else {
            return match (self.len, self.height) {
                (0, 0) => Ok(()),
                _ => Err("empty ordset with a length or height".into()),
            };
        };
        if self.height == 0 || usize::from(self.height) > MAX_HEIGHT {
            return Err(format!("ordset of height {}", self.height));
        }
        let (mut prev, mut count) = (None, 0);
        check_node(root, self.height, true, &mut prev, &mut count)?;
        if count != self.len {
            return Err(format!("ordset len {} but {count} keys", self.len));
        }
        Ok(())
    }
}

/// Checks the subtree at `node`, `level` levels above the leaves' parents
/// (a leaf is at level 1); returns its minimum. `prev` is the last key seen.
fn check_node<K: Copy + Ord>(
    node: &OrdNode<K>,
    level: u8,
    is_root: bool,
    prev: &mut Option<K>,
    count: &mut usize,
) -> Result<K, String> {
    let h = node.header();
    let (leaf, n) = (h.nodemap == 0, h.datamap as usize);
    if leaf != (level == 1) {
        return Err(format!("ordset node at level {level} is the wrong kind"));
    }
    let least = match (is_root, leaf) {
        (true, true) => 1,
        (true, false) => 2,
        (false, _) => min_size(leaf),
    };
    if n < least || n > max_size(leaf) {
        return Err(format!("ordset node of {n} items at level {level}"));
    }
    if !leaf && h.nodemap != low_mask(n) {
        return Err("ordset child map is not its entry count's low mask".into());
    }
    let (children, entries) = node.parts(true);
    if leaf {
        for &(k, ()) in entries {
            if prev.is_some_and(|p| p >= k) {
                return Err("ordset keys not strictly ascending".into());
            }
            *prev = Some(k);
        }
        *count += n;
        return Ok(entries[0].0);
    }
    for (child, &(min, ())) in children.iter().zip(entries) {
        if child.header().born() > h.born() {
            return Err("ordset child node newer than its parent".into());
        }
        if check_node(child, level - 1, false, prev, count)? != min {
            return Err("ordset entry is not its child's minimum".into());
        }
    }
    Ok(entries[0].0)
}

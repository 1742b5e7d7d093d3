//! Where a hash leads in a trie node (module docs, "Why this layout"):
//! five bits per level from the low end pick a slot, and a slot's place
//! among a bitmap's set bits is its index in the packed children or
//! entries.

pub(super) const BITS: u32 = 5;
const MASK: u64 = (1 << BITS) - 1;

/// The slot `hash` leads to at the level of `shift`.
#[inline]
pub(super) fn slot(hash: u64, shift: u32) -> usize {
    ((hash >> shift) & MASK) as usize
}

#[inline]
pub(super) fn bit_for(hash: u64, shift: u32) -> u32 {
    1 << slot(hash, shift)
}

#[inline]
pub(super) fn index_of(bitmap: u32, bit: u32) -> usize {
    (bitmap & (bit - 1)).count_ones() as usize
}

#[inline]
pub(super) fn is_collision(shift: u32) -> bool {
    shift >= 64
}

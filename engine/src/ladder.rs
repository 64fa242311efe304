//! One side of a book: its price levels sorted by priority with the best level last, so the
//! best price is O(1), and adding or removing a level near the top moves few entries.
//! Capacity is fixed when the instrument is added; the steady state never allocates.

use serde::{Deserialize, Serialize};

use crate::order::Slot;

/// Which price is best on this ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Best {
    /// Highest price first (bids; sell stops, which trigger highest first).
    High,
    /// Lowest price first (asks; buy stops, which trigger lowest first).
    Low,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub price_ticks: i64,
    pub level: Slot,
}

pub(crate) struct Ladder {
    best: Best,
    /// Sorted worst → best.
    entries: Vec<Entry>,
}

impl Ladder {
    pub fn with_capacity(best: Best, capacity: u32) -> Self {
        Ladder { best, entries: Vec::with_capacity(capacity as usize) }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() == self.entries.capacity()
    }

    /// `Ok(index)` of the level at `price_ticks`, or `Err(index)` where it would be inserted.
    #[inline]
    pub fn find(&self, price_ticks: i64) -> Result<usize, usize> {
        match self.best {
            Best::High => self.entries.binary_search_by(|e| e.price_ticks.cmp(&price_ticks)),
            Best::Low => self.entries.binary_search_by(|e| price_ticks.cmp(&e.price_ticks)),
        }
    }

    #[inline]
    pub fn best(&self) -> Option<Entry> {
        self.entries.last().copied()
    }

    pub fn insert(&mut self, index: usize, price_ticks: i64, level: Slot) {
        assert!(!self.is_full(), "ladder capacity checked by the caller");
        self.entries.insert(index, Entry { price_ticks, level });
    }

    pub fn remove_at(&mut self, index: usize) {
        self.entries.remove(index);
    }

    /// The worst level.
    #[inline]
    pub fn worst(&self) -> Option<Entry> {
        self.entries.first().copied()
    }

    /// Entry `rank` positions from the best (0 = best).
    #[inline]
    pub fn nth_best(&self, rank: usize) -> Option<Entry> {
        self.entries.len().checked_sub(rank + 1).map(|i| self.entries[i])
    }

    /// Levels in priority order.
    pub fn iter_best_first(&self) -> impl Iterator<Item = Entry> + '_ {
        self.entries.iter().rev().copied()
    }

    /// True if a level at `a` has priority over one at `b` on this ladder.
    #[inline]
    pub fn better(&self, a: i64, b: i64) -> bool {
        match self.best {
            Best::High => a > b,
            Best::Low => a < b,
        }
    }
}

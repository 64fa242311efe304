//! One side of a book: its price levels sorted by priority with the best level last, so the
//! best price is O(1) and levels near the touch are cheap to add and remove.
//!
//! A level that empties away from the touch is not removed: its entry stays as a *tombstone*
//! (price kept, no level) so that an order returning to that price reuses the slot instead of
//! shifting the array twice. Order flow revisits the same prices constantly (amends, refills),
//! so after warm-up almost no command moves the array. Tombstones are never the last entry
//! (emptying the best level pops it and any tombstones behind it), and the array is compacted
//! only when it is full. Tombstones are invisible: every query, bulk operation and the state
//! image skip them, so they change speed, never behaviour. Capacity is fixed when the
//! instrument is added; the steady state never allocates.

use serde::{Deserialize, Serialize};

use crate::order::{NIL, Slot};

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
    /// The level, or `NIL` for a tombstone.
    pub level: Slot,
}

pub(crate) struct Ladder {
    best: Best,
    /// Sorted worst → best; the last entry, if any, is never a tombstone.
    entries: Vec<Entry>,
    /// Entries that hold a level.
    live: usize,
}

impl Ladder {
    pub fn with_capacity(best: Best, capacity: u32) -> Self {
        Ladder { best, entries: Vec::with_capacity(capacity as usize), live: 0 }
    }

    /// No live level.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every entry could hold a live level: no room for another even after compaction.
    pub fn is_full(&self) -> bool {
        self.live == self.entries.capacity()
    }

    /// `Ok(index)` of the entry at `price_ticks` (possibly a tombstone), or `Err(index)` where
    /// it would be inserted.
    #[inline]
    pub fn find(&self, price_ticks: i64) -> Result<usize, usize> {
        match self.best {
            Best::High => self.entries.binary_search_by(|e| e.price_ticks.cmp(&price_ticks)),
            Best::Low => self.entries.binary_search_by(|e| price_ticks.cmp(&e.price_ticks)),
        }
    }

    /// The live level at `price_ticks`.
    #[inline]
    pub fn level_at(&self, price_ticks: i64) -> Option<Slot> {
        // Most activity is at the touch: try the best entry before searching.
        if let Some(b) = self.entries.last()
            && b.price_ticks == price_ticks
        {
            return Some(b.level);
        }
        match self.find(price_ticks) {
            Ok(i) if self.entries[i].level != NIL => Some(self.entries[i].level),
            _ => None,
        }
    }

    #[inline]
    pub fn best(&self) -> Option<Entry> {
        self.entries.last().copied()
    }

    /// The worst live level (a scan past tombstones at the worst end).
    pub fn worst(&self) -> Option<Entry> {
        self.entries.iter().find(|e| e.level != NIL).copied()
    }

    /// Records `level` as the live level at `price_ticks`, reusing a tombstone when there is one.
    /// The caller checked `!is_full()` and that no live level exists at that price.
    pub fn add(&mut self, price_ticks: i64, level: Slot) {
        assert!(!self.is_full(), "ladder capacity checked by the caller");
        let improves = self.entries.last().is_none_or(|b| self.better(price_ticks, b.price_ticks));
        if improves && self.entries.len() < self.entries.capacity() {
            self.entries.push(Entry { price_ticks, level });
            self.live += 1;
            return;
        }
        let i = match self.find(price_ticks) {
            Ok(i) => {
                debug_assert!(self.entries[i].level == NIL, "a live level exists at this price");
                self.entries[i].level = level;
                self.live += 1;
                return;
            }
            Err(i) if self.entries.len() < self.entries.capacity() => i,
            Err(_) => {
                self.compact();
                self.find(price_ticks).expect_err("no entry at this price")
            }
        };
        self.entries.insert(i, Entry { price_ticks, level });
        self.live += 1;
    }

    /// Marks the live level at `price_ticks` gone.
    pub fn remove(&mut self, price_ticks: i64) {
        let last = self.entries.len().wrapping_sub(1);
        let i = if self.entries.last().is_some_and(|b| b.price_ticks == price_ticks) {
            last
        } else {
            self.find(price_ticks).expect("a level in use is on its ladder")
        };
        debug_assert!(self.entries[i].level != NIL, "removing a tombstone");
        self.entries[i].level = NIL;
        self.live -= 1;
        while self.entries.last().is_some_and(|e| e.level == NIL) {
            self.entries.pop();
        }
    }

    /// Appends a level better than every present one (state loading, best level last).
    pub fn push_best(&mut self, price_ticks: i64, level: Slot) -> Result<(), ()> {
        if self.entries.len() == self.entries.capacity()
            || self.entries.last().is_some_and(|b| !self.better(price_ticks, b.price_ticks))
        {
            return Err(());
        }
        self.entries.push(Entry { price_ticks, level });
        self.live += 1;
        Ok(())
    }

    fn compact(&mut self) {
        self.entries.retain(|e| e.level != NIL);
    }

    /// Number of entries, tombstones included (for index walks with [`Ladder::entry`]).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i` (worst = 0), possibly a tombstone.
    #[inline]
    pub fn entry(&self, i: usize) -> Entry {
        self.entries[i]
    }

    /// Live levels in priority order.
    pub fn iter_best_first(&self) -> impl Iterator<Item = Entry> + '_ {
        self.entries.iter().rev().filter(|e| e.level != NIL).copied()
    }

    /// True if a level at `a` has priority over one at `b` on this ladder.
    #[inline]
    pub fn better(&self, a: i64, b: i64) -> bool {
        match self.best {
            Best::High => a > b,
            Best::Low => a < b,
        }
    }

    /// Checks the ladder's own invariants: sorted, counted, no tombstone at the best end.
    pub fn check(&self) -> Result<(), String> {
        if self.entries.windows(2).any(|w| !self.better(w[1].price_ticks, w[0].price_ticks)) {
            return Err("ladder entries out of order".into());
        }
        if self.entries.iter().filter(|e| e.level != NIL).count() != self.live {
            return Err("ladder live count wrong".into());
        }
        if self.entries.last().is_some_and(|e| e.level == NIL) {
            return Err("tombstone at the best end".into());
        }
        Ok(())
    }
}

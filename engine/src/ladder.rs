//! One side of a book: its price levels sorted by priority with the best level last, so the
//! best price is O(1), plus a price → level table so finding a price never searches.
//!
//! A level that empties away from the touch stays allocated and in place as a *tombstone*
//! (count 0), so an order returning to that price reuses it: order flow revisits the same
//! prices constantly (amends, refills), and after warm-up almost no command inserts into or
//! shifts the array. Emptying the best level pops it and any tombstones behind it, so the last
//! entry is never a tombstone. Tombstones are released when the array or the level pool runs
//! out ([`Ladder::compact`]). They are invisible: every query, bulk operation and the state image
//! skip them, so they change speed, never behaviour. Capacity is fixed when the instrument is
//! added; the steady state never allocates.

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::order::Slot;
use crate::price_level::LevelPool;
use crate::tiered::Tiered;

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

/// Price in the low bits, so neighbouring prices land in neighbouring buckets (books are dense
/// near the touch: lookups hit lines already cached), and mixed top bits, which hashbrown uses as
/// its 7-bit tags, so the tags still tell prices apart. The top bits of a product with an odd
/// constant depend on every bit of the price: one multiply, where a full finaliser costs five
/// dependent steps on every price lookup.
#[inline]
fn hash_price(price_ticks: i64) -> u64 {
    let p = price_ticks as u64;
    p ^ (p.wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xFE00_0000_0000_0000)
}

pub(crate) struct Ladder {
    best: Best,
    /// Sorted worst → best; every entry's level is allocated; the last is never empty. A
    /// tiered array, so that a new price far from the touch moves O(√capacity) entries, not all
    /// of them.
    entries: Tiered<Entry>,
    /// Every entry, by price (the price is kept in the table so a lookup reads no level).
    by_price: HashTable<Entry>,
    /// Entries whose level holds orders.
    live: usize,
}

impl Ladder {
    /// A ladder for up to `capacity` levels. Both arrays are written once here, so that no
    /// first touch of a page (a page fault, about 2 µs on this VM) lands inside `apply` when a
    /// price is first seen: in a 131,072-level ladder the price table spans about a thousand
    /// 4 KiB pages and each new price tends to land on a fresh one (the benchmark counted about
    /// 1,000 faults per GOOG day in a 2M-order engine; none now). The cost moves to adding the
    /// instrument: 14 ms instead of 0.7 ms for four such ladders.
    pub fn with_capacity(best: Best, capacity: u32) -> Self {
        let entries = Tiered::with_capacity(capacity as usize, Entry { price_ticks: 0, level: 0 });
        let mut by_price = HashTable::with_capacity(capacity as usize);
        // Write one bucket in every 2 KiB of the table, then empty it (`clear` keeps the
        // memory). hashbrown puts an entry into an empty table at the bucket its hash's low bits
        // name, so hashes 128 buckets (of 16 bytes) apart touch every page of the at most
        // 16/7 × capacity buckets it allocates; a few thousand inserts instead of a full fill.
        let touches = (capacity as usize * 16 / 7 / 128 + 1).min(capacity as usize);
        let home = |p: i64| p as u64 * 128;
        for p in 0..touches as i64 {
            by_price.insert_unique(home(p), Entry { price_ticks: p, level: 0 }, |e| home(e.price_ticks));
        }
        by_price.clear();
        Ladder { best, entries, by_price, live: 0 }
    }

    /// No level holds orders.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every entry could hold a live level: no room for another even after compaction.
    pub fn is_full(&self) -> bool {
        self.live == self.entries.capacity()
    }

    /// Entries that are tombstones.
    pub fn tombstones(&self) -> usize {
        self.entries.len() - self.live
    }

    /// The level at `price_ticks`, live or tombstone.
    #[inline]
    pub fn level_at(&self, price_ticks: i64) -> Option<Slot> {
        // Most activity is at the touch: try the best entry before the table.
        if let Some(b) = self.entries.last()
            && b.price_ticks == price_ticks
        {
            return Some(b.level);
        }
        self.by_price.find(hash_price(price_ticks), |e| e.price_ticks == price_ticks).map(|e| e.level)
    }

    #[inline]
    pub fn best(&self) -> Option<Entry> {
        self.entries.last()
    }

    /// The worst level holding orders.
    pub fn worst(&self, levels: &LevelPool) -> Option<Entry> {
        self.entries.iter().find(|e| levels.get(e.level).count > 0)
    }

    /// A tombstone at this level's price is about to receive an order again.
    pub fn revive(&mut self) {
        debug_assert!(!self.is_full(), "capacity checked by the caller");
        self.live += 1;
    }

    /// Adds a new level (no entry exists at its price) that is about to receive an order. The
    /// caller checked `!is_full()`; tombstones are released first if the array is full.
    pub fn insert(&mut self, price_ticks: i64, level: Slot, levels: &mut LevelPool) {
        assert!(!self.is_full(), "ladder capacity checked by the caller");
        if self.entries.len() == self.entries.capacity() {
            self.compact(levels);
        }
        let improves = self.entries.last().is_none_or(|b| self.better(price_ticks, b.price_ticks));
        if improves {
            self.entries.push(Entry { price_ticks, level });
        } else {
            let i = self.find(price_ticks).expect_err("no entry at a new level's price");
            self.entries.insert(i, Entry { price_ticks, level });
        }
        self.by_price
            .insert_unique(hash_price(price_ticks), Entry { price_ticks, level }, |e| hash_price(e.price_ticks));
        self.live += 1;
    }

    /// `level` lost its last order. At the best end it goes (with the tombstones behind it);
    /// elsewhere it stays as a tombstone.
    pub fn emptied(&mut self, level: Slot, levels: &mut LevelPool) {
        self.live -= 1;
        if self.entries.last().is_some_and(|e| e.level == level) {
            while let Some(e) = self.entries.last() {
                if levels.get(e.level).count > 0 {
                    break;
                }
                self.entries.pop();
                forget(&mut self.by_price, e, levels);
            }
        }
    }

    /// Releases every tombstone (its level returns to the pool).
    pub fn compact(&mut self, levels: &mut LevelPool) {
        if self.tombstones() == 0 {
            return;
        }
        let by_price = &mut self.by_price;
        self.entries.retain(|e| {
            let live = levels.get(e.level).count > 0;
            if !live {
                forget(by_price, e, levels);
            }
            live
        });
    }

    /// Appends a level better than every present one (state loading, best level last).
    pub fn push_best(&mut self, price_ticks: i64, level: Slot) -> Result<(), ()> {
        if self.entries.len() == self.entries.capacity()
            || self.entries.last().is_some_and(|b| !self.better(price_ticks, b.price_ticks))
        {
            return Err(());
        }
        self.entries.push(Entry { price_ticks, level });
        self.by_price
            .insert_unique(hash_price(price_ticks), Entry { price_ticks, level }, |e| hash_price(e.price_ticks));
        self.live += 1;
        Ok(())
    }

    fn find(&self, price_ticks: i64) -> Result<usize, usize> {
        match self.best {
            Best::High => self.entries.binary_search_by(|e| e.price_ticks.cmp(&price_ticks)),
            Best::Low => self.entries.binary_search_by(|e| price_ticks.cmp(&e.price_ticks)),
        }
    }

    /// Number of entries, tombstones included (for index walks with [`Ladder::entry`]).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i` (worst = 0), possibly a tombstone.
    #[inline]
    pub fn entry(&self, i: usize) -> Entry {
        self.entries.get(i)
    }

    /// Levels holding orders, in priority order.
    pub fn iter_best_first<'a>(&'a self, levels: &'a LevelPool) -> impl Iterator<Item = Entry> + 'a {
        self.entries.iter().rev().filter(|e| levels.get(e.level).count > 0)
    }

    /// True if a level at `a` has priority over one at `b` on this ladder.
    #[inline]
    pub fn better(&self, a: i64, b: i64) -> bool {
        match self.best {
            Best::High => a > b,
            Best::Low => a < b,
        }
    }

    /// Checks the ladder's own invariants: sorted, counted, indexed, no tombstone at the best
    /// end.
    pub fn check(&self, levels: &LevelPool) -> Result<(), String> {
        let entries: Vec<Entry> = self.entries.iter().collect();
        if entries.windows(2).any(|w| !self.better(w[1].price_ticks, w[0].price_ticks)) {
            return Err("ladder entries out of order".into());
        }
        if self.entries.iter().filter(|e| levels.get(e.level).count > 0).count() != self.live {
            return Err("ladder live count wrong".into());
        }
        if self.entries.last().is_some_and(|e| levels.get(e.level).count == 0) {
            return Err("tombstone at the best end".into());
        }
        if self.by_price.len() != self.entries.len()
            || self.entries.iter().any(|e| self.level_at(e.price_ticks) != Some(e.level))
        {
            return Err("price table out of step with the entries".into());
        }
        if self.entries.iter().any(|e| levels.get(e.level).price_ticks != e.price_ticks) {
            return Err("level price differs from its entry".into());
        }
        Ok(())
    }
}

/// Drops a tombstone's price from the table and returns its level to the pool.
fn forget(by_price: &mut HashTable<Entry>, e: Entry, levels: &mut LevelPool) {
    match by_price.find_entry(hash_price(e.price_ticks), |x| x.level == e.level) {
        Ok(found) => {
            found.remove();
        }
        Err(_) => panic!("level at {} missing from the price table", e.price_ticks),
    }
    levels.free(e.level);
}

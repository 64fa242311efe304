//! Price levels: a FIFO of orders at one price, as an intrusive doubly-linked list through the
//! order records, plus the visible quantity total. Levels live in a preallocated pool.

use crate::order::{NIL, OrderPool, Slot};

/// One price level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub price_ticks: i64,
    /// Sum of the visible quantity of the level's orders.
    pub visible_lots: u64,
    pub count: u32,
    pub head: Slot,
    pub tail: Slot,
}

impl Level {
    const EMPTY: Level = Level { price_ticks: 0, visible_lots: 0, count: 0, head: NIL, tail: NIL };
}

/// Preallocated levels with a free list chained through `head`.
pub(crate) struct LevelPool {
    levels: Vec<Level>,
    free_head: Slot,
    live: u32,
}

impl LevelPool {
    pub fn with_capacity(capacity: u32) -> Self {
        let mut levels = crate::hugepage::filled_vec(capacity as usize, Level::EMPTY);
        for (i, l) in levels.iter_mut().enumerate() {
            l.head = if i + 1 < capacity as usize { i as Slot + 1 } else { NIL };
        }
        LevelPool { levels, free_head: if capacity > 0 { 0 } else { NIL }, live: 0 }
    }

    pub fn capacity(&self) -> u32 {
        self.levels.len() as u32
    }

    pub fn has_free(&self) -> bool {
        self.free_head != NIL
    }

    pub fn alloc(&mut self, price_ticks: i64) -> Option<Slot> {
        let slot = self.free_head;
        if slot == NIL {
            return None;
        }
        self.free_head = self.levels[slot as usize].head;
        self.levels[slot as usize] = Level { price_ticks, ..Level::EMPTY };
        self.live += 1;
        Some(slot)
    }

    pub fn free(&mut self, slot: Slot) {
        let l = &mut self.levels[slot as usize];
        assert!(l.count == 0 && l.visible_lots == 0, "freeing a non-empty level");
        l.head = self.free_head;
        self.free_head = slot;
        self.live -= 1;
    }

    /// Starts loading the level in `slot` (a no-op for `NIL`).
    #[inline]
    pub fn prefetch(&self, slot: Slot) {
        if let Some(l) = self.levels.get(slot as usize) {
            crate::prefetch::prefetch(l);
        }
    }

    #[inline]
    pub fn get(&self, slot: Slot) -> &Level {
        &self.levels[slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: Slot) -> &mut Level {
        &mut self.levels[slot as usize]
    }

    /// Appends `order` at the back of `level`'s queue.
    pub fn push_back(&mut self, level: Slot, orders: &mut OrderPool, order: Slot) {
        let l = &mut self.levels[level as usize];
        let o = orders.get_mut(order);
        o.level = level;
        o.next = NIL;
        o.prev = l.tail;
        l.visible_lots += o.visible_lots;
        l.count += 1;
        if l.tail == NIL {
            l.head = order;
        } else {
            let tail = l.tail;
            orders.get_mut(tail).next = order;
        }
        l.tail = order;
    }

    /// Removes `order` from its level's queue. Returns the level and whether it is now empty.
    pub fn unlink(&mut self, orders: &mut OrderPool, order: Slot) -> (Slot, bool) {
        let (level, prev, next, visible) = {
            let o = orders.get_mut(order);
            let r = (o.level, o.prev, o.next, o.visible_lots);
            o.level = NIL;
            o.prev = NIL;
            o.next = NIL;
            r
        };
        debug_assert!(level != NIL, "unlinking an order that rests nowhere");
        if prev == NIL {
            self.levels[level as usize].head = next;
        } else {
            orders.get_mut(prev).next = next;
        }
        if next == NIL {
            self.levels[level as usize].tail = prev;
        } else {
            orders.get_mut(next).prev = prev;
        }
        let l = &mut self.levels[level as usize];
        l.visible_lots -= visible;
        l.count -= 1;
        (level, l.count == 0)
    }
}

//! The orders the feed shows, by engine order id: the translator's one lookup per book event.
//!
//! Engine order ids are the engine's own counter, so, as the engine's id index does, a
//! direct-mapped array on the id's low bits finds almost every order with one read, and a
//! small map takes the orders whose array entry an older live order still holds. Orders that
//! arrive together sit together, so the adds of a burst and the cancels and executions of
//! recent orders touch a few cache lines instead of one random line of a large hash table each
//! (the hash map this replaces was the feed thread's main cost in profiles: `bench/RESULTS.md`).
//!
//! The array is reserved at its full size at start and filled as the ids reach further into it
//! (the pages are touched on first use, never all at start). Removal empties the entry: no
//! tombstones, no clean-up. A bitmap of the occupied entries (one bit each) lets a snapshot or a
//! session's opening visit only the orders shown, not every entry of the array.

use crate::feed::translate::LiveOrder;
use crate::feed::{MAX_LIVE_DIRECT, MIN_LIVE_DIRECT};
use crate::stage::publisher::IdMap;

/// An array entry's key when it holds no order (engine ids never reach it).
const EMPTY: u64 = u64::MAX;

/// One array entry.
#[derive(Clone, Copy)]
struct Entry {
    key: u64,
    order: LiveOrder,
}

/// Live orders by engine order id.
pub(crate) struct LiveOrders {
    /// Direct-mapped on `id & mask`; grows (within its reserved capacity) as ids reach further.
    direct: Vec<Entry>,
    mask: u64,
    /// One bit per array entry, set while it holds an order.
    occupied: Vec<u64>,
    /// Orders whose array entry is taken by another live order.
    overflow: IdMap<u64, LiveOrder>,
    len: usize,
}

impl LiveOrders {
    /// Room for `max_orders` live orders: an array of the next power of two (within
    /// [`MIN_LIVE_DIRECT`]..=[`MAX_LIVE_DIRECT`]) and an overflow map of a sixteenth of it, so
    /// the steady state does not allocate.
    pub(crate) fn with_capacity(max_orders: usize) -> Self {
        let size = max_orders.next_power_of_two().clamp(MIN_LIVE_DIRECT, MAX_LIVE_DIRECT);
        let mut overflow = IdMap::default();
        overflow.reserve(size / 16);
        LiveOrders {
            direct: Vec::with_capacity(size),
            mask: size as u64 - 1,
            occupied: vec![0; size.div_ceil(64)],
            overflow,
            len: 0,
        }
    }

    fn index(&self, id: u64) -> usize {
        (id & self.mask) as usize
    }

    /// The order `id`, if shown.
    pub(crate) fn get(&self, id: u64) -> Option<&LiveOrder> {
        match self.direct.get(self.index(id)) {
            Some(e) if e.key == id && id != EMPTY => Some(&e.order),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get(&id),
        }
    }

    /// The order `id`, to change, if shown.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut LiveOrder> {
        let i = self.index(id);
        match self.direct.get_mut(i) {
            Some(e) if e.key == id && id != EMPTY => Some(&mut e.order),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.get_mut(&id),
        }
    }

    /// Shows `order` as `id` (replacing what `id` showed).
    pub(crate) fn insert(&mut self, id: u64, order: LiveOrder) {
        if let Some(o) = self.get_mut(id) {
            *o = order;
            return;
        }
        self.len += 1;
        let i = self.index(id);
        if i >= self.direct.len() {
            // Within the reserved capacity: no reallocation, only the new entries written.
            self.direct.resize(i + 1, Entry { key: EMPTY, order });
        }
        let e = &mut self.direct[i];
        if e.key == EMPTY && id != EMPTY {
            *e = Entry { key: id, order };
            self.occupied[i / 64] |= 1 << (i % 64);
        } else {
            self.overflow.insert(id, order);
        }
    }

    /// Stops showing `id`; what it showed.
    pub(crate) fn remove(&mut self, id: u64) -> Option<LiveOrder> {
        let i = self.index(id);
        let removed = match self.direct.get_mut(i) {
            Some(e) if e.key == id && id != EMPTY => {
                e.key = EMPTY;
                self.occupied[i / 64] &= !(1 << (i % 64));
                Some(e.order)
            }
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.remove(&id),
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every order shown, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &LiveOrder> {
        let direct = self.occupied.iter().enumerate().filter(|(_, w)| **w != 0).flat_map(move |(at, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = at * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    &self.direct[i].order
                })
            })
        });
        direct.chain(self.overflow.values())
    }

    /// Orders shown.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Side;

    fn order(order_ref: u64) -> LiveOrder {
        LiveOrder::for_tests(order_ref, Side::Buy, 100, 1)
    }

    #[test]
    fn colliding_ids_go_to_the_overflow_and_every_operation_finds_them() {
        let mut live = LiveOrders::with_capacity(1);
        let size = MIN_LIVE_DIRECT as u64;
        // 3, 3 + size and 3 + 2·size share an array entry.
        for id in [3, 3 + size, 3 + 2 * size, 5] {
            live.insert(id, order(id * 10));
        }
        assert_eq!(live.len(), 4);
        assert_eq!(live.get(3 + size).map(|o| o.order_ref), Some((3 + size) * 10));
        assert_eq!(live.remove(3).map(|o| o.order_ref), Some(30));
        assert_eq!(live.get(3), None);
        // The entry is free again, the colliding orders are still found where they are.
        assert_eq!(live.get(3 + 2 * size).map(|o| o.order_ref), Some((3 + 2 * size) * 10));
        live.insert(3 + size, order(7));
        assert_eq!(live.len(), 3, "replacing an order shown does not add one");
        assert_eq!(live.get(3 + size).map(|o| o.order_ref), Some(7));
        live.get_mut(5).expect("shown").visible_lots = 9;
        assert_eq!(live.get(5).map(|o| o.visible_lots), Some(9));
        let mut refs: Vec<u64> = live.values().map(|o| o.order_ref).collect();
        refs.sort_unstable();
        assert_eq!(refs, vec![7, 50, (3 + 2 * size) * 10]);
        for id in [3 + size, 3 + 2 * size, 5] {
            assert!(live.remove(id).is_some());
        }
        assert_eq!((live.len(), live.values().count(), live.remove(5)), (0, 0, None));
    }
}

//! The naive baseline book: `BTreeMap<price, VecDeque<id>>` per side and a std `HashMap` from id
//! to order, the book anyone would write in an afternoon. It is both a benchmark participant
//! (so there is always a comparison) and the reference the workload generators run while they
//! generate, to know which orders are live and how many trades every engine must report.
//!
//! Semantics match sable's for the ops used: price-time priority, trades at the resting price, an
//! amend that moves the price loses priority and matches first if it crosses, a reduce keeps
//! priority.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::ops::{Op, Side};

#[derive(Clone, Copy, Debug)]
struct Resting {
    side: Side,
    price_ticks: i64,
    leaves_lots: u64,
}

/// The naive book.
#[derive(Default, Debug)]
pub struct NaiveBook {
    bids: BTreeMap<i64, VecDeque<u64>>,
    asks: BTreeMap<i64, VecDeque<u64>>,
    orders: HashMap<u64, Resting>,
    trades: u64,
    noops: u64,
}

/// Whether a taker on `side` limited at `limit_ticks` trades with a level at `level_ticks`.
#[inline]
fn crosses(side: Side, limit_ticks: i64, level_ticks: i64) -> bool {
    match side {
        Side::Buy => level_ticks <= limit_ticks,
        Side::Sell => level_ticks >= limit_ticks,
    }
}

impl NaiveBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one op; ids of orders that left the book (filled makers, cancelled or fully
    /// filled resting orders) are appended to `removed`. Returns the trades it made.
    pub fn apply(&mut self, op: &Op, removed: &mut Vec<u64>) -> u32 {
        match *op {
            Op::Add { id, side, price_ticks, qty_lots } => {
                let (left, trades) = self.take(side, price_ticks, qty_lots, removed);
                if left > 0 {
                    self.rest(id, side, price_ticks, left);
                }
                trades
            }
            Op::Ioc { side, price_ticks, qty_lots, .. } => self.take(side, price_ticks, qty_lots, removed).1,
            Op::Cancel { id } => {
                match self.orders.remove(&id) {
                    Some(o) => {
                        self.unlink(id, o);
                        removed.push(id);
                    }
                    None => self.noops += 1,
                }
                0
            }
            Op::Amend { id, price_ticks } => {
                let Some(o) = self.orders.remove(&id) else {
                    self.noops += 1;
                    return 0;
                };
                self.unlink(id, o);
                let (left, trades) = self.take(o.side, price_ticks, o.leaves_lots, removed);
                if left > 0 {
                    self.rest(id, o.side, price_ticks, left);
                } else {
                    removed.push(id);
                }
                trades
            }
            Op::Reduce { id, by_lots, .. } => {
                let Some(o) = self.orders.get_mut(&id) else {
                    self.noops += 1;
                    return 0;
                };
                if o.leaves_lots > by_lots {
                    o.leaves_lots -= by_lots;
                } else {
                    let o = self.orders.remove(&id).expect("just found");
                    self.unlink(id, o);
                    removed.push(id);
                }
                0
            }
        }
    }

    fn rest(&mut self, id: u64, side: Side, price_ticks: i64, leaves_lots: u64) {
        let side_map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        side_map.entry(price_ticks).or_default().push_back(id);
        let old = self.orders.insert(id, Resting { side, price_ticks, leaves_lots });
        assert!(old.is_none(), "order id {id} reused while live");
    }

    fn unlink(&mut self, id: u64, o: Resting) {
        let side_map = match o.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = side_map.get_mut(&o.price_ticks).expect("a live order's level exists");
        let at = queue.iter().position(|&x| x == id).expect("a live order is in its level");
        queue.remove(at);
        if queue.is_empty() {
            side_map.remove(&o.price_ticks);
        }
    }

    /// Matches a taker against the opposite side; returns (quantity left, trades).
    fn take(&mut self, side: Side, limit_ticks: i64, mut qty_lots: u64, removed: &mut Vec<u64>) -> (u64, u32) {
        let mut trades = 0;
        while qty_lots > 0 {
            let entry = match side {
                Side::Buy => self.asks.first_entry(),
                Side::Sell => self.bids.last_entry(),
            };
            let Some(mut level) = entry else { break };
            if !crosses(side, limit_ticks, *level.key()) {
                break;
            }
            let queue = level.get_mut();
            while qty_lots > 0 {
                let Some(&maker) = queue.front() else { break };
                let m = self.orders.get_mut(&maker).expect("queued orders are live");
                let fill = qty_lots.min(m.leaves_lots);
                m.leaves_lots -= fill;
                qty_lots -= fill;
                trades += 1;
                if m.leaves_lots == 0 {
                    self.orders.remove(&maker);
                    queue.pop_front();
                    removed.push(maker);
                }
            }
            if queue.is_empty() {
                level.remove();
            }
        }
        self.trades += trades as u64;
        (qty_lots, trades)
    }

    /// Trades so far.
    pub fn trades(&self) -> u64 {
        self.trades
    }

    /// Cancels, amends and reduces that found no resting order.
    pub fn noops(&self) -> u64 {
        self.noops
    }

    /// Best bid price.
    pub fn best_bid(&self) -> Option<i64> {
        self.bids.last_key_value().map(|(p, _)| *p)
    }

    /// Best ask price.
    pub fn best_ask(&self) -> Option<i64> {
        self.asks.first_key_value().map(|(p, _)| *p)
    }

    /// Open quantity of the first order at the best level a taker on `side` would meet.
    pub fn front_leaves(&self, side: Side) -> Option<u64> {
        let level = match side {
            Side::Buy => self.asks.first_key_value(),
            Side::Sell => self.bids.last_key_value(),
        };
        level.and_then(|(_, q)| q.front()).map(|id| self.orders[id].leaves_lots)
    }

    /// Whether the order rests.
    pub fn contains(&self, id: u64) -> bool {
        self.orders.contains_key(&id)
    }

    /// An order's open quantity (0 if it does not rest).
    pub fn leaves(&self, id: u64) -> u64 {
        self.orders.get(&id).map_or(0, |o| o.leaves_lots)
    }

    /// An order's side and price, if it rests.
    pub fn side_price(&self, id: u64) -> Option<(Side, i64)> {
        self.orders.get(&id).map(|o| (o.side, o.price_ticks))
    }

    /// Resting orders.
    pub fn resting_orders(&self) -> usize {
        self.orders.len()
    }

    /// Price levels on both sides.
    pub fn levels(&self) -> usize {
        self.bids.len() + self.asks.len()
    }

    /// Ids of all resting orders, best level first per side (bids then asks), FIFO in a level.
    pub fn resting_ids(&self) -> Vec<u64> {
        let bids = self.bids.values().rev().flat_map(|q| q.iter().copied());
        let asks = self.asks.values().flat_map(|q| q.iter().copied());
        bids.chain(asks).collect()
    }

    /// Whether a taker of `qty_lots` on `side` limited at `limit_ticks` crosses the book, runs
    /// out of liquidity within its limit, and more opposite liquidity sits beyond the limit.
    pub fn would_trade_through_limit(&self, side: Side, limit_ticks: i64, qty_lots: u64) -> bool {
        let mut need = qty_lots;
        let levels: Box<dyn Iterator<Item = (&i64, &VecDeque<u64>)>> = match side {
            Side::Buy => Box::new(self.asks.iter()),
            Side::Sell => Box::new(self.bids.iter().rev()),
        };
        let mut crossed = false;
        for (&price, queue) in levels {
            if !crosses(side, limit_ticks, price) {
                return crossed;
            }
            crossed = true;
            for id in queue {
                let leaves = self.orders[id].leaves_lots;
                if leaves >= need {
                    return false;
                }
                need -= leaves;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: u64, side: Side, price_ticks: i64, qty_lots: u64) -> Op {
        Op::Add { id, side, price_ticks, qty_lots }
    }

    #[test]
    fn price_time_priority_and_amend_semantics() {
        let mut b = NaiveBook::new();
        let mut gone = Vec::new();
        assert_eq!(b.apply(&add(1, Side::Sell, 101, 10), &mut gone), 0);
        assert_eq!(b.apply(&add(2, Side::Sell, 101, 10), &mut gone), 0);
        assert_eq!(b.apply(&add(3, Side::Sell, 105, 10), &mut gone), 0);
        // A buy at 102 for 15 takes all of 1 and half of 2, never touches 105.
        assert!(!b.would_trade_through_limit(Side::Buy, 102, 15));
        assert!(b.would_trade_through_limit(Side::Buy, 102, 25));
        assert_eq!(b.apply(&add(4, Side::Buy, 102, 15), &mut gone), 2);
        assert_eq!(gone, vec![1]);
        assert_eq!(b.leaves(2), 5);
        assert!(!b.contains(4));
        // Moving 3 down to 101 puts it behind 2.
        assert_eq!(b.apply(&Op::Amend { id: 3, price_ticks: 101 }, &mut gone), 0);
        assert_eq!(b.resting_ids(), vec![2, 3]);
        // An IOC never rests.
        assert_eq!(b.apply(&Op::Ioc { id: 5, side: Side::Buy, price_ticks: 101, qty_lots: 100 }, &mut gone), 2);
        assert_eq!(b.resting_orders(), 0);
        assert_eq!(b.levels(), 0);
        // Reduce keeps priority and removes at zero.
        b.apply(&add(6, Side::Buy, 99, 10), &mut gone);
        b.apply(&add(7, Side::Buy, 99, 10), &mut gone);
        b.apply(&Op::Reduce { id: 6, by_lots: 4, leaves_after: 6 }, &mut gone);
        assert_eq!(b.resting_ids(), vec![6, 7]);
        b.apply(&Op::Reduce { id: 6, by_lots: 40, leaves_after: 0 }, &mut gone);
        assert_eq!(b.resting_ids(), vec![7]);
        assert_eq!(b.trades(), 4);
    }
}

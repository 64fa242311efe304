//! Builds a workload op by op while running the reference book, so generators can ask which
//! orders are live and the workload carries the trade count every engine must reproduce.

use crate::naive::NaiveBook;
use crate::ops::{Op, Reference, Segment, Side, Workload};

const ABSENT: u32 = u32::MAX;

/// Live order ids with O(1) insert, remove and uniform pick.
#[derive(Default, Debug)]
pub struct LiveSet {
    ids: Vec<u64>,
    /// Position of each id in `ids`, `ABSENT` when not live.
    pos: Vec<u32>,
}

impl LiveSet {
    fn insert(&mut self, id: u64) {
        let i = id as usize;
        if i >= self.pos.len() {
            self.pos.resize((i + 1).max(self.pos.len() * 2), ABSENT);
        }
        if self.pos[i] == ABSENT {
            self.pos[i] = self.ids.len() as u32;
            self.ids.push(id);
        }
    }

    fn remove(&mut self, id: u64) {
        let i = id as usize;
        let Some(&p) = self.pos.get(i) else { return };
        if p == ABSENT {
            return;
        }
        let last = *self.ids.last().expect("non-empty when an id is present");
        self.ids.swap_remove(p as usize);
        if last != id {
            self.pos[last as usize] = p;
        }
        self.pos[i] = ABSENT;
    }

    /// Number of live orders.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no order is live.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `i`-th live id (arbitrary but deterministic order).
    pub fn get(&self, i: usize) -> u64 {
        self.ids[i]
    }
}

/// Accumulates segments while running the reference book.
pub struct StreamBuilder {
    book: NaiveBook,
    live: LiveSet,
    segments: Vec<Segment>,
    reference: Reference,
    removed: Vec<u64>,
    next_id: u64,
}

impl Default for StreamBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamBuilder {
    /// An empty stream over an empty book.
    pub fn new() -> Self {
        StreamBuilder {
            book: NaiveBook::new(),
            live: LiveSet::default(),
            segments: Vec::new(),
            reference: Reference::default(),
            removed: Vec::new(),
            next_id: 0,
        }
    }

    /// Starts a new segment; following ops go into it.
    pub fn begin(&mut self, timed: bool, capacity: usize) {
        self.segments.push(Segment { ops: Vec::with_capacity(capacity), timed });
    }

    /// A fresh order id.
    pub fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The reference book (read-only).
    pub fn book(&self) -> &NaiveBook {
        &self.book
    }

    /// Live order ids.
    pub fn live(&self) -> &LiveSet {
        &self.live
    }

    /// Appends `op` to the current segment and applies it to the reference book. Returns the
    /// trades it made.
    pub fn push(&mut self, op: Op) -> u32 {
        let seg = self.segments.last_mut().expect("begin() a segment first");
        let timed = seg.timed;
        seg.ops.push(op);
        let aggressive = match op {
            Op::Add { side, price_ticks, qty_lots, .. } | Op::Ioc { side, price_ticks, qty_lots, .. } => {
                Some((side, price_ticks, qty_lots))
            }
            Op::Amend { id, price_ticks } => {
                self.book.side_price(id).map(|(side, _)| (side, price_ticks, self.book.leaves(id)))
            }
            _ => None,
        };
        if let Some((side, price, qty)) = aggressive
            && self.book.would_trade_through_limit(side, price, qty)
        {
            self.reference.through_limit_orders += 1;
        }
        let noop = match op {
            Op::Cancel { id } | Op::Amend { id, .. } | Op::Reduce { id, .. } => !self.book.contains(id),
            _ => false,
        };
        self.removed.clear();
        let trades = self.book.apply(&op, &mut self.removed);
        for &id in &self.removed {
            self.live.remove(id);
        }
        if let Op::Add { id, .. } | Op::Amend { id, .. } = op
            && self.book.contains(id)
        {
            self.live.insert(id);
        }
        let r = &mut self.reference;
        r.trades_total += trades as u64;
        if timed {
            r.trades_timed += trades as u64;
            r.trading_commands_timed += (trades > 0) as u64;
            r.noop_commands_timed += noop as u64;
            r.resting_orders_sum += self.book.resting_orders() as u128;
            r.levels_sum += self.book.levels() as u128;
            r.samples += 1;
            r.kinds_timed[match op {
                Op::Add { .. } => 0,
                Op::Ioc { .. } => 1,
                Op::Cancel { .. } => 2,
                Op::Amend { .. } => 3,
                Op::Reduce { .. } => 4,
            }] += 1;
        }
        trades
    }

    /// A reduce op annotated with the open quantity the reference book will have afterwards.
    pub fn reduce_op(&self, id: u64, by_lots: u64) -> Op {
        Op::Reduce { id, by_lots, leaves_after: self.book.leaves(id).saturating_sub(by_lots) }
    }

    /// Cancels every resting order (best levels first) in an untimed segment, leaving an empty
    /// book: the reset between loops of a replayed stream.
    pub fn drain(&mut self) {
        let ids = self.book.resting_ids();
        self.begin(false, ids.len());
        for id in ids {
            self.push(Op::Cancel { id });
        }
    }

    /// Finishes the workload.
    pub fn finish(mut self, name: &'static str, seed: u64, accounts: u32, notes: Vec<String>) -> Workload {
        self.reference.resting_orders_end = self.book.resting_orders();
        Workload { name, seed, segments: self.segments, ids: self.next_id, accounts, reference: self.reference, notes }
    }

    /// Mid price of the reference book, falling back to `default` on an empty book.
    pub fn mid(&self, default: i64) -> i64 {
        match (self.book.best_bid(), self.book.best_ask()) {
            (Some(b), Some(a)) => (b + a).div_euclid(2),
            (Some(b), None) => b + 1,
            (None, Some(a)) => a - 1,
            (None, None) => default,
        }
    }

    /// Open quantity of the first order a taker on `side` would meet.
    pub fn front_leaves(&self, side: Side) -> Option<u64> {
        self.book.front_leaves(side)
    }

    /// Best opposite price for a taker on `side`.
    pub fn best_opposite(&self, side: Side) -> Option<i64> {
        match side {
            Side::Buy => self.book.best_ask(),
            Side::Sell => self.book.best_bid(),
        }
    }
}

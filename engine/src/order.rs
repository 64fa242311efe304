//! The order pool: fixed-size records preallocated at start-up, linked into price levels by
//! index. A free slot is chained through `next`.
//!
//! The record is kept at 112 bytes (asserted below): side, type, time in force, post-only and
//! "pending stop" are packed into one flags byte, the instrument is a `u16` and the cumulative
//! cost is two `u64` halves so that no field forces 16-byte alignment.

use crate::account::StpMode;
use crate::command::{OrdType, Side, TimeInForce};
use crate::event::OrderView;
use crate::ids::{AccountId, ClOrdId, InstrumentId, OrderId};

/// Index of a slot in a pool; `NIL` marks "none".
pub(crate) type Slot = u32;
/// The null slot index.
pub(crate) const NIL: Slot = u32::MAX;

const SIDE_SELL: u8 = 1 << 0;
const TYPE_SHIFT: u8 = 1; // 2 bits
const TIF_SHIFT: u8 = 3; // 3 bits
const POST_ONLY: u8 = 1 << 6;
const PENDING_STOP: u8 = 1 << 7;

/// One order. Hot fields first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub id: u64,
    pub price_ticks: i64,
    pub leaves_lots: u64,
    /// Quantity of the current visible slice still open (== leaves for plain orders).
    pub visible_lots: u64,
    pub prev: Slot,
    pub next: Slot,
    /// The price level (book or stop book) holding the order, `NIL` while it is not resting.
    pub level: Slot,
    pub account: u32,
    pub qty_lots: u64,
    pub display_lots: u64,
    pub stop_ticks: i64,
    cost_lo: u64,
    cost_hi: i64,
    pub cl_ord_id: ClOrdId,
    pub instrument: u16,
    flags: u8,
    stp: u8,
}

const _: () = assert!(std::mem::size_of::<Order>() == 112, "order record must stay 112 bytes");

/// Fields of a new order, before it gets a slot.
pub(crate) struct OrderInit {
    pub id: u64,
    pub account: AccountId,
    pub cl_ord_id: ClOrdId,
    pub instrument: u16,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: TimeInForce,
    pub price_ticks: i64,
    pub stop_ticks: i64,
    pub qty_lots: u64,
    pub display_lots: u64,
    pub post_only: bool,
    pub stp: StpMode,
}

impl Order {
    const EMPTY: Order = Order {
        id: 0,
        price_ticks: 0,
        leaves_lots: 0,
        visible_lots: 0,
        prev: NIL,
        next: NIL,
        level: NIL,
        account: 0,
        qty_lots: 0,
        display_lots: 0,
        stop_ticks: 0,
        cost_lo: 0,
        cost_hi: 0,
        cl_ord_id: ClOrdId([0; crate::ids::CL_ORD_ID_MAX_LEN]),
        instrument: 0,
        flags: 0,
        stp: 0,
    };

    fn from_init(o: &OrderInit) -> Order {
        let mut flags = ((o.ord_type as u8) << TYPE_SHIFT) | ((o.tif as u8) << TIF_SHIFT);
        if o.side == Side::Sell {
            flags |= SIDE_SELL;
        }
        if o.post_only {
            flags |= POST_ONLY;
        }
        Order {
            id: o.id,
            price_ticks: o.price_ticks,
            leaves_lots: o.qty_lots,
            visible_lots: visible_slice(o.display_lots, o.qty_lots),
            account: o.account.0,
            qty_lots: o.qty_lots,
            display_lots: o.display_lots,
            stop_ticks: o.stop_ticks,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            flags,
            stp: o.stp as u8,
            ..Order::EMPTY
        }
    }

    pub fn side(&self) -> Side {
        if self.flags & SIDE_SELL != 0 { Side::Sell } else { Side::Buy }
    }

    pub fn ord_type(&self) -> OrdType {
        match (self.flags >> TYPE_SHIFT) & 0b11 {
            0 => OrdType::Limit,
            1 => OrdType::Market,
            2 => OrdType::Stop,
            _ => OrdType::StopLimit,
        }
    }

    pub fn tif(&self) -> TimeInForce {
        match (self.flags >> TIF_SHIFT) & 0b111 {
            0 => TimeInForce::Gtc,
            1 => TimeInForce::Day,
            2 => TimeInForce::Ioc,
            3 => TimeInForce::Fok,
            _ => TimeInForce::Gtd,
        }
    }

    pub fn post_only(&self) -> bool {
        self.flags & POST_ONLY != 0
    }

    pub fn pending_stop(&self) -> bool {
        self.flags & PENDING_STOP != 0
    }

    pub fn set_pending_stop(&mut self, pending: bool) {
        if pending {
            self.flags |= PENDING_STOP;
        } else {
            self.flags &= !PENDING_STOP;
        }
    }

    pub fn stp(&self) -> StpMode {
        match self.stp {
            0 => StpMode::Allow,
            1 => StpMode::CancelNewest,
            2 => StpMode::CancelOldest,
            3 => StpMode::CancelBoth,
            _ => StpMode::DecrementAndCancel,
        }
    }

    pub fn cum_lots(&self) -> u64 {
        self.qty_lots - self.leaves_lots
    }

    pub fn cum_cost(&self) -> i128 {
        ((self.cost_hi as i128) << 64) | self.cost_lo as i128
    }

    pub fn add_cost(&mut self, price_ticks: i64, qty_lots: u64) {
        let total = self.cum_cost() + price_ticks as i128 * qty_lots as i128;
        self.cost_lo = total as u64;
        self.cost_hi = (total >> 64) as i64;
    }

    /// Whether a triggered or plain order of this type rests after matching.
    pub fn may_rest(&self) -> bool {
        may_rest(self.ord_type(), self.tif())
    }

    /// Whether the order is in the id and client indexes (see [`indexed`]).
    pub fn indexed(&self) -> bool {
        indexed(self.ord_type(), self.tif())
    }

    /// Market and stop-market orders: they match without a limit price of their own (only the
    /// band bounds them) and never rest.
    pub fn is_marketable_type(&self) -> bool {
        matches!(self.ord_type(), OrdType::Market | OrdType::Stop)
    }

    pub fn view(&self) -> OrderView {
        OrderView {
            id: OrderId(self.id),
            account: AccountId(self.account),
            cl_ord_id: self.cl_ord_id,
            instrument: InstrumentId(self.instrument as u32),
            side: self.side(),
            ord_type: self.ord_type(),
            tif: self.tif(),
            price_ticks: self.price_ticks,
            stop_ticks: self.stop_ticks,
            qty_lots: self.qty_lots,
            leaves_lots: self.leaves_lots,
            cum_lots: self.cum_lots(),
            cum_cost: self.cum_cost(),
            display_lots: self.display_lots,
        }
    }

    /// Restores an order from its saved view and the flags the view does not carry.
    pub fn from_view(v: &OrderView, visible_lots: u64, post_only: bool, stp: StpMode) -> Order {
        let mut o = Order::from_init(&OrderInit {
            id: v.id.0,
            account: v.account,
            cl_ord_id: v.cl_ord_id,
            instrument: v.instrument.0 as u16,
            side: v.side,
            ord_type: v.ord_type,
            tif: v.tif,
            price_ticks: v.price_ticks,
            stop_ticks: v.stop_ticks,
            qty_lots: v.qty_lots,
            display_lots: v.display_lots,
            post_only,
            stp,
        });
        o.leaves_lots = v.leaves_lots;
        o.visible_lots = visible_lots;
        o.cost_lo = v.cum_cost as u64;
        o.cost_hi = (v.cum_cost >> 64) as i64;
        o
    }
}

/// Whether an order of this type and time in force rests after matching.
pub(crate) fn may_rest(ord_type: OrdType, tif: TimeInForce) -> bool {
    matches!(ord_type, OrdType::Limit | OrdType::StopLimit)
        && matches!(tif, TimeInForce::Gtc | TimeInForce::Day | TimeInForce::Gtd)
}

/// Whether orders of this type and time in force enter the id and client indexes: those that can
/// outlive the command that entered them (resting, or waiting as a stop). An IOC, FOK or market
/// order is done before its command ends, and nothing looks an order up in the middle of a
/// command (the engine follows its own slots), so indexing it would be an insert and a removal
/// for nothing. Its client id is still checked against the live orders'.
pub(crate) fn indexed(ord_type: OrdType, tif: TimeInForce) -> bool {
    may_rest(ord_type, tif) || matches!(ord_type, OrdType::Stop | OrdType::StopLimit)
}

/// Size of the visible slice of an order with `display` peak and `leaves` open.
pub(crate) fn visible_slice(display_lots: u64, leaves_lots: u64) -> u64 {
    if display_lots == 0 { leaves_lots } else { display_lots.min(leaves_lots) }
}

/// Preallocated order records with a free list.
pub(crate) struct OrderPool {
    slots: Vec<Order>,
    free_head: Slot,
    live: u32,
}

impl OrderPool {
    pub fn with_capacity(capacity: u32) -> Self {
        let mut slots = crate::hugepage::filled_vec(capacity as usize, Order::EMPTY);
        for (i, s) in slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity as usize { i as Slot + 1 } else { NIL };
        }
        OrderPool { slots, free_head: if capacity > 0 { 0 } else { NIL }, live: 0 }
    }

    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn live(&self) -> u32 {
        self.live
    }

    /// Takes a free slot for a new order, or `None` when the pool is full.
    pub fn alloc(&mut self, init: &OrderInit) -> Option<Slot> {
        self.place(Order::from_init(init))
    }

    /// Takes a free slot for `order` (new or restored), or `None` when the pool is full.
    pub fn place(&mut self, order: Order) -> Option<Slot> {
        let slot = self.free_head;
        if slot == NIL {
            return None;
        }
        self.free_head = self.slots[slot as usize].next;
        self.slots[slot as usize] = order;
        self.live += 1;
        Some(slot)
    }

    pub fn free(&mut self, slot: Slot) {
        let o = &mut self.slots[slot as usize];
        assert!(o.level == NIL, "freeing an order still linked in a level");
        o.id = 0;
        o.next = self.free_head;
        self.free_head = slot;
        self.live -= 1;
    }

    /// Starts loading the queue links of the order in `slot` (a no-op for `NIL`).
    #[inline]
    pub fn prefetch_links(&self, slot: Slot) {
        if let Some(o) = self.slots.get(slot as usize) {
            crate::prefetch::prefetch(&o.prev);
        }
    }

    /// Starts loading the hot part of the order in `slot` (its id through its queue links,
    /// which may straddle two lines).
    #[inline]
    pub fn prefetch_record(&self, slot: Slot) {
        if let Some(o) = self.slots.get(slot as usize) {
            crate::prefetch::prefetch(&o.id);
            crate::prefetch::prefetch(&o.prev);
        }
    }

    #[inline]
    pub fn get(&self, slot: Slot) -> &Order {
        &self.slots[slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: Slot) -> &mut Order {
        &mut self.slots[slot as usize]
    }
}

//! Read-only views of the engine for tools, tests and market-data snapshots. Not used by
//! `apply`; some allocate.

use crate::account::AccountSpec;
use crate::command::Side;
use crate::engine::Engine;
use crate::event::OrderView;
use crate::ids::{AccountId, ClOrdId, InstrumentId, OrderId};
use crate::instrument::InstrumentSpec;
use crate::order::{NIL, Order};

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelView {
    /// Price in ticks.
    pub price_ticks: i64,
    /// Visible quantity in lots.
    pub qty_lots: u64,
    /// Number of orders.
    pub orders: u32,
}

/// Memory the engine's preallocated tables take, for capacity planning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryReport {
    /// Bytes of one order record.
    pub order_record_bytes: usize,
    /// Bytes of the two order indexes per order slot.
    pub index_bytes_per_order: f64,
    /// Bytes of one price level record (pool) plus its ladder entry.
    pub level_bytes: usize,
    /// Total preallocated bytes of orders, indexes and levels.
    pub total_bytes: usize,
}

impl Engine {
    /// Aggregated levels of one side, best first (empty for an unknown instrument).
    pub fn levels(&self, instrument: InstrumentId, side: Side) -> Vec<LevelView> {
        let Some(Some(book)) = self.books.get(instrument.0 as usize) else { return Vec::new() };
        book.ladder(side, false)
            .iter_best_first(&self.levels)
            .map(|e| {
                let l = self.levels.get(e.level);
                LevelView { price_ticks: l.price_ticks, qty_lots: l.visible_lots, orders: l.count }
            })
            .collect()
    }

    /// The live order with this id.
    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.index.find_id(&self.orders, id.0).map(|s| self.orders.get(s).view())
    }

    /// The account's live order with this client id.
    pub fn order_by_client(&self, account: AccountId, cl_ord_id: &ClOrdId) -> Option<OrderView> {
        self.index.find_client(&self.orders, account.0, cl_ord_id).map(|s| self.orders.get(s).view())
    }

    /// Orders of one side in priority order (book, or the stop ladder), for market-data
    /// snapshots and tests.
    pub fn orders_in_priority(&self, instrument: InstrumentId, side: Side, stops: bool) -> Vec<OrderView> {
        let mut v = Vec::new();
        self.for_each_order(instrument, side, stops, |o| v.push(o.view()));
        v
    }

    pub(crate) fn for_each_order(&self, instrument: InstrumentId, side: Side, stops: bool, mut f: impl FnMut(&Order)) {
        let Some(Some(book)) = self.books.get(instrument.0 as usize) else { return };
        for e in book.ladder(side, stops).iter_best_first(&self.levels) {
            let mut cur = self.levels.get(e.level).head;
            while cur != NIL {
                let o = self.orders.get(cur);
                f(o);
                cur = o.next;
            }
        }
    }

    /// An instrument's spec, including its current trading status.
    pub fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.books.get(id.0 as usize)?.as_ref().map(|b| &b.spec)
    }

    /// Ids of all instruments, ascending.
    pub fn instrument_ids(&self) -> impl Iterator<Item = InstrumentId> + '_ {
        self.books.iter().enumerate().filter(|(_, b)| b.is_some()).map(|(i, _)| InstrumentId(i as u32))
    }

    /// Last trade price of an instrument.
    pub fn last_trade_ticks(&self, id: InstrumentId) -> Option<i64> {
        self.books.get(id.0 as usize)?.as_ref()?.last_trade_ticks
    }

    /// The account's specification (stp group, default mode, risk limits), if it exists.
    pub fn account_spec(&self, id: AccountId) -> Option<&AccountSpec> {
        self.accounts.get(id.0 as usize)?.as_ref().map(|a| &a.spec)
    }

    /// Number of live orders (resting and pending stops).
    pub fn live_orders(&self) -> u32 {
        self.orders.live()
    }

    /// Preallocated memory by table.
    pub fn memory_report(&self) -> MemoryReport {
        let order_record_bytes = std::mem::size_of::<Order>();
        let index_bytes = self.index.allocated_bytes();
        let level_bytes =
            std::mem::size_of::<crate::price_level::Level>() + std::mem::size_of::<crate::ladder::Entry>();
        let slots = self.orders.capacity() as usize;
        MemoryReport {
            order_record_bytes,
            index_bytes_per_order: index_bytes as f64 / slots as f64,
            level_bytes,
            total_bytes: order_record_bytes * slots + index_bytes + level_bytes * self.levels.capacity() as usize,
        }
    }
}

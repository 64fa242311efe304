//! orderbook-rs 0.15 (joaquinbejar/OrderBook-rs, a concurrent book on lock-free skip lists and
//! `DashMap`s) behind the benchmark interface. It has native GTC/IOC limits, `UpdatePrice`,
//! `UpdateQuantity` and cancel. Its clock is the deterministic `StubClock` (an atomic counter)
//! so no wall-clock read lands in the measurement; trades are counted by a trade listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orderbook_rs::{OrderBook, StubClock, TradeResult};
use pricelevel::{Id, OrderUpdate, Price, Quantity, Side as OSide, TimeInForce};

use super::{Adapter, Book};
use crate::ops::{Op, Side};

/// orderbook-rs's native calls, one per neutral op.
#[derive(Clone, Copy, Debug)]
pub enum ObCmd {
    /// `add_limit_order`.
    Add {
        /// Order id (`Id::Sequential`).
        id: u64,
        /// Price.
        price: u128,
        /// Quantity.
        qty: u64,
        /// Side.
        side: OSide,
        /// GTC or IOC.
        tif: TimeInForce,
    },
    /// `cancel_order`.
    Cancel {
        /// Order id.
        id: u64,
    },
    /// `update_order(UpdatePrice)`.
    UpdatePrice {
        /// Order id.
        id: u64,
        /// New price.
        price: u128,
    },
    /// `update_order(UpdateQuantity)`.
    UpdateQty {
        /// Order id.
        id: u64,
        /// New open quantity.
        qty: u64,
    },
}

/// orderbook-rs's book and counters.
pub struct ObBook {
    book: OrderBook<()>,
    trades: Arc<AtomicU64>,
    rejects: u64,
}

impl Book for ObBook {
    type Cmd = ObCmd;

    #[inline]
    fn apply(&mut self, cmd: &ObCmd) {
        let refused = match *cmd {
            // An IOC remainder comes back as an error after its fills: not a refusal.
            ObCmd::Add { id, price, qty, side, tif } => {
                self.book.add_limit_order(Id::Sequential(id), price, qty, side, tif, None).is_err()
                    && tif != TimeInForce::Ioc
            }
            ObCmd::Cancel { id } => !matches!(self.book.cancel_order(Id::Sequential(id)), Ok(Some(_))),
            ObCmd::UpdatePrice { id, price } => !matches!(
                self.book.update_order(OrderUpdate::UpdatePrice {
                    order_id: Id::Sequential(id),
                    new_price: Price::new(price)
                }),
                Ok(Some(_))
            ),
            ObCmd::UpdateQty { id, qty } => !matches!(
                self.book.update_order(OrderUpdate::UpdateQuantity {
                    order_id: Id::Sequential(id),
                    new_quantity: Quantity::new(qty)
                }),
                Ok(Some(_))
            ),
        };
        self.rejects += refused as u64;
    }

    fn trades(&self) -> u64 {
        self.trades.load(Ordering::Relaxed)
    }

    fn rejects(&self) -> u64 {
        self.rejects
    }
}

/// The orderbook-rs adapter: neutral ids are used as `Id::Sequential` directly.
#[derive(Default)]
pub struct ObAdapter;

fn price(ticks: i64) -> u128 {
    u128::try_from(ticks).expect("positive prices")
}

impl Adapter for ObAdapter {
    type Book = ObBook;
    const NAME: &'static str = "orderbook-rs";

    fn translate(&mut self, op: &Op) -> ObCmd {
        let side = |s: Side| match s {
            Side::Buy => OSide::Buy,
            Side::Sell => OSide::Sell,
        };
        match *op {
            Op::Add { id, side: s, price_ticks, qty_lots } => {
                ObCmd::Add { id, price: price(price_ticks), qty: qty_lots, side: side(s), tif: TimeInForce::Gtc }
            }
            Op::Ioc { id, side: s, price_ticks, qty_lots } => {
                ObCmd::Add { id, price: price(price_ticks), qty: qty_lots, side: side(s), tif: TimeInForce::Ioc }
            }
            Op::Cancel { id } | Op::Reduce { id, leaves_after: 0, .. } => ObCmd::Cancel { id },
            Op::Amend { id, price_ticks } => ObCmd::UpdatePrice { id, price: price(price_ticks) },
            Op::Reduce { id, leaves_after, .. } => ObCmd::UpdateQty { id, qty: leaves_after },
        }
    }

    fn new_book(&self) -> ObBook {
        let mut book = OrderBook::<()>::with_clock("BENCH", Arc::new(StubClock::new()));
        let trades = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&trades);
        book.set_trade_listener(Arc::new(move |t: &TradeResult| {
            counter.fetch_add(t.match_result.trades().len() as u64, Ordering::Relaxed);
        }));
        ObBook { book, trades, rejects: 0 }
    }

    fn describe(&self) -> String {
        "orderbook-rs 0.15.3: add_limit_order GTC/IOC; cancel = cancel_order; amend = native \
         update_order(UpdatePrice) (cancel + re-add inside the crate); reduce = update_order(UpdateQuantity) \
         (absolute quantity from the reference book) or cancel at zero; StubClock; trades counted by a trade \
         listener"
            .into()
    }
}

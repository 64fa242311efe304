//! matchcore 0.4 (a single-threaded, deterministic price-time book) behind the benchmark
//! interface. It has native GTC/IOC limits, amend (price or quantity) and cancel.
//!
//! Known divergence: in matchcore 0.4.0 a limit order that crosses the book is matched with no
//! price limit (`submit_crossable_order` and the amend path call `match_order(.., None, ..)`), so
//! an aggressive order with more quantity than the book holds within its limit keeps filling
//! beyond it. Workloads count such orders (`through_limit_orders`); where there are any, its trade
//! count differs from sable's and the reference book's.

use matchcore::{
    AmendCmd, AmendPatch, CancelCmd, Command, CommandKind, CommandMeta, CommandOutcome, CommandReport, LimitOrder,
    LimitOrderPatch, NewOrder, OrderBook, OrderFlags, OrderId, OrderKind, Price, Quantity, QuantityPolicy,
    SequenceNumber, Side as MSide, SubmitCmd, TimeInForce, Timestamp,
};

use super::{Adapter, Book};
use crate::ops::{Op, Side};

/// matchcore's book and counters.
pub struct MatchcoreBook {
    book: OrderBook,
    trades: u64,
    rejects: u64,
}

impl Book for MatchcoreBook {
    type Cmd = Command;

    #[inline]
    fn apply(&mut self, cmd: &Command) {
        match self.book.execute(cmd) {
            CommandOutcome::Applied(CommandReport::Submit(e) | CommandReport::Amend(e)) => {
                let target = e.target_order().match_result().map_or(0, |m| m.trades().len());
                let triggered: usize =
                    e.triggered_orders().iter().map(|o| o.match_result().map_or(0, |m| m.trades().len())).sum();
                self.trades += (target + triggered) as u64;
            }
            CommandOutcome::Applied(CommandReport::Cancel) => {}
            CommandOutcome::Rejected(_) => self.rejects += 1,
        }
    }

    fn trades(&self) -> u64 {
        self.trades
    }

    fn rejects(&self) -> u64 {
        self.rejects
    }
}

/// The matchcore adapter. matchcore names an order by the sequence number of the command that
/// submitted it, so the adapter keeps neutral id → submit sequence.
pub struct MatchcoreAdapter {
    next_seq: u64,
    order_id: Vec<u64>,
}

const UNKNOWN: u64 = u64::MAX;

impl MatchcoreAdapter {
    /// An adapter for neutral ids `0..ids`.
    pub fn new(ids: u64) -> Self {
        MatchcoreAdapter { next_seq: 0, order_id: vec![UNKNOWN; ids as usize] }
    }

    fn submit(&mut self, id: u64, side: Side, price_ticks: i64, qty_lots: u64, tif: TimeInForce) -> CommandKind {
        self.order_id[id as usize] = self.next_seq;
        let side = match side {
            Side::Buy => MSide::Buy,
            Side::Sell => MSide::Sell,
        };
        CommandKind::Submit(SubmitCmd {
            order: NewOrder::Limit(LimitOrder::new(
                Price(u64::try_from(price_ticks).expect("positive prices")),
                QuantityPolicy::Standard { quantity: Quantity(qty_lots) },
                OrderFlags::new(side, false, tif),
            )),
        })
    }

    fn target(&self, id: u64) -> OrderId {
        OrderId(self.order_id[id as usize])
    }
}

impl Adapter for MatchcoreAdapter {
    type Book = MatchcoreBook;
    const NAME: &'static str = "matchcore";

    fn translate(&mut self, op: &Op) -> Command {
        let kind = match *op {
            Op::Add { id, side, price_ticks, qty_lots } => {
                self.submit(id, side, price_ticks, qty_lots, TimeInForce::Gtc)
            }
            Op::Ioc { id, side, price_ticks, qty_lots } => {
                self.submit(id, side, price_ticks, qty_lots, TimeInForce::Ioc)
            }
            Op::Cancel { id } | Op::Reduce { id, leaves_after: 0, .. } => {
                CommandKind::Cancel(CancelCmd { order_id: self.target(id), order_kind: OrderKind::Limit })
            }
            Op::Amend { id, price_ticks } => CommandKind::Amend(AmendCmd {
                order_id: self.target(id),
                patch: AmendPatch::Limit(
                    LimitOrderPatch::new().with_price(Price(u64::try_from(price_ticks).expect("positive prices"))),
                ),
            }),
            // matchcore amends to an absolute open quantity; a decrease keeps priority.
            Op::Reduce { id, leaves_after, .. } => CommandKind::Amend(AmendCmd {
                order_id: self.target(id),
                patch: AmendPatch::Limit(
                    LimitOrderPatch::new()
                        .with_quantity_policy(QuantityPolicy::Standard { quantity: Quantity(leaves_after) }),
                ),
            }),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        Command { meta: CommandMeta { sequence_number: SequenceNumber(seq), timestamp: Timestamp(seq) }, kind }
    }

    fn new_book(&self) -> MatchcoreBook {
        MatchcoreBook { book: OrderBook::new("BENCH"), trades: 0, rejects: 0 }
    }

    fn describe(&self) -> String {
        "matchcore 0.4.0: Submit Limit GTC/IOC; cancel = Cancel; amend = native Amend (price patch); reduce = \
         native Amend (absolute quantity from the reference book) or Cancel at zero; trades counted from \
         the returned outcome"
            .into()
    }
}

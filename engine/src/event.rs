//! Events: the engine's only output. Everything downstream (execution reports, market data,
//! drop copy) is built from these.

use serde::{Deserialize, Serialize};

use crate::command::{MassCancelTarget, OrdType, Side, TimeInForce};
use crate::ids::{AccountId, ClOrdId, InstrumentId, OrderId, TradeId};
use crate::instrument::TradingStatus;

/// An order's state as reported in events: everything an execution report needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Exchange order id.
    pub id: OrderId,
    /// Owning account.
    pub account: AccountId,
    /// Current client order id.
    pub cl_ord_id: ClOrdId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Order type as entered (a triggered stop keeps `Stop`/`StopLimit`).
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price in ticks (0 for market and stop-market orders).
    pub price_ticks: i64,
    /// Stop price in ticks (0 unless a stop order).
    pub stop_ticks: i64,
    /// Total order quantity in lots.
    pub qty_lots: u64,
    /// Quantity still open in lots (0 once the order is done).
    pub leaves_lots: u64,
    /// Quantity filled so far in lots.
    pub cum_lots: u64,
    /// Sum of price × quantity over all fills, in ticks × lots (average price = this / cum).
    pub cum_cost: i128,
    /// Iceberg display quantity in lots; 0 = fully displayed.
    pub display_lots: u64,
}

/// Why a request was rejected. Stable codes: gateways map them to protocol reject reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u16)]
pub enum RejectReason {
    /// The instrument does not exist.
    UnknownInstrument = 1,
    /// The instrument is halted or closed.
    InstrumentNotOpen = 2,
    /// The account is not configured.
    UnknownAccount = 3,
    /// The client order id is already used by a live order of the account.
    DuplicateClOrdId = 4,
    /// No live order of the account matches the reference.
    UnknownOrder = 5,
    /// Quantity below the instrument's minimum (or zero).
    QtyBelowMin = 6,
    /// Quantity above the instrument's maximum.
    QtyAboveMax = 7,
    /// Limit price outside the price band (stop-limit prices are checked when they trigger).
    PriceOutsideBand = 8,
    /// A market order needs a reference price for its band and there is none.
    NoReferencePrice = 9,
    /// Display quantity larger than the order, or on an order type that cannot rest.
    InvalidDisplayQty = 10,
    /// GTD expiry at or before the command's timestamp.
    ExpireTimeInPast = 11,
    /// Order notional above the instrument's maximum.
    NotionalAboveMax = 12,
    /// Quantity above the account's maximum order quantity.
    AccountMaxOrderQty = 13,
    /// Notional above the account's maximum order notional.
    AccountMaxOrderNotional = 14,
    /// The account already has its maximum number of live orders.
    AccountMaxOpenOrders = 15,
    /// Live buy notional would exceed the account's limit.
    AccountOpenBuyNotional = 16,
    /// Live sell notional would exceed the account's limit.
    AccountOpenSellNotional = 17,
    /// A post-only order would take liquidity.
    WouldTakeLiquidity = 18,
    /// Post-only is only allowed on limit orders that may rest (GTC, DAY, GTD).
    InvalidPostOnly = 19,
    /// The engine's order pool is full.
    OrderCapacity = 20,
    /// The book has no room for another price level.
    LevelCapacity = 21,
    /// The instrument already exists.
    InstrumentExists = 22,
    /// The instrument still has live orders.
    InstrumentHasOrders = 23,
    /// The instrument or account spec is invalid.
    InvalidSpec = 24,
    /// Id outside the engine's configured table size.
    IdOutOfRange = 25,
    /// The order type cannot be replaced (it is not resting).
    NotReplaceable = 26,
    /// The account's kill switch is engaged (an operator action): no new orders until released.
    KillSwitch = 27,
    /// More sessions' kill switches engaged at once than [`crate::limits::MAX_KILLED_SESSIONS`].
    TooManyKillSwitches = 28,
}

/// Which request a [`Reject`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    /// `NewOrder`.
    NewOrder,
    /// `Cancel`.
    Cancel,
    /// `Replace`.
    Replace,
    /// `MassCancel`.
    MassCancel,
    /// `OrderStatus`.
    OrderStatus,
    /// An administrative command (instruments, accounts).
    Admin,
}

/// A rejected request. Nothing changed in the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// What was rejected.
    pub request: RequestKind,
    /// Requesting account (0 for admin commands).
    pub account: AccountId,
    /// The request's client id.
    pub cl_ord_id: ClOrdId,
    /// Instrument named by the request, if any.
    pub instrument: InstrumentId,
    /// The existing order the request referred to, when it was found.
    pub order_id: Option<OrderId>,
    /// That order's filled quantity in lots (0 when none was found): with `order_id`, the
    /// order's status after the reject (live: new or partially filled), which FIX's
    /// OrderCancelReject reports.
    pub order_cum_lots: u64,
    /// Why.
    pub reason: RejectReason,
}

/// Why an order (or part of it) was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u16)]
pub enum CancelReason {
    /// The owner asked.
    Requested = 1,
    /// A mass cancel covered it.
    MassCancel = 2,
    /// IOC remainder.
    IocRemainder = 3,
    /// FOK could not fill completely; nothing traded.
    FokUnfilled = 4,
    /// Market order remainder: no more liquidity within the price band.
    MarketRemainder = 5,
    /// Self-trade prevention.
    SelfTrade = 6,
    /// A replace reduced the quantity to or below what had already filled.
    ReplacedToFilled = 7,
    /// A triggered stop-limit's price is outside the band at trigger time.
    PriceOutsideBand = 8,
    /// A triggered stop could not get a book slot (level capacity).
    LevelCapacity = 9,
    /// An operator's mass cancel or kill switch (the admin port).
    Operator = 10,
}

/// Why an order expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireReason {
    /// `EndOfDay` for a DAY order.
    Day,
    /// GTD expiry time reached.
    Gtd,
}

/// One side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// Order id.
    pub order_id: OrderId,
    /// Owning account.
    pub account: AccountId,
    /// The order's client id.
    pub cl_ord_id: ClOrdId,
    /// Open quantity after this fill.
    pub leaves_lots: u64,
    /// Filled quantity after this fill.
    pub cum_lots: u64,
    /// Sum of price × quantity of the order's fills after this one (ticks × lots).
    pub cum_cost: i128,
}

/// A trade between a resting (maker) and an incoming (taker) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Gap-free trade id.
    pub trade_id: TradeId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Price in ticks (always the maker's price).
    pub price_ticks: i64,
    /// Quantity in lots.
    pub qty_lots: u64,
    /// The taker's side.
    pub aggressor: Side,
    /// The incoming order.
    pub taker: Fill,
    /// The resting order.
    pub maker: Fill,
}

/// Order-level change of the visible book, from which an order-by-order feed is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookChange {
    /// An order became visible at the back of its level.
    Add {
        /// Instrument.
        instrument: InstrumentId,
        /// Order.
        order_id: OrderId,
        /// Side.
        side: Side,
        /// Price in ticks.
        price_ticks: i64,
        /// Visible quantity in lots.
        qty_lots: u64,
    },
    /// An order's visible quantity changed without losing priority.
    Modify {
        /// Instrument.
        instrument: InstrumentId,
        /// Order.
        order_id: OrderId,
        /// Side.
        side: Side,
        /// Price in ticks.
        price_ticks: i64,
        /// New visible quantity in lots.
        qty_lots: u64,
    },
    /// An order left the book without trading.
    Delete {
        /// Instrument.
        instrument: InstrumentId,
        /// Order.
        order_id: OrderId,
        /// Side.
        side: Side,
        /// Price in ticks.
        price_ticks: i64,
    },
    /// A resting order traded; its visible quantity drops by `qty_lots` (to zero: it leaves the
    /// book, and an iceberg that refills is announced by a following `Add`).
    Execute {
        /// Instrument.
        instrument: InstrumentId,
        /// Order.
        order_id: OrderId,
        /// Side of the resting order.
        side: Side,
        /// Price in ticks.
        price_ticks: i64,
        /// Executed quantity in lots.
        qty_lots: u64,
        /// The trade.
        trade_id: TradeId,
    },
}

/// Everything the engine reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new order was accepted (before any of its trades).
    Accepted(OrderView),
    /// A request was rejected; nothing changed.
    Rejected(Reject),
    /// A trade.
    Trade(Trade),
    /// An order's remainder was cancelled; `order.leaves_lots` is 0.
    Cancelled {
        /// The order after the cancel.
        order: OrderView,
        /// Quantity cancelled in lots.
        cancelled_lots: u64,
        /// The request's client id for requested cancels, else the order's.
        request_cl_ord_id: ClOrdId,
        /// Why.
        reason: CancelReason,
    },
    /// An order's open quantity was reduced without a trade (self-trade prevention
    /// decrement); it stays live.
    Reduced {
        /// The order after the reduction.
        order: OrderView,
        /// Quantity removed in lots.
        reduced_lots: u64,
    },
    /// A cancel/replace took effect (any resulting trades follow).
    Replaced {
        /// The order after the replace.
        order: OrderView,
        /// The client id before the replace.
        orig_cl_ord_id: ClOrdId,
        /// True if the order kept its time priority.
        priority_kept: bool,
    },
    /// An order expired.
    Expired {
        /// The order after expiry; `leaves_lots` is 0.
        order: OrderView,
        /// Quantity expired in lots.
        expired_lots: u64,
        /// Why.
        reason: ExpireReason,
    },
    /// A stop order triggered; it now executes as a market or limit order.
    Triggered(OrderView),
    /// Answer to `OrderStatus` for a live order.
    Status(OrderView),
    /// A mass cancel finished.
    MassCancelled {
        /// Requesting account.
        account: AccountId,
        /// The request's client id.
        cl_ord_id: ClOrdId,
        /// What it covered.
        target: MassCancelTarget,
        /// How many orders it cancelled.
        cancelled: u32,
    },
    /// The visible book changed.
    Book(BookChange),
    /// An instrument was added, updated, changed status or removed (`None`).
    Instrument {
        /// The instrument.
        instrument: InstrumentId,
        /// Its status after the change; `None` when removed.
        status: Option<TradingStatus>,
    },
    /// An account was created or updated.
    Account(AccountId),
    /// An operator command was applied (or refused): the last event of every
    /// [`CommandBody::Operator`](crate::CommandBody::Operator), what the audit record is made of.
    Operator(crate::operator::OperatorOutcome),
}

/// Where the engine writes events. Static dispatch keeps the hot path free of `dyn`.
pub trait EventSink {
    /// Receives one event.
    fn push(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    #[inline]
    fn push(&mut self, event: Event) {
        Vec::push(self, event);
    }
}

/// A sink that only counts events, for benchmarks and replay tools.
#[derive(Default, Debug)]
pub struct CountingSink {
    /// Events received.
    pub events: u64,
    /// Trades received.
    pub trades: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn push(&mut self, event: Event) {
        self.events += 1;
        if matches!(event, Event::Trade(_)) {
            self.trades += 1;
        }
    }
}

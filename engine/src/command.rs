//! Commands: the engine's only input. Each carries the sequence number and timestamp stamped
//! once by the sequencer; the engine reads nothing else.

use serde::{Deserialize, Serialize};

use crate::account::{AccountSpec, StpMode};
use crate::ids::{AccountId, ClOrdId, InstrumentId, OrderId};
use crate::instrument::{InstrumentSpec, TradingStatus};

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Bid side.
    Buy,
    /// Ask side.
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Order type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrdType {
    /// Rests at its limit price.
    Limit,
    /// Never rests; matches up to the price band's edge, the remainder is cancelled.
    Market,
    /// Becomes a market order when the last trade price reaches the stop price.
    Stop,
    /// Becomes a limit order when the last trade price reaches the stop price.
    StopLimit,
}

/// Time in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Expired by an `EndOfDay` command.
    Day,
    /// Immediate or cancel: what does not fill at once is cancelled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all.
    Fok,
    /// Good till date: expired by the first command whose timestamp reaches `expire_ns`.
    Gtd,
}

/// How a command names an existing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderRef {
    /// By the exchange-assigned id.
    Id(OrderId),
    /// By the client order id among the account's live orders.
    Client(ClOrdId),
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Owning account.
    pub account: AccountId,
    /// Client order id, unique among the account's live orders.
    pub cl_ord_id: ClOrdId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price in ticks (`Limit`, `StopLimit`; ignored otherwise).
    pub price_ticks: i64,
    /// Stop price in ticks (`Stop`, `StopLimit`; ignored otherwise).
    pub stop_ticks: i64,
    /// Order quantity in lots.
    pub qty_lots: u64,
    /// Iceberg display quantity in lots; 0 = fully displayed.
    pub display_lots: u64,
    /// Expiry timestamp for `Gtd`, same clock as command timestamps.
    pub expire_ns: u64,
    /// Reject instead of taking liquidity.
    pub post_only: bool,
    /// Self-trade prevention mode; `None` = the account's default.
    pub stp: Option<StpMode>,
}

impl NewOrder {
    /// A plain GTC limit order, fully displayed, no expiry, not post-only, the account's
    /// default self-trade prevention; set other fields with struct update syntax.
    pub fn limit(
        account: AccountId,
        cl_ord_id: ClOrdId,
        instrument: InstrumentId,
        side: Side,
        price_ticks: i64,
        qty_lots: u64,
    ) -> NewOrder {
        NewOrder {
            account,
            cl_ord_id,
            instrument,
            side,
            ord_type: OrdType::Limit,
            tif: TimeInForce::Gtc,
            price_ticks,
            stop_ticks: 0,
            qty_lots,
            display_lots: 0,
            expire_ns: 0,
            post_only: false,
            stp: None,
        }
    }
}

/// Cancel one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// Account making the request; must own the order.
    pub account: AccountId,
    /// The order.
    pub order: OrderRef,
    /// The request's own client id (FIX ClOrdID of the cancel), echoed in reports.
    pub cl_ord_id: ClOrdId,
}

/// Cancel/replace one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replace {
    /// Account making the request; must own the order.
    pub account: AccountId,
    /// The order.
    pub order: OrderRef,
    /// The order's new client id (may equal the old one).
    pub cl_ord_id: ClOrdId,
    /// New limit price in ticks (limit and stop-limit orders).
    pub price_ticks: i64,
    /// New stop price in ticks (stop and stop-limit orders; ignored otherwise).
    pub stop_ticks: i64,
    /// New total order quantity in lots (including what has already filled).
    pub qty_lots: u64,
}

/// What a mass cancel covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MassCancelTarget {
    /// One account's orders, optionally only in one instrument.
    Account(AccountId, Option<InstrumentId>),
    /// Every order in one instrument.
    Instrument(InstrumentId),
    /// Every order in the engine.
    All,
}

/// Cancel many orders at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassCancel {
    /// Account making the request (echoed in the report).
    pub account: AccountId,
    /// The request's client id.
    pub cl_ord_id: ClOrdId,
    /// What to cancel.
    pub target: MassCancelTarget,
}

/// The body of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandBody {
    /// Enter an order.
    NewOrder(NewOrder),
    /// Cancel an order.
    Cancel(Cancel),
    /// Cancel/replace an order.
    Replace(Replace),
    /// Cancel many orders.
    MassCancel(MassCancel),
    /// Report an order's state (read-only).
    OrderStatus {
        /// Requesting account; must own the order.
        account: AccountId,
        /// The order.
        order: OrderRef,
    },
    /// Expire DAY orders of one instrument or of all.
    EndOfDay {
        /// `None` = every instrument.
        instrument: Option<InstrumentId>,
    },
    /// Advance time only (drives GTD expiry when no other command arrives).
    Tick,
    /// Add an instrument.
    AddInstrument(InstrumentSpec),
    /// Change an instrument's spec; tick and lot size only while it has no live orders.
    UpdateInstrument(InstrumentSpec),
    /// What a configuration file says about an instrument: add it, or update its terms as
    /// `UpdateInstrument` does but keeping its trading status (market state, set by
    /// `SetTradingStatus`, not by configuration).
    ConfigureInstrument(InstrumentSpec),
    /// Halt, resume or close an instrument.
    SetTradingStatus {
        /// Instrument.
        instrument: InstrumentId,
        /// New status.
        status: TradingStatus,
    },
    /// Remove an instrument that has no live orders.
    RemoveInstrument {
        /// Instrument.
        instrument: InstrumentId,
    },
    /// Create or update an account's risk limits and self-trade settings.
    UpsertAccount(AccountSpec),
    /// An operator's action from the admin port (halt, mass cancel, kill switch, …), with who
    /// took it; ends with an [`Event::Operator`](crate::Event::Operator).
    Operator(crate::operator::OperatorCommand),
}

/// A sequenced command. `Copy` (no heap data), so it moves through ring slots by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Sequence number from the sequencer; strictly one more than the previous command's.
    pub seq: u64,
    /// Timestamp stamped by the sequencer in nanoseconds; the engine's only notion of time.
    pub ts_ns: u64,
    /// What to do.
    pub body: CommandBody,
}

/// Error decoding a command from bytes.
#[derive(Debug, thiserror::Error)]
#[error("malformed command encoding: {0}")]
pub struct DecodeError(#[from] postcard::Error);

impl Command {
    /// Encodes into `buf`, returning the used prefix. `buf` of [`Command::MAX_ENCODED_LEN`]
    /// bytes always suffices.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], DecodeError> {
        Ok(postcard::to_slice(self, buf)?)
    }

    /// Decodes a command previously written by [`Command::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(postcard::from_bytes(bytes)?)
    }

    /// Upper bound of an encoded command's length in bytes.
    pub const MAX_ENCODED_LEN: usize = 256;

    /// Journal record kind of an encoded command (the journal itself treats kinds as opaque).
    pub const RECORD_KIND: u16 = 1;
}

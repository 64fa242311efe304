//! Wire messages ↔ engine commands and events.
//!
//! **Inbound** (client requests → engine commands). Prices are `Price9` (`mantissa × 10^-9`) and
//! quantities `Qty4` (`mantissa × 10^-4`); they become ticks and lots exactly through
//! `Decimal::new(mantissa, 9)` / `Decimal::try_from_i128_with_scale(mantissa, 4)` and
//! [`InstrumentSpec::price_to_ticks`] / [`InstrumentSpec::qty_to_lots`]. A value off the
//! instrument's grid, out of range, missing where the order type needs it or present where it
//! does not apply is a [`ConvertError`], never rounded or guessed. Each error has a stable
//! [`ConvertError::code`] for the `RejectCode` field.
//!
//! **RejectCode space.** Codes below 1000 are [`engine::RejectReason`] codes (the engine's
//! own rejects); the gateway's validation codes start at 1001 and are listed on
//! [`ConvertError`]. One gateway error reuses an engine code because the engine already has
//! the meaning: a zero quantity is `QtyBelowMin` (6).
//!
//! **Outbound** (engine events → reports), with FIX 4.4 semantics:
//!
//! | event | message | ExecType | OrdStatus |
//! |---|---|---|---|
//! | `Accepted` | ExecutionReport | New | New |
//! | `Trade` (one report per side) | ExecutionReport | Trade, with LastPx/LastQty/TradeId/Aggressor | PartiallyFilled / Filled |
//! | `Cancelled` | ExecutionReport | Canceled | Canceled |
//! | `Reduced` (self-trade decrement) | ExecutionReport | Restated | from cum/leaves |
//! | `Replaced` | ExecutionReport | Replaced | from cum/leaves |
//! | `Expired` | ExecutionReport | Expired | Expired |
//! | `Triggered` | ExecutionReport | Triggered | from cum/leaves |
//! | `Status` | ExecutionReport | OrderStatus | from cum/leaves |
//! | `Rejected` of a new order | ExecutionReport | Rejected | Rejected |
//! | `Rejected` of a cancel / replace / status | OrderCancelReject | | |
//! | `MassCancelled`, `Rejected` of a mass cancel | OrderMassCancelReport | | |
//!
//! "From cum/leaves": `Filled` when nothing is open and something filled, `PartiallyFilled` when
//! something filled, else `New`. Absent values use the schema's null values: `Price` on market
//! and stop orders, `StopPx` on non-stop orders, `LastPx`/`LastQty`/`TradeId` off trades,
//! `Aggressor` off trades, and `AvgPx` while nothing has filled.
//!
//! **AvgPx** is `cum_cost / cum_lots` ticks converted to Price9 with integer arithmetic: exact
//! when the average is a multiple of 10^-9, otherwise rounded half-to-even at 10^-9 (and null if
//! it does not fit an `i64`). Prices and quantities themselves are converted exactly (ticks ×
//! tick size, lots × lot size) or refused with [`ConvertError::NotRepresentable`]: an instrument
//! whose tick size is finer than 10^-9 or lot size finer than 10^-4 cannot be traded over SBE
//! ([`check_wire_grid`] says so up front).
//!
//! Nothing here allocates: reports are returned by value or handed to a callback.

use engine::{
    AccountId, Cancel, ClOrdId, CommandBody, Event, Fill, GridError, InstrumentId, InstrumentSpec, MassCancel,
    MassCancelTarget, NewOrder, OrderId, OrderRef, OrderView, Reject, RejectReason, Replace, RequestKind, StpMode,
    Trade,
};
use rust_decimal::Decimal;
use zerocopy::FromZeros;
use zerocopy::little_endian::{I64, U16, U32, U64};

use crate::sbe::codec::{EncodeError, encode};
use crate::sbe::messages::{
    self, CxlRejResponseTo, ENUM_U8_NULL, ExecInst, ExecType, ExecutionReport, MassCancelScope, NewOrderSingle,
    ORDER_ID_NULL, OrdStatus, OrderCancelReject, OrderCancelReplaceRequest, OrderCancelRequest, OrderMassCancelReport,
    OrderMassCancelRequest, OrderStatusRequest, PRICE9_NULL, PRICE9_SCALE, QTY4_NULL, QTY4_SCALE, REJECT_CODE_NULL,
    SelfTradePrevention, TRADE_ID_NULL,
};

/// Why a request cannot become an engine command, or an event a report. The `code` of each
/// variant is what goes into the wire `RejectCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// `ClOrdId` is empty or not printable ASCII without spaces (code 1001).
    #[error("ClOrdId is empty or not printable ASCII")]
    InvalidClOrdId,
    /// `OrigClOrdId` is present but not printable ASCII without spaces (code 1002).
    #[error("OrigClOrdId is not printable ASCII")]
    InvalidOrigClOrdId,
    /// Neither `OrderId` nor `OrigClOrdId` names the order (code 1003).
    #[error("neither OrderId nor OrigClOrdId is set")]
    MissingOrderRef,
    /// `SecurityId` is not the instrument the spec describes (code 1004).
    #[error("SecurityId {security_id} does not match instrument {instrument}")]
    InstrumentMismatch {
        /// The request's SecurityId.
        security_id: u32,
        /// The spec's instrument id.
        instrument: u32,
    },
    /// `Price` is null but the order type needs a limit price (code 1005).
    #[error("Price is required for this order type")]
    PriceRequired,
    /// `Price` is set on an order type without a limit price (code 1006).
    #[error("Price is not allowed for this order type")]
    PriceNotAllowed,
    /// `Price` is not a multiple of the tick size (code 1007).
    #[error("Price is not a multiple of the tick size")]
    PriceOffGrid,
    /// `Price` in ticks does not fit an `i64` (code 1008).
    #[error("Price is out of range")]
    PriceOutOfRange,
    /// `StopPx` is null but the order type needs a stop price (code 1009).
    #[error("StopPx is required for this order type")]
    StopPxRequired,
    /// `StopPx` is set on an order type without a stop price (code 1010).
    #[error("StopPx is not allowed for this order type")]
    StopPxNotAllowed,
    /// `StopPx` is not a multiple of the tick size (code 1011).
    #[error("StopPx is not a multiple of the tick size")]
    StopPxOffGrid,
    /// `StopPx` in ticks does not fit an `i64` (code 1012).
    #[error("StopPx is out of range")]
    StopPxOutOfRange,
    /// `OrderQty` is null (code 1013).
    #[error("OrderQty is required")]
    QtyRequired,
    /// `OrderQty` is zero (code 6, the engine's `QtyBelowMin`).
    #[error("OrderQty must be positive")]
    QtyNotPositive,
    /// `OrderQty` is not a multiple of the lot size (code 1014).
    #[error("OrderQty is not a multiple of the lot size")]
    QtyOffGrid,
    /// `OrderQty` in lots does not fit a `u64` (code 1015).
    #[error("OrderQty is out of range")]
    QtyOutOfRange,
    /// `DisplayQty` is not a multiple of the lot size (code 1016).
    #[error("DisplayQty is not a multiple of the lot size")]
    DisplayQtyOffGrid,
    /// `DisplayQty` in lots does not fit a `u64` (code 1017).
    #[error("DisplayQty is out of range")]
    DisplayQtyOutOfRange,
    /// `TimeInForce` is GoodTillDate but `ExpireTime` is 0 (code 1018).
    #[error("ExpireTime is required for GoodTillDate")]
    ExpireTimeRequired,
    /// `ExpireTime` is set but `TimeInForce` is not GoodTillDate (code 1019).
    #[error("ExpireTime is only allowed with GoodTillDate")]
    ExpireTimeNotAllowed,
    /// An enum or set field holds a value outside the schema (code 1020). Only reachable with
    /// a block that did not come through the decoder, which already refuses these.
    #[error("{field} holds a value outside the schema")]
    InvalidEnumValue {
        /// The field's schema name.
        field: &'static str,
    },
    /// No instrument with the request's SecurityId (code 1, the engine's `UnknownInstrument`).
    #[error("unknown instrument {security_id}")]
    UnknownInstrument {
        /// The request's SecurityId.
        security_id: u32,
    },
    /// Outbound: a value in ticks or lots has no exact Price9 / Qty4 representation
    /// (code 1021; a configuration error, see [`check_wire_grid`]).
    #[error("{field} cannot be represented on the wire exactly")]
    NotRepresentable {
        /// The field's schema name.
        field: &'static str,
    },
    /// Outbound: a trade report needs the order's terms and the lookup had none (code 1022).
    #[error("no order terms for order {order_id}")]
    MissingOrderTerms {
        /// The order.
        order_id: u64,
    },
}

impl ConvertError {
    /// First gateway-specific reject code; codes below are [`RejectReason`] codes.
    pub const FIRST_GATEWAY_CODE: u16 = 1001;

    /// The wire `RejectCode` for this error.
    pub fn code(&self) -> u16 {
        match self {
            ConvertError::InvalidClOrdId => 1001,
            ConvertError::InvalidOrigClOrdId => 1002,
            ConvertError::MissingOrderRef => 1003,
            ConvertError::InstrumentMismatch { .. } => 1004,
            ConvertError::PriceRequired => 1005,
            ConvertError::PriceNotAllowed => 1006,
            ConvertError::PriceOffGrid => 1007,
            ConvertError::PriceOutOfRange => 1008,
            ConvertError::StopPxRequired => 1009,
            ConvertError::StopPxNotAllowed => 1010,
            ConvertError::StopPxOffGrid => 1011,
            ConvertError::StopPxOutOfRange => 1012,
            ConvertError::QtyRequired => 1013,
            ConvertError::QtyNotPositive => RejectReason::QtyBelowMin as u16,
            ConvertError::QtyOffGrid => 1014,
            ConvertError::QtyOutOfRange => 1015,
            ConvertError::DisplayQtyOffGrid => 1016,
            ConvertError::DisplayQtyOutOfRange => 1017,
            ConvertError::ExpireTimeRequired => 1018,
            ConvertError::ExpireTimeNotAllowed => 1019,
            ConvertError::InvalidEnumValue { .. } => 1020,
            ConvertError::UnknownInstrument { .. } => RejectReason::UnknownInstrument as u16,
            ConvertError::NotRepresentable { .. } => 1021,
            ConvertError::MissingOrderTerms { .. } => 1022,
        }
    }

    /// The schema name of the field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ConvertError::InvalidClOrdId => "ClOrdId",
            ConvertError::InvalidOrigClOrdId | ConvertError::MissingOrderRef => "OrigClOrdId",
            ConvertError::InstrumentMismatch { .. } | ConvertError::UnknownInstrument { .. } => "SecurityId",
            ConvertError::PriceRequired
            | ConvertError::PriceNotAllowed
            | ConvertError::PriceOffGrid
            | ConvertError::PriceOutOfRange => "Price",
            ConvertError::StopPxRequired
            | ConvertError::StopPxNotAllowed
            | ConvertError::StopPxOffGrid
            | ConvertError::StopPxOutOfRange => "StopPx",
            ConvertError::QtyRequired
            | ConvertError::QtyNotPositive
            | ConvertError::QtyOffGrid
            | ConvertError::QtyOutOfRange => "OrderQty",
            ConvertError::DisplayQtyOffGrid | ConvertError::DisplayQtyOutOfRange => "DisplayQty",
            ConvertError::ExpireTimeRequired | ConvertError::ExpireTimeNotAllowed => "ExpireTime",
            ConvertError::InvalidEnumValue { field } | ConvertError::NotRepresentable { field } => field,
            ConvertError::MissingOrderTerms { .. } => "OrderId",
        }
    }
}

// ------------------------------------------------------------------------------------------
// Numbers

/// Converts a non-null Price9 mantissa to ticks exactly (`Decimal::new(mantissa, 9)` then
/// [`InstrumentSpec::price_to_ticks`]).
pub fn price9_to_ticks(mantissa: i64, spec: &InstrumentSpec) -> Result<i64, GridError> {
    spec.price_to_ticks(Decimal::new(mantissa, PRICE9_SCALE))
}

/// Converts a non-null Qty4 mantissa to lots exactly (zero is refused as `NotPositive`).
pub fn qty4_to_lots(mantissa: u64, spec: &InstrumentSpec) -> Result<u64, GridError> {
    // A u64 always fits Decimal's 96-bit mantissa; the fallible constructor keeps this path
    // panic-free regardless.
    let qty = Decimal::try_from_i128_with_scale(i128::from(mantissa), QTY4_SCALE).map_err(|_| GridError::OutOfRange)?;
    spec.qty_to_lots(qty)
}

/// `10^n` for `n` in `0..=38` (the largest power of ten an `i128` holds): a table, because
/// every report converts several prices and quantities and `checked_pow` loops.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

/// `value × mantissa × 10^-scale` expressed as a multiple of `10^-target_scale`, exactly, or
/// `None` when it is not a whole multiple or does not fit an `i128`. The usual case (a tick or
/// lot with at most `target_scale` decimals, every factor within `i64`) takes one `i64`
/// multiplication; the rest the exact `i128` path.
fn rescale_exact(value: i128, mantissa: i128, scale: u32, target_scale: u32) -> Option<i128> {
    if scale <= target_scale
        && let (Ok(v), Ok(m), Some(Ok(p))) =
            (i64::try_from(value), i64::try_from(mantissa), pow10(target_scale - scale).map(i64::try_from))
        && let Some(product) = m.checked_mul(p).and_then(|factor| v.checked_mul(factor))
    {
        return Some(i128::from(product));
    }
    let product = value.checked_mul(mantissa)?;
    if scale <= target_scale {
        product.checked_mul(pow10(target_scale - scale)?)
    } else {
        let divisor = pow10(scale - target_scale)?;
        if product % divisor == 0 { Some(product / divisor) } else { None }
    }
}

/// Converts ticks to a Price9 mantissa exactly; `None` when the price is not a multiple of
/// 10^-9 or does not fit (the null value is never produced).
pub fn ticks_to_price9(ticks: i64, spec: &InstrumentSpec) -> Option<i64> {
    let tick = spec.tick_size;
    let m = rescale_exact(i128::from(ticks), tick.mantissa(), tick.scale(), PRICE9_SCALE)?;
    i64::try_from(m).ok().filter(|&v| v != PRICE9_NULL)
}

/// Converts lots to a Qty4 mantissa exactly; `None` when the quantity is not a multiple of
/// 10^-4 or does not fit (the null value is never produced).
pub fn lots_to_qty4(lots: u64, spec: &InstrumentSpec) -> Option<u64> {
    let lot = spec.lot_size;
    let m = rescale_exact(i128::from(lots), lot.mantissa(), lot.scale(), QTY4_SCALE)?;
    u64::try_from(m).ok().filter(|&v| v != QTY4_NULL)
}

/// Average price `cum_cost / cum_lots` (ticks) as a Price9 mantissa: exact when representable
/// at 10^-9, else rounded half-to-even. `None` when nothing filled or the result does not fit.
pub fn avg_px9(cum_cost: i128, cum_lots: u64, spec: &InstrumentSpec) -> Option<i64> {
    if cum_lots == 0 {
        return None;
    }
    let tick = spec.tick_size;
    // avg9 = cum_cost × m × 10^(9 - s) / cum_lots, with the power moved to the divisor when
    // the tick size has more than nine decimals.
    let (num, den) = if tick.scale() <= PRICE9_SCALE {
        let num = cum_cost.checked_mul(tick.mantissa())?.checked_mul(pow10(PRICE9_SCALE - tick.scale())?)?;
        (num, i128::from(cum_lots))
    } else {
        let den = i128::from(cum_lots).checked_mul(pow10(tick.scale() - PRICE9_SCALE)?)?;
        (cum_cost.checked_mul(tick.mantissa())?, den)
    };
    // Both within i64 (the usual case): the same rounding in 64-bit division, which is several
    // times cheaper than 128-bit division.
    let q = match (i64::try_from(num), i64::try_from(den)) {
        (Ok(n), Ok(d)) => i128::from(round_half_even(n, d)),
        _ => round_half_even(num, den),
    };
    i64::try_from(q).ok().filter(|&v| v != PRICE9_NULL)
}

/// `num / den` (`den > 0`) rounded half to even.
fn round_half_even<T>(num: T, den: T) -> T
where
    T: Copy
        + PartialOrd
        + std::ops::Div<Output = T>
        + std::ops::Rem<Output = T>
        + std::ops::Sub<Output = T>
        + std::ops::Add<Output = T>
        + From<i8>,
{
    let zero = T::from(0);
    let q = num / den;
    let r = num % den;
    let r = if r < zero { zero - r } else { r };
    let away = den - r; // distance to the next multiple away from zero
    let sign = if num < zero {
        T::from(-1)
    } else if num > zero {
        T::from(1)
    } else {
        zero
    };
    if r > away || (r == away && q % T::from(2) != zero) { q + sign } else { q }
}

/// Checks that every price and quantity of the instrument has an exact wire form: the tick
/// size must be a multiple of 10^-9 and the lot size of 10^-4. Gateways should refuse to list
/// an instrument that fails (outbound conversion would fail with
/// [`ConvertError::NotRepresentable`]).
pub fn check_wire_grid(spec: &InstrumentSpec) -> Result<(), ConvertError> {
    if ticks_to_price9(1, spec).is_none() {
        return Err(ConvertError::NotRepresentable { field: "Price" });
    }
    if lots_to_qty4(1, spec).is_none() {
        return Err(ConvertError::NotRepresentable { field: "OrderQty" });
    }
    Ok(())
}

/// Parses a client order id field: printable ASCII without spaces, NUL-padded; `None` if
/// empty.
fn wire_cl_ord_id(field: &[u8; 20]) -> Result<Option<ClOrdId>, ()> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    if field[len..].iter().any(|&b| b != 0) {
        return Err(());
    }
    if len == 0 {
        return Ok(None);
    }
    ClOrdId::new(&field[..len]).map(Some).map_err(|_| ())
}

fn required_cl_ord_id(field: &[u8; 20]) -> Result<ClOrdId, ConvertError> {
    match wire_cl_ord_id(field) {
        Ok(Some(id)) => Ok(id),
        _ => Err(ConvertError::InvalidClOrdId),
    }
}

/// `OrderRef::Id` when `OrderId` is set, else `OrderRef::Client(OrigClOrdId)`. A present
/// `OrigClOrdId` must be valid even when `OrderId` wins.
fn order_ref(order_id: u64, orig: &[u8; 20]) -> Result<OrderRef, ConvertError> {
    let orig = wire_cl_ord_id(orig).map_err(|_| ConvertError::InvalidOrigClOrdId)?;
    match (order_id, orig) {
        (ORDER_ID_NULL, Some(c)) => Ok(OrderRef::Client(c)),
        (ORDER_ID_NULL, None) => Err(ConvertError::MissingOrderRef),
        (id, _) => Ok(OrderRef::Id(OrderId(id))),
    }
}

fn price_ticks(mantissa: i64, spec: &InstrumentSpec) -> Result<i64, ConvertError> {
    price9_to_ticks(mantissa, spec).map_err(|e| match e {
        GridError::OffGrid => ConvertError::PriceOffGrid,
        GridError::OutOfRange | GridError::NotPositive => ConvertError::PriceOutOfRange,
    })
}

fn stop_ticks(mantissa: i64, spec: &InstrumentSpec) -> Result<i64, ConvertError> {
    price9_to_ticks(mantissa, spec).map_err(|e| match e {
        GridError::OffGrid => ConvertError::StopPxOffGrid,
        GridError::OutOfRange | GridError::NotPositive => ConvertError::StopPxOutOfRange,
    })
}

fn order_qty_lots(mantissa: u64, spec: &InstrumentSpec) -> Result<u64, ConvertError> {
    if mantissa == QTY4_NULL {
        return Err(ConvertError::QtyRequired);
    }
    qty4_to_lots(mantissa, spec).map_err(|e| match e {
        GridError::OffGrid => ConvertError::QtyOffGrid,
        GridError::OutOfRange => ConvertError::QtyOutOfRange,
        GridError::NotPositive => ConvertError::QtyNotPositive,
    })
}

fn check_instrument(security_id: u32, spec: &InstrumentSpec) -> Result<(), ConvertError> {
    if security_id != spec.id.0 {
        return Err(ConvertError::InstrumentMismatch { security_id, instrument: spec.id.0 });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Enums

fn side_from_wire(v: u8) -> Result<engine::Side, ConvertError> {
    match messages::Side::from_u8(v) {
        Some(messages::Side::Buy) => Ok(engine::Side::Buy),
        Some(messages::Side::Sell) => Ok(engine::Side::Sell),
        None => Err(ConvertError::InvalidEnumValue { field: "Side" }),
    }
}

fn side_to_wire(s: engine::Side) -> messages::Side {
    match s {
        engine::Side::Buy => messages::Side::Buy,
        engine::Side::Sell => messages::Side::Sell,
    }
}

fn ord_type_from_wire(v: u8) -> Result<engine::OrdType, ConvertError> {
    match messages::OrdType::from_u8(v) {
        Some(messages::OrdType::Market) => Ok(engine::OrdType::Market),
        Some(messages::OrdType::Limit) => Ok(engine::OrdType::Limit),
        Some(messages::OrdType::Stop) => Ok(engine::OrdType::Stop),
        Some(messages::OrdType::StopLimit) => Ok(engine::OrdType::StopLimit),
        None => Err(ConvertError::InvalidEnumValue { field: "OrdType" }),
    }
}

fn ord_type_to_wire(t: engine::OrdType) -> messages::OrdType {
    match t {
        engine::OrdType::Market => messages::OrdType::Market,
        engine::OrdType::Limit => messages::OrdType::Limit,
        engine::OrdType::Stop => messages::OrdType::Stop,
        engine::OrdType::StopLimit => messages::OrdType::StopLimit,
    }
}

fn tif_from_wire(v: u8) -> Result<engine::TimeInForce, ConvertError> {
    match messages::TimeInForce::from_u8(v) {
        Some(messages::TimeInForce::Day) => Ok(engine::TimeInForce::Day),
        Some(messages::TimeInForce::GoodTillCancel) => Ok(engine::TimeInForce::Gtc),
        Some(messages::TimeInForce::ImmediateOrCancel) => Ok(engine::TimeInForce::Ioc),
        Some(messages::TimeInForce::FillOrKill) => Ok(engine::TimeInForce::Fok),
        Some(messages::TimeInForce::GoodTillDate) => Ok(engine::TimeInForce::Gtd),
        None => Err(ConvertError::InvalidEnumValue { field: "TimeInForce" }),
    }
}

fn tif_to_wire(t: engine::TimeInForce) -> messages::TimeInForce {
    match t {
        engine::TimeInForce::Day => messages::TimeInForce::Day,
        engine::TimeInForce::Gtc => messages::TimeInForce::GoodTillCancel,
        engine::TimeInForce::Ioc => messages::TimeInForce::ImmediateOrCancel,
        engine::TimeInForce::Fok => messages::TimeInForce::FillOrKill,
        engine::TimeInForce::Gtd => messages::TimeInForce::GoodTillDate,
    }
}

fn stp_from_wire(v: u8) -> Result<Option<StpMode>, ConvertError> {
    match SelfTradePrevention::from_u8(v) {
        Some(SelfTradePrevention::AccountDefault) => Ok(None),
        Some(SelfTradePrevention::Allow) => Ok(Some(StpMode::Allow)),
        Some(SelfTradePrevention::CancelNewest) => Ok(Some(StpMode::CancelNewest)),
        Some(SelfTradePrevention::CancelOldest) => Ok(Some(StpMode::CancelOldest)),
        Some(SelfTradePrevention::CancelBoth) => Ok(Some(StpMode::CancelBoth)),
        Some(SelfTradePrevention::DecrementAndCancel) => Ok(Some(StpMode::DecrementAndCancel)),
        None => Err(ConvertError::InvalidEnumValue { field: "SelfTradePrevention" }),
    }
}

fn has_limit_price(t: engine::OrdType) -> bool {
    matches!(t, engine::OrdType::Limit | engine::OrdType::StopLimit)
}

fn has_stop_price(t: engine::OrdType) -> bool {
    matches!(t, engine::OrdType::Stop | engine::OrdType::StopLimit)
}

// ------------------------------------------------------------------------------------------
// Inbound

/// NewOrderSingle → [`NewOrder`] for the instrument `spec` (looked up by the request's
/// `SecurityId`). Checks, in field order: ClOrdId, SecurityId = spec, enums, Price (required
/// for Limit/StopLimit, forbidden otherwise, on the tick grid), StopPx (required for
/// Stop/StopLimit, forbidden otherwise, on the grid), OrderQty (required, positive, on the lot
/// grid), DisplayQty (null or 0 = fully displayed, else on the lot grid), ExpireTime (required
/// exactly for GoodTillDate; 0 = none). Business rules (quantity limits, bands, post-only
/// eligibility, display ≤ quantity) are the engine's. The `Account` is taken as sent: the
/// session must check the client may trade it.
pub fn new_order(msg: &NewOrderSingle, spec: &InstrumentSpec) -> Result<NewOrder, ConvertError> {
    let cl_ord_id = required_cl_ord_id(&msg.cl_ord_id)?;
    check_instrument(msg.security_id.get(), spec)?;
    let side = side_from_wire(msg.side)?;
    let ord_type = ord_type_from_wire(msg.ord_type)?;
    let tif = tif_from_wire(msg.time_in_force)?;
    if msg.exec_inst & !ExecInst::SPEC.valid_mask() != 0 {
        return Err(ConvertError::InvalidEnumValue { field: "ExecInst" });
    }
    let stp = stp_from_wire(msg.self_trade_prevention)?;

    let price = msg.price.get();
    let price_ticks = match (has_limit_price(ord_type), price == PRICE9_NULL) {
        (true, true) => return Err(ConvertError::PriceRequired),
        (true, false) => price_ticks(price, spec)?,
        (false, true) => 0,
        (false, false) => return Err(ConvertError::PriceNotAllowed),
    };
    let stop = msg.stop_px.get();
    let stop_ticks = match (has_stop_price(ord_type), stop == PRICE9_NULL) {
        (true, true) => return Err(ConvertError::StopPxRequired),
        (true, false) => stop_ticks(stop, spec)?,
        (false, true) => 0,
        (false, false) => return Err(ConvertError::StopPxNotAllowed),
    };
    let qty_lots = order_qty_lots(msg.order_qty.get(), spec)?;
    let display = msg.display_qty.get();
    let display_lots = if display == QTY4_NULL || display == 0 {
        0
    } else {
        qty4_to_lots(display, spec).map_err(|e| match e {
            GridError::OffGrid => ConvertError::DisplayQtyOffGrid,
            GridError::OutOfRange | GridError::NotPositive => ConvertError::DisplayQtyOutOfRange,
        })?
    };
    let expire_ns = msg.expire_time.get();
    match (tif == engine::TimeInForce::Gtd, expire_ns == 0) {
        (true, true) => return Err(ConvertError::ExpireTimeRequired),
        (false, false) => return Err(ConvertError::ExpireTimeNotAllowed),
        _ => {}
    }
    Ok(NewOrder {
        account: AccountId(msg.account.get()),
        cl_ord_id,
        instrument: spec.id,
        side,
        ord_type,
        tif,
        price_ticks,
        stop_ticks,
        qty_lots,
        display_lots,
        expire_ns,
        post_only: msg.exec_inst & ExecInst::POST_ONLY != 0,
        stp,
    })
}

/// OrderCancelRequest → [`Cancel`]. The order is `OrderRef::Id` when `OrderId` is set, else
/// `OrderRef::Client(OrigClOrdId)`. `SecurityId` is not needed by the engine and not checked.
pub fn cancel(msg: &OrderCancelRequest) -> Result<Cancel, ConvertError> {
    let cl_ord_id = required_cl_ord_id(&msg.cl_ord_id)?;
    let order = order_ref(msg.order_id.get(), &msg.orig_cl_ord_id)?;
    Ok(Cancel { account: AccountId(msg.account.get()), order, cl_ord_id })
}

/// OrderCancelReplaceRequest → [`Replace`] for the instrument `spec` (by `SecurityId`).
///
/// A replace restates the order: `Price`, `StopPx` and `OrderQty` are all required. The engine
/// uses `Price` only for limit and stop-limit orders and `StopPx` only for pending stops; the
/// gateway does not know the order's type, so it cannot tell a missing value from an
/// irrelevant one and refuses null rather than guessing (send the current value of a field
/// that does not apply; it must still be on the grid). `OrderQty` is the new total quantity,
/// fills included.
pub fn replace(msg: &OrderCancelReplaceRequest, spec: &InstrumentSpec) -> Result<Replace, ConvertError> {
    let cl_ord_id = required_cl_ord_id(&msg.cl_ord_id)?;
    let order = order_ref(msg.order_id.get(), &msg.orig_cl_ord_id)?;
    check_instrument(msg.security_id.get(), spec)?;
    let price = msg.price.get();
    if price == PRICE9_NULL {
        return Err(ConvertError::PriceRequired);
    }
    let price_ticks = price_ticks(price, spec)?;
    let stop = msg.stop_px.get();
    if stop == PRICE9_NULL {
        return Err(ConvertError::StopPxRequired);
    }
    let stop_ticks = stop_ticks(stop, spec)?;
    let qty_lots = order_qty_lots(msg.order_qty.get(), spec)?;
    Ok(Replace { account: AccountId(msg.account.get()), order, cl_ord_id, price_ticks, stop_ticks, qty_lots })
}

/// OrderMassCancelRequest → [`MassCancel`] of the account's orders: scope `Account` ignores
/// `SecurityId`, scope `AccountInstrument` restricts to it.
pub fn mass_cancel(msg: &OrderMassCancelRequest) -> Result<MassCancel, ConvertError> {
    let cl_ord_id = required_cl_ord_id(&msg.cl_ord_id)?;
    let account = AccountId(msg.account.get());
    let target = match MassCancelScope::from_u8(msg.scope) {
        Some(MassCancelScope::Account) => MassCancelTarget::Account(account, None),
        Some(MassCancelScope::AccountInstrument) => {
            MassCancelTarget::Account(account, Some(InstrumentId(msg.security_id.get())))
        }
        None => return Err(ConvertError::InvalidEnumValue { field: "Scope" }),
    };
    Ok(MassCancel { account, cl_ord_id, target })
}

/// OrderStatusRequest → `CommandBody::OrderStatus`.
pub fn order_status(msg: &OrderStatusRequest) -> Result<CommandBody, ConvertError> {
    let order = order_ref(msg.order_id.get(), &msg.orig_cl_ord_id)?;
    Ok(CommandBody::OrderStatus { account: AccountId(msg.account.get()), order })
}

/// Any application request → engine command body; `None` for session messages (Negotiate,
/// Establish, Sequence, RetransmitRequest, Terminate), which the session handles itself.
/// `instrument` looks specs up by `SecurityId`; a miss is [`ConvertError::UnknownInstrument`].
pub fn command_body<'s>(
    inbound: &crate::sbe::codec::Inbound<'_>,
    instrument: impl Fn(InstrumentId) -> Option<&'s InstrumentSpec>,
) -> Option<Result<CommandBody, ConvertError>> {
    use crate::sbe::codec::Inbound;
    let spec_for = |security_id: U32| {
        let security_id = security_id.get();
        instrument(InstrumentId(security_id)).ok_or(ConvertError::UnknownInstrument { security_id })
    };
    Some(match inbound {
        Inbound::NewOrderSingle(m) => {
            // ClOrdId problems outrank an unknown instrument, as in `new_order`.
            required_cl_ord_id(&m.cl_ord_id)
                .and_then(|_| spec_for(m.security_id))
                .and_then(|spec| new_order(m, spec))
                .map(CommandBody::NewOrder)
        }
        Inbound::OrderCancelRequest(m) => cancel(m).map(CommandBody::Cancel),
        Inbound::OrderCancelReplaceRequest(m) => required_cl_ord_id(&m.cl_ord_id)
            .and_then(|_| order_ref(m.order_id.get(), &m.orig_cl_ord_id))
            .and_then(|_| spec_for(m.security_id))
            .and_then(|spec| replace(m, spec))
            .map(CommandBody::Replace),
        Inbound::OrderMassCancelRequest(m) => mass_cancel(m).map(CommandBody::MassCancel),
        Inbound::OrderStatusRequest(m) => order_status(m),
        Inbound::Negotiate(_)
        | Inbound::Establish(_)
        | Inbound::Sequence(_)
        | Inbound::RetransmitRequest(_)
        | Inbound::Terminate(_) => return None,
    })
}

// ------------------------------------------------------------------------------------------
// Outbound

/// Per-command context of the reports being built: the command's timestamp and the execution
/// id counter. Each ExecutionReport takes the next id, so ids are deterministic given the
/// starting value (e.g. derived from the command's sequence number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportContext {
    /// `TransactTime`: the command's sequencer timestamp in ns since the Unix epoch.
    pub transact_time_ns: u64,
    /// The `ExecId` the next ExecutionReport gets.
    pub next_exec_id: u64,
}

impl ReportContext {
    fn exec_id(&mut self) -> U64 {
        let id = self.next_exec_id;
        self.next_exec_id = self.next_exec_id.wrapping_add(1);
        U64::new(id)
    }
}

/// What a trade report needs about an order that the engine's `Fill` does not carry.
/// Keep these from `Accepted` / `Replaced` / `Triggered` (see [`OrderTerms::from`]) for live
/// orders, keyed by order id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderTerms {
    /// Side.
    pub side: engine::Side,
    /// Order type as entered.
    pub ord_type: engine::OrdType,
    /// Time in force.
    pub tif: engine::TimeInForce,
    /// Limit price in ticks (ignored unless Limit / StopLimit).
    pub price_ticks: i64,
    /// Stop price in ticks (ignored unless Stop / StopLimit).
    pub stop_ticks: i64,
    /// Total order quantity in lots.
    pub qty_lots: u64,
}

impl From<&OrderView> for OrderTerms {
    fn from(v: &OrderView) -> Self {
        OrderTerms {
            side: v.side,
            ord_type: v.ord_type,
            tif: v.tif,
            price_ticks: v.price_ticks,
            stop_ticks: v.stop_ticks,
            qty_lots: v.qty_lots,
        }
    }
}

impl From<&NewOrder> for OrderTerms {
    fn from(o: &NewOrder) -> Self {
        OrderTerms {
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            price_ticks: o.price_ticks,
            stop_ticks: o.stop_ticks,
            qty_lots: o.qty_lots,
        }
    }
}

/// A report for one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// An ExecutionReport.
    Execution(ExecutionReport),
    /// An OrderCancelReject.
    CancelReject(OrderCancelReject),
    /// An OrderMassCancelReport.
    MassCancel(OrderMassCancelReport),
}

impl Report {
    /// Writes the report as a complete frame into `buf`; returns the frame length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Report::Execution(m) => encode(m, buf),
            Report::CancelReject(m) => encode(m, buf),
            Report::MassCancel(m) => encode(m, buf),
        }
    }
}

/// What the report builder needs from outside the event: instrument specs and the terms of
/// orders named by trades.
pub trait ReportLookup {
    /// The spec of an instrument.
    fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec>;
    /// The terms of an order (live, or finished by the event being reported).
    fn order_terms(&self, id: OrderId) -> Option<OrderTerms>;
}

fn price9_field(ticks: i64, spec: &InstrumentSpec, field: &'static str) -> Result<I64, ConvertError> {
    ticks_to_price9(ticks, spec).map(I64::new).ok_or(ConvertError::NotRepresentable { field })
}

fn qty4_field(lots: u64, spec: &InstrumentSpec, field: &'static str) -> Result<U64, ConvertError> {
    lots_to_qty4(lots, spec).map(U64::new).ok_or(ConvertError::NotRepresentable { field })
}

fn derived_status(cum_lots: u64, leaves_lots: u64) -> OrdStatus {
    match (cum_lots, leaves_lots) {
        (0, _) => OrdStatus::New,
        (_, 0) => OrdStatus::Filled,
        _ => OrdStatus::PartiallyFilled,
    }
}

/// Fills the order-describing fields of an ExecutionReport from terms.
fn put_terms(er: &mut ExecutionReport, t: &OrderTerms, spec: &InstrumentSpec) -> Result<(), ConvertError> {
    er.side = side_to_wire(t.side).to_u8();
    er.ord_type = ord_type_to_wire(t.ord_type).to_u8();
    er.time_in_force = tif_to_wire(t.tif).to_u8();
    er.price =
        if has_limit_price(t.ord_type) { price9_field(t.price_ticks, spec, "Price")? } else { I64::new(PRICE9_NULL) };
    er.stop_px =
        if has_stop_price(t.ord_type) { price9_field(t.stop_ticks, spec, "StopPx")? } else { I64::new(PRICE9_NULL) };
    er.order_qty = qty4_field(t.qty_lots, spec, "OrderQty")?;
    Ok(())
}

/// An ExecutionReport with every optional field null and no fills.
fn blank_report(ctx: &mut ReportContext) -> ExecutionReport {
    let mut er = ExecutionReport::new_zeroed();
    er.order_id = U64::new(ORDER_ID_NULL);
    er.exec_id = ctx.exec_id();
    er.aggressor = ENUM_U8_NULL;
    er.reject_code = U16::new(REJECT_CODE_NULL);
    er.price = I64::new(PRICE9_NULL);
    er.stop_px = I64::new(PRICE9_NULL);
    er.order_qty = U64::new(QTY4_NULL);
    er.last_px = I64::new(PRICE9_NULL);
    er.last_qty = U64::new(QTY4_NULL);
    er.avg_px = I64::new(PRICE9_NULL);
    er.trade_id = U64::new(TRADE_ID_NULL);
    er.transact_time = U64::new(ctx.transact_time_ns);
    er
}

/// An ExecutionReport describing `v` with the given ExecType and OrdStatus.
fn view_report(
    v: &OrderView,
    exec_type: ExecType,
    ord_status: OrdStatus,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    let mut er = blank_report(ctx);
    er.order_id = U64::new(v.id.0);
    er.cl_ord_id = v.cl_ord_id.0;
    er.account = U32::new(v.account.0);
    er.security_id = U32::new(v.instrument.0);
    er.exec_type = exec_type.to_u8();
    er.ord_status = ord_status.to_u8();
    put_terms(&mut er, &OrderTerms::from(v), spec)?;
    er.leaves_qty = qty4_field(v.leaves_lots, spec, "LeavesQty")?;
    er.cum_qty = qty4_field(v.cum_lots, spec, "CumQty")?;
    er.avg_px = I64::new(avg_px9(v.cum_cost, v.cum_lots, spec).unwrap_or(PRICE9_NULL));
    Ok(er)
}

/// `Accepted` → ExecutionReport New/New.
pub fn accepted_report(
    v: &OrderView,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    view_report(v, ExecType::New, OrdStatus::New, spec, ctx)
}

/// `Cancelled` → ExecutionReport Canceled/Canceled. `ClOrdId` is the cancel request's id and
/// `OrigClOrdId` the order's when they differ (requested and mass cancels); for unsolicited
/// cancels (IOC/FOK/market remainder, self-trade prevention) `ClOrdId` is the order's and
/// `OrigClOrdId` empty.
pub fn cancelled_report(
    v: &OrderView,
    request_cl_ord_id: &ClOrdId,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    let mut er = view_report(v, ExecType::Canceled, OrdStatus::Canceled, spec, ctx)?;
    if *request_cl_ord_id != v.cl_ord_id {
        er.cl_ord_id = request_cl_ord_id.0;
        er.orig_cl_ord_id = v.cl_ord_id.0;
    }
    Ok(er)
}

/// `Replaced` → ExecutionReport Replaced with the new state; `OrigClOrdId` is the id before.
pub fn replaced_report(
    v: &OrderView,
    orig_cl_ord_id: &ClOrdId,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    let mut er = view_report(v, ExecType::Replaced, derived_status(v.cum_lots, v.leaves_lots), spec, ctx)?;
    er.orig_cl_ord_id = orig_cl_ord_id.0;
    Ok(er)
}

/// `Reduced` (self-trade prevention decrement) → ExecutionReport Restated.
pub fn reduced_report(
    v: &OrderView,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    view_report(v, ExecType::Restated, derived_status(v.cum_lots, v.leaves_lots), spec, ctx)
}

/// `Expired` → ExecutionReport Expired/Expired.
pub fn expired_report(
    v: &OrderView,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    view_report(v, ExecType::Expired, OrdStatus::Expired, spec, ctx)
}

/// `Triggered` → ExecutionReport Triggered.
pub fn triggered_report(
    v: &OrderView,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    view_report(v, ExecType::Triggered, derived_status(v.cum_lots, v.leaves_lots), spec, ctx)
}

/// `Status` → ExecutionReport OrderStatus.
pub fn status_report(
    v: &OrderView,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    view_report(v, ExecType::OrderStatus, derived_status(v.cum_lots, v.leaves_lots), spec, ctx)
}

/// One side of a `Trade` → ExecutionReport Trade with LastPx/LastQty/TradeId/Aggressor.
/// `fill` is `trade.taker` or `trade.maker`; `terms` are that order's.
pub fn fill_report(
    trade: &Trade,
    fill: &Fill,
    terms: &OrderTerms,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    let mut er = blank_report(ctx);
    er.order_id = U64::new(fill.order_id.0);
    er.cl_ord_id = fill.cl_ord_id.0;
    er.account = U32::new(fill.account.0);
    er.security_id = U32::new(trade.instrument.0);
    er.exec_type = ExecType::Trade.to_u8();
    er.ord_status = if fill.leaves_lots == 0 { OrdStatus::Filled.to_u8() } else { OrdStatus::PartiallyFilled.to_u8() };
    put_terms(&mut er, terms, spec)?;
    er.aggressor = side_to_wire(trade.aggressor).to_u8();
    er.last_px = price9_field(trade.price_ticks, spec, "LastPx")?;
    er.last_qty = qty4_field(trade.qty_lots, spec, "LastQty")?;
    er.leaves_qty = qty4_field(fill.leaves_lots, spec, "LeavesQty")?;
    er.cum_qty = qty4_field(fill.cum_lots, spec, "CumQty")?;
    er.avg_px = I64::new(avg_px9(fill.cum_cost, fill.cum_lots, spec).unwrap_or(PRICE9_NULL));
    er.trade_id = U64::new(trade.trade_id.0);
    Ok(er)
}

/// `Trade` → the taker's and the maker's ExecutionReports, in that order.
pub fn trade_reports(
    trade: &Trade,
    taker: &OrderTerms,
    maker: &OrderTerms,
    spec: &InstrumentSpec,
    ctx: &mut ReportContext,
) -> Result<[ExecutionReport; 2], ConvertError> {
    Ok([fill_report(trade, &trade.taker, taker, spec, ctx)?, fill_report(trade, &trade.maker, maker, spec, ctx)?])
}

/// ExecutionReport Rejected for a new order the engine refused. `terms` are the request's;
/// `spec` may be `None` when the instrument is unknown (prices and quantity are then null).
pub fn new_order_engine_reject(
    r: &Reject,
    terms: &OrderTerms,
    spec: Option<&InstrumentSpec>,
    ctx: &mut ReportContext,
) -> Result<ExecutionReport, ConvertError> {
    let mut er = blank_report(ctx);
    er.order_id = U64::new(r.order_id.map_or(ORDER_ID_NULL, |id| id.0));
    er.cl_ord_id = r.cl_ord_id.0;
    er.account = U32::new(r.account.0);
    er.security_id = U32::new(r.instrument.0);
    er.exec_type = ExecType::Rejected.to_u8();
    er.ord_status = OrdStatus::Rejected.to_u8();
    er.reject_code = U16::new(r.reason as u16);
    match spec {
        Some(spec) => put_terms(&mut er, terms, spec)?,
        None => {
            er.side = side_to_wire(terms.side).to_u8();
            er.ord_type = ord_type_to_wire(terms.ord_type).to_u8();
            er.time_in_force = tif_to_wire(terms.tif).to_u8();
        }
    }
    Ok(er)
}

/// OrderCancelReject for a cancel, replace or status request the engine refused. `orig` is
/// the request's order reference, when known.
pub fn cancel_engine_reject(
    r: &Reject,
    response_to: CxlRejResponseTo,
    orig: Option<OrderRef>,
    ctx: &ReportContext,
) -> OrderCancelReject {
    let mut m = OrderCancelReject::new_zeroed();
    let order_id = r.order_id.or(match orig {
        Some(OrderRef::Id(id)) => Some(id),
        _ => None,
    });
    m.order_id = U64::new(order_id.map_or(ORDER_ID_NULL, |id| id.0));
    m.cl_ord_id = r.cl_ord_id.0;
    if let Some(OrderRef::Client(c)) = orig {
        m.orig_cl_ord_id = c.0;
    }
    m.account = U32::new(r.account.0);
    m.response_to = response_to.to_u8();
    m.reject_code = U16::new(r.reason as u16);
    m.transact_time = U64::new(ctx.transact_time_ns);
    // The engine names the order only when it found it live (a refused replace leaves it as it
    // was); otherwise it is unknown.
    m.ord_status = match r.order_id {
        Some(_) if r.order_cum_lots > 0 => OrdStatus::PartiallyFilled,
        Some(_) => OrdStatus::New,
        None => OrdStatus::Rejected,
    }
    .to_u8();
    m
}

fn wire_scope(target: &MassCancelTarget) -> Option<(MassCancelScope, u32)> {
    match target {
        MassCancelTarget::Account(_, None) => Some((MassCancelScope::Account, 0)),
        MassCancelTarget::Account(_, Some(i)) => Some((MassCancelScope::AccountInstrument, i.0)),
        MassCancelTarget::Instrument(_) | MassCancelTarget::All => None,
    }
}

/// OrderMassCancelReport for a finished (`reject_code` = 0) or refused mass cancel. `None` for
/// targets the wire cannot express (by instrument, all: administrative, not client requests).
pub fn mass_cancel_report(
    account: AccountId,
    cl_ord_id: &ClOrdId,
    target: &MassCancelTarget,
    reject_code: u16,
    cancelled: u32,
    ctx: &ReportContext,
) -> Option<OrderMassCancelReport> {
    let (scope, security_id) = wire_scope(target)?;
    let mut m = OrderMassCancelReport::new_zeroed();
    m.cl_ord_id = cl_ord_id.0;
    m.account = U32::new(account.0);
    m.security_id = U32::new(security_id);
    m.scope = scope.to_u8();
    m.reject_code = U16::new(reject_code);
    m.total_affected_orders = U32::new(cancelled);
    m.transact_time = U64::new(ctx.transact_time_ns);
    Some(m)
}

/// Builds every report `event` causes and hands each to `out` with the account it goes to.
///
/// `request` is the body of the command whose events these are (it supplies what a reject
/// event lacks: a refused new order's terms, a refused cancel's order reference, a refused mass
/// cancel's scope). Book, instrument and account events, rejects of administrative commands and
/// mass cancels the wire cannot express produce nothing. A report that cannot be built stops
/// with the error; reports already handed out stay handed out.
pub fn event_reports<L: ReportLookup>(
    event: &Event,
    request: &CommandBody,
    lookup: &L,
    ctx: &mut ReportContext,
    mut out: impl FnMut(AccountId, Report),
) -> Result<(), ConvertError> {
    let spec_of = |id: InstrumentId| lookup.instrument(id).ok_or(ConvertError::UnknownInstrument { security_id: id.0 });
    match event {
        Event::Accepted(v) => out(v.account, Report::Execution(accepted_report(v, spec_of(v.instrument)?, ctx)?)),
        Event::Trade(t) => {
            let spec = spec_of(t.instrument)?;
            let terms = |f: &Fill| {
                lookup.order_terms(f.order_id).ok_or(ConvertError::MissingOrderTerms { order_id: f.order_id.0 })
            };
            let [taker, maker] = trade_reports(t, &terms(&t.taker)?, &terms(&t.maker)?, spec, ctx)?;
            out(t.taker.account, Report::Execution(taker));
            out(t.maker.account, Report::Execution(maker));
        }
        Event::Cancelled { order, request_cl_ord_id, .. } => out(
            order.account,
            Report::Execution(cancelled_report(order, request_cl_ord_id, spec_of(order.instrument)?, ctx)?),
        ),
        Event::Reduced { order, .. } => {
            out(order.account, Report::Execution(reduced_report(order, spec_of(order.instrument)?, ctx)?))
        }
        Event::Replaced { order, orig_cl_ord_id, .. } => out(
            order.account,
            Report::Execution(replaced_report(order, orig_cl_ord_id, spec_of(order.instrument)?, ctx)?),
        ),
        Event::Expired { order, .. } => {
            out(order.account, Report::Execution(expired_report(order, spec_of(order.instrument)?, ctx)?))
        }
        Event::Triggered(v) => out(v.account, Report::Execution(triggered_report(v, spec_of(v.instrument)?, ctx)?)),
        Event::Status(v) => out(v.account, Report::Execution(status_report(v, spec_of(v.instrument)?, ctx)?)),
        Event::MassCancelled { account, cl_ord_id, target, cancelled } => {
            if let Some(m) = mass_cancel_report(*account, cl_ord_id, target, REJECT_CODE_NULL, *cancelled, ctx) {
                out(*account, Report::MassCancel(m));
            }
        }
        Event::Rejected(r) => reject_reports(r, request, lookup, ctx, &mut out)?,
        Event::Book(_) | Event::Instrument { .. } | Event::Account(_) | Event::Operator(_) => {}
    }
    Ok(())
}

fn reject_reports<L: ReportLookup>(
    r: &Reject,
    request: &CommandBody,
    lookup: &L,
    ctx: &mut ReportContext,
    out: &mut impl FnMut(AccountId, Report),
) -> Result<(), ConvertError> {
    match r.request {
        RequestKind::NewOrder => {
            let CommandBody::NewOrder(o) = request else {
                return Err(ConvertError::MissingOrderTerms { order_id: r.order_id.map_or(0, |id| id.0) });
            };
            let spec = lookup.instrument(o.instrument);
            out(r.account, Report::Execution(new_order_engine_reject(r, &OrderTerms::from(o), spec, ctx)?));
        }
        RequestKind::Cancel | RequestKind::Replace | RequestKind::OrderStatus => {
            let (response_to, orig) = match (r.request, request) {
                (RequestKind::Cancel, CommandBody::Cancel(c)) => (CxlRejResponseTo::Cancel, Some(c.order)),
                (RequestKind::Replace, CommandBody::Replace(p)) => (CxlRejResponseTo::Replace, Some(p.order)),
                (RequestKind::OrderStatus, CommandBody::OrderStatus { order, .. }) => {
                    (CxlRejResponseTo::Status, Some(*order))
                }
                (RequestKind::Cancel, _) => (CxlRejResponseTo::Cancel, None),
                (RequestKind::Replace, _) => (CxlRejResponseTo::Replace, None),
                _ => (CxlRejResponseTo::Status, None),
            };
            out(r.account, Report::CancelReject(cancel_engine_reject(r, response_to, orig, ctx)));
        }
        RequestKind::MassCancel => {
            let report = match request {
                CommandBody::MassCancel(m) => {
                    mass_cancel_report(r.account, &r.cl_ord_id, &m.target, r.reason as u16, 0, ctx)
                }
                _ => None,
            };
            if let Some(rep) = report {
                out(r.account, Report::MassCancel(rep));
            }
        }
        RequestKind::Admin => {}
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Gateway rejects (requests refused before reaching the engine)

/// ExecutionReport Rejected for a NewOrderSingle the gateway refused (`code` from
/// [`ConvertError::code`] or a session-level reason). Echoes the request's fields as sent;
/// `msg` must have come through the decoder (its enums are then valid).
pub fn new_order_gateway_reject(msg: &NewOrderSingle, code: u16, ctx: &mut ReportContext) -> ExecutionReport {
    let mut er = blank_report(ctx);
    er.cl_ord_id = msg.cl_ord_id;
    er.account = msg.account;
    er.security_id = msg.security_id;
    er.exec_type = ExecType::Rejected.to_u8();
    er.ord_status = OrdStatus::Rejected.to_u8();
    er.side = msg.side;
    er.ord_type = msg.ord_type;
    er.time_in_force = msg.time_in_force;
    er.reject_code = U16::new(code);
    er.price = msg.price;
    er.stop_px = msg.stop_px;
    er.order_qty = msg.order_qty;
    er
}

fn gateway_cancel_reject(
    order_id: U64,
    cl_ord_id: [u8; 20],
    orig_cl_ord_id: [u8; 20],
    account: U32,
    response_to: CxlRejResponseTo,
    code: u16,
    ctx: &ReportContext,
) -> OrderCancelReject {
    OrderCancelReject {
        order_id,
        cl_ord_id,
        orig_cl_ord_id,
        account,
        response_to: response_to.to_u8(),
        reject_code: U16::new(code),
        transact_time: U64::new(ctx.transact_time_ns),
        // Refused before the engine looked the order up: its status is not known here.
        ord_status: OrdStatus::Rejected.to_u8(),
    }
}

/// OrderCancelReject for an OrderCancelRequest the gateway refused.
pub fn cancel_gateway_reject(msg: &OrderCancelRequest, code: u16, ctx: &ReportContext) -> OrderCancelReject {
    gateway_cancel_reject(
        msg.order_id,
        msg.cl_ord_id,
        msg.orig_cl_ord_id,
        msg.account,
        CxlRejResponseTo::Cancel,
        code,
        ctx,
    )
}

/// OrderCancelReject for an OrderCancelReplaceRequest the gateway refused.
pub fn replace_gateway_reject(msg: &OrderCancelReplaceRequest, code: u16, ctx: &ReportContext) -> OrderCancelReject {
    gateway_cancel_reject(
        msg.order_id,
        msg.cl_ord_id,
        msg.orig_cl_ord_id,
        msg.account,
        CxlRejResponseTo::Replace,
        code,
        ctx,
    )
}

/// OrderCancelReject for an OrderStatusRequest the gateway refused (the request has no
/// ClOrdId of its own; its OrigClOrdId is echoed in both).
pub fn status_gateway_reject(msg: &OrderStatusRequest, code: u16, ctx: &ReportContext) -> OrderCancelReject {
    gateway_cancel_reject(
        msg.order_id,
        msg.orig_cl_ord_id,
        msg.orig_cl_ord_id,
        msg.account,
        CxlRejResponseTo::Status,
        code,
        ctx,
    )
}

/// OrderMassCancelReport for an OrderMassCancelRequest the gateway refused.
pub fn mass_cancel_gateway_reject(
    msg: &OrderMassCancelRequest,
    code: u16,
    ctx: &ReportContext,
) -> OrderMassCancelReport {
    OrderMassCancelReport {
        cl_ord_id: msg.cl_ord_id,
        account: msg.account,
        security_id: msg.security_id,
        scope: msg.scope,
        reject_code: U16::new(code),
        total_affected_orders: U32::new(0),
        transact_time: U64::new(ctx.transact_time_ns),
    }
}

#[cfg(test)]
mod tests {
    use engine::Symbol;

    use super::*;

    fn spec(tick: Decimal, lot: Decimal) -> InstrumentSpec {
        InstrumentSpec::unlimited(InstrumentId(3), Symbol::new("T").unwrap(), tick, lot)
    }

    #[test]
    fn prices_convert_exactly_both_ways() {
        let s = spec(Decimal::new(1, 2), Decimal::ONE);
        assert_eq!(price9_to_ticks(101_250_000_000, &s), Ok(10_125));
        assert_eq!(price9_to_ticks(-1_500_000_000, &s), Ok(-150));
        assert_eq!(price9_to_ticks(101_255_000_000, &s), Err(GridError::OffGrid));
        assert_eq!(price9_to_ticks(1, &s), Err(GridError::OffGrid));
        assert_eq!(ticks_to_price9(10_125, &s), Some(101_250_000_000));
        assert_eq!(ticks_to_price9(i64::MAX, &s), None);
        // A tick with trailing zeros in its mantissa and a very fine tick.
        let s = spec(Decimal::new(500, 4), Decimal::ONE); // 0.0500
        assert_eq!(ticks_to_price9(3, &s), Some(150_000_000));
        assert_eq!(price9_to_ticks(150_000_000, &s), Ok(3));
        let s = spec(Decimal::new(1, 10), Decimal::ONE); // finer than Price9
        assert_eq!(ticks_to_price9(10, &s), Some(1));
        assert_eq!(ticks_to_price9(11, &s), None);
        assert!(check_wire_grid(&s).is_err());
    }

    #[test]
    fn quantities_convert_exactly_both_ways() {
        let s = spec(Decimal::ONE, Decimal::new(1, 3)); // 0.001
        assert_eq!(qty4_to_lots(12_340, &s), Ok(1_234));
        assert_eq!(qty4_to_lots(12_345, &s), Err(GridError::OffGrid));
        assert_eq!(qty4_to_lots(0, &s), Err(GridError::NotPositive));
        assert_eq!(qty4_to_lots(u64::MAX - 1, &s), Err(GridError::OffGrid));
        assert_eq!(lots_to_qty4(1_234, &s), Some(12_340));
        let s = spec(Decimal::ONE, Decimal::new(1, 5));
        assert!(check_wire_grid(&s).is_err());
    }

    #[test]
    fn avg_px_is_exact_or_rounded_half_even() {
        let s = spec(Decimal::new(1, 2), Decimal::ONE);
        // 2 lots at 100 ticks + 1 lot at 101 ticks: 301/3 ticks = 1.00333… → 1.003333333
        assert_eq!(avg_px9(301, 3, &s), Some(1_003_333_333));
        // 2/3 ticks × 0.01 = 0.00666…7 → rounds up
        assert_eq!(avg_px9(2, 3, &s), Some(6_666_667));
        assert_eq!(avg_px9(-2, 3, &s), Some(-6_666_667));
        assert_eq!(avg_px9(100, 2, &s), Some(500_000_000));
        assert_eq!(avg_px9(0, 0, &s), None);
        // Exact ties at 10^-9 round to even: tick 10^-9, cost 1 over 2 lots = 0.5 nano → 0;
        // 3 over 2 = 1.5 → 2; -3 over 2 → -2.
        let s = spec(Decimal::new(1, 9), Decimal::ONE);
        assert_eq!(avg_px9(1, 2, &s), Some(0));
        assert_eq!(avg_px9(3, 2, &s), Some(2));
        assert_eq!(avg_px9(5, 2, &s), Some(2));
        assert_eq!(avg_px9(-3, 2, &s), Some(-2));
        // Finer tick than the wire: 10^-10 ticks, 15 ticks over 1 lot = 1.5 nano → 2.
        let s = spec(Decimal::new(1, 10), Decimal::ONE);
        assert_eq!(avg_px9(15, 1, &s), Some(2));
        assert_eq!(avg_px9(25, 1, &s), Some(2));
    }

    proptest::proptest! {
        /// The 64-bit fast paths agree with the exact 128-bit arithmetic.
        #[test]
        fn fast_paths_agree_with_128_bit_arithmetic(
            num in -(1i64 << 62)..(1i64 << 62),
            den in 1i64..(1i64 << 40),
            value in -(1i64 << 40)..(1i64 << 40),
            mantissa in 1i64..1_000_000,
            scale in 0u32..12,
        ) {
            proptest::prop_assert_eq!(i128::from(round_half_even(num, den)), round_half_even(i128::from(num), i128::from(den)));
            let exact = (i128::from(value) * i128::from(mantissa))
                .checked_mul(POW10[(9u32.saturating_sub(scale)) as usize])
                .filter(|_| scale <= 9);
            if scale <= 9 {
                proptest::prop_assert_eq!(rescale_exact(i128::from(value), i128::from(mantissa), scale, 9), exact);
            }
        }
    }
}

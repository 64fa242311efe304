//! FIX 4.4 application messages ↔ sable's order-entry requests and reports.
//!
//! Inbound, a validated FIX message (D, F, G, H, q) becomes the same fixed block the SBE path
//! decodes (`sbe::messages::NewOrderSingle`, …) and then goes through the *same*
//! [`crate::sbe::convert`] functions, so both protocols share one set of rules and one set of
//! reject codes. The FIX-specific steps are exact decimal parsing (`rust_decimal`; a value
//! with more precision than the wire block carries is off the grid, never rounded), `Symbol`
//! lookup, and the mapping of FIX enum characters.
//!
//! Outbound, a [`Report`] (built once per event for every session, whatever its protocol) is
//! written as ExecutionReport (8), OrderCancelReject (9) or OrderMassCancelReport (r).
//!
//! Conventions (also in the data dictionary `gateway/fix/FIX44-sable.xml`):
//! - `Account` (1) is the numeric engine account id.
//! - The instrument is `Symbol` (55); `SecurityID` (48) with `SecurityIDSource` (22) = 8
//!   (exchange symbol) may name it by numeric id instead.
//! - `TimeInForce` (59) absent = Day (0). `ExecInst` (18) containing `6` (participate don't
//!   initiate) = post-only. `MaxFloor` (111) = iceberg display quantity.
//! - Self-trade prevention: user-defined tag 8000 with the SBE field's values as characters
//!   (`1` allow … `5` decrement-and-cancel); absent = the account's configured mode.
//! - Replace (G): `OrderQty` is the new total; `Price` is required when `OrdType` is limit or
//!   stop-limit and `StopPx` when it is stop or stop-limit. `OrdType` must be the order's type:
//!   sable uses it only to tell which prices apply.
//! - `OrderStatusRequest` (H) names the order by `OrderID` (37; `NONE` = not given) or by
//!   `ClOrdID` (11), the client id of the order asked about.
//! - `OrderMassCancelRequest` (q): `MassCancelRequestType` (530) 7 = all of the account's orders,
//!   1 = the account's orders in the `Symbol`.
//! - Rejects carry FIX `OrdRejReason` (103) / `CxlRejReason` (102) / `MassCancelRejectReason`
//!   (532) mapped from sable's reject code, and `Text` (58) = `"<code>: <reason>"`.
//!   OrderCancelReject's `OrdStatus` (39) is the order's status after the reject: `0` or `1` when
//!   the engine found it live (a refused replace leaves it as it was), `8` when it is unknown or
//!   the gateway refused the request before the engine looked.

use engine::{CommandBody, InstrumentId, InstrumentSpec, RejectReason};
use rust_decimal::Decimal;
use zerocopy::FromZeros;
use zerocopy::little_endian::{U32, U64};

use crate::fix::message::{parse_u64, parse_utc_timestamp_ns};
use crate::sbe::convert::{ConvertError, Report};
use crate::sbe::messages::{
    CxlRejResponseTo, ExecInst, ExecType, ExecutionReport, MassCancelScope, NewOrderSingle, OrdStatus, OrdType,
    OrderCancelReplaceRequest, OrderCancelRequest, OrderMassCancelRequest, OrderStatusRequest, PRICE9_NULL,
    PRICE9_SCALE, QTY4_NULL, QTY4_SCALE, Side, TimeInForce, char_field, char_field_str,
};

/// Read access to a parsed FIX message's body fields (first occurrence of a tag).
pub trait FieldSource {
    /// The value of `tag`, if present.
    fn field(&self, tag: u32) -> Option<&[u8]>;
}

use crate::fix::tags::msg_type;
/// FIX tags this module reads or writes.
pub use crate::fix::tags::tag;

/// What the FIX conversion needs to look instruments up.
pub trait InstrumentLookup {
    /// The spec with this id.
    fn by_id(&self, id: InstrumentId) -> Option<&InstrumentSpec>;
    /// The spec with this symbol.
    fn by_symbol(&self, symbol: &[u8]) -> Option<&InstrumentSpec>;
}

/// A FIX application request after conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixRequest {
    /// NewOrderSingle (D).
    New(NewOrderSingle),
    /// OrderCancelRequest (F).
    Cancel(OrderCancelRequest),
    /// OrderCancelReplaceRequest (G).
    Replace(OrderCancelReplaceRequest),
    /// OrderStatusRequest (H).
    Status(OrderStatusRequest),
    /// OrderMassCancelRequest (q).
    MassCancel(OrderMassCancelRequest),
}

impl FixRequest {
    /// The account the request acts on.
    pub fn account(&self) -> u32 {
        match self {
            FixRequest::New(m) => m.account.get(),
            FixRequest::Cancel(m) => m.account.get(),
            FixRequest::Replace(m) => m.account.get(),
            FixRequest::Status(m) => m.account.get(),
            FixRequest::MassCancel(m) => m.account.get(),
        }
    }

    /// The engine command, through the shared SBE conversion rules.
    pub fn command<'s>(
        &self,
        instrument: impl Fn(InstrumentId) -> Option<&'s InstrumentSpec>,
    ) -> Result<CommandBody, ConvertError> {
        crate::sbe::convert::command_body(&self.inbound(), instrument)
            .expect("application requests always have a command body")
    }

    /// The request as the SBE conversion's inbound view.
    pub fn inbound(&self) -> crate::sbe::codec::Inbound<'_> {
        use crate::sbe::codec::Inbound;
        match self {
            FixRequest::New(m) => Inbound::NewOrderSingle(m),
            FixRequest::Cancel(m) => Inbound::OrderCancelRequest(m),
            FixRequest::Replace(m) => Inbound::OrderCancelReplaceRequest(m),
            FixRequest::Status(m) => Inbound::OrderStatusRequest(m),
            FixRequest::MassCancel(m) => Inbound::OrderMassCancelRequest(m),
        }
    }
}

/// Why a FIX request could not even be put into a request block. The session answers with the
/// message type's reject (ExecutionReport rejected, OrderCancelReject, mass cancel report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestError {
    /// Whatever of the request could be read, for the reject's echo fields.
    pub partial: FixRequest,
    /// Why.
    pub error: ConvertError,
}

fn chars20(v: Option<&[u8]>, err: ConvertError) -> Result<[u8; 20], ConvertError> {
    match v {
        None => Ok([0; 20]),
        Some(v) => char_field::<20>(v).map_err(|_| err),
    }
}

/// Parses a FIX decimal exactly into a mantissa at `scale` decimal places.
/// `Err(true)` = more precision than `scale` (off any grid the wire can carry),
/// `Err(false)` = not a number or out of range.
pub fn decimal_mantissa(v: &[u8], scale: u32) -> Result<i128, bool> {
    let text = std::str::from_utf8(v).map_err(|_| false)?;
    if text.is_empty() || text.contains(['e', 'E', '+']) || text.starts_with('.') || text.ends_with('.') {
        return Err(false);
    }
    let d = Decimal::from_str_exact(text).map_err(|_| false)?.normalize();
    if d.scale() > scale {
        return Err(true);
    }
    let m = d.mantissa();
    m.checked_mul(10i128.pow(scale - d.scale())).ok_or(false)
}

fn price9(v: Option<&[u8]>, off_grid: ConvertError, out_of_range: ConvertError) -> Result<i64, ConvertError> {
    let Some(v) = v else { return Ok(PRICE9_NULL) };
    match decimal_mantissa(v, PRICE9_SCALE) {
        Ok(m) => i64::try_from(m).ok().filter(|&m| m != PRICE9_NULL).ok_or(out_of_range),
        Err(true) => Err(off_grid),
        Err(false) => Err(out_of_range),
    }
}

fn qty4(v: Option<&[u8]>, off_grid: ConvertError, out_of_range: ConvertError) -> Result<u64, ConvertError> {
    let Some(v) = v else { return Ok(QTY4_NULL) };
    match decimal_mantissa(v, QTY4_SCALE) {
        Ok(m) if m < 0 => Err(ConvertError::QtyNotPositive),
        Ok(m) => u64::try_from(m).ok().filter(|&m| m != QTY4_NULL).ok_or(out_of_range),
        Err(true) => Err(off_grid),
        Err(false) => Err(out_of_range),
    }
}

/// The instrument a request names: `SecurityID` with source 8, else `Symbol`. `Ok(0)` when
/// neither is present (the conversion then reports the unknown instrument).
fn security_id(m: &impl FieldSource, instruments: &impl InstrumentLookup) -> Result<u32, ConvertError> {
    if let Some(id) = m.field(tag::SECURITY_ID) {
        let id = parse_u64(id).and_then(|v| u32::try_from(v).ok()).unwrap_or(u32::MAX);
        return Ok(id);
    }
    match m.field(tag::SYMBOL) {
        Some(sym) => {
            instruments.by_symbol(sym).map(|s| s.id.0).ok_or(ConvertError::UnknownInstrument { security_id: 0 })
        }
        None => Err(ConvertError::UnknownInstrument { security_id: 0 }),
    }
}

fn account(m: &impl FieldSource) -> u32 {
    // A non-numeric account is no account sable knows: u32::MAX is never configured (accounts
    // are below engine.max_accounts), so the session refuses it as not authorized.
    m.field(tag::ACCOUNT).and_then(parse_u64).and_then(|v| u32::try_from(v).ok()).unwrap_or(u32::MAX)
}

fn order_id(m: &impl FieldSource) -> u64 {
    // "NONE" (or anything non-numeric) means "not given"; 0 is the SBE null.
    m.field(tag::ORDER_ID).and_then(parse_u64).unwrap_or(0)
}

fn side(v: Option<&[u8]>) -> u8 {
    match v {
        Some(b"1") => Side::Buy.to_u8(),
        Some(b"2") => Side::Sell.to_u8(),
        _ => 0,
    }
}

fn ord_type(v: Option<&[u8]>) -> u8 {
    match v {
        Some(b"1") => OrdType::Market.to_u8(),
        Some(b"2") => OrdType::Limit.to_u8(),
        Some(b"3") => OrdType::Stop.to_u8(),
        Some(b"4") => OrdType::StopLimit.to_u8(),
        _ => 0,
    }
}

fn tif(v: Option<&[u8]>) -> u8 {
    match v {
        None | Some(b"0") => TimeInForce::Day.to_u8(),
        Some(b"1") => TimeInForce::GoodTillCancel.to_u8(),
        Some(b"3") => TimeInForce::ImmediateOrCancel.to_u8(),
        Some(b"4") => TimeInForce::FillOrKill.to_u8(),
        Some(b"6") => TimeInForce::GoodTillDate.to_u8(),
        _ => u8::MAX,
    }
}

fn stp(v: Option<&[u8]>) -> u8 {
    match v {
        None => 0,
        Some([c @ b'1'..=b'5']) => c - b'0',
        _ => u8::MAX,
    }
}

fn exec_inst(v: Option<&[u8]>) -> u8 {
    // MultipleCharValue: space-separated characters; only 6 (post-only) is acted on, the
    // dictionary refuses characters sable does not support.
    match v {
        Some(v) if v.split(|&b| b == b' ').any(|c| c == b"6") => ExecInst::POST_ONLY,
        _ => 0,
    }
}

/// Builds the request block of a FIX application message, or says why it cannot.
/// `msg_type` is the value of tag 35; `None` for a type that is not an order-entry request.
pub fn request(
    msg_type: &[u8],
    m: &impl FieldSource,
    instruments: &impl InstrumentLookup,
) -> Option<Result<FixRequest, RequestError>> {
    Some(match msg_type {
        msg_type::NEW_ORDER_SINGLE => new_order_single(m, instruments),
        msg_type::ORDER_CANCEL_REQUEST => cancel_request(m, instruments),
        msg_type::ORDER_CANCEL_REPLACE_REQUEST => replace_request(m, instruments),
        msg_type::ORDER_STATUS_REQUEST => status_request(m, instruments),
        msg_type::ORDER_MASS_CANCEL_REQUEST => mass_cancel_request(m, instruments),
        _ => return None,
    })
}

fn new_order_single(m: &impl FieldSource, inst: &impl InstrumentLookup) -> Result<FixRequest, RequestError> {
    let mut b = NewOrderSingle::new_zeroed();
    b.account = U32::new(account(m));
    b.side = side(m.field(tag::SIDE));
    b.ord_type = ord_type(m.field(tag::ORD_TYPE));
    b.time_in_force = tif(m.field(tag::TIME_IN_FORCE));
    b.price = I64Le::new(PRICE9_NULL);
    b.stop_px = I64Le::new(PRICE9_NULL);
    b.order_qty = U64::new(QTY4_NULL);
    b.display_qty = U64::new(QTY4_NULL);
    let fail = |b: NewOrderSingle, error| Err(RequestError { partial: FixRequest::New(b), error });
    // The ClOrdID is echoed in the reject, so read it first (lossy for the echo).
    b.cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::CL_ORD_ID).unwrap_or(b""));
    if let Err(e) = chars20(m.field(tag::CL_ORD_ID), ConvertError::InvalidClOrdId) {
        return fail(b, e);
    }
    match security_id(m, inst) {
        Ok(id) => b.security_id = U32::new(id),
        Err(e) => return fail(b, e),
    }
    b.self_trade_prevention = stp(m.field(tag::SELF_TRADE_PREVENTION));
    b.exec_inst = exec_inst(m.field(tag::EXEC_INST));
    match price9(m.field(tag::PRICE), ConvertError::PriceOffGrid, ConvertError::PriceOutOfRange) {
        Ok(p) => b.price = I64Le::new(p),
        Err(e) => return fail(b, e),
    }
    match price9(m.field(tag::STOP_PX), ConvertError::StopPxOffGrid, ConvertError::StopPxOutOfRange) {
        Ok(p) => b.stop_px = I64Le::new(p),
        Err(e) => return fail(b, e),
    }
    match qty4(m.field(tag::ORDER_QTY), ConvertError::QtyOffGrid, ConvertError::QtyOutOfRange) {
        Ok(q) => b.order_qty = U64::new(q),
        Err(e) => return fail(b, e),
    }
    match qty4(m.field(tag::MAX_FLOOR), ConvertError::DisplayQtyOffGrid, ConvertError::DisplayQtyOutOfRange) {
        Ok(q) => b.display_qty = U64::new(q),
        Err(ConvertError::QtyNotPositive) => return fail(b, ConvertError::DisplayQtyOutOfRange),
        Err(e) => return fail(b, e),
    }
    if let Some(t) = m.field(tag::EXPIRE_TIME) {
        match parse_utc_timestamp_ns(t).and_then(|ns| u64::try_from(ns).ok()) {
            Some(ns) if ns > 0 => b.expire_time = U64::new(ns),
            _ => return fail(b, ConvertError::ExpireTimeRequired),
        }
    }
    Ok(FixRequest::New(b))
}

fn cancel_request(m: &impl FieldSource, inst: &impl InstrumentLookup) -> Result<FixRequest, RequestError> {
    let mut b = OrderCancelRequest::new_zeroed();
    b.account = U32::new(account(m));
    b.order_id = U64::new(order_id(m));
    b.cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::CL_ORD_ID).unwrap_or(b""));
    b.orig_cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::ORIG_CL_ORD_ID).unwrap_or(b""));
    let fail = |b: OrderCancelRequest, error| Err(RequestError { partial: FixRequest::Cancel(b), error });
    if let Err(e) = chars20(m.field(tag::CL_ORD_ID), ConvertError::InvalidClOrdId) {
        return fail(b, e);
    }
    if let Err(e) = chars20(m.field(tag::ORIG_CL_ORD_ID), ConvertError::InvalidOrigClOrdId) {
        return fail(b, e);
    }
    b.security_id = U32::new(security_id(m, inst).unwrap_or(0));
    Ok(FixRequest::Cancel(b))
}

fn replace_request(m: &impl FieldSource, inst: &impl InstrumentLookup) -> Result<FixRequest, RequestError> {
    let mut b = OrderCancelReplaceRequest::new_zeroed();
    b.account = U32::new(account(m));
    b.order_id = U64::new(order_id(m));
    b.cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::CL_ORD_ID).unwrap_or(b""));
    b.orig_cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::ORIG_CL_ORD_ID).unwrap_or(b""));
    b.price = I64Le::new(PRICE9_NULL);
    b.stop_px = I64Le::new(PRICE9_NULL);
    b.order_qty = U64::new(QTY4_NULL);
    let fail = |b: OrderCancelReplaceRequest, error| Err(RequestError { partial: FixRequest::Replace(b), error });
    if let Err(e) = chars20(m.field(tag::CL_ORD_ID), ConvertError::InvalidClOrdId) {
        return fail(b, e);
    }
    if let Err(e) = chars20(m.field(tag::ORIG_CL_ORD_ID), ConvertError::InvalidOrigClOrdId) {
        return fail(b, e);
    }
    match security_id(m, inst) {
        Ok(id) => b.security_id = U32::new(id),
        Err(e) => return fail(b, e),
    }
    let ty = OrdType::from_u8(ord_type(m.field(tag::ORD_TYPE)));
    let needs_price = matches!(ty, Some(OrdType::Limit | OrdType::StopLimit));
    let needs_stop = matches!(ty, Some(OrdType::Stop | OrdType::StopLimit));
    let price = match price9(m.field(tag::PRICE), ConvertError::PriceOffGrid, ConvertError::PriceOutOfRange) {
        Ok(p) => p,
        Err(e) => return fail(b, e),
    };
    let stop = match price9(m.field(tag::STOP_PX), ConvertError::StopPxOffGrid, ConvertError::StopPxOutOfRange) {
        Ok(p) => p,
        Err(e) => return fail(b, e),
    };
    if needs_price && price == PRICE9_NULL {
        return fail(b, ConvertError::PriceRequired);
    }
    if needs_stop && stop == PRICE9_NULL {
        return fail(b, ConvertError::StopPxRequired);
    }
    // The engine reads Price only for limit/stop-limit orders and StopPx only for pending
    // stops; a price that does not apply is filled with one that is on every grid.
    b.price = I64Le::new(if price == PRICE9_NULL { 0 } else { price });
    b.stop_px = I64Le::new(if stop == PRICE9_NULL { if needs_price { price } else { 0 } } else { stop });
    match qty4(m.field(tag::ORDER_QTY), ConvertError::QtyOffGrid, ConvertError::QtyOutOfRange) {
        Ok(q) => b.order_qty = U64::new(q),
        Err(e) => return fail(b, e),
    }
    Ok(FixRequest::Replace(b))
}

fn status_request(m: &impl FieldSource, inst: &impl InstrumentLookup) -> Result<FixRequest, RequestError> {
    let mut b = OrderStatusRequest::new_zeroed();
    b.account = U32::new(account(m));
    b.order_id = U64::new(order_id(m));
    b.orig_cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::CL_ORD_ID).unwrap_or(b""));
    b.security_id = U32::new(security_id(m, inst).unwrap_or(0));
    if let Err(e) = chars20(m.field(tag::CL_ORD_ID), ConvertError::InvalidOrigClOrdId) {
        return Err(RequestError { partial: FixRequest::Status(b), error: e });
    }
    Ok(FixRequest::Status(b))
}

fn mass_cancel_request(m: &impl FieldSource, inst: &impl InstrumentLookup) -> Result<FixRequest, RequestError> {
    let mut b = OrderMassCancelRequest::new_zeroed();
    b.account = U32::new(account(m));
    b.cl_ord_id = crate::sbe::messages::char_field_lossy::<20>(m.field(tag::CL_ORD_ID).unwrap_or(b""));
    let fail = |b: OrderMassCancelRequest, error| Err(RequestError { partial: FixRequest::MassCancel(b), error });
    b.scope = match m.field(tag::MASS_CANCEL_REQUEST_TYPE) {
        Some(b"7") => MassCancelScope::Account.to_u8(),
        Some(b"1") => MassCancelScope::AccountInstrument.to_u8(),
        _ => return fail(b, ConvertError::InvalidEnumValue { field: "MassCancelRequestType" }),
    };
    if let Err(e) = chars20(m.field(tag::CL_ORD_ID), ConvertError::InvalidClOrdId) {
        return fail(b, e);
    }
    if b.scope == MassCancelScope::AccountInstrument.to_u8() {
        match security_id(m, inst) {
            Ok(id) => b.security_id = U32::new(id),
            Err(e) => return fail(b, e),
        }
    }
    Ok(FixRequest::MassCancel(b))
}

type I64Le = zerocopy::little_endian::I64;

// ------------------------------------------------------------------------------------------
// Reject reasons

/// A sable reject code in words (engine [`RejectReason`] codes and gateway [`ConvertError`]
/// codes).
pub fn reject_text(code: u16) -> &'static str {
    const ENGINE: [&str; 29] = [
        "",
        "unknown instrument",
        "instrument is halted or closed",
        "unknown account",
        "duplicate ClOrdID among live orders",
        "unknown order",
        "quantity below the instrument minimum",
        "quantity above the instrument maximum",
        "price outside the price band",
        "no reference price for the band",
        "invalid display quantity",
        "ExpireTime is not in the future",
        "notional above the instrument maximum",
        "quantity above the account maximum",
        "notional above the account maximum",
        "account has its maximum of open orders",
        "account open buy notional limit",
        "account open sell notional limit",
        "post-only order would take liquidity",
        "post-only needs a limit order that can rest",
        "order capacity of the engine reached",
        "price level capacity reached",
        "instrument exists",
        "instrument has orders",
        "invalid specification",
        "id out of range",
        "order cannot be replaced",
        "kill switch engaged",
        "too many kill switches engaged",
    ];
    const GATEWAY: [&str; 22] = [
        "ClOrdID is empty, too long (max 20) or not printable ASCII",
        "OrigClOrdID is too long (max 20) or not printable ASCII",
        "neither OrderID nor OrigClOrdID names the order",
        "SecurityID does not match the instrument",
        "Price is required for this order type",
        "Price is not allowed for this order type",
        "Price is not a multiple of the tick size",
        "Price is out of range",
        "StopPx is required for this order type",
        "StopPx is not allowed for this order type",
        "StopPx is not a multiple of the tick size",
        "StopPx is out of range",
        "OrderQty is required",
        "OrderQty is not a multiple of the lot size",
        "OrderQty is out of range",
        "MaxFloor is not a multiple of the lot size",
        "MaxFloor is out of range",
        "ExpireTime is required for GTD",
        "ExpireTime is only allowed with GTD",
        "a field holds an unsupported value",
        "a value cannot be represented exactly",
        "order terms unknown",
    ];
    match code {
        1..=28 => ENGINE[code as usize],
        1001..=1022 => GATEWAY[(code - 1001) as usize],
        _ => "rejected",
    }
}

/// FIX `OrdRejReason` (103) for a sable reject code.
pub fn ord_rej_reason(code: u16) -> u32 {
    const UNKNOWN_INSTRUMENT: u16 = RejectReason::UnknownInstrument as u16;
    const NOT_OPEN: u16 = RejectReason::InstrumentNotOpen as u16;
    const UNKNOWN_ACCOUNT: u16 = RejectReason::UnknownAccount as u16;
    const DUPLICATE: u16 = RejectReason::DuplicateClOrdId as u16;
    const UNKNOWN_ORDER: u16 = RejectReason::UnknownOrder as u16;
    const QTY_MIN: u16 = RejectReason::QtyBelowMin as u16;
    const QTY_MAX: u16 = RejectReason::QtyAboveMax as u16;
    const EXPIRE_PAST: u16 = RejectReason::ExpireTimeInPast as u16;
    match code {
        UNKNOWN_INSTRUMENT => 1,
        NOT_OPEN => 2,
        UNKNOWN_ACCOUNT => 15,
        DUPLICATE => 6,
        UNKNOWN_ORDER => 5,
        QTY_MIN | QTY_MAX | 1013..=1017 => 13,
        EXPIRE_PAST => 4,
        8 | 12..=17 => 3,
        10 | 18 | 19 | 1005 | 1006 | 1009 | 1010 | 1018..=1020 => 11,
        _ => 99,
    }
}

/// FIX `CxlRejReason` (102) for a sable reject code.
pub fn cxl_rej_reason(code: u16) -> u32 {
    match code {
        c if c == RejectReason::UnknownOrder as u16 || c == 1003 => 1,
        c if c == RejectReason::DuplicateClOrdId as u16 => 6,
        _ => 99,
    }
}

// ------------------------------------------------------------------------------------------
// Outbound

/// Where outbound report fields go: a FIX message writer's body methods.
pub trait BodyWriter {
    /// A string field.
    fn str_field(&mut self, tag: u32, v: &[u8]);
    /// An unsigned integer field.
    fn u64_field(&mut self, tag: u32, v: u64);
    /// A single-character field.
    fn char_field(&mut self, tag: u32, v: u8);
    /// A decimal field: `mantissa × 10^-scale`, shortest exact form.
    fn decimal_field(&mut self, tag: u32, mantissa: i64, scale: u32);
    /// A UTCTimestamp field with millisecond precision.
    fn timestamp_field(&mut self, tag: u32, unix_ns: u64);
}

/// The FIX MsgType (35) of a report.
pub fn report_msg_type(r: &Report) -> &'static [u8] {
    match r {
        Report::Execution(_) => msg_type::EXECUTION_REPORT,
        Report::CancelReject(_) => msg_type::ORDER_CANCEL_REJECT,
        Report::MassCancel(_) => msg_type::ORDER_MASS_CANCEL_REPORT,
    }
}

fn exec_type_char(v: u8) -> u8 {
    match ExecType::from_u8(v) {
        Some(ExecType::New) => b'0',
        Some(ExecType::Canceled) => b'4',
        Some(ExecType::Replaced) => b'5',
        Some(ExecType::Rejected) => b'8',
        Some(ExecType::Expired) => b'C',
        Some(ExecType::Restated) => b'D',
        Some(ExecType::Trade) => b'F',
        Some(ExecType::Triggered) => b'L',
        Some(ExecType::OrderStatus) | None => b'I',
    }
}

fn ord_status_char(v: u8) -> u8 {
    match OrdStatus::from_u8(v) {
        Some(OrdStatus::New) => b'0',
        Some(OrdStatus::PartiallyFilled) => b'1',
        Some(OrdStatus::Filled) => b'2',
        Some(OrdStatus::Canceled) => b'4',
        Some(OrdStatus::Rejected) | None => b'8',
        Some(OrdStatus::Expired) => b'C',
    }
}

fn write_cl_ord_id(w: &mut impl BodyWriter, t: u32, v: &[u8; 20]) {
    if let Some(s) = char_field_str(v).filter(|s| !s.is_empty()) {
        w.str_field(t, s.as_bytes());
    }
}

fn write_order_id(w: &mut impl BodyWriter, id: u64) {
    if id == 0 {
        w.str_field(tag::ORDER_ID, b"NONE");
    } else {
        w.u64_field(tag::ORDER_ID, id);
    }
}

fn write_reject_text(w: &mut impl BodyWriter, code: u16) {
    let mut buf = [0u8; 96];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = std::io::Write::write_fmt(&mut cur, format_args!("{code}: {}", reject_text(code)));
    let n = cur.position() as usize;
    w.str_field(tag::TEXT, &buf[..n]);
}

/// Writes the body of a report (everything after the standard header). `symbol` names the
/// instrument of the report's `SecurityId` (empty when unknown: then `SecurityID` is written).
pub fn write_report(r: &Report, symbol: &[u8], w: &mut impl BodyWriter) {
    match r {
        Report::Execution(m) => write_execution_report(m, symbol, w),
        Report::CancelReject(m) => {
            // ClOrdID and OrigClOrdID are required on 9: "NONE" stands in for an id the
            // request did not carry (a cancel by OrderID) or that was not valid.
            write_order_id(w, m.order_id.get());
            for (t, v) in [(tag::CL_ORD_ID, &m.cl_ord_id), (tag::ORIG_CL_ORD_ID, &m.orig_cl_ord_id)] {
                match char_field_str(v).filter(|s| !s.is_empty()) {
                    Some(s) => w.str_field(t, s.as_bytes()),
                    None => w.str_field(t, b"NONE"),
                }
            }
            w.char_field(tag::ORD_STATUS, ord_status_char(m.ord_status));
            w.u64_field(tag::ACCOUNT, u64::from(m.account.get()));
            let code = m.reject_code.get();
            let to = match CxlRejResponseTo::from_u8(m.response_to) {
                Some(CxlRejResponseTo::Replace) => b'2',
                _ => b'1',
            };
            w.char_field(tag::CXL_REJ_RESPONSE_TO, to);
            w.u64_field(tag::CXL_REJ_REASON, u64::from(cxl_rej_reason(code)));
            write_reject_text(w, code);
            w.timestamp_field(tag::TRANSACT_TIME, m.transact_time.get());
        }
        Report::MassCancel(m) => {
            w.str_field(tag::ORDER_ID, b"NONE");
            write_cl_ord_id(w, tag::CL_ORD_ID, &m.cl_ord_id);
            w.u64_field(tag::ACCOUNT, u64::from(m.account.get()));
            let by_security = m.scope == MassCancelScope::AccountInstrument.to_u8();
            w.char_field(tag::MASS_CANCEL_REQUEST_TYPE, if by_security { b'1' } else { b'7' });
            let code = m.reject_code.get();
            if code == 0 {
                w.char_field(tag::MASS_CANCEL_RESPONSE, if by_security { b'1' } else { b'7' });
                w.u64_field(tag::TOTAL_AFFECTED_ORDERS, u64::from(m.total_affected_orders.get()));
            } else {
                w.char_field(tag::MASS_CANCEL_RESPONSE, b'0');
                w.u64_field(tag::MASS_CANCEL_REJECT_REASON, 99);
                write_reject_text(w, code);
            }
            if by_security {
                write_instrument(w, symbol, m.security_id.get());
            }
            w.timestamp_field(tag::TRANSACT_TIME, m.transact_time.get());
        }
    }
}

fn write_instrument(w: &mut impl BodyWriter, symbol: &[u8], security_id: u32) {
    if symbol.is_empty() {
        w.str_field(tag::SYMBOL, b"[N/A]");
        w.u64_field(tag::SECURITY_ID, u64::from(security_id));
        w.char_field(tag::SECURITY_ID_SOURCE, b'8');
    } else {
        w.str_field(tag::SYMBOL, symbol);
    }
}

/// In ascending tag order, as the message goes out: the session's sort then has nothing to do.
fn write_execution_report(m: &ExecutionReport, symbol: &[u8], w: &mut impl BodyWriter) {
    let qty = |v: u64| i64::try_from(if v == QTY4_NULL { 0 } else { v }).unwrap_or(i64::MAX);
    let (trade, rejected) = (m.exec_type == ExecType::Trade.to_u8(), m.exec_type == ExecType::Rejected.to_u8());
    let code = m.reject_code.get();
    w.u64_field(tag::ACCOUNT, u64::from(m.account.get()));
    let avg = m.avg_px.get();
    w.decimal_field(tag::AVG_PX, if avg == PRICE9_NULL { 0 } else { avg }, PRICE9_SCALE);
    write_cl_ord_id(w, tag::CL_ORD_ID, &m.cl_ord_id);
    w.decimal_field(tag::CUM_QTY, qty(m.cum_qty.get()), QTY4_SCALE);
    w.u64_field(tag::EXEC_ID, m.exec_id.get());
    if symbol.is_empty() {
        w.char_field(tag::SECURITY_ID_SOURCE, b'8');
    }
    if trade {
        w.decimal_field(tag::LAST_PX, m.last_px.get(), PRICE9_SCALE);
        w.decimal_field(tag::LAST_QTY, qty(m.last_qty.get()), QTY4_SCALE);
    }
    write_order_id(w, m.order_id.get());
    if m.order_qty.get() != QTY4_NULL {
        w.decimal_field(tag::ORDER_QTY, qty(m.order_qty.get()), QTY4_SCALE);
    }
    w.char_field(tag::ORD_STATUS, ord_status_char(m.ord_status));
    if let Some(t) = OrdType::from_u8(m.ord_type) {
        w.char_field(tag::ORD_TYPE, b'0' + t.to_u8());
    }
    write_cl_ord_id(w, tag::ORIG_CL_ORD_ID, &m.orig_cl_ord_id);
    if m.price.get() != PRICE9_NULL {
        w.decimal_field(tag::PRICE, m.price.get(), PRICE9_SCALE);
    }
    if symbol.is_empty() {
        w.u64_field(tag::SECURITY_ID, u64::from(m.security_id.get()));
    }
    if let Some(s) = Side::from_u8(m.side) {
        w.char_field(tag::SIDE, if s == Side::Buy { b'1' } else { b'2' });
    }
    w.str_field(tag::SYMBOL, if symbol.is_empty() { b"[N/A]" } else { symbol });
    if rejected {
        write_reject_text(w, code);
    }
    if let Some(t) = TimeInForce::from_u8(m.time_in_force) {
        w.char_field(tag::TIME_IN_FORCE, b'0' + t.to_u8());
    }
    w.timestamp_field(tag::TRANSACT_TIME, m.transact_time.get());
    if m.stop_px.get() != PRICE9_NULL {
        w.decimal_field(tag::STOP_PX, m.stop_px.get(), PRICE9_SCALE);
    }
    if rejected {
        w.u64_field(tag::ORD_REJ_REASON, u64::from(ord_rej_reason(code)));
    }
    w.char_field(tag::EXEC_TYPE, exec_type_char(m.exec_type));
    w.decimal_field(tag::LEAVES_QTY, qty(m.leaves_qty.get()), QTY4_SCALE);
    if trade && m.trade_id.get() != 0 {
        w.u64_field(tag::TRADE_ID, m.trade_id.get());
    }
    if trade && Side::from_u8(m.aggressor).is_some() {
        w.char_field(tag::AGGRESSOR_INDICATOR, if m.aggressor == m.side { b'Y' } else { b'N' });
    }
}

#[cfg(test)]
mod tests {
    use zerocopy::little_endian::{I64, U16};

    use super::*;

    /// The tags a report's body is written with, in order.
    #[derive(Default)]
    struct Tags(Vec<u32>);

    impl BodyWriter for Tags {
        fn str_field(&mut self, tag: u32, _: &[u8]) {
            self.0.push(tag);
        }
        fn u64_field(&mut self, tag: u32, _: u64) {
            self.0.push(tag);
        }
        fn char_field(&mut self, tag: u32, _: u8) {
            self.0.push(tag);
        }
        fn decimal_field(&mut self, tag: u32, _: i64, _: u32) {
            self.0.push(tag);
        }
        fn timestamp_field(&mut self, tag: u32, _: u64) {
            self.0.push(tag);
        }
    }

    fn report(exec_type: ExecType) -> ExecutionReport {
        let mut m = ExecutionReport::new_zeroed();
        m.exec_type = exec_type.to_u8();
        m.order_id = U64::new(7);
        m.cl_ord_id = *b"c1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        m.orig_cl_ord_id = *b"c0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        m.side = Side::Buy.to_u8();
        m.aggressor = Side::Sell.to_u8();
        m.ord_type = OrdType::Limit.to_u8();
        m.time_in_force = TimeInForce::Day.to_u8();
        m.price = I64::new(1_000_000_000);
        m.stop_px = I64::new(2_000_000_000);
        m.order_qty = U64::new(10_000);
        m.trade_id = U64::new(3);
        m.reject_code = U16::new(1);
        m
    }

    #[test]
    fn execution_reports_are_written_in_ascending_tag_order() {
        for exec_type in [ExecType::New, ExecType::Trade, ExecType::Rejected, ExecType::Canceled] {
            for symbol in [&b"DEMO"[..], b""] {
                let mut tags = Tags::default();
                write_report(&Report::Execution(report(exec_type)), symbol, &mut tags);
                assert!(tags.0.is_sorted_by(|a, b| a < b), "{exec_type:?}, symbol {symbol:?}: {:?}", tags.0);
                assert!(tags.0.contains(&tag::EXEC_TYPE) && tags.0.contains(&tag::TRANSACT_TIME));
            }
        }
    }
}

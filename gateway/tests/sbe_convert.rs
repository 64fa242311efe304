//! Wire ↔ engine conversion: every inbound reject path with its code, exact decimal handling,
//! and the reports built from a real engine's events (decoded back strictly).

mod sbe_support;

use std::collections::HashMap;

use engine::sim::FlowGen;
use engine::{
    AccountId, AccountSpec, ClOrdId, Command, CommandBody, Engine, EngineLimits, Event, InstrumentId, InstrumentSpec,
    MassCancel, MassCancelTarget, OrderId, OrderRef, RejectReason, Symbol, TradingStatus,
};
use gateway::sbe::convert::{self, ConvertError, OrderTerms, Report, ReportContext, ReportLookup};
use gateway::sbe::messages::*;
use gateway::sbe::{Inbound, Outbound, decode_outbound_frame};
use proptest::prelude::*;
use rust_decimal::Decimal;
use zerocopy::FromZeros;
use zerocopy::little_endian::{I64, U32, U64};

/// Tick 0.01, lot 0.001.
fn spec() -> InstrumentSpec {
    InstrumentSpec {
        id: InstrumentId(3),
        symbol: Symbol::new("ABC").unwrap(),
        tick_size: Decimal::new(1, 2),
        lot_size: Decimal::new(1, 3),
        min_qty_lots: 1,
        max_qty_lots: 1_000_000_000,
        max_notional_nanos: u128::MAX,
        band_bps: 0,
        reference_ticks: None,
        status: TradingStatus::Open,
    }
}

fn limit_buy() -> NewOrderSingle {
    NewOrderSingle {
        cl_ord_id: char_field(b"A-1").unwrap(),
        account: U32::new(7),
        security_id: U32::new(3),
        side: Side::Buy.to_u8(),
        ord_type: OrdType::Limit.to_u8(),
        time_in_force: TimeInForce::Day.to_u8(),
        exec_inst: 0,
        self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
        price: I64::new(101_250_000_000), // 101.25
        stop_px: I64::new(PRICE9_NULL),
        order_qty: U64::new(15_000), // 1.5
        display_qty: U64::new(QTY4_NULL),
        expire_time: U64::new(0),
    }
}

#[test]
fn new_order_converts_exactly() {
    let o = convert::new_order(&limit_buy(), &spec()).unwrap();
    assert_eq!(o.account, AccountId(7));
    assert_eq!(o.cl_ord_id.as_str(), "A-1");
    assert_eq!(o.instrument, InstrumentId(3));
    assert_eq!((o.side, o.ord_type, o.tif), (engine::Side::Buy, engine::OrdType::Limit, engine::TimeInForce::Day));
    assert_eq!((o.price_ticks, o.stop_ticks, o.qty_lots, o.display_lots), (10_125, 0, 1_500, 0));
    assert_eq!((o.expire_ns, o.post_only, o.stp), (0, false, None));

    let mut m = limit_buy();
    m.ord_type = OrdType::StopLimit.to_u8();
    m.stop_px = I64::new(-2_000_000_000);
    m.time_in_force = TimeInForce::GoodTillDate.to_u8();
    m.expire_time = U64::new(123);
    m.exec_inst = ExecInst::POST_ONLY;
    m.display_qty = U64::new(5_000);
    m.self_trade_prevention = SelfTradePrevention::CancelBoth.to_u8();
    let o = convert::new_order(&m, &spec()).unwrap();
    assert_eq!((o.stop_ticks, o.display_lots, o.expire_ns), (-200, 500, 123));
    assert_eq!((o.post_only, o.stp), (true, Some(engine::StpMode::CancelBoth)));
    // DisplayQty 0 means fully displayed, like null.
    m.display_qty = U64::new(0);
    assert_eq!(convert::new_order(&m, &spec()).unwrap().display_lots, 0);
}

#[test]
fn every_new_order_reject_has_its_code() {
    type Edit = fn(&mut NewOrderSingle);
    let cases: &[(&str, Edit, ConvertError, u16)] = &[
        ("empty ClOrdId", |m| m.cl_ord_id = [0; 20], ConvertError::InvalidClOrdId, 1001),
        ("space in ClOrdId", |m| m.cl_ord_id = char_field(b"a b").unwrap(), ConvertError::InvalidClOrdId, 1001),
        (
            "SecurityId mismatch",
            |m| m.security_id = U32::new(4),
            ConvertError::InstrumentMismatch { security_id: 4, instrument: 3 },
            1004,
        ),
        ("null limit price", |m| m.price = I64::new(PRICE9_NULL), ConvertError::PriceRequired, 1005),
        ("price on a market order", |m| m.ord_type = OrdType::Market.to_u8(), ConvertError::PriceNotAllowed, 1006),
        ("price off the tick grid", |m| m.price = I64::new(101_255_000_000), ConvertError::PriceOffGrid, 1007),
        ("one nano off", |m| m.price = I64::new(101_250_000_001), ConvertError::PriceOffGrid, 1007),
        (
            "stop order without StopPx",
            |m| {
                m.ord_type = OrdType::Stop.to_u8();
                m.price = I64::new(PRICE9_NULL);
            },
            ConvertError::StopPxRequired,
            1009,
        ),
        ("StopPx on a limit order", |m| m.stop_px = I64::new(100_000_000_000), ConvertError::StopPxNotAllowed, 1010),
        (
            "StopPx off grid",
            |m| {
                m.ord_type = OrdType::StopLimit.to_u8();
                m.stop_px = I64::new(1);
            },
            ConvertError::StopPxOffGrid,
            1011,
        ),
        ("null quantity", |m| m.order_qty = U64::new(QTY4_NULL), ConvertError::QtyRequired, 1013),
        (
            "zero quantity",
            |m| m.order_qty = U64::new(0),
            ConvertError::QtyNotPositive,
            RejectReason::QtyBelowMin as u16,
        ),
        ("quantity off the lot grid", |m| m.order_qty = U64::new(15_005), ConvertError::QtyOffGrid, 1014),
        ("display off the lot grid", |m| m.display_qty = U64::new(1), ConvertError::DisplayQtyOffGrid, 1016),
        (
            "GTD without ExpireTime",
            |m| m.time_in_force = TimeInForce::GoodTillDate.to_u8(),
            ConvertError::ExpireTimeRequired,
            1018,
        ),
        ("ExpireTime without GTD", |m| m.expire_time = U64::new(5), ConvertError::ExpireTimeNotAllowed, 1019),
        ("bad Side byte", |m| m.side = 9, ConvertError::InvalidEnumValue { field: "Side" }, 1020),
        ("bad ExecInst bits", |m| m.exec_inst = 0x80, ConvertError::InvalidEnumValue { field: "ExecInst" }, 1020),
    ];
    for (what, edit, err, code) in cases {
        let mut m = limit_buy();
        edit(&mut m);
        assert_eq!(convert::new_order(&m, &spec()), Err(*err), "{what}");
        assert_eq!(err.code(), *code, "{what}");
        assert!(err.code() < 1000 || err.code() >= ConvertError::FIRST_GATEWAY_CODE);
    }
    // Out of range: 10^19 nano-units / 0.01 fits no i64 tick count only with a finer tick.
    let mut fine = spec();
    fine.tick_size = Decimal::new(1, 9);
    let mut m = limit_buy();
    m.price = I64::new(i64::MAX);
    assert_eq!(convert::new_order(&m, &fine).map(|o| o.price_ticks), Ok(i64::MAX));
    let mut tiny = spec();
    tiny.tick_size = Decimal::new(1, 20);
    assert_eq!(convert::new_order(&m, &tiny), Err(ConvertError::PriceOutOfRange));
    let mut m = limit_buy();
    m.order_qty = U64::new(u64::MAX - 1);
    let mut tiny_lot = spec();
    tiny_lot.lot_size = Decimal::new(1, 20);
    assert_eq!(convert::new_order(&m, &tiny_lot), Err(ConvertError::QtyOutOfRange));
}

#[test]
fn cancel_replace_mass_cancel_and_status_map_to_commands() {
    let mut c = OrderCancelRequest::new_zeroed();
    c.cl_ord_id = char_field(b"C-1").unwrap();
    c.orig_cl_ord_id = char_field(b"A-1").unwrap();
    c.account = U32::new(7);
    let cancel = convert::cancel(&c).unwrap();
    assert_eq!(cancel.order, OrderRef::Client(ClOrdId::new(b"A-1").unwrap()));
    assert_eq!(cancel.cl_ord_id.as_str(), "C-1");
    c.order_id = U64::new(99);
    assert_eq!(convert::cancel(&c).unwrap().order, OrderRef::Id(OrderId(99)));
    c.order_id = U64::new(0);
    c.orig_cl_ord_id = [0; 20];
    assert_eq!(convert::cancel(&c), Err(ConvertError::MissingOrderRef));
    c.orig_cl_ord_id =
        char_field(b"a\x7f").unwrap_or([b'a', 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(convert::cancel(&c), Err(ConvertError::InvalidOrigClOrdId));
    c.cl_ord_id = [0; 20];
    assert_eq!(convert::cancel(&c), Err(ConvertError::InvalidClOrdId));

    let mut r = OrderCancelReplaceRequest::new_zeroed();
    r.cl_ord_id = char_field(b"A-2").unwrap();
    r.orig_cl_ord_id = char_field(b"A-1").unwrap();
    r.account = U32::new(7);
    r.security_id = U32::new(3);
    r.price = I64::new(100_010_000_000);
    r.stop_px = I64::new(0);
    r.order_qty = U64::new(20_000);
    let replace = convert::replace(&r, &spec()).unwrap();
    assert_eq!((replace.price_ticks, replace.stop_ticks, replace.qty_lots), (10_001, 0, 2_000));
    r.stop_px = I64::new(PRICE9_NULL);
    assert_eq!(convert::replace(&r, &spec()), Err(ConvertError::StopPxRequired));
    r.stop_px = I64::new(0);
    r.price = I64::new(PRICE9_NULL);
    assert_eq!(convert::replace(&r, &spec()), Err(ConvertError::PriceRequired));

    let mut mc = OrderMassCancelRequest::new_zeroed();
    mc.cl_ord_id = char_field(b"M-1").unwrap();
    mc.account = U32::new(7);
    mc.security_id = U32::new(3);
    mc.scope = MassCancelScope::Account.to_u8();
    assert_eq!(convert::mass_cancel(&mc).unwrap().target, MassCancelTarget::Account(AccountId(7), None));
    mc.scope = MassCancelScope::AccountInstrument.to_u8();
    assert_eq!(
        convert::mass_cancel(&mc).unwrap().target,
        MassCancelTarget::Account(AccountId(7), Some(InstrumentId(3)))
    );

    let mut st = OrderStatusRequest::new_zeroed();
    st.order_id = U64::new(5);
    st.account = U32::new(7);
    assert_eq!(
        convert::order_status(&st),
        Ok(CommandBody::OrderStatus { account: AccountId(7), order: OrderRef::Id(OrderId(5)) })
    );

    // The dispatcher: unknown instruments get the engine's code, session messages are not
    // commands.
    let nos = limit_buy();
    let none = |_: InstrumentId| None::<&InstrumentSpec>;
    let err = convert::command_body(&Inbound::NewOrderSingle(&nos), none).unwrap().unwrap_err();
    assert_eq!(err, ConvertError::UnknownInstrument { security_id: 3 });
    assert_eq!(err.code(), RejectReason::UnknownInstrument as u16);
    let s = spec();
    assert!(matches!(
        convert::command_body(&Inbound::NewOrderSingle(&nos), |_| Some(&s)),
        Some(Ok(CommandBody::NewOrder(_)))
    ));
    let seq = Sequence { next_seq_no: U64::new(1) };
    assert!(convert::command_body(&Inbound::Sequence(&seq), none).is_none());
}

#[test]
fn gateway_rejects_echo_the_request() {
    let mut ctx = ReportContext { transact_time_ns: 55, next_exec_id: 1000 };
    let mut m = limit_buy();
    m.order_qty = U64::new(0);
    let err = convert::new_order(&m, &spec()).unwrap_err();
    let er = convert::new_order_gateway_reject(&m, err.code(), &mut ctx);
    assert_eq!(er.exec_type, ExecType::Rejected.to_u8());
    assert_eq!(er.ord_status, OrdStatus::Rejected.to_u8());
    assert_eq!(er.reject_code.get(), 6);
    assert_eq!(er.exec_id.get(), 1000);
    assert_eq!(ctx.next_exec_id, 1001);
    assert_eq!((er.cl_ord_id, er.price, er.order_qty), (m.cl_ord_id, m.price, m.order_qty));
    assert_eq!(er.order_id.get(), ORDER_ID_NULL);
    round_trip(&Report::Execution(er));

    let mut c = OrderCancelRequest::new_zeroed();
    c.cl_ord_id = char_field(b"C").unwrap();
    let ocr = convert::cancel_gateway_reject(&c, ConvertError::MissingOrderRef.code(), &ctx);
    assert_eq!(ocr.response_to, CxlRejResponseTo::Cancel.to_u8());
    assert_eq!(ocr.reject_code.get(), 1003);
    round_trip(&Report::CancelReject(ocr));
    let mut mc = OrderMassCancelRequest::new_zeroed();
    mc.scope = MassCancelScope::Account.to_u8();
    round_trip(&Report::MassCancel(convert::mass_cancel_gateway_reject(&mc, 1001, &ctx)));
}

/// Encodes a report and decodes it back strictly as a server message.
fn round_trip(r: &Report) -> Report {
    let mut buf = [0u8; 512];
    let n = r.encode(&mut buf).unwrap();
    let (len, m) = decode_outbound_frame(&buf[..n]).unwrap().unwrap();
    assert_eq!(len, n);
    match m.unwrap_or_else(|e| panic!("report does not decode: {e}: {r:?}")) {
        Outbound::ExecutionReport(er) => Report::Execution(*er),
        Outbound::OrderCancelReject(o) => Report::CancelReject(*o),
        Outbound::OrderMassCancelReport(o) => Report::MassCancel(*o),
        other => panic!("unexpected {other:?}"),
    }
}

/// The gateway side of a running engine: specs and order terms, fed from the events.
struct Book {
    specs: HashMap<u32, InstrumentSpec>,
    terms: HashMap<u64, OrderTerms>,
}

impl ReportLookup for Book {
    fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.specs.get(&id.0)
    }
    fn order_terms(&self, id: OrderId) -> Option<OrderTerms> {
        self.terms.get(&id.0).copied()
    }
}

impl Book {
    fn observe(&mut self, e: &Event) {
        match e {
            Event::Accepted(v) | Event::Triggered(v) | Event::Replaced { order: v, .. } => {
                self.terms.insert(v.id.0, OrderTerms::from(v));
            }
            _ => {}
        }
    }
}

struct Harness {
    engine: Engine,
    book: Book,
    seq: u64,
}

impl Harness {
    fn new(spec: InstrumentSpec, accounts: &[u32]) -> Self {
        let mut h = Harness {
            engine: Engine::new(EngineLimits::SMALL),
            book: Book { specs: HashMap::new(), terms: HashMap::new() },
            seq: 0,
        };
        h.book.specs.insert(spec.id.0, spec);
        h.apply(CommandBody::AddInstrument(spec));
        for &a in accounts {
            h.apply(CommandBody::UpsertAccount(AccountSpec::unlimited(AccountId(a))));
        }
        h
    }

    /// Applies a command and returns the reports it causes, each decoded back from the wire.
    fn apply(&mut self, body: CommandBody) -> Vec<(AccountId, Report)> {
        self.seq += 1;
        let cmd = Command { seq: self.seq, ts_ns: self.seq * 1_000, body };
        let mut events = Vec::new();
        self.engine.apply(&cmd, &mut events).unwrap();
        let mut ctx = ReportContext { transact_time_ns: cmd.ts_ns, next_exec_id: self.seq << 16 };
        let mut reports = Vec::new();
        for e in &events {
            self.book.observe(e);
            convert::event_reports(e, &cmd.body, &self.book, &mut ctx, |a, r| reports.push((a, r)))
                .unwrap_or_else(|err| panic!("{e:?}: {err}"));
        }
        for (_, r) in &reports {
            assert_eq!(round_trip(r), *r);
        }
        reports
    }

    fn submit(&mut self, m: &NewOrderSingle) -> Vec<(AccountId, Report)> {
        let o = convert::new_order(m, &self.book.specs[&m.security_id.get()]).unwrap();
        self.apply(CommandBody::NewOrder(o))
    }
}

fn er(r: &(AccountId, Report)) -> &ExecutionReport {
    match &r.1 {
        Report::Execution(e) => e,
        other => panic!("expected an ExecutionReport, got {other:?}"),
    }
}

#[test]
fn engine_events_become_fix_execution_reports() {
    let mut h = Harness::new(spec(), &[7, 8]);
    // Resting buy 1.5 @ 101.25.
    let r = h.submit(&limit_buy());
    assert_eq!(r.len(), 1);
    let new = er(&r[0]);
    assert_eq!(r[0].0, AccountId(7));
    assert_eq!((new.exec_type, new.ord_status), (ExecType::New.to_u8(), OrdStatus::New.to_u8()));
    assert_eq!((new.price.get(), new.order_qty.get(), new.leaves_qty.get()), (101_250_000_000, 15_000, 15_000));
    assert_eq!((new.cum_qty.get(), new.avg_px.get(), new.last_px.get()), (0, PRICE9_NULL, PRICE9_NULL));
    assert_eq!((new.aggressor, new.trade_id.get(), new.stop_px.get()), (ENUM_U8_NULL, 0, PRICE9_NULL));
    assert_eq!(new.transact_time.get(), h.seq * 1_000);
    let buy_id = new.order_id.get();

    // A second resting buy 0.5 @ 101.00 below it.
    let mut low = limit_buy();
    low.cl_ord_id = char_field(b"A-2").unwrap();
    low.price = I64::new(101_000_000_000);
    low.order_qty = U64::new(5_000);
    h.submit(&low);

    // Sell market 1.8 from account 8: fills 1.5 @ 101.25 and 0.3 @ 101.00.
    let mut sell = limit_buy();
    sell.cl_ord_id = char_field(b"S-1").unwrap();
    sell.account = U32::new(8);
    sell.side = Side::Sell.to_u8();
    sell.ord_type = OrdType::Market.to_u8();
    sell.time_in_force = TimeInForce::ImmediateOrCancel.to_u8();
    sell.price = I64::new(PRICE9_NULL);
    sell.order_qty = U64::new(18_000);
    let r = h.submit(&sell);
    // Accepted, then taker+maker per trade.
    assert_eq!(r.len(), 5, "{r:?}");
    let (t1, m1, t2, m2) = (er(&r[1]), er(&r[2]), er(&r[3]), er(&r[4]));
    assert_eq!((r[1].0, r[2].0), (AccountId(8), AccountId(7)));
    for e in [t1, m1, t2, m2] {
        assert_eq!(e.exec_type, ExecType::Trade.to_u8());
        assert_eq!(e.aggressor, Side::Sell.to_u8());
        assert_ne!(e.trade_id.get(), 0);
    }
    assert_eq!(t1.trade_id, m1.trade_id);
    assert_eq!((t1.last_px.get(), t1.last_qty.get()), (101_250_000_000, 15_000));
    assert_eq!((t1.ord_status, t1.price.get()), (OrdStatus::PartiallyFilled.to_u8(), PRICE9_NULL));
    assert_eq!((m1.ord_status, m1.order_id.get(), m1.leaves_qty.get()), (OrdStatus::Filled.to_u8(), buy_id, 0));
    assert_eq!((m1.side, m1.ord_type, m1.price.get()), (Side::Buy.to_u8(), OrdType::Limit.to_u8(), 101_250_000_000));
    assert_eq!((t2.last_px.get(), t2.last_qty.get(), t2.cum_qty.get()), (101_000_000_000, 3_000, 18_000));
    assert_eq!(t2.ord_status, OrdStatus::Filled.to_u8());
    // AvgPx = (1.5 × 101.25 + 0.3 × 101.00) / 1.8 = 101.208333333… → 101.208333333
    assert_eq!(t2.avg_px.get(), 101_208_333_333);
    assert_eq!(
        (m2.ord_status, m2.leaves_qty.get(), m2.cum_qty.get()),
        (OrdStatus::PartiallyFilled.to_u8(), 2_000, 3_000)
    );

    // Replace A-2 (0.2 left of 0.5) to A-3 for 1.0 total @ 100.50.
    let mut rep = OrderCancelReplaceRequest::new_zeroed();
    rep.cl_ord_id = char_field(b"A-3").unwrap();
    rep.orig_cl_ord_id = char_field(b"A-2").unwrap();
    rep.account = U32::new(7);
    rep.security_id = U32::new(3);
    rep.price = I64::new(100_500_000_000);
    rep.stop_px = I64::new(0);
    rep.order_qty = U64::new(10_000);
    let r = h.apply(CommandBody::Replace(convert::replace(&rep, &spec()).unwrap()));
    let e = er(&r[0]);
    assert_eq!((e.exec_type, e.ord_status), (ExecType::Replaced.to_u8(), OrdStatus::PartiallyFilled.to_u8()));
    assert_eq!((e.cl_ord_id, e.orig_cl_ord_id), (rep.cl_ord_id, rep.orig_cl_ord_id));
    assert_eq!((e.price.get(), e.order_qty.get(), e.leaves_qty.get()), (100_500_000_000, 10_000, 7_000));

    // Cancel it by client id: Canceled with the cancel's ClOrdId and the order's as Orig.
    let mut c = OrderCancelRequest::new_zeroed();
    c.cl_ord_id = char_field(b"C-1").unwrap();
    c.orig_cl_ord_id = char_field(b"A-3").unwrap();
    c.account = U32::new(7);
    let r = h.apply(CommandBody::Cancel(convert::cancel(&c).unwrap()));
    let e = er(&r[0]);
    assert_eq!((e.exec_type, e.ord_status), (ExecType::Canceled.to_u8(), OrdStatus::Canceled.to_u8()));
    assert_eq!((e.cl_ord_id, e.orig_cl_ord_id), (c.cl_ord_id, rep.cl_ord_id));
    assert_eq!((e.leaves_qty.get(), e.cum_qty.get()), (0, 3_000));

    // Cancelling it again: OrderCancelReject with the engine's UnknownOrder.
    let r = h.apply(CommandBody::Cancel(convert::cancel(&c).unwrap()));
    let Report::CancelReject(ocr) = r[0].1 else { panic!("{r:?}") };
    assert_eq!(ocr.response_to, CxlRejResponseTo::Cancel.to_u8());
    assert_eq!(ocr.reject_code.get(), RejectReason::UnknownOrder as u16);
    assert_eq!((ocr.cl_ord_id, ocr.orig_cl_ord_id), (c.cl_ord_id, rep.cl_ord_id));

    // A new order the engine rejects (unknown account): ExecutionReport Rejected.
    let mut bad = limit_buy();
    bad.account = U32::new(200);
    let r = h.submit(&bad);
    let e = er(&r[0]);
    assert_eq!((e.exec_type, e.ord_status), (ExecType::Rejected.to_u8(), OrdStatus::Rejected.to_u8()));
    assert_eq!(e.reject_code.get(), RejectReason::UnknownAccount as u16);
    assert_eq!((e.price.get(), e.order_qty.get(), e.side), (101_250_000_000, 15_000, Side::Buy.to_u8()));

    // Mass cancel of account 7 in instrument 3, then the status of a dead order.
    h.submit(&limit_buy());
    let mut mc = OrderMassCancelRequest::new_zeroed();
    mc.cl_ord_id = char_field(b"M-1").unwrap();
    mc.account = U32::new(7);
    mc.security_id = U32::new(3);
    mc.scope = MassCancelScope::AccountInstrument.to_u8();
    let r = h.apply(CommandBody::MassCancel(convert::mass_cancel(&mc).unwrap()));
    let Report::MassCancel(rep) = r.last().unwrap().1 else { panic!("{r:?}") };
    assert_eq!((rep.total_affected_orders.get(), rep.reject_code.get()), (1, 0));
    assert_eq!((rep.scope, rep.security_id.get()), (MassCancelScope::AccountInstrument.to_u8(), 3));
    let e = er(&r[0]);
    assert_eq!(
        (e.exec_type, e.cl_ord_id, e.orig_cl_ord_id),
        (ExecType::Canceled.to_u8(), mc.cl_ord_id, limit_buy().cl_ord_id)
    );
    let mut st = OrderStatusRequest::new_zeroed();
    st.order_id = U64::new(buy_id);
    st.account = U32::new(7);
    let r = h.apply(convert::order_status(&st).unwrap());
    let Report::CancelReject(ocr) = r[0].1 else { panic!("{r:?}") };
    assert_eq!((ocr.response_to, ocr.order_id.get()), (CxlRejResponseTo::Status.to_u8(), buy_id));
}

#[test]
fn a_long_synthetic_flow_reports_every_event_validly() {
    // FlowGen mixes every order type, time in force, cancels, replaces and status requests.
    let spec = InstrumentSpec { tick_size: Decimal::new(1, 2), lot_size: Decimal::ONE, ..spec() };
    let mut flow = FlowGen::new(42, spec.id, 6);
    let mut h = Harness {
        engine: Engine::new(EngineLimits::SMALL),
        book: Book { specs: HashMap::new(), terms: HashMap::new() },
        seq: 0,
    };
    let setup = flow.setup();
    for body in setup {
        if let CommandBody::AddInstrument(s) = &body {
            h.book.specs.insert(s.id.0, *s);
        }
        h.apply(body);
    }
    let mut counts: HashMap<u8, usize> = HashMap::new();
    let mut other = [0usize; 2];
    for i in 0..20_000u64 {
        let body = if i % 997 == 996 {
            CommandBody::MassCancel(MassCancel {
                account: AccountId((i % 6) as u32),
                cl_ord_id: ClOrdId::from_u64(i),
                target: MassCancelTarget::Account(AccountId((i % 6) as u32), None),
            })
        } else {
            flow.next_body((h.seq + 1) * 1_000)
        };
        for r in h.apply(body) {
            match r.1 {
                Report::CancelReject(_) => other[0] += 1,
                Report::MassCancel(_) => other[1] += 1,
                Report::Execution(_) => {}
            }
            if let Report::Execution(e) = r.1 {
                *counts.entry(e.exec_type).or_default() += 1;
                if e.exec_type == ExecType::Trade.to_u8() {
                    assert_ne!(e.last_px.get(), PRICE9_NULL);
                    assert_ne!(e.aggressor, ENUM_U8_NULL);
                } else {
                    assert_eq!(
                        (e.last_px.get(), e.last_qty.get(), e.aggressor),
                        (PRICE9_NULL, QTY4_NULL, ENUM_U8_NULL)
                    );
                }
                if e.cum_qty.get() == 0 {
                    assert_eq!(e.avg_px.get(), PRICE9_NULL);
                }
            }
        }
    }
    eprintln!("report counts by ExecType: {counts:?}");
    for &(name, value) in ExecType::SPEC.values {
        assert!(counts.get(&value).copied().unwrap_or(0) > 0, "no {name} reports in the flow: {counts:?}");
    }
    assert!(other[0] > 0 && other[1] > 0, "cancel rejects and mass cancel reports: {other:?}");
}

proptest! {
    #![proptest_config(sbe_support::proptest_config("sbe_convert", 2_000))]

    /// Any on-grid price and quantity survives wire → engine → wire exactly; anything one
    /// mantissa unit off is refused, never rounded.
    #[test]
    fn on_grid_values_round_trip_and_off_grid_values_are_refused(
        ticks in -1_000_000_000_000i64..1_000_000_000_000,
        lots in 1u64..1_000_000_000_000,
        tick_exp in 0u32..=9,
        lot_exp in 0u32..=4,
        tick_mult in 1i64..=25,
    ) {
        let mut s = spec();
        s.tick_size = Decimal::new(tick_mult, tick_exp);
        s.lot_size = Decimal::new(1, lot_exp);
        let mut m = limit_buy();
        // Shrink magnitudes until the wire values fit (coarse ticks × large counts overflow).
        let ticks = ticks / 10i64.pow(9 - tick_exp) / tick_mult;
        let lots = (lots / 10u64.pow(4 - lot_exp)).max(1);
        let price9 = convert::ticks_to_price9(ticks, &s).unwrap();
        let qty4 = convert::lots_to_qty4(lots, &s).unwrap();
        m.price = I64::new(price9);
        m.order_qty = U64::new(qty4);
        let o = convert::new_order(&m, &s).unwrap();
        prop_assert_eq!((o.price_ticks, o.qty_lots), (ticks, lots));
        let tick_is_one_nano = tick_mult == 1 && tick_exp == 9;
        if !tick_is_one_nano {
            m.price = I64::new(price9 + 1);
            prop_assert_eq!(convert::new_order(&m, &s), Err(ConvertError::PriceOffGrid));
        }
        if lot_exp < 4 {
            m.price = I64::new(price9);
            m.order_qty = U64::new(qty4 + 1);
            prop_assert_eq!(convert::new_order(&m, &s), Err(ConvertError::QtyOffGrid));
        }
    }
}

//! Exchange semantics, one scenario per rule of the crate docs.

use engine::*;
use rust_decimal_macros::dec;

const INST: InstrumentId = InstrumentId(1);
const A: AccountId = AccountId(1);
const B: AccountId = AccountId(2);
/// Shares A's STP group.
const A2: AccountId = AccountId(3);
const C: AccountId = AccountId(4);

struct T {
    e: Engine,
    ts: u64,
}

fn spec(id: InstrumentId) -> InstrumentSpec {
    InstrumentSpec {
        id,
        symbol: Symbol::new("TEST").unwrap(),
        tick_size: dec!(0.01),
        lot_size: dec!(1),
        min_qty_lots: 1,
        max_qty_lots: 1_000_000,
        max_notional_nanos: u128::MAX,
        band_bps: 0,
        reference_ticks: None,
        status: TradingStatus::Open,
    }
}

fn cl(s: &str) -> ClOrdId {
    ClOrdId::new(s.as_bytes()).unwrap()
}

fn limit(account: AccountId, id: &str, side: Side, price_ticks: i64, qty_lots: u64) -> NewOrder {
    NewOrder::limit(account, cl(id), INST, side, price_ticks, qty_lots)
}

impl T {
    fn new() -> T {
        let mut t = T { e: Engine::new(EngineLimits::SMALL), ts: 1_000 };
        t.ok(CommandBody::AddInstrument(spec(INST)));
        for a in [A, B, A2, C] {
            let mut s = AccountSpec::unlimited(a);
            if a == A2 {
                s.stp_group = A.0;
            }
            t.ok(CommandBody::UpsertAccount(s));
        }
        t
    }

    fn run(&mut self, body: CommandBody) -> Vec<Event> {
        self.ts += 1;
        let mut out = Vec::new();
        let cmd = Command { seq: self.e.seq() + 1, ts_ns: self.ts, body };
        self.e.apply(&cmd, &mut out).unwrap();
        self.e.check_invariants().unwrap();
        out
    }

    fn ok(&mut self, body: CommandBody) -> Vec<Event> {
        let ev = self.run(body);
        assert!(!ev.iter().any(|e| matches!(e, Event::Rejected(_))), "unexpected reject: {ev:?}");
        ev
    }

    fn submit(&mut self, o: NewOrder) -> Vec<Event> {
        self.run(CommandBody::NewOrder(o))
    }

    fn cancel(&mut self, account: AccountId, id: &str) -> Vec<Event> {
        self.run(CommandBody::Cancel(Cancel { account, order: OrderRef::Client(cl(id)), cl_ord_id: cl("cx") }))
    }

    fn replace(&mut self, account: AccountId, id: &str, new_id: &str, price_ticks: i64, qty_lots: u64) -> Vec<Event> {
        self.run(CommandBody::Replace(Replace {
            account,
            order: OrderRef::Client(cl(id)),
            cl_ord_id: cl(new_id),
            price_ticks,
            stop_ticks: 0,
            qty_lots,
        }))
    }

    fn live(&self, account: AccountId, id: &str) -> Option<OrderView> {
        self.e.order_by_client(account, &cl(id))
    }

    fn bids(&self) -> Vec<(i64, u64)> {
        self.e.levels(INST, Side::Buy).iter().map(|l| (l.price_ticks, l.qty_lots)).collect()
    }

    fn asks(&self) -> Vec<(i64, u64)> {
        self.e.levels(INST, Side::Sell).iter().map(|l| (l.price_ticks, l.qty_lots)).collect()
    }

    fn queue(&self, side: Side) -> Vec<String> {
        self.e.orders_in_priority(INST, side, false).iter().map(|o| o.cl_ord_id.to_string()).collect()
    }
}

fn rejected(ev: &[Event]) -> Option<RejectReason> {
    ev.iter().find_map(|e| match e {
        Event::Rejected(r) => Some(r.reason),
        _ => None,
    })
}

fn trades(ev: &[Event]) -> Vec<(i64, u64, String, String)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Trade(t) => {
                Some((t.price_ticks, t.qty_lots, t.maker.cl_ord_id.to_string(), t.taker.cl_ord_id.to_string()))
            }
            _ => None,
        })
        .collect()
}

fn cancels(ev: &[Event]) -> Vec<(String, u64, CancelReason)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Cancelled { order, cancelled_lots, reason, .. } => {
                Some((order.cl_ord_id.to_string(), *cancelled_lots, *reason))
            }
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ instruments

#[test]
fn instruments_are_added_changed_halted_resumed_and_removed() {
    let mut t = T::new();
    assert_eq!(rejected(&t.run(CommandBody::AddInstrument(spec(INST)))), Some(RejectReason::InstrumentExists));
    let mut bad = spec(InstrumentId(2));
    bad.tick_size = dec!(0);
    assert_eq!(rejected(&t.run(CommandBody::AddInstrument(bad))), Some(RejectReason::InvalidSpec));
    assert_eq!(rejected(&t.run(CommandBody::AddInstrument(spec(InstrumentId(999))))), Some(RejectReason::IdOutOfRange));

    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    assert_eq!(rejected(&t.submit(limit(A, "h1", Side::Buy, 100, 5))), Some(RejectReason::InstrumentNotOpen));
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Open });
    t.ok(CommandBody::NewOrder(limit(A, "o1", Side::Buy, 100, 5)));

    // Cancels are accepted while halted.
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    assert_eq!(rejected(&t.submit(limit(A, "o2", Side::Buy, 101, 5))), Some(RejectReason::InstrumentNotOpen));
    assert!(t.live(A, "o2").is_none());
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Open });

    let mut changed = spec(INST);
    changed.tick_size = dec!(0.05);
    assert_eq!(rejected(&t.run(CommandBody::UpdateInstrument(changed))), Some(RejectReason::InstrumentHasOrders));
    assert_eq!(
        rejected(&t.run(CommandBody::RemoveInstrument { instrument: INST })),
        Some(RejectReason::InstrumentHasOrders)
    );
    let mut wider = spec(INST);
    wider.max_qty_lots = 5;
    t.ok(CommandBody::UpdateInstrument(wider));
    assert_eq!(rejected(&t.submit(limit(A, "big", Side::Buy, 100, 6))), Some(RejectReason::QtyAboveMax));

    assert!(!cancels(&t.cancel(A, "o1")).is_empty());
    t.ok(CommandBody::UpdateInstrument(changed));
    let ev = t.ok(CommandBody::RemoveInstrument { instrument: INST });
    assert_eq!(ev, vec![Event::Instrument { instrument: INST, status: None }]);
    assert_eq!(rejected(&t.submit(limit(A, "x", Side::Buy, 100, 5))), Some(RejectReason::UnknownInstrument));
}

#[test]
fn halted_instrument_rejects_orders_but_cancels_work() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "o1", Side::Buy, 100, 5)));
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    assert_eq!(rejected(&t.submit(limit(A, "o2", Side::Buy, 100, 5))), Some(RejectReason::InstrumentNotOpen));
    assert_eq!(rejected(&t.replace(A, "o1", "o1", 101, 5)), Some(RejectReason::InstrumentNotOpen));
    assert_eq!(cancels(&t.cancel(A, "o1")), vec![("o1".into(), 5, CancelReason::Requested)]);
}

#[test]
fn quantity_limits_and_unknown_account() {
    let mut t = T::new();
    let mut s = spec(InstrumentId(2));
    s.min_qty_lots = 10;
    s.max_notional_nanos = 1_000 * 1_000_000_000; // 1,000 currency units
    t.ok(CommandBody::AddInstrument(s));
    let o = |id: &str, q, p| NewOrder { instrument: InstrumentId(2), ..limit(A, id, Side::Buy, p, q) };
    assert_eq!(rejected(&t.submit(o("a", 9, 100))), Some(RejectReason::QtyBelowMin));
    assert_eq!(rejected(&t.submit(o("b", 0, 100))), Some(RejectReason::QtyBelowMin));
    // 10 lots at 1.00 = 10 units: fine; 10 lots at 100.01 = 1000.1 units: too much.
    assert_eq!(rejected(&t.submit(o("c", 10, 100))), None);
    assert_eq!(rejected(&t.submit(o("d", 10, 10_001))), Some(RejectReason::NotionalAboveMax));
    assert_eq!(rejected(&t.submit(limit(AccountId(77), "e", Side::Buy, 1, 1))), Some(RejectReason::UnknownAccount));
}

// ------------------------------------------------------------------ matching

#[test]
fn price_time_priority_and_trades_at_the_resting_price() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "s1", Side::Sell, 101, 5)));
    t.ok(CommandBody::NewOrder(limit(B, "s2", Side::Sell, 100, 5)));
    t.ok(CommandBody::NewOrder(limit(A, "s3", Side::Sell, 100, 5)));
    let ev = t.ok(CommandBody::NewOrder(limit(C, "b1", Side::Buy, 102, 12)));
    assert_eq!(
        trades(&ev),
        vec![
            (100, 5, "s2".into(), "b1".into()),
            (100, 5, "s3".into(), "b1".into()),
            (101, 2, "s1".into(), "b1".into())
        ]
    );
    assert_eq!(t.asks(), vec![(101, 3)]);
    assert!(t.bids().is_empty());
    // Trade ids are gap-free and the taker's leaves count down.
    let ids: Vec<u64> =
        ev.iter().filter_map(|e| if let Event::Trade(t) = e { Some(t.trade_id.0) } else { None }).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let last = ev.iter().rev().find_map(|e| if let Event::Trade(t) = e { Some(*t) } else { None }).unwrap();
    assert_eq!((last.taker.leaves_lots, last.taker.cum_lots, last.taker.cum_cost), (0, 12, 100 * 10 + 101 * 2));
    assert_eq!((last.maker.leaves_lots, last.maker.cum_lots), (3, 2));
    assert_eq!(last.aggressor, Side::Buy);
}

#[test]
fn event_order_for_a_partially_filled_resting_order() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "s1", Side::Sell, 100, 5)));
    let ev = t.ok(CommandBody::NewOrder(limit(B, "b1", Side::Buy, 100, 8)));
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            Event::Accepted(_) => "accepted",
            Event::Trade(_) => "trade",
            Event::Book(BookChange::Execute { .. }) => "execute",
            Event::Book(BookChange::Add { .. }) => "add",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["accepted", "trade", "execute", "add"]);
    assert_eq!(t.bids(), vec![(100, 3)]);
}

#[test]
fn market_orders_never_rest_and_stop_at_the_band() {
    let mut t = T::new();
    let mut s = spec(InstrumentId(2));
    s.band_bps = 500; // 5 %
    s.reference_ticks = Some(10_000);
    t.ok(CommandBody::AddInstrument(s));
    let at = |id: &str, side, p, q| NewOrder { instrument: InstrumentId(2), ..limit(A, id, side, p, q) };
    assert_eq!(rejected(&t.submit(at("far", Side::Sell, 10_600, 1))), Some(RejectReason::PriceOutsideBand));
    t.ok(CommandBody::NewOrder(at("s1", Side::Sell, 10_100, 5)));
    t.ok(CommandBody::NewOrder(at("s2", Side::Sell, 10_500, 5)));
    // Reference moves to the last trade (10100) after the first fill: band high = 10605.
    let mkt = NewOrder { ord_type: OrdType::Market, tif: TimeInForce::Day, account: B, ..at("m1", Side::Buy, 0, 20) };
    let ev = t.ok(CommandBody::NewOrder(mkt));
    assert_eq!(trades(&ev).len(), 2);
    assert_eq!(cancels(&ev), vec![("m1".into(), 10, CancelReason::MarketRemainder)]);
    assert!(t.e.levels(InstrumentId(2), Side::Buy).is_empty(), "market orders never rest");

    // The band bounds the sweep: an ask above the band edge is not reached.
    t.ok(CommandBody::NewOrder(at("s3", Side::Sell, 10_600, 5))); // edge 10500+525 = 11025 from last 10500
    let mut s4 = at("s4", Side::Sell, 11_000, 5);
    s4.account = A;
    t.ok(CommandBody::NewOrder(s4));
    let mut s3b = spec(InstrumentId(2));
    s3b.band_bps = 100; // now 1 %: edge 10605
    s3b.reference_ticks = Some(10_000);
    t.ok(CommandBody::UpdateInstrument(s3b));
    let ev =
        t.ok(CommandBody::NewOrder(NewOrder { ord_type: OrdType::Market, account: B, ..at("m2", Side::Buy, 0, 10) }));
    assert_eq!(trades(&ev), vec![(10_600, 5, "s3".into(), "m2".into())]);
    assert_eq!(cancels(&ev), vec![("m2".into(), 5, CancelReason::MarketRemainder)]);

    // Band on and no reference at all: market orders are refused.
    let mut s = spec(InstrumentId(3));
    s.band_bps = 500;
    t.ok(CommandBody::AddInstrument(s));
    let m = NewOrder { instrument: InstrumentId(3), ord_type: OrdType::Market, ..limit(A, "m3", Side::Buy, 0, 1) };
    assert_eq!(rejected(&t.submit(m)), Some(RejectReason::NoReferencePrice));
}

#[test]
fn stops_trigger_on_last_trade_in_documented_order() {
    let mut t = T::new();
    let stop = |id: &str, side, stop_ticks, price_ticks, ord_type| NewOrder {
        ord_type,
        stop_ticks,
        price_ticks,
        account: B,
        ..limit(B, id, side, 0, 1)
    };
    // No last trade yet: stops wait.
    t.ok(CommandBody::NewOrder(stop("bs105", Side::Buy, 105, 0, OrdType::Stop)));
    t.ok(CommandBody::NewOrder(stop("bs102", Side::Buy, 102, 110, OrdType::StopLimit)));
    t.ok(CommandBody::NewOrder(stop("ss90", Side::Sell, 90, 0, OrdType::Stop)));
    assert!(t.asks().is_empty() && t.bids().is_empty(), "stops are not in the visible book");
    for (id, p) in [("a1", 100), ("a2", 103), ("a3", 106), ("a4", 107)] {
        t.ok(CommandBody::NewOrder(limit(A, id, Side::Sell, p, 1)));
    }
    // A trade at 103 triggers the 102 stop (lowest first); it lifts 106, which triggers 105.
    t.ok(CommandBody::NewOrder(limit(A2, "bid", Side::Buy, 90, 1)));
    let ev = t.ok(CommandBody::NewOrder(limit(B, "b1", Side::Buy, 103, 2)));
    let seq: Vec<String> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Triggered(o) => Some(format!("T:{}", o.cl_ord_id)),
            Event::Trade(t) => Some(format!("{}x{}@{}", t.taker.cl_ord_id, t.maker.cl_ord_id, t.price_ticks)),
            _ => None,
        })
        .collect();
    assert_eq!(seq, ["b1xa1@100", "b1xa2@103", "T:bs102", "bs102xa3@106", "T:bs105", "bs105xa4@107"]);
    assert_eq!(t.e.last_trade_ticks(INST), Some(107));
    assert!(t.live(B, "ss90").is_some());

    // A stop whose condition already holds triggers at once.
    t.ok(CommandBody::NewOrder(limit(A, "a5", Side::Sell, 108, 1)));
    let ev = t.ok(CommandBody::NewOrder(stop("now", Side::Buy, 100, 0, OrdType::Stop)));
    assert!(matches!(ev[1], Event::Triggered(_)));
    assert_eq!(trades(&ev), vec![(108, 1, "a5".into(), "now".into())]);

    // A halt and an update change nothing for waiting stops; the next trade triggers them.
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    let mut upd = spec(INST);
    upd.status = TradingStatus::Halted;
    t.ok(CommandBody::UpdateInstrument(upd));
    t.ok(CommandBody::SetTradingStatus { instrument: INST, status: TradingStatus::Open });
    // Sell stop 90 needs a trade at or below 90.
    let ev = t.ok(CommandBody::NewOrder(limit(C, "hit", Side::Sell, 90, 1)));
    let trig: Vec<_> = ev.iter().filter(|e| matches!(e, Event::Triggered(_))).collect();
    assert_eq!(trig.len(), 1);
    assert_eq!(cancels(&ev), vec![("ss90".into(), 1, CancelReason::MarketRemainder)]);
}

#[test]
fn iceberg_shows_its_display_and_refills_at_the_back() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(NewOrder { display_lots: 10, ..limit(A, "ice", Side::Sell, 100, 25) }));
    t.ok(CommandBody::NewOrder(limit(A, "plain", Side::Sell, 100, 5)));
    assert_eq!(t.asks(), vec![(100, 15)]);
    assert_eq!(t.queue(Side::Sell), ["ice", "plain"]);
    // Take the visible 10: the iceberg refills behind "plain".
    let ev = t.ok(CommandBody::NewOrder(limit(B, "b1", Side::Buy, 100, 10)));
    assert_eq!(trades(&ev), vec![(100, 10, "ice".into(), "b1".into())]);
    assert!(ev.contains(&Event::Book(BookChange::Add {
        instrument: INST,
        order_id: t.live(A, "ice").unwrap().id,
        side: Side::Sell,
        price_ticks: 100,
        qty_lots: 10
    })));
    assert_eq!(t.queue(Side::Sell), ["plain", "ice"]);
    assert_eq!(t.asks(), vec![(100, 15)]);
    // A large aggressor keeps matching through the refills.
    let ev = t.ok(CommandBody::NewOrder(limit(B, "b2", Side::Buy, 100, 20)));
    assert_eq!(
        trades(&ev),
        vec![
            (100, 5, "plain".into(), "b2".into()),
            (100, 10, "ice".into(), "b2".into()),
            (100, 5, "ice".into(), "b2".into())
        ]
    );
    assert!(t.asks().is_empty());
    assert_eq!(
        rejected(&t.submit(NewOrder { display_lots: 5, tif: TimeInForce::Ioc, ..limit(A, "x", Side::Sell, 100, 10) })),
        Some(RejectReason::InvalidDisplayQty)
    );
    assert_eq!(
        rejected(&t.submit(NewOrder { display_lots: 11, ..limit(A, "y", Side::Sell, 100, 10) })),
        Some(RejectReason::InvalidDisplayQty)
    );
}

// ------------------------------------------------------------------ time in force

#[test]
fn ioc_fok_day_and_gtd() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "s1", Side::Sell, 100, 5)));
    t.ok(CommandBody::NewOrder(limit(A, "s2", Side::Sell, 101, 5)));

    let ev = t.ok(CommandBody::NewOrder(NewOrder { tif: TimeInForce::Ioc, ..limit(B, "ioc", Side::Buy, 100, 8) }));
    assert_eq!(trades(&ev).len(), 1);
    assert_eq!(cancels(&ev), vec![("ioc".into(), 3, CancelReason::IocRemainder)]);

    t.ok(CommandBody::NewOrder(limit(A, "s1b", Side::Sell, 100, 5)));
    let ev = t.ok(CommandBody::NewOrder(NewOrder { tif: TimeInForce::Fok, ..limit(B, "fok1", Side::Buy, 101, 11) }));
    assert!(trades(&ev).is_empty(), "FOK that cannot fill does not trade");
    assert_eq!(cancels(&ev), vec![("fok1".into(), 11, CancelReason::FokUnfilled)]);
    let ev = t.ok(CommandBody::NewOrder(NewOrder { tif: TimeInForce::Fok, ..limit(B, "fok2", Side::Buy, 101, 10) }));
    assert_eq!(trades(&ev).len(), 2);
    assert!(cancels(&ev).is_empty());

    // DAY orders expire at end of day, GTC ones stay.
    t.ok(CommandBody::NewOrder(NewOrder { tif: TimeInForce::Day, ..limit(A, "day", Side::Buy, 90, 1) }));
    t.ok(CommandBody::NewOrder(limit(A, "gtc", Side::Buy, 90, 1)));
    let ev = t.ok(CommandBody::EndOfDay { instrument: None });
    assert!(matches!(ev[0], Event::Expired { reason: ExpireReason::Day, expired_lots: 1, .. }));
    assert!(t.live(A, "day").is_none() && t.live(A, "gtc").is_some());

    // GTD expiry is driven by command timestamps only.
    let exp = t.ts + 10;
    t.ok(CommandBody::NewOrder(NewOrder {
        tif: TimeInForce::Gtd,
        expire_ns: exp,
        ..limit(A, "gtd", Side::Buy, 80, 1)
    }));
    assert_eq!(
        rejected(&t.submit(NewOrder { tif: TimeInForce::Gtd, expire_ns: t.ts, ..limit(A, "late", Side::Buy, 80, 1) })),
        Some(RejectReason::ExpireTimeInPast)
    );
    t.ts = exp - 2;
    assert!(t.ok(CommandBody::Tick).is_empty());
    assert!(t.live(A, "gtd").is_some());
    let ev = t.ok(CommandBody::Tick); // ts == exp - 1 + 1 == exp
    assert!(matches!(
        ev.as_slice(),
        [Event::Expired { reason: ExpireReason::Gtd, .. }, Event::Book(BookChange::Delete { .. })]
    ));
    assert!(t.live(A, "gtd").is_none());
}

#[test]
fn post_only_is_rejected_when_it_would_take() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "s1", Side::Sell, 100, 5)));
    let po = |id: &str, p| NewOrder { post_only: true, ..limit(B, id, Side::Buy, p, 1) };
    assert_eq!(rejected(&t.submit(po("p1", 100))), Some(RejectReason::WouldTakeLiquidity));
    t.ok(CommandBody::NewOrder(po("p2", 99)));
    assert_eq!(rejected(&t.replace(B, "p2", "p2", 100, 1)), Some(RejectReason::WouldTakeLiquidity));
    assert_eq!(
        rejected(&t.submit(NewOrder { tif: TimeInForce::Ioc, ..po("p3", 90) })),
        Some(RejectReason::InvalidPostOnly)
    );
}

// ------------------------------------------------------------------ cancel / replace

#[test]
fn replace_keeps_priority_only_for_a_quantity_decrease() {
    let mut t = T::new();
    for id in ["o1", "o2", "o3"] {
        t.ok(CommandBody::NewOrder(limit(A, id, Side::Buy, 100, 10)));
    }
    let ev = t.ok(CommandBody::Replace(Replace {
        account: A,
        order: OrderRef::Client(cl("o1")),
        cl_ord_id: cl("o1b"),
        price_ticks: 100,
        stop_ticks: 0,
        qty_lots: 4,
    }));
    assert!(matches!(ev[0], Event::Replaced { priority_kept: true, .. }));
    assert_eq!(t.queue(Side::Buy), ["o1b", "o2", "o3"]);
    assert!(t.live(A, "o1").is_none(), "the old client id is released");

    t.ok(CommandBody::Replace(Replace {
        account: A,
        order: OrderRef::Client(cl("o2")),
        cl_ord_id: cl("o2"),
        price_ticks: 100,
        stop_ticks: 0,
        qty_lots: 11,
    }));
    assert_eq!(t.queue(Side::Buy), ["o1b", "o3", "o2"], "quantity increase loses priority");
    let ev = t.replace(A, "o1b", "o1b", 101, 4);
    assert!(matches!(ev[0], Event::Replaced { priority_kept: false, .. }));
    assert_eq!(t.queue(Side::Buy), ["o1b", "o3", "o2"]);
    assert_eq!(t.bids(), vec![(101, 4), (100, 21)]);

    // A price change that crosses trades at once.
    t.ok(CommandBody::NewOrder(limit(B, "s1", Side::Sell, 105, 3)));
    let ev = t.replace(A, "o3", "o3", 105, 10);
    assert_eq!(trades(&ev), vec![(105, 3, "s1".into(), "o3".into())]);
    assert_eq!(t.live(A, "o3").unwrap().leaves_lots, 7);

    // Reducing to or below the filled quantity cancels.
    let ev = t.replace(A, "o3", "o3", 105, 3);
    assert_eq!(cancels(&ev), vec![("o3".into(), 7, CancelReason::ReplacedToFilled)]);

    // Duplicate new client id, unknown order, foreign account.
    assert_eq!(rejected(&t.replace(A, "o2", "o1b", 100, 5)), Some(RejectReason::DuplicateClOrdId));
    assert_eq!(rejected(&t.replace(A, "nope", "x", 100, 5)), Some(RejectReason::UnknownOrder));
    assert_eq!(rejected(&t.replace(B, "o2", "x", 100, 5)), Some(RejectReason::UnknownOrder));
    assert_eq!(rejected(&t.cancel(B, "o2")), Some(RejectReason::UnknownOrder));
}

#[test]
fn mass_cancel_by_account_instrument_and_all() {
    let mut t = T::new();
    t.ok(CommandBody::AddInstrument(spec(InstrumentId(2))));
    for (acc, id, inst) in [(A, "a1", 1), (A, "a2", 2), (B, "b1", 1), (B, "b2", 2)] {
        t.ok(CommandBody::NewOrder(NewOrder { instrument: InstrumentId(inst), ..limit(acc, id, Side::Buy, 100, 1) }));
    }
    let mc = |target| CommandBody::MassCancel(MassCancel { account: A, cl_ord_id: cl("mc"), target });
    let ev = t.ok(mc(MassCancelTarget::Account(A, Some(InstrumentId(2)))));
    assert_eq!(cancels(&ev), vec![("a2".into(), 1, CancelReason::MassCancel)]);
    let ev = t.ok(mc(MassCancelTarget::Instrument(INST)));
    assert_eq!(cancels(&ev).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["a1", "b1"]);
    assert!(matches!(ev.last(), Some(Event::MassCancelled { cancelled: 2, .. })));
    let ev = t.ok(mc(MassCancelTarget::All));
    assert_eq!(cancels(&ev).len(), 1);
    assert_eq!(t.e.live_orders(), 0);
    assert_eq!(
        rejected(&t.run(mc(MassCancelTarget::Account(AccountId(99), None)))),
        Some(RejectReason::UnknownAccount)
    );
}

// ------------------------------------------------------------------ self-trade prevention

fn stp_case(mode: StpMode, taker_qty: u64) -> (T, Vec<Event>) {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "mine", Side::Sell, 100, 5)));
    t.ok(CommandBody::NewOrder(limit(B, "other", Side::Sell, 100, 5)));
    let ev = t.ok(CommandBody::NewOrder(NewOrder { stp: Some(mode), ..limit(A2, "t", Side::Buy, 100, taker_qty) }));
    (t, ev)
}

#[test]
fn self_trade_prevention_modes() {
    let (t, ev) = stp_case(StpMode::CancelNewest, 8);
    assert!(trades(&ev).is_empty());
    assert_eq!(cancels(&ev), vec![("t".into(), 8, CancelReason::SelfTrade)]);
    assert!(t.live(A, "mine").is_some());

    let (t, ev) = stp_case(StpMode::CancelOldest, 8);
    assert_eq!(cancels(&ev), vec![("mine".into(), 5, CancelReason::SelfTrade)]);
    assert_eq!(trades(&ev), vec![(100, 5, "other".into(), "t".into())]);
    assert_eq!(t.live(A2, "t").unwrap().leaves_lots, 3);

    let (t, ev) = stp_case(StpMode::CancelBoth, 8);
    assert_eq!(
        cancels(&ev),
        vec![("mine".into(), 5, CancelReason::SelfTrade), ("t".into(), 8, CancelReason::SelfTrade)]
    );
    assert!(trades(&ev).is_empty() && t.live(B, "other").is_some());

    // Decrement: taker 8 vs own 5 → own cancelled, taker reduced to 3 and trades with "other".
    let (t, ev) = stp_case(StpMode::DecrementAndCancel, 8);
    assert_eq!(cancels(&ev), vec![("mine".into(), 5, CancelReason::SelfTrade)]);
    assert!(ev.iter().any(|e| matches!(e, Event::Reduced { reduced_lots: 5, order } if order.leaves_lots == 3)));
    assert_eq!(trades(&ev), vec![(100, 3, "other".into(), "t".into())]);
    assert_eq!(t.live(B, "other").unwrap().leaves_lots, 2);
    // Decrement: taker 3 vs own 5 → own reduced to 2 (keeps priority), taker cancelled.
    let (t, ev) = stp_case(StpMode::DecrementAndCancel, 3);
    assert_eq!(cancels(&ev), vec![("t".into(), 3, CancelReason::SelfTrade)]);
    assert_eq!(t.live(A, "mine").unwrap().leaves_lots, 2);
    assert_eq!(t.queue(Side::Sell), ["mine", "other"]);

    // Allow trades with itself; the account default applies when the order names no mode.
    let (_, ev) = stp_case(StpMode::Allow, 5);
    assert_eq!(trades(&ev), vec![(100, 5, "mine".into(), "t".into())]);
}

// ------------------------------------------------------------------ risk

#[test]
fn pre_trade_risk_limits_reject_with_a_reason() {
    let mut t = T::new();
    let limits = RiskLimits {
        max_open_orders: 2,
        max_order_qty_lots: 100,
        max_order_notional_nanos: 50 * 1_000_000_000,    // 50.00
        max_open_buy_notional_nanos: 60 * 1_000_000_000, // 60.00
        max_open_sell_notional_nanos: u128::MAX,
    };
    t.ok(CommandBody::UpsertAccount(AccountSpec { limits, ..AccountSpec::unlimited(A) }));
    assert_eq!(rejected(&t.submit(limit(A, "q", Side::Buy, 1, 101))), Some(RejectReason::AccountMaxOrderQty));
    // 100 lots × 0.51 = 51.00 > 50.00
    assert_eq!(rejected(&t.submit(limit(A, "n", Side::Buy, 51, 100))), Some(RejectReason::AccountMaxOrderNotional));
    t.ok(CommandBody::NewOrder(limit(A, "b1", Side::Buy, 50, 100))); // 50.00 open
    assert_eq!(rejected(&t.submit(limit(A, "b2", Side::Buy, 50, 21))), Some(RejectReason::AccountOpenBuyNotional));
    t.ok(CommandBody::NewOrder(limit(A, "b3", Side::Buy, 50, 20))); // 60.00 open
    assert_eq!(rejected(&t.submit(limit(A, "s1", Side::Sell, 500, 1))), Some(RejectReason::AccountMaxOpenOrders));
    // IOC orders never rest, so the open-order count does not stop them.
    t.ok(CommandBody::NewOrder(limit(B, "bs", Side::Sell, 60, 1)));
    t.ok(CommandBody::NewOrder(NewOrder { tif: TimeInForce::Ioc, ..limit(A, "i", Side::Buy, 60, 1) }));
    // Fills release open notional.
    t.ok(CommandBody::NewOrder(limit(B, "hit", Side::Sell, 50, 100)));
    t.ok(CommandBody::NewOrder(limit(A, "b4", Side::Buy, 50, 100)));
}

#[test]
fn market_orders_without_a_band_are_priced_at_the_far_side_for_risk() {
    let mut t = T::new();
    let limits = RiskLimits { max_order_notional_nanos: 10 * 1_000_000_000, ..RiskLimits::UNLIMITED }; // 10.00
    t.ok(CommandBody::UpsertAccount(AccountSpec { limits, ..AccountSpec::unlimited(A) }));
    let mkt =
        |id: &str, q| NewOrder { ord_type: OrdType::Market, tif: TimeInForce::Ioc, ..limit(A, id, Side::Buy, 0, q) };
    // Empty book: the order cannot trade, nothing to price.
    assert_eq!(rejected(&t.submit(mkt("m0", 50))), None);
    t.ok(CommandBody::NewOrder(limit(B, "s1", Side::Sell, 10, 5)));
    t.ok(CommandBody::NewOrder(limit(B, "s2", Side::Sell, 30, 5)));
    // A sweep could reach 0.30: 40 lots x 0.30 = 12.00 > 10.00, although the touch is 0.10.
    assert_eq!(rejected(&t.submit(mkt("m1", 40))), Some(RejectReason::AccountMaxOrderNotional));
    assert_eq!(rejected(&t.submit(mkt("m2", 30))), None);
}

// ------------------------------------------------------------------ identity and determinism

#[test]
fn client_ids_are_unique_among_live_orders_and_survive_save_load() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(limit(A, "c1", Side::Buy, 100, 5)));
    assert_eq!(rejected(&t.submit(limit(A, "c1", Side::Buy, 99, 5))), Some(RejectReason::DuplicateClOrdId));
    t.ok(CommandBody::NewOrder(limit(B, "c1", Side::Buy, 99, 5))); // other account: fine
    let id = t.live(A, "c1").unwrap().id;
    assert_eq!(t.e.order(id).unwrap().cl_ord_id, cl("c1"));
    let status = t.ok(CommandBody::OrderStatus { account: A, order: OrderRef::Client(cl("c1")) });
    assert!(matches!(status.as_slice(), [Event::Status(v)] if v.id == id));

    let restored = Engine::load(&t.e.save()).unwrap();
    assert_eq!(restored.state_hash(), t.e.state_hash());
    assert_eq!(restored.order_by_client(A, &cl("c1")).unwrap().id, id);

    t.cancel(A, "c1");
    t.ok(CommandBody::NewOrder(limit(A, "c1", Side::Buy, 98, 5))); // reusable once dead
}

#[test]
fn out_of_sequence_commands_are_refused() {
    let mut e = Engine::new(EngineLimits::SMALL);
    let mut out = Vec::new();
    let err = e.apply(&Command { seq: 2, ts_ns: 0, body: CommandBody::Tick }, &mut out).unwrap_err();
    assert_eq!(err, ApplyError::OutOfSequence { expected: 1, got: 2 });
    assert_eq!(e.seq(), 0);
}

#[test]
fn save_load_round_trip_preserves_state_hash_with_every_order_kind() {
    let mut t = T::new();
    t.ok(CommandBody::NewOrder(NewOrder { display_lots: 3, ..limit(A, "ice", Side::Sell, 105, 10) }));
    t.ok(CommandBody::NewOrder(NewOrder {
        tif: TimeInForce::Gtd,
        expire_ns: 1 << 40,
        ..limit(B, "g", Side::Buy, 95, 4)
    }));
    t.ok(CommandBody::NewOrder(NewOrder {
        ord_type: OrdType::Stop,
        stop_ticks: 120,
        ..limit(B, "st", Side::Buy, 0, 2)
    }));
    t.ok(CommandBody::NewOrder(NewOrder {
        post_only: true,
        stp: Some(StpMode::CancelBoth),
        ..limit(A, "p", Side::Buy, 96, 1)
    }));
    t.ok(CommandBody::NewOrder(limit(B, "t", Side::Buy, 105, 4)));
    let bytes = t.e.save();
    let mut r = Engine::load(&bytes).unwrap();
    assert_eq!(r.save(), bytes, "a loaded engine saves the identical image");
    // Both continue identically.
    let cmd =
        Command { seq: t.e.seq() + 1, ts_ns: 1 << 41, body: CommandBody::NewOrder(limit(B, "x", Side::Buy, 130, 20)) };
    let (mut o1, mut o2) = (Vec::new(), Vec::new());
    t.e.apply(&cmd, &mut o1).unwrap();
    r.apply(&cmd, &mut o2).unwrap();
    assert_eq!(o1, o2);
    assert!(o1.iter().any(|e| matches!(e, Event::Expired { reason: ExpireReason::Gtd, .. })));
    assert_eq!(t.e.state_hash(), r.state_hash());
    assert!(Engine::load(&bytes[..bytes.len() / 2]).is_err());
}

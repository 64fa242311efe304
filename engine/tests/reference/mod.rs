//! A deliberately naive reference model of the sable matching engine.
//!
//! Written from the semantics in the crate docs (`engine/src/lib.rs`), not from the engine's data
//! layout: every instrument keeps four plain `Vec`s (bids, asks, buy stops, sell stops) that are
//! re-sorted by `(price priority, priority sequence)` after every insertion, every lookup is a
//! linear scan, open notional and open-order counts are recomputed from the live orders on every
//! check, FOK feasibility is decided by running the real sweep on a throw-away clone of the book,
//! and GTD expiry scans all live orders. There are no pools, indexes, intrusive lists or cached
//! totals that could drift.
//!
//! Where the docs leave a detail open (the precedence of reject reasons, which reference a
//! market order's notional uses, whether replace re-checks the band when the price is
//! unchanged, ...) the model follows the engine's choice; the test report lists those places.
//!
//! Capacity is modelled by counting: the live orders against `max_orders`, and the distinct
//! prices of a ladder (and of all ladders) against `max_levels_per_side` (`max_levels`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use engine::{
    AccountId, AccountSpec, BookChange, CancelReason, ClOrdId, Command, CommandBody, EngineLimits, Event, ExpireReason,
    Fill, InstrumentId, InstrumentSpec, MassCancel, MassCancelTarget, NewOrder, OperatorAction, OperatorOutcome,
    OrdType, OrderId, OrderRef, OrderView, Reject, RejectReason, Replace, RequestKind, ScopeState, Side, StpMode,
    TimeInForce, Trade, TradeId, TradingStatus,
};

thread_local! {
    static HITS: RefCell<BTreeMap<&'static str, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// Counts one pass through a noteworthy path (coverage statistics for the tests).
fn hit(path: &'static str) {
    HITS.with(|h| *h.borrow_mut().entry(path).or_default() += 1);
}

/// The path counts of this thread so far, resetting them.
pub fn take_hits() -> BTreeMap<&'static str, u64> {
    HITS.with(|h| std::mem::take(&mut *h.borrow_mut()))
}

/// One live order of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MOrder {
    /// Exchange id.
    pub id: u64,
    /// Owner.
    pub account: AccountId,
    /// Current client id.
    pub cl_ord_id: ClOrdId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Type as entered.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Limit price (0 for market / stop-market).
    pub price: i64,
    /// Stop price (0 for non-stops).
    pub stop: i64,
    /// Total quantity (after replaces and STP decrements).
    pub qty: u64,
    /// Open quantity.
    pub leaves: u64,
    /// Filled quantity, counted independently of `qty - leaves`.
    pub cum: u64,
    /// Sum of price × qty over fills.
    pub cum_cost: i128,
    /// Iceberg peak, 0 = fully displayed.
    pub display: u64,
    /// Open quantity of the current visible slice.
    pub visible: u64,
    /// Post-only flag.
    pub post_only: bool,
    /// Effective STP mode.
    pub stp: StpMode,
    /// GTD expiry.
    pub expire_ns: u64,
    /// Position in the queue: larger = later.
    pub prio: u64,
    /// Waiting in a stop ladder.
    pub pending: bool,
}

impl MOrder {
    /// The order as events report it.
    pub fn view(&self) -> OrderView {
        debug_assert_eq!(self.qty, self.cum + self.leaves, "model bookkeeping of order {}", self.id);
        OrderView {
            id: OrderId(self.id),
            account: self.account,
            cl_ord_id: self.cl_ord_id,
            instrument: self.instrument,
            side: self.side,
            ord_type: self.ord_type,
            tif: self.tif,
            price_ticks: self.price,
            stop_ticks: self.stop,
            qty_lots: self.qty,
            leaves_lots: self.leaves,
            cum_lots: self.cum,
            cum_cost: self.cum_cost,
            display_lots: self.display,
        }
    }

    fn done_view(&self) -> OrderView {
        OrderView { leaves_lots: 0, ..self.view() }
    }

    fn fill_view(&self) -> Fill {
        Fill {
            order_id: OrderId(self.id),
            account: self.account,
            cl_ord_id: self.cl_ord_id,
            leaves_lots: self.leaves,
            cum_lots: self.cum,
            cum_cost: self.cum_cost,
        }
    }

    fn may_rest(&self) -> bool {
        matches!(self.ord_type, OrdType::Limit | OrdType::StopLimit)
            && matches!(self.tif, TimeInForce::Gtc | TimeInForce::Day | TimeInForce::Gtd)
    }

    fn is_market_like(&self) -> bool {
        matches!(self.ord_type, OrdType::Market | OrdType::Stop)
    }

    /// The price its open quantity is valued at for account risk.
    fn risk_price(&self) -> i64 {
        if self.pending && self.ord_type == OrdType::Stop { self.stop } else { self.price }
    }
}

fn slice(display: u64, leaves: u64) -> u64 {
    if display == 0 { leaves } else { display.min(leaves) }
}

fn crosses(side: Side, limit: i64, level: i64) -> bool {
    match side {
        Side::Buy => level <= limit,
        Side::Sell => level >= limit,
    }
}

/// The four ladders, in the order bulk operations visit them.
pub const LADDERS: [(Side, bool); 4] = [(Side::Buy, false), (Side::Sell, false), (Side::Buy, true), (Side::Sell, true)];

/// One instrument.
#[derive(Clone, Debug)]
pub struct Inst {
    /// Current spec (including status).
    pub spec: InstrumentSpec,
    /// Last trade price.
    pub last_trade: Option<i64>,
    /// Bids, asks, buy stops, sell stops: each sorted best first, FIFO within a price.
    pub ladders: [Vec<MOrder>; 4],
    next_prio: u64,
}

fn ladder_index(side: Side, stops: bool) -> usize {
    match (side, stops) {
        (Side::Buy, false) => 0,
        (Side::Sell, false) => 1,
        (Side::Buy, true) => 2,
        (Side::Sell, true) => 3,
    }
}

impl Inst {
    fn new(spec: InstrumentSpec) -> Self {
        Inst { spec, last_trade: None, ladders: Default::default(), next_prio: 0 }
    }

    fn tick_lot_nanos(&self) -> u128 {
        self.spec.tick_lot_nanos().expect("validated spec")
    }

    fn notional(&self, price: i64, qty: u64) -> u128 {
        (price.unsigned_abs() as u128).saturating_mul(qty as u128).saturating_mul(self.tick_lot_nanos())
    }

    fn is_open(&self) -> bool {
        self.spec.status == TradingStatus::Open
    }

    fn reference(&self) -> Option<i64> {
        self.last_trade.or(self.spec.reference_ticks)
    }

    fn band(&self) -> Option<(i64, i64)> {
        if self.spec.band_bps == 0 {
            return None;
        }
        let r = self.reference()?;
        let half = (r.unsigned_abs() as u128 * self.spec.band_bps as u128 / 10_000) as i64;
        Some((r.saturating_sub(half), r.saturating_add(half)))
    }

    fn in_band(&self, p: i64) -> bool {
        match self.band() {
            None => true,
            Some((lo, hi)) => lo <= p && p <= hi,
        }
    }

    /// Priority-ordered orders of one ladder.
    pub fn ladder(&self, side: Side, stops: bool) -> &Vec<MOrder> {
        &self.ladders[ladder_index(side, stops)]
    }

    fn ladder_mut(&mut self, side: Side, stops: bool) -> &mut Vec<MOrder> {
        &mut self.ladders[ladder_index(side, stops)]
    }

    fn is_empty(&self) -> bool {
        self.ladders.iter().all(Vec::is_empty)
    }

    /// Distinct prices (stop prices on stop ladders) of one ladder.
    fn level_count(&self, side: Side, stops: bool) -> u32 {
        let mut keys: Vec<i64> =
            self.ladder(side, stops).iter().map(|o| if stops { o.stop } else { o.price }).collect();
        keys.dedup();
        keys.len() as u32
    }

    fn sort(&mut self, side: Side, stops: bool) {
        let v = self.ladder_mut(side, stops);
        // Best first: bids and sell stops highest first, asks and buy stops lowest first.
        let high_first = matches!((side, stops), (Side::Buy, false) | (Side::Sell, true));
        v.sort_by_key(|o| {
            let p = if stops { o.stop } else { o.price } as i128;
            (if high_first { -p } else { p }, o.prio)
        });
    }

    /// Puts the order at the back of its level (book or stop ladder).
    fn push_back(&mut self, mut o: MOrder) {
        self.next_prio += 1;
        o.prio = self.next_prio;
        let (side, stops) = (o.side, o.pending);
        self.ladder_mut(side, stops).push(o);
        self.sort(side, stops);
    }

    /// Removes the order with this id from whichever ladder holds it.
    fn take(&mut self, id: u64) -> Option<MOrder> {
        for l in self.ladders.iter_mut() {
            if let Some(i) = l.iter().position(|o| o.id == id) {
                return Some(l.remove(i));
            }
        }
        None
    }

    fn find(&self, id: u64) -> Option<&MOrder> {
        self.ladders.iter().flatten().find(|o| o.id == id)
    }

    fn find_mut(&mut self, id: u64) -> Option<&mut MOrder> {
        self.ladders.iter_mut().flatten().find(|o| o.id == id)
    }
}

fn book_add(o: &MOrder) -> Event {
    Event::Book(BookChange::Add {
        instrument: o.instrument,
        order_id: OrderId(o.id),
        side: o.side,
        price_ticks: o.price,
        qty_lots: o.visible,
    })
}

fn book_delete(o: &MOrder) -> Event {
    Event::Book(BookChange::Delete {
        instrument: o.instrument,
        order_id: OrderId(o.id),
        side: o.side,
        price_ticks: o.price,
    })
}

fn book_modify(o: &MOrder) -> Event {
    Event::Book(BookChange::Modify {
        instrument: o.instrument,
        order_id: OrderId(o.id),
        side: o.side,
        price_ticks: o.price,
        qty_lots: o.visible,
    })
}

/// Events of an order leaving a ladder by cancel.
/// The account and instrument a mass cancel covers (`None`: any).
fn target_scope(t: MassCancelTarget) -> (Option<AccountId>, Option<InstrumentId>) {
    match t {
        MassCancelTarget::Account(a, i) => (Some(a), i),
        MassCancelTarget::Instrument(i) => (None, Some(i)),
        MassCancelTarget::All => (None, None),
    }
}

fn cancelled_resting(o: &MOrder, reason: CancelReason, request: ClOrdId, out: &mut Vec<Event>) {
    out.push(Event::Cancelled { order: o.done_view(), cancelled_lots: o.leaves, request_cl_ord_id: request, reason });
    if !o.pending {
        out.push(book_delete(o));
    }
}

fn cancelled_taker(o: &MOrder, reason: CancelReason, out: &mut Vec<Event>) {
    out.push(Event::Cancelled {
        order: o.done_view(),
        cancelled_lots: o.leaves,
        request_cl_ord_id: o.cl_ord_id,
        reason,
    });
}

fn group_of(accounts: &BTreeMap<u32, AccountSpec>, a: AccountId) -> u32 {
    accounts.get(&a.0).map_or(a.0, |s| s.stp_group)
}

/// Matches `taker` against the opposite side of `inst` while it crosses `limit` (`None`: any
/// price). Returns false if self-trade prevention cancelled the taker.
fn sweep(
    inst: &mut Inst,
    accounts: &BTreeMap<u32, AccountSpec>,
    taker: &mut MOrder,
    limit: Option<i64>,
    next_trade_id: &mut u64,
    out: &mut Vec<Event>,
) -> bool {
    let opp = taker.side.opposite();
    let taker_group = group_of(accounts, taker.account);
    loop {
        if taker.leaves == 0 {
            return true;
        }
        let Some(head) = inst.ladder(opp, false).first().cloned() else { return true };
        if limit.is_some_and(|l| !crosses(taker.side, l, head.price)) {
            if taker.is_market_like() {
                hit("market-like taker stopped at the band edge");
            }
            return true;
        }
        if taker.stp != StpMode::Allow && group_of(accounts, head.account) == taker_group {
            match taker.stp {
                StpMode::CancelNewest => {
                    cancelled_taker(taker, CancelReason::SelfTrade, out);
                    return false;
                }
                StpMode::CancelOldest => {
                    hit("stp cancel-oldest");
                    let m = inst.take(head.id).expect("head exists");
                    cancelled_resting(&m, CancelReason::SelfTrade, m.cl_ord_id, out);
                    continue;
                }
                StpMode::CancelBoth => {
                    let m = inst.take(head.id).expect("head exists");
                    cancelled_resting(&m, CancelReason::SelfTrade, m.cl_ord_id, out);
                    cancelled_taker(taker, CancelReason::SelfTrade, out);
                    return false;
                }
                StpMode::DecrementAndCancel => {
                    let q = taker.leaves.min(head.visible);
                    if q == head.leaves {
                        hit("stp decrement: maker cancelled");
                        let m = inst.take(head.id).expect("head exists");
                        cancelled_resting(&m, CancelReason::SelfTrade, m.cl_ord_id, out);
                    } else {
                        let m = inst.find_mut(head.id).expect("head exists");
                        m.leaves -= q;
                        m.qty -= q;
                        m.visible -= q;
                        out.push(Event::Reduced { order: m.view(), reduced_lots: q });
                        if m.visible == 0 {
                            hit("stp decrement: iceberg slice gone, refilled");
                            // The slice is gone, the reserve is not: leave and re-enter at the back.
                            out.push(book_delete(m));
                            let mut m = inst.take(head.id).expect("head exists");
                            m.visible = slice(m.display, m.leaves);
                            out.push(book_add(&m));
                            inst.push_back(m);
                        } else {
                            out.push(book_modify(m));
                        }
                    }
                    if taker.leaves == q {
                        hit("stp decrement: taker cancelled");
                        cancelled_taker(taker, CancelReason::SelfTrade, out);
                        return false;
                    }
                    hit("stp decrement: taker reduced, continues");
                    taker.leaves -= q;
                    taker.qty -= q;
                    out.push(Event::Reduced { order: taker.view(), reduced_lots: q });
                    continue;
                }
                StpMode::Allow => unreachable!(),
            }
        }
        // A trade with the head of the best level, at its price, up to its visible quantity.
        let q = taker.leaves.min(head.visible);
        let price = head.price;
        let trade_id = *next_trade_id;
        *next_trade_id += 1;
        taker.leaves -= q;
        taker.cum += q;
        taker.cum_cost += price as i128 * q as i128;
        let m = inst.find_mut(head.id).expect("head exists");
        m.leaves -= q;
        m.visible -= q;
        m.cum += q;
        m.cum_cost += price as i128 * q as i128;
        let maker = m.clone();
        inst.last_trade = Some(price);
        out.push(Event::Trade(Trade {
            trade_id: TradeId(trade_id),
            instrument: inst.spec.id,
            price_ticks: price,
            qty_lots: q,
            aggressor: taker.side,
            taker: taker.fill_view(),
            maker: maker.fill_view(),
        }));
        out.push(Event::Book(BookChange::Execute {
            instrument: inst.spec.id,
            order_id: OrderId(maker.id),
            side: maker.side,
            price_ticks: price,
            qty_lots: q,
            trade_id: TradeId(trade_id),
        }));
        if maker.visible == 0 {
            let mut m = inst.take(maker.id).expect("maker exists");
            if m.leaves > 0 {
                if inst.ladder(m.side, false).first().is_some_and(|o| o.price == m.price) {
                    hit("iceberg refill behind others at its level");
                }
                // Iceberg refill at the back of its level.
                m.visible = slice(m.display, m.leaves);
                out.push(book_add(&m));
                inst.push_back(m);
            }
        }
    }
}

/// The reference model.
pub struct Model {
    limits: EngineLimits,
    seq: u64,
    now: u64,
    next_order_id: u64,
    next_trade_id: u64,
    /// Instruments by id.
    pub insts: BTreeMap<u32, Inst>,
    /// Account specs by id.
    pub accounts: BTreeMap<u32, AccountSpec>,
    /// Accounts whose kill switch is engaged.
    killed_accounts: std::collections::BTreeSet<u32>,
    /// Sessions whose kill switch is engaged.
    killed_sessions: std::collections::BTreeSet<u64>,
}

fn reject_event(
    request: RequestKind,
    account: AccountId,
    cl_ord_id: ClOrdId,
    instrument: InstrumentId,
    order_id: Option<OrderId>,
    reason: RejectReason,
) -> Event {
    Event::Rejected(Reject { request, account, cl_ord_id, instrument, order_id, order_cum_lots: 0, reason })
}

fn admin_reject(instrument: InstrumentId, reason: RejectReason) -> Event {
    reject_event(RequestKind::Admin, AccountId(0), ClOrdId::default(), instrument, None, reason)
}

impl Model {
    /// An empty model with the engine's id ranges.
    pub fn new(limits: EngineLimits) -> Self {
        Model {
            limits,
            seq: 0,
            now: 0,
            next_order_id: 1,
            next_trade_id: 1,
            insts: BTreeMap::new(),
            accounts: BTreeMap::new(),
            killed_accounts: Default::default(),
            killed_sessions: Default::default(),
        }
    }

    /// The id the next accepted order will get.
    pub fn next_order_id(&self) -> u64 {
        self.next_order_id
    }

    /// Every live order, by id.
    pub fn live_orders(&self) -> Vec<&MOrder> {
        let mut v: Vec<&MOrder> = self.insts.values().flat_map(|i| i.ladders.iter().flatten()).collect();
        v.sort_by_key(|o| o.id);
        v
    }

    fn find_live(&self, account: AccountId, r: OrderRef) -> Option<&MOrder> {
        let all = self.live_orders();
        let o = match r {
            OrderRef::Id(id) => all.into_iter().find(|o| o.id == id.0)?,
            OrderRef::Client(c) => all.into_iter().find(|o| o.account == account && o.cl_ord_id == c)?,
        };
        (o.account == account).then_some(o)
    }

    fn cl_ord_id_live(&self, account: AccountId, c: ClOrdId) -> bool {
        self.live_orders().iter().any(|o| o.account == account && o.cl_ord_id == c)
    }

    /// Whether resting at `key` on that ladder would need a new price level that the
    /// capacities do not allow.
    fn level_unavailable(&self, inst: u32, side: Side, stops: bool, key: i64) -> bool {
        let i = &self.insts[&inst];
        let exists = i.ladder(side, stops).iter().any(|o| (if stops { o.stop } else { o.price }) == key);
        let total: u32 =
            self.insts.values().map(|i| LADDERS.iter().map(|&(s, st)| i.level_count(s, st)).sum::<u32>()).sum();
        !exists && (i.level_count(side, stops) >= self.limits.max_levels_per_side || total >= self.limits.max_levels)
    }

    fn open_orders(&self, account: AccountId) -> u32 {
        self.live_orders().iter().filter(|o| o.account == account).count() as u32
    }

    /// Open notional of the account's live orders on `side`, computed from scratch.
    fn open_notional(&self, account: AccountId, side: Side) -> u128 {
        let mut total: u128 = 0;
        for inst in self.insts.values() {
            for o in inst.ladders.iter().flatten() {
                if o.account == account && o.side == side {
                    total += inst.notional(o.risk_price(), o.leaves);
                }
            }
        }
        total
    }

    /// Applies one command and returns its events.
    pub fn apply(&mut self, cmd: &Command) -> Vec<Event> {
        assert_eq!(cmd.seq, self.seq + 1, "model fed out of sequence");
        self.seq = cmd.seq;
        self.now = self.now.max(cmd.ts_ns);
        let mut out = Vec::new();
        self.expire_gtd(&mut out);
        let body = match &cmd.body {
            CommandBody::ConfigureInstrument(spec) => match self.insts.get(&spec.id.0) {
                None => CommandBody::AddInstrument(*spec),
                Some(i) => CommandBody::UpdateInstrument(InstrumentSpec { status: i.spec.status, ..*spec }),
            },
            other => *other,
        };
        match &body {
            CommandBody::NewOrder(o) => self.new_order(o, &mut out),
            CommandBody::Cancel(c) => match self.find_live(c.account, c.order).map(|o| (o.instrument, o.id)) {
                None => out.push(reject_event(
                    RequestKind::Cancel,
                    c.account,
                    c.cl_ord_id,
                    InstrumentId(0),
                    None,
                    RejectReason::UnknownOrder,
                )),
                Some((inst, id)) => {
                    let o = self.insts.get_mut(&inst.0).expect("inst").take(id).expect("live");
                    cancelled_resting(&o, CancelReason::Requested, c.cl_ord_id, &mut out);
                }
            },
            CommandBody::Replace(r) => self.replace(r, &mut out),
            CommandBody::MassCancel(m) => self.mass_cancel(m, &mut out),
            CommandBody::OrderStatus { account, order } => match self.find_live(*account, *order) {
                Some(o) => out.push(Event::Status(o.view())),
                None => {
                    let cl = match order {
                        OrderRef::Client(c) => *c,
                        OrderRef::Id(_) => ClOrdId::default(),
                    };
                    out.push(reject_event(
                        RequestKind::OrderStatus,
                        *account,
                        cl,
                        InstrumentId(0),
                        None,
                        RejectReason::UnknownOrder,
                    ));
                }
            },
            CommandBody::EndOfDay { instrument } => self.end_of_day(*instrument, &mut out),
            CommandBody::Tick => {}
            CommandBody::AddInstrument(spec) => {
                if spec.id.0 >= self.limits.max_instruments {
                    out.push(admin_reject(spec.id, RejectReason::IdOutOfRange));
                } else {
                    match self.insts.entry(spec.id.0) {
                        Entry::Occupied(_) => out.push(admin_reject(spec.id, RejectReason::InstrumentExists)),
                        Entry::Vacant(_) if spec.validate().is_err() => {
                            out.push(admin_reject(spec.id, RejectReason::InvalidSpec))
                        }
                        Entry::Vacant(v) => {
                            v.insert(Inst::new(*spec));
                            out.push(Event::Instrument { instrument: spec.id, status: Some(spec.status) });
                        }
                    }
                }
            }
            CommandBody::UpdateInstrument(spec) => {
                let Some(inst) = self.insts.get_mut(&spec.id.0) else {
                    out.push(admin_reject(spec.id, RejectReason::UnknownInstrument));
                    return out;
                };
                if spec.validate().is_err() {
                    out.push(admin_reject(spec.id, RejectReason::InvalidSpec));
                } else if (inst.spec.tick_size != spec.tick_size || inst.spec.lot_size != spec.lot_size)
                    && !inst.is_empty()
                {
                    out.push(admin_reject(spec.id, RejectReason::InstrumentHasOrders));
                } else {
                    inst.spec = *spec;
                    out.push(Event::Instrument { instrument: spec.id, status: Some(spec.status) });
                }
            }
            CommandBody::Operator(c) => self.operator(&c.action, &mut out),
            CommandBody::ConfigureInstrument(_) => unreachable!("mapped onto Add/UpdateInstrument above"),
            CommandBody::SetTradingStatus { instrument, status } => match self.insts.get_mut(&instrument.0) {
                None => out.push(admin_reject(*instrument, RejectReason::UnknownInstrument)),
                Some(inst) => {
                    inst.spec.status = *status;
                    out.push(Event::Instrument { instrument: *instrument, status: Some(*status) });
                }
            },
            CommandBody::RemoveInstrument { instrument } => match self.insts.get(&instrument.0) {
                None => out.push(admin_reject(*instrument, RejectReason::UnknownInstrument)),
                Some(inst) if !inst.is_empty() => {
                    out.push(admin_reject(*instrument, RejectReason::InstrumentHasOrders))
                }
                Some(_) => {
                    self.insts.remove(&instrument.0);
                    out.push(Event::Instrument { instrument: *instrument, status: None });
                }
            },
            CommandBody::UpsertAccount(spec) => {
                if spec.account.0 >= self.limits.max_accounts {
                    out.push(reject_event(
                        RequestKind::Admin,
                        spec.account,
                        ClOrdId::default(),
                        InstrumentId(0),
                        None,
                        RejectReason::IdOutOfRange,
                    ));
                } else {
                    self.accounts.insert(spec.account.0, *spec);
                    out.push(Event::Account(spec.account));
                }
            }
        }
        out
    }

    /// GTD orders whose expiry has been reached, in (expiry, acceptance) order.
    fn expire_gtd(&mut self, out: &mut Vec<Event>) {
        let now = self.now;
        let mut due: Vec<(u64, u64, u32)> = self
            .live_orders()
            .iter()
            .filter(|o| o.tif == TimeInForce::Gtd && o.expire_ns <= now)
            .map(|o| (o.expire_ns, o.id, o.instrument.0))
            .collect();
        due.sort();
        if due.len() > 1 {
            hit("several gtd expiries in one command");
        }
        for (_, id, inst) in due {
            let o = self.insts.get_mut(&inst).expect("inst").take(id).expect("live");
            if o.pending {
                hit("gtd expiry of a pending stop");
            }
            out.push(Event::Expired { order: o.done_view(), expired_lots: o.leaves, reason: ExpireReason::Gtd });
            if !o.pending {
                out.push(book_delete(&o));
            }
        }
    }

    fn validate_new(&self, o: &NewOrder) -> Result<(), RejectReason> {
        let inst = self.insts.get(&o.instrument.0).ok_or(RejectReason::UnknownInstrument)?;
        let acc = self.accounts.get(&o.account.0).ok_or(RejectReason::UnknownAccount)?;
        if self.killed_accounts.contains(&o.account.0) {
            return Err(RejectReason::KillSwitch);
        }
        if !inst.is_open() {
            return Err(RejectReason::InstrumentNotOpen);
        }
        if o.qty_lots == 0 || o.qty_lots < inst.spec.min_qty_lots {
            return Err(RejectReason::QtyBelowMin);
        }
        if o.qty_lots > inst.spec.max_qty_lots {
            return Err(RejectReason::QtyAboveMax);
        }
        if o.qty_lots > acc.limits.max_order_qty_lots {
            return Err(RejectReason::AccountMaxOrderQty);
        }
        let may_rest = matches!(o.ord_type, OrdType::Limit | OrdType::StopLimit)
            && matches!(o.tif, TimeInForce::Gtc | TimeInForce::Day | TimeInForce::Gtd);
        if o.display_lots > 0 && (!may_rest || o.display_lots > o.qty_lots) {
            return Err(RejectReason::InvalidDisplayQty);
        }
        if o.post_only && (o.ord_type != OrdType::Limit || !may_rest) {
            return Err(RejectReason::InvalidPostOnly);
        }
        if o.tif == TimeInForce::Gtd && o.expire_ns <= self.now {
            return Err(RejectReason::ExpireTimeInPast);
        }
        let notional_price = match o.ord_type {
            OrdType::Limit => {
                if !inst.in_band(o.price_ticks) {
                    return Err(RejectReason::PriceOutsideBand);
                }
                o.price_ticks
            }
            OrdType::Market => match (inst.spec.band_bps, inst.band()) {
                (0, _) => {
                    // No band: the most extreme price a full sweep of the other side reaches.
                    let other = &inst.ladders[ladder_index(o.side.opposite(), false)];
                    other.iter().map(|m| m.price).max_by_key(|p| p.unsigned_abs()).unwrap_or(0)
                }
                (_, None) => return Err(RejectReason::NoReferencePrice),
                (_, Some((lo, hi))) => {
                    if o.side == Side::Buy {
                        hi
                    } else {
                        lo
                    }
                }
            },
            OrdType::Stop => o.stop_ticks,
            OrdType::StopLimit => o.price_ticks,
        };
        let notional = inst.notional(notional_price, o.qty_lots);
        if notional > inst.spec.max_notional_nanos {
            return Err(RejectReason::NotionalAboveMax);
        }
        if notional > acc.limits.max_order_notional_nanos {
            return Err(RejectReason::AccountMaxOrderNotional);
        }
        // Orders that can become live count against the live-order limits.
        if may_rest || matches!(o.ord_type, OrdType::Stop | OrdType::StopLimit) {
            if self.open_orders(o.account) >= acc.limits.max_open_orders {
                return Err(RejectReason::AccountMaxOpenOrders);
            }
            let open = self.open_notional(o.account, o.side).saturating_add(notional);
            match o.side {
                Side::Buy if open > acc.limits.max_open_buy_notional_nanos => {
                    return Err(RejectReason::AccountOpenBuyNotional);
                }
                Side::Sell if open > acc.limits.max_open_sell_notional_nanos => {
                    return Err(RejectReason::AccountOpenSellNotional);
                }
                _ => {}
            }
        }
        if self.cl_ord_id_live(o.account, o.cl_ord_id) {
            return Err(RejectReason::DuplicateClOrdId);
        }
        if o.post_only
            && let Some(best) = inst.ladder(o.side.opposite(), false).first()
            && crosses(o.side, o.price_ticks, best.price)
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        if self.live_orders().len() as u32 >= self.limits.max_orders {
            return Err(RejectReason::OrderCapacity);
        }
        // A limit order that may rest needs a level even if it might fill completely.
        let needs_level = match o.ord_type {
            OrdType::Stop | OrdType::StopLimit => self.level_unavailable(o.instrument.0, o.side, true, o.stop_ticks),
            _ => may_rest && self.level_unavailable(o.instrument.0, o.side, false, o.price_ticks),
        };
        if needs_level {
            return Err(RejectReason::LevelCapacity);
        }
        Ok(())
    }

    fn new_order(&mut self, o: &NewOrder, out: &mut Vec<Event>) {
        if let Err(reason) = self.validate_new(o) {
            out.push(reject_event(RequestKind::NewOrder, o.account, o.cl_ord_id, o.instrument, None, reason));
            return;
        }
        let is_stop = matches!(o.ord_type, OrdType::Stop | OrdType::StopLimit);
        let has_limit = matches!(o.ord_type, OrdType::Limit | OrdType::StopLimit);
        let id = self.next_order_id;
        self.next_order_id += 1;
        let order = MOrder {
            id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            price: if has_limit { o.price_ticks } else { 0 },
            stop: if is_stop { o.stop_ticks } else { 0 },
            qty: o.qty_lots,
            leaves: o.qty_lots,
            cum: 0,
            cum_cost: 0,
            display: o.display_lots,
            visible: slice(o.display_lots, o.qty_lots),
            post_only: o.post_only,
            stp: o.stp.unwrap_or(self.accounts[&o.account.0].default_stp),
            expire_ns: o.expire_ns,
            prio: 0,
            pending: is_stop,
        };
        out.push(Event::Accepted(order.view()));
        if is_stop {
            let mut order = order;
            order.visible = order.leaves;
            self.insts.get_mut(&o.instrument.0).expect("inst").push_back(order);
        } else {
            self.execute(order, out);
        }
        self.run_triggers(o.instrument.0, out);
    }

    /// Runs an order that is not on any ladder as a taker, then rests or cancels the remainder.
    fn execute(&mut self, mut taker: MOrder, out: &mut Vec<Event>) {
        let Model { insts, accounts, next_trade_id, .. } = self;
        let inst = insts.get_mut(&taker.instrument.0).expect("inst");
        let limit = if taker.is_market_like() {
            inst.band().map(|(lo, hi)| if taker.side == Side::Buy { hi } else { lo })
        } else {
            Some(taker.price)
        };
        if taker.tif == TimeInForce::Fok {
            // Would it fill completely, by trades alone? Try it on a copy of the book.
            let mut trial_inst = inst.clone();
            let mut trial_taker = taker.clone();
            let mut trial_trade_id = *next_trade_id;
            let mut trial_out = Vec::new();
            sweep(&mut trial_inst, accounts, &mut trial_taker, limit, &mut trial_trade_id, &mut trial_out);
            let traded: u64 = trial_out
                .iter()
                .filter_map(|e| match e {
                    Event::Trade(t) => Some(t.qty_lots),
                    _ => None,
                })
                .sum();
            let stp = trial_out
                .iter()
                .any(|e| matches!(e, Event::Reduced { .. } | Event::Cancelled { reason: CancelReason::SelfTrade, .. }));
            let refill = trial_out.windows(2).any(|w| {
                matches!(w, [Event::Book(BookChange::Execute { order_id: a, .. }), Event::Book(BookChange::Add { order_id: b, .. })] if a == b)
            });
            if traded < taker.leaves {
                hit(match (stp, refill) {
                    (true, true) => "fok killed: stp behind an iceberg refill",
                    (true, false) => "fok killed: stp",
                    (false, _) if traded > 0 => "fok killed: partial liquidity",
                    (false, _) => "fok killed: no liquidity",
                });
                cancelled_taker(&taker, CancelReason::FokUnfilled, out);
                return;
            }
            hit(match (stp, refill) {
                (true, _) => "fok filled after stp cancel-oldest",
                (false, true) => "fok filled through an iceberg refill",
                (false, false) => "fok filled",
            });
        }
        if !sweep(inst, accounts, &mut taker, limit, next_trade_id, out) {
            return;
        }
        if taker.leaves == 0 {
            return;
        }
        if taker.may_rest() && self.level_unavailable(taker.instrument.0, taker.side, false, taker.price) {
            hit("remainder finds no level");
            cancelled_taker(&taker, CancelReason::LevelCapacity, out);
            return;
        }
        let inst = self.insts.get_mut(&taker.instrument.0).expect("inst");
        if taker.may_rest() {
            if taker.ord_type == OrdType::StopLimit {
                hit("triggered stop-limit rests");
            }
            taker.pending = false;
            taker.visible = slice(taker.display, taker.leaves);
            out.push(book_add(&taker));
            inst.push_back(taker);
        } else {
            let reason = if taker.is_market_like() {
                CancelReason::MarketRemainder
            } else if taker.tif == TimeInForce::Fok {
                CancelReason::FokUnfilled
            } else {
                CancelReason::IocRemainder
            };
            cancelled_taker(&taker, reason, out);
        }
    }

    /// Triggers eligible stops one at a time: buy stops (lowest stop first) before sell stops
    /// (highest first), FIFO within a stop price, re-checking after each.
    fn run_triggers(&mut self, inst_id: u32, out: &mut Vec<Event>) {
        loop {
            let inst = &self.insts[&inst_id];
            if !inst.is_open() {
                return;
            }
            let Some(last) = inst.last_trade else { return };
            let buy = inst.ladder(Side::Buy, true).first().filter(|o| o.stop <= last);
            let sell = inst.ladder(Side::Sell, true).first().filter(|o| o.stop >= last);
            if buy.is_some() && sell.is_some() {
                hit("buy and sell stops eligible at once");
            }
            let Some(id) = buy.or(sell).map(|o| o.id) else { return };
            let inst = self.insts.get_mut(&inst_id).expect("inst");
            let mut o = inst.take(id).expect("stop exists");
            o.pending = false;
            o.visible = slice(o.display, o.leaves);
            out.push(Event::Triggered(o.view()));
            if o.ord_type == OrdType::StopLimit && !inst.in_band(o.price) {
                cancelled_taker(&o, CancelReason::PriceOutsideBand, out);
                continue;
            }
            self.execute(o, out);
        }
    }

    fn validate_replace(&self, r: &Replace, o: &MOrder) -> Result<(), RejectReason> {
        let inst = &self.insts[&o.instrument.0];
        let acc = &self.accounts[&o.account.0];
        if !inst.is_open() {
            return Err(RejectReason::InstrumentNotOpen);
        }
        if r.cl_ord_id != o.cl_ord_id && self.cl_ord_id_live(o.account, r.cl_ord_id) {
            return Err(RejectReason::DuplicateClOrdId);
        }
        if r.qty_lots <= o.cum {
            return Ok(()); // cancels the order
        }
        if r.qty_lots < inst.spec.min_qty_lots {
            return Err(RejectReason::QtyBelowMin);
        }
        if r.qty_lots > inst.spec.max_qty_lots {
            return Err(RejectReason::QtyAboveMax);
        }
        if r.qty_lots > acc.limits.max_order_qty_lots {
            return Err(RejectReason::AccountMaxOrderQty);
        }
        if o.display > r.qty_lots {
            return Err(RejectReason::InvalidDisplayQty);
        }
        let (new_price, new_stop) = self.replace_prices(r, o);
        if !o.pending && new_price != o.price && !inst.in_band(new_price) {
            return Err(RejectReason::PriceOutsideBand);
        }
        let risk_price = if o.pending && o.ord_type == OrdType::Stop { new_stop } else { new_price };
        let notional = inst.notional(risk_price, r.qty_lots);
        if notional > inst.spec.max_notional_nanos {
            return Err(RejectReason::NotionalAboveMax);
        }
        if notional > acc.limits.max_order_notional_nanos {
            return Err(RejectReason::AccountMaxOrderNotional);
        }
        let others = self.open_notional(o.account, o.side) - inst.notional(o.risk_price(), o.leaves);
        let open = others.saturating_add(inst.notional(risk_price, r.qty_lots - o.cum));
        match o.side {
            Side::Buy if open > acc.limits.max_open_buy_notional_nanos => {
                return Err(RejectReason::AccountOpenBuyNotional);
            }
            Side::Sell if open > acc.limits.max_open_sell_notional_nanos => {
                return Err(RejectReason::AccountOpenSellNotional);
            }
            _ => {}
        }
        if o.post_only
            && let Some(best) = inst.ladder(o.side.opposite(), false).first()
            && crosses(o.side, new_price, best.price)
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        // A new price needs a level; the one the order leaves is not counted on.
        let (key, old_key) = if o.pending { (new_stop, o.stop) } else { (new_price, o.price) };
        if key != old_key && self.level_unavailable(o.instrument.0, o.side, o.pending, key) {
            return Err(RejectReason::LevelCapacity);
        }
        Ok(())
    }

    /// New (limit, stop) of a replaced order: limit and stop-limit orders take the new limit
    /// price; pending stops take the new stop price.
    fn replace_prices(&self, r: &Replace, o: &MOrder) -> (i64, i64) {
        let price = if matches!(o.ord_type, OrdType::Limit | OrdType::StopLimit) { r.price_ticks } else { o.price };
        let stop = if o.pending { r.stop_ticks } else { o.stop };
        (price, stop)
    }

    fn replace(&mut self, r: &Replace, out: &mut Vec<Event>) {
        let Some(o) = self.find_live(r.account, r.order).cloned() else {
            out.push(reject_event(
                RequestKind::Replace,
                r.account,
                r.cl_ord_id,
                InstrumentId(0),
                None,
                RejectReason::UnknownOrder,
            ));
            return;
        };
        if let Err(reason) = self.validate_replace(r, &o) {
            out.push(Event::Rejected(Reject {
                request: RequestKind::Replace,
                account: r.account,
                cl_ord_id: r.cl_ord_id,
                instrument: o.instrument,
                order_id: Some(OrderId(o.id)),
                order_cum_lots: o.cum,
                reason,
            }));
            return;
        }
        let inst_id = o.instrument.0;
        if r.qty_lots <= o.cum {
            let o = self.insts.get_mut(&inst_id).expect("inst").take(o.id).expect("live");
            cancelled_resting(&o, CancelReason::ReplacedToFilled, r.cl_ord_id, out);
            return;
        }
        let (new_price, new_stop) = self.replace_prices(r, &o);
        let new_leaves = r.qty_lots - o.cum;
        let inst = self.insts.get_mut(&inst_id).expect("inst");
        if new_price == o.price && new_stop == o.stop && r.qty_lots <= o.qty {
            // Same price, quantity not raised: keeps its place in the queue.
            let m = inst.find_mut(o.id).expect("live");
            m.cl_ord_id = r.cl_ord_id;
            m.qty = r.qty_lots;
            m.leaves = new_leaves;
            m.visible = m.visible.min(new_leaves);
            out.push(Event::Replaced { order: m.view(), orig_cl_ord_id: o.cl_ord_id, priority_kept: true });
            if !m.pending && m.visible != o.visible {
                if m.display > 0 {
                    hit("replace keeps priority of an iceberg, slice shrinks");
                }
                out.push(book_modify(m));
            }
            return;
        }
        // Loses priority: `Replaced` (new state), `Book::Delete` at the old price, re-entry.
        let mut m = inst.take(o.id).expect("live");
        m.cl_ord_id = r.cl_ord_id;
        m.price = new_price;
        m.stop = new_stop;
        m.qty = r.qty_lots;
        m.leaves = new_leaves;
        m.visible = if m.pending { new_leaves } else { slice(m.display, new_leaves) };
        out.push(Event::Replaced { order: m.view(), orig_cl_ord_id: o.cl_ord_id, priority_kept: false });
        if !o.pending {
            out.push(book_delete(&o));
        }
        if m.pending {
            inst.push_back(m);
        } else {
            self.execute(m, out);
        }
        self.run_triggers(inst_id, out);
    }

    /// Orders of one instrument in bulk-visit order: bids, asks, buy stops, sell stops, each
    /// best first and FIFO within a price.
    fn bulk_order(&self, inst: u32) -> Vec<u64> {
        self.insts[&inst].ladders.iter().flatten().map(|o| o.id).collect()
    }

    fn mass_cancel(&mut self, m: &MassCancel, out: &mut Vec<Event>) {
        let (account, instrument) = match m.target {
            MassCancelTarget::Account(a, i) => (Some(a), i),
            MassCancelTarget::Instrument(i) => (None, Some(i)),
            MassCancelTarget::All => (None, None),
        };
        let reason = if account.is_some_and(|a| !self.accounts.contains_key(&a.0)) {
            Some(RejectReason::UnknownAccount)
        } else if instrument.is_some_and(|i| !self.insts.contains_key(&i.0)) {
            Some(RejectReason::UnknownInstrument)
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(reject_event(
                RequestKind::MassCancel,
                m.account,
                m.cl_ord_id,
                instrument.unwrap_or_default(),
                None,
                reason,
            ));
            return;
        }
        let cancelled = self.sweep(account, instrument, CancelReason::MassCancel, Some(m.cl_ord_id), out);
        out.push(Event::MassCancelled { account: m.account, cl_ord_id: m.cl_ord_id, target: m.target, cancelled });
    }

    /// An operator command: its effect, then its outcome with the scope before and after.
    fn operator(&mut self, a: &OperatorAction, out: &mut Vec<Event>) {
        let before = self.scope(a);
        let (cancelled, refused) = match self.operator_effect(a, out) {
            Ok(n) => (n, None),
            Err(r) => (0, Some(r)),
        };
        let after = self.scope(a);
        out.push(Event::Operator(OperatorOutcome { before, after, cancelled, refused }));
    }

    fn operator_effect(&mut self, a: &OperatorAction, out: &mut Vec<Event>) -> Result<u32, RejectReason> {
        match *a {
            OperatorAction::SetTradingStatus { instrument, status } => {
                let inst = self.insts.get_mut(&instrument.0).ok_or(RejectReason::UnknownInstrument)?;
                inst.spec.status = status;
                out.push(Event::Instrument { instrument, status: Some(status) });
                Ok(0)
            }
            OperatorAction::MassCancel(t) => self.operator_cancel(t, out),
            OperatorAction::KillAccount { account, engaged } => {
                if !self.accounts.contains_key(&account.0) {
                    return Err(RejectReason::UnknownAccount);
                }
                if !engaged {
                    self.killed_accounts.remove(&account.0);
                    return Ok(0);
                }
                self.killed_accounts.insert(account.0);
                self.operator_cancel(MassCancelTarget::Account(account, None), out)
            }
            OperatorAction::KillSession { session, engaged } => {
                if engaged {
                    self.killed_sessions.insert(session);
                } else {
                    self.killed_sessions.remove(&session);
                }
                Ok(0)
            }
            OperatorAction::Reload { .. } => Ok(0),
        }
    }

    fn operator_cancel(&mut self, t: MassCancelTarget, out: &mut Vec<Event>) -> Result<u32, RejectReason> {
        let (account, instrument) = target_scope(t);
        if account.is_some_and(|a| !self.accounts.contains_key(&a.0)) {
            return Err(RejectReason::UnknownAccount);
        }
        if instrument.is_some_and(|i| !self.insts.contains_key(&i.0)) {
            return Err(RejectReason::UnknownInstrument);
        }
        Ok(self.sweep(account, instrument, CancelReason::Operator, None, out))
    }

    /// Cancels every live order of `account` (any) in `instrument` (any), each book in bulk
    /// order; the cancels name `request` as the request's client id, else the order's own.
    fn sweep(
        &mut self,
        account: Option<AccountId>,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        request: Option<ClOrdId>,
        out: &mut Vec<Event>,
    ) -> u32 {
        let ids: Vec<u32> = self.insts.keys().copied().filter(|i| instrument.is_none_or(|x| x.0 == *i)).collect();
        let mut cancelled = 0;
        for i in ids {
            for id in self.bulk_order(i) {
                let inst = self.insts.get_mut(&i).expect("inst");
                if account.is_none_or(|a| inst.find(id).expect("live").account == a) {
                    let o = inst.take(id).expect("live");
                    cancelled_resting(&o, reason, request.unwrap_or(o.cl_ord_id), out);
                    cancelled += 1;
                }
            }
        }
        cancelled
    }

    fn scope(&self, a: &OperatorAction) -> ScopeState {
        let live = |account: Option<AccountId>, instrument: Option<InstrumentId>| {
            if account.is_some_and(|a| !self.accounts.contains_key(&a.0))
                || instrument.is_some_and(|i| !self.insts.contains_key(&i.0))
            {
                return None;
            }
            let orders = self.insts.iter().filter(|(id, _)| instrument.is_none_or(|i| i.0 == **id));
            let n = orders
                .flat_map(|(_, inst)| inst.ladders.iter().flatten())
                .filter(|o| account.is_none_or(|a| o.account == a));
            Some(n.count() as u32)
        };
        match *a {
            OperatorAction::SetTradingStatus { instrument, .. } => ScopeState {
                live_orders: live(None, Some(instrument)),
                status: self.insts.get(&instrument.0).map(|i| i.spec.status),
                kill_switch: None,
            },
            OperatorAction::MassCancel(t) => {
                let (account, instrument) = target_scope(t);
                ScopeState { live_orders: live(account, instrument), ..ScopeState::default() }
            }
            OperatorAction::KillAccount { account, .. } if self.accounts.contains_key(&account.0) => ScopeState {
                live_orders: live(Some(account), None),
                status: None,
                kill_switch: Some(self.killed_accounts.contains(&account.0)),
            },
            OperatorAction::KillAccount { .. } | OperatorAction::Reload { .. } => ScopeState::default(),
            OperatorAction::KillSession { session, .. } => {
                ScopeState { kill_switch: Some(self.killed_sessions.contains(&session)), ..ScopeState::default() }
            }
        }
    }

    fn end_of_day(&mut self, instrument: Option<InstrumentId>, out: &mut Vec<Event>) {
        if let Some(i) = instrument
            && !self.insts.contains_key(&i.0)
        {
            out.push(admin_reject(i, RejectReason::UnknownInstrument));
            return;
        }
        let ids: Vec<u32> = self.insts.keys().copied().filter(|i| instrument.is_none_or(|x| x.0 == *i)).collect();
        for i in ids {
            for id in self.bulk_order(i) {
                let inst = self.insts.get_mut(&i).expect("inst");
                if inst.find(id).expect("live").tif == TimeInForce::Day {
                    let o = inst.take(id).expect("live");
                    if o.pending {
                        hit("end of day expires a pending stop");
                    }
                    out.push(Event::Expired {
                        order: o.done_view(),
                        expired_lots: o.leaves,
                        reason: ExpireReason::Day,
                    });
                    if !o.pending {
                        out.push(book_delete(&o));
                    }
                }
            }
        }
    }
}

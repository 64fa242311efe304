//! Engine events → ITCH 5.0 messages: a pure, deterministic step per event, whose state is a
//! function of the events seen so far (so replaying the journal rebuilds it exactly).
//!
//! | engine event                                   | ITCH                                    |
//! |------------------------------------------------|-----------------------------------------|
//! | `Instrument` (added / updated)                 | `R` Stock Directory, then `H`           |
//! | `Instrument` (status change / removed)         | `H` Stock Trading Action (`T` or `H`)   |
//! | `Book::Add`                                    | `A` (or `F` for an attributed account)  |
//! | `Replaced` (priority lost), `Delete`, `Add`    | `U` Order Replace (new reference)       |
//! | `Trade` + `Book::Execute`                      | `E` Order Executed (match = trade id)   |
//! | `Trade` without an `Execute` of the resting order | `P` Trade (non-displayed)            |
//! | `Book::Modify` (less visible)                  | `X` Order Cancel                        |
//! | `Book::Delete`                                 | `D` Order Delete                        |
//!
//! Order reference numbers: an order's first appearance uses its engine order id; a re-entry
//! (replace that lost priority, iceberg refill) gets a fresh reference, `FRESH_REF | seq << 16
//! | n`, a function of the input sequence number alone. `C` (executed with price) is never
//! needed: sable always trades at the resting order's displayed price.
//!
//! Units: ITCH prices are `Price(4)`, 1/10,000 of a currency unit: price = ticks × (tick size
//! × 10⁴) when the tick size is a whole number of 1/10,000 (else the raw tick count, and the
//! Stock Directory's Round Lot Size tells nothing about it: a documented limit). Shares = lots ×
//! lot size when the lot size is a whole number of units (else raw lots); the Stock
//! Directory's Round Lot Size carries that multiplier (sable's lot). Values that do not fit
//! ITCH's u32 fields (or negative prices) are clamped and counted in `unrepresentable`.

use engine::{BookChange, CommandBody, Event, InstrumentSpec, Side, Trade, TradingStatus};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::feed::itch::{Header, Message, stock_field};
use crate::feed::live::LiveOrders;
use crate::stage::publisher::IdMap;

/// The high bit marks reference numbers the feed made up (re-entries of an order).
pub const FRESH_REF: u64 = 1 << 63;

/// What the feed knows of an instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Instrument {
    stock: [u8; 8],
    price_mult: u32,
    share_mult: u32,
    state: u8,
}

impl Instrument {
    fn from_spec(spec: &InstrumentSpec) -> Self {
        let whole = |d: Decimal| if d.fract().is_zero() && d >= Decimal::ONE { d.to_u32() } else { None };
        Instrument {
            stock: stock_field(spec.symbol.as_str()),
            price_mult: whole(spec.tick_size * Decimal::from(10_000)).unwrap_or(1),
            share_mult: whole(spec.lot_size).unwrap_or(1),
            state: trading_state(Some(spec.status)),
        }
    }
}

fn trading_state(status: Option<TradingStatus>) -> u8 {
    match status {
        Some(TradingStatus::Open) => b'T',
        Some(TradingStatus::Halted | TradingStatus::Closed) | None => b'H',
    }
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => b'B',
        Side::Sell => b'S',
    }
}

/// An order on the visible book, as the feed last showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveOrder {
    /// Its current ITCH reference number.
    pub order_ref: u64,
    /// Instrument.
    pub instrument: u32,
    /// Side.
    pub side: Side,
    /// Price in ticks.
    pub price_ticks: i64,
    /// Visible lots.
    pub visible_lots: u64,
    /// Owning account (known when its acceptance was seen).
    account: u32,
    /// Order of entry at the back of its level (priority within the level).
    added: u64,
}

#[cfg(test)]
impl LiveOrder {
    /// An order of instrument 1 and account 0, for tests of the order table.
    pub(crate) fn for_tests(order_ref: u64, side: Side, price_ticks: i64, visible_lots: u64) -> Self {
        LiveOrder { order_ref, instrument: 1, side, price_ticks, visible_lots, account: 0, added: 0 }
    }
}

/// The translator's state.
pub struct Translator {
    instruments: Vec<Option<Instrument>>,
    live: LiveOrders,
    attribution: IdMap<u32, [u8; 4]>,
    added: u64,
    seq: u64,
    ts_ns: u64,
    fresh_n: u64,
    /// Orders accepted or triggered in this command: their first `Add` uses the order id.
    first_add: Vec<(u64, u32)>,
    pending_trade: Option<Trade>,
    /// The order of a `Replaced` (priority lost) in this command.
    replacing: Option<u64>,
    /// Its `Delete`, held back to become a `U` if an `Add` follows at once.
    pending_delete: Option<(u64, LiveOrder)>,
    /// Values clamped to fit ITCH fields.
    pub unrepresentable: u64,
}

impl Translator {
    /// An empty translator; `attribution` maps accounts to the MPID their orders show (`F`).
    pub fn new(attribution: &[(u32, [u8; 4])], max_orders: usize) -> Self {
        let attribution = attribution.iter().copied().collect();
        Translator {
            instruments: Vec::new(),
            live: LiveOrders::with_capacity(max_orders),
            attribution,
            added: 0,
            seq: 0,
            ts_ns: 0,
            fresh_n: 0,
            first_add: Vec::with_capacity(16),
            pending_trade: None,
            replacing: None,
            pending_delete: None,
            unrepresentable: 0,
        }
    }

    fn header(&self, instrument: u32) -> Header {
        Header { stock_locate: instrument as u16, tracking: self.seq as u16, timestamp_ns: self.ts_ns }
    }

    /// Starts a command's translation.
    pub fn begin(&mut self, seq: u64, ts_ns: u64) {
        self.seq = seq;
        self.ts_ns = ts_ns;
        self.fresh_n = 0;
        self.first_add.clear();
        self.replacing = None;
    }

    /// Ends the command: what was held back goes out.
    pub fn end(&mut self, out: &mut Vec<Message>) {
        self.flush_pending(out);
        self.replacing = None;
    }

    /// Translates one event of the command (`request` is the command's body).
    pub fn event(&mut self, event: &Event, request: &CommandBody, out: &mut Vec<Message>) {
        let is_match = matches!((event, &self.pending_trade),
            (Event::Book(BookChange::Execute { trade_id, .. }), Some(t)) if *trade_id == t.trade_id);
        let is_readd = matches!((event, &self.pending_delete),
            (Event::Book(BookChange::Add { order_id, .. }), Some((id, _))) if order_id.0 == *id);
        if !is_match && !is_readd {
            self.flush_pending(out);
        }
        match *event {
            Event::Accepted(v) | Event::Triggered(v) => self.first_add.push((v.id.0, v.account.0)),
            Event::Replaced { order, priority_kept: false, .. } => self.replacing = Some(order.id.0),
            Event::Trade(t) => self.pending_trade = Some(t),
            Event::Book(change) => self.book(change, out),
            Event::Instrument { instrument, status } => self.instrument(instrument.0, status, request, out),
            _ => {}
        }
    }

    fn flush_pending(&mut self, out: &mut Vec<Message>) {
        if let Some(t) = self.pending_trade.take() {
            let i = self.info(t.instrument.0);
            let (shares, price) = (self.shares(i, t.qty_lots), self.price(i, t.price_ticks));
            out.push(Message::Trade {
                h: self.header(t.instrument.0),
                order_ref: 0,
                side: side_byte(t.aggressor.opposite()),
                shares,
                stock: i.stock,
                price,
                match_number: t.trade_id.0,
            });
        }
        if let Some((_, o)) = self.pending_delete.take() {
            out.push(Message::Delete { h: self.header(o.instrument), order_ref: o.order_ref });
        }
    }

    fn book(&mut self, change: BookChange, out: &mut Vec<Message>) {
        match change {
            BookChange::Add { instrument, order_id, side, price_ticks, qty_lots } => {
                let order = LiveOrder {
                    order_ref: 0,
                    instrument: instrument.0,
                    side,
                    price_ticks,
                    visible_lots: qty_lots,
                    account: 0,
                    added: 0,
                };
                self.add(order_id.0, order, out);
            }
            BookChange::Modify { order_id, qty_lots, .. } => self.modify(order_id.0, qty_lots, out),
            BookChange::Delete { order_id, .. } => {
                let Some(o) = self.live.remove(order_id.0) else { return };
                if self.replacing == Some(order_id.0) {
                    self.pending_delete = Some((order_id.0, o));
                } else {
                    out.push(Message::Delete { h: self.header(o.instrument), order_ref: o.order_ref });
                }
            }
            BookChange::Execute { order_id, qty_lots, trade_id, .. } => {
                self.pending_trade = None;
                let Some(o) = self.live.get_mut(order_id.0) else { return };
                o.visible_lots = o.visible_lots.saturating_sub(qty_lots);
                let o = *o;
                if o.visible_lots == 0 {
                    self.live.remove(order_id.0);
                }
                let shares = self.shares(self.info(o.instrument), qty_lots);
                out.push(Message::Executed {
                    h: self.header(o.instrument),
                    order_ref: o.order_ref,
                    shares,
                    match_number: trade_id.0,
                });
            }
        }
    }

    fn add(&mut self, order_id: u64, mut order: LiveOrder, out: &mut Vec<Message>) {
        let first = self.first_add.iter().position(|(id, _)| *id == order_id);
        order.account = match (first, self.pending_delete) {
            (Some(i), _) => self.first_add[i].1,
            (None, Some((id, old))) if id == order_id => old.account,
            _ => self.live.get(order_id).map_or(0, |o| o.account),
        };
        order.order_ref = match first {
            Some(i) => {
                self.first_add.swap_remove(i);
                order_id
            }
            None => {
                self.fresh_n += 1;
                FRESH_REF | (self.seq << 16) | self.fresh_n
            }
        };
        self.added += 1;
        order.added = self.added;
        let i = self.info(order.instrument);
        let (shares, price) = (self.shares(i, order.visible_lots), self.price(i, order.price_ticks));
        let h = self.header(order.instrument);
        self.live.insert(order_id, order);
        if let Some((_, old)) = self.pending_delete.take() {
            out.push(Message::Replace { h, orig_ref: old.order_ref, new_ref: order.order_ref, shares, price });
            return;
        }
        let attribution = self.attribution.get(&order.account).copied();
        let side = side_byte(order.side);
        out.push(Message::AddOrder { h, order_ref: order.order_ref, side, shares, stock: i.stock, price, attribution });
    }

    fn modify(&mut self, order_id: u64, qty_lots: u64, out: &mut Vec<Message>) {
        let Some(o) = self.live.get(order_id).copied() else { return };
        if qty_lots < o.visible_lots {
            let shares = self.shares(self.info(o.instrument), o.visible_lots - qty_lots);
            out.push(Message::Cancel { h: self.header(o.instrument), order_ref: o.order_ref, shares });
            self.live.get_mut(order_id).expect("looked up above").visible_lots = qty_lots;
        } else if qty_lots > o.visible_lots {
            // Never produced by the engine today (a modify only reduces); shown as a re-entry.
            self.live.remove(order_id);
            out.push(Message::Delete { h: self.header(o.instrument), order_ref: o.order_ref });
            self.add(order_id, LiveOrder { visible_lots: qty_lots, ..o }, out);
        }
    }

    fn instrument(&mut self, id: u32, status: Option<TradingStatus>, request: &CommandBody, out: &mut Vec<Message>) {
        let idx = id as usize;
        if self.instruments.len() <= idx {
            self.instruments.resize(idx + 1, None);
        }
        if let CommandBody::AddInstrument(spec)
        | CommandBody::UpdateInstrument(spec)
        | CommandBody::ConfigureInstrument(spec) = request
        {
            let i = Instrument::from_spec(spec);
            self.instruments[idx] = Some(i);
            out.push(Message::StockDirectory { h: self.header(id), stock: i.stock, round_lot_size: i.share_mult });
        }
        let Some(i) = self.instruments[idx].as_mut() else { return };
        i.state = trading_state(status);
        let (stock, state) = (i.stock, i.state);
        out.push(Message::TradingAction { h: self.header(id), stock, state, reason: *b"    " });
        if status.is_none() {
            self.instruments[idx] = None;
        }
    }

    fn info(&self, instrument: u32) -> Instrument {
        self.instruments.get(instrument as usize).copied().flatten().unwrap_or(Instrument {
            stock: stock_field(""),
            price_mult: 1,
            share_mult: 1,
            state: b'H',
        })
    }

    fn price(&mut self, i: Instrument, ticks: i64) -> u32 {
        let v = i128::from(ticks) * i128::from(i.price_mult);
        u32::try_from(v).unwrap_or_else(|_| {
            self.unrepresentable += 1;
            if v < 0 { 0 } else { u32::MAX }
        })
    }

    fn shares(&mut self, i: Instrument, lots: u64) -> u32 {
        let v = u128::from(lots) * u128::from(i.share_mult);
        u32::try_from(v).unwrap_or_else(|_| {
            self.unrepresentable += 1;
            u32::MAX
        })
    }

    /// The messages that open a session (or a snapshot): `S` start of messages (when asked),
    /// then every instrument's `R` and `H`, then every visible order as an `A`/`F` in priority
    /// order (instrument, bids then asks, best price first, time priority).
    pub fn opening(&mut self, start_of_messages: bool, out: &mut Vec<Message>) {
        if start_of_messages {
            out.push(Message::SystemEvent { h: self.header(0), event_code: b'O' });
        }
        for (id, i) in self.instruments.iter().enumerate() {
            let Some(i) = i else { continue };
            let h = self.header(id as u32);
            out.push(Message::StockDirectory { h, stock: i.stock, round_lot_size: i.share_mult });
            out.push(Message::TradingAction { h, stock: i.stock, state: i.state, reason: *b"    " });
        }
        let mut orders: Vec<LiveOrder> = self.live.values().copied().collect();
        orders.sort_by_key(|o| {
            let best_first = if o.side == Side::Buy { -o.price_ticks } else { o.price_ticks };
            (o.instrument, o.side == Side::Sell, best_first, o.added)
        });
        for o in orders {
            let i = self.info(o.instrument);
            let (shares, price) = (self.shares(i, o.visible_lots), self.price(i, o.price_ticks));
            out.push(Message::AddOrder {
                h: self.header(o.instrument),
                order_ref: o.order_ref,
                side: side_byte(o.side),
                shares,
                stock: i.stock,
                price,
                attribution: self.attribution.get(&o.account).copied(),
            });
        }
    }

    /// The end-of-messages system event (`S`, `C`).
    pub fn end_of_messages(&self) -> Message {
        Message::SystemEvent { h: self.header(0), event_code: b'C' }
    }

    /// Seeds an instrument from a restored engine (see `feed::rebuild::seed`).
    pub fn seed_instrument(&mut self, spec: &InstrumentSpec) {
        let idx = spec.id.0 as usize;
        if self.instruments.len() <= idx {
            self.instruments.resize(idx + 1, None);
        }
        self.instruments[idx] = Some(Instrument::from_spec(spec));
    }

    /// Seeds a resting order from a restored engine, behind those seeded before it.
    pub fn seed_order(&mut self, v: &engine::OrderView, visible_lots: u64) {
        self.added += 1;
        let order = LiveOrder {
            order_ref: v.id.0,
            instrument: v.instrument.0,
            side: v.side,
            price_ticks: v.price_ticks,
            visible_lots,
            account: v.account.0,
            added: self.added,
        };
        self.live.insert(v.id.0, order);
    }

    /// Every visible order the feed shows, in no particular order.
    pub fn orders(&self) -> impl Iterator<Item = &LiveOrder> {
        self.live.values()
    }

    /// Visible orders the feed shows (for tests and snapshots).
    pub fn live_orders(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{AccountId, ClOrdId, Command, Engine, EngineLimits, InstrumentId, NewOrder, Symbol};

    fn spec() -> InstrumentSpec {
        InstrumentSpec::unlimited(
            InstrumentId(1),
            Symbol::new("ABC").expect("symbol"),
            Decimal::new(1, 2),
            Decimal::from(100),
        )
    }

    struct Rig {
        engine: Engine,
        t: Translator,
        seq: u64,
    }

    impl Rig {
        fn new() -> Rig {
            let mut r = Rig { engine: Engine::new(EngineLimits::SMALL), t: Translator::new(&[], 64), seq: 0 };
            r.apply(CommandBody::AddInstrument(spec()));
            r.apply(CommandBody::UpsertAccount(engine::AccountSpec::unlimited(AccountId(1))));
            r.apply(CommandBody::UpsertAccount(engine::AccountSpec::unlimited(AccountId(2))));
            r
        }

        fn apply(&mut self, body: CommandBody) -> Vec<Message> {
            self.seq += 1;
            let cmd = Command { seq: self.seq, ts_ns: 1_000 + self.seq, body };
            let mut events = Vec::new();
            self.engine.apply(&cmd, &mut events).expect("applies");
            let mut out = Vec::new();
            self.t.begin(cmd.seq, cmd.ts_ns);
            for e in &events {
                self.t.event(e, &cmd.body, &mut out);
            }
            self.t.end(&mut out);
            out
        }

        fn order(&mut self, account: u32, cl: &str, side: Side, price: i64, qty: u64) -> Vec<Message> {
            let cl = ClOrdId::new(cl.as_bytes()).expect("cl ord id");
            self.apply(CommandBody::NewOrder(NewOrder::limit(
                AccountId(account),
                cl,
                InstrumentId(1),
                side,
                price,
                qty,
            )))
        }
    }

    fn kinds(m: &[Message]) -> String {
        m.iter().map(|m| m.kind() as char).collect()
    }

    #[test]
    fn an_instrument_is_announced_with_its_lot_and_the_tick_in_the_prices() {
        let mut r = Rig { engine: Engine::new(EngineLimits::SMALL), t: Translator::new(&[], 64), seq: 0 };
        let out = r.apply(CommandBody::AddInstrument(spec()));
        assert_eq!(kinds(&out), "RH");
        assert!(matches!(out[0], Message::StockDirectory { round_lot_size: 100, .. }));
        r.apply(CommandBody::UpsertAccount(engine::AccountSpec::unlimited(AccountId(1))));
        let out = r.order(1, "a", Side::Buy, 1234, 3);
        // 1234 ticks of 0.01 = 12.34 = 123400 in Price(4); 3 lots of 100 = 300 shares.
        assert!(
            matches!(out[..], [Message::AddOrder { order_ref: 1, side: b'B', shares: 300, price: 123_400, h, .. }] if h.stock_locate == 1),
            "{out:?}"
        );
    }

    #[test]
    fn a_cross_is_executions_of_the_resting_orders_and_the_rest_is_added() {
        let mut r = Rig::new();
        r.order(1, "a", Side::Sell, 100, 2);
        r.order(1, "b", Side::Sell, 101, 2);
        let out = r.order(2, "c", Side::Buy, 101, 5);
        assert_eq!(kinds(&out), "EEA", "{out:?}");
        assert!(matches!(out[0], Message::Executed { order_ref: 1, shares: 200, match_number: 1, .. }));
        assert!(matches!(out[2], Message::AddOrder { order_ref: 3, shares: 100, price: 10_100, .. }));
    }

    #[test]
    fn a_replace_that_loses_priority_is_a_u_with_a_fresh_reference_and_a_reduce_is_an_x() {
        let mut r = Rig::new();
        r.order(1, "a", Side::Buy, 100, 5);
        let replace = |price, qty| {
            CommandBody::Replace(engine::Replace {
                account: AccountId(1),
                order: engine::OrderRef::Id(engine::OrderId(1)),
                cl_ord_id: ClOrdId::new(b"a").expect("id"),
                price_ticks: price,
                stop_ticks: 0,
                qty_lots: qty,
            })
        };
        let out = r.apply(replace(99, 5));
        let fresh = FRESH_REF | (r.seq << 16) | 1;
        assert!(
            matches!(out[..], [Message::Replace { orig_ref: 1, new_ref, shares: 500, price: 9_900, .. }] if new_ref == fresh),
            "{out:?}"
        );
        let out = r.apply(replace(99, 2));
        assert!(matches!(out[..], [Message::Cancel { order_ref, shares: 300, .. }] if order_ref == fresh), "{out:?}");
        let cancel = engine::Cancel {
            account: AccountId(1),
            order: engine::OrderRef::Id(engine::OrderId(1)),
            cl_ord_id: ClOrdId::new(b"x").expect("id"),
        };
        let out = r.apply(CommandBody::Cancel(cancel));
        assert!(matches!(out[..], [Message::Delete { order_ref, .. }] if order_ref == fresh), "{out:?}");
        assert_eq!(r.t.live_orders(), 0);
    }

    #[test]
    fn the_opening_lists_the_book_in_priority_order() {
        let mut r = Rig::new();
        r.order(1, "a", Side::Buy, 100, 1);
        r.order(1, "b", Side::Buy, 101, 1);
        r.order(1, "c", Side::Buy, 100, 1);
        r.order(1, "d", Side::Sell, 105, 1);
        let mut out = Vec::new();
        r.t.opening(true, &mut out);
        assert_eq!(kinds(&out), "SRHAAAA");
        let refs: Vec<u64> = out
            .iter()
            .filter_map(|m| if let Message::AddOrder { order_ref, .. } = m { Some(*order_ref) } else { None })
            .collect();
        assert_eq!(refs, vec![2, 1, 3, 4]);
    }

    #[test]
    fn an_attributed_accounts_orders_are_f_messages_with_its_mpid() {
        let mut r = Rig::new();
        r.t = Translator::new(&[(2, *b"MMKR")], 64);
        let cl = ClOrdId::new(b"m").expect("id");
        let mine = NewOrder::limit(AccountId(2), cl, InstrumentId(1), Side::Sell, 120, 1);
        let out = r.apply(CommandBody::NewOrder(mine));
        assert!(matches!(out[..], [Message::AddOrder { attribution: Some(m), .. }] if &m == b"MMKR"), "{out:?}");
        let out = r.order(1, "n", Side::Sell, 121, 1);
        assert!(matches!(out[..], [Message::AddOrder { attribution: None, .. }]), "{out:?}");
    }
}

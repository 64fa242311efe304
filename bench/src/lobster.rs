//! LOBSTER-derived neutral command streams: parsing, replay through the engine, and books in
//! LOBSTER's orderbook-file layout. Used by the `replay` binary, the ground-truth tests and the
//! `goog_day` benchmark workload.
//!
//! Stream format, one command per line after a header: `seq,action,order_id,side,price,qty`
//! with actions `ADD` (GTC limit), `REDUCE` (reduce a resting order by qty, clipped; reaching
//! zero removes it; unknown ids ignored), `CANCEL` (unknown ids ignored) and `IOC`
//! (immediate-or-cancel limit). Several commands may share a seq; seq 0 is the initial book.

use engine::{
    AccountId, AccountSpec, Cancel, ClOrdId, Command, CommandBody, Engine, EngineLimits, Event, InstrumentId,
    InstrumentSpec, NewOrder, OrdType, OrderRef, Replace, RiskLimits, Side, StpMode, Symbol, TimeInForce,
};
use rust_decimal::Decimal;

/// Price LOBSTER writes for a missing ask level.
pub const NO_ASK: i64 = 9_999_999_999;
/// Price LOBSTER writes for a missing bid level.
pub const NO_BID: i64 = -9_999_999_999;

/// A stream action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// GTC limit order.
    Add,
    /// Reduce a resting order by `qty`, clipped.
    Reduce,
    /// Remove a resting order.
    Cancel,
    /// Immediate-or-cancel limit order.
    Ioc,
}

/// One line of a neutral stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamCmd {
    /// Book row this command belongs to.
    pub seq: u64,
    /// What to do.
    pub action: Action,
    /// LOBSTER order id (negative for the synthetic initial book).
    pub order_id: i64,
    /// Side.
    pub side: Side,
    /// Price in the file's units (used as ticks).
    pub price: i64,
    /// Quantity (used as lots).
    pub qty: u64,
}

/// Parses a neutral stream. Errors name the line.
pub fn parse_stream(text: &str) -> Result<Vec<StreamCmd>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.starts_with("seq")) {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 {
            return Err(bad("expected 6 fields"));
        }
        let action = match f[1] {
            "ADD" => Action::Add,
            "REDUCE" => Action::Reduce,
            "CANCEL" => Action::Cancel,
            "IOC" => Action::Ioc,
            _ => return Err(bad("unknown action")),
        };
        let side = match f[3] {
            "B" => Side::Buy,
            "S" => Side::Sell,
            _ => return Err(bad("side must be B or S")),
        };
        let seq = f[0].parse().map_err(|_| bad("bad seq"))?;
        if out.last().is_some_and(|p: &StreamCmd| p.seq > seq) {
            return Err(bad("seq goes backwards"));
        }
        out.push(StreamCmd {
            seq,
            action,
            order_id: f[2].parse().map_err(|_| bad("bad order id"))?,
            side,
            price: f[4].parse().map_err(|_| bad("bad price"))?,
            qty: f[5].parse().map_err(|_| bad("bad qty"))?,
        });
    }
    Ok(out)
}

/// Parses a LOBSTER orderbook file into rows of integers.
pub fn parse_orderbook(text: &str) -> Result<Vec<Vec<i64>>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            l.split(',')
                .map(|v| v.trim().parse::<i64>().map_err(|_| format!("row {}: bad value {v:?}", n + 1)))
                .collect()
        })
        .collect()
}

const ACCOUNT: AccountId = AccountId(1);
const INSTRUMENT: InstrumentId = InstrumentId(0);

/// Drives an engine from a neutral stream: one instrument (tick 1, lot 1), one account that may
/// trade with itself.
pub struct Replayer {
    engine: Engine,
    events: Vec<Event>,
    ioc_count: u64,
}

impl Replayer {
    /// An engine sized for `max_orders` live orders.
    pub fn new(max_orders: u32) -> Self {
        let limits = EngineLimits {
            max_orders,
            max_levels: max_orders.clamp(1024, 1 << 20),
            max_levels_per_side: max_orders.clamp(1024, 1 << 18),
            max_instruments: 1,
            max_accounts: 2,
        };
        let mut r = Replayer { engine: Engine::new(limits), events: Vec::with_capacity(1024), ioc_count: 0 };
        r.submit(CommandBody::AddInstrument(InstrumentSpec::unlimited(
            INSTRUMENT,
            Symbol::new("LOBSTER").expect("valid symbol"),
            Decimal::ONE,
            Decimal::ONE,
        )));
        r.submit(CommandBody::UpsertAccount(AccountSpec {
            account: ACCOUNT,
            stp_group: ACCOUNT.0,
            default_stp: StpMode::Allow,
            limits: RiskLimits::UNLIMITED,
        }));
        assert!(r.events.iter().all(|e| !matches!(e, Event::Rejected(_))), "set-up rejected: {:?}", r.events);
        r
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Events of the last stream command.
    pub fn last_events(&self) -> &[Event] {
        &self.events
    }

    fn submit(&mut self, body: CommandBody) {
        self.events.clear();
        let seq = self.engine.seq() + 1;
        let cmd = Command { seq, ts_ns: seq, body };
        self.engine.apply(&cmd, &mut self.events).expect("the replayer numbers commands consecutively");
    }

    fn new_order(&mut self, cl_ord_id: ClOrdId, c: &StreamCmd, tif: TimeInForce) {
        self.submit(CommandBody::NewOrder(NewOrder {
            account: ACCOUNT,
            cl_ord_id,
            instrument: INSTRUMENT,
            side: c.side,
            ord_type: OrdType::Limit,
            tif,
            price_ticks: c.price,
            stop_ticks: 0,
            qty_lots: c.qty,
            display_lots: 0,
            expire_ns: 0,
            post_only: false,
            stp: None,
        }));
    }

    /// Applies one stream command. Unknown ids in REDUCE/CANCEL are ignored, as the format says.
    pub fn apply(&mut self, c: &StreamCmd) {
        let id = client_id(c.order_id);
        match c.action {
            Action::Add => self.new_order(id, c, TimeInForce::Gtc),
            Action::Ioc => {
                // IOC ids are not LOBSTER ids (they name the order they execute), so give each
                // its own client id outside the numeric space.
                self.ioc_count += 1;
                let mut buf = *b"ioc-                ";
                let digits = self.ioc_count.to_string();
                buf[4..4 + digits.len()].copy_from_slice(digits.as_bytes());
                let ioc_id = ClOrdId::new(&buf[..4 + digits.len()]).expect("short ascii id");
                self.new_order(ioc_id, c, TimeInForce::Ioc);
            }
            Action::Cancel => {
                self.events.clear();
                if self.engine.order_by_client(ACCOUNT, &id).is_some() {
                    self.cancel(id);
                }
            }
            Action::Reduce => {
                self.events.clear();
                let Some(o) = self.engine.order_by_client(ACCOUNT, &id) else { return };
                if c.qty >= o.leaves_lots {
                    self.cancel(id);
                } else {
                    self.submit(CommandBody::Replace(Replace {
                        account: ACCOUNT,
                        order: OrderRef::Client(id),
                        cl_ord_id: id,
                        price_ticks: o.price_ticks,
                        stop_ticks: 0,
                        qty_lots: o.qty_lots - c.qty,
                    }));
                }
            }
        }
    }

    fn cancel(&mut self, id: ClOrdId) {
        self.submit(CommandBody::Cancel(Cancel { account: ACCOUNT, order: OrderRef::Client(id), cl_ord_id: id }));
    }

    /// The book's best `depth` levels in LOBSTER layout: ask price, ask size, bid price, bid size
    /// per level; missing levels as ±9999999999 with size 0.
    pub fn book_row(&self, depth: usize, row: &mut Vec<i64>) {
        row.clear();
        let asks = self.engine.levels(INSTRUMENT, Side::Sell);
        let bids = self.engine.levels(INSTRUMENT, Side::Buy);
        for i in 0..depth {
            match asks.get(i) {
                Some(l) => row.extend([l.price_ticks, l.qty_lots as i64]),
                None => row.extend([NO_ASK, 0]),
            }
            match bids.get(i) {
                Some(l) => row.extend([l.price_ticks, l.qty_lots as i64]),
                None => row.extend([NO_BID, 0]),
            }
        }
    }
}

fn client_id(order_id: i64) -> ClOrdId {
    ClOrdId::new(order_id.to_string().as_bytes()).expect("an i64 renders as a short ascii id")
}

/// Replays `cmds` and calls `row(seq, book)` for every seq from 1 to the largest seq, each with
/// the book after all commands with that seq or lower.
pub fn replay_rows(cmds: &[StreamCmd], depth: usize, max_orders: u32, mut row: impl FnMut(u64, &[i64])) -> Replayer {
    let mut r = Replayer::new(max_orders);
    let last_seq = cmds.last().map_or(0, |c| c.seq);
    let mut next = 0;
    let mut book = Vec::with_capacity(depth * 4);
    for seq in 0..=last_seq {
        while next < cmds.len() && cmds[next].seq <= seq {
            r.apply(&cmds[next]);
            next += 1;
        }
        if seq >= 1 {
            r.book_row(depth, &mut book);
            row(seq, &book);
        }
    }
    r
}

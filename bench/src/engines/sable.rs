//! sable behind the benchmark interface: one instrument (tick 1, lot 1, no band), a few accounts
//! that may trade with themselves (`StpMode::Allow`, as the peers have no self-trade prevention)
//! and no risk limits.

use engine::{
    AccountId, AccountSpec, Cancel, ClOrdId, Command, CommandBody, Engine, EngineLimits, Event, EventSink,
    InstrumentId, InstrumentSpec, NewOrder, OrderId, OrderRef, Replace, RiskLimits, Side as ESide, StpMode, Symbol,
    TimeInForce, TradingStatus,
};
use rust_decimal::Decimal;

use super::{Adapter, Book};
use crate::ops::{Op, Side};

/// The single instrument every workload trades.
pub const INSTRUMENT: InstrumentId = InstrumentId(0);

/// Default capacities for every workload: room for the 1M-order deep book and its churn.
pub const LIMITS: EngineLimits = EngineLimits {
    max_orders: 2 << 20,
    max_levels: 256 << 10,
    max_levels_per_side: 128 << 10,
    max_instruments: 1,
    max_accounts: 64,
};

/// Capacities for a book of at most `max_orders` live orders: levels scale along, capped at
/// [`LIMITS`].
pub fn limits_for(max_orders: u32) -> EngineLimits {
    EngineLimits {
        max_orders,
        max_levels: LIMITS.max_levels.min(max_orders.max(1024)),
        max_levels_per_side: LIMITS.max_levels_per_side.min(max_orders.max(1024)),
        ..LIMITS
    }
}

/// How cancel and replace name the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefMode {
    /// By the exchange order id (what a binary order-entry protocol sends back to the engine).
    Id,
    /// By the client order id (FIX `OrigClOrdID`): one more hash lookup on 20 bytes.
    Client,
}

/// Counts what the comparison needs; as cheap as `engine::CountingSink`.
#[derive(Default, Debug)]
pub struct BenchSink {
    /// Events received.
    pub events: u64,
    /// Trades received.
    pub trades: u64,
    /// Rejections received.
    pub rejects: u64,
}

impl EventSink for BenchSink {
    #[inline]
    fn push(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Trade(_) => self.trades += 1,
            Event::Rejected(_) => self.rejects += 1,
            _ => {}
        }
    }
}

/// An engine plus its sink.
pub struct SableBook {
    /// The engine under test.
    pub engine: Engine,
    /// Where its events go.
    pub sink: BenchSink,
    /// Whether [`Book::prepare`] passes the next commands to `Engine::prefetch`, as the
    /// appliance's matcher does within a batch.
    pub lookahead: bool,
}

impl Book for SableBook {
    type Cmd = Command;

    #[inline]
    fn apply(&mut self, cmd: &Command) {
        self.engine.apply(cmd, &mut self.sink).expect("the adapter numbers commands consecutively");
    }

    fn looks_ahead(&self) -> bool {
        self.lookahead
    }

    #[inline]
    fn prepare(&self, ahead: &[Command]) {
        for (i, c) in ahead.iter().take(engine::LOOKAHEAD).enumerate() {
            self.engine.prefetch(c, i + 1);
        }
    }

    fn trades(&self) -> u64 {
        self.sink.trades
    }

    fn rejects(&self) -> u64 {
        self.sink.rejects
    }
}

/// The sable adapter. Exchange order ids are predicted: the engine hands out 1, 2, 3, … to
/// accepted new orders, and every new order of the workloads is valid (a rejection would show
/// as a trade-count mismatch and in the reject count).
pub struct SableAdapter {
    limits: EngineLimits,
    accounts: u32,
    ref_mode: RefMode,
    lookahead: bool,
    setup: Vec<Command>,
    next_seq: u64,
    next_order_id: u64,
    /// Per neutral id: exchange order id (0 = never entered), total quantity, current price.
    order_id: Vec<u64>,
    total_lots: Vec<u64>,
    price_ticks: Vec<i64>,
}

impl SableAdapter {
    /// An adapter for a workload using neutral ids `0..ids`, spreading orders over `accounts`
    /// accounts (`id % accounts`).
    pub fn new(ids: u64, accounts: u32, ref_mode: RefMode, limits: EngineLimits) -> Self {
        assert!(accounts >= 1 && accounts < limits.max_accounts, "accounts must fit the engine's table");
        let mut setup = vec![Command {
            seq: 1,
            ts_ns: 1,
            body: CommandBody::AddInstrument(InstrumentSpec {
                id: INSTRUMENT,
                symbol: Symbol::new("BENCH").expect("valid symbol"),
                tick_size: Decimal::ONE,
                lot_size: Decimal::ONE,
                min_qty_lots: 1,
                max_qty_lots: 1 << 40,
                max_notional_nanos: u128::MAX,
                band_bps: 0,
                reference_ticks: None,
                status: TradingStatus::Open,
            }),
        }];
        for a in 0..accounts {
            let seq = setup.len() as u64 + 1;
            setup.push(Command {
                seq,
                ts_ns: seq,
                body: CommandBody::UpsertAccount(AccountSpec {
                    account: AccountId(a),
                    stp_group: a,
                    default_stp: StpMode::Allow,
                    limits: RiskLimits::UNLIMITED,
                }),
            });
        }
        let n = ids as usize;
        SableAdapter {
            limits,
            accounts,
            ref_mode,
            lookahead: true,
            next_seq: setup.len() as u64 + 1,
            setup,
            next_order_id: 1,
            order_id: vec![0; n],
            total_lots: vec![0; n],
            price_ticks: vec![0; n],
        }
    }

    /// Whether the book looks ahead (see [`SableBook::lookahead`]; on by default).
    pub fn lookahead(mut self, on: bool) -> Self {
        self.lookahead = on;
        self
    }

    fn account(&self, id: u64) -> AccountId {
        AccountId((id % self.accounts as u64) as u32)
    }

    fn order_ref(&self, id: u64) -> OrderRef {
        match self.ref_mode {
            RefMode::Id => OrderRef::Id(OrderId(self.order_id[id as usize])),
            RefMode::Client => OrderRef::Client(ClOrdId::from_u64(id)),
        }
    }

    fn new_order(&mut self, id: u64, side: Side, price_ticks: i64, qty_lots: u64, tif: TimeInForce) -> CommandBody {
        let i = id as usize;
        self.order_id[i] = self.next_order_id;
        self.next_order_id += 1;
        self.total_lots[i] = qty_lots;
        self.price_ticks[i] = price_ticks;
        let side = match side {
            Side::Buy => ESide::Buy,
            Side::Sell => ESide::Sell,
        };
        let order = NewOrder::limit(self.account(id), ClOrdId::from_u64(id), INSTRUMENT, side, price_ticks, qty_lots);
        CommandBody::NewOrder(NewOrder { tif, ..order })
    }

    fn replace(&self, id: u64) -> CommandBody {
        let i = id as usize;
        CommandBody::Replace(Replace {
            account: self.account(id),
            order: self.order_ref(id),
            cl_ord_id: ClOrdId::from_u64(id),
            price_ticks: self.price_ticks[i],
            stop_ticks: 0,
            qty_lots: self.total_lots[i],
        })
    }
}

impl Adapter for SableAdapter {
    type Book = SableBook;
    const NAME: &'static str = "sable";

    fn translate(&mut self, op: &Op) -> Command {
        let body = match *op {
            Op::Add { id, side, price_ticks, qty_lots } => {
                self.new_order(id, side, price_ticks, qty_lots, TimeInForce::Gtc)
            }
            Op::Ioc { id, side, price_ticks, qty_lots } => {
                self.new_order(id, side, price_ticks, qty_lots, TimeInForce::Ioc)
            }
            Op::Cancel { id } => CommandBody::Cancel(Cancel {
                account: self.account(id),
                order: self.order_ref(id),
                cl_ord_id: ClOrdId::from_u64(id),
            }),
            // Same total quantity at a new price: the open quantity is kept, priority is lost.
            Op::Amend { id, price_ticks } => {
                self.price_ticks[id as usize] = price_ticks;
                self.replace(id)
            }
            // Lower total quantity at the same price: priority is kept; at or below the filled
            // quantity the engine cancels the order (the clipping of the op).
            Op::Reduce { id, by_lots, .. } => {
                let t = &mut self.total_lots[id as usize];
                *t = t.saturating_sub(by_lots);
                self.replace(id)
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        Command { seq, ts_ns: seq, body }
    }

    fn new_book(&self) -> SableBook {
        let engine = Engine::new(self.limits);
        let lookahead = self.lookahead && engine.looks_ahead();
        let mut book = SableBook { engine, sink: BenchSink::default(), lookahead };
        for c in &self.setup {
            book.apply(c);
        }
        assert_eq!(book.sink.rejects, 0, "sable set-up rejected");
        book.sink = BenchSink::default();
        book
    }

    fn describe(&self) -> String {
        format!(
            "NewOrder Limit GTC/IOC; cancel = Cancel, amend = Replace (new price, same total qty), reduce = \
             Replace (lower total qty); orders named by {}; {} account(s), StpMode::Allow, \
             RiskLimits::UNLIMITED; limits max_orders={} max_levels={} max_levels_per_side={}; sink counts \
             events/trades/rejects; {}",
            match self.ref_mode {
                RefMode::Id => "exchange order id (OrderRef::Id)",
                RefMode::Client => "client order id (OrderRef::Client)",
            },
            self.accounts,
            self.limits.max_orders,
            self.limits.max_levels,
            self.limits.max_levels_per_side,
            if self.lookahead {
                "batch lookahead as in the appliance's matcher: Engine::prefetch on each of the next 3 \
                 commands before each apply (engines of 262,144+ orders)"
            } else {
                "no lookahead: one command at a time"
            }
        )
    }
}

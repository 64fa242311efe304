//! A deterministic synthetic order flow for tests, crash drills, benchmarks and demos: a seeded
//! generator of commands over one instrument and a few accounts, mixing every order type, time
//! in force and request the engine supports. Pure: same seed, same commands.

use rust_decimal::Decimal;

use crate::account::{AccountSpec, StpMode};
use crate::command::{Cancel, CommandBody, NewOrder, OrdType, OrderRef, Replace, Side, TimeInForce};
use crate::ids::{AccountId, ClOrdId, InstrumentId, Symbol};
use crate::instrument::{InstrumentSpec, TradingStatus};

/// The generator. Client ids are the generator's counter, so account and target follow from it.
#[derive(Clone, Debug)]
pub struct FlowGen {
    state: u64,
    n: u64,
    instrument: InstrumentId,
    accounts: u32,
    mid_ticks: i64,
}

impl FlowGen {
    /// Flow over `instrument` from `accounts` accounts (ids `0..accounts`), around 10,000 ticks.
    pub fn new(seed: u64, instrument: InstrumentId, accounts: u32) -> Self {
        FlowGen { state: seed | 1, n: 0, instrument, accounts: accounts.max(1), mid_ticks: 10_000 }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// The commands that create the instrument (tick 0.01, lot 1, 10 % band) and the accounts
    /// (pairs share an STP group).
    pub fn setup(&self) -> Vec<CommandBody> {
        let mut v = vec![CommandBody::AddInstrument(InstrumentSpec {
            id: self.instrument,
            symbol: Symbol::new("SIM").expect("valid symbol"),
            tick_size: Decimal::new(1, 2),
            lot_size: Decimal::ONE,
            min_qty_lots: 1,
            max_qty_lots: 1_000_000,
            max_notional_nanos: u128::MAX,
            band_bps: 1_000,
            reference_ticks: Some(self.mid_ticks),
            status: TradingStatus::Open,
        })];
        for a in 0..self.accounts {
            v.push(CommandBody::UpsertAccount(AccountSpec {
                stp_group: a / 2,
                ..AccountSpec::unlimited(AccountId(a))
            }));
        }
        v
    }

    /// The next command. `now_ns` is the timestamp it will carry (GTD expiries are set after it);
    /// every 10,000th command is an end of day that expires the DAY orders, keeping the book
    /// bounded.
    pub fn next_body(&mut self, now_ns: u64) -> CommandBody {
        let n = self.n;
        self.n += 1;
        let accounts = self.accounts as u64;
        let target_n = n.saturating_sub(1 + self.below(2_000));
        let account = AccountId((n % accounts) as u32);
        let target_account = AccountId((target_n % accounts) as u32);
        let target = ClOrdId::from_u64(target_n);
        let side = if self.below(2) == 0 { Side::Buy } else { Side::Sell };
        // Buys a little low, sells a little high: a book builds up and about a tenth cross.
        let skew = if side == Side::Buy { -3 } else { 3 };
        let price_ticks = self.mid_ticks + skew + self.below(41) as i64 - 20;
        let qty_lots = 1 + self.below(20);
        let instrument = self.instrument;
        let roll = self.below(100);
        let new = |ord_type, tif, display_lots, post_only, stop_ticks, stp, expire_ns| NewOrder {
            account,
            cl_ord_id: ClOrdId::from_u64(n),
            instrument,
            side,
            ord_type,
            tif,
            price_ticks,
            stop_ticks,
            qty_lots,
            display_lots,
            expire_ns,
            post_only,
            stp,
        };
        match roll {
            _ if n % 10_000 == 9_999 => CommandBody::EndOfDay { instrument: None },
            0..=34 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Day, 0, false, 0, None, 0)),
            35..=39 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Ioc, 0, false, 0, None, 0)),
            40..=41 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Fok, 0, false, 0, None, 0)),
            42 => CommandBody::NewOrder(new(OrdType::Market, TimeInForce::Ioc, 0, false, 0, None, 0)),
            43..=45 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 3, false, 0, None, 0)),
            46..=47 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 0, true, 0, None, 0)),
            48 => {
                CommandBody::NewOrder(new(OrdType::Stop, TimeInForce::Day, 0, false, price_ticks + skew * 3, None, 0))
            }
            49 => {
                let stop = price_ticks + skew * 2;
                CommandBody::NewOrder(new(OrdType::StopLimit, TimeInForce::Day, 0, false, stop, None, 0))
            }
            50..=51 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtd, 0, false, 0, None, now_ns + 5_000)),
            52..=53 => {
                let stp = [StpMode::CancelOldest, StpMode::CancelBoth, StpMode::DecrementAndCancel][n as usize % 3];
                CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 0, false, 0, Some(stp), 0))
            }
            54..=79 => CommandBody::Cancel(Cancel {
                account: target_account,
                order: OrderRef::Client(target),
                cl_ord_id: target,
            }),
            80..=97 => CommandBody::Replace(Replace {
                account: target_account,
                order: OrderRef::Client(target),
                cl_ord_id: target,
                price_ticks,
                stop_ticks: price_ticks,
                qty_lots: qty_lots + 10,
            }),
            98 => CommandBody::OrderStatus { account: target_account, order: OrderRef::Client(target) },
            _ => CommandBody::Tick,
        }
    }
}

/// The full sequenced stream: `FlowGen::setup` then the flow, numbered from 1, each command
/// stamped `seq * ts_step_ns`.
pub fn command_stream(
    seed: u64,
    instrument: InstrumentId,
    accounts: u32,
    ts_step_ns: u64,
) -> impl Iterator<Item = crate::Command> {
    let mut flow = FlowGen::new(seed, instrument, accounts);
    let setup = flow.setup();
    let mut seq = 0u64;
    std::iter::from_fn(move || {
        seq += 1;
        let ts_ns = seq * ts_step_ns;
        let body = match setup.get(seq as usize - 1) {
            Some(b) => *b,
            None => flow.next_body(ts_ns),
        };
        Some(crate::Command { seq, ts_ns, body })
    })
}

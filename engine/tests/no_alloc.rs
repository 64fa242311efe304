//! The steady state allocates nothing: after warm-up, one million mixed commands (limit, IOC,
//! FOK, market, iceberg, stop, post-only, cancel, replace, self-trade, status, expiry) go through
//! `apply` without a single heap allocation, counted by a global allocator on this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use engine::*;
use rust_decimal::Decimal;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// xorshift64*: deterministic command mix without allocating.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const INST: InstrumentId = InstrumentId(0);
const ACCOUNTS: u64 = 8;

fn body(rng: &mut Rng, n: u64, now: u64) -> CommandBody {
    // The account follows from the client id, so cancels and replaces find their orders.
    let target_n = n.saturating_sub(1 + rng.below(2_000));
    let account = AccountId((n % ACCOUNTS) as u32);
    let target_account = AccountId((target_n % ACCOUNTS) as u32);
    let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
    // Prices around 10_000 with buys skewed low and sells high so a book builds up and ~10 % of
    // orders cross.
    let skew = if side == Side::Buy { -3 } else { 3 };
    let price_ticks = 10_000 + skew + rng.below(41) as i64 - 20;
    let qty_lots = 1 + rng.below(20);
    let target = ClOrdId::from_u64(target_n);
    let new = |ord_type, tif, display_lots, post_only, stop_ticks, stp, expire_ns| NewOrder {
        account,
        cl_ord_id: ClOrdId::from_u64(n),
        instrument: INST,
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
    match rng.below(100) {
        _ if n % 10_000 == 0 => CommandBody::EndOfDay { instrument: None },
        0..=34 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Day, 0, false, 0, None, 0)),
        35..=39 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Ioc, 0, false, 0, None, 0)),
        40..=41 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Fok, 0, false, 0, None, 0)),
        42 => CommandBody::NewOrder(new(OrdType::Market, TimeInForce::Ioc, 0, false, 0, None, 0)),
        43..=45 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 3, false, 0, None, 0)),
        46..=47 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 0, true, 0, None, 0)),
        48 => CommandBody::NewOrder(new(OrdType::Stop, TimeInForce::Gtc, 0, false, price_ticks + skew * 3, None, 0)),
        49 => {
            let stop = price_ticks + skew * 2;
            CommandBody::NewOrder(new(OrdType::StopLimit, TimeInForce::Gtc, 0, false, stop, None, 0))
        }
        50..=51 => CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtd, 0, false, 0, None, now + 5_000)),
        52..=53 => {
            let stp = Some([StpMode::CancelOldest, StpMode::CancelBoth, StpMode::DecrementAndCancel][n as usize % 3]);
            CommandBody::NewOrder(new(OrdType::Limit, TimeInForce::Gtc, 0, false, 0, stp, 0))
        }
        54..=79 => {
            CommandBody::Cancel(Cancel { account: target_account, order: OrderRef::Client(target), cl_ord_id: target })
        }
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

#[test]
fn one_million_commands_after_warm_up_allocate_nothing() {
    let mut e = Engine::new(EngineLimits {
        max_orders: 1 << 17,
        max_levels: 1 << 14,
        max_levels_per_side: 1 << 12,
        max_instruments: 4,
        max_accounts: 16,
    });
    let mut out: Vec<Event> = Vec::with_capacity(1 << 12);
    let run = |e: &mut Engine, body: CommandBody, out: &mut Vec<Event>| {
        let seq = e.seq() + 1;
        out.clear();
        e.apply(&Command { seq, ts_ns: seq * 10, body }, out).expect("consecutive sequence");
    };
    run(
        &mut e,
        CommandBody::AddInstrument(InstrumentSpec {
            id: INST,
            symbol: Symbol::new("ALLOC").unwrap(),
            tick_size: Decimal::new(1, 2),
            lot_size: Decimal::ONE,
            min_qty_lots: 1,
            max_qty_lots: 1_000_000,
            max_notional_nanos: u128::MAX,
            band_bps: 1_000,
            reference_ticks: Some(10_000),
            status: TradingStatus::Open,
        }),
        &mut out,
    );
    for a in 0..ACCOUNTS as u32 {
        let spec = AccountSpec { stp_group: a / 2, ..AccountSpec::unlimited(AccountId(a)) };
        run(&mut e, CommandBody::UpsertAccount(spec), &mut out);
    }
    let mut rng = Rng(0x5ab1e);
    let (warm_up, measured) = (200_000u64, 1_000_000u64);
    let (mut trades, mut rejects, mut max_events) = (0u64, 0u64, 0usize);
    for n in 0..warm_up + measured {
        if n == warm_up {
            ARMED.with(|a| a.set(true));
        }
        let b = body(&mut rng, n, e.seq() * 10);
        run(&mut e, b, &mut out);
        max_events = max_events.max(out.len());
        for ev in &out {
            match ev {
                Event::Trade(_) => trades += 1,
                Event::Rejected(r) if matches!(r.reason, RejectReason::OrderCapacity | RejectReason::LevelCapacity) => {
                    rejects += 1
                }
                _ => {}
            }
        }
    }
    ARMED.with(|a| a.set(false));
    let allocs = ALLOCS.with(Cell::get);
    eprintln!(
        "{measured} commands after {warm_up} warm-up: {allocs} allocations; {trades} trades, {rejects} capacity rejects, \
         {} live orders, largest event batch {max_events}",
        e.live_orders()
    );
    // The mix must really exercise matching, or zero allocations would prove little.
    assert!(trades > measured / 20, "too few trades: {trades}");
    assert!(e.live_orders() > 100, "book too thin: {}", e.live_orders());
    assert!(rejects < measured / 100, "a full book exercises little: {rejects} capacity rejects");
    assert_eq!(allocs, 0, "the steady state must not allocate");
    e.check_invariants().unwrap();
}

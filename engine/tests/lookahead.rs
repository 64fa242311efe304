//! The batch lookahead (`Engine::prefetch`) is a hint: an engine
//! driven with it emits the same events and reaches the same `state_hash` as one driven without
//! it, on any command, including commands naming orders, accounts and instruments that do not
//! exist.

use engine::*;
use rust_decimal_macros::dec;

const INST: InstrumentId = InstrumentId(1);
/// Accounts 1..=ACCOUNTS exist; account ACCOUNTS + 1 does not.
const ACCOUNTS: u32 = 3;

/// xorshift64*: a fixed, seedable stream of choices.
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

fn setup() -> Vec<CommandBody> {
    let spec = InstrumentSpec::unlimited(INST, Symbol::new("LOOK").unwrap(), dec!(0.01), dec!(1));
    let mut v = vec![CommandBody::AddInstrument(spec)];
    for a in 1..=ACCOUNTS {
        v.push(CommandBody::UpsertAccount(AccountSpec::unlimited(AccountId(a))));
    }
    v
}

/// A mixed stream: resting and aggressive orders of every type, cancels and replaces by
/// exchange id and by client id (live, dead and never-seen orders), and commands naming an
/// unknown account or instrument.
fn stream(seed: u64, n: usize) -> Vec<CommandBody> {
    let mut rng = Rng(seed);
    let mut body = setup();
    for k in 0..n as u64 {
        let account = AccountId(1 + rng.below(ACCOUNTS as u64 + 1) as u32);
        let instrument = if rng.below(50) == 0 { InstrumentId(9) } else { INST };
        let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
        // Exchange ids so far are at most k; some references point past them.
        let order = if rng.below(2) == 0 {
            OrderRef::Id(OrderId(1 + rng.below(k + 10)))
        } else {
            OrderRef::Client(ClOrdId::from_u64(rng.below(k + 10)))
        };
        let price_ticks = 10_000 + rng.below(40) as i64 - 20;
        body.push(match rng.below(10) {
            0..=4 => {
                let (ord_type, tif) = match rng.below(8) {
                    0 => (OrdType::Limit, TimeInForce::Ioc),
                    1 => (OrdType::Limit, TimeInForce::Fok),
                    2 => (OrdType::Market, TimeInForce::Ioc),
                    3 => (OrdType::Stop, TimeInForce::Gtc),
                    4 => (OrdType::StopLimit, TimeInForce::Day),
                    _ => (OrdType::Limit, TimeInForce::Gtc),
                };
                CommandBody::NewOrder(NewOrder {
                    account,
                    cl_ord_id: ClOrdId::from_u64(k),
                    instrument,
                    side,
                    ord_type,
                    tif,
                    price_ticks,
                    stop_ticks: price_ticks + if side == Side::Buy { 3 } else { -3 },
                    qty_lots: 1 + rng.below(20),
                    display_lots: 0,
                    expire_ns: 0,
                    post_only: false,
                    stp: None,
                })
            }
            5..=7 => CommandBody::Cancel(Cancel { account, order, cl_ord_id: ClOrdId::from_u64(1 << 40 | k) }),
            _ => CommandBody::Replace(Replace {
                account,
                order,
                cl_ord_id: ClOrdId::from_u64(1 << 41 | k),
                price_ticks,
                stop_ticks: price_ticks,
                qty_lots: 1 + rng.below(30),
            }),
        });
    }
    body
}

/// `n` large resting buys of an account the stream never names, far below its prices: they keep
/// the engine's live count at about `n` whatever the stream does (market sells nibble at the
/// best of them).
fn preload(n: u32) -> Vec<CommandBody> {
    let mut v = vec![CommandBody::UpsertAccount(AccountSpec::unlimited(AccountId(PRELOAD_ACCOUNT)))];
    v.extend((0..n).map(|j| {
        CommandBody::NewOrder(NewOrder {
            account: AccountId(PRELOAD_ACCOUNT),
            cl_ord_id: ClOrdId::from_u64(1 << 42 | u64::from(j)),
            instrument: INST,
            side: Side::Buy,
            ord_type: OrdType::Limit,
            tif: TimeInForce::Gtc,
            price_ticks: 5_000 - i64::from(j % 500),
            stop_ticks: 0,
            qty_lots: 1_000_000,
            display_lots: 0,
            expire_ns: 0,
            post_only: false,
            stp: None,
        })
    }));
    v
}

/// The account of [`preload`]'s orders.
const PRELOAD_ACCOUNT: u32 = ACCOUNTS + 2;

#[test]
fn lookahead_changes_nothing() {
    // Large enough for the hints to run (smaller engines skip them). Without a preload the book
    // stays small and only the light hint runs; with one, every stage does.
    let limits = EngineLimits { max_orders: LOOKAHEAD_MIN_ORDERS, max_accounts: 8, ..EngineLimits::SMALL };
    for (seed, preloaded) in
        [(1, 0), (0x5eed, 0), (0xdead_beef, LOOKAHEAD_FULL_LIVE + 500), (7, LOOKAHEAD_FULL_LIVE + 500)]
    {
        println!("seed {seed:#x}, {preloaded} preloaded orders");
        let mut bodies = stream(seed, 20_000);
        let at = setup().len();
        bodies.splice(at..at, preload(preloaded));
        let (mut least_live, mut most_live) = (u32::MAX, 0);
        let cmds: Vec<Command> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Command { seq: i as u64 + 1, ts_ns: 1_000 + i as u64, body })
            .collect();
        let mut plain = Engine::new(limits);
        let mut looking = Engine::new(limits);
        let (mut trades, mut rejects) = (0, 0);
        for (i, cmd) in cmds.iter().enumerate() {
            let mut expected = Vec::new();
            plain.apply(cmd, &mut expected).unwrap();
            for (d, c) in cmds[i + 1..].iter().take(LOOKAHEAD).enumerate() {
                looking.prefetch(c, d + 1);
            }
            // Out-of-turn hints too: a stage for a command whose earlier stages never ran.
            if let Some(c) = cmds.get(i + 7) {
                looking.prefetch(c, 1 + i % LOOKAHEAD);
            }
            let mut got = Vec::new();
            looking.apply(cmd, &mut got).unwrap();
            assert_eq!(got, expected, "seed {seed:#x}, command {i}: {cmd:?}");
            if i > at + preloaded as usize {
                least_live = least_live.min(looking.live_orders());
                most_live = most_live.max(looking.live_orders());
            }
            trades += expected.iter().filter(|e| matches!(e, Event::Trade(_))).count();
            rejects += expected.iter().filter(|e| matches!(e, Event::Rejected(_))).count();
        }
        assert_eq!(looking.state_hash(), plain.state_hash(), "seed {seed:#x}");
        looking.check_invariants().unwrap();
        // The stream exercised matching and rejection, not only one of them.
        assert!(trades > 1_000 && rejects > 1_000, "seed {seed:#x}: {trades} trades, {rejects} rejects");
        // Each run stayed on one side of the threshold: the light hint alone, or every stage.
        if preloaded == 0 {
            assert!(most_live < LOOKAHEAD_FULL_LIVE, "seed {seed:#x}: {most_live} live orders");
        } else {
            assert!(least_live >= LOOKAHEAD_FULL_LIVE, "seed {seed:#x}: {least_live} live orders");
        }
    }
}

//! exchange-core's matching-engine benchmark mix, as its README describes it: one symbol,
//! about 1,000 resting orders over about 750 price levels; commands are 9 % GTC limit orders,
//! 3 % IOC orders, 6 % cancels and 82 % moves (amend to another price); about 6 % of commands
//! trade.
//!
//! The command kinds are drawn with exactly those probabilities. The book size is held near its
//! target by feedback on how IOC orders are sized and how often a move crosses; the resulting
//! trade ratio (about 5.4 %), book size and level count are measured by the reference book and
//! printed, not assumed.

use super::builder::StreamBuilder;
use super::{ACCOUNTS, START_MID_TICKS, aggressive_price, passive_price, side};
use crate::ops::{Op, Side, Workload};
use crate::rng::Rng;

/// Parameters of the mix.
#[derive(Clone, Copy, Debug)]
pub struct MixParams {
    /// Timed commands.
    pub commands: u64,
    /// Seed of the whole stream.
    pub seed: u64,
    /// Resting orders to hold the book at (pre-loaded untimed, then kept near).
    pub target_orders: usize,
    /// Passive prices are 1..=span ticks from the mid on each side.
    pub span_ticks: u64,
}

impl MixParams {
    /// The exchange-core figures.
    pub fn exchange_core(commands: u64, seed: u64) -> Self {
        MixParams { commands, seed, target_orders: 1_000, span_ticks: 800 }
    }
}

/// Base share of moves that cross the book; adjusted by the book-size feedback.
const MOVE_CROSS: f64 = 0.037;

/// Generates the workload.
pub fn generate(p: MixParams) -> Workload {
    let mut rng = Rng::new(p.seed);
    let mut b = StreamBuilder::new();
    b.begin(false, p.target_orders);
    for i in 0..p.target_orders {
        let s = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price_ticks = passive_price(&b, &mut rng, s, p.span_ticks);
        let id = b.new_id();
        b.push(Op::Add { id, side: s, price_ticks, qty_lots: rng.range(10, 100) });
    }
    b.begin(true, p.commands as usize);
    let target = p.target_orders as f64;
    for _ in 0..p.commands {
        // > 0: too many resting orders, take more liquidity.
        let excess = (b.live().len() as f64 - target) / target;
        let roll = rng.below(100);
        if roll < 9 || b.live().is_empty() {
            let s = side(&mut rng);
            let id = b.new_id();
            // GTC orders are all passive: the book only holds ~1,000 resting orders at a ~6 %
            // trade ratio if every GTC adds one (9 % in, 6 % cancelled, the rest taken by
            // crossing moves, each of which removes at least one order).
            let price_ticks = passive_price(&b, &mut rng, s, p.span_ticks);
            let op = Op::Add { id, side: s, price_ticks, qty_lots: rng.range(10, 100) };
            b.push(op);
        } else if roll < 12 {
            let s = side(&mut rng);
            let id = b.new_id();
            let price_ticks =
                aggressive_price(&b, &mut rng, s, 2).unwrap_or_else(|| passive_price(&b, &mut rng, s, p.span_ticks));
            // Below target: only nibble at the first order so no resting order is removed.
            let qty_lots = match b.front_leaves(s) {
                Some(front) if excess <= 0.0 => rng.range(1, front.saturating_sub(1).max(1)),
                _ => rng.range(50, 200),
            };
            b.push(Op::Ioc { id, side: s, price_ticks, qty_lots });
        } else if roll < 18 {
            let id = b.live().get(rng.below(b.live().len() as u64) as usize);
            b.push(Op::Cancel { id });
        } else {
            let id = b.live().get(rng.below(b.live().len() as u64) as usize);
            let (s, old) = b.book().side_price(id).expect("live ids rest");
            let cross = (MOVE_CROSS * (1.0 + 10.0 * excess)).clamp(0.01, 0.06);
            let price_ticks = match aggressive_price(&b, &mut rng, s, 0) {
                Some(p) if rng.chance(cross) => p,
                _ => {
                    let np = passive_price(&b, &mut rng, s, p.span_ticks);
                    if np != old {
                        np
                    } else if s == Side::Buy {
                        np - 1
                    } else {
                        np + 1
                    }
                }
            };
            b.push(Op::Amend { id, price_ticks });
        }
    }
    let notes = vec![format!(
        "exchange-core mix: pre-load {} passive GTC orders (untimed), then {} commands: 9% GTC (passive), 3% IOC (at best opposite + 0..2 ticks; sized below the first resting order while the book \
         is under target), 6% cancel, 82% move (amend to a new price; the crossing ones to the best opposite \
         price, their share fed back from book size); passive prices 1..={} ticks from mid; mid starts at {}",
        p.target_orders, p.commands, p.span_ticks, START_MID_TICKS
    )];
    b.finish("exchange_core_mix", p.seed, ACCOUNTS, notes)
}

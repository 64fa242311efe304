//! A deep book: about 1M resting orders pre-loaded (untimed) over tens of thousands of levels,
//! then a mix of passive adds, cancels of random resting orders, and IOC orders that match at
//! the top. Cancels hit random orders anywhere in the book, so this workload measures the
//! engine when its order table and index do not fit in cache.

use super::builder::StreamBuilder;
use super::{ACCOUNTS, START_MID_TICKS, aggressive_price, passive_price, side};
use crate::ops::{Op, Side, Workload};
use crate::rng::Rng;

/// Parameters of the deep book.
#[derive(Clone, Copy, Debug)]
pub struct DeepParams {
    /// Timed commands.
    pub commands: u64,
    /// Seed of the whole stream.
    pub seed: u64,
    /// Orders pre-loaded before timing.
    pub resting_orders: usize,
    /// Passive prices are 1..=span ticks from the mid on each side.
    pub span_ticks: u64,
}

/// Percent of timed commands that are IOC orders; the rest are passive adds and cancels, about
/// half each.
const IOC_PCT: u64 = 10;

/// Generates the workload.
pub fn generate(p: DeepParams) -> Workload {
    let mut rng = Rng::new(p.seed);
    let mut b = StreamBuilder::new();
    b.begin(false, p.resting_orders);
    for i in 0..p.resting_orders {
        let s = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price_ticks = passive_price(&b, &mut rng, s, p.span_ticks);
        let id = b.new_id();
        b.push(Op::Add { id, side: s, price_ticks, qty_lots: rng.range(10, 100) });
    }
    b.begin(true, p.commands as usize);
    let target = p.resting_orders as f64;
    for _ in 0..p.commands {
        // Hold the book near its pre-loaded size: add a little more often when IOCs ate into it.
        let deficit = (target - b.live().len() as f64) / target.max(1.0);
        let add = 0.5 + (deficit * 10.0).clamp(-0.1, 0.1);
        if rng.below(100) < IOC_PCT && !b.live().is_empty() {
            let s = side(&mut rng);
            let id = b.new_id();
            let price_ticks =
                aggressive_price(&b, &mut rng, s, 1).unwrap_or_else(|| passive_price(&b, &mut rng, s, p.span_ticks));
            b.push(Op::Ioc { id, side: s, price_ticks, qty_lots: rng.range(1, 100) });
        } else if rng.chance(add) || b.live().is_empty() {
            let s = side(&mut rng);
            let price_ticks = passive_price(&b, &mut rng, s, p.span_ticks);
            let id = b.new_id();
            b.push(Op::Add { id, side: s, price_ticks, qty_lots: rng.range(10, 100) });
        } else {
            let id = b.live().get(rng.below(b.live().len() as u64) as usize);
            b.push(Op::Cancel { id });
        }
    }
    let notes = vec![format!(
        "deep book: pre-load {} passive GTC orders (untimed) uniformly over 1..={} ticks each side of mid {}, \
         then {} commands: {}% IOC (best opposite + 0..1 tick, 1..100 lots), the rest about half passive adds \
         and half cancels of a uniformly random resting order (balanced to hold the book size)",
        p.resting_orders, p.span_ticks, START_MID_TICKS, p.commands, IOC_PCT
    )];
    b.finish("deep_book", p.seed, ACCOUNTS, notes)
}

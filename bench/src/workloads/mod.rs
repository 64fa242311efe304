//! The benchmark workloads, each generated up front as neutral ops (see [`crate::ops`]).

pub mod builder;
pub mod deep_book;
pub mod exchange_core_mix;
pub mod goog_day;

use crate::ops::Side;
use crate::rng::Rng;
use builder::StreamBuilder;

/// Accounts the synthetic workloads spread their orders over (`id % ACCOUNTS`).
pub const ACCOUNTS: u32 = 4;

/// Prices start around here so they stay positive for the peers' unsigned price types.
pub const START_MID_TICKS: i64 = 1_000_000;

/// A passive price on `side`, 1..=`span_ticks` ticks away from the mid (never crossing).
pub(crate) fn passive_price(b: &StreamBuilder, rng: &mut Rng, side: Side, span_ticks: u64) -> i64 {
    let mid = b.mid(START_MID_TICKS);
    let offset = 1 + rng.below(span_ticks) as i64;
    let p = match side {
        Side::Buy => mid - offset,
        Side::Sell => mid + offset,
    };
    // A one-sided book's "mid" can sit next to the only side; never cross the other one.
    match (side, b.best_opposite(side)) {
        (Side::Buy, Some(a)) if p >= a => a - 1,
        (Side::Sell, Some(bid)) if p <= bid => bid + 1,
        _ => p,
    }
}

/// An aggressive price on `side`: the best opposite price plus up to `extra_ticks` through it,
/// or `None` if the opposite side is empty.
pub(crate) fn aggressive_price(b: &StreamBuilder, rng: &mut Rng, side: Side, extra_ticks: u64) -> Option<i64> {
    let best = b.best_opposite(side)?;
    let extra = rng.below(extra_ticks + 1) as i64;
    Some(match side {
        Side::Buy => best + extra,
        Side::Sell => best - extra,
    })
}

/// A random side.
pub(crate) fn side(rng: &mut Rng) -> Side {
    if rng.below(2) == 0 { Side::Buy } else { Side::Sell }
}

//! One instrument's order book: bid and ask ladders, the two stop ladders, the spec and the
//! last trade price that drives stops and the price band.

use crate::command::Side;
use crate::instrument::{InstrumentSpec, TradingStatus};
use crate::ladder::{Best, Ladder};
use crate::price_level::LevelPool;

pub(crate) struct Book {
    pub spec: InstrumentSpec,
    /// Value of one tick × one lot in currency nano-units (cached from the spec).
    pub tick_lot_nanos: u128,
    pub last_trade_ticks: Option<i64>,
    pub bids: Ladder,
    pub asks: Ladder,
    /// Buy stops, lowest stop price first.
    pub buy_stops: Ladder,
    /// Sell stops, highest stop price first.
    pub sell_stops: Ladder,
}

impl Book {
    pub fn new(spec: InstrumentSpec, tick_lot_nanos: u128, levels_per_side: u32) -> Self {
        Book {
            spec,
            tick_lot_nanos,
            last_trade_ticks: None,
            bids: Ladder::with_capacity(Best::High, levels_per_side),
            asks: Ladder::with_capacity(Best::Low, levels_per_side),
            buy_stops: Ladder::with_capacity(Best::Low, levels_per_side),
            sell_stops: Ladder::with_capacity(Best::High, levels_per_side),
        }
    }

    #[inline]
    pub fn ladder(&self, side: Side, stops: bool) -> &Ladder {
        match (side, stops) {
            (Side::Buy, false) => &self.bids,
            (Side::Sell, false) => &self.asks,
            (Side::Buy, true) => &self.buy_stops,
            (Side::Sell, true) => &self.sell_stops,
        }
    }

    #[inline]
    pub fn ladder_mut(&mut self, side: Side, stops: bool) -> &mut Ladder {
        match (side, stops) {
            (Side::Buy, false) => &mut self.bids,
            (Side::Sell, false) => &mut self.asks,
            (Side::Buy, true) => &mut self.buy_stops,
            (Side::Sell, true) => &mut self.sell_stops,
        }
    }

    /// Tombstoned levels across the four ladders.
    pub fn tombstones(&self) -> usize {
        self.bids.tombstones() + self.asks.tombstones() + self.buy_stops.tombstones() + self.sell_stops.tombstones()
    }

    /// Returns the four ladders' tombstoned levels to the pool.
    pub fn compact(&mut self, levels: &mut LevelPool) {
        self.bids.compact(levels);
        self.asks.compact(levels);
        self.buy_stops.compact(levels);
        self.sell_stops.compact(levels);
    }

    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty() && self.buy_stops.is_empty() && self.sell_stops.is_empty()
    }

    pub fn is_open(&self) -> bool {
        self.spec.status == TradingStatus::Open
    }

    /// The band's reference: last trade, else the configured reference price.
    pub fn reference_ticks(&self) -> Option<i64> {
        self.last_trade_ticks.or(self.spec.reference_ticks)
    }

    /// `(low, high)` inclusive price limits, or `None` when the band is off or has no reference.
    pub fn band(&self) -> Option<(i64, i64)> {
        if self.spec.band_bps == 0 {
            return None;
        }
        let r = self.reference_ticks()?;
        let half = ((r as i128).unsigned_abs() * self.spec.band_bps as u128 / 10_000) as i64;
        Some((r.saturating_sub(half), r.saturating_add(half)))
    }

    /// The price of largest magnitude a market order on `taker_side` could trade at when no
    /// band bounds it: the more extreme end of the opposite side (0 when that side is empty, as
    /// the order cannot trade). Used for its notional checks.
    pub fn unbounded_sweep_ticks(&self, taker_side: Side, levels: &LevelPool) -> i64 {
        let ladder = self.ladder(taker_side.opposite(), false);
        match (ladder.best(), ladder.worst(levels)) {
            (Some(b), Some(w)) => {
                if b.price_ticks.unsigned_abs() >= w.price_ticks.unsigned_abs() {
                    b.price_ticks
                } else {
                    w.price_ticks
                }
            }
            _ => 0,
        }
    }

    #[inline]
    pub fn in_band(&self, price_ticks: i64) -> bool {
        self.band().is_none_or(|(lo, hi)| (lo..=hi).contains(&price_ticks))
    }

    /// Notional of `qty_lots` at `price_ticks` in currency nano-units (saturating).
    #[inline]
    pub fn notional_nanos(&self, price_ticks: i64, qty_lots: u64) -> u128 {
        let price = price_ticks.unsigned_abs();
        // Almost always the product fits: one u64 multiply and one widening multiply, where
        // the saturating u128 chain below costs several.
        if let Ok(tick_lot) = u64::try_from(self.tick_lot_nanos)
            && let Some(pq) = price.checked_mul(qty_lots)
        {
            return pq as u128 * tick_lot as u128; // < 2^128: cannot overflow
        }
        (price as u128).saturating_mul(qty_lots as u128).saturating_mul(self.tick_lot_nanos)
    }
}

/// Whether a taker on `side` with limit `limit_ticks` may trade at a resting `level_ticks`.
#[inline]
pub(crate) fn crosses(side: Side, limit_ticks: i64, level_ticks: i64) -> bool {
    match side {
        Side::Buy => level_ticks <= limit_ticks,
        Side::Sell => level_ticks >= limit_ticks,
    }
}

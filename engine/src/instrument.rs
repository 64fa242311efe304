//! Instrument definitions and the exact decimal ↔ integer conversion used at the edges.
//!
//! Inside the engine a price is an `i64` count of ticks and a quantity a `u64` count of lots.
//! Gateways convert the client's decimal with [`InstrumentSpec::price_to_ticks`] and
//! [`InstrumentSpec::qty_to_lots`]; a value off the grid is an error, never rounded.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::ids::{InstrumentId, Symbol};

/// Whether an instrument accepts orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradingStatus {
    /// Continuous trading.
    Open,
    /// Temporarily halted: new orders and replaces are rejected, cancels are accepted, stops do
    /// not trigger.
    Halted,
    /// Closed for the day: same rules as `Halted`.
    Closed,
}

/// Static description of an instrument, set by `AddInstrument` and `UpdateInstrument`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstrumentSpec {
    /// The instrument's id (index into the engine's table).
    pub id: InstrumentId,
    /// Human-readable symbol.
    pub symbol: Symbol,
    /// Price of one tick in currency units, e.g. `0.01`.
    #[serde(with = "rust_decimal::serde::str")]
    pub tick_size: Decimal,
    /// Quantity of one lot in instrument units, e.g. `1` share or `0.001` BTC.
    #[serde(with = "rust_decimal::serde::str")]
    pub lot_size: Decimal,
    /// Smallest order quantity accepted, in lots (at least 1).
    pub min_qty_lots: u64,
    /// Largest order quantity accepted, in lots.
    pub max_qty_lots: u64,
    /// Largest notional of one order, in currency nano-units (10^-9); `u128::MAX` = no limit.
    pub max_notional_nanos: u128,
    /// Price band half-width in basis points around the reference price; 0 disables the band.
    pub band_bps: u32,
    /// Reference price used for the band until the first trade, in ticks.
    pub reference_ticks: Option<i64>,
    /// Trading status at the time the spec is applied.
    pub status: TradingStatus,
}

/// A decimal value that does not sit on the instrument's grid or does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// Not an integer multiple of the tick or lot size.
    #[error("value is not a multiple of the increment")]
    OffGrid,
    /// The multiple does not fit the integer type.
    #[error("value out of range")]
    OutOfRange,
    /// Quantities must be positive.
    #[error("value must be positive")]
    NotPositive,
}

impl InstrumentSpec {
    /// Converts a decimal price to ticks exactly.
    pub fn price_to_ticks(&self, price: Decimal) -> Result<i64, GridError> {
        let ticks = price.checked_div(self.tick_size).ok_or(GridError::OutOfRange)?;
        if !ticks.fract().is_zero() {
            return Err(GridError::OffGrid);
        }
        ticks.to_i64().ok_or(GridError::OutOfRange)
    }

    /// Converts a decimal quantity to lots exactly; zero and negative quantities are refused.
    pub fn qty_to_lots(&self, qty: Decimal) -> Result<u64, GridError> {
        if qty <= Decimal::ZERO {
            return Err(GridError::NotPositive);
        }
        let lots = qty.checked_div(self.lot_size).ok_or(GridError::OutOfRange)?;
        if !lots.fract().is_zero() {
            return Err(GridError::OffGrid);
        }
        lots.to_u64().ok_or(GridError::OutOfRange)
    }

    /// The decimal price of `ticks`.
    pub fn ticks_to_price(&self, ticks: i64) -> Decimal {
        Decimal::from(ticks) * self.tick_size
    }

    /// The decimal quantity of `lots`.
    pub fn lots_to_qty(&self, lots: u64) -> Decimal {
        Decimal::from(lots) * self.lot_size
    }

    /// An open instrument on the given grid with no quantity, notional or price-band limits
    /// (any quantity from one lot up): for tests, demos and benchmarks.
    pub fn unlimited(id: InstrumentId, symbol: Symbol, tick_size: Decimal, lot_size: Decimal) -> Self {
        InstrumentSpec {
            id,
            symbol,
            tick_size,
            lot_size,
            min_qty_lots: 1,
            max_qty_lots: u64::MAX,
            max_notional_nanos: u128::MAX,
            band_bps: 0,
            reference_ticks: None,
            status: TradingStatus::Open,
        }
    }

    /// Value of one tick × one lot in currency nano-units, if it is a whole number of nanos.
    pub fn tick_lot_nanos(&self) -> Option<u128> {
        let v = self.tick_size.checked_mul(self.lot_size)?.checked_mul(Decimal::from(1_000_000_000u64))?;
        if v.fract().is_zero() && v > Decimal::ZERO { v.to_u128() } else { None }
    }

    /// Checks the spec is usable: positive increments whose product is a whole number of
    /// currency nano-units, and a sane quantity range.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.tick_size <= Decimal::ZERO || self.lot_size <= Decimal::ZERO {
            return Err("tick and lot size must be positive");
        }
        if self.tick_lot_nanos().is_none() {
            return Err("tick size x lot size must be a whole number of 1e-9 currency units");
        }
        if self.min_qty_lots == 0 || self.min_qty_lots > self.max_qty_lots {
            return Err("need 1 <= min_qty_lots <= max_qty_lots");
        }
        if self.band_bps > 10_000 {
            return Err("band_bps above 10000 (100 %)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            id: InstrumentId(1),
            symbol: Symbol::new("AAPL").unwrap(),
            tick_size: dec!(0.01),
            lot_size: dec!(1),
            min_qty_lots: 1,
            max_qty_lots: 1_000_000,
            max_notional_nanos: u128::MAX,
            band_bps: 0,
            reference_ticks: None,
            status: TradingStatus::Open,
        }
    }

    #[test]
    fn conversion_is_exact_and_refuses_off_grid_values() {
        let s = spec();
        assert_eq!(s.price_to_ticks(dec!(585.33)), Ok(58533));
        assert_eq!(s.price_to_ticks(dec!(-1.50)), Ok(-150));
        assert_eq!(s.price_to_ticks(dec!(585.335)), Err(GridError::OffGrid));
        assert_eq!(s.qty_to_lots(dec!(100)), Ok(100));
        assert_eq!(s.qty_to_lots(dec!(100.5)), Err(GridError::OffGrid));
        assert_eq!(s.qty_to_lots(dec!(0)), Err(GridError::NotPositive));
        assert_eq!(s.ticks_to_price(58533), dec!(585.33));
        assert_eq!(s.tick_lot_nanos(), Some(10_000_000));
        assert!(s.validate().is_ok());
    }
}

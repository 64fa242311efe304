//! The engine's capacities ([`EngineLimits`]) and the hard maxima they must stay within, each
//! with the reason for its value. [`EngineLimits::validate`] checks a set of capacities against
//! them; [`crate::Engine::new`] and [`crate::Engine::load`] refuse what it refuses, and the
//! gateway's configuration uses it rather than a copy of its checks.
//!
//! Widths of the fixed identifier fields are limits too, kept next to their types:
//! [`crate::ids::CL_ORD_ID_MAX_LEN`], [`crate::ids::SYMBOL_MAX_LEN`], and the encoded command
//! size [`crate::Command::MAX_ENCODED_LEN`].

use serde::{Deserialize, Serialize};

use crate::order::NIL;

/// Most instruments an engine may have (`max_instruments`): the order record keeps its
/// instrument id in a `u16` (112-byte records), so ids are `0..=u16::MAX`.
pub const MAX_INSTRUMENTS: u32 = 1 << 16;

/// Most sessions whose kill switch may be engaged at once (the engine keeps them, so a restart
/// or a promoted standby refuses the same sessions' orders).
pub const MAX_KILLED_SESSIONS: usize = 256;

/// Most live orders an engine may hold (`max_orders`): order slots are `u32`, and slot
/// `u32::MAX` is the NIL link of the order queues and the empty marker of the order index.
pub const MAX_ORDERS: u32 = u32::MAX - 1;

/// Most price levels an engine may hold (`max_levels`): level slots are `u32`, and slot
/// `u32::MAX` is the NIL level.
pub const MAX_LEVELS: u32 = u32::MAX - 1;

const _: () = assert!(MAX_INSTRUMENTS as u64 == u16::MAX as u64 + 1, "instrument ids must fit the order record's u16");
const _: () = assert!(MAX_ORDERS < NIL, "an order slot must never be NIL");
const _: () = assert!(MAX_LEVELS < NIL, "a level slot must never be NIL");
const _: () = assert!(EngineLimits::DEFAULT.validate().is_ok());
const _: () = assert!(EngineLimits::SMALL.validate().is_ok());

/// Every fixed capacity of the engine, in one place. Allocation happens only when the engine is
/// created and when an instrument is added; the steady state allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineLimits {
    /// Live orders (resting or pending stop) across all instruments; at most [`MAX_ORDERS`].
    pub max_orders: u32,
    /// Price levels across all instruments and sides (book and stop ladders); at most
    /// [`MAX_LEVELS`].
    pub max_levels: u32,
    /// Price levels on one side of one instrument.
    pub max_levels_per_side: u32,
    /// Instrument ids are `0..max_instruments`; at most [`MAX_INSTRUMENTS`].
    pub max_instruments: u32,
    /// Account ids are `0..max_accounts`.
    pub max_accounts: u32,
}

/// Capacities the engine cannot be built with. Each names its [`EngineLimits`] field
/// ([`LimitsError::field`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// `max_orders` is 0 or above [`MAX_ORDERS`].
    #[error("max_orders is {0}: must be in 1..={max}", max = MAX_ORDERS)]
    Orders(u32),
    /// `max_levels` is 0 or above [`MAX_LEVELS`].
    #[error("max_levels is {0}: must be in 1..={max}", max = MAX_LEVELS)]
    Levels(u32),
    /// `max_levels_per_side` is 0.
    #[error("max_levels_per_side is 0: must be at least 1")]
    LevelsPerSide,
    /// `max_instruments` is 0 or above [`MAX_INSTRUMENTS`].
    #[error("max_instruments is {0}: must be in 1..={max}", max = MAX_INSTRUMENTS)]
    Instruments(u32),
    /// `max_accounts` is 0.
    #[error("max_accounts is 0: must be at least 1")]
    Accounts,
}

impl LimitsError {
    /// The [`EngineLimits`] field at fault, as spelled in the struct (and in the gateway's
    /// `[engine]` configuration section).
    pub fn field(&self) -> &'static str {
        match self {
            LimitsError::Orders(_) => "max_orders",
            LimitsError::Levels(_) => "max_levels",
            LimitsError::LevelsPerSide => "max_levels_per_side",
            LimitsError::Instruments(_) => "max_instruments",
            LimitsError::Accounts => "max_accounts",
        }
    }
}

impl EngineLimits {
    /// Production-sized defaults: 4 Mi orders, 1 Mi levels.
    pub const DEFAULT: EngineLimits = EngineLimits {
        max_orders: 1 << 22,
        max_levels: 1 << 20,
        max_levels_per_side: 1 << 16,
        max_instruments: 1024,
        max_accounts: 1 << 16,
    };

    /// Small tables for tests and demos.
    pub const SMALL: EngineLimits = EngineLimits {
        max_orders: 1 << 14,
        max_levels: 1 << 12,
        max_levels_per_side: 1 << 10,
        max_instruments: 16,
        max_accounts: 256,
    };

    /// Checks every capacity against the engine's hard maxima, in field order; the first
    /// violation is the error.
    pub const fn validate(&self) -> Result<(), LimitsError> {
        if self.max_orders == 0 || self.max_orders > MAX_ORDERS {
            return Err(LimitsError::Orders(self.max_orders));
        }
        if self.max_levels == 0 || self.max_levels > MAX_LEVELS {
            return Err(LimitsError::Levels(self.max_levels));
        }
        if self.max_levels_per_side == 0 {
            return Err(LimitsError::LevelsPerSide);
        }
        if self.max_instruments == 0 || self.max_instruments > MAX_INSTRUMENTS {
            return Err(LimitsError::Instruments(self.max_instruments));
        }
        if self.max_accounts == 0 {
            return Err(LimitsError::Accounts);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_refused_with_its_field_and_constant() {
        let cases = [
            (EngineLimits { max_orders: 0, ..EngineLimits::SMALL }, "max_orders", MAX_ORDERS),
            (EngineLimits { max_orders: u32::MAX, ..EngineLimits::SMALL }, "max_orders", MAX_ORDERS),
            (EngineLimits { max_levels: u32::MAX, ..EngineLimits::SMALL }, "max_levels", MAX_LEVELS),
            (
                EngineLimits { max_instruments: MAX_INSTRUMENTS + 1, ..EngineLimits::SMALL },
                "max_instruments",
                MAX_INSTRUMENTS,
            ),
        ];
        for (limits, field, max) in cases {
            let e = limits.validate().expect_err("out of range");
            assert_eq!(e.field(), field);
            assert!(e.to_string().contains(&format!("1..={max}")), "{e}");
        }
        let e = EngineLimits { max_levels_per_side: 0, ..EngineLimits::SMALL }.validate().expect_err("zero");
        assert_eq!(e.field(), "max_levels_per_side");
        let e = EngineLimits { max_accounts: 0, ..EngineLimits::SMALL }.validate().expect_err("zero");
        assert_eq!(e.field(), "max_accounts");
        let edge = EngineLimits { max_instruments: MAX_INSTRUMENTS, ..EngineLimits::SMALL };
        assert_eq!(edge.validate(), Ok(()));
    }
}

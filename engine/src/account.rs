//! Accounts: pre-trade risk limits and self-trade prevention settings.

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;

/// Self-trade prevention: what happens when an incoming order would trade with a resting order
/// of the same STP group. The incoming (taker) order's mode governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StpMode {
    /// Self-trades are allowed.
    Allow,
    /// Cancel the incoming order's remainder; the resting order stays.
    CancelNewest,
    /// Cancel the resting order and keep matching.
    CancelOldest,
    /// Cancel both.
    CancelBoth,
    /// Reduce both by the smaller visible quantity without a trade; whichever reaches zero is
    /// cancelled, the taker keeps matching with what is left.
    DecrementAndCancel,
}

/// Pre-trade risk limits. `u64::MAX` / `u128::MAX` mean "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskLimits {
    /// Live orders (resting or pending stop) the account may have.
    pub max_open_orders: u32,
    /// Largest single order quantity in lots.
    pub max_order_qty_lots: u64,
    /// Largest single order notional in currency nano-units.
    pub max_order_notional_nanos: u128,
    /// Largest total notional of live buy orders in currency nano-units.
    pub max_open_buy_notional_nanos: u128,
    /// Largest total notional of live sell orders in currency nano-units.
    pub max_open_sell_notional_nanos: u128,
}

impl RiskLimits {
    /// No limits at all.
    pub const UNLIMITED: RiskLimits = RiskLimits {
        max_open_orders: u32::MAX,
        max_order_qty_lots: u64::MAX,
        max_order_notional_nanos: u128::MAX,
        max_open_buy_notional_nanos: u128::MAX,
        max_open_sell_notional_nanos: u128::MAX,
    };
}

/// An account's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpec {
    /// The account.
    pub account: AccountId,
    /// Self-trade prevention group: orders of accounts in the same group never trade with each
    /// other unless the taker's mode is `Allow`. Usually the account id itself.
    pub stp_group: u32,
    /// STP mode for orders that do not name one.
    pub default_stp: StpMode,
    /// Pre-trade risk limits.
    pub limits: RiskLimits,
}

impl AccountSpec {
    /// An account in its own STP group, cancelling the newest order on a self-trade, no limits.
    pub fn unlimited(account: AccountId) -> Self {
        AccountSpec { account, stp_group: account.0, default_stp: StpMode::CancelNewest, limits: RiskLimits::UNLIMITED }
    }
}

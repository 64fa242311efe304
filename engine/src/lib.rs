//! # sable-engine: the deterministic matcher
//!
//! A pure state machine: [`Engine::apply`] takes one sequenced [`Command`] and writes
//! [`Event`]s to an [`EventSink`]. It does no I/O, reads no clock (time is the command's
//! `ts_ns`), starts no threads, takes no locks, uses no randomly seeded hashing, and allocates
//! only when created and when an instrument is added (when created it also advises the kernel
//! to back its large arrays with huge pages: a hint, its only system call). Replaying the same commands gives the same
//! events and the same [`Engine::state_hash`] on any machine; [`Engine::save`] /
//! [`Engine::load`] round-trip the full state.
//!
//! Prices are `i64` ticks and quantities `u64` lots. Decimal conversion happens at the edges
//! with [`InstrumentSpec::price_to_ticks`] / [`InstrumentSpec::qty_to_lots`], which refuse
//! values off the grid.
//!
//! ## Semantics
//!
//! **Matching.** Price-time priority. Trades happen at the resting order's price. An incoming
//! order matches while it crosses the best opposite level, against the level's orders in queue
//! order, each up to its visible quantity.
//!
//! **Order types.** `Limit` rests at its price. `Market` never rests: it matches up to the price
//! band's edge (any price when the band is off) and the remainder is cancelled
//! (`MarketRemainder`); with a band configured and no reference price it is rejected
//! (`NoReferencePrice`). `Stop` / `StopLimit` wait, invisible, in a stop ladder until the
//! instrument's last trade price reaches the stop (buy: last ≥ stop; sell: last ≤ stop), then
//! emit `Triggered` and run as a market / limit order with their time in force. A stop whose
//! condition already holds at entry triggers at once. Trigger order: after every order or replace,
//! eligible buy stops (lowest stop first) go before sell stops
//! (highest first), FIFO within one stop price; each triggered order runs to completion, and may
//! move the last price, before the next check. A triggered stop-limit whose price is outside the
//! band is cancelled (`PriceOutsideBand`). Stops do not trigger while halted or closed.
//!
//! **Iceberg.** `display_lots > 0` shows at most that much; when the visible slice is consumed
//! and quantity remains, the order refills `min(display, leaves)` at the back of its level (a
//! `Book::Execute` to zero, then a `Book::Add`). An aggressor keeps matching through refills.
//! Only orders that may rest can be icebergs.
//!
//! **Time in force.** GTC; DAY (expired by `EndOfDay`); IOC (remainder cancelled,
//! `IocRemainder`); FOK (fills completely at once or is cancelled with `FokUnfilled` and no
//! trade); GTD (expired before the first command whose `ts_ns` ≥ `expire_ns`, in (expiry,
//! acceptance) order; an expiry already passed at entry is rejected). Market orders with
//! GTC/DAY/GTD behave as IOC.
//!
//! **Post-only.** A post-only order (limit, resting time in force) that would take liquidity is
//! **rejected** (`WouldTakeLiquidity`), not cancelled; a replace that would make it cross is
//! rejected likewise.
//!
//! **Cancel / replace.** A replace names the new total quantity (including what has filled).
//! Lowering the quantity at the same price keeps time priority; a price change or a quantity
//! increase loses it (the order leaves the book and re-enters, matching first if it crosses).
//! Replacing to or below the filled quantity cancels the order (`ReplacedToFilled`). Pending
//! stops can change stop price, limit price and quantity. Mass cancel by account (optionally
//! one instrument), by instrument, or all; bulk operations visit bids, asks, buy stops, sell
//! stops, each best level first and FIFO within a level, instruments ascending.
//!
//! **Self-trade prevention.** Orders of accounts in the same STP group do not trade unless the
//! incoming order's mode is `Allow`. The taker's mode governs: `CancelNewest` cancels the taker,
//! `CancelOldest` cancels the resting order and continues, `CancelBoth` cancels both,
//! `DecrementAndCancel` reduces both by the smaller visible quantity (`Reduced` events; an order
//! reaching zero is cancelled) and the taker continues. FOK counts only liquidity it would reach
//! before STP stopped it (a decrement stops it too: FOK means all of the original quantity).
//!
//! **Pre-trade risk.** Per account: max order quantity and max order notional for every order;
//! max live orders and max live buy and sell notional (price × open quantity) for orders that
//! can become live — resting limit orders and stops. IOC, FOK and market orders never become
//! live, so only the per-order limits bound them. An order's notional is priced at its limit
//! price; a stop-market order's at its stop price; a market order's at the band edge, or, with
//! no band, at the most extreme price on the opposite side (what a full sweep could reach).
//! Per instrument: min/max quantity, max notional, price band around the last trade (or the
//! configured reference before the first trade). Trading status: cancels are always accepted;
//! new orders and replaces only while `Open`.
//!
//! **Authorization** is the gateway's job: the engine executes a mass cancel of any target
//! (another account, an instrument, everything) as asked; sessions may only send what their
//! configuration allows.
//!
//! **Rejects** leave the state untouched. Every rejection names a [`RejectReason`].
//!
//! **Event order** for one command: GTD expiries first; then for a new order `Accepted`, per
//! fill `Trade` + `Book::Execute` (+ `Book::Add` for an iceberg refill), then `Book::Add` if it
//! rests or `Cancelled` for the remainder; then triggered stops, each `Triggered` followed by its
//! own events. Cancels and expiries emit `Cancelled`/`Expired` then `Book::Delete`; a replace
//! that loses priority emits `Replaced` (new state), `Book::Delete` (old price), then the events
//! of re-entry; one that keeps it emits `Replaced` then `Book::Modify` if the visible quantity
//! changed.
//!
//! ## Start reading
//! `engine.rs` (apply, matching), then `order.rs`, `price_level.rs` and `ladder.rs` (the data
//! layout), `state.rs` (image, hash, invariants).

pub mod account;
mod book;
pub mod command;
mod engine;
pub mod event;
mod hugepage;
pub mod ids;
mod index;
pub mod instrument;
mod ladder;
pub mod limits;
pub mod operator;
mod order;
mod prefetch;
mod price_level;
pub mod query;
pub mod sim;
pub mod state;
mod tiered;

pub use account::{AccountSpec, RiskLimits, StpMode};
pub use command::{
    Cancel, Command, CommandBody, MassCancel, MassCancelTarget, NewOrder, OrdType, OrderRef, Replace, Side, TimeInForce,
};
pub use engine::{ApplyError, Engine, LOOKAHEAD, LOOKAHEAD_FULL_LIVE, LOOKAHEAD_MIN_ORDERS};
pub use event::{
    BookChange, CancelReason, CountingSink, Event, EventSink, ExpireReason, Fill, OrderView, Reject, RejectReason,
    RequestKind, Trade,
};
pub use ids::{AccountId, ClOrdId, InstrumentId, OrderId, Symbol, TradeId};
pub use instrument::{GridError, InstrumentSpec, TradingStatus};
pub use limits::{EngineLimits, LimitsError, MAX_INSTRUMENTS, MAX_KILLED_SESSIONS, MAX_LEVELS, MAX_ORDERS};
pub use operator::{OperatorAction, OperatorCommand, OperatorName, OperatorOutcome, ScopeState};
pub use query::{LevelView, MemoryReport};
pub use state::LoadError;

//! The engine-neutral command stream. Workloads are generated once as [`Op`]s; each benchmarked
//! book has one adapter that translates them into its own commands before any timing starts.
//!
//! Order ids here are dense (`0..Workload::ids`) and never reused, so adapters can keep their
//! id maps in plain vectors.

/// Buy or sell: the engine's own type (every peer's adapter maps it to its own).
pub use engine::Side;

/// One command of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// GTC limit order: matches what it crosses, the rest rests.
    Add {
        /// Client order id (dense, never reused).
        id: u64,
        /// Side.
        side: Side,
        /// Limit price in ticks.
        price_ticks: i64,
        /// Quantity in lots.
        qty_lots: u64,
    },
    /// Immediate-or-cancel limit order: matches what it crosses, the rest is cancelled.
    Ioc {
        /// Client order id (dense, never reused).
        id: u64,
        /// Side.
        side: Side,
        /// Limit price in ticks.
        price_ticks: i64,
        /// Quantity in lots.
        qty_lots: u64,
    },
    /// Cancel a resting order (a no-op if it is gone).
    Cancel {
        /// Client order id.
        id: u64,
    },
    /// Move a resting order to another price, keeping its open quantity; it loses time priority
    /// and matches first if the new price crosses (exchange-core's "move").
    Amend {
        /// Client order id.
        id: u64,
        /// New limit price in ticks (never the current one).
        price_ticks: i64,
    },
    /// Reduce a resting order's open quantity by `by_lots`, clipped; reaching zero removes it;
    /// keeps time priority otherwise.
    Reduce {
        /// Client order id.
        id: u64,
        /// Lots to take off.
        by_lots: u64,
        /// Open quantity after the reduction according to the reference book (0: removed or
        /// already gone), for adapters whose API takes an absolute quantity.
        leaves_after: u64,
    },
}

/// A run of ops that is either measured or only applied (pre-load, end-of-loop drain).
#[derive(Clone, Debug, Default)]
pub struct Segment {
    /// The ops, in order.
    pub ops: Vec<Op>,
    /// Whether the benchmark measures these ops.
    pub timed: bool,
}

/// What the reference book (see [`crate::naive`]) saw while the stream was generated; every
/// engine must reproduce `trades_total`.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// Trades (maker fills) over the whole stream.
    pub trades_total: u64,
    /// Trades during timed segments.
    pub trades_timed: u64,
    /// Timed commands that produced at least one trade.
    pub trading_commands_timed: u64,
    /// Timed commands that changed nothing (cancel, amend or reduce of an order already gone).
    pub noop_commands_timed: u64,
    /// Aggressive orders whose quantity exceeded the opposite liquidity within their limit while
    /// more liquidity sat beyond it: an engine that ignores the limit once an order crosses
    /// fills these through the limit.
    pub through_limit_orders: u64,
    /// Resting orders and price levels, sampled after every timed command: (sum, samples).
    pub resting_orders_sum: u128,
    /// See `resting_orders_sum`.
    pub levels_sum: u128,
    /// Number of samples in the two sums.
    pub samples: u64,
    /// Resting orders when the stream ends.
    pub resting_orders_end: usize,
    /// Timed ops by kind: add, ioc, cancel, amend, reduce.
    pub kinds_timed: [u64; 5],
}

impl Reference {
    /// Mean resting orders over the timed commands.
    pub fn mean_resting_orders(&self) -> f64 {
        self.resting_orders_sum as f64 / self.samples.max(1) as f64
    }

    /// Mean price levels (both sides) over the timed commands.
    pub fn mean_levels(&self) -> f64 {
        self.levels_sum as f64 / self.samples.max(1) as f64
    }
}

/// A generated workload, deterministic from its seed (or input file).
#[derive(Clone, Debug)]
pub struct Workload {
    /// Name used in the output.
    pub name: &'static str,
    /// Seed the stream was generated from (0 for file streams).
    pub seed: u64,
    /// The ops.
    pub segments: Vec<Segment>,
    /// Order ids used are `0..ids`.
    pub ids: u64,
    /// Accounts the orders are spread over (for engines that have accounts).
    pub accounts: u32,
    /// What the reference book saw.
    pub reference: Reference,
    /// Human-readable description lines printed before the results.
    pub notes: Vec<String>,
}

impl Workload {
    /// Number of timed ops.
    pub fn timed_commands(&self) -> u64 {
        self.segments.iter().filter(|s| s.timed).map(|s| s.ops.len() as u64).sum()
    }

    /// Number of ops applied in total.
    pub fn total_commands(&self) -> u64 {
        self.segments.iter().map(|s| s.ops.len() as u64).sum()
    }
}

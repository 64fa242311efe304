//! The durability and recovery benchmark's cases; `src/bin/durability.rs` wires them.
//!
//! - [`append`]: the journal alone, appending 64-byte bodies with group commit at each
//!   durability level (append cost and append→durable latency per record).
//! - [`rollover`]: the journal alone in small segments, timing how long each segment rollover
//!   holds up the writer.
//! - [`matcher_path`]: the matcher thread applying generated commands while handing each one to
//!   a journaler thread through a `disruptor` ring (or journaling inline), to see what the
//!   journal adds to the per-command path.
//! - [`snapshot_pause`]: the same matcher feeding a snapshotting [`snapshot::Follower`] thread,
//!   to see whether a snapshot pauses the matcher.
//! - [`replay`] and [`restore`]: reading a journal of generated commands back, and restoring an
//!   engine from it with and without a snapshot, each restore in a fresh process.
//!
//! [`matcher`] is the matcher thread's timed loop the two matcher cases share; [`ring`] is the
//! `disruptor` ring between the matcher and a consumer thread.
//!
//! Every command comes from [`engine::sim::command_stream`] with the constants below, so each
//! case's journal can be checked by replaying it into a fresh engine and comparing
//! `state_hash` with the engine that produced it.

pub mod append;
pub mod matcher;
pub mod matcher_path;
pub mod replay;
pub mod restore;
pub mod ring;
pub mod rollover;
pub mod snapshot_pause;

use std::path::PathBuf;

use core_affinity::CoreId;
use engine::{Command, EngineLimits, InstrumentId};

use crate::timing::Ticker;
use crate::wait::Wait;

/// The generated flow's instrument.
pub const INSTRUMENT: InstrumentId = InstrumentId(0);
/// Accounts in the generated flow (pairs share a self-trade-prevention group).
pub const ACCOUNTS: u32 = 6;
/// Sequencer timestamp step between commands.
pub const TS_STEP_NS: u64 = 1_000;

/// Engine capacities for every case. The generated flow's GTC orders accumulate (about 15,000
/// live orders per million commands, 150,000 after ten million), so the order pool has room
/// for about 70 million commands; levels stay in the tens (prices and stops lie within 32
/// ticks of a fixed mid).
pub const LIMITS: EngineLimits = EngineLimits {
    max_orders: 1 << 20,
    max_levels: 1 << 12,
    max_levels_per_side: 1 << 10,
    max_instruments: 1,
    max_accounts: 16,
};

/// The deterministic command flow every case uses.
pub fn stream(seed: u64) -> impl Iterator<Item = Command> {
    engine::sim::command_stream(seed, INSTRUMENT, ACCOUNTS, TS_STEP_NS)
}

/// Generates the first `n` commands of the flow up front, so generation never runs inside a
/// measurement.
pub fn pregenerate(seed: u64, n: u64) -> Vec<Command> {
    stream(seed).take(usize::try_from(n).expect("command count fits in memory")).collect()
}

/// Where each thread of a two-thread case runs.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// The matcher (the benchmark's main thread), already pinned by `main` if this is `Some`.
    pub matcher: Option<CoreId>,
    /// The consumer thread (journaler or follower).
    pub consumer: Option<CoreId>,
}

impl Placement {
    /// Both threads' placement, for the report.
    pub fn describe(&self) -> String {
        let one = |c: Option<CoreId>| c.map_or_else(|| "unpinned".to_string(), |c| format!("core {}", c.id));
        format!("matcher {}, consumer {}", one(self.matcher), one(self.consumer))
    }
}

/// What every case needs to know about the run.
#[derive(Debug)]
pub struct Ctx {
    /// The calibrated tick source all per-command times use.
    pub ticker: Ticker,
    /// Scratch directory for journals and snapshots; removed when the run ends.
    pub dir: PathBuf,
    /// Seed of the generated flow.
    pub seed: u64,
    /// How consumer threads wait for work.
    pub wait: Wait,
    /// Thread placement.
    pub placement: Placement,
    /// `JournalConfig::writeback_hint_len_bytes` for every journal the benchmark writes.
    pub writeback_hint_len_bytes: u64,
    /// Slots of every inter-thread ring.
    pub ring_slots: usize,
    /// Summary lines, printed again at the end.
    pub summary: Vec<String>,
    /// The figures the issue sets targets for, as the cases measure them.
    pub targets: Targets,
}

impl Ctx {
    /// Prints a summary line now and keeps it for the final summary.
    pub fn summary(&mut self, line: String) {
        println!("{line}");
        self.summary.push(line);
    }

    /// The journal configuration every case uses: default 64 MiB segments, the chosen
    /// write-back hint, the journal's background thread on the consumer core (off the main
    /// thread's, where the append cases write).
    pub fn journal_config(&self) -> journal::JournalConfig {
        journal::JournalConfig {
            writeback_hint_len_bytes: self.writeback_hint_len_bytes,
            background_cpu: self.placement.consumer.map(|core| core.id),
            ..journal::JournalConfig::default()
        }
    }
}

/// The figures the issue sets targets for (on this 2-core machine), filled in as cases run.
#[derive(Debug, Default)]
pub struct Targets {
    /// `matcher_path_written_thread` p50 minus `matcher_path_none` p50 (target ≤ 100 ns).
    pub written_added_p50_ns: Option<f64>,
    /// `journal_append_fsync_n1024` records/s (target ≥ 1M).
    pub fsync_n1024_ops_per_s: Option<f64>,
    /// `matcher_path_fsync_thread` records durable per second, end to end (target ≥ 1M).
    pub fsync_thread_durable_ops_per_s: Option<f64>,
    /// `journal_replay` records/s (target ≥ 10M).
    pub replay_ops_per_s: Option<f64>,
    /// Median seconds to restore the whole journal with a snapshot, page cache warm, and the
    /// journal's length (target ≤ 2 s for 10M).
    pub restore_snapshot_warm_s: Option<(f64, u64)>,
    /// The same from a cold page cache.
    pub restore_snapshot_cold_s: Option<(f64, u64)>,
}

impl Targets {
    /// One line per target: the figure, the target and whether it is met.
    pub fn report(&self) -> Vec<String> {
        fn verdict(ok: bool) -> &'static str {
            if ok { "MET" } else { "NOT MET" }
        }
        let mut out = Vec::new();
        let mut add = |name: &str, value: Option<String>, ok: Option<bool>| {
            out.push(match (value, ok) {
                (Some(v), Some(ok)) => format!("{name}: {v} -> {}", verdict(ok)),
                (Some(v), None) => format!("{name}: {v} -> no verdict"),
                (None, _) => format!("{name}: not measured in this run"),
            });
        };
        add(
            "journal on its own thread, `written` adds <= 100 ns to the matcher's p50",
            self.written_added_p50_ns.map(|v| format!("{v:+.0} ns")),
            self.written_added_p50_ns.map(|v| v <= 100.0),
        );
        add(
            "fsync group commit >= 1M records/s (journal_append_fsync_n1024)",
            self.fsync_n1024_ops_per_s.map(|v| format!("{:.2} M records/s", v / 1e6)),
            self.fsync_n1024_ops_per_s.map(|v| v >= 1e6),
        );
        add(
            "fsync group commit >= 1M records/s (matcher_path_fsync_thread, durable end to end; bounded by the \
             matcher's own rate)",
            self.fsync_thread_durable_ops_per_s.map(|v| format!("{:.2} M records/s", v / 1e6)),
            self.fsync_thread_durable_ops_per_s.map(|v| v >= 1e6),
        );
        add(
            "replay >= 10M records/s (journal_replay)",
            self.replay_ops_per_s.map(|v| format!("{:.2} M records/s", v / 1e6)),
            self.replay_ops_per_s.map(|v| v >= 10e6),
        );
        for (cache, value) in [("warm", self.restore_snapshot_warm_s), ("cold", self.restore_snapshot_cold_s)] {
            let name = format!("10M commands restored in <= 2 s with a snapshot (page cache {cache})");
            add(
                &name,
                value.map(|(s, n)| format!("{s:.2} s for {n} commands")),
                // The target is for 10M commands; a --quick journal is shorter.
                value.and_then(|(s, n)| (n == 10_000_000).then_some(s <= 2.0)),
            );
        }
        out
    }
}

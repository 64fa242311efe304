//! Durability and recovery benchmark: the journal's append and replay, what journaling and
//! snapshotting add to the matcher thread, and restore time with and without a snapshot.
//!
//! `cargo run --release -p bench --bin durability -- [--quick] [--dir PATH] [--wait yield|spin]`
//! (`--help` for the rest). The cases live in `sable_bench::durability`; this file parses the
//! arguments, describes the machine and runs them in order:
//!
//! 1. `journal_append_*`: the journal alone, per durability level and group size.
//! 2. `journal_rollover_*`: the journal alone in small segments, the writer's pause per rollover.
//! 3. `matcher_path_*`: the matcher with the journal on its own thread, inline, or absent.
//! 4. `snapshot_pause*`: the matcher feeding a snapshotting follower thread, snapshots off/on.
//! 5. `journal_replay*`: reading back the journal of generated commands built for
//! 6. `restore_*`: restoring it in fresh processes, with and without a snapshot, warm and cold.
//!
//! Every case prints the summary line of the `matcher` benchmark
//! (`workload=... engine=sable commands=... ops_per_s=... p50_ns=... p99_ns=... p9999_ns=... max_ns=...`)
//! plus its own fields; the machine is shared and noisy, so compare cases within one run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sable_bench::durability::ring::DEFAULT_RING_SLOTS;
use sable_bench::durability::{
    Ctx, Placement, Targets, append, matcher_path, replay, restore, rollover, snapshot_pause,
};
use sable_bench::machine;
use sable_bench::timing::{self, Ticker};
use sable_bench::wait::Wait;

const CASES: [&str; 6] = ["append", "rollover", "matcher_path", "snapshot_pause", "replay", "restore"];

/// sable's durability and recovery benchmark.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Smoke run of under half a minute: a tenth of the append records, 200,000 matcher commands,
    /// a 1M-command restore journal.
    #[arg(long)]
    quick: bool,
    /// Where the scratch directory goes (its file system is what the journal cases measure).
    /// Default: the system temp directory. The scratch directory is removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How the journaler and follower threads wait for work.
    #[arg(long, value_enum, default_value_t = Wait::Yield)]
    wait: Wait,
    /// Do not pin threads.
    #[arg(long)]
    no_pin: bool,
    /// Seed of the generated command flow.
    #[arg(long, default_value_t = 0x5AB1E)]
    seed: u64,
    /// Commands per matcher_path and snapshot_pause run (default 2,000,000; --quick 200,000).
    #[arg(long)]
    commands: Option<u64>,
    /// Commands in the restore journal (default 10,000,000; --quick 1,000,000).
    #[arg(long)]
    restore_commands: Option<u64>,
    /// Interleaved rounds of the matcher_path cases (default 3; --quick 2).
    #[arg(long)]
    rounds: Option<usize>,
    /// The follower's snapshot interval in snapshot_pause (default 250,000; --quick 50,000).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Slots of the matcher→journaler and matcher→follower rings (a power of two).
    #[arg(long, default_value_t = DEFAULT_RING_SLOTS)]
    ring_slots: usize,
    /// `JournalConfig::writeback_hint_len_bytes` for every journal written (0 = off).
    #[arg(long)]
    writeback_hint_bytes: Option<u64>,
    /// Segment length of the rollover case (small, so that it rolls over often).
    #[arg(long, default_value_t = rollover::DEFAULT_SEGMENT_LEN_BYTES)]
    rollover_segment_bytes: u64,
    /// Pace of the rollover case in records/s (0 = as fast as the journal goes).
    #[arg(long, default_value_t = rollover::DEFAULT_RECORDS_PER_S)]
    rollover_rate: u64,
    /// `all` or a comma-separated list of append, rollover, matcher_path, snapshot_pause, replay, restore.
    #[arg(long, default_value = "all")]
    cases: String,
    /// Internal: restore from this journal directory in this process and print the result.
    #[arg(long, hide = true)]
    restore_child_journal: Option<PathBuf>,
    /// Internal: the snapshot directory for `--restore-child-journal`.
    #[arg(long, hide = true, requires = "restore_child_journal")]
    restore_child_snapshots: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(journal_dir) = &args.restore_child_journal {
        return restore::child_main(journal_dir, args.restore_child_snapshots.as_deref());
    }
    let cases: Vec<&str> = if args.cases == "all" {
        CASES.to_vec()
    } else {
        let mut picked = Vec::new();
        for name in args.cases.split(',').map(str::trim) {
            match CASES.iter().find(|c| **c == name) {
                Some(c) => picked.push(*c),
                None => {
                    eprintln!("durability: unknown case {name:?}; one of {CASES:?}");
                    return ExitCode::FAILURE;
                }
            }
        }
        picked
    };
    if !args.ring_slots.is_power_of_two() {
        eprintln!("durability: --ring-slots must be a power of two");
        return ExitCode::FAILURE;
    }
    let commands = args.commands.unwrap_or(if args.quick { 200_000 } else { 2_000_000 });
    let restore_commands = args.restore_commands.unwrap_or(if args.quick { 1_000_000 } else { 10_000_000 });
    let rounds = args.rounds.unwrap_or(if args.quick { 2 } else { 3 });
    let snapshot_every = args.snapshot_every.unwrap_or(if args.quick { 50_000 } else { 250_000 });
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = match tempfile::Builder::new().prefix("sable-durability-").tempdir_in(&base) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("durability: cannot create a scratch directory in {}: {e}", base.display());
            return ExitCode::FAILURE;
        }
    };

    // Placement: the main thread (matcher, append cases, restore build) on the first core, the
    // consumer thread on the second; restore children inherit the main thread's pinning.
    // Read before pinning: both answer for the calling thread's affinity mask.
    let (cpus, cores) = (machine::cpus(), machine::cores());
    let (placement, pinned) = if args.no_pin {
        (Placement { matcher: None, consumer: None }, "no (--no-pin)".to_string())
    } else {
        match cores.as_slice() {
            [] => (Placement { matcher: None, consumer: None }, "no (core list unavailable)".to_string()),
            [only] => {
                let how = machine::pin_current(*only);
                (
                    Placement { matcher: Some(*only), consumer: None },
                    format!("main {how}; consumers unpinned (one core)"),
                )
            }
            [first, second, ..] => {
                let how = machine::pin_current(*first);
                (
                    Placement { matcher: Some(*first), consumer: Some(*second) },
                    format!("main/matcher thread {how}; journaler and follower threads core {}", second.id),
                )
            }
        }
    };
    let ticker = Ticker::calibrate(Duration::from_millis(200));
    let (oh50, oh99) = timing::timer_overhead(&ticker);
    let jitter = timing::jitter_probe(&ticker);
    let mut ctx = Ctx {
        ticker,
        dir: scratch.path().to_path_buf(),
        seed: args.seed,
        wait: args.wait,
        placement,
        writeback_hint_len_bytes: args
            .writeback_hint_bytes
            .unwrap_or(journal::JournalConfig::default().writeback_hint_len_bytes),
        ring_slots: args.ring_slots,
        summary: Vec::new(),
        targets: Targets::default(),
    };

    println!("sable durability benchmark (journal, snapshots, restore){}", if args.quick { " --quick" } else { "" });
    println!(
        "  cpus: {} (cores listed for pinning: {:?}); load average at start: {}",
        cpus,
        cores.iter().map(|c| c.id).collect::<Vec<_>>(),
        machine::loadavg()
    );
    println!("  pinning: {pinned}");
    println!(
        "  wait strategies: main thread (append cases, matcher, journal build) never waits, except a matcher that \
         finds its ring full (disruptor's publish busy-spins; counted and timed); journaler and follower threads: {}; \
         restore children: single-threaded, no waiting",
        args.wait.describe()
    );
    println!("  data directory: {} on {}", ctx.dir.display(), machine::filesystem_of(&ctx.dir));
    println!(
        "  timer: {} at {:.3} ticks/ns; empty timed window p50 {:.1} ns, p99 {:.1} ns (included in per-command \
         figures, not subtracted)",
        ticker.kind, ticker.ticks_per_ns, oh50, oh99
    );
    println!(
        "  machine noise: a fixed ~{:.0} ns loop timed 2M times: p99 {:.0} ns, p99.9 {:.0} ns, p99.99 {:.0} ns, max \
         {:.0} ns (tails above the work itself come from the machine)",
        jitter.p50_ns, jitter.p99_ns, jitter.p999_ns, jitter.p9999_ns, jitter.max_ns
    );
    println!(
        "  sizes: matcher_path/snapshot_pause {commands} commands ({rounds} matcher_path rounds), snapshot every {snapshot_every}; restore journal \
         {restore_commands} commands; ring {} slots; journal segments {} MiB, write-back hint {} bytes",
        ctx.ring_slots,
        journal::DEFAULT_SEGMENT_LEN_BYTES >> 20,
        ctx.writeback_hint_len_bytes
    );

    let started = Instant::now();
    if cases.contains(&"append") {
        append::run(&mut ctx, args.quick);
    }
    if cases.contains(&"rollover") {
        rollover::run(&mut ctx, args.quick, args.rollover_segment_bytes, args.rollover_rate);
    }
    if cases.contains(&"matcher_path") {
        matcher_path::run(&mut ctx, commands, rounds);
    }
    if cases.contains(&"snapshot_pause") {
        snapshot_pause::run(&mut ctx, commands, snapshot_every);
    }
    if cases.contains(&"replay") || cases.contains(&"restore") {
        let (built, journal) = restore::build(&ctx, restore_commands);
        if cases.contains(&"replay") {
            replay::run(&mut ctx, &journal);
        }
        // The journal directory is locked while open; the restore children open it.
        drop(journal);
        if cases.contains(&"restore") {
            restore::run(&mut ctx, &built);
        }
    }

    println!("\n== summary (load average at end: {}; {:.0} s)", machine::loadavg(), started.elapsed().as_secs_f64());
    for line in &ctx.summary {
        println!("{line}");
    }
    println!("\n== targets (issue text, this machine)");
    for line in ctx.targets.report() {
        println!("  {line}");
    }
    drop(scratch);
    ExitCode::SUCCESS
}

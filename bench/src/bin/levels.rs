//! Price-level benchmark: the per-command cost of an order that opens a NEW price level, far from
//! the touch, in the middle of the book or at the touch, for books of N levels per side; sable
//! side by side with the naive baseline book (BTreeMap).
//!
//! `cargo run --release -p bench --bin levels -- [--levels 1000,10000,100000] [--commands N]`
//! (`--help` for the rest).
//!
//! sable keeps each side's levels in an array sorted best last, so a new level far from the touch
//! has to make room among the levels between it and the touch (a tiered array bounds that to
//! O(√capacity) moves, see `engine/src/tiered.rs`; a flat array moved them all). For every N and phase, a fresh book of each engine
//! gets N resting 1-lot buys, one per even price `1,000,000 - 2i` (no asks, so nothing trades),
//! untimed; then `--commands` 1-lot buys, each at a price no order has used yet, are timed one by
//! one into an HdrHistogram:
//! - `far`: below every level (the worst end of the array);
//! - `mid`: at the free odd prices of the middle half of the levels, visited with a stride coprime
//!   to their number so the inserts spread over the whole middle half (at most that many);
//! - `touch`: above every level (each a new best bid).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use sable_bench::engines::naive::NaiveAdapter;
use sable_bench::engines::sable::{INSTRUMENT, LIMITS, RefMode, SableAdapter, SableBook};
use sable_bench::engines::{Adapter, Book, pick, time_each};
use sable_bench::machine;
use sable_bench::ops::{Op, Side};
use sable_bench::report::{self, Percentiles, summary_line};
use sable_bench::timing::{self, Ticker};

const ENGINES: [&str; 2] = ["sable", "naive"];
const PHASES: [&str; 3] = ["far", "mid", "touch"];
/// Price of the best pre-loaded level; level `i` rests at `TOP - 2i`.
const TOP: i64 = 1_000_000;

/// sable's price-level benchmark.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Comma-separated list of pre-loaded levels per side; one set of books per entry.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    levels: Vec<u32>,
    /// Timed commands per phase (mid: at most the free prices of the middle half).
    #[arg(long, default_value_t = 20_000)]
    commands: u32,
    /// `all` or a comma-separated list of sable, naive.
    #[arg(long, default_value = "all")]
    engines: String,
    /// Do not pin the benchmark thread.
    #[arg(long)]
    no_pin: bool,
}

/// One (N, phase, engine) result.
struct Run {
    ops_per_s: f64,
    /// Per-command service time in ticks.
    hist: Histogram<u64>,
    trades: u64,
    rejects: u64,
    /// Minor page faults inside the timed loop.
    faults: Option<u64>,
    /// Levels on the buy side after the phase, where the engine tells.
    levels: Option<usize>,
}

/// Greatest common divisor.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The timed orders' prices for a book of `n` levels: all distinct and none pre-loaded.
fn phase_prices(phase: &str, n: u32, commands: u32) -> Vec<i64> {
    let (n, commands) = (i64::from(n), commands as usize);
    match phase {
        "far" => (0..commands as i64).map(|k| TOP - 2 * n - k).collect(),
        "touch" => (0..commands as i64).map(|k| TOP + 1 + k).collect(),
        "mid" => {
            // Gap j (between levels j and j + 1) is the odd price TOP - 2j - 1; take the middle half.
            let gaps = (n.max(1) - 1) as usize;
            let (lo, m) = (gaps / 4, gaps / 2);
            let mut stride = ((m as f64 * 0.618) as usize).max(1);
            while m > 1 && gcd(stride, m) != 1 {
                stride += 1;
            }
            (0..commands.min(m)).map(|k| TOP - 2 * (lo + k * stride % m) as i64 - 1).collect()
        }
        _ => unreachable!("names come from PHASES"),
    }
}

/// Pre-loads a fresh book with `preload`, then times every command of `timed`: a timestamp pair
/// around each apply (with the lookahead hint inside, as in `matcher`'s latency pass) and an
/// `Instant` around the whole loop.
fn run<A: Adapter>(mut adapter: A, preload: &[Op], timed: &[Op], levels: impl Fn(&A::Book) -> Option<usize>) -> Run {
    let pre: Vec<_> = preload.iter().map(|op| adapter.translate(op)).collect();
    let cmds: Vec<_> = timed.iter().map(|op| adapter.translate(op)).collect();
    let mut book = adapter.new_book();
    for c in &pre {
        book.apply(c);
    }
    let (trades0, rejects0) = (book.trades(), book.rejects());
    let mut hist = report::histogram();
    let f0 = timing::minor_faults();
    let wall = Instant::now();
    time_each(&mut book, &cmds, &mut hist);
    let wall = wall.elapsed().as_secs_f64();
    let faults = timing::minor_faults().zip(f0).map(|(b, a)| b - a);
    Run {
        ops_per_s: cmds.len() as f64 / wall,
        hist,
        trades: book.trades() - trades0,
        rejects: book.rejects() - rejects0,
        faults,
        levels: levels(&book),
    }
}

/// Prints one engine's results and returns its summary line.
fn report(workload: &str, engine: &str, run: &Run, new_levels: usize, sable: Option<f64>, ticker: &Ticker) -> String {
    let p = Percentiles::from_ticks(&run.hist, ticker);
    let faults = run.faults.map_or("unknown".into(), |f| f.to_string());
    println!(
        "  [{engine}] per-command ns: {}; {:.2} M commands/s; minor page faults in the timed loop: {faults}",
        p.describe(),
        run.ops_per_s / 1e6
    );
    if run.trades != 0 || run.rejects != 0 {
        println!("  [{engine}] WARNING: {} trades, {} rejects/no-ops; expected none", run.trades, run.rejects);
    }
    let mut line = summary_line(workload, engine, p.count, run.ops_per_s, &p);
    line.push_str(&format!(" new_levels={new_levels}"));
    if let Some(s) = sable {
        line.push_str(&format!(" ratio_vs_sable={:.3}", run.ops_per_s / s));
    }
    println!("{line}");
    line
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut engines = match pick(&args.engines, &ENGINES, "engine") {
        Ok(e) => e,
        Err(e) => {
            eprintln!("levels: {e}");
            return ExitCode::FAILURE;
        }
    };
    // sable first, so the others' ratio_vs_sable is known when they print.
    engines.sort_by_key(|e| ENGINES.iter().position(|a| a == e));
    let cap = LIMITS.max_levels_per_side;
    if let Some(&n) = args.levels.iter().find(|&&n| u64::from(n) + u64::from(args.commands) > u64::from(cap)) {
        eprintln!(
            "levels: --levels {n} + --commands {} = {} levels on one side, above sable's capacity of {cap} per side \
             (LIMITS.max_levels_per_side): lower one of them",
            args.commands,
            u64::from(n) + u64::from(args.commands)
        );
        return ExitCode::FAILURE;
    }
    let cpus = machine::cpus();
    let pinned = if args.no_pin { "no (--no-pin)".to_string() } else { machine::pin_to_last_core() };
    let ticker = Ticker::calibrate(Duration::from_millis(200));
    let (oh50, oh99) = timing::timer_overhead(&ticker);
    let jitter = timing::jitter_probe(&ticker);

    println!("sable levels benchmark: the cost of an order that opens a NEW price level (in-process, single-threaded)");
    println!(
        "  why: sable keeps each side's levels in an array sorted best last; a new level far from the touch makes \
         room among the levels between it and the touch (tiered array: O(sqrt capacity) moves). Phases: far (below every level), mid (free odd prices in the middle \
         half), touch (new best bid); each on a fresh book pre-loaded (untimed) with N 1-lot buys at \
         {TOP} - 2i, no asks, so nothing trades"
    );
    println!("  cpus: {cpus}; benchmark thread pinned: {pinned}; load average at start: {}", machine::loadavg());
    println!("  wait strategy: none involved: one thread busy-runs every engine's apply, no queues or hand-offs");
    println!(
        "  timer: {} at {:.3} ticks/ns; empty timed window p50 {:.1} ns, p99 {:.1} ns (included in the per-command \
         figures, not subtracted)",
        ticker.kind, ticker.ticks_per_ns, oh50, oh99
    );
    println!(
        "  machine noise: a fixed ~{:.0} ns loop timed 2M times: p99 {:.0} ns, p99.9 {:.0} ns, p99.99 {:.0} ns, max \
         {:.0} ns (tails above the work itself come from the machine, not from any engine)",
        jitter.p50_ns, jitter.p99_ns, jitter.p999_ns, jitter.p9999_ns, jitter.max_ns
    );
    for &engine in &engines {
        let describe = match engine {
            "sable" => SableAdapter::new(1, 1, RefMode::Id, LIMITS).describe(),
            _ => NaiveAdapter.describe(),
        };
        println!("  [{engine}] adapter: {describe}");
    }
    println!(
        "  ops_per_s = timed commands / wall time of the timed loop, per-command timer and histogram recording \
         included; ratio_vs_sable = engine ops_per_s / sable ops_per_s (< 1: sable is faster); new_levels = timed \
         orders at a price no order had"
    );

    let mut summary = Vec::new();
    for &n in &args.levels {
        println!("\n== {n} levels per side");
        let preload: Vec<Op> = (0..n)
            .map(|i| Op::Add { id: u64::from(i), side: Side::Buy, price_ticks: TOP - 2 * i64::from(i), qty_lots: 1 })
            .collect();
        let used: HashSet<i64> = (0..i64::from(n)).map(|i| TOP - 2 * i).collect();
        for phase in PHASES {
            let prices = phase_prices(phase, n, args.commands);
            let new_levels = prices.iter().filter(|p| !used.contains(p)).collect::<HashSet<_>>().len();
            let after = n as usize + new_levels;
            let Some((first, last)) = prices.first().zip(prices.last()) else {
                println!("  -- {phase}: skipped: no free price in the middle half of {n} levels");
                continue;
            };
            println!(
                "  -- {phase}: {} timed 1-lot buys at prices {first} .. {last}, {new_levels} of them at new levels \
                 (the side grows from {n} to {after} levels)",
                prices.len()
            );
            let timed: Vec<Op> = (0..)
                .zip(&prices)
                .map(|(k, &price_ticks)| Op::Add { id: u64::from(n) + k, side: Side::Buy, price_ticks, qty_lots: 1 })
                .collect();
            let workload = format!("levels_{phase}_{n}");
            let mut sable = None;
            for &engine in &engines {
                let r = if engine == "sable" {
                    let adapter = SableAdapter::new(u64::from(n) + prices.len() as u64, 1, RefMode::Id, LIMITS);
                    run(adapter, &preload, &timed, |b: &SableBook| Some(b.engine.levels(INSTRUMENT, Side::Buy).len()))
                } else {
                    run(NaiveAdapter, &preload, &timed, |_| None)
                };
                if let Some(l) = r.levels.filter(|&l| l != after) {
                    println!("  [{engine}] WARNING: {l} buy levels after the phase, expected {after}");
                }
                summary.push(report(&workload, engine, &r, new_levels, sable, &ticker));
                if engine == "sable" {
                    sable = Some(r.ops_per_s);
                }
            }
        }
    }
    println!("\n== summary (load average at end: {})", machine::loadavg());
    for line in summary {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

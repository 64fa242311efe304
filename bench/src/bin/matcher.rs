//! In-process matcher benchmark: sable and peer order books side by side on identical,
//! pre-generated command streams.
//!
//! `cargo run --release -p bench --bin matcher -- [--commands N] [--workload NAME] [--wait spin]`
//! (`--quick` for a CI smoke run of a few seconds; `--help` for the rest).
//!
//! Workloads are generated once as engine-neutral ops (with a reference book counting the trades
//! every engine must reproduce) and translated to each engine's native commands before timing.
//! For every workload it then runs `--passes` throughput passes per engine (wall time of the
//! timed segments / commands, no per-command timer; median reported), interleaved round-robin
//! across engines (pass 1 of every engine, then pass 2, ...) so that the shared machine's slow
//! drifts in memory bandwidth and CPU steal hit every engine alike, and then for each engine one
//! pass that timestamps every command into an HdrHistogram; every pass runs on a fresh book.
//!
//! The header measures how often the machine itself interrupts a timed window (a fixed loop timed
//! 2M times; windows of 5 µs or more count as interrupted), and each engine's latency report sets
//! its own samples of 5 µs or more against what that rate alone predicts for its mean window.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use sable_bench::engines::matchcore::MatchcoreAdapter;
use sable_bench::engines::naive::NaiveAdapter;
use sable_bench::engines::orderbook_rs::ObAdapter;
use sable_bench::engines::sable::{INSTRUMENT, LIMITS, RefMode, SableAdapter, SableBook, limits_for};
use sable_bench::engines::{Adapter, Book, pick, time_each, translate_all};
use sable_bench::machine;
use sable_bench::ops::Workload;
use sable_bench::report::{self, Percentiles, summary_line};
use sable_bench::timing::{self, Ticker};
use sable_bench::workloads::deep_book::{self, DeepParams};
use sable_bench::workloads::exchange_core_mix::{self, MixParams};
use sable_bench::workloads::goog_day;

const WORKLOADS: [&str; 3] = ["exchange_core_mix", "deep_book", "goog_day"];
const ENGINES: [&str; 6] = ["sable", "sable_serial", "sable_2M", "matchcore", "orderbook-rs", "naive"];

/// sable's `max_orders` for the small books (exchange_core_mix holds ~1,000 orders, goog_day at
/// most a few thousand): 64x headroom. The deep book gets [`LIMITS`] (2M).
const SMALL_BOOK_MAX_ORDERS: u32 = 1 << 16;

/// sable's in-process matcher benchmark.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Timed commands per workload (goog_day: rounded up to whole days).
    #[arg(long, default_value_t = 2_000_000)]
    commands: u64,
    /// `all` or a comma-separated list of exchange_core_mix, deep_book, goog_day.
    #[arg(long, default_value = "all")]
    workload: String,
    /// `all` or a comma-separated list of sable, sable_serial (sable without the batch
    /// lookahead), sable_2M (sable with the deep book's 2M-order capacities on the small
    /// workloads), matchcore, orderbook-rs, naive.
    #[arg(long, default_value = "all")]
    engines: String,
    /// Wait strategy. Accepted for symmetry with the pipeline benchmarks: this one is
    /// single-threaded (apply runs on the benchmark thread), so nothing ever waits.
    #[arg(long, default_value = "spin")]
    wait: String,
    /// Seed of the generated workloads.
    #[arg(long, default_value_t = 0x5AB1E)]
    seed: u64,
    /// Orders pre-loaded into the deep book.
    #[arg(long, default_value_t = 1_000_000)]
    deep_orders: usize,
    /// The GOOG neutral stream.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/GOOG_2012-06-21_level1.stream.csv"))]
    goog: PathBuf,
    /// How sable's cancel/replace name the order.
    #[arg(long, value_enum, default_value_t = SableRef::Id)]
    sable_ref: SableRef,
    /// sable's `max_orders` (order pool and index capacity) for every workload; levels scale
    /// along. Default: 65,536 for exchange_core_mix and goog_day, 2,097,152 for deep_book.
    /// Setting it skips `sable_2M`.
    #[arg(long)]
    sable_max_orders: Option<u32>,
    /// CI smoke mode: 100,000 commands, a 100,000-order deep book, one throughput pass.
    #[arg(long)]
    quick: bool,
    /// Do not pin the benchmark thread.
    #[arg(long)]
    no_pin: bool,
    /// Throughput passes per (workload, engine), interleaved round-robin across engines; the
    /// median is reported.
    #[arg(long, default_value_t = 3)]
    passes: u32,
    /// Only generate the workloads and print what the reference book saw.
    #[arg(long)]
    generate_only: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SableRef {
    /// Exchange order id.
    Id,
    /// Client order id.
    Client,
}

/// One (workload, engine) result.
struct Run {
    engine: &'static str,
    commands: u64,
    ops_per_s: f64,
    /// Per-command service time in ticks.
    hist: Histogram<u64>,
    trades: u64,
    rejects: u64,
}

/// Applies every segment of a translated workload to `book`; the timed segments go through
/// `timed` (which gets the book and the segment's commands).
fn drive<B: Book>(book: &mut B, w: &Workload, cmds: &[Vec<B::Cmd>], mut timed: impl FnMut(&mut B, &[B::Cmd])) {
    for (seg, cmds) in w.segments.iter().zip(cmds) {
        if seg.timed {
            timed(book, cmds);
        } else {
            for c in cmds {
                book.apply(c);
            }
        }
    }
}

/// The throughput loop over one timed segment; never inlined so profilers can attribute
/// exactly the timed work to it (`perf report -p timed_segment -x`, callgrind
/// `--toggle-collect=*timed_segment*`).
#[inline(never)]
fn timed_segment<B: Book>(book: &mut B, cmds: &[B::Cmd]) {
    if book.looks_ahead() {
        for (i, c) in cmds.iter().enumerate() {
            book.prepare(&cmds[i + 1..]);
            book.apply(c);
        }
    } else {
        for c in cmds {
            book.apply(c);
        }
    }
}

/// One engine's share of a workload: its translated commands and the throughput passes run so
/// far. Object-safe so the passes of different engines can be interleaved from one list;
/// dispatch is per pass, the timed loop inside stays monomorphised.
trait Contender {
    fn label(&self) -> &'static str;
    /// Runs throughput pass `pass` (1-based) on a fresh book and returns its commands/s.
    fn throughput_pass(&mut self, pass: u32) -> f64;
    /// Runs the latency pass, prints the throughput line and drops the translated commands.
    fn finish(self: Box<Self>) -> Run;
}

/// The [`Contender`] for one [`Adapter`].
struct AdapterContender<'w, A: Adapter, H> {
    label: &'static str,
    adapter: A,
    w: &'w Workload,
    cmds: Vec<Vec<<A::Book as Book>::Cmd>>,
    translate_s: f64,
    /// Commands/s of each throughput pass so far.
    rates: Vec<f64>,
    /// Trades and rejects of the first pass; later passes and the latency pass must agree.
    trades: u64,
    rejects: u64,
    /// Minor page faults inside timed segments, summed over the passes.
    faults: u64,
    /// Called with the book just before the first pass's first timed segment.
    before_timed: H,
}

/// Translates `w` for one engine (before any pass of any engine, so no translation runs between
/// timed passes).
fn contender<'w, A: Adapter + 'w>(
    label: &'static str,
    mut adapter: A,
    w: &'w Workload,
    before_timed: impl FnMut(&A::Book) + 'w,
) -> Box<dyn Contender + 'w> {
    let t = Instant::now();
    let cmds = translate_all(&mut adapter, w);
    let translate_s = t.elapsed().as_secs_f64();
    println!("  [{}] adapter: {}", label, adapter.describe());
    Box::new(AdapterContender {
        label,
        adapter,
        w,
        cmds,
        translate_s,
        rates: Vec::new(),
        trades: 0,
        rejects: 0,
        faults: 0,
        before_timed,
    })
}

impl<A: Adapter, H: FnMut(&A::Book)> Contender for AdapterContender<'_, A, H> {
    fn label(&self) -> &'static str {
        self.label
    }

    /// No per-command timer; Instant around each timed segment.
    fn throughput_pass(&mut self, pass: u32) -> f64 {
        let mut book = self.adapter.new_book();
        let mut wall = Duration::ZERO;
        let mut hooked = pass > 1;
        let (before_timed, faults) = (&mut self.before_timed, &mut self.faults);
        drive(&mut book, self.w, &self.cmds, |book, cmds| {
            if !hooked {
                before_timed(book);
                hooked = true;
            }
            let f0 = timing::minor_faults();
            let t0 = Instant::now();
            timed_segment(book, cmds);
            wall += t0.elapsed();
            if let (Some(a), Some(b)) = (f0, timing::minor_faults()) {
                *faults += b - a;
            }
        });
        let rate = self.w.timed_commands() as f64 / wall.as_secs_f64();
        self.rates.push(rate);
        if pass == 1 {
            (self.trades, self.rejects) = (book.trades(), book.rejects());
        } else if book.trades() != self.trades {
            println!("  [{}] WARNING: passes disagree on trades ({} vs {})", self.label, self.trades, book.trades());
        }
        rate
    }

    /// Latency: a timestamp pair around every timed command.
    fn finish(self: Box<Self>) -> Run {
        let Self { label, adapter, w, cmds, translate_s, rates, trades, rejects, faults, .. } = *self;
        assert!(!rates.is_empty(), "[{label}] finish before any throughput pass");
        let mut book = adapter.new_book();
        let mut hist = report::histogram();
        drive(&mut book, w, &cmds, |book, cmds| time_each(book, cmds, &mut hist));
        if book.trades() != trades {
            println!("  [{}] WARNING: latency pass disagrees on trades ({} vs {})", label, trades, book.trades());
        }
        drop(book);
        // Every engine's commands are resident during the passes; free these before the next
        // engine's latency pass.
        drop(cmds);

        let mut sorted = rates.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        println!(
            "  [{}] translated {} commands in {:.2} s; throughput passes (M commands/s): {}; median {:.2}; minor page \
             faults inside timed segments: {:.1} per pass",
            label,
            w.total_commands(),
            translate_s,
            rates.iter().map(|r| format!("{:.2}", r / 1e6)).collect::<Vec<_>>().join(" "),
            median / 1e6,
            faults as f64 / rates.len() as f64
        );
        Run { engine: label, commands: w.timed_commands(), ops_per_s: median, hist, trades, rejects }
    }
}

fn sable_memory(book: &SableBook) {
    let e = &book.engine;
    let m = e.memory_report();
    let levels = e.levels(INSTRUMENT, engine::Side::Buy).len() + e.levels(INSTRUMENT, engine::Side::Sell).len();
    let live = e.live_orders().max(1) as f64;
    let level_share = m.level_bytes as f64 * levels as f64 / live;
    println!(
        "  [sable] memory per resting order ({} orders, {} levels): order record {} B + index {:.1} B/slot + level \
         share {} B x {} levels / {} orders = {:.2} B -> {:.1} B/order (preallocated total {:.0} MiB for {} slots)",
        e.live_orders(),
        levels,
        m.order_record_bytes,
        m.index_bytes_per_order,
        m.level_bytes,
        levels,
        e.live_orders(),
        level_share,
        m.order_record_bytes as f64 + m.index_bytes_per_order + level_share,
        m.total_bytes as f64 / (1u64 << 20) as f64,
        e.limits().max_orders
    );
}

fn describe_workload(w: &Workload) {
    let r = &w.reference;
    let n = w.timed_commands().max(1) as f64;
    let pct = |k: usize| 100.0 * r.kinds_timed[k] as f64 / n;
    println!("\n== workload {}  seed={:#x}", w.name, w.seed);
    for note in &w.notes {
        println!("  {note}");
    }
    println!(
        "  reference book: {} timed commands (add {:.1}%, ioc {:.1}%, cancel {:.1}%, amend {:.1}%, reduce {:.1}%); \
         trade ratio {:.2}% of commands trade; {} trades timed, {} total; resting orders mean {:.0} (end {}); \
         price levels mean {:.0}; no-op commands {}; orders with more qty than their limit reaches while the book \
         has more beyond it: {}",
        w.timed_commands(),
        pct(0),
        pct(1),
        pct(2),
        pct(3),
        pct(4),
        100.0 * r.trading_commands_timed as f64 / n,
        r.trades_timed,
        r.trades_total,
        r.mean_resting_orders(),
        r.resting_orders_end,
        r.mean_levels(),
        r.noop_commands_timed,
        r.through_limit_orders
    );
}

/// Prints one engine's results and returns its summary line. `interruptions_per_s` is the
/// machine's rate of interruptions of at least [`timing::INTERRUPTION_NS`] per second of timed
/// window ([`timing::Noise::interruptions_per_s`]).
fn report(w: &Workload, run: &Run, sable: Option<&Run>, ticker: &Ticker, interruptions_per_s: f64) -> String {
    let p = Percentiles::from_ticks(&run.hist, ticker);
    println!("  [{}] per-command ns: {}; throughput {:.2} M commands/s", run.engine, p.describe(), run.ops_per_s / 1e6);
    // Per million commands: observed, and what the machine's interruptions alone would put there
    // (each command window is hit rate x mean window times on average).
    let above_per_m =
        1e6 * timing::count_at_least(&run.hist, ticker, timing::INTERRUPTION_NS) as f64 / run.hist.len().max(1) as f64;
    let machine_per_m = interruptions_per_s * p.mean_ns * 1e-9 * 1e6;
    println!(
        "  [{}] samples above {} µs: {:.1} per million; the machine alone predicts {:.0}/s x mean window {:.0} ns = \
         {:.1} per million",
        run.engine,
        timing::INTERRUPTION_NS / 1000,
        above_per_m,
        interruptions_per_s,
        p.mean_ns,
        machine_per_m
    );
    let reference = w.reference.trades_total;
    let expected = sable.map_or(reference, |s| s.trades);
    print!(
        "  [{}] trades {} (sable {}, reference {}); rejects/no-ops {} (reference no-ops {})",
        run.engine, run.trades, expected, reference, run.rejects, w.reference.noop_commands_timed
    );
    if run.trades == expected && run.trades == reference {
        println!(" -> trade count OK");
    } else {
        println!();
        let why = if run.engine == "matchcore" && w.reference.through_limit_orders > 0 {
            format!(
                "matchcore 0.4.0 matches a crossing limit order with no price limit, and this stream has {} \
                 orders whose quantity exceeds what the book holds within their limit, so it trades through the \
                 limit and its book diverges from then on",
                w.reference.through_limit_orders
            )
        } else if run.engine == "sable" {
            "sable differs from the reference book: check the sable adapter's id prediction (rejects) and the \
             engine's semantics"
                .into()
        } else {
            "the adapter maps an op differently or the engine's semantics differ".into()
        };
        println!("  [{}] WARNING: trade count mismatch: {why}", run.engine);
    }
    let mut line = summary_line(w.name, run.engine, run.commands, run.ops_per_s, &p);
    line.push_str(&format!(" trades={}", run.trades));
    line.push_str(&format!(" above5us_per_m={above_per_m:.1} machine_above5us_per_m={machine_per_m:.1}"));
    if let Some(s) = sable {
        line.push_str(&format!(" ratio_vs_sable={:.3}", run.ops_per_s / s.ops_per_s));
    }
    println!("{line}");
    line
}

fn build(name: &str, a: &Args) -> Result<Workload, String> {
    Ok(match name {
        "exchange_core_mix" => exchange_core_mix::generate(MixParams::exchange_core(a.commands, a.seed)),
        "deep_book" => deep_book::generate(DeepParams {
            commands: a.commands,
            seed: a.seed ^ 0xDEE9,
            resting_orders: a.deep_orders,
            span_ticks: 20_000,
        }),
        "goog_day" => goog_day::load(&a.goog, a.commands)?,
        _ => unreachable!("names come from WORKLOADS"),
    })
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.quick {
        args.commands = 100_000;
        args.deep_orders = 100_000;
        args.passes = 1;
    }
    let (workloads, engines) =
        match (pick(&args.workload, &WORKLOADS, "workload"), pick(&args.engines, &ENGINES, "engine")) {
            (Ok(w), Ok(e)) => (w, e),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("matcher: {e}");
                return ExitCode::FAILURE;
            }
        };
    if args.wait != "spin" {
        eprintln!(
            "matcher: --wait {}: only `spin` exists; this benchmark is single-threaded and never waits",
            args.wait
        );
        return ExitCode::FAILURE;
    }
    let cpus = machine::cpus();
    let pinned = if args.no_pin { "no (--no-pin)".to_string() } else { machine::pin_to_last_core() };
    let ticker = Ticker::calibrate(Duration::from_millis(200));
    let (oh50, oh99) = timing::timer_overhead(&ticker);
    let noise = timing::noise_probe(&ticker);
    let (jitter, interruptions_per_s) = (noise.percentiles, noise.interruptions_per_s());
    let ref_mode = match args.sable_ref {
        SableRef::Id => RefMode::Id,
        SableRef::Client => RefMode::Client,
    };

    println!("sable matcher benchmark (in-process, single-threaded)");
    println!("  cpus: {cpus}; benchmark thread pinned: {pinned}; load average at start: {}", machine::loadavg());
    println!(
        "  wait strategy: none involved: every engine's apply runs on this thread, no queues or hand-offs \
         (--wait {} accepted, no effect)",
        args.wait
    );
    println!(
        "  timer: {} at {:.3} ticks/ns; empty timed window p50 {:.1} ns, p99 {:.1} ns (included in the per-command \
         figures, not subtracted)",
        ticker.kind, ticker.ticks_per_ns, oh50, oh99
    );
    println!(
        "  machine noise: a fixed ~{:.0} ns loop timed 2M times: p99 {:.0} ns, p99.9 {:.0} ns, p99.99 {:.0} ns, max {:.0} ns \
         (tails above the work itself come from the machine, not from any engine)",
        jitter.p50_ns, jitter.p99_ns, jitter.p999_ns, jitter.p9999_ns, jitter.max_ns
    );
    let probe = format!(
        "{} of the {:.1}M probe windows, {:.3} s of timed work",
        noise.interrupted,
        jitter.count as f64 / 1e6,
        noise.window_ns * 1e-9
    );
    if interruptions_per_s > 0.0 {
        // 100 per million (1e-4) hits is where p99.99 goes above 5 µs whatever the engine does.
        println!(
            "  machine interruptions: {:.0} per second of timed work (each >= {} µs; {probe}): a command window of \
             mean m ns is hit {:.3} x m times per million, so a p99.99 <= {} µs needs a mean window below {:.0} ns here",
            interruptions_per_s,
            timing::INTERRUPTION_NS / 1000,
            interruptions_per_s * 1e-3,
            timing::INTERRUPTION_NS / 1000,
            1e-4 / interruptions_per_s * 1e9
        );
    } else {
        println!(
            "  machine interruptions: none of at least {} µs seen ({probe}): per-command samples above {} µs are not \
             the machine's",
            timing::INTERRUPTION_NS / 1000,
            timing::INTERRUPTION_NS / 1000
        );
    }
    println!(
        "  throughput: {} pass(es) per engine, interleaved round-robin across engines (pass 1 of every engine, then \
         pass 2, ...), each on a fresh book, Instant around each timed segment, no per-command timer, median \
         reported; commands are translated to every engine's native form before any pass",
        args.passes
    );
    println!(
        "  native command sizes (bytes, streamed from memory by the timed loop): sable {}, matchcore {}, orderbook-rs {}, \
         naive {}",
        std::mem::size_of::<engine::Command>(),
        std::mem::size_of::<matchcore::Command>(),
        std::mem::size_of::<sable_bench::engines::orderbook_rs::ObCmd>(),
        std::mem::size_of::<sable_bench::ops::Op>()
    );
    println!("  ratio_vs_sable = engine ops_per_s / sable ops_per_s (< 1: sable is faster)");

    let mut summary = Vec::new();
    for name in workloads {
        let t = Instant::now();
        let w = match build(name, &args) {
            Ok(w) => w,
            Err(e) => {
                println!("\n== workload {name}: skipped: {e}");
                continue;
            }
        };
        describe_workload(&w);
        println!("  generated in {:.2} s", t.elapsed().as_secs_f64());
        if args.generate_only {
            continue;
        }
        let sable_max_orders = args.sable_max_orders.unwrap_or(if w.name == "deep_book" {
            LIMITS.max_orders
        } else {
            SMALL_BOOK_MAX_ORDERS
        });
        let mut contenders: Vec<Box<dyn Contender + '_>> = Vec::new();
        for &engine in &engines {
            contenders.push(match engine {
                "sable" => {
                    let adapter = SableAdapter::new(w.ids, w.accounts, ref_mode, limits_for(sable_max_orders));
                    contender("sable", adapter, &w, |b: &SableBook| {
                        if w.name == "deep_book" {
                            sable_memory(b);
                        }
                    })
                }
                "sable_serial" => {
                    println!(
                        "  [sable_serial] sable without the batch lookahead (no prefetch of the next commands): what \
                         the lookahead buys"
                    );
                    let adapter =
                        SableAdapter::new(w.ids, w.accounts, ref_mode, limits_for(sable_max_orders)).lookahead(false);
                    contender("sable_serial", adapter, &w, |_| {})
                }
                "sable_2M" => {
                    if args.sable_max_orders.is_some() || w.name == "deep_book" {
                        continue;
                    }
                    println!(
                        "  [sable_2M] sable again with the deep book's capacities (max_orders 2,097,152): what sizing costs"
                    );
                    contender("sable_2M", SableAdapter::new(w.ids, w.accounts, ref_mode, LIMITS), &w, |_| {})
                }
                "matchcore" => contender(MatchcoreAdapter::NAME, MatchcoreAdapter::new(w.ids), &w, |_| {}),
                "orderbook-rs" => contender(ObAdapter::NAME, ObAdapter, &w, |_| {}),
                "naive" => contender(NaiveAdapter::NAME, NaiveAdapter, &w, |_| {}),
                _ => unreachable!("names come from ENGINES"),
            });
        }

        // Round-robin: pass p of every engine before pass p + 1 of any, so a slow drift of the
        // machine (memory bandwidth, CPU steal) lands on every engine rather than on whichever
        // ran during it.
        let passes = args.passes.max(1);
        let order = contenders.iter().map(|c| c.label()).collect::<Vec<_>>().join(" -> ");
        println!(
            "  throughput passes interleaved round-robin across engines: {passes} round(s) of {order}, each on a fresh \
             book; then one latency pass per engine"
        );
        for pass in 1..=passes {
            for c in &mut contenders {
                c.throughput_pass(pass);
            }
        }

        let mut sable: Option<Run> = None;
        for c in contenders {
            let run = c.finish();
            summary.push(report(&w, &run, sable.as_ref(), &ticker, interruptions_per_s));
            if run.engine == "sable" {
                sable = Some(run);
            }
        }
    }
    if !summary.is_empty() {
        println!("\n== summary (load average at end: {})", machine::loadavg());
        for line in summary {
            println!("{line}");
        }
    }
    ExitCode::SUCCESS
}

//! The matcher inside the real pipeline, driven without sockets (`gateway::harness`): does
//! turning the market-data feed or the metrics on slow it?
//!
//! `cargo run --release -p bench --bin stages -- [--commands N] [--rounds R] [--mode burst|sustained]`
//!
//! Each round starts a fresh pipeline (scratch data dir, `written`, 4 SBE sessions that never
//! connect, so the publisher encodes and stores every report for them) and feeds it the
//! exchange-core mix (the `matcher` benchmark's workload, orders spread over the 4 accounts)
//! straight into the sequencer. Arms, alternated round by round so a slow minute of the VM
//! hits each alike:
//! - `base`: feed off, metrics off;
//! - `feed`: the feed on (multicast on loopback, no subscriber), metrics off;
//! - `metrics`: metrics recorded and `/metrics` scraped every second, feed off.
//!
//! Modes:
//! - `burst` (default): every command is in the input ring before the matcher starts, the
//!   matcher has a core to itself (the bench pins every other thread to the first core), and the
//!   output ring holds all the burst's output, so nothing downstream can hold the matcher
//!   back. `ops_per_s` is the matcher's rate while journaler, publisher and feed or metrics
//!   run beside it: what the "matcher throughput with the feed on against off" asks on
//!   a host where the matcher has its own core.
//! - `sustained`: default ring sizes, the bench thread submitting as fast as the ring takes
//!   commands: `ops_per_s` is the pipeline's rate, bound on a 2-vCPU host by the one core the
//!   journaler, publisher, feed and submitter share.
//!
//! Per arm: the median over rounds (`ops_per_s`; `p50_ns`… are over rounds too, in ns per
//! command), the matcher's and every other stage's CPU per command, and `vs_base` ratios.
//! Nothing asserts a time.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use core_affinity::CoreId;
use engine::{AccountId, CommandBody, InstrumentId};
use gateway::config::{DurabilityPolicy, Validated, WaitKind};
use gateway::harness::Harness;
use sable_bench::e2e::appliance::{Metrics, Setup};
use sable_bench::e2e::scrape::Scraper;
use sable_bench::e2e::threads;
use sable_bench::engines::Adapter;
use sable_bench::engines::sable::{RefMode, SableAdapter};
use sable_bench::report::{Percentiles, histogram, summary_line};
use sable_bench::workloads::exchange_core_mix::{MixParams, generate};

/// Output slots per command the burst mode reserves (the mix averages under 4 with its end
/// marker; a replace that trades emits more).
const OUT_SLOTS_PER_COMMAND: usize = 8;
/// How often the bench thread looks at the stages' progress.
const POLL: Duration = Duration::from_micros(20);
/// The matcher's thread name (`gateway::pipeline`): the one thread not moved to the first core.
const MATCHER_THREAD: &str = "sable-matcher";
/// The instrument of the default configuration the workload trades.
const INSTRUMENT: InstrumentId = InstrumentId(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Burst,
    Sustained,
}

/// The matcher inside the pipeline, feed and metrics on against off.
#[derive(Parser)]
struct Args {
    /// Timed commands per round (after about 1,000 resting orders are loaded).
    #[arg(long, default_value_t = 500_000)]
    commands: u64,
    /// Rounds of every arm.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Burst (matcher-bound) or sustained (pipeline-bound).
    #[arg(long, value_enum, default_value_t = Mode::Burst)]
    mode: Mode,
    /// Every pipeline thread busy-spins instead of the default backoff (yield, then sleep).
    #[arg(long)]
    spin: bool,
}

impl Args {
    fn wait(&self) -> WaitKind {
        if self.spin { WaitKind::BusySpin } else { WaitKind::Backoff }
    }
}

#[derive(Clone, Copy)]
struct Arm {
    name: &'static str,
    feed: bool,
    metrics: Metrics,
}

const ARMS: [Arm; 3] = [
    Arm { name: "base", feed: false, metrics: Metrics::Off },
    Arm { name: "feed", feed: true, metrics: Metrics::Off },
    Arm { name: "metrics", feed: false, metrics: Metrics::Scraped },
];

/// One round of one arm.
struct Round {
    matcher_ns: u64,
    pipeline_ns: u64,
    cpu: Vec<(String, u64)>,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let cores = sable_bench::machine::cores();
    let (Some(&first), Some(&last)) = (cores.first(), cores.last()) else { return Err("no core list".into()) };
    println!("# sable stages: the matcher in the pipeline, feed / metrics on against off ({:?} mode)", args.mode);
    println!(
        "machine: {} CPUs, load average {}; matcher on core {}, every other stage and the bench thread on core {}; wait {:?}",
        sable_bench::machine::cpus(),
        sable_bench::machine::loadavg(),
        last.id,
        first.id,
        args.wait()
    );
    let commands = workload(args.commands);
    println!("workload: exchange-core mix, {} commands in all ({} timed)", commands.len(), args.commands);
    let mut results: Vec<Vec<Round>> = ARMS.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for (i, arm) in ARMS.iter().enumerate() {
            let r = run_round(&args, arm, (first, last.id), &commands)?;
            println!(
                "round {round} arm={} matcher_ops_per_s={:.0} pipeline_ops_per_s={:.0}",
                arm.name,
                per_s(commands.len(), r.matcher_ns),
                per_s(commands.len(), r.pipeline_ns)
            );
            results[i].push(r);
        }
    }
    report(&args, &results, commands.len() as u64);
    Ok(())
}

fn per_s(n: usize, ns: u64) -> f64 {
    n as f64 * 1e9 / ns.max(1) as f64
}

/// The exchange-core mix as commands for the default configuration's instrument and the
/// bench setup's accounts (1..=4).
fn workload(timed: u64) -> Vec<CommandBody> {
    let w = generate(MixParams::exchange_core(timed, 42));
    let mut adapter = SableAdapter::new(w.ids, w.accounts, RefMode::Client, engine::EngineLimits::DEFAULT);
    let account = |a: AccountId| AccountId(a.0 + 1);
    w.segments
        .iter()
        .flat_map(|s| s.ops.iter())
        .map(|op| match adapter.translate(op).body {
            CommandBody::NewOrder(o) => {
                CommandBody::NewOrder(engine::NewOrder { account: account(o.account), instrument: INSTRUMENT, ..o })
            }
            CommandBody::Cancel(c) => CommandBody::Cancel(engine::Cancel { account: account(c.account), ..c }),
            CommandBody::Replace(r) => CommandBody::Replace(engine::Replace { account: account(r.account), ..r }),
            other => other,
        })
        .collect()
}

fn setup(args: &Args, arm: &Arm, matcher_core: usize) -> Setup {
    Setup {
        durability: DurabilityPolicy::Written,
        wait: args.wait(),
        matcher_core: Some(matcher_core),
        connections: 4,
        sbe: true,
        segments: None,
        gateway_threads: 2,
        metrics: arm.metrics,
        feed: arm.feed,
    }
}

/// The round's configuration.
fn config(args: &Args, arm: &Arm, matcher_core: usize, commands: usize, dir: &Path) -> Result<Validated, String> {
    let mut c = setup(args, arm, matcher_core).config(dir);
    // The follower is a second engine replaying every command: the `matcher` bench's cost.
    c.snapshot.every_commands = 0;
    if args.mode == Mode::Burst {
        c.pipeline.input_ring_slots = (commands + 1024).next_power_of_two();
        c.pipeline.output_ring_slots = (commands * OUT_SLOTS_PER_COMMAND).next_power_of_two();
    }
    c.validate().map_err(|e| format!("configuration: {e}"))
}

/// One round, everything but the matcher on core `others`.
fn run_round(args: &Args, arm: &Arm, cores: (CoreId, usize), commands: &[CommandBody]) -> Result<Round, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cfg = config(args, arm, cores.1, commands.len(), dir.path())?;
    let h = Harness::start(cfg).map_err(|e| format!("starting the pipeline: {e}"))?;
    // `pinned` gives this thread its CPUs back after the round; the others end with it.
    sable_bench::machine::pinned(cores.0, || {
        sable_bench::machine::pin_threads_but(MATCHER_THREAD, cores.0);
        measure(args.mode, h, commands)
    })
    .ok_or("cannot pin the bench thread")?
}

fn measure(mode: Mode, mut h: Harness, commands: &[CommandBody]) -> Result<Round, String> {
    let scraper = h.admin_addr().map(Scraper::start);
    let mut last = 0;
    if mode == Mode::Burst {
        for body in commands {
            last = h.submit(*body).ok_or("the input ring did not take the burst")?;
        }
    }
    let before = threads::sample();
    let t0 = Instant::now();
    h.release();
    if mode == Mode::Sustained {
        for body in commands {
            last = h.submit(*body).ok_or_else(|| format!("pipeline failed: {:?}", h.failure()))?;
        }
    }
    let matcher_ns = wait_for(&h, last, Harness::applied)?.duration_since(t0).as_nanos() as u64;
    let pipeline_ns = wait_for(&h, last, Harness::published)?.duration_since(t0).as_nanos() as u64;
    let cpu = threads::appliance_cpu_ns(&before, &threads::sample());
    if let Some(s) = scraper {
        s.finish()?;
    }
    h.stop().map_err(|e| format!("stopping: {e}"))?;
    Ok(Round { matcher_ns, pipeline_ns, cpu })
}

/// When `progress` reached `last`.
fn wait_for(h: &Harness, last: u64, progress: fn(&Harness) -> u64) -> Result<Instant, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress(h) < last {
        if let Some(f) = h.failure() {
            return Err(format!("pipeline failed: {f}"));
        }
        if Instant::now() > deadline {
            return Err("the pipeline did not finish within 120 s".into());
        }
        std::thread::sleep(POLL);
    }
    Ok(Instant::now())
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn report(args: &Args, results: &[Vec<Round>], commands: u64) {
    let workload = match args.mode {
        Mode::Burst => "stages_burst",
        Mode::Sustained => "stages_sustained",
    };
    let medians: Vec<(u64, u64)> = results
        .iter()
        .map(|rounds| {
            (
                median(rounds.iter().map(|r| r.matcher_ns).collect()),
                median(rounds.iter().map(|r| r.pipeline_ns).collect()),
            )
        })
        .collect();
    for ((arm, rounds), (m_ns, p_ns)) in ARMS.iter().zip(results).zip(&medians) {
        let mut h = histogram();
        for r in rounds {
            h.saturating_record(r.matcher_ns / commands.max(1));
        }
        let cpu_rounds: Vec<(String, u64)> = cpu_medians(rounds);
        println!(
            "{} pipeline_ops_per_s={:.0} matcher_vs_base={:.3} pipeline_vs_base={:.3} {}",
            summary_line(workload, arm.name, commands, per_s(commands as usize, *m_ns), &Percentiles::from_raw(&h)),
            per_s(commands as usize, *p_ns),
            medians[0].0 as f64 / *m_ns as f64,
            medians[0].1 as f64 / *p_ns as f64,
            threads::per_order_fields(&cpu_rounds, 0, commands).replace("per_order", "per_command")
        );
    }
}

/// Each thread group's median CPU over the rounds.
fn cpu_medians(rounds: &[Round]) -> Vec<(String, u64)> {
    let mut groups: Vec<String> = rounds.iter().flat_map(|r| r.cpu.iter().map(|(g, _)| g.clone())).collect();
    groups.sort();
    groups.dedup();
    groups
        .into_iter()
        .map(|g| {
            let v = rounds.iter().map(|r| r.cpu.iter().find(|(n, _)| *n == g).map_or(0, |(_, ns)| *ns)).collect();
            (g, median(v))
        })
        .collect()
}

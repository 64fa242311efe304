//! End-to-end latency benchmark: order → acknowledgement through the whole appliance over
//! loopback TCP, SBE and FIX 4.4 side by side, next to the raw TCP round trip that bounds them.
//!
//! `cargo run --release -p bench --bin e2e -- [--quick] [--rate N]... [--connections N]
//! [--protocol sbe|fix|both] [--durability memory|written|fsync] [--seconds S]
//! [--wait backoff|yield|sleep|spin] [--rollovers] [--metrics off|on|scraped|windows|windows-control]...
//! [--feed off|on]...
//! [--rounds N]`
//!
//! 1. The floors: a blocking TCP echo of one frame the size of an SBE NewOrderSingle
//!    (`workload=tcp_floor`) and, when FIX runs, another of the size of the FIX NewOrderSingle
//!    (`workload=tcp_floor_fix`, about twice the bytes), so each protocol is compared with a
//!    floor of its own message size.
//! 2. For each offered rate, for each protocol (SBE first, then FIX): a fresh appliance,
//!    started in-process with `gateway::pipeline::start` (the same function `sable run`
//!    calls) on a scratch data directory, with one account, one SBE session and one FIX session
//!    per connection; N sessions of the protocol log in (SBE: Negotiate + Establish; FIX: Logon
//!    with 141=Y); the open-loop generator (`sable_bench::e2e::load`, the same code for both
//!    protocols) offers `rate * seconds` orders, the same flow over the same number of
//!    connections, on a fixed schedule and counts every acknowledgement; the appliance shuts
//!    down cleanly. Latency is from the intended send time (coordinated omission corrected);
//!    the uncorrected figure and the generator's send lag are printed too. The FIX sender
//!    keeps a MsgSeqNum per connection and stamps SendingTime when it sends; the FIX receiver
//!    frames and parses every message (ExecutionReport 150=0/8/F/4 by ClOrdID, 35=j by 379),
//!    and a Logout, a session Reject or a garbled message is an error.
//! 3. With `--protocol both`, a `fix_vs_sbe` line per rate: the FIX minus SBE p50 and p99 at
//!    the same offered rate, and whether the issue target (FIX p50 within 1.5 µs of SBE's) is
//!    met. Printed, not asserted.
//!
//! 4. With `--rollovers` (a soak, 30 s unless `--seconds`/`--duration-s` says otherwise): small
//!    journal and session-store segments (`appliance::SOAK_SEGMENTS`), the segment files the
//!    appliance creates during the run counted (`sable_bench::e2e::files`), and a `soak:` line:
//!    rollovers, p50/p99/p99.9/max beside the floor's p50/p99 and their ratios, lost orders,
//!    and the target (100k/s, `written`, 30 s: p50 <= 2x floor, p99 <= 3x floor,
//!    max <= 5 ms, nothing lost).
//!
//! Every run's summary line carries `acked_per_s`, `lost` and, per appliance thread group
//! (`sable-<group>…`), `cpu_ns_per_order_<group>`: that group's on-CPU ns over the run divided
//! by orders acknowledged, plus `cpu_ns_per_order_gateway_total` (every group but the journal,
//! matcher, follower and snapshot helpers) and `cpu_ns_per_order_exited` (threads that ended
//! during the run).
//!
//! 5. With `--metrics` (repeatable): the metrics arms, each on a fresh appliance: `off`
//!    (`[admin] metrics = false`), `on` (the default configuration) and `scraped` (the admin
//!    port on, `/metrics` fetched every second during the load; a
//!    `workload=metrics_scrape_<rate>_<protocol>` line gives the scrapes' own latency). The
//!    engine field is `sable_metrics_off` / `sable_metrics_scraped` for those arms. `windows`
//!    compares the two in one appliance instead (`sable_bench::e2e::windows`): windows of
//!    `--window-ms` (1 ms by default) alternating off and on (A B B A; `/metrics` scraped once a
//!    second at the start of an on window), each order counted in the arm of the window it
//!    was due in, and a `metrics_windows` line with the arms' p50/p99/p99.9
//!    ratios and the target (p99 within 2 %); `windows-control` switches the same way
//!    with both arms off, the method's own noise. Engines `sable_metrics_windows_off` /
//!    `_scraped`, `_control_a` / `_b`.
//!
//! 6. With `--feed off --feed on`: the market-data feed's arms, each on a fresh appliance (`on`:
//!    `[feed] enabled`, multicast on loopback; engine `sable_feed_on`; a subscriber thread stamps
//!    every Add Order and `workload=e2e_feed_<rate>_<protocol> engine=order_to_itch` gives order
//!    (intended send time) → its Add Order at the subscriber beside the TCP floor), and a
//!    `feed_vs_off` line per rate: the matcher's on-CPU ns per order in each arm and their ratio
//!    (off / on: the matcher throughput kept with the feed on, the target ≥ 0.98), beside the
//!    acknowledgements per second of each arm and their ratio (offer more than the appliance
//!    takes to compare capacities; on a 2-core host the feed's thread competes for the cores).
//!
//! Summary lines carry `protocol=sbe|fix`; workloads are `e2e_<durability>_<rate>_<protocol>`.
//! The exit status is non-zero if any run lost or duplicated an acknowledgement or had an error.
//!
//! Default: 10,000 and 100,000 orders/s, `written`, 2 connections, 5 s each, both protocols.
//! `--quick`: 10,000/s for 2 s. The machine is shared (2 cores for the appliance's threads and
//! the generator's two), so per-thread CPU is printed after every run.

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gateway::config::{DurabilityPolicy, WaitKind};
use gateway::pipeline::Appliance;
use hdrhistogram::Histogram;
use sable_bench::e2e::appliance::{self, MAX_CONNECTIONS, Metrics, SOAK_SEGMENTS, Setup};
use sable_bench::e2e::files::{FileWatch, NewFiles};
use sable_bench::e2e::load::{self, LoadResult, LoadSpec};
use sable_bench::e2e::threads::{self, ThreadCpu};
use sable_bench::e2e::windows::{self, Switched, Switcher};
use sable_bench::e2e::wire::{self, FixAcks, FixOrders, SbeAcks, SbeOrders};
use sable_bench::e2e::{fix_login, floor, flow, login};
use sable_bench::machine;
use sable_bench::report::{Percentiles, summary_line};

/// Durability policy on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Durability {
    /// Acknowledge when matched.
    Memory,
    /// Acknowledge when in the journal's page cache.
    Written,
    /// Acknowledge when on stable storage.
    Fsync,
    /// Acknowledge when in this journal's and a standby's page cache (standby in-process).
    Replicated,
}

impl Durability {
    fn policy(self) -> DurabilityPolicy {
        match self {
            Durability::Memory => DurabilityPolicy::Memory,
            Durability::Written => DurabilityPolicy::Written,
            Durability::Fsync => DurabilityPolicy::Fsync,
            Durability::Replicated => DurabilityPolicy::Replicated,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Durability::Memory => "memory",
            Durability::Written => "written",
            Durability::Fsync => "fsync",
            Durability::Replicated => "replicated",
        }
    }
}

/// Which order-entry protocols a run drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// SBE over FIXP only.
    Sbe,
    /// FIX 4.4 tag=value only.
    Fix,
    /// SBE, then FIX, at every rate, and the comparison.
    Both,
}

impl ProtocolArg {
    fn protocols(self) -> &'static [Protocol] {
        match self {
            ProtocolArg::Sbe => &[Protocol::Sbe],
            ProtocolArg::Fix => &[Protocol::Fix],
            ProtocolArg::Both => &[Protocol::Sbe, Protocol::Fix],
        }
    }
}

/// One order-entry protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Sbe,
    Fix,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Sbe => "sbe",
            Protocol::Fix => "fix",
        }
    }

    /// Bytes of one order on the wire (the FIX one varies by a few digits).
    fn order_bytes(self) -> usize {
        match self {
            Protocol::Sbe => floor::FRAME_BYTES,
            Protocol::Fix => wire::fix_order_bytes_typical(),
        }
    }
}

/// Offered rate the latency targets are set for.
const TARGET_RATE_PER_S: u64 = 100_000;

/// Issue target at [`TARGET_RATE_PER_S`], `written`: corrected p50 at most this times the floor's.
const TARGET_P50_OVER_FLOOR: f64 = 2.0;

/// Issue target at [`TARGET_RATE_PER_S`], `written`: corrected p99 at most this times the floor's.
const TARGET_P99_OVER_FLOOR: f64 = 3.0;

/// Issue target of the soak: no order→ack above this, ns.
const SOAK_MAX_TARGET_NS: f64 = 5_000_000.0;

/// Duration of the soak the target is set for, and the default of `--rollovers`.
const SOAK_TARGET_SECONDS: f64 = 30.0;

/// Rollovers of the journal and of the session stores the soak must cross.
const SOAK_MIN_ROLLOVERS: u64 = 3;

/// Issue target: FIX p50 order→ack within this many ns of SBE's at the same offered rate.
const FIX_P50_TARGET_DELTA_NS: f64 = 1_500.0;

/// Wait strategy of the appliance's idle threads on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WaitArg {
    /// Yield, then sleep (the default configuration's).
    Backoff,
    /// `sched_yield` in a loop.
    Yield,
    /// Sleep between checks.
    Sleep,
    /// Busy-spin with the matcher pinned to the last core (refused without two cores to pin).
    Spin,
}

/// The metrics arms on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MetricsArg {
    /// `[admin] metrics = false`.
    Off,
    /// Recorded, not scraped (the default configuration).
    On,
    /// Recorded and `/metrics` scraped every second (prints the scrapes' own latency).
    Scraped,
    /// One appliance, windows (`--window-ms`) alternating off and on (A B B A), each order
    /// counted in its window's arm; a `metrics_windows` line compares the two.
    Windows,
    /// The control of `windows`: the same switching with both arms off (the method's noise).
    WindowsControl,
}

impl MetricsArg {
    fn mode(self) -> Metrics {
        match self {
            MetricsArg::Off => Metrics::Off,
            MetricsArg::On => Metrics::On,
            MetricsArg::Scraped => Metrics::Scraped,
            MetricsArg::Windows => Metrics::Windows,
            MetricsArg::WindowsControl => Metrics::WindowsControl,
        }
    }
}

/// sable's end-to-end latency benchmark (appliance in-process, SBE and FIX over loopback TCP).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Smoke run: 10,000 orders/s for 2 s.
    #[arg(long)]
    quick: bool,
    /// Offered orders per second over all connections; repeat for several runs
    /// (default 10000 and 100000; --quick 10000).
    #[arg(long)]
    rate: Vec<u64>,
    /// Order-entry protocols to drive: each rate runs SBE, then FIX, on fresh appliances.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Both)]
    protocol: ProtocolArg,
    /// Client connections, each its own session and account (1..=64).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// When the appliance may acknowledge; repeat to compare policies in one run (`replicated`
    /// starts a standby in this process).
    #[arg(long, value_enum, default_values_t = [Durability::Written])]
    durability: Vec<Durability>,
    /// Seconds of offered load per rate (default 5; --quick 2; --rollovers 30).
    #[arg(long, alias = "duration-s")]
    seconds: Option<f64>,
    /// Soak across rollovers: small journal and session-store segments, the segment files
    /// created during the run counted, and a `soak:` line with the target.
    #[arg(long)]
    rollovers: bool,
    /// How the appliance's idle threads wait.
    #[arg(long, value_enum, default_value_t = WaitArg::Backoff)]
    wait: WaitArg,
    /// Parent of the scratch data directory (its file system is what `fsync` measures).
    /// Default: the system temp directory.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Round trips of the TCP floor (default 100,000; --quick 20,000).
    #[arg(long)]
    floor_round_trips: Option<u64>,
    /// `pipeline.gateway_threads` (1: one gateway thread; 2: the publisher on its own); repeat
    /// to compare layouts in one run (each rate and protocol on a fresh appliance per value).
    #[arg(long, default_values_t = [1u8])]
    gateway_threads: Vec<u8>,
    /// Metrics arm: `off`, `on` (recorded, the default configuration) or `scraped` (recorded
    /// and `/metrics` scraped every second); repeat to compare arms in one run, e.g.
    /// `--metrics off --metrics scraped` (each on a fresh appliance).
    #[arg(long, value_enum, default_values_t = [MetricsArg::On])]
    metrics: Vec<MetricsArg>,
    /// Market-data feed arm: `off` (the default configuration) or `on`; `--feed off --feed on`
    /// runs both on fresh appliances and prints a `feed_vs_off` line per rate: the matcher's
    /// CPU per order and the acknowledgements per second with the feed on against off.
    #[arg(long, value_enum, default_values_t = [FeedArg::Off])]
    feed: Vec<FeedArg>,
    /// Rounds of every arm, alternated (arm 1, arm 2, …, then again): with more than one, a
    /// `rounds:` line per arm and protocol gives the median p50 and p99 over the rounds and
    /// their ratio to the first arm's (a single run's p99 on a shared VM moves by tens of %).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Window length of the `windows` metrics arms, ms (`/metrics` scraped once a second, at
    /// the start of an on window): windows shorter than the machine's stalls put each stall on
    /// both arms alike.
    #[arg(long, default_value_t = windows::WINDOW_MS)]
    window_ms: u64,
}

/// The feed arms on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FeedArg {
    /// `[feed] enabled = false` (the default configuration).
    Off,
    /// `[feed] enabled = true`, multicast on loopback.
    On,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("e2e: orders were lost, duplicated or not all sent, or a connection failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command-line name of a policy the benchmark configured.
fn durability_of(policy: DurabilityPolicy) -> Durability {
    match policy {
        DurabilityPolicy::Memory => Durability::Memory,
        DurabilityPolicy::Written => Durability::Written,
        DurabilityPolicy::Fsync | DurabilityPolicy::ReplicatedFsync => Durability::Fsync,
        DurabilityPolicy::Replicated => Durability::Replicated,
    }
}

/// Percentiles of a histogram in ns.
fn pct(h: &Histogram<u64>) -> Percentiles {
    Percentiles::from_raw(h)
}

/// The replication lag of a run with a standby (journaler wrote a record → the standby
/// reported it written: one TCP round trip plus the standby's append), beside the round-trip
/// floor of the same run; target: p99 ≤ floor p99 + 20 µs.
fn report_replication_lag(lag: &hdrhistogram::Histogram<u64>, spec: LoadSpec, protocol: Protocol, floor: &Percentiles) {
    let p = Percentiles::from_raw(lag);
    let workload = format!("replication_lag_{}_{}", spec.rate_per_s, protocol.name());
    println!("{} {}", summary_line(&workload, "sable", p.count, 0.0, &p), tail_fields(&p));
    let (target, reached) = (floor.p99_ns + 20_000.0, p.p99_ns);
    println!(
        "target: replication lag p99 {:.1} µs vs floor p99 {:.1} µs + 20 µs = {:.1} µs: {}",
        reached / 1e3,
        floor.p99_ns / 1e3,
        target / 1e3,
        if reached <= target { "met" } else { "missed" }
    );
}

fn tail_fields(p: &Percentiles) -> String {
    format!("p90_ns={:.0} p999_ns={:.0}", p.p90_ns, p.p999_ns)
}

fn run(args: Args) -> Result<bool, String> {
    let rates = if !args.rate.is_empty() {
        args.rate.clone()
    } else if args.quick {
        vec![10_000]
    } else {
        vec![10_000, 100_000]
    };
    if rates.contains(&0) {
        return Err("--rate must be positive".into());
    }
    let default_seconds = if args.rollovers {
        SOAK_TARGET_SECONDS
    } else if args.quick {
        2.0
    } else {
        5.0
    };
    let seconds = args.seconds.unwrap_or(default_seconds);
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err("--seconds must be in (0, 3600]".into());
    }
    if !(1..=MAX_CONNECTIONS).contains(&args.connections) {
        return Err(format!("--connections must be in 1..={MAX_CONNECTIONS}"));
    }
    let (wait, matcher_core) = match args.wait {
        WaitArg::Backoff => (WaitKind::Backoff, None),
        WaitArg::Yield => (WaitKind::Yield, None),
        WaitArg::Sleep => (WaitKind::Sleep, None),
        WaitArg::Spin => {
            let cores = machine::cores();
            if cores.len() < 2 {
                return Err(format!("--wait spin needs two cores to pin to; this process may use {}", cores.len()));
            }
            (WaitKind::BusySpin, cores.last().map(|c| c.id))
        }
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let floor_round_trips = args.floor_round_trips.unwrap_or(if args.quick { 20_000 } else { 100_000 });

    println!("# sable e2e benchmark");
    println!(
        "machine: {} CPUs, load average {}, clock source {}",
        machine::cpus(),
        machine::loadavg(),
        sable_bench::e2e::clock_source()
    );
    println!("appliance: in-process (gateway::pipeline::start), not a child `sable` process");
    println!(
        "appliance wait strategy: {wait:?}{}",
        matcher_core.map_or(String::new(), |c| format!(", matcher pinned to core {c}"))
    );
    println!("data dir parent: {} ({})", parent.display(), machine::filesystem_of(&parent));
    println!(
        "generator: 1 sender thread (sleeps until shortly before the next send, then yield-spins; batches what is due), \
         1 receiver thread (mio, edge-triggered); flow: per connection 8 resting GTC of 1 lot, 2 crossing IOC of 4 lots per {} orders",
        flow::CYCLE
    );
    let protocols = args.protocol.protocols();
    println!(
        "protocols: {} (each on a fresh appliance, same flow, same connections); order bytes: {}",
        protocols.iter().map(|p| p.name()).collect::<Vec<_>>().join(", then "),
        protocols.iter().map(|p| format!("{} {}", p.name(), p.order_bytes())).collect::<Vec<_>>().join(", ")
    );
    println!(
        "cpu_ns_per_order_<group>: on-CPU ns (the OS's per-thread count, /proc/self/task/*/schedstat) of the appliance's \
         threads named sable-<group>[-…], from the first send to the end of the drain (what the wait strategy burns between orders included), \
         divided by orders acknowledged; \
         cpu_ns_per_order_gateway_total sums every group but journal, matcher, follower and snapshot helpers; \
         cpu_ns_per_order_exited is threads that ended within the run (the process's CPU, /proc/self/stat, \
         10 ms resolution, minus live and generator threads)"
    );
    if args.rollovers {
        println!(
            "rollovers: journal segments of {} KiB, store segments of {} KiB with {} KiB retained per session; \
             journal_segments_created counts new journal/*.seg files (one per journal rollover), \
             store_files_created new files under sessions/, recursively (one per store rollover), polled every {} ms",
            SOAK_SEGMENTS.journal_segment_len_bytes >> 10,
            SOAK_SEGMENTS.store_segment_bytes >> 10,
            SOAK_SEGMENTS.store_retained_bytes >> 10,
            sable_bench::e2e::files::POLL_INTERVAL.as_millis()
        );
    }
    println!();

    // 1. The floors: one per protocol, each echoing a frame of that protocol's order size.
    let mut floors = Vec::with_capacity(protocols.len());
    for &p in protocols {
        let bytes = p.order_bytes();
        let floor_h = floor::measure(bytes, floor_round_trips)?;
        let fl = pct(&floor_h);
        let workload = match p {
            Protocol::Sbe => "tcp_floor",
            Protocol::Fix => "tcp_floor_fix",
        };
        println!(
            "{workload}: {bytes} B each way (a {} order), {} round trips, blocking, one connection",
            p.name(),
            fl.count
        );
        println!("  round trip ns: {}", fl.describe());
        let floor_ops = if fl.mean_ns > 0.0 { 1e9 / fl.mean_ns } else { 0.0 };
        println!("{} bytes={bytes} {}", summary_line(workload, "loopback", fl.count, floor_ops, &fl), tail_fields(&fl));
        floors.push(fl);
    }
    let fsync_p50 = if args.durability.contains(&Durability::Fsync) {
        std::fs::create_dir_all(&parent).map_err(|e| e.to_string())?;
        let h = floor::fdatasync(&parent, 200)?;
        let p = pct(&h);
        println!("fdatasync of 4 KiB in the data dir's file system, ns: {}", p.describe());
        Some(p.p50_ns)
    } else {
        None
    };
    println!();

    // 2. One fresh appliance per offered rate and protocol; 3. the comparison.
    let mut all_ok = true;
    let mut comparisons = Vec::new();
    for &rate in &rates {
        let orders = ((rate as f64) * seconds).round().max(1.0) as u64;
        let window_ns = args.window_ms.saturating_mul(1_000_000).max(1);
        let spec = LoadSpec { rate_per_s: rate, orders, connections: args.connections, window_ns };
        let mut feed_arms: Vec<(bool, ArmCost)> = Vec::new();
        let mut rounds: Vec<RoundResult> = Vec::new();
        let mut pooled: Vec<(usize, WindowArms)> = Vec::new();
        for (arm_index, (&durability, &gateway_threads, metrics, feed)) in
            (0..args.rounds).flat_map(|_| arms(&args).enumerate())
        {
            let setup = Setup {
                durability: durability.policy(),
                wait,
                matcher_core,
                connections: args.connections,
                sbe: true,
                segments: args.rollovers.then_some(SOAK_SEGMENTS),
                gateway_threads,
                metrics,
                feed,
            };
            let mut runs = Vec::with_capacity(protocols.len());
            for (&p, fl) in protocols.iter().zip(&floors) {
                let RunOutcome { ok, latency, cost, windows } =
                    run_rate(&setup, p, spec, seconds, &parent, fl, fsync_p50)?;
                all_ok &= ok;
                if let Some(w) = windows {
                    pool(&mut pooled, arm_index, w);
                }
                runs.push((ok, latency));
                rounds.push(RoundResult { arm: arm_index, name: arm_name(&setup), protocol: p, ok, latency });
                if p == Protocol::Sbe && ok {
                    feed_arms.push((feed, cost));
                }
                println!();
            }
            if let [(sbe_ok, sbe), (fix_ok, fix)] = runs.as_slice() {
                let line = compare(rate, sbe, fix, *sbe_ok && *fix_ok, &floors[0], &floors[1]);
                println!("{line}");
                println!();
                comparisons.push(line);
            }
        }
        if let Some(line) = feed_vs_off(rate, &feed_arms) {
            println!("{line}\n");
        }
        if args.rounds > 1 {
            for line in rounds_lines(rate, &rounds) {
                println!("{line}");
            }
            for line in pooled.iter().flat_map(|(_, w)| w.lines()) {
                println!("all rounds: {line}");
            }
            println!();
        }
    }
    if comparisons.len() > 1 {
        println!("# FIX vs SBE");
        for line in &comparisons {
            println!("{line}");
        }
    }
    Ok(all_ok)
}

/// The arms of a run: every combination of the repeated options, in command-line order.
fn arms(args: &Args) -> impl Iterator<Item = (&Durability, &u8, Metrics, bool)> {
    let arms = args.durability.iter().flat_map(|d| args.gateway_threads.iter().map(move |t| (d, t)));
    let arms = arms.flat_map(|(d, t)| args.metrics.iter().map(move |m| (d, t, m.mode())));
    arms.flat_map(|(d, t, m)| args.feed.iter().map(move |f| (d, t, m, *f == FeedArg::On)))
}

/// One arm's run in one round.
struct RoundResult {
    arm: usize,
    name: String,
    protocol: Protocol,
    ok: bool,
    latency: Percentiles,
}

/// Adds a windowed run's arms to those of the same arm and protocol in earlier rounds.
fn pool(pooled: &mut Vec<(usize, WindowArms)>, arm: usize, w: WindowArms) {
    match pooled.iter_mut().find(|(a, p)| *a == arm && p.workload == w.workload) {
        Some((_, p)) => p.add(&w.latency, w.windows),
        None => pooled.push((arm, w)),
    }
}

/// An arm's name in the `rounds:` lines.
fn arm_name(setup: &Setup) -> String {
    format!(
        "{}_gw{}_{}_feed_{}",
        durability_of(setup.durability).name(),
        setup.gateway_threads,
        setup.metrics.name(),
        if setup.feed { "on" } else { "off" }
    )
}

/// Per arm and protocol: the median p50 and p99 over the rounds (clean runs only) and their
/// ratio to the first arm's.
fn rounds_lines(rate: u64, rounds: &[RoundResult]) -> Vec<String> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let medians = |arm: usize, protocol: Protocol| {
        let runs: Vec<&RoundResult> =
            rounds.iter().filter(|r| r.arm == arm && r.protocol == protocol && r.ok).collect();
        let p50 = median(runs.iter().map(|r| r.latency.p50_ns).collect());
        (runs.len(), p50, median(runs.iter().map(|r| r.latency.p99_ns).collect()))
    };
    let arms = rounds.iter().map(|r| r.arm).max().map_or(0, |m| m + 1);
    let mut lines = Vec::new();
    for protocol in [Protocol::Sbe, Protocol::Fix] {
        let (_, base_p50, base_p99) = medians(0, protocol);
        for arm in 0..arms {
            let Some(name) = rounds.iter().find(|r| r.arm == arm && r.protocol == protocol).map(|r| &r.name) else {
                continue;
            };
            let (n, p50, p99) = medians(arm, protocol);
            lines.push(format!(
                "rounds: offered_per_s={rate} protocol={} arm={name} clean_rounds={n} median_p50_ns={p50:.0} \
                 median_p99_ns={p99:.0} p50_vs_first={:.3} p99_vs_first={:.3}",
                protocol.name(),
                p50 / base_p50.max(1.0),
                p99 / base_p99.max(1.0)
            ));
        }
    }
    lines
}

/// What an arm cost: the matcher's on-CPU ns per acknowledged order and acknowledgements/s.
#[derive(Clone, Copy, Debug, Default)]
struct ArmCost {
    matcher_cpu_ns_per_order: f64,
    acked_per_s: f64,
}

/// The `feed_vs_off` line of one rate (clean SBE runs of both arms): the matcher's throughput
/// with the feed on against off, as the ratio of its CPU per order (off / on: the share of its
/// throughput it keeps, the target ≥ 0.98) and of the acknowledgements per second.
fn feed_vs_off(rate: u64, arms: &[(bool, ArmCost)]) -> Option<String> {
    let off = arms.iter().find(|(on, _)| !on)?.1;
    let on = arms.iter().find(|(on, _)| *on)?.1;
    let ratio = off.matcher_cpu_ns_per_order / on.matcher_cpu_ns_per_order.max(f64::MIN_POSITIVE);
    Some(format!(
        "feed_vs_off: offered_per_s={rate} matcher_cpu_ns_per_order_off={:.0} matcher_cpu_ns_per_order_on={:.0} \
         matcher_throughput_ratio={ratio:.3} acked_per_s_off={:.0} acked_per_s_on={:.0} acked_ratio={:.3} target (>= 0.98): {}",
        off.matcher_cpu_ns_per_order,
        on.matcher_cpu_ns_per_order,
        off.acked_per_s,
        on.acked_per_s,
        on.acked_per_s / off.acked_per_s.max(f64::MIN_POSITIVE),
        verdict(ratio >= 0.98)
    ))
}

/// The `fix_vs_sbe` line of one rate: FIX minus SBE, corrected latency, and the issue target.
/// A comparison with a run that lost orders or failed is not a comparison: NOT met.
fn compare(
    rate: u64,
    sbe: &Percentiles,
    fix: &Percentiles,
    clean: bool,
    sbe_floor: &Percentiles,
    fix_floor: &Percentiles,
) -> String {
    let p50_delta = fix.p50_ns - sbe.p50_ns;
    let met = clean && p50_delta <= FIX_P50_TARGET_DELTA_NS;
    format!(
        "fix_vs_sbe: offered_per_s={rate} p50_delta_ns={p50_delta:.0} p99_delta_ns={:.0} floor_p50_delta_ns={:.0} \
         target (p50 within {FIX_P50_TARGET_DELTA_NS:.0} ns): {}{}",
        fix.p99_ns - sbe.p99_ns,
        fix_floor.p50_ns - sbe_floor.p50_ns,
        if met { "met" } else { "NOT met" },
        if clean { "" } else { " (a run lost orders or failed: no comparison)" }
    )
}

/// What one run gave the comparisons after it.
struct RunOutcome {
    /// No order lost or duplicated, no error.
    ok: bool,
    /// Corrected latency.
    latency: Percentiles,
    /// The matcher's CPU and the acknowledgement rate.
    cost: ArmCost,
    /// A windowed metrics run's arms.
    windows: Option<WindowArms>,
}

/// One run of one protocol at one rate on a fresh appliance.
#[allow(clippy::too_many_arguments)]
fn run_rate(
    setup: &Setup,
    protocol: Protocol,
    spec: LoadSpec,
    seconds: f64,
    parent: &std::path::Path,
    floor: &Percentiles,
    fsync_p50: Option<f64>,
) -> Result<RunOutcome, String> {
    println!(
        "## e2e_{}_{}_{}: {} orders offered at {}/s over {} {} connections",
        durability_of(setup.durability).name(),
        spec.rate_per_s,
        protocol.name(),
        spec.orders,
        spec.rate_per_s,
        spec.connections,
        match protocol {
            Protocol::Sbe => "SBE (FIXP)",
            Protocol::Fix => "FIX 4.4",
        }
    );
    let setup = &Setup { sbe: protocol == Protocol::Sbe, ..*setup };
    println!("config: {}", setup.describe());
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("sable-e2e-")
        .tempdir_in(parent)
        .map_err(|e| format!("scratch dir in {}: {e}", parent.display()))?;
    let (app, standby) = setup.start(scratch.path())?;
    let streams = connect(&app, protocol, spec.connections)?;
    // The run may take twice its nominal time before the sender gives up on the schedule.
    let time_bound = Duration::from_secs_f64(seconds * 2.0 + 5.0);
    let watch = setup.segments.map(|_| FileWatch::start(scratch.path())).transpose()?;
    let windowed = matches!(setup.metrics, Metrics::Windows | Metrics::WindowsControl);
    let spec = LoadSpec { window_ns: if windowed { spec.window_ns } else { 0 }, ..spec };
    let scraper = app.admin_addr().filter(|_| !windowed).map(sable_bench::e2e::scrape::Scraper::start);
    let (switcher, on_window) = match app.admin_addr().filter(|_| windowed) {
        Some(admin) => {
            let control = setup.metrics == Metrics::WindowsControl;
            let window = Duration::from_nanos(spec.window_ns);
            let (s, on_window) = Switcher::start(app.metrics_switch(), admin, window, control)?;
            (Some(s), Some(on_window))
        }
        None => (None, None),
    };
    let feed = app.feed_addrs().map(|(group, _)| group).filter(|_| setup.feed);
    let m = measure(protocol, spec, streams, (feed, on_window), time_bound)?;
    let scrapes = scraper.map(sable_bench::e2e::scrape::Scraper::finish).transpose()?;
    let switched = switcher.map(Switcher::finish).transpose()?;
    let new_files = watch.map(FileWatch::finish);
    let lag = app.replication_lag();
    let stopped = app.shutdown().map_err(|e| format!("appliance shutdown: {e}"))?;
    drop(standby);
    drop(scratch);

    let mut engine =
        if setup.gateway_threads == 1 { "sable".to_string() } else { format!("sable_gw{}", setup.gateway_threads) };
    if setup.metrics != Metrics::On {
        engine = format!("{engine}_{}", setup.metrics.name());
    }
    if setup.feed {
        engine = format!("{engine}_feed_on");
    }
    if let Some(s) = &scrapes {
        println!("{}", s.summary(spec.rate_per_s, protocol.name(), &engine));
    }
    let dur = durability_of(setup.durability);
    let ok = report_rate(dur, protocol, &engine, &m, spec, floor, fsync_p50);
    let windows = switched.map(|s| {
        let mut arms = WindowArms::new(dur, protocol, spec.rate_per_s, setup.metrics == Metrics::WindowsControl);
        arms.add(&m.load.windows, s.windows);
        report_windows(&arms, &s, spec.rate_per_s, protocol);
        arms
    });
    if let Some(files) = new_files {
        report_soak(dur, protocol, &m.load, spec, seconds, floor, files);
    }
    if let Some(lag) = lag {
        report_replication_lag(&lag, spec, protocol, floor);
    }
    if let Some((h, matched)) = &m.load.order_to_itch {
        report_order_to_itch(h, *matched, spec, protocol, floor);
    }
    println!("appliance: shut down cleanly at seq {} (state_hash {:016x})", stopped.last_seq, stopped.state_hash);
    report_cpu(&m);
    Ok(RunOutcome { ok, latency: pct(&m.load.corrected), cost: arm_cost(&m), windows })
}

/// Each arm's latency in a windowed metrics run (the orders due in its windows), summed over
/// the rounds of one arm and protocol.
struct WindowArms {
    workload: String,
    control: bool,
    latency: [Histogram<u64>; 2],
    windows: [u64; 2],
    runs: u32,
}

impl WindowArms {
    fn new(dur: Durability, protocol: Protocol, rate: u64, control: bool) -> WindowArms {
        WindowArms {
            workload: format!("e2e_{}_{}_{}", dur.name(), rate, protocol.name()),
            control,
            latency: [sable_bench::report::histogram(), sable_bench::report::histogram()],
            windows: [0; 2],
            runs: 0,
        }
    }

    fn add(&mut self, latency: &[Histogram<u64>; 2], windows: [u64; 2]) {
        for i in 0..2 {
            // Both come from `report::histogram`, so the bounds agree and adding cannot fail.
            let _ = self.latency[i].add(&latency[i]);
            self.windows[i] += windows[i];
        }
        self.runs += 1;
    }

    /// Each arm's summary line, then the `metrics_windows` line: the ratios of arm B (scraped)
    /// to arm A (off) and the target, the p99 within 2 %.
    fn lines(&self) -> Vec<String> {
        let names = if self.control {
            ["sable_metrics_control_a", "sable_metrics_control_b"]
        } else {
            ["sable_metrics_windows_off", "sable_metrics_windows_scraped"]
        };
        let [a, b] = [pct(&self.latency[0]), pct(&self.latency[1])];
        let mut lines: Vec<String> = [&a, &b]
            .into_iter()
            .zip(names)
            .zip(self.windows)
            .map(|((p, name), w)| {
                format!(
                    "{} {} windows={w} runs={}",
                    summary_line(&self.workload, name, p.count, 0.0, p),
                    tail_fields(p),
                    self.runs
                )
            })
            .collect();
        let p99_ratio = b.p99_ns / a.p99_ns.max(1.0);
        let verdict = if self.control {
            "(the control: identical arms, the method's noise)".to_string()
        } else {
            format!("target (p99 within 2 %): {}", verdict(p99_ratio <= 1.02))
        };
        lines.push(format!(
            "metrics_windows: workload={} arms={} runs={} p50_ratio={:.3} p99_ratio={p99_ratio:.3} p999_ratio={:.3} {verdict}",
            self.workload,
            if self.control { "b_vs_a_both_off" } else { "scraped_vs_off" },
            self.runs,
            b.p50_ns / a.p50_ns.max(1.0),
            b.p999_ns / a.p999_ns.max(1.0),
        ));
        lines
    }
}

/// The lines of one windowed metrics run: the scrapes' own latency, then [`WindowArms::lines`].
fn report_windows(arms: &WindowArms, s: &Switched, rate: u64, protocol: Protocol) {
    if !arms.control {
        println!("{}", s.scrapes.summary(rate, protocol.name(), "sable_metrics_windows_scraped"));
    }
    for line in arms.lines() {
        println!("{line}");
    }
}

/// The `order_to_itch` line of a feed-on run: order sent (intended time) → its Add Order at a
/// subscriber on loopback, beside the TCP floor of the same run.
fn report_order_to_itch(
    h: &hdrhistogram::Histogram<u64>,
    matched: u64,
    spec: LoadSpec,
    protocol: Protocol,
    floor: &Percentiles,
) {
    let p = pct(h);
    let workload = format!("e2e_feed_{}_{}", spec.rate_per_s, protocol.name());
    println!(
        "{} {} add_orders_matched={matched} p50/p50_floor={:.2} p99/p99_floor={:.2}",
        summary_line(&workload, "order_to_itch", matched, 0.0, &p),
        tail_fields(&p),
        p.p50_ns / floor.p50_ns.max(1.0),
        p.p99_ns / floor.p99_ns.max(1.0)
    );
}

/// The matcher's CPU per acknowledged order and the acknowledgements per second of a run.
fn arm_cost(m: &Measured) -> ArmCost {
    let acked = (m.load.acked_new + m.load.rejected).max(1);
    let matcher_ns = threads::appliance_cpu_ns(&m.before, &m.after)
        .into_iter()
        .find(|(g, _)| g == "matcher")
        .map_or(0, |(_, ns)| ns);
    ArmCost { matcher_cpu_ns_per_order: matcher_ns as f64 / acked as f64, acked_per_s: acked_per_s(&m.load) }
}

/// Logs in `connections` sessions of `protocol`; their streams in connection order.
fn connect(app: &Appliance, protocol: Protocol, connections: usize) -> Result<Vec<TcpStream>, String> {
    let mut streams = Vec::with_capacity(connections);
    for c in 0..connections {
        let stream = match protocol {
            Protocol::Sbe => {
                let (id, user, pass) = appliance::credentials_of(c);
                login::login(app.local_addr(), id, &user, &pass).map_err(|e| format!("SBE session {id}: {e}"))?
            }
            Protocol::Fix => {
                let addr = app.fix_addr().ok_or("the appliance has no FIX listener")?;
                fix_login::login(addr, c).map_err(|e| format!("FIX session {}: {e}", wire::fix_sender_comp_id(c)))?
            }
        };
        streams.push(stream);
    }
    Ok(streams)
}

/// What one run measured: the generator's result and the CPU of the process around it.
struct Measured {
    /// The generator's result.
    load: LoadResult,
    /// Wall time of the measured interval (the load and its drain), ns.
    wall_ns: u64,
    /// Every live thread at the start of the interval.
    before: Vec<ThreadCpu>,
    /// Every live thread at its end.
    after: Vec<ThreadCpu>,
    /// On-CPU ns of threads that ended within the interval, the generator's excepted: the
    /// appliance's short-lived helpers (the whole process's CPU minus the live threads').
    exited_ns: u64,
}

/// Runs the load over `streams` between two samples of every thread's CPU.
/// `probes`: the feed group to subscribe to, and what the sender calls at each window
/// ([`load::run`]).
fn measure(
    protocol: Protocol,
    spec: LoadSpec,
    streams: Vec<TcpStream>,
    probes: (Option<std::net::SocketAddrV4>, Option<load::OnWindow>),
    time_bound: Duration,
) -> Result<Measured, String> {
    let (feed, on_window) = probes;
    let accounts: Vec<u32> = (0..spec.connections).map(appliance::account_of).collect();
    let before = threads::sample();
    let process_before = threads::process_cpu_ns();
    let wall0 = Instant::now();
    let load = match protocol {
        Protocol::Sbe => load::run(spec, streams, (SbeOrders::new(accounts), SbeAcks), feed, on_window, time_bound)?,
        Protocol::Fix => {
            let seqs = vec![fix_login::FIRST_ORDER_SEQ; spec.connections];
            let codec = (FixOrders::new(accounts, seqs), FixAcks::default());
            load::run(spec, streams, codec, feed, on_window, time_bound)?
        }
    };
    let wall_ns = wall0.elapsed().as_nanos() as u64;
    let after = threads::sample();
    let process_after = threads::process_cpu_ns();
    // The generator's two threads ended inside the interval; their CPU is known exactly.
    let generator_ns = load.sender_cpu.on_cpu_ns + load.receiver_cpu.on_cpu_ns;
    let exited_ns = match (process_before, process_after) {
        (Some(b), Some(a)) => a.saturating_sub(b).saturating_sub(threads::live_cpu_ns(&before, &after) + generator_ns),
        _ => 0,
    };
    Ok(Measured { load, wall_ns, before, after, exited_ns })
}

/// The per-thread CPU lines of a run.
fn report_cpu(m: &Measured) {
    println!("CPU over the run ({:.2} s wall), per thread:", m.wall_ns as f64 / 1e9);
    for line in threads::describe(&m.before, &m.after, m.wall_ns) {
        println!("  {line}");
    }
    println!("  threads that ended during the run (appliance helpers): {:.1} ms", m.exited_ns as f64 / 1e6);
    let r = &m.load;
    let gen_ns = r.sender_cpu.on_cpu_ns + r.receiver_cpu.on_cpu_ns;
    println!(
        "generator CPU: {:.1}% of a core (sender {}; receiver {})",
        gen_ns as f64 * 100.0 / m.wall_ns.max(1) as f64,
        r.sender_cpu.describe(),
        r.receiver_cpu.describe()
    );
}

/// Prints a run's counts, rates and latencies and its summary line; whether it was clean.
/// `engine` names the appliance's layout on the summary line (`sable`, `sable_gw2`).
#[allow(clippy::too_many_arguments)]
fn report_rate(
    durability: Durability,
    protocol: Protocol,
    engine: &str,
    m: &Measured,
    spec: LoadSpec,
    floor: &Percentiles,
    fsync_p50: Option<f64>,
) -> bool {
    let r = &m.load;
    let dur = durability.name();
    let proto = protocol.name();
    let acked = r.acked_new + r.rejected;
    let ops_per_s = acked_per_s(r);
    let c = pct(&r.corrected);
    let u = pct(&r.uncorrected);
    report_counts(r, spec);
    println!(
        "vs floor ({proto} order size): p50/p50_floor {:.2}  p99/p99_floor {:.2}",
        c.p50_ns / floor.p50_ns.max(1.0),
        c.p99_ns / floor.p99_ns.max(1.0)
    );
    let cpu = threads::per_order_fields(&threads::appliance_cpu_ns(&m.before, &m.after), m.exited_ns, acked);
    let workload = format!("e2e_{dur}_{}_{proto}", spec.rate_per_s);
    println!(
        "{} protocol={proto} offered_per_s={} acked_per_s={ops_per_s:.0} durability={dur} {} connections={} \
         uncorrected_p50_ns={:.0} uncorrected_p99_ns={:.0} lost={} unsent={} duplicates={} errors={} {cpu}",
        summary_line(&workload, engine, acked, ops_per_s, &c),
        spec.rate_per_s,
        tail_fields(&c),
        spec.connections,
        u.p50_ns,
        u.p99_ns,
        r.lost,
        spec.orders.saturating_sub(r.sent),
        r.duplicates,
        r.error_count
    );
    if protocol == Protocol::Sbe {
        report_targets(durability, r, spec, floor, fsync_p50);
    }
    r.lost == 0 && r.duplicates == 0 && r.sent == spec.orders && r.error_count == 0
}

/// Acknowledgements per second, from the first intended send to the last acknowledgement.
fn acked_per_s(r: &LoadResult) -> f64 {
    if r.span_ns > 0 { (r.acked_new + r.rejected) as f64 * 1e9 / r.span_ns as f64 } else { 0.0 }
}

/// The human-readable lines of a run: orders, throughput, errors, latencies.
fn report_counts(r: &LoadResult, spec: LoadSpec) {
    let acked = r.acked_new + r.rejected;
    println!(
        "orders: offered {} sent {} acked {} (New {}, rejected {}) lost {} duplicate acks {}; trades {} cancels {} other {}; {} bytes in",
        spec.orders,
        r.sent,
        acked,
        r.acked_new,
        r.rejected,
        r.lost,
        r.duplicates,
        r.trades,
        r.cancels,
        r.other,
        r.bytes_in
    );
    println!(
        "sender timer slack: {}",
        if r.sender_fine_timer {
            format!("{} ns (sleeps when > 40 us ahead)", load::SENDER_TIMER_SLACK_NS)
        } else {
            "default 50 us: the kernel refused a finer one (sleeps when > 200 us ahead)".into()
        }
    );
    for e in r.errors.iter().take(10) {
        println!("  error: {e}");
    }
    if r.error_count > 10 {
        println!("  ... {} more errors", r.error_count - 10);
    }
    let ops_per_s = acked_per_s(r);
    println!(
        "throughput: offered {}/s, acked {ops_per_s:.0}/s ({:.1}% of offered) over {:.3} s (first intended send to last ack); \
         lost {} (sent, never acknowledged within {} s after the last send); not sent {}{}",
        spec.rate_per_s,
        ops_per_s * 100.0 / spec.rate_per_s as f64,
        r.span_ns as f64 / 1e9,
        r.lost,
        load::DRAIN_TIMEOUT.as_secs(),
        spec.orders.saturating_sub(r.sent),
        if r.sender_gave_up { " (the sender fell behind its schedule past the time bound)" } else { "" }
    );
    println!("latency ns, intended send → first ack (corrected): {}", pct(&r.corrected).describe());
    println!("latency ns, actual send → first ack (uncorrected): {}", pct(&r.uncorrected).describe());
    println!("generator send lag ns (actual - intended send):     {}", pct(&r.send_lag).describe());
}

/// `met` or `NOT met`.
fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The targets that apply to an SBE run, for reference only: benchmarks print, they
/// do not assert. FIX's own target is the `fix_vs_sbe` line.
fn report_targets(durability: Durability, r: &LoadResult, spec: LoadSpec, floor: &Percentiles, fsync_p50: Option<f64>) {
    let c = pct(&r.corrected);
    if durability == Durability::Written && spec.rate_per_s == TARGET_RATE_PER_S {
        println!(
            "target (written, 100k/s): p50 <= {TARGET_P50_OVER_FLOOR}x floor p50: {}; p99 <= {TARGET_P99_OVER_FLOOR}x floor p99: {}",
            verdict(c.p50_ns <= TARGET_P50_OVER_FLOOR * floor.p50_ns),
            verdict(c.p99_ns <= TARGET_P99_OVER_FLOOR * floor.p99_ns)
        );
    }
    if spec.rate_per_s >= 500_000 && spec.connections >= 4 {
        let ops_per_s = acked_per_s(r);
        println!(
            "target (>= 500k/s over >= 4 connections, nothing lost): acked {ops_per_s:.0}/s, lost {}: {}",
            r.lost,
            verdict(ops_per_s >= 500_000.0 && r.lost == 0 && r.sent == spec.orders)
        );
    }
    if let Some(sync_p50) = fsync_p50.filter(|_| durability == Durability::Fsync) {
        let bound = floor.p50_ns + 1.5 * sync_p50;
        println!(
            "target (fsync): p50 {:.0} <= floor p50 + 1.5 x fdatasync p50 = {bound:.0}: {}",
            c.p50_ns,
            verdict(c.p50_ns <= bound)
        );
    }
}

/// The `soak:` line of a run across rollovers, and the target for it: 100k orders/s,
/// `written`, 30 s across rollovers: p50 <= 2x floor p50, p99 <= 3x floor p99, max <= 5 ms,
/// nothing lost. Printed, not asserted.
fn report_soak(
    durability: Durability,
    protocol: Protocol,
    r: &LoadResult,
    spec: LoadSpec,
    seconds: f64,
    floor: &Percentiles,
    files: NewFiles,
) {
    let c = pct(&r.corrected);
    let p50_over = c.p50_ns / floor.p50_ns.max(1.0);
    let p99_over = c.p99_ns / floor.p99_ns.max(1.0);
    println!(
        "soak: protocol={} offered_per_s={} duration_s={seconds} journal_segments_created={} store_files_created={} \
         p50_ns={:.0} p99_ns={:.0} p999_ns={:.0} max_ns={:.0} floor_p50_ns={:.0} floor_p99_ns={:.0} \
         p50_over_floor={p50_over:.2} p99_over_floor={p99_over:.2} lost={} unsent={}",
        protocol.name(),
        spec.rate_per_s,
        files.journal_segments,
        files.store_files,
        c.p50_ns,
        c.p99_ns,
        c.p999_ns,
        c.max_ns,
        floor.p50_ns,
        floor.p99_ns,
        r.lost,
        spec.orders.saturating_sub(r.sent)
    );
    let rollovers = files.journal_segments >= SOAK_MIN_ROLLOVERS && files.store_files >= SOAK_MIN_ROLLOVERS;
    let conditions = durability == Durability::Written
        && spec.rate_per_s == TARGET_RATE_PER_S
        && seconds >= SOAK_TARGET_SECONDS
        && rollovers;
    println!(
        "target (100k/s, written, {SOAK_TARGET_SECONDS} s across >= {SOAK_MIN_ROLLOVERS} journal and store rollovers{}): \
         p50 <= {TARGET_P50_OVER_FLOOR}x floor p50: {}; p99 <= {TARGET_P99_OVER_FLOOR}x floor p99: {}; max <= {} ms: {}; \
         nothing lost: {}",
        if conditions { "" } else { "; this run does not meet those conditions" },
        verdict(p50_over <= TARGET_P50_OVER_FLOOR),
        verdict(p99_over <= TARGET_P99_OVER_FLOOR),
        SOAK_MAX_TARGET_NS / 1e6,
        verdict(c.max_ns <= SOAK_MAX_TARGET_NS),
        verdict(r.lost == 0 && r.sent == spec.orders)
    );
}

//! Failover benchmark: kill/promote cycles of a primary and its hot standby as real `sable`
//! processes (see `sable_bench::failover`), then the checks (no acknowledged order lost or
//! duplicated, the final state hash equal to an offline replay) and the failover time
//! (SIGKILL → first acknowledgement from the promoted standby) as percentiles.
//!
//! `cargo build --release -p sable-gateway --bin sable && cargo run --release -p bench --bin failover -- --cycles 1000`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hdrhistogram::Histogram;
use sable_bench::failover::{Options, run};
use sable_bench::report::{Percentiles, summary_line};

/// Kill/promote cycles of a primary and its standby.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Kill/promote cycles.
    #[arg(long, default_value_t = 100)]
    cycles: u32,
    /// Orders before each kill, at most (the kill comes after a random number of them).
    #[arg(long, default_value_t = 200)]
    max_orders: u64,
    /// The `sable` binary; default: next to this one.
    #[arg(long)]
    sable: Option<PathBuf>,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 20261206)]
    seed: u64,
    /// Planned switchovers (SIGUSR2: step-down and handover) instead of SIGKILL.
    #[arg(long)]
    switchover: bool,
    /// Automatic failover through an etcd on loopback (`etcd` from PATH) instead of SIGUSR1.
    #[arg(long)]
    etcd: bool,
    /// With --etcd: the leader lease TTL in seconds.
    #[arg(long, default_value_t = 1)]
    lease_ttl_s: u64,
    /// Keep the scratch directory (the nodes' data and `sable.log`s) and print where.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sable = args.sable.unwrap_or_else(|| {
        std::env::current_exe().map(|p| p.with_file_name("sable")).unwrap_or_else(|_| PathBuf::from("sable"))
    });
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("failover: cannot make a scratch directory");
        return ExitCode::FAILURE;
    };
    let opts = Options {
        sable,
        dir: dir.path().to_path_buf(),
        cycles: args.cycles,
        max_orders_per_cycle: args.max_orders,
        seed: args.seed,
        switchover: args.switchover,
        etcd: args.etcd,
        lease_ttl_s: args.lease_ttl_s,
    };
    let how = match (opts.switchover, opts.etcd) {
        (true, false) => "SIGUSR2 (step-down: drain, hand over, the standby promotes itself)",
        (true, true) => "SIGUSR2 (step-down, hand over; the standby wins the etcd election and promotes itself)",
        (false, false) => "SIGKILL; promotion by SIGUSR1 right after the kill",
        (false, true) => {
            "SIGKILL; the standby deposes the dead primary in etcd (its port refuses, it ran halt) and promotes itself"
        }
    };
    println!(
        "# failover: {} cycles, up to {} orders before each {how}, seed {}; durability replicated, on_standby_loss halt",
        opts.cycles, opts.max_orders_per_cycle, opts.seed
    );
    let outcome = match run(&opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("failover: {e}; the nodes' logs are kept in {}", dir.keep().display());
            return ExitCode::FAILURE;
        }
    };
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for d in &outcome.failover {
        h.record(d.as_nanos() as u64).expect("in range");
    }
    let p = Percentiles::from_raw(&h);
    println!(
        "{} acked={} fix_acked={} fix_resend_requests={} lost={} duplicated={} state_hash_reported={:016x} state_hash_replayed={:016x}",
        summary_line(workload(&opts), "sable", outcome.failover.len() as u64, 0.0, &p),
        outcome.acked,
        outcome.fix_acked,
        outcome.fix_resend_requests,
        outcome.lost,
        outcome.duplicated,
        outcome.state_hashes.0,
        outcome.state_hashes.1
    );
    if args.keep {
        println!("# kept: {}", dir.keep().display());
    }
    let ok = outcome.lost == 0 && outcome.duplicated == 0 && outcome.state_hashes.0 == outcome.state_hashes.1;
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The summary line's workload name for what the run did.
fn workload(opts: &Options) -> &'static str {
    match (opts.switchover, opts.etcd) {
        (true, false) => "switchover_stepdown_to_first_ack",
        (true, true) => "switchover_stepdown_to_first_ack_etcd",
        (false, false) => "failover_sigkill_to_first_ack",
        (false, true) => "failover_sigkill_to_first_ack_etcd",
    }
}

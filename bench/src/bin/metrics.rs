//! What recording metrics costs a pipeline thread, measured in isolation (a loaded machine
//! distorts the e2e comparison far more than this): the single-writer histogram record, a
//! counter add, the order → ack stamp put and get, and a wall-clock read, each in batches of
//! `BATCH` timed with one clock pair, so the figure is the per-operation cost with the
//! timing amortised.
//!
//! `cargo run --release -p bench --bin metrics -- [--batches N]`
//!
//! Per order the pipeline does about: 3 histogram records (received → sequenced, matched,
//! sent; plus order → ack for new orders and cancels; durable on the journaler), 4 counter
//! adds, 1 stamp put and 1 get, and on the publisher and journaler 2 clock reads per batch.

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use gateway::admin::histogram::Histogram;
use gateway::admin::recorder::{Counter, Stamp, StampTable};
use sable_bench::report::{Percentiles, histogram, summary_line};

/// Operations timed together (one clock pair per batch).
const BATCH: u64 = 1_000;

/// Metrics recording cost.
#[derive(Parser)]
struct Args {
    /// Batches of each operation.
    #[arg(long, default_value_t = 20_000)]
    batches: u64,
}

fn measure(name: &str, batches: u64, mut op: impl FnMut(u64)) {
    let mut h = histogram();
    let start = Instant::now();
    for b in 0..batches {
        let t0 = Instant::now();
        for i in 0..BATCH {
            op(b * BATCH + i);
        }
        // Per operation, in tenths of ns so the histogram keeps the fraction.
        h.saturating_record((t0.elapsed().as_nanos() as u64 * 10) / BATCH);
    }
    let ops = (batches * BATCH) as f64 / start.elapsed().as_secs_f64();
    let mut p = Percentiles::from_raw(&h);
    for v in [&mut p.p50_ns, &mut p.p90_ns, &mut p.p99_ns, &mut p.p999_ns, &mut p.p9999_ns, &mut p.max_ns] {
        *v /= 10.0;
    }
    println!(
        "{} batch={BATCH} p50_ns_per_op={:.1} p99_ns_per_op={:.1}",
        summary_line(name, "sable_metrics", batches * BATCH, ops, &p),
        p.p50_ns,
        p.p99_ns
    );
}

fn main() {
    let args = Args::parse();
    println!("# sable metrics recording cost (single thread; p*_ns are per operation, batch medians)");
    println!("machine: {} CPUs, load average {}", sable_bench::machine::cpus(), sable_bench::machine::loadavg());
    let hist = Histogram::default();
    measure("histogram_record", args.batches, |i| hist.record(black_box(1_000 + (i & 0xFFFF))));
    let counter = Counter::default();
    measure("counter_add", args.batches, |_| counter.add(black_box(1)));
    let stamps = StampTable::default();
    measure("stamp_put", args.batches, |i| stamps.put(i, Stamp { received_ns: i, ts_ns: i + 1, kind: 0 }));
    measure("stamp_get", args.batches, |i| {
        black_box(stamps.get(i));
    });
    measure("wall_clock_read", args.batches, |_| {
        black_box(std::time::SystemTime::now());
    });
    black_box((&hist, &counter));
}

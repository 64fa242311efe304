//! Journal benchmark: append latency and throughput under group commit, and replay speed.
//!
//! Run: `cargo run --release -p sable-journal --example journal_bench -- [--dir PATH] [--scale F]
//! [--writeback-hint-bytes N]`
//!
//! Each case appends 64-byte bodies to a fresh journal on real files (default: under the system
//! temp directory; pass `--dir` to pick the disk) and commits every N records. Two lines per
//! append case:
//! - `journal_<durability>_n<N>`: cost of one `append` call on the journaler thread, including
//!   the `commit` when this record closes a group (so the sync shows in the tail percentiles);
//! - `journal_<durability>_n<N>_ack`: append-to-durable latency of each record, i.e. from its
//!   `append` call to the end of the `commit` that covered it: what an acknowledgement waits.
//!
//! and one `journal_replay` line: throughput of a plain replay pass, percentiles of a second pass
//! that times each `next()` (the clock read adds tens of ns to those).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use journal::{Durability, Journal, JournalConfig, MmapStorage};

const BODY_LEN_BYTES: usize = 64;
/// Largest latency the histograms hold: one minute.
const MAX_TRACKED_NS: u64 = 60_000_000_000;
const GROUP_SIZES: [u64; 3] = [1, 64, 1024];

struct Args {
    dir: PathBuf,
    scale: f64,
    writeback_hint_len_bytes: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: std::env::temp_dir(),
        scale: 1.0,
        writeback_hint_len_bytes: JournalConfig::default().writeback_hint_len_bytes,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--dir" => args.dir = PathBuf::from(iter.next().expect("--dir needs a path")),
            "--scale" => {
                args.scale = iter.next().expect("--scale needs a number").parse().expect("--scale needs a number")
            }
            "--writeback-hint-bytes" => {
                args.writeback_hint_len_bytes =
                    iter.next().and_then(|n| n.parse().ok()).expect("--writeback-hint-bytes needs a number")
            }
            other => panic!(
                "unknown argument {other}; usage: journal_bench [--dir PATH] [--scale F] [--writeback-hint-bytes N]"
            ),
        }
    }
    args
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).clamp(1, MAX_TRACKED_NS);
    histogram.record(ns).expect("value within bounds");
}

fn print_line(case: &str, commands: u64, elapsed: Duration, histogram: &Histogram<u64>) {
    println!(
        "workload=journal_{case} engine=sable commands={commands} ops_per_s={:.0} p50_ns={} p99_ns={} p999_ns={} p9999_ns={} max_ns={}",
        commands as f64 / elapsed.as_secs_f64(),
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.value_at_quantile(0.9999),
        histogram.max(),
    );
}

fn body_for(seq: u64) -> [u8; BODY_LEN_BYTES] {
    let mut body = [0u8; BODY_LEN_BYTES];
    for (index, chunk) in body.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(index as u32 * 8).to_le_bytes());
    }
    body
}

/// Appends `commands` records committing every `group` at `durability`; returns the journal
/// for replay.
fn run_append_case(
    args: &Args,
    durability: Durability,
    group: u64,
    commands: u64,
) -> (tempfile::TempDir, Journal<MmapStorage>) {
    let dir = tempfile::tempdir_in(&args.dir).expect("temp dir for the journal");
    let config = JournalConfig { writeback_hint_len_bytes: args.writeback_hint_len_bytes, ..JournalConfig::default() };
    let mut journal = Journal::open_dir(dir.path(), config).expect("open journal");
    let mut per_append = histogram();
    let mut per_ack = histogram();
    // Preallocated so the measured loop allocates nothing.
    let mut pending: Vec<Instant> = Vec::with_capacity(group as usize);
    let start = Instant::now();
    for seq in 1..=commands {
        let body = body_for(seq);
        let began = Instant::now();
        journal.append(seq, seq, 1, &body).expect("append");
        pending.push(began);
        if seq % group == 0 || seq == commands {
            journal.commit(durability).expect("commit");
            let durable = Instant::now();
            for appended in pending.drain(..) {
                record(&mut per_ack, durable - appended);
            }
            record(&mut per_append, durable - began);
        } else {
            record(&mut per_append, began.elapsed());
        }
    }
    let elapsed = start.elapsed();
    // Settle this case's dirty pages before the next case, outside the measurement, so that
    // cases do not pay for each other's write-back.
    journal.commit(Durability::Fsync).expect("settling sync");
    let name = match durability {
        Durability::Written => "written",
        Durability::Fsync => "fsync",
    };
    print_line(&format!("{name}_n{group}"), commands, elapsed, &per_append);
    print_line(&format!("{name}_n{group}_ack"), commands, elapsed, &per_ack);
    (dir, journal)
}

fn run_replay_case(journal: &Journal<MmapStorage>) {
    let commands = journal.appended_seq();
    let start = Instant::now();
    let mut body_bytes = 0usize;
    for record in journal.read_from(1).expect("replay") {
        body_bytes += record.expect("good record").body.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(body_bytes as u64, commands * BODY_LEN_BYTES as u64);

    let mut per_record = histogram();
    let mut replay = journal.read_from(1).expect("replay");
    loop {
        let began = Instant::now();
        let Some(record_result) = replay.next() else { break };
        record_result.expect("good record");
        record(&mut per_record, began.elapsed());
    }
    print_line("replay", commands, elapsed, &per_record);
}

fn main() {
    let args = parse_args();
    let scaled = |count: f64| ((count * args.scale) as u64).max(1);
    println!(
        "# journal_bench: {BODY_LEN_BYTES}-byte bodies, dir {}, segments of {} bytes, writeback hint every {} bytes",
        args.dir.display(),
        JournalConfig::default().segment_len_bytes,
        args.writeback_hint_len_bytes
    );
    for (group, commands) in GROUP_SIZES.into_iter().zip([20_000.0, 200_000.0, 1_000_000.0]) {
        run_append_case(&args, Durability::Fsync, group, scaled(commands));
    }
    let mut replay_source = None;
    for group in GROUP_SIZES {
        let (dir, journal) = run_append_case(&args, Durability::Written, group, scaled(1_000_000.0));
        replay_source = Some((dir, journal));
    }
    let (_dir, journal) = replay_source.expect("at least one written case ran");
    run_replay_case(&journal);
}

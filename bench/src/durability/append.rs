//! `journal_append_<durability>_n<N>`: the journal alone on this thread, appending 64-byte
//! bodies to a fresh journal on real files and committing every N records (formerly
//! `journal/examples/journal_bench.rs`). Two lines per case:
//!
//! - `journal_append_<durability>_n<N>`: cost of one `append` call, including the `commit` when
//!   the record closes a group (so the sync shows in the tail percentiles);
//! - `journal_append_<durability>_n<N>_ack`: append-to-durable latency of each record, from its
//!   `append` call to the end of the `commit` that covered it: what an acknowledgement waits.
//!
//! Appends that rolled over to a new segment are listed with their times: the rollover seals the
//! old segment with a sync of everything not yet synced.

use std::time::Instant;

use journal::{Durability, Journal, RECORD_HEADER_LEN_BYTES, record_len_bytes};

use super::Ctx;
use crate::report::{Percentiles, histogram, summary_line};
use crate::timing;

/// Body length of every record (an encoded command is about 48 bytes; 64 rounds it up).
pub const BODY_LEN_BYTES: usize = 64;
/// Group sizes: commit after every record, every 64, every 1024.
pub const GROUP_SIZES: [u64; 3] = [1, 64, 1024];

/// Records per case: (fsync n1, fsync n64, fsync n1024, written n*) at full size. An fsync costs
/// about half a millisecond on a virtual disk, so fsync n1 gets fewer records.
const FULL_RECORDS: [u64; 4] = [20_000, 200_000, 1_000_000, 1_000_000];

/// The body of record `seq`: deterministic, never all zeros.
pub fn body_for(seq: u64) -> [u8; BODY_LEN_BYTES] {
    let mut body = [0u8; BODY_LEN_BYTES];
    for (index, chunk) in body.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(index as u32 * 8).to_le_bytes());
    }
    body
}

/// `written` or `fsync`, as case names spell it.
pub fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Written => "written",
        Durability::Fsync => "fsync",
    }
}

/// Appends `records` records committing every `group` at `durability`, and prints both lines.
fn run_case(ctx: &mut Ctx, durability: Durability, group: u64, records: u64) {
    let ticker = ctx.ticker;
    let dir = tempfile::Builder::new().prefix("append-").tempdir_in(&ctx.dir).expect("scratch dir");
    let mut journal = Journal::open_dir(dir.path(), ctx.journal_config()).expect("the scratch journal opens");
    let mut per_append = histogram();
    let mut per_ack = histogram();
    // Preallocated so the measured loop allocates nothing.
    let mut pending: Vec<u64> = Vec::with_capacity(group as usize);
    let mut rollovers: Vec<(u64, u64)> = Vec::with_capacity(64);
    let mut segments = journal.segments().len();
    let faults_before = timing::minor_faults();
    let started = Instant::now();
    for seq in 1..=records {
        let body = body_for(seq);
        let began = timing::start();
        journal.append(seq, seq, 1, &body).expect("append on a healthy disk");
        pending.push(began);
        let ended = if seq.is_multiple_of(group) || seq == records {
            journal.commit(durability).expect("commit on a healthy disk");
            let durable = timing::stop();
            for &appended in &pending {
                per_ack.saturating_record((durable - appended).max(1));
            }
            pending.clear();
            durable
        } else {
            timing::stop()
        };
        per_append.saturating_record((ended - began).max(1));
        if journal.segments().len() != segments {
            segments = journal.segments().len();
            rollovers.push((seq, ended - began));
        }
    }
    let elapsed = started.elapsed();
    let faults = faults_before.zip(timing::minor_faults()).map(|(a, b)| b - a);
    // Settle this case's dirty pages before the next case, outside the measurement, so that
    // cases do not pay for each other's write-back.
    journal.commit(Durability::Fsync).expect("settling sync");
    drop(journal);

    let case = format!("journal_append_{}_n{group}", durability_name(durability));
    let ops_per_s = records as f64 / elapsed.as_secs_f64();
    let (pa, pk) = (Percentiles::from_ticks(&per_append, &ticker), Percentiles::from_ticks(&per_ack, &ticker));
    let mb_per_s = ops_per_s * record_len_bytes(BODY_LEN_BYTES) as f64 / 1e6;
    println!(
        "  [{case}] {records} records, commit every {group} at {}: {:.2} M records/s ({mb_per_s:.0} MB/s of records) \
         in {:.2} s; minor page faults: {}",
        durability_name(durability),
        ops_per_s / 1e6,
        elapsed.as_secs_f64(),
        faults.map_or("unknown".into(), |f| f.to_string())
    );
    println!("  [{case}] per append ns (incl. the commit closing a group): {}", pa.describe());
    println!("  [{case}] append->durable per record ns: {}", pk.describe());
    let roll: Vec<String> =
        rollovers.iter().map(|&(seq, ticks)| format!("seq {seq}: {:.1} ms", ticker.ns(ticks) / 1e6)).collect();
    let roll_max_ns = rollovers.iter().map(|&(_, t)| ticker.ns(t)).fold(0.0, f64::max);
    println!(
        "  [{case}] segment rollovers: {}{}",
        rollovers.len(),
        if roll.is_empty() { String::new() } else { format!(" ({})", roll.join(", ")) }
    );
    let extra = |p: &Percentiles| {
        format!(
            " p999_ns={:.0} group={group} rollovers={} rollover_max_ns={roll_max_ns:.0}",
            p.p999_ns,
            rollovers.len()
        )
    };
    if durability == Durability::Fsync && group == 1024 {
        ctx.targets.fsync_n1024_ops_per_s = Some(ops_per_s);
    }
    let line = summary_line(&case, "sable", records, ops_per_s, &pa) + &extra(&pa);
    ctx.summary(line);
    let line = summary_line(&format!("{case}_ack"), "sable", records, ops_per_s, &pk) + &extra(&pk);
    ctx.summary(line);
}

/// Runs every append case: fsync first (n1, n64, n1024), then written.
pub fn run(ctx: &mut Ctx, quick: bool) {
    let scale = |n: u64| if quick { n / 10 } else { n };
    let config = ctx.journal_config();
    println!(
        "\n== journal_append: {BODY_LEN_BYTES}-byte bodies ({}-byte records with the {RECORD_HEADER_LEN_BYTES}-byte \
         header), segments of {} MiB, write-back hint every {} bytes; single thread ({}), no waiting; a settling \
         fsync after each case, outside the measurement",
        record_len_bytes(BODY_LEN_BYTES),
        config.segment_len_bytes >> 20,
        config.writeback_hint_len_bytes,
        ctx.placement.matcher.map_or("unpinned".into(), |c| format!("pinned to core {}", c.id)),
    );
    for (group, records) in GROUP_SIZES.into_iter().zip(FULL_RECORDS) {
        run_case(ctx, Durability::Fsync, group, scale(records));
    }
    for group in GROUP_SIZES {
        run_case(ctx, Durability::Written, group, scale(FULL_RECORDS[3]));
    }
}

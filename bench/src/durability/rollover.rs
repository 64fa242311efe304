//! `journal_rollover_<durability>`: how long a segment rollover holds up the writer. The journal
//! alone on this thread appends 64-byte bodies into small segments (so it rolls over hundreds of
//! times), committing every [`GROUP`] records, and times every `append` and every `commit`.
//!
//! An operation is one `append`, plus the `commit` when the record closes a group. An operation
//! is a *rollover* operation when its append rolled over to a new segment, or when its commit
//! closed the group that rolled over (in `fsync` that commit is the one that waits for the old
//! segment to be durable). Two lines per durability level:
//!
//! - `journal_rollover_<durability>`: every rollover operation (`max_ns` is the longest pause a
//!   rollover caused; `p999_ns` its 99.9th percentile);
//! - `journal_rollover_<durability>_normal`: every other operation, for scale.
//!
//! Each level runs twice: with the journal's background rollover thread (the default), and with
//! `background_rollover: false` (`_inline` lines: the writer does the same steps itself, which is
//! what a rollover cost before the thread existed), so the two compare within one run.
//!
//! Appends are paced at `--rollover-rate` records/s (a busy-wait on the timer between records):
//! the background thread has to write each full segment to disk, so a writer that outruns the
//! disk (about 300 MB/s of records unpaced) would measure the disk, not the rollover.

use std::time::Instant;

use journal::{Durability, Journal, JournalConfig};

use super::Ctx;
use super::append::{BODY_LEN_BYTES, body_for, durability_name};
use crate::report::{Percentiles, histogram, summary_line};

/// Records per group commit.
pub const GROUP: u64 = 64;
/// Default segment length: small, so that a run rolls over hundreds of times.
pub const DEFAULT_SEGMENT_LEN_BYTES: u64 = 1 << 20;
/// Records per durability level at full size (about 200 segments of 1 MiB).
const FULL_RECORDS: u64 = 2_000_000;
/// Default pace: 500,000 records/s, about 52 MB/s of records, a 1 MiB segment every 20 ms.
pub const DEFAULT_RECORDS_PER_S: u64 = 500_000;

/// Runs one durability level and prints its two lines.
fn run_case(ctx: &mut Ctx, durability: Durability, config: JournalConfig, records: u64, records_per_s: u64) {
    let ticker = ctx.ticker;
    let dir = tempfile::Builder::new().prefix("rollover-").tempdir_in(&ctx.dir).expect("scratch dir");
    let mut journal = Journal::open_dir(dir.path(), config).expect("the scratch journal opens");
    // Rollover ops, split: the append that rolled over, and the op whose commit closed its group.
    let (mut rolled, mut roll_appends, mut roll_commits, mut normal) =
        (histogram(), histogram(), histogram(), histogram());
    let mut segments = journal.segments().len();
    let mut rollovers = 0u64;
    // A rollover happened in the group being filled: its closing commit counts as a rollover op.
    let mut group_rolled = false;
    // Ticks between records at the pace; 0 = unpaced.
    let interval_ticks = if records_per_s == 0 { 0.0 } else { ticker.ticks_per_ns * 1e9 / records_per_s as f64 };
    let started = Instant::now();
    let first_tick = crate::timing::start();
    for seq in 1..=records {
        let body = body_for(seq);
        let due = first_tick + (interval_ticks * (seq - 1) as f64) as u64;
        while crate::timing::start() < due {
            std::hint::spin_loop();
        }
        let began = crate::timing::start();
        journal.append(seq, seq, 1, &body).expect("append on a healthy disk");
        let appended = crate::timing::stop();
        let this_rolled = journal.segments().len() != segments;
        if this_rolled {
            segments = journal.segments().len();
            rollovers += 1;
            group_rolled = true;
        }
        let ended = if seq.is_multiple_of(GROUP) || seq == records {
            journal.commit(durability).expect("commit on a healthy disk");
            crate::timing::stop()
        } else {
            appended
        };
        let closes_rolled_group = group_rolled && ended != appended;
        let ticks = (ended - began).max(1);
        if this_rolled {
            roll_appends.saturating_record(ticks);
        } else if closes_rolled_group {
            roll_commits.saturating_record(ticks);
        }
        if this_rolled || closes_rolled_group {
            rolled.saturating_record(ticks);
        } else {
            normal.saturating_record(ticks);
        }
        if closes_rolled_group {
            group_rolled = false;
        }
    }
    let elapsed = started.elapsed();
    journal.commit(Durability::Fsync).expect("settling sync");
    drop(journal);

    let inline = if config.background_rollover { "" } else { "_inline" };
    let case = format!("journal_rollover_{}{inline}", durability_name(durability));
    let ops_per_s = records as f64 / elapsed.as_secs_f64();
    let (pr, pn) = (Percentiles::from_ticks(&rolled, &ticker), Percentiles::from_ticks(&normal, &ticker));
    let (pa, pc) = (Percentiles::from_ticks(&roll_appends, &ticker), Percentiles::from_ticks(&roll_commits, &ticker));
    println!(
        "  [{case}] {records} records into {} KiB segments, commit every {GROUP}: {rollovers} rollovers, {:.2} M \
         records/s in {:.2} s",
        config.segment_len_bytes >> 10,
        ops_per_s / 1e6,
        elapsed.as_secs_f64()
    );
    println!("  [{case}] rollover ops ns ({} ops): {}", pr.count, pr.describe());
    println!("  [{case}]   of which the appends that rolled over ({}): {}", pa.count, pa.describe());
    println!("  [{case}]   of which the commits closing their group ({}): {}", pc.count, pc.describe());
    println!("  [{case}] other ops ns ({} ops): {}", pn.count, pn.describe());
    let fields = format!(
        " rollovers={rollovers} segment_bytes={} group={GROUP} paced_records_per_s={records_per_s}",
        config.segment_len_bytes
    );
    let line = summary_line(&case, "sable", pr.count, ops_per_s, &pr)
        + &format!(" p999_ns={:.0} append_max_ns={:.0} commit_max_ns={:.0}", pr.p999_ns, pa.max_ns, pc.max_ns);
    ctx.summary(line + &fields);
    let line = summary_line(&format!("{case}_normal"), "sable", pn.count, ops_per_s, &pn)
        + &format!(" p999_ns={:.0}", pn.p999_ns);
    ctx.summary(line + &fields);
}

/// Runs the rollover case at `written` and then `fsync`, with segments of `segment_len_bytes`,
/// appending at most `records_per_s` records a second (0: unpaced), with the background thread
/// and then inline.
pub fn run(ctx: &mut Ctx, quick: bool, segment_len_bytes: u64, records_per_s: u64) {
    let records = if quick { FULL_RECORDS / 10 } else { FULL_RECORDS };
    let config = JournalConfig { segment_len_bytes, ..ctx.journal_config() };
    println!(
        "\n== journal_rollover: {BODY_LEN_BYTES}-byte bodies into {} KiB segments, commit every {GROUP}, write-back \
         hint every {} bytes, paced at {records_per_s} records/s (0 = unpaced); each op is one append (+ the \
         commit closing its group); background rollover thread, then inline",
        segment_len_bytes >> 10,
        config.writeback_hint_len_bytes
    );
    for durability in [Durability::Written, Durability::Fsync] {
        for background_rollover in [true, false] {
            run_case(ctx, durability, JournalConfig { background_rollover, ..config }, records, records_per_s);
        }
    }
}

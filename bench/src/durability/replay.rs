//! `journal_replay`: how fast the journal reads back, on the journal of generated commands that
//! [`super::restore`] builds (page cache warm: it was just written).
//!
//! Four passes over the whole journal: a plain replay (every checksum and the chain checked,
//! bodies borrowed from the mapping), the same plus `Command::decode` of every body, and both
//! again with a timestamp pair around each record (the timer adds a few ns to those). Decoded
//! commands are not applied here; restore does that. Last, `audit_derive`: the audit log's
//! start-up replay through a scratch engine, timed as a whole.

use std::time::Instant;

use engine::Command;
use journal::{Journal, MmapStorage};

use super::Ctx;
use crate::report::{Percentiles, histogram, summary_line};
use crate::timing;

/// Replays `journal` from its first record and prints `journal_replay` and `journal_replay_decode`.
pub fn run(ctx: &mut Ctx, journal: &Journal<MmapStorage>) {
    let ticker = ctx.ticker;
    let first = journal.first_seq();
    let records = journal.appended_seq() + 1 - first;
    println!(
        "\n== journal_replay: {records} command records ({} segments), single thread, page cache warm",
        journal.segments().len()
    );

    // Plain replay.
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut count = 0u64;
    for rec in journal.read_from(first).expect("replay starts at the first record") {
        bytes += rec.expect("a freshly written journal verifies").len_bytes() as u64;
        count += 1;
    }
    let plain_s = started.elapsed().as_secs_f64();
    assert_eq!(count, records, "replay yields every record");

    // Replay + decode.
    let started = Instant::now();
    for rec in journal.read_from(first).expect("replay starts at the first record") {
        let rec = rec.expect("a freshly written journal verifies");
        let cmd = Command::decode(rec.body).expect("every record is an encoded command");
        assert_eq!(cmd.seq, rec.seq, "the body's seq matches the record's");
    }
    let decode_s = started.elapsed().as_secs_f64();

    // Timed passes.
    let mut per_record = histogram();
    let mut replay = journal.read_from(first).expect("replay starts at the first record");
    loop {
        let t0 = timing::start();
        let Some(rec) = replay.next() else { break };
        std::hint::black_box(rec.expect("a freshly written journal verifies"));
        per_record.saturating_record((timing::stop() - t0).max(1));
    }
    let mut per_decoded = histogram();
    let mut replay = journal.read_from(first).expect("replay starts at the first record");
    loop {
        let t0 = timing::start();
        let Some(rec) = replay.next() else { break };
        let cmd = Command::decode(rec.expect("a freshly written journal verifies").body).expect("an encoded command");
        std::hint::black_box(cmd);
        per_decoded.saturating_record((timing::stop() - t0).max(1));
    }

    let plain_ops = records as f64 / plain_s;
    let decode_ops = records as f64 / decode_s;
    let (pp, pd) = (Percentiles::from_ticks(&per_record, &ticker), Percentiles::from_ticks(&per_decoded, &ticker));
    println!(
        "  [journal_replay] {:.2} M records/s ({:.0} MB/s of records, {:.1} B/record) in {plain_s:.2} s; per record \
         ns (timed pass): {}",
        plain_ops / 1e6,
        bytes as f64 / plain_s / 1e6,
        bytes as f64 / records as f64,
        pp.describe()
    );
    println!(
        "  [journal_replay_decode] {:.2} M records/s in {decode_s:.2} s; per record ns (timed pass): {}",
        decode_ops / 1e6,
        pd.describe()
    );
    ctx.targets.replay_ops_per_s = Some(plain_ops);
    let line = summary_line("journal_replay", "sable", records, plain_ops, &pp)
        + &format!(" p999_ns={:.0} bytes={bytes}", pp.p999_ns);
    ctx.summary(line);
    let line = summary_line("journal_replay_decode", "sable", records, decode_ops, &pd)
        + &format!(" p999_ns={:.0}", pd.p999_ns);
    ctx.summary(line);
    audit_derive(ctx, journal, records);
}

/// `audit_derive`: what the audit log's start-up check costs (`gateway::audit::derive`: the
/// whole journal replayed through a scratch engine), once, timed as a whole (no per-record
/// percentiles: the engine's share is `restore`'s).
fn audit_derive(ctx: &mut Ctx, journal: &Journal<MmapStorage>, records: u64) {
    let started = Instant::now();
    let entries = gateway::audit::derive(journal, super::LIMITS).expect("the scratch journal replays");
    let s = started.elapsed().as_secs_f64();
    let found = entries.map_or(0, |e| e.len());
    println!("  [audit_derive] {:.2} M records/s in {s:.2} s ({found} operator commands)", records as f64 / s / 1e6);
    ctx.summary(format!(
        "workload=audit_derive engine=sable commands={records} ops_per_s={:.0} total_ms={:.0}",
        records as f64 / s,
        s * 1e3
    ));
}

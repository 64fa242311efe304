//! Crash-drill child: runs engine + journal + snapshots under load until killed. Used by
//! `snapshot/tests/crash.rs`, which SIGKILLs it at random moments and checks the recovery.
//!
//! `sable-crash-child DIR SEED written|fsync SNAPSHOT_EVERY`
//!
//! Prints `RECOVERED <seq> <state_hash hex> <replayed> <snapshot seq or ->` after start-up, then
//! `DURABLE <seq>` each time a batch is durable at the chosen level. Commands come from
//! `engine::sim::FlowGen` seeded with SEED, with timestamp `seq * 1000`, so the parent can
//! regenerate exactly what must be in the journal.

use std::io::Write;
use std::process::ExitCode;

use engine::sim::command_stream;
use engine::{Command, CountingSink, EngineLimits, InstrumentId};
use journal::{Durability, Journal, JournalConfig};
use snapshot::{Retention, SnapshotStore, restore};
use std::time::{SystemTime, UNIX_EPOCH};

/// The crash drill's engine capacities (shared with the test through this constant's values).
const LIMITS: EngineLimits = EngineLimits::SMALL;
/// Small segments so the drill rolls over often.
const SEGMENT_LEN_BYTES: u64 = 1 << 20;

/// The drill's stream: what the parent regenerates to check the journal.
pub fn stream(seed: u64) -> impl Iterator<Item = Command> {
    command_stream(seed, InstrumentId(0), 6, 1_000)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, seed, level, every] = args.as_slice() else {
        eprintln!("usage: sable-crash-child DIR SEED written|fsync SNAPSHOT_EVERY");
        return ExitCode::FAILURE;
    };
    let (Ok(seed), Ok(every)) = (seed.parse::<u64>(), every.parse::<u64>()) else {
        eprintln!("SEED and SNAPSHOT_EVERY are integers");
        return ExitCode::FAILURE;
    };
    let durability = if level == "fsync" { Durability::Fsync } else { Durability::Written };
    let dir = std::path::Path::new(dir);
    let config = JournalConfig { segment_len_bytes: SEGMENT_LEN_BYTES, ..JournalConfig::default() };
    let mut journal = Journal::open_dir(dir.join("journal"), config).expect("journal opens");
    let store = SnapshotStore::open(dir.join("snapshots")).expect("snapshot dir opens");
    let (mut engine, report) = restore(Some(&store), &journal, LIMITS).expect("restore succeeds");
    let mut out = std::io::stdout().lock();
    let snap = report.snapshot.as_ref().map_or("-".to_string(), |s| s.seq.to_string());
    writeln!(out, "RECOVERED {} {:016x} {} {}", engine.seq(), engine.state_hash(), report.replayed, snap).ok();
    out.flush().ok();

    let mut sink = CountingSink::default();
    let mut buf = [0u8; Command::MAX_ENCODED_LEN];
    let mut since_snapshot = 0;
    let mut batch = 0;
    let mut batch_len = 1;
    for cmd in stream(seed).skip(engine.seq() as usize) {
        let body = cmd.encode(&mut buf).expect("command fits the buffer");
        journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, body).expect("append");
        engine.apply(&cmd, &mut sink).expect("consecutive");
        batch += 1;
        since_snapshot += 1;
        // Group commit of a varying batch size (1..=64), so kills land at every phase.
        if batch == batch_len {
            batch_len = 1 + cmd.seq % 64;
            journal.commit(durability).expect("commit");
            writeln!(out, "DURABLE {}", journal.written_seq().max(journal.synced_seq())).ok();
            out.flush().ok();
            batch = 0;
            if since_snapshot >= every {
                let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                store.write(&engine, now_ns).expect("snapshot");
                store.retain(Retention { keep_last: 3, max_age_ns: None }, now_ns).expect("retention");
                since_snapshot = 0;
            }
        }
    }
    ExitCode::SUCCESS
}

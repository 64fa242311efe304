//! Operator subcommands for journals and snapshots. They are clap types so the `sable` binary
//! can mount them as they are (`sable journal …`, `sable snapshot …`); `sable-admin` runs them
//! standalone. Run them with the appliance stopped, except `inspect`, `verify`, `dump` and
//! `list`, which never write.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use engine::{Command, EngineLimits};
use journal::{Journal, JournalConfig, MmapStorage, SegmentStatus, inspect};

use crate::restore::restore;
use crate::store::SnapshotStore;

/// `journal …` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// One line per segment: sequence range, records, bytes used, status. Changes nothing.
    Inspect {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Exit 0 if the journal opens (a torn tail would be cut), else print where it is corrupt
    /// and exit 1. Changes nothing.
    Verify {
        /// Journal directory.
        dir: PathBuf,
    },
    /// Print records (seq, timestamp, kind, decoded command). Changes nothing.
    Dump {
        /// Journal directory.
        dir: PathBuf,
        /// First sequence number to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most records to print.
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
    /// Move segments wholly older than the oldest snapshot to DEST (they are not needed to
    /// restore any retained snapshot).
    Archive {
        /// Journal directory.
        dir: PathBuf,
        /// Snapshot directory.
        #[arg(long)]
        snapshots: PathBuf,
        /// Where to move the segments.
        #[arg(long)]
        to: PathBuf,
    },
}

/// `snapshot …` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// List snapshots with their sequence numbers, sizes and ages. Changes nothing.
    List {
        /// Snapshot directory.
        dir: PathBuf,
    },
    /// Verify one snapshot (`--seq`) or all: checksums and a full load with invariant checks.
    Verify {
        /// Snapshot directory.
        dir: PathBuf,
        /// Only this one.
        #[arg(long)]
        seq: Option<u64>,
    },
    /// Restore the engine (newest valid snapshot + journal replay) and print its sequence number
    /// and state hash. Opening the journal cuts a torn tail, as start-up would.
    Restore {
        /// Snapshot directory.
        #[arg(long)]
        snapshots: PathBuf,
        /// Journal directory.
        #[arg(long)]
        journal: PathBuf,
        /// Restore this snapshot and replay nothing after it.
        #[arg(long)]
        seq: Option<u64>,
    },
    /// Replay the whole journal offline and write a snapshot of the result.
    Take {
        /// Snapshot directory.
        #[arg(long)]
        snapshots: PathBuf,
        /// Journal directory.
        #[arg(long)]
        journal: PathBuf,
    },
}

fn limits() -> EngineLimits {
    EngineLimits::DEFAULT
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn status_text(s: &SegmentStatus) -> String {
    match s {
        SegmentStatus::Clean => "clean".into(),
        other => format!("{other:?}"),
    }
}

/// Runs a `journal` subcommand, writing its report to `out`.
pub fn run_journal(cmd: JournalCmd, out: &mut impl Write) -> Result<(), String> {
    let w = |e: std::io::Error| e.to_string();
    match cmd {
        JournalCmd::Inspect { dir } | JournalCmd::Verify { dir } if !dir.is_dir() => {
            Err(format!("{}: not a directory", dir.display()))
        }
        JournalCmd::Inspect { dir } => {
            let storage = MmapStorage::open(&dir).map_err(|e| e.to_string())?;
            let ins = inspect(&storage).map_err(|e| e.to_string())?;
            writeln!(out, "{:>20} {:>20} {:>12} {:>14} status", "first_seq", "last_seq", "records", "used_bytes")
                .map_err(w)?;
            for s in ins.summaries() {
                let last = (s.info.base_seq + s.info.record_count).saturating_sub(1);
                let last = if s.info.record_count == 0 { "-".to_string() } else { last.to_string() };
                writeln!(
                    out,
                    "{:>20} {:>20} {:>12} {:>14} {}",
                    s.info.base_seq,
                    last,
                    s.info.record_count,
                    s.info.used_len_bytes,
                    status_text(&s.status)
                )
                .map_err(w)?;
            }
            Ok(())
        }
        JournalCmd::Verify { dir } => {
            let storage = MmapStorage::open(&dir).map_err(|e| e.to_string())?;
            let ins = inspect(&storage).map_err(|e| e.to_string())?;
            let records: u64 = ins.summaries().map(|s| s.info.record_count).sum();
            ins.verdict().map_err(|e| format!("CORRUPT: {e}; restore from the standby or a snapshot"))?;
            writeln!(out, "ok: {records} records in {} segments", ins.summaries().count()).map_err(w)?;
            Ok(())
        }
        JournalCmd::Dump { dir, from, limit } => {
            let storage = MmapStorage::open(&dir).map_err(|e| e.to_string())?;
            let ins = inspect(&storage).map_err(|e| e.to_string())?;
            for entry in ins.dump().filter(|e| e.record.seq >= from).take(limit.min(usize::MAX as u64) as usize) {
                let r = entry.record;
                let body = if r.kind == Command::RECORD_KIND {
                    Command::decode(r.body).map_or_else(|e| format!("undecodable: {e}"), |c| format!("{:?}", c.body))
                } else {
                    format!("{} bytes", r.body.len())
                };
                writeln!(out, "{} ts={} kind={} {}", r.seq, r.timestamp_ns, r.kind, body).map_err(w)?;
            }
            Ok(())
        }
        JournalCmd::Archive { dir, snapshots, to } => {
            let store = SnapshotStore::open(&snapshots).map_err(|e| e.to_string())?;
            let Some(oldest) = store.list().map_err(|e| e.to_string())?.first().map(|s| s.seq) else {
                return Err("no snapshot: every segment is still needed".into());
            };
            let mut j = Journal::open_dir(&dir, JournalConfig::default()).map_err(|e| e.to_string())?;
            let moved = j.archive_before(oldest + 1, &to).map_err(|e| e.to_string())?;
            writeln!(out, "archived {} segments (before seq {}) to {}", moved.len(), oldest + 1, to.display())
                .map_err(w)?;
            Ok(())
        }
    }
}

/// Runs a `snapshot` subcommand, writing its report to `out`.
pub fn run_snapshot(cmd: SnapshotCmd, out: &mut impl Write) -> Result<(), String> {
    let w = |e: std::io::Error| e.to_string();
    match cmd {
        SnapshotCmd::List { dir } => {
            let store = SnapshotStore::open(&dir).map_err(|e| e.to_string())?;
            let now = now_ns();
            writeln!(out, "{:>20} {:>14} {:>10}  path", "seq", "image_bytes", "age_s").map_err(w)?;
            for s in store.list().map_err(|e| e.to_string())? {
                let age = now.saturating_sub(s.created_ns) / 1_000_000_000;
                writeln!(out, "{:>20} {:>14} {:>10}  {}", s.seq, s.image_len_bytes, age, s.path.display())
                    .map_err(w)?;
            }
            Ok(())
        }
        SnapshotCmd::Verify { dir, seq } => {
            let store = SnapshotStore::open(&dir).map_err(|e| e.to_string())?;
            let seqs: Vec<u64> = match seq {
                Some(s) => vec![s],
                None => store.list().map_err(|e| e.to_string())?.iter().map(|s| s.seq).collect(),
            };
            let mut bad = 0;
            for s in seqs {
                match store.load(s) {
                    Ok((_, e)) => writeln!(out, "{s}: ok, state_hash {:016x}", e.state_hash()).map_err(w)?,
                    Err(e) => {
                        bad += 1;
                        writeln!(out, "{s}: BAD: {e}").map_err(w)?;
                    }
                }
            }
            if bad > 0 { Err(format!("{bad} snapshot(s) failed verification")) } else { Ok(()) }
        }
        SnapshotCmd::Restore { snapshots, journal, seq } => {
            let store = SnapshotStore::open(&snapshots).map_err(|e| e.to_string())?;
            if let Some(seq) = seq {
                let (_, e) = store.load(seq).map_err(|e| e.to_string())?;
                writeln!(out, "restored snapshot {seq}: seq {} state_hash {:016x}", e.seq(), e.state_hash())
                    .map_err(w)?;
                return Ok(());
            }
            let j = Journal::open_dir(&journal, JournalConfig::default()).map_err(|e| e.to_string())?;
            let (e, report) = restore(Some(&store), &j, limits()).map_err(|e| e.to_string())?;
            for (s, why) in &report.skipped {
                writeln!(out, "skipped snapshot {s}: {why}").map_err(w)?;
            }
            let from = report.snapshot.as_ref().map_or("empty engine".to_string(), |s| format!("snapshot {}", s.seq));
            writeln!(
                out,
                "restored from {from} + {} journal records: seq {} state_hash {:016x}",
                report.replayed,
                e.seq(),
                e.state_hash()
            )
            .map_err(w)?;
            Ok(())
        }
        SnapshotCmd::Take { snapshots, journal } => {
            let store = SnapshotStore::open(&snapshots).map_err(|e| e.to_string())?;
            let j = Journal::open_dir(&journal, JournalConfig::default()).map_err(|e| e.to_string())?;
            let (e, _) = restore(Some(&store), &j, limits()).map_err(|e| e.to_string())?;
            let info = store.write(&e, now_ns()).map_err(|e| e.to_string())?;
            writeln!(out, "wrote {} (seq {}, {} bytes)", info.path.display(), info.seq, info.image_len_bytes)
                .map_err(w)?;
            Ok(())
        }
    }
}

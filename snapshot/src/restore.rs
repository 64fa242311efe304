//! Restore = newest valid snapshot + journal replay from its sequence number.

use engine::{Command, CommandBody, CountingSink, Engine, EngineLimits, Event};
use journal::{Journal, JournalError, Storage};

use crate::store::{SnapshotError, SnapshotInfo, SnapshotStore};

/// Why the engine could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The journal failed to read (corruption is reported here, with its place).
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// Listing snapshots failed.
    #[error("snapshots: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The journal no longer starts at 1 and no usable snapshot covers what was archived.
    #[error(
        "no usable snapshot and the journal starts at seq {first_seq}: restore the archived segments or a snapshot"
    )]
    NoStartingPoint {
        /// Oldest record the journal holds.
        first_seq: u64,
    },
    /// A journal record is not a command the engine can apply.
    #[error("journal record {seq}: {reason}")]
    BadRecord {
        /// The record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

/// What a restore used and did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// The snapshot restored from, if any.
    pub snapshot: Option<SnapshotInfo>,
    /// Newer snapshots that were passed over, and why.
    pub skipped: Vec<(u64, String)>,
    /// Journal records replayed on top of it.
    pub replayed: u64,
}

/// Replays journal records from `engine.seq() + 1` to the journal's end into `engine`,
/// returning how many were applied. Events are discarded: outputs are re-derived, not stored.
pub fn replay_journal<S: Storage>(engine: &mut Engine, journal: &Journal<S>) -> Result<u64, RestoreError> {
    replay_journal_observed(engine, journal, &mut |_, _| {})
}

/// [`replay_journal`], handing each operator command and its events to `observe` (the audit
/// log re-derives its records from them; other commands' events are discarded as before).
pub fn replay_journal_observed<S: Storage>(
    engine: &mut Engine,
    journal: &Journal<S>,
    observe: &mut dyn FnMut(&Command, &[Event]),
) -> Result<u64, RestoreError> {
    let mut sink = CountingSink::default();
    let mut events: Vec<Event> = Vec::new();
    let mut applied = 0;
    for rec in journal.read_from(engine.seq() + 1)? {
        let rec = rec?;
        let bad = |reason: String| RestoreError::BadRecord { seq: rec.seq, reason };
        if rec.kind != Command::RECORD_KIND {
            return Err(bad(format!("unknown record kind {}", rec.kind)));
        }
        let cmd = Command::decode(rec.body).map_err(|e| bad(e.to_string()))?;
        if cmd.seq != rec.seq || cmd.ts_ns != rec.timestamp_ns {
            return Err(bad(format!(
                "body says seq {} ts {}, header says seq {} ts {}",
                cmd.seq, cmd.ts_ns, rec.seq, rec.timestamp_ns
            )));
        }
        if let CommandBody::Operator(_) = cmd.body {
            events.clear();
            engine.apply(&cmd, &mut events).map_err(|e| bad(e.to_string()))?;
            observe(&cmd, &events);
        } else {
            engine.apply(&cmd, &mut sink).map_err(|e| bad(e.to_string()))?;
        }
        applied += 1;
    }
    Ok(applied)
}

/// Restores the engine: the newest snapshot that loads and that the journal can continue
/// (falling back to older ones), else an empty engine with `limits`; then replays the journal.
///
/// A snapshot beyond the journal's end is passed over: it would contain commands the journal
/// lost, which were never acknowledged.
pub fn restore<S: Storage>(
    store: Option<&SnapshotStore>,
    journal: &Journal<S>,
    limits: EngineLimits,
) -> Result<(Engine, RestoreReport), RestoreError> {
    restore_observed(store, journal, limits, &mut |_, _| {})
}

/// [`restore`], handing each replayed operator command and its events to `observe` (see
/// [`replay_journal_observed`]).
pub fn restore_observed<S: Storage>(
    store: Option<&SnapshotStore>,
    journal: &Journal<S>,
    limits: EngineLimits,
    observe: &mut dyn FnMut(&Command, &[Event]),
) -> Result<(Engine, RestoreReport), RestoreError> {
    let mut report = RestoreReport::default();
    let last_seq = journal.appended_seq();
    let mut start = None;
    if let Some(store) = store {
        for s in store.list()?.into_iter().rev() {
            if s.seq > last_seq {
                report.skipped.push((s.seq, format!("beyond the journal's last record {last_seq}")));
                continue;
            }
            if s.seq + 1 < journal.first_seq() {
                report.skipped.push((s.seq, format!("the journal starts at {}", journal.first_seq())));
                continue;
            }
            match store.load(s.seq) {
                Ok((info, engine)) => {
                    report.snapshot = Some(info);
                    start = Some(engine);
                    break;
                }
                Err(e) => report.skipped.push((s.seq, e.to_string())),
            }
        }
    }
    let mut engine = match start {
        Some(e) => e,
        None if journal.first_seq() > 1 => {
            return Err(RestoreError::NoStartingPoint { first_seq: journal.first_seq() });
        }
        None => Engine::new(limits),
    };
    report.replayed = replay_journal_observed(&mut engine, journal, observe)?;
    Ok((engine, report))
}

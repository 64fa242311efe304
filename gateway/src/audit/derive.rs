//! The audit entries a journal gives: each operator command's outcome read off its events,
//! during the restore's own replay ([`TailCollector`]) or, to rebuild a whole log, with the
//! journal replayed from seq 1 through a scratch engine ([`derive`]).

use engine::{Command, CommandBody, Engine, EngineLimits, Event};
use journal::{Journal, Storage};

use super::{AuditEntry, AuditError};

/// The entries of every operator command in `journal`, in order; `None` when the journal no
/// longer starts at seq 1 (older segments archived), so outcomes cannot be recomputed.
pub fn derive<S: Storage>(journal: &Journal<S>, limits: EngineLimits) -> Result<Option<Vec<AuditEntry>>, AuditError> {
    if journal.first_seq() > 1 {
        return Ok(None);
    }
    let replay = |e: &dyn std::fmt::Display| AuditError::Replay(e.to_string());
    let mut engine = Engine::new(limits);
    let mut events: Vec<Event> = Vec::with_capacity(1024);
    let mut entries = Vec::new();
    for rec in journal.read_from(1).map_err(|e| replay(&e))? {
        let rec = rec.map_err(|e| replay(&e))?;
        let cmd = Command::decode(rec.body).map_err(|e| replay(&format_args!("record {}: {e}", rec.seq)))?;
        events.clear();
        engine.apply(&cmd, &mut events).map_err(|e| replay(&format_args!("record {}: {e}", rec.seq)))?;
        if let (CommandBody::Operator(c), Some(Event::Operator(outcome))) = (&cmd.body, events.last()) {
            entries.push(AuditEntry::new(cmd.seq, cmd.ts_ns, c, outcome));
        }
    }
    Ok(Some(entries))
}

/// Collects the entries of the operator commands a restore replays
/// (`snapshot::restore_observed`).
#[derive(Default)]
pub struct TailCollector {
    /// The entries, in sequence order.
    pub entries: Vec<AuditEntry>,
}

impl TailCollector {
    /// The observer's call: one replayed operator command and its events.
    pub fn observe(&mut self, cmd: &Command, events: &[Event]) {
        if let (CommandBody::Operator(c), Some(Event::Operator(outcome))) = (&cmd.body, events.last()) {
            self.entries.push(AuditEntry::new(cmd.seq, cmd.ts_ns, c, outcome));
        }
    }
}

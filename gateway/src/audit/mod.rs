//! The audit log of operator actions: one JSON line per [`engine::CommandBody::Operator`]
//! command, in sequence order, hash-chained (each record carries the SHA-256 of the previous
//! record's hash and its own content), in `<data_dir>/audit.jsonl`.
//!
//! Every field of a record is a function of the journal: who and what come from the command,
//! when is its sequencer timestamp, before and after are the engine's outcome event. So the log
//! is rebuilt, not trusted. At start-up the chain is verified line by line; the records of the
//! commands the restore replays (after its snapshot) must equal what the replay gives, a
//! missing tail (a crash between the journal and the log) is appended, a record the journal
//! does not hold stops the start; and the records before the snapshot must be as many as the
//! engine counted (`Engine::operator_commands`). A log with fewer (lost, or a standby's first
//! promotion) is rebuilt from the whole journal through a scratch engine ([`derive`]), which
//! gives the same bytes the primary wrote.

mod derive;
mod record;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use derive::{TailCollector, derive};
pub use record::{AuditEntry, AuditRecord, Filter, GENESIS};

/// The audit log's file name in the data directory.
pub const FILE_NAME: &str = "audit.jsonl";

/// Why the audit log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a record, or the chain breaks at it (an edited, inserted or removed line).
    #[error("{path} line {line}: {why}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The log and the journal disagree.
    #[error("{path}: record for seq {seq} {why}")]
    Journal {
        /// The file.
        path: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// How it differs.
        why: String,
    },
    /// Replaying the journal failed.
    #[error("replaying the journal for the audit log: {0}")]
    Replay(String),
    /// The log holds fewer records before the replay's start than the engine counted
    /// operator commands there (rebuild it from the whole journal).
    #[error("{path}: {have} records up to seq {upto}, the journal has {want} operator commands there")]
    Short {
        /// The file.
        path: PathBuf,
        /// The replay's start.
        upto: u64,
        /// Records in the file up to it.
        have: u64,
        /// Operator commands the engine applied up to it.
        want: u64,
    },
}

/// What the journal gives the audit log at start-up: the entries of the operator commands
/// after `from` (the replayed tail, or everything from seq 1) and how many came before.
#[derive(Clone, Copy, Debug)]
pub struct Derived<'a> {
    /// The entries were derived for the commands after this seq.
    pub from: u64,
    /// Operator commands at or before `from`.
    pub before: u64,
    /// The entries, in sequence order.
    pub entries: &'a [AuditEntry],
}

/// What [`AuditLog::reconcile`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Records checked against the journal.
    pub verified: usize,
    /// Records appended from the journal (the log was behind).
    pub appended: usize,
    /// Records dropped because their commands never became durable.
    pub dropped: usize,
}

/// The audit log: its records in memory (operator actions are few) and the file they are
/// appended to.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    records: Vec<AuditRecord>,
    /// A write failed: nothing more is written, so the file stays a prefix of the log (the
    /// next start appends the rest from the journal).
    failed: bool,
}

impl AuditLog {
    /// Opens (or creates) the log at `path` and verifies its chain.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io { path: path.to_owned(), source };
        let (records, torn) = read_records(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        let mut log = AuditLog { path: path.to_owned(), file, records, failed: false };
        if torn {
            tracing::warn!(path = %path.display(), "audit log: a torn last line (a crash mid-write) dropped");
            log.rewrite()?;
        }
        Ok(log)
    }

    /// Every record, in sequence order.
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// Chains `entry` after the last record and appends it to the file. Records at or after
    /// its seq (a standby's, past a cut of its journal) are dropped first.
    pub fn append(&mut self, entry: AuditEntry) -> Result<&AuditRecord, AuditError> {
        if self.records.last().is_some_and(|r| r.entry.seq >= entry.seq) {
            self.records.retain(|r| r.entry.seq < entry.seq);
            self.rewrite()?;
        }
        if self.failed {
            let source = std::io::Error::other("an earlier write failed; the next start rebuilds the log");
            return Err(AuditError::Io { path: self.path.clone(), source });
        }
        let prev = self.records.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
        let record = AuditRecord::chain(entry, prev);
        let mut line = serde_json::to_vec(&record).expect("a record serializes");
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            self.failed = true;
            return Err(AuditError::Io { path: self.path.clone(), source });
        }
        self.records.push(record);
        Ok(self.records.last().expect("just pushed"))
    }

    /// Brings the log to what the journal says: `journal_end` is the last durable sequence
    /// number and `derived` what the journal gives (`None` when nothing could be derived: only
    /// the chain was checked). See the module docs.
    pub fn reconcile(&mut self, derived: Option<Derived<'_>>, journal_end: u64) -> Result<Reconciled, AuditError> {
        let mut done = Reconciled::default();
        let keep = self.records.iter().take_while(|r| r.entry.seq <= journal_end).count();
        if keep < self.records.len() {
            done.dropped = self.records.len() - keep;
            tracing::warn!(dropped = done.dropped, journal_end, "audit records past the journal's end dropped");
            self.records.truncate(keep);
            self.rewrite()?;
        }
        let Some(d) = derived else { return Ok(done) };
        let before = self.records.iter().take_while(|r| r.entry.seq <= d.from).count();
        if before as u64 != d.before {
            let (have, want) = (before as u64, d.before);
            return Err(AuditError::Short { path: self.path.clone(), upto: d.from, have, want });
        }
        for (r, e) in self.records[before..].iter().zip(d.entries) {
            if r.entry != *e {
                let why = format!("differs from the journal's: file {:?}, journal {:?}", r.entry, e);
                return Err(AuditError::Journal { path: self.path.clone(), seq: r.entry.seq, why });
            }
            done.verified += 1;
        }
        if let Some(extra) = self.records.get(before + d.entries.len()) {
            let why = "is not an operator command in the journal".to_owned();
            return Err(AuditError::Journal { path: self.path.clone(), seq: extra.entry.seq, why });
        }
        let have = self.records.len() - before;
        for e in &d.entries[have..] {
            self.append(e.clone())?;
            done.appended += 1;
        }
        Ok(done)
    }

    /// Writes the in-memory records over the file (after dropping a tail).
    fn rewrite(&mut self) -> Result<(), AuditError> {
        let io = |source| AuditError::Io { path: self.path.clone(), source };
        let mut bytes = Vec::new();
        for r in &self.records {
            bytes.extend_from_slice(&serde_json::to_vec(r).expect("a record serializes"));
            bytes.push(b'\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.file = OpenOptions::new().append(true).open(&self.path).map_err(io)?;
        Ok(())
    }
}

/// What a restore left for the audit log to be checked against.
pub struct Restored<'a, S: journal::Storage> {
    /// The journal.
    pub journal: &'a journal::Journal<S>,
    /// The engine's capacities (a rebuild replays through a scratch engine of them).
    pub limits: engine::EngineLimits,
    /// The restored engine.
    pub engine: &'a engine::Engine,
    /// The restore replayed the commands after this seq (its snapshot's; 0 without one).
    pub replayed_from: u64,
    /// The entries of the operator commands it replayed ([`TailCollector`]).
    pub tail: &'a [AuditEntry],
}

/// Opens `<data_dir>/audit.jsonl`, verifies its chain and reconciles it with what the restore
/// replayed; a log short of records before the replay is rebuilt from the whole journal.
pub fn open_at_start<S: journal::Storage>(data_dir: &Path, r: &Restored<'_, S>) -> Result<AuditLog, AuditError> {
    let started = Instant::now();
    let mut log = AuditLog::open(&data_dir.join(FILE_NAME))?;
    let before = r.engine.operator_commands() - r.tail.len() as u64;
    let (end, tail) = (r.engine.seq(), Derived { from: r.replayed_from, before, entries: r.tail });
    let done = match log.reconcile(Some(tail), end) {
        Err(AuditError::Short { have, want, .. }) if have < want && r.journal.first_seq() <= 1 => {
            tracing::warn!(have, want, "audit log short of records: rebuilding it from the whole journal");
            let all = derive(r.journal, r.limits)?.unwrap_or_default();
            log.reconcile(Some(Derived { from: 0, before: 0, entries: &all }), end)?
        }
        other => other?,
    };
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(records = log.records.len(), verified = done.verified, appended = done.appended, ms, "audit log");
    Ok(log)
}

/// Reads the records at `path` (none if it does not exist), checking each line's hash and its
/// link to the previous one, and that sequence numbers ascend. A last line without its newline
/// (a crash mid-write) is left out.
pub fn read_verified(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    read_records(path).map(|(records, _)| records)
}

/// [`read_verified`], and whether a torn last line was left out.
fn read_records(path: &Path) -> Result<(Vec<AuditRecord>, bool), AuditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let whole = if torn { &text[..text.rfind('\n').map_or(0, |i| i + 1)] } else { &text[..] };
    let mut records: Vec<AuditRecord> = Vec::new();
    for (i, line) in whole.lines().enumerate() {
        let broken = |why: String| AuditError::Broken { path: path.to_owned(), line: i + 1, why };
        let r: AuditRecord = serde_json::from_str(line).map_err(|e| broken(format!("not a record: {e}")))?;
        let prev = records.last().map_or(GENESIS, |p| p.hash.as_str());
        r.check(prev).map_err(broken)?;
        if records.last().is_some_and(|p| p.entry.seq >= r.entry.seq) {
            return Err(broken(format!("seq {} does not follow the previous record's", r.entry.seq)));
        }
        records.push(r);
    }
    Ok((records, torn))
}

/// The audit log shared by the publisher (which appends) and the admin port (which reads and
/// waits for the records of the commands it submitted).
#[derive(Clone)]
pub struct SharedAudit(Arc<(Mutex<AuditLog>, Condvar)>);

impl SharedAudit {
    /// Shares `log`.
    pub fn new(log: AuditLog) -> Self {
        SharedAudit(Arc::new((Mutex::new(log), Condvar::new())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuditLog> {
        self.0.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `entry`; a failed write is logged (the journal still holds the command, and the
    /// next start-up appends the record from it).
    pub fn append(&self, entry: AuditEntry) {
        let seq = entry.seq;
        if let Err(e) = self.lock().append(entry) {
            tracing::error!(seq, error = %e, "cannot write the audit record; it is rebuilt from the journal at the next start");
        }
        self.0.1.notify_all();
    }

    /// The records `filter` selects.
    pub fn select(&self, filter: &Filter) -> Vec<AuditRecord> {
        self.lock().records().iter().filter(|r| filter.matches(r)).take(filter.limit()).cloned().collect()
    }

    /// Waits up to `timeout` for the records of `seqs`; returns those there by then.
    pub fn wait_for(&self, seqs: &[u64], timeout: Duration) -> Vec<AuditRecord> {
        let deadline = Instant::now() + timeout;
        let mut log = self.lock();
        loop {
            let records = log.records();
            let at = |seq: &u64| records.binary_search_by_key(seq, |r| r.entry.seq).ok();
            let found: Vec<AuditRecord> = seqs.iter().filter_map(at).map(|i| records[i].clone()).collect();
            let now = Instant::now();
            if found.len() == seqs.len() || now >= deadline {
                let mut found = found;
                found.sort_by_key(|r| r.entry.seq);
                return found;
            }
            log = self.0.1.wait_timeout(log, deadline - now).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }
}

#[cfg(test)]
mod tests;

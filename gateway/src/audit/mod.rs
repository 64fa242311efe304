//! The audit log of operator actions: one JSON line per [`engine::CommandBody::Operator`]
//! command, in sequence order, hash-chained (each record carries the SHA-256 of the previous
//! record's hash and its own content), in `<data_dir>/audit.jsonl`.
//!
//! Every field of a record is a function of the journal: who and what come from the command,
//! when is its sequencer timestamp, before and after are the engine's outcome event. So the log
//! is rebuilt, not trusted: at start-up the chain is verified line by line, then the journal is
//! replayed through a scratch engine ([`derive`]) and every record must equal the one the
//! journal gives; a missing tail (a crash between the journal and the log) is appended, a
//! record the journal does not hold stops the start. A standby that is promoted rebuilds the
//! same bytes from its copy of the journal.

mod derive;
mod record;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use derive::derive;
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
}

impl AuditLog {
    /// Opens (or creates) the log at `path` and verifies its chain.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io { path: path.to_owned(), source };
        let records = read_verified(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        Ok(AuditLog { path: path.to_owned(), file, records })
    }

    /// Every record, in sequence order.
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// Chains `entry` after the last record and appends it to the file.
    pub fn append(&mut self, entry: AuditEntry) -> Result<&AuditRecord, AuditError> {
        let prev = self.records.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
        let record = AuditRecord::chain(entry, prev);
        let mut line = serde_json::to_vec(&record).expect("a record serializes");
        line.push(b'\n');
        self.file.write_all(&line).map_err(|source| AuditError::Io { path: self.path.clone(), source })?;
        self.records.push(record);
        Ok(self.records.last().expect("just pushed"))
    }

    /// Brings the log to what the journal says: `journal_end` is the last durable sequence
    /// number and `derived` the entries the journal gives (`None` when the journal no longer
    /// starts at 1: only the chain was checked). See the module docs.
    pub fn reconcile(&mut self, derived: Option<&[AuditEntry]>, journal_end: u64) -> Result<Reconciled, AuditError> {
        let mut done = Reconciled::default();
        let keep = self.records.iter().take_while(|r| r.entry.seq <= journal_end).count();
        if keep < self.records.len() {
            done.dropped = self.records.len() - keep;
            tracing::warn!(dropped = done.dropped, journal_end, "audit records past the journal's end dropped");
            self.records.truncate(keep);
            self.rewrite()?;
        }
        let Some(derived) = derived else { return Ok(done) };
        for (r, d) in self.records.iter().zip(derived) {
            if r.entry != *d {
                let why = format!("differs from the journal's: file {:?}, journal {:?}", r.entry, d);
                return Err(AuditError::Journal { path: self.path.clone(), seq: r.entry.seq, why });
            }
            done.verified += 1;
        }
        if let Some(extra) = self.records.get(derived.len()) {
            let why = "is not an operator command in the journal".to_owned();
            return Err(AuditError::Journal { path: self.path.clone(), seq: extra.entry.seq, why });
        }
        for d in &derived[self.records.len()..] {
            self.append(d.clone())?;
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

/// Reads the records at `path` (none if it does not exist), checking each line's hash and its
/// link to the previous one, and that sequence numbers ascend.
pub fn read_verified(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    let mut records: Vec<AuditRecord> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Io { path: path.to_owned(), source })?;
        let broken = |why: String| AuditError::Broken { path: path.to_owned(), line: i + 1, why };
        let r: AuditRecord = serde_json::from_str(&line).map_err(|e| broken(format!("not a record: {e}")))?;
        let prev = records.last().map_or(GENESIS, |p| p.hash.as_str());
        r.check(prev).map_err(broken)?;
        if records.last().is_some_and(|p| p.entry.seq >= r.entry.seq) {
            return Err(broken(format!("seq {} does not follow the previous record's", r.entry.seq)));
        }
        records.push(r);
    }
    Ok(records)
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
            let found: Vec<AuditRecord> = log
                .records()
                .iter()
                .rev()
                .take(64 + seqs.len())
                .filter(|r| seqs.contains(&r.entry.seq))
                .cloned()
                .collect();
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

//! One audit record: the entry (who, when, what, before, after) and its link in the chain.

use engine::{MassCancelTarget, OperatorAction, OperatorCommand, OperatorOutcome, ScopeState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record says, all of it derived from the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The command's input sequence number.
    pub seq: u64,
    /// When: the sequencer's timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// `ts_ns` as UTC (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`).
    pub time: String,
    /// Who: the admin token's name.
    pub by: String,
    /// The action's name (`halt`, `resume`, `close`, `mass_cancel`, `kill_account`,
    /// `release_account`, `kill_session`, `release_session`, `reload`).
    pub action: String,
    /// What it was applied to, in words.
    pub target: String,
    /// The scope before.
    pub before: ScopeState,
    /// The scope after.
    pub after: ScopeState,
    /// Orders cancelled.
    pub cancelled: u32,
    /// `ok`, or why the engine refused it.
    pub result: String,
}

impl AuditEntry {
    /// The entry of operator command `c`, sequenced as `seq` at `ts_ns`, with its outcome.
    pub fn new(seq: u64, ts_ns: u64, c: &OperatorCommand, outcome: &OperatorOutcome) -> Self {
        let (action, target) = describe(&c.action);
        AuditEntry {
            seq,
            ts_ns,
            time: utc(ts_ns),
            by: c.by.as_str().to_owned(),
            action: action.to_owned(),
            target,
            before: outcome.before,
            after: outcome.after,
            cancelled: outcome.cancelled,
            result: match outcome.refused {
                None => "ok".to_owned(),
                Some(r) => format!("refused: {}", crate::fix::convert::reject_text(r as u16)),
            },
        }
    }
}

/// An entry chained: `hash` = SHA-256 of `prev` and the entry's JSON, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

impl AuditRecord {
    /// `entry` chained after `prev`.
    pub fn chain(entry: AuditEntry, prev: String) -> Self {
        let hash = hash(&prev, &entry);
        AuditRecord { entry, prev, hash }
    }

    /// Checks the record's link (`prev` is the previous record's hash) and its own hash.
    pub fn check(&self, prev: &str) -> Result<(), String> {
        if self.prev != prev {
            return Err(format!("seq {}: prev does not match the previous record's hash", self.entry.seq));
        }
        if self.hash != hash(&self.prev, &self.entry) {
            return Err(format!("seq {}: hash does not match the record (edited?)", self.entry.seq));
        }
        Ok(())
    }
}

fn hash(prev: &str, entry: &AuditEntry) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(serde_json::to_vec(entry).expect("an entry serializes"));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(a: &OperatorAction) -> (&'static str, String) {
    use engine::TradingStatus::{Closed, Halted, Open};
    match *a {
        OperatorAction::SetTradingStatus { instrument, status } => {
            let name = match status {
                Open => "resume",
                Halted => "halt",
                Closed => "close",
            };
            (name, format!("instrument {}", instrument.0))
        }
        OperatorAction::MassCancel(t) => ("mass_cancel", target(t)),
        OperatorAction::KillAccount { account, engaged } => {
            (if engaged { "kill_account" } else { "release_account" }, format!("account {}", account.0))
        }
        OperatorAction::KillSession { session, engaged } => {
            (if engaged { "kill_session" } else { "release_session" }, format!("session key {session:016x}"))
        }
        OperatorAction::Reload { credentials_changed, account_changes, instrument_changes } => (
            "reload",
            format!(
                "{credentials_changed} session credentials changed, {account_changes} accounts changed, \
                 {instrument_changes} instruments changed"
            ),
        ),
    }
}

fn target(t: MassCancelTarget) -> String {
    match t {
        MassCancelTarget::Account(a, None) => format!("account {}", a.0),
        MassCancelTarget::Account(a, Some(i)) => format!("account {} in instrument {}", a.0, i.0),
        MassCancelTarget::Instrument(i) => format!("instrument {}", i.0),
        MassCancelTarget::All => "every order".to_owned(),
    }
}

/// `ts_ns` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
fn utc(ts_ns: u64) -> String {
    const NS_PER_DAY: u64 = 86_400_000_000_000;
    let (y, mo, d) = crate::fix::writer::civil_from_days((ts_ns / NS_PER_DAY) as i64);
    let ns = ts_ns % NS_PER_DAY;
    let s = ns / 1_000_000_000;
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z", s / 3600, s / 60 % 60, s % 60, ns % 1_000_000_000)
}

/// Which records `sable admin audit` / `GET /admin/audit` list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this operator's.
    pub by: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only records whose target mentions this (e.g. `instrument 1`, `account 7`).
    pub target: Option<String>,
    /// Only from this sequence number on.
    pub since_seq: Option<u64>,
    /// Only from this time on (ns since the epoch).
    pub since_ns: Option<u64>,
    /// At most this many (default: all).
    pub limit: Option<usize>,
}

impl Filter {
    /// Whether `r` passes.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let e = &r.entry;
        self.by.as_ref().is_none_or(|b| *b == e.by)
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.target.as_ref().is_none_or(|t| e.target == *t || e.target.starts_with(&format!("{t} ")))
            && self.since_seq.is_none_or(|s| e.seq >= s)
            && self.since_ns.is_none_or(|t| e.ts_ns >= t)
    }

    /// The most records to list.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(usize::MAX)
    }
}

//! The operator desk: how the admin port's market actions reach the pipeline. A request is
//! queued here and the gateway thread woken; the gateway thread, which owns the sequencer and
//! the sessions, turns it into operator commands, sequences them like any client's (so they
//! are journaled, replicated and replayed) and answers with their sequence numbers; the admin
//! port then waits for their audit records, which the publisher writes once they are durable
//! and applied.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use engine::{
    AccountId, AccountSpec, CommandBody, InstrumentSpec, MassCancelTarget, OperatorAction, OperatorCommand,
    OperatorName,
};

use super::DESK_TIMEOUT;
use crate::audit::{AuditRecord, SharedAudit};
use crate::session::credentials::CredentialStore;

/// What an operator asks for.
#[derive(Clone, Debug)]
pub enum DeskAction {
    /// One operator command as it is.
    Engine(OperatorAction),
    /// Engage or release the kill switch of the session called `name` (SBE username, FIX
    /// SenderCompID); engaging also cancels the orders of each of its accounts.
    Session {
        /// The session.
        name: String,
        /// Engage or release.
        engaged: bool,
    },
    /// A reload: a marker naming what changed, then the account and instrument changes.
    Reload {
        /// Sessions whose credentials changed.
        credentials_changed: u16,
        /// Accounts to upsert.
        accounts: Vec<AccountSpec>,
        /// Instruments to add or to update (same price and quantity grid).
        instruments: Vec<InstrumentSpec>,
    },
}

/// One queued request.
pub(crate) struct DeskRequest {
    by: OperatorName,
    action: DeskAction,
    reply: mpsc::Sender<Result<Vec<u64>, String>>,
}

impl DeskRequest {
    /// The commands the request becomes; `kill` engages or releases the kill switch of the
    /// session called by a name in the gateway and returns its key and accounts (`None`: no
    /// such session).
    pub(crate) fn commands(
        &self,
        mut kill: impl FnMut(&str, bool) -> Option<(u64, Vec<u32>)>,
    ) -> Result<Vec<CommandBody>, String> {
        let op = |action| CommandBody::Operator(OperatorCommand { by: self.by, action });
        match &self.action {
            DeskAction::Engine(a) => Ok(vec![op(*a)]),
            DeskAction::Session { name, engaged } => {
                let (key, accounts) =
                    kill(name, *engaged).ok_or_else(|| format!("no configured session is called {name:?}"))?;
                let mut v = vec![op(OperatorAction::KillSession { session: key, engaged: *engaged })];
                if *engaged {
                    let cancel = |a| op(OperatorAction::MassCancel(MassCancelTarget::Account(AccountId(a), None)));
                    v.extend(accounts.into_iter().map(cancel));
                }
                Ok(v)
            }
            DeskAction::Reload { credentials_changed, accounts, instruments } => {
                let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
                let marker = OperatorAction::Reload {
                    credentials_changed: *credentials_changed,
                    account_changes: count(accounts.len()),
                    instrument_changes: count(instruments.len()),
                };
                let mut v = vec![op(marker)];
                v.extend(accounts.iter().map(|a| CommandBody::UpsertAccount(*a)));
                v.extend(instruments.iter().map(|i| CommandBody::ConfigureInstrument(*i)));
                Ok(v)
            }
        }
    }

    /// Answers the admin port.
    pub(crate) fn answer(self, result: Result<Vec<u64>, String>) {
        // The admin port may have given up waiting; nothing to tell then.
        let _ = self.reply.send(result);
    }
}

/// What a reload did.
#[derive(Debug)]
pub struct Reloaded {
    /// The audit records (the `reload` marker).
    pub records: Vec<AuditRecord>,
    /// What waits for a restart.
    pub later: Vec<String>,
    /// Sessions whose credentials changed.
    pub credentials_changed: usize,
    /// Accounts whose settings changed (upserted).
    pub accounts_changed: usize,
}

/// The queue between the admin port and the gateway thread, and what a reload needs.
pub struct Desk {
    queue: Mutex<VecDeque<DeskRequest>>,
    waker: Arc<mio::Waker>,
    audit: SharedAudit,
    credentials: Arc<CredentialStore>,
    tls: Vec<Arc<crate::tls::TlsAcceptor>>,
    /// The configuration file the appliance runs from (none: the built-in one, no reload).
    config_path: Mutex<Option<PathBuf>>,
    /// The accounts the engine runs with (what a reload compares the file with).
    accounts: Mutex<Vec<AccountSpec>>,
    /// The instruments the gateway runs with (what a reload compares the file with).
    instruments: Mutex<Vec<InstrumentSpec>>,
}

impl Desk {
    pub(crate) fn new(
        waker: Arc<mio::Waker>,
        audit: SharedAudit,
        credentials: Arc<CredentialStore>,
        tls: Vec<Arc<crate::tls::TlsAcceptor>>,
        accounts: Vec<AccountSpec>,
        instruments: Vec<InstrumentSpec>,
    ) -> Self {
        Desk {
            queue: Mutex::new(VecDeque::new()),
            waker,
            audit,
            credentials,
            tls,
            config_path: Mutex::new(None),
            accounts: Mutex::new(accounts),
            instruments: Mutex::new(instruments),
        }
    }

    /// The audit log.
    pub fn audit(&self) -> &SharedAudit {
        &self.audit
    }

    /// Names the configuration file reloads read.
    pub fn set_config_path(&self, path: &Path) {
        *lock(&self.config_path) = Some(path.to_owned());
    }

    /// Queues `action` by `by`, waits for it to be sequenced and for its audit records.
    pub fn submit(&self, by: &str, action: DeskAction) -> Result<Vec<AuditRecord>, String> {
        let (reply, answer) = mpsc::channel();
        lock(&self.queue).push_back(DeskRequest { by: OperatorName::new(by), action, reply });
        self.waker.wake().map_err(|e| format!("waking the gateway thread: {e}"))?;
        let seqs = match answer.recv_timeout(DESK_TIMEOUT) {
            Ok(r) => r?,
            Err(_) => return Err("the gateway thread did not take the request (stopping or stalled)".into()),
        };
        let records = self.audit.wait_for(&seqs, DESK_TIMEOUT);
        if records.len() < seqs.len() {
            return Err(format!("sequenced as {seqs:?}, but not yet durable and applied after {DESK_TIMEOUT:?}"));
        }
        Ok(records)
    }

    /// Re-reads the configuration file: session credentials and TLS certificates swap in at
    /// once; account changes, new instruments and instrument changes on the same price and
    /// quantity grid are sequenced after a `reload` audit record (an instrument keeps its
    /// trading status); a grid change waits for a restart, as do new sessions. Returns the
    /// audit records and what waits for a restart.
    pub fn reload(&self, by: &str) -> Result<Reloaded, String> {
        let path = lock(&self.config_path).clone().ok_or("running the built-in configuration: no file to reload")?;
        let cfg = crate::config::Config::load(&path).and_then(|c| c.validate()).map_err(|e| e.to_string())?;
        crate::tls::reload_all(&self.tls);
        let report = self.credentials.reload_file(&path).map_err(|e| e.to_string())?;
        let accounts: Vec<AccountSpec> = {
            let running = lock(&self.accounts);
            cfg.accounts.iter().filter(|a| !running.contains(a)).copied().collect()
        };
        let mut later: Vec<String> =
            report.not_running.iter().map(|s| format!("session {s} starts at a restart")).collect();
        let (instruments, regrid) = instrument_changes(&lock(&self.instruments), &cfg.instruments);
        later.extend(regrid.iter().map(|s| {
            format!("instrument {} ({}): a new tick or lot size waits for a restart", s.id.0, s.symbol.as_str())
        }));
        let (credentials_changed, accounts_changed) = (report.changed.len(), accounts.len());
        let action = DeskAction::Reload {
            credentials_changed: u16::try_from(credentials_changed).unwrap_or(u16::MAX),
            accounts,
            instruments: instruments.clone(),
        };
        let records = self.submit(by, action)?;
        *lock(&self.accounts) = cfg.accounts.clone();
        let mut running = lock(&self.instruments);
        for spec in instruments {
            match running.iter_mut().find(|r| r.id == spec.id) {
                Some(r) => *r = spec,
                None => running.push(spec),
            }
        }
        Ok(Reloaded { records, later, credentials_changed, accounts_changed })
    }

    /// Takes the queued requests (the gateway thread).
    pub(crate) fn take(&self) -> Vec<DeskRequest> {
        lock(&self.queue).drain(..).collect()
    }
}

/// What a reload does to the instruments `running` → `file`: the specs to sequence (new ones,
/// changed ones on the same grid) and the changed ones whose grid differs (at a restart).
/// Instruments only in `running` stay as they are (they may hold orders); status is market
/// state, never compared.
fn instrument_changes(
    running: &[InstrumentSpec],
    file: &[InstrumentSpec],
) -> (Vec<InstrumentSpec>, Vec<InstrumentSpec>) {
    let (mut apply, mut regrid) = (Vec::new(), Vec::new());
    for s in file {
        match running.iter().find(|r| r.id == s.id) {
            None => apply.push(*s),
            Some(r) if InstrumentSpec { status: r.status, ..*s } == *r => {}
            Some(r) if (r.tick_size, r.lot_size) == (s.tick_size, s.lot_size) => apply.push(*s),
            Some(_) => regrid.push(*s),
        }
    }
    (apply, regrid)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

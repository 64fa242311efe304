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

use engine::{AccountId, AccountSpec, CommandBody, MassCancelTarget, OperatorAction, OperatorCommand, OperatorName};

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
    /// A reload: a marker naming what changed, then the account changes.
    Reload {
        /// Sessions whose credentials changed.
        credentials_changed: u16,
        /// Accounts to upsert.
        accounts: Vec<AccountSpec>,
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
            DeskAction::Reload { credentials_changed, accounts } => {
                let account_changes = u16::try_from(accounts.len()).unwrap_or(u16::MAX);
                let mut v =
                    vec![op(OperatorAction::Reload { credentials_changed: *credentials_changed, account_changes })];
                v.extend(accounts.iter().map(|a| CommandBody::UpsertAccount(*a)));
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
    /// The instruments the gateway started with (a reload names the ones the file changes).
    instruments: Mutex<Vec<engine::InstrumentSpec>>,
}

impl Desk {
    pub(crate) fn new(
        waker: Arc<mio::Waker>,
        audit: SharedAudit,
        credentials: Arc<CredentialStore>,
        tls: Vec<Arc<crate::tls::TlsAcceptor>>,
        accounts: Vec<AccountSpec>,
        instruments: Vec<engine::InstrumentSpec>,
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
    /// once, account changes are sequenced (after a `reload` audit record); instrument changes
    /// wait for a restart (the gateway's price grids are fixed while it runs). Returns the
    /// audit records and what was left for a restart.
    pub fn reload(&self, by: &str) -> Result<Reloaded, String> {
        let path = lock(&self.config_path).clone().ok_or("running the built-in configuration: no file to reload")?;
        let cfg = crate::config::Config::load(&path).and_then(|c| c.validate()).map_err(|e| e.to_string())?;
        crate::tls::reload_all(&self.tls);
        let report = self.credentials.reload_file(&path).map_err(|e| e.to_string())?;
        let changed: Vec<AccountSpec> = {
            let running = lock(&self.accounts);
            cfg.accounts.iter().filter(|a| !running.contains(a)).copied().collect()
        };
        let credentials_changed = u16::try_from(report.changed.len()).unwrap_or(u16::MAX);
        let accounts_changed = changed.len();
        let records = self.submit(by, DeskAction::Reload { credentials_changed, accounts: changed })?;
        *lock(&self.accounts) = cfg.accounts.clone();
        let mut later: Vec<String> =
            report.not_running.iter().map(|s| format!("session {s} starts at a restart")).collect();
        let started = lock(&self.instruments);
        let differs = |s: &&engine::InstrumentSpec| {
            !started.iter().any(|r| r.id == s.id && r.symbol == s.symbol && same_terms(r, s))
        };
        later.extend(
            cfg.instruments
                .iter()
                .filter(differs)
                .map(|s| format!("instrument {} ({}) changes at a restart", s.id.0, s.symbol.as_str())),
        );
        Ok(Reloaded { records, later, credentials_changed: report.changed.len(), accounts_changed })
    }

    /// Takes the queued requests (the gateway thread).
    pub(crate) fn take(&self) -> Vec<DeskRequest> {
        lock(&self.queue).drain(..).collect()
    }
}

/// Whether two specs of an instrument trade alike (its status is market state, not configuration).
fn same_terms(a: &engine::InstrumentSpec, b: &engine::InstrumentSpec) -> bool {
    engine::InstrumentSpec { status: a.status, ..*b } == *a
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! Operator commands: what an exchange operator does to a running market from the admin port
//! (halt and resume, mass cancel, kill switches, reloads). Each is a sequenced, journaled
//! command like an order, so it replicates and replays; it names who took it and ends with an
//! [`Event::Operator`] that says what the affected scope looked like before and after: the
//! audit record is a function of the journal alone.
//!
//! Kill switches: an account's is engaged here (its orders are cancelled and its new orders
//! refused with [`RejectReason::KillSwitch`] until released). A session's is enforced by the
//! gateway, which alone knows sessions; the engine only keeps the set of engaged ones, so a
//! restart or a promoted standby refuses the same sessions (the gateway follows a session's
//! kill with a mass cancel of each of its accounts).

use serde::{Deserialize, Serialize};

use crate::command::MassCancelTarget;
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::ids::{AccountId, InstrumentId};
use crate::instrument::TradingStatus;
use crate::limits::MAX_KILLED_SESSIONS;

/// Who took an operator action: the admin token's name, at most 16 bytes (longer names are cut
/// at a character boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorName([u8; 16]);

impl OperatorName {
    /// `name`, cut to 16 bytes at a character boundary.
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(16);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut b = [0u8; 16];
        b[..end].copy_from_slice(&name.as_bytes()[..end]);
        OperatorName(b)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

/// What an operator does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperatorAction {
    /// Halt, resume (open) or close an instrument.
    SetTradingStatus {
        /// The instrument.
        instrument: InstrumentId,
        /// Its new status.
        status: TradingStatus,
    },
    /// Cancel every live order in the target (resting orders and waiting stops).
    MassCancel(MassCancelTarget),
    /// Engage (cancel all its orders, refuse new ones) or release an account's kill switch.
    KillAccount {
        /// The account.
        account: AccountId,
        /// True: engage; false: release.
        engaged: bool,
    },
    /// Engage or release a session's kill switch (the gateway refuses the session's new orders
    /// and cancels its accounts' orders; the engine keeps the set for restarts).
    KillSession {
        /// The gateway's key of the session.
        session: u64,
        /// True: engage; false: release.
        engaged: bool,
    },
    /// Credentials, account settings and instrument terms were reloaded from the configuration
    /// file; the changes follow as `UpsertAccount` and `ConfigureInstrument` commands.
    Reload {
        /// Sessions whose credentials changed.
        credentials_changed: u16,
        /// `UpsertAccount` commands that follow this one.
        account_changes: u16,
        /// `ConfigureInstrument` commands that follow the account changes.
        instrument_changes: u16,
    },
}

/// An operator command: the action and who took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCommand {
    /// Who.
    pub by: OperatorName,
    /// What.
    pub action: OperatorAction,
}

/// The affected scope at one moment; fields that do not apply to the action are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeState {
    /// Live orders in the scope (resting and waiting stops).
    pub live_orders: Option<u32>,
    /// The instrument's trading status.
    pub status: Option<TradingStatus>,
    /// Whether the kill switch is engaged.
    pub kill_switch: Option<bool>,
}

/// What an operator command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorOutcome {
    /// The scope before.
    pub before: ScopeState,
    /// The scope after.
    pub after: ScopeState,
    /// Orders cancelled.
    pub cancelled: u32,
    /// Why nothing changed, when the command was refused.
    pub refused: Option<RejectReason>,
}

impl Engine {
    /// Applies an operator command; its last event is [`Event::Operator`].
    pub(crate) fn operator(&mut self, c: &OperatorCommand, out: &mut impl EventSink) {
        self.operator_commands += 1;
        let before = self.scope_state(&c.action);
        let (cancelled, refused) = match self.operator_effect(&c.action, out) {
            Ok(n) => (n, None),
            Err(r) => (0, Some(r)),
        };
        let after = self.scope_state(&c.action);
        out.push(Event::Operator(OperatorOutcome { before, after, cancelled, refused }));
    }

    fn operator_effect(&mut self, a: &OperatorAction, out: &mut impl EventSink) -> Result<u32, RejectReason> {
        match *a {
            OperatorAction::SetTradingStatus { instrument, status } => {
                let bi = self.book_index(instrument).ok_or(RejectReason::UnknownInstrument)?;
                self.books[bi].as_mut().expect("book exists").spec.status = status;
                out.push(Event::Instrument { instrument, status: Some(status) });
                Ok(0)
            }
            OperatorAction::MassCancel(target) => self.operator_cancel(target, out),
            OperatorAction::KillAccount { account, engaged } => {
                let acc = self.accounts.get_mut(account.0 as usize).and_then(Option::as_mut);
                acc.ok_or(RejectReason::UnknownAccount)?.killed = engaged;
                if engaged { self.operator_cancel(MassCancelTarget::Account(account, None), out) } else { Ok(0) }
            }
            OperatorAction::KillSession { session, engaged } => self.kill_session(session, engaged).map(|()| 0),
            OperatorAction::Reload { .. } => Ok(0),
        }
    }

    /// Cancels every live order of `target` with [`CancelReason::Operator`].
    fn operator_cancel(&mut self, target: MassCancelTarget, out: &mut impl EventSink) -> Result<u32, RejectReason> {
        let (account, instrument) = split(target);
        if account.is_some_and(|a| self.account(a).is_none()) {
            return Err(RejectReason::UnknownAccount);
        }
        if instrument.is_some_and(|i| self.book_index(i).is_none()) {
            return Err(RejectReason::UnknownInstrument);
        }
        let mut cancelled = 0;
        for bi in self.books_in(instrument) {
            if self.books[bi].is_some() {
                cancelled += self.sweep_book(
                    bi,
                    |o| account.is_none_or(|a| o.account == a.0),
                    |e, slot| {
                        let cl_ord_id = e.orders.get(slot).cl_ord_id;
                        e.cancel_resting(bi, slot, CancelReason::Operator, cl_ord_id, out);
                    },
                );
            }
        }
        Ok(cancelled)
    }

    fn kill_session(&mut self, session: u64, engaged: bool) -> Result<(), RejectReason> {
        match (self.killed_sessions.binary_search(&session), engaged) {
            (Ok(_), true) | (Err(_), false) => Ok(()),
            (Ok(i), false) => {
                self.killed_sessions.remove(i);
                Ok(())
            }
            (Err(_), true) if self.killed_sessions.len() >= MAX_KILLED_SESSIONS => {
                Err(RejectReason::TooManyKillSwitches)
            }
            (Err(i), true) => {
                self.killed_sessions.insert(i, session);
                Ok(())
            }
        }
    }

    /// The scope `a` acts on, as it is now.
    fn scope_state(&mut self, a: &OperatorAction) -> ScopeState {
        match *a {
            OperatorAction::SetTradingStatus { instrument, .. } => ScopeState {
                live_orders: self.count_live(None, Some(instrument)),
                status: self.instrument(instrument).map(|s| s.status),
                kill_switch: None,
            },
            OperatorAction::MassCancel(target) => {
                let (account, instrument) = split(target);
                ScopeState { live_orders: self.count_live(account, instrument), ..ScopeState::default() }
            }
            OperatorAction::KillAccount { account, .. } => match self.account(account) {
                Some(acc) => {
                    ScopeState { live_orders: Some(acc.open_orders), status: None, kill_switch: Some(acc.killed) }
                }
                None => ScopeState::default(),
            },
            OperatorAction::KillSession { session, .. } => ScopeState {
                kill_switch: Some(self.killed_sessions.binary_search(&session).is_ok()),
                ..ScopeState::default()
            },
            OperatorAction::Reload { .. } => ScopeState::default(),
        }
    }

    /// Live orders of `account` (any) in `instrument` (any); `None` if either does not exist.
    fn count_live(&mut self, account: Option<AccountId>, instrument: Option<InstrumentId>) -> Option<u32> {
        if account.is_some_and(|a| self.account(a).is_none())
            || instrument.is_some_and(|i| self.book_index(i).is_none())
        {
            return None;
        }
        let mut n = 0;
        for bi in self.books_in(instrument) {
            if self.books[bi].is_some() {
                n += self.sweep_book(bi, |o| account.is_none_or(|a| o.account == a.0), |_, _| {});
            }
        }
        Some(n)
    }

    /// Sessions whose kill switch is engaged (the gateway's keys), ascending.
    pub fn killed_sessions(&self) -> &[u64] {
        &self.killed_sessions
    }

    /// Operator commands applied so far, refused ones included (one audit record each).
    pub fn operator_commands(&self) -> u64 {
        self.operator_commands
    }

    /// Whether `account`'s kill switch is engaged.
    pub fn account_killed(&self, account: AccountId) -> bool {
        self.account(account).is_some_and(|a| a.killed)
    }
}

fn split(target: MassCancelTarget) -> (Option<AccountId>, Option<InstrumentId>) {
    match target {
        MassCancelTarget::Account(a, i) => (Some(a), i),
        MassCancelTarget::Instrument(i) => (None, Some(i)),
        MassCancelTarget::All => (None, None),
    }
}

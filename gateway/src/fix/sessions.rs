//! FIX 4.4 behind the session contract ([`crate::session::Protocol`]): frames each connection's
//! bytes (garbled messages are skipped, as FIX says), binds a connection to its configured
//! [`FixSession`] at Logon, and carries the sessions' output to the receiver.
//!
//! The first message of a connection must be a well-framed Logon naming a configured session
//! that is not logged on elsewhere; anything else (garbled bytes included) closes the
//! connection without a reply, and leaves every session as it was.
//!
//! A Logon for a session whose password is hashed is held as pending while the auth thread
//! verifies it ([`crate::session::auth`]): the session stays as it was (offline, nothing
//! consumed) and no other connection may log on to it meanwhile. Whatever the client sends
//! after its Logon stays unread in the receiver's buffer until the verdict: FIX forbids an
//! initiator to send before the Logon is answered, and a client that does gets its messages
//! processed in order once the Logon is accepted (or dropped with the connection when it is
//! refused), as an acceptor that processes messages one by one would. The logon timeout still
//! runs while a Logon is pending.

use std::net::IpAddr;

use crate::fix::dictionary::Dictionary;
use crate::fix::frame::next_message;
use crate::fix::message::{FieldTable, Message, parse};
use crate::fix::session::{Action, FixEnv, FixSession, InstrumentTable, LinkState};
use crate::fix::tags::{msg_type, tag};
use crate::sbe::convert::Report;
use crate::session::auth::{AuthRequest, Verdict};
use crate::session::credentials::{CredentialSet, CredentialStore, CredentialView};
use crate::session::logon_guard::{GuardKey, LogonGuard};
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol, session_key};

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod prop_tests;

/// A configured FIX session: its index in `[[fix_sessions]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FixSessionIx(pub usize);

/// A connection before and after its Logon.
#[derive(Clone, Copy, Debug)]
struct FixConn {
    bound: Option<FixSessionIx>,
    connected_ns: u64,
    peer: Option<IpAddr>,
}

/// A Logon waiting for the auth thread's verdict on its password.
#[derive(Debug)]
struct Pending {
    ix: FixSessionIx,
    attempt: u64,
    /// The Logon as received, judged again once the verdict is in.
    logon: Vec<u8>,
}

/// Every FIX connection and configured session.
pub(crate) struct FixSessions {
    /// Failed Logons, per configured session and per source address.
    guard: LogonGuard,
    sessions: Vec<FixSession>,
    /// `(SenderCompID, TargetCompID)` as the client sends them, per configured session.
    comp_ids: Vec<(String, String)>,
    dictionary: Dictionary,
    conns: Vec<Option<FixConn>>,
    /// The connection of each configured session while it is logged on.
    session_conn: Vec<Option<ConnId>>,
    logon_timeout_ns: u64,
    table: Box<FieldTable>,
    submits: Vec<engine::CommandBody>,
    /// The Logon pending on each connection slot.
    pending: Vec<Option<Pending>>,
    /// The connection whose Logon is pending, per configured session.
    session_pending: Vec<Option<ConnId>>,
    next_attempt: u64,
    credentials: CredentialView,
}

impl FixSessions {
    /// The configured `sessions` (with their client CompIDs, same order), for up to `max_conns`
    /// connections.
    pub(crate) fn new(
        sessions: Vec<FixSession>,
        comp_ids: Vec<(String, String)>,
        dictionary: Dictionary,
        max_conns: usize,
        logon_timeout_s: u32,
        guard: LogonGuard,
    ) -> Self {
        let n = sessions.len();
        let set = CredentialSet { sbe: Vec::new(), fix: sessions.iter().map(|s| s.credential().clone()).collect() };
        FixSessions {
            pending: (0..max_conns).map(|_| None).collect(),
            session_pending: vec![None; n],
            next_attempt: 0,
            credentials: CredentialView::fixed(set),
            guard,
            sessions,
            comp_ids,
            dictionary,
            conns: vec![None; max_conns],
            session_conn: vec![None; n],
            logon_timeout_ns: u64::from(logon_timeout_s) * 1_000_000_000,
            table: Box::default(),
            submits: Vec::with_capacity(16),
        }
    }

    /// Checks logons against `store` from now on (and picks up its reloads).
    pub(crate) fn with_credentials(mut self, store: std::sync::Arc<CredentialStore>) -> Self {
        self.credentials = CredentialView::following(store);
        self.refresh_credentials();
        self
    }

    /// Applies a credential reload, if one happened, to the sessions (live ones keep running;
    /// their next Logon is judged by the new credential).
    fn refresh_credentials(&mut self) {
        let (set, changed) = self.credentials.refresh();
        if changed {
            for (session, c) in self.sessions.iter_mut().zip(&set.fix) {
                session.set_credential(c.clone());
            }
        }
    }

    /// The configured session a Logon names, if it may bind now; otherwise why not.
    fn bind_target(&self, msg: &Message<'_>) -> Result<FixSessionIx, String> {
        if msg.msg_type() != msg_type::LOGON {
            return Err("first message is not a Logon".into());
        }
        let sender = msg.get(tag::SENDER_COMP_ID).unwrap_or(b"");
        let target = msg.get(tag::TARGET_COMP_ID).unwrap_or(b"");
        let Some(j) = self.comp_ids.iter().position(|(s, t)| s.as_bytes() == sender && t.as_bytes() == target) else {
            let (s, t) = (String::from_utf8_lossy(sender), String::from_utf8_lossy(target));
            return Err(format!("Logon from unknown session {s}->{t}"));
        };
        if self.session_conn[j].is_some() || self.session_pending[j].is_some() {
            return Err(format!("session {} is already logged on", self.sessions[j].their_comp_id()));
        }
        Ok(FixSessionIx(j))
    }

    /// One framed message of `conn`. Returns false once the connection is to close.
    fn on_message(&mut self, conn: ConnId, bytes: &[u8], now_ns: u64, env: &mut Env<'_>, out: &mut Outbox) -> bool {
        let Some(state) = self.conns[conn.0] else { return false };
        let mut submits = std::mem::take(&mut self.submits);
        let action = match state.bound {
            Some(ix) => {
                let instruments = InstrumentTable(env.instruments);
                let mut fenv = FixEnv {
                    dictionary: &self.dictionary,
                    instruments: &instruments,
                    next_exec_id: env.next_exec_id,
                    logon_locked: false,
                    password_verified: None,
                };
                let tx = out.tx(conn);
                Some(self.sessions[ix.0].on_message(bytes, now_ns, &mut fenv, tx, &mut |b| submits.push(b)))
            }
            None => self.on_first_message(conn, bytes, now_ns, env, out),
        };
        for body in submits.drain(..) {
            out.submit(body);
        }
        self.submits = submits;
        match action {
            Some(Action::Continue) => true,
            Some(Action::Close) => {
                out.close(conn, CloseKind::AfterFlush, "session terminated");
                false
            }
            None => false,
        }
    }

    /// The first message of `conn`: a Logon binds it to its configured session, which judges
    /// the Logon. Anything else closes the connection without a reply (`None`). A Logon the
    /// session refuses leaves the session as it was, so the next connection starts afresh. A
    /// Logon whose password must be verified is held as pending (`Some(Continue)`).
    fn on_first_message(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now_ns: u64,
        env: &mut Env<'_>,
        out: &mut Outbox,
    ) -> Option<Action> {
        self.refresh_credentials();
        let mut table = std::mem::take(&mut self.table);
        let bound = parse(bytes, &mut table)
            .map_err(|e| format!("first message unparseable: {e}"))
            .and_then(|msg| Ok((self.bind_target(&msg)?, msg)));
        let action = match bound {
            Err(why) => {
                out.close(conn, CloseKind::Now, why);
                None
            }
            Ok((ix, msg)) => {
                let keys = self.guard_keys(conn, ix);
                // A locked-out Logon is refused at once, without spending a verification.
                let to_verify = self.sessions[ix.0].credential().phc().filter(|_| !self.guard.locked(&keys, now_ns));
                if let Some(phc) = to_verify {
                    self.hold_logon(conn, ix, &msg, phc, out);
                    self.table = table;
                    return Some(Action::Continue);
                }
                Some(self.judge_logon(conn, ix, &msg, None, now_ns, env, out))
            }
        };
        self.table = table;
        action
    }

    /// The failed-logon keys of a Logon of `conn` for session `ix`.
    fn guard_keys(&self, conn: ConnId, ix: FixSessionIx) -> Vec<GuardKey> {
        let peer = self.conns[conn.0].and_then(|c| c.peer);
        [Some(GuardKey::Session(ix.0)), peer.map(GuardKey::Addr)].into_iter().flatten().collect()
    }

    /// Holds the Logon of `conn` until the auth thread has verified its password against
    /// `phc`. Nothing about the session changes; it is reserved for this connection meanwhile.
    fn hold_logon(
        &mut self,
        conn: ConnId,
        ix: FixSessionIx,
        msg: &Message<'_>,
        phc: std::sync::Arc<str>,
        out: &mut Outbox,
    ) {
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        let offered = msg.get(tag::PASSWORD).unwrap_or(b"").to_vec();
        out.request_auth(AuthRequest { conn, attempt, phc, offered });
        self.pending[conn.0] = Some(Pending { ix, attempt, logon: msg.bytes().to_vec() });
        self.session_pending[ix.0] = Some(conn);
    }

    /// Has session `ix` judge the Logon of `conn` (with the auth thread's verdict on its
    /// password, if it needed one), binds the connection if accepted, and counts a refusal
    /// for its credentials against the failed-logon guard.
    #[allow(clippy::too_many_arguments)]
    fn judge_logon(
        &mut self,
        conn: ConnId,
        ix: FixSessionIx,
        msg: &Message<'_>,
        verified: Option<bool>,
        now_ns: u64,
        env: &mut Env<'_>,
        out: &mut Outbox,
    ) -> Action {
        self.conns[conn.0] = self.conns[conn.0].map(|c| FixConn { bound: Some(ix), ..c });
        let keys = self.guard_keys(conn, ix);
        let instruments = InstrumentTable(env.instruments);
        let locked = self.guard.locked(&keys, now_ns);
        let mut fenv = FixEnv {
            dictionary: &self.dictionary,
            instruments: &instruments,
            next_exec_id: env.next_exec_id,
            logon_locked: locked,
            password_verified: verified,
        };
        let session = &mut self.sessions[ix.0];
        let action = session.on_logon(msg, now_ns, &mut fenv, out.tx(conn));
        match action {
            Action::Continue => {
                self.session_conn[ix.0] = Some(conn);
                self.guard.succeeded(&keys);
            }
            Action::Close => {
                // Logons refused while locked out are not counted: they would keep
                // extending the lockout of a client that merely retries.
                if session.credentials_refused() && !locked {
                    self.guard.failed(&keys, now_ns);
                }
                session.abandon_logon();
            }
        }
        action
    }

    /// Whether the Logon of `conn` waits for its verdict.
    fn is_pending(&self, conn: ConnId) -> bool {
        self.pending[conn.0].is_some()
    }
}

impl Protocol for FixSessions {
    fn name(&self) -> &'static str {
        "fix"
    }

    fn handle_connect(&mut self, conn: ConnId, peer: Option<IpAddr>, now_ns: u64) {
        self.conns[conn.0] = Some(FixConn { bound: None, connected_ns: now_ns, peer });
    }

    fn handle_input(&mut self, conn: ConnId, bytes: &[u8], now_ns: u64, env: &mut Env<'_>, out: &mut Outbox) -> usize {
        let mut consumed = 0;
        loop {
            if self.is_pending(conn) {
                // Held until the verdict (see the module docs).
                break;
            }
            let (len, msg) = match next_message(&bytes[consumed..]) {
                Ok(None) => break,
                Ok(Some(x)) => x,
                Err(garbled) if self.conns[conn.0].is_some_and(|c| c.bound.is_none()) => {
                    // Before a Logon there is no session to resynchronise: as QuickFIX, a
                    // garbled first message (a wrong BodyLength, say) drops the connection.
                    out.close(conn, CloseKind::Now, format!("first message garbled: {garbled}"));
                    return bytes.len();
                }
                Err(garbled) => {
                    tracing::warn!(conn = conn.0, reason = %garbled, "garbled FIX message ignored");
                    consumed += garbled.skip.max(1);
                    continue;
                }
            };
            consumed += len;
            if !self.on_message(conn, msg, now_ns, env, out) {
                break;
            }
        }
        consumed
    }

    fn handle_report(&mut self, index: usize, report: &Report, now_ns: u64, env: &Env<'_>, out: &mut Outbox) {
        let security_id = match report {
            Report::Execution(m) => m.security_id.get(),
            Report::MassCancel(m) => m.security_id.get(),
            Report::CancelReject(_) => 0,
        };
        let symbol = env.instruments.get(security_id as usize).and_then(|s| s.as_ref()).map(|s| s.symbol);
        let symbol = symbol.unwrap_or_default();
        let tx = self.session_conn[index].map(|c| out.tx(c));
        self.sessions[index].send_report(report, symbol.as_str().as_bytes(), now_ns, tx);
    }

    fn handle_timer(&mut self, now_ns: u64, out: &mut Outbox) {
        for c in 0..self.conns.len() {
            let Some(state) = self.conns[c] else { continue };
            let action = match state.bound {
                Some(ix) => self.sessions[ix.0].on_timer(now_ns, out.tx(ConnId(c))),
                None if now_ns.saturating_sub(state.connected_ns) > self.logon_timeout_ns => Action::Close,
                None => Action::Continue,
            };
            if action == Action::Close {
                out.close(ConnId(c), CloseKind::Now, "FIX session timed out");
            }
        }
    }

    fn handle_verdict(
        &mut self,
        conn: ConnId,
        attempt: u64,
        verdict: Verdict,
        now_ns: u64,
        env: &mut Env<'_>,
        out: &mut Outbox,
    ) {
        let Some(p) = self.pending[conn.0].take_if(|p| p.attempt == attempt) else { return };
        self.session_pending[p.ix.0] = None;
        let verified = match verdict {
            Verdict::Accepted => true,
            Verdict::Refused => false,
            Verdict::Unavailable => return out.close(conn, CloseKind::Now, "password not verified"),
        };
        let mut table = std::mem::take(&mut self.table);
        let action = match parse(&p.logon, &mut table) {
            Ok(msg) => self.judge_logon(conn, p.ix, &msg, Some(verified), now_ns, env, out),
            Err(_) => Action::Close,
        };
        self.table = table;
        if action == Action::Close {
            out.close(conn, CloseKind::AfterFlush, "session terminated");
        }
    }

    fn handle_disconnect(&mut self, conn: ConnId, now_ns: u64, stopping: bool, out: &mut Outbox) {
        if let Some(p) = self.pending[conn.0].take() {
            self.session_pending[p.ix.0] = None;
        }
        let Some(state) = self.conns[conn.0].take() else { return };
        let Some(ix) = state.bound else { return };
        tracing::info!(conn = conn.0, session = self.sessions[ix.0].their_comp_id(), "FIX disconnected");
        if self.session_conn[ix.0] != Some(conn) {
            return;
        }
        self.session_conn[ix.0] = None;
        let mut submits = std::mem::take(&mut self.submits);
        self.sessions[ix.0].on_disconnect(now_ns, &mut |b| submits.push(b));
        for body in submits.drain(..) {
            if !stopping {
                out.submit(body);
            }
        }
        self.submits = submits;
    }

    fn handle_shutdown(&mut self, now_ns: u64, out: &mut Outbox) {
        for (j, conn) in self.session_conn.iter().enumerate() {
            if let Some(c) = conn {
                self.sessions[j].on_shutdown(now_ns, out.tx(*c));
            }
        }
    }

    fn logged_on(&self) -> u64 {
        self.session_conn.iter().filter(|c| c.is_some()).count() as u64
    }

    fn throttled_total(&self) -> u64 {
        self.sessions.iter().map(FixSession::throttled).sum()
    }

    fn logon_failures_total(&self) -> u64 {
        self.guard.failures_total()
    }

    fn find_session(&self, name: &str) -> Option<(u64, Vec<u32>)> {
        let i = self.comp_ids.iter().position(|(sender, _)| sender == name)?;
        Some((session_key("fix", name), self.sessions[i].accounts().to_vec()))
    }

    fn set_kill_switch(&mut self, key: u64, engaged: bool) -> bool {
        let Some(i) = self.comp_ids.iter().position(|(sender, _)| session_key("fix", sender) == key) else {
            return false;
        };
        self.sessions[i].set_killed(engaged);
        true
    }

    fn not_authorised_total(&self) -> u64 {
        self.sessions.iter().map(FixSession::not_authorised).sum()
    }

    fn awaits_goodbye(&self) -> bool {
        self.session_conn
            .iter()
            .zip(&self.sessions)
            .any(|(c, s)| c.is_some() && matches!(s.state(), LinkState::LoggingOut { .. }))
    }

    fn flush_stores(&mut self) {
        for s in &mut self.sessions {
            s.flush();
        }
    }
}

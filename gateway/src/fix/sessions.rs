//! FIX 4.4 behind the session contract ([`crate::session::Protocol`]): frames each connection's
//! bytes (garbled messages are skipped, as FIX says), binds a connection to its configured
//! [`FixSession`] at Logon, and carries the sessions' output to the receiver.
//!
//! The first message of a connection must be a well-framed Logon naming a configured session
//! that is not logged on elsewhere; anything else (garbled bytes included) closes the
//! connection without a reply, and leaves every session as it was.

use std::net::IpAddr;

use crate::fix::dictionary::Dictionary;
use crate::fix::frame::next_message;
use crate::fix::message::{FieldTable, Message, parse};
use crate::fix::session::{Action, FixEnv, FixSession, InstrumentTable, LinkState};
use crate::fix::tags::{msg_type, tag};
use crate::sbe::convert::Report;
use crate::session::logon_guard::{GuardKey, LogonGuard};
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol};

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
        FixSessions {
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
        if self.session_conn[j].is_some() {
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
    /// session refuses leaves the session as it was, so the next connection starts afresh.
    fn on_first_message(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now_ns: u64,
        env: &mut Env<'_>,
        out: &mut Outbox,
    ) -> Option<Action> {
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
                self.conns[conn.0] = self.conns[conn.0].map(|c| FixConn { bound: Some(ix), ..c });
                let peer = self.conns[conn.0].and_then(|c| c.peer);
                let keys: Vec<GuardKey> =
                    [Some(GuardKey::Session(ix.0)), peer.map(GuardKey::Addr)].into_iter().flatten().collect();
                let instruments = InstrumentTable(env.instruments);
                let locked = self.guard.locked(&keys, now_ns);
                let mut fenv = FixEnv {
                    dictionary: &self.dictionary,
                    instruments: &instruments,
                    next_exec_id: env.next_exec_id,
                    logon_locked: locked,
                };
                let session = &mut self.sessions[ix.0];
                let action = session.on_logon(&msg, now_ns, &mut fenv, out.tx(conn));
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
                Some(action)
            }
        };
        self.table = table;
        action
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

    fn handle_disconnect(&mut self, conn: ConnId, now_ns: u64, stopping: bool, out: &mut Outbox) {
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

//! The SBE protocol behind the session contract ([`crate::session::Protocol`]): frames the bytes
//! of each connection, runs its FIXP state machine ([`SbeSession`]), keeps one persistent store
//! per configured session (outbound sequence numbers and the application messages sent, also
//! while the client is away), and answers RetransmitRequest from it.
//!
//! A Negotiate for a session whose password is hashed is held as pending while the auth thread
//! verifies it ([`crate::session::auth`]): nothing about the session changes meanwhile, and the
//! connection's later frames stay unread in the receiver's buffer until the verdict. FIXP has
//! the client wait for NegotiationResponse before it sends Establish; a client that sends it
//! early gets it processed in order after the Negotiate is answered, as a server that
//! processes frames one by one would.

use std::net::IpAddr;

use zerocopy::little_endian::{U32, U64};

use crate::config::{SessionConfig, SessionLimits};
use crate::sbe::codec::{Inbound, decode_inbound};
use crate::sbe::convert::Report;
use crate::sbe::frame::{MAX_FRAME_LEN_BYTES, next_frame};
use crate::sbe::messages::{NegotiationRejectCode, Retransmission, RetransmitReject, RetransmitRejectCode};
use crate::sbe::session::{
    MAX_RETRANSMIT_COUNT, Output, SbeSession, SbeSessionIx, ServerMessage, SessionEnv, SessionState,
};
use crate::session::auth::{AuthRequest, Verdict};
use crate::session::credentials::{Credential, CredentialSet, CredentialStore, CredentialView};
use crate::session::logon_guard::{GuardKey, LogonGuard};
use crate::session::outbound::{self, Replayed};
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol, session_key};
use crate::store::SessionStore;

#[cfg(test)]
mod auth_tests;

/// Every SBE connection and configured session.
pub(crate) struct SbeSessions {
    configs: Vec<SessionConfig>,
    limits: SessionLimits,
    /// One persistent store per configured session, in file order.
    stores: Vec<SessionStore>,
    /// The FIXP state machine of each connection slot in use.
    conns: Vec<Option<SbeSession>>,
    /// The connection of each configured session while it is negotiated or established.
    session_conn: Vec<Option<ConnId>>,
    /// Messages refused by the throttles of connections that are gone.
    throttled_gone: u64,
    /// Messages refused as not authorised on connections that are gone.
    not_authorised_gone: u64,
    outputs: Vec<Output>,
    /// Failed Negotiates, per configured session and per source address.
    guard: LogonGuard,
    /// Each connection slot's peer address.
    peers: Vec<Option<IpAddr>>,
    /// The Negotiate pending on each connection slot: its attempt number and frame.
    pending: Vec<Option<(u64, Vec<u8>)>>,
    next_attempt: u64,
    credentials: CredentialView,
    /// Whether each configured session's kill switch is engaged.
    killed: Vec<bool>,
}

/// A whole frame with a server message, encoded on the stack.
struct Frame {
    buf: [u8; MAX_FRAME_LEN_BYTES],
    len: usize,
}

impl Frame {
    fn encode(msg: &ServerMessage) -> Option<Frame> {
        let mut f = Frame { buf: [0; MAX_FRAME_LEN_BYTES], len: 0 };
        match msg.encode(&mut f.buf) {
            Ok(n) => {
                f.len = n;
                Some(f)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an outbound SBE message");
                None
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl SbeSessions {
    /// The sessions of `configs`, persisting into `stores` (same order), for up to
    /// `max_conns` connections.
    pub(crate) fn new(
        configs: Vec<SessionConfig>,
        limits: SessionLimits,
        stores: Vec<SessionStore>,
        max_conns: usize,
    ) -> Self {
        let n = configs.len();
        let sbe = configs.iter().map(|c| Credential::or_never(&c.username, &c.password, "sbe")).collect();
        SbeSessions {
            pending: (0..max_conns).map(|_| None).collect(),
            next_attempt: 0,
            credentials: CredentialView::fixed(CredentialSet { sbe, fix: Vec::new() }),
            configs,
            guard: limits.logon_guard(),
            peers: vec![None; max_conns],
            limits,
            stores,
            conns: (0..max_conns).map(|_| None).collect(),
            session_conn: vec![None; n],
            killed: vec![false; n],
            throttled_gone: 0,
            not_authorised_gone: 0,
            outputs: Vec::with_capacity(16),
        }
    }

    /// Checks Negotiates against `store` from now on (and picks up its reloads).
    pub(crate) fn with_credentials(mut self, store: std::sync::Arc<CredentialStore>) -> Self {
        self.credentials = CredentialView::following(store);
        self
    }

    /// Handles one frame (or a framing error) of `conn`; false once the session closed. A
    /// Negotiate whose password must be verified is held (see the module docs); `verified`
    /// is the auth thread's verdict when the held frame comes back.
    fn on_frame(
        &mut self,
        conn: ConnId,
        frame: Result<&[u8], String>,
        now_ns: u64,
        env: &mut Env<'_>,
        verified: Option<bool>,
        out: &mut Outbox,
    ) -> bool {
        let guard_keys = self.conns[conn.0].as_ref().and_then(|s| self.negotiate_keys(conn, s, &frame));
        let locked_out = guard_keys.as_ref().is_some_and(|keys| self.guard.locked(keys, now_ns));
        if guard_keys.is_some() && !locked_out && verified.is_none() && self.hold_negotiate(conn, &frame, out) {
            return true;
        }
        let Some(session) = self.conns[conn.0].as_mut() else { return false };
        let instruments = env.instruments;
        let (configs, session_conn, stores) = (&self.configs, &self.session_conn, &self.stores);
        let mut senv = SessionEnv {
            sessions: configs,
            limits: &self.limits,
            instrument: |id: engine::InstrumentId| instruments.get(id.0 as usize).and_then(|s| s.as_ref()),
            in_use: |sid: u64| {
                configs
                    .iter()
                    .position(|s| s.session_id == sid)
                    .and_then(|i| session_conn[i])
                    .is_some_and(|c| c != conn)
            },
            next_exec_id: &mut *env.next_exec_id,
            resume: &|i: SbeSessionIx| (stores[i.0].next_sender_seq(), stores[i.0].next_target_seq() - 1),
            locked_out,
            credentials: &self.credentials.refresh().0.sbe,
            killed: &self.killed,
            password_verified: verified,
        };
        let outputs = &mut self.outputs;
        match frame.and_then(|msg| decode_inbound(msg).map_err(|e| e.to_string())) {
            Ok(inbound) => session.on_message(&inbound, now_ns, &mut senv, &mut |o| outputs.push(o)),
            Err(reason) => {
                tracing::warn!(conn = conn.0, %reason, "malformed SBE input; terminating the session");
                session.on_malformed(&reason, &mut |o| outputs.push(o));
            }
        }
        let open = session.state() != SessionState::Closed;
        let negotiated = session.config_index().is_some();
        if let Some(keys) = guard_keys.filter(|_| !locked_out) {
            self.count_negotiation(&keys, negotiated, now_ns);
        }
        self.persist_inbound_seq(conn);
        open
    }

    /// Holds `frame`, a Negotiate of `conn`, if the session it names has a hashed password:
    /// asks the auth thread to verify it. True if held.
    fn hold_negotiate(&mut self, conn: ConnId, frame: &Result<&[u8], String>, out: &mut Outbox) -> bool {
        let Ok(bytes) = frame else { return false };
        let Ok(Inbound::Negotiate(m)) = decode_inbound(bytes) else { return false };
        let sid = m.session_id.get();
        let Some(i) = self.configs.iter().position(|c| c.session_id == sid) else { return false };
        let Some(phc) = self.credentials.refresh().0.sbe.get(i).and_then(Credential::phc) else { return false };
        let offered = crate::sbe::messages::char_field_str(&m.password).unwrap_or("").as_bytes().to_vec();
        self.next_attempt += 1;
        let attempt = self.next_attempt;
        out.request_auth(AuthRequest { conn, attempt, phc, offered });
        self.pending[conn.0] = Some((attempt, bytes.to_vec()));
        true
    }

    /// The failed-logon keys of a frame that is a Negotiate on a fresh connection: the session
    /// it names (if configured) and the peer's address.
    fn negotiate_keys(
        &self,
        conn: ConnId,
        session: &SbeSession,
        frame: &Result<&[u8], String>,
    ) -> Option<Vec<GuardKey>> {
        if session.state() != SessionState::AwaitNegotiate {
            return None;
        }
        let Ok(Inbound::Negotiate(m)) = frame.as_ref().map_err(|_| ()).and_then(|f| decode_inbound(f).map_err(|_| ()))
        else {
            return None;
        };
        let sid = m.session_id.get();
        let session_key = self.configs.iter().position(|c| c.session_id == sid).map(GuardKey::Session);
        Some(session_key.into_iter().chain(self.peers[conn.0].map(GuardKey::Addr)).collect())
    }

    /// Counts a Negotiate against its keys: a credentials refusal is a failure, a negotiated
    /// session forgives them.
    fn count_negotiation(&mut self, keys: &[GuardKey], negotiated: bool, now_ns: u64) {
        let refused_credentials = self.outputs.iter().any(|o| {
            matches!(o, Output::Send(ServerMessage::NegotiationReject(r)) if r.code == NegotiationRejectCode::Credentials.to_u8())
        });
        if negotiated {
            self.guard.succeeded(keys);
        } else if refused_credentials {
            self.guard.failed(keys, now_ns);
        }
    }

    /// Keeps the store's next inbound seq in step with the established session.
    fn persist_inbound_seq(&mut self, conn: ConnId) {
        let Some(session) = self.conns[conn.0].as_ref() else { return };
        if !session.is_established() {
            return;
        }
        let Some(i) = session.config_index() else { return };
        let store = &mut self.stores[i.0];
        if store.next_target_seq() != session.next_recv_seq()
            && let Err(e) = store.set_next_target_seq(session.next_recv_seq())
        {
            tracing::error!(session = i.0, error = %e, "session store write failed");
        }
    }

    /// Carries out what the session of `conn` asked for.
    fn apply_outputs(&mut self, conn: ConnId, now_ns: u64, out: &mut Outbox) {
        let mut outputs = std::mem::take(&mut self.outputs);
        for o in outputs.drain(..) {
            match o {
                Output::Send(msg) => {
                    self.track_session(conn, &msg);
                    self.send(conn, &msg, now_ns, out);
                }
                Output::Submit(body) => out.submit(body),
                Output::Close => out.close(conn, CloseKind::AfterFlush, "session terminated"),
                Output::Retransmit { session_id, request_timestamp, from_seq, count } => {
                    self.retransmit(conn, (session_id, request_timestamp), (from_seq, count), now_ns, out);
                }
            }
        }
        self.outputs = outputs;
    }

    /// Keeps `session_conn` in step with negotiation.
    fn track_session(&mut self, conn: ConnId, msg: &ServerMessage) {
        if let ServerMessage::NegotiationResponse(_) = msg
            && let Some(i) = self.conns[conn.0].as_ref().and_then(SbeSession::config_index)
        {
            self.session_conn[i.0] = Some(conn);
        }
    }

    /// Queues `msg` on `conn`; an application message is stored under its sequence number
    /// before its bytes can reach the socket.
    fn send(&mut self, conn: ConnId, msg: &ServerMessage, now_ns: u64, out: &mut Outbox) {
        let Some(session) = self.conns[conn.0].as_mut() else { return };
        let Some(frame) = Frame::encode(msg) else { return };
        match session.config_index() {
            Some(i) if msg.is_application() => {
                let store = &mut self.stores[i.0];
                debug_assert_eq!(store.next_sender_seq(), session.next_send_seq(), "store and session agree on seqs");
                outbound::emit(store, session.next_send_seq(), frame.bytes(), true, Some(out.tx(conn)));
            }
            _ => out.tx(conn).extend_from_slice(frame.bytes()),
        }
        session.on_sent(msg, now_ns);
    }

    /// Answers a RetransmitRequest: `Retransmission` and the stored frames, or
    /// `RetransmitReject` when the range was never sent, is no longer retained, or is too long.
    fn retransmit(&mut self, conn: ConnId, request: (u64, u64), range: (u64, u32), now_ns: u64, out: &mut Outbox) {
        let ((session_id, ts), (from_seq, count)) = (request, range);
        let Some(i) = self.conns[conn.0].as_ref().and_then(SbeSession::config_index) else { return };
        let last = from_seq.saturating_add(u64::from(count)).saturating_sub(1);
        let code = if count == 0 || count > MAX_RETRANSMIT_COUNT {
            Some(RetransmitRejectCode::RequestLimitExceeded)
        } else if !outbound::fully_retained(&self.stores[i.0], from_seq, last) {
            Some(RetransmitRejectCode::OutOfRange)
        } else {
            None
        };
        let (session_id, request_timestamp) = (U64::new(session_id), U64::new(ts));
        if let Some(code) = code {
            let m = RetransmitReject { session_id, request_timestamp, code: code.to_u8() };
            return self.send(conn, &ServerMessage::RetransmitReject(m), now_ns, out);
        }
        let m =
            Retransmission { session_id, request_timestamp, next_seq_no: U64::new(from_seq), count: U32::new(count) };
        self.send(conn, &ServerMessage::Retransmission(m), now_ns, out);
        let tx = out.tx(conn);
        let res = outbound::replay(&self.stores[i.0], from_seq, last, |step| match step {
            Replayed::Message { bytes, .. } => tx.extend_from_slice(bytes),
            // Every SBE application message is stored, so a gap is a store that lost one.
            Replayed::Gap { from, to } => tracing::error!(session = i.0, from, to, "stored messages missing"),
        });
        if let Err(e) = res {
            tracing::error!(session = i.0, error = %e, "session store read failed during retransmission");
        }
    }

    /// A report for session `ix` while no connection of it is established: kept in its store
    /// under the next sequence number, for a RetransmitRequest after it re-establishes.
    fn store_offline(&mut self, ix: SbeSessionIx, report: &Report) {
        let Some(frame) = Frame::encode(&ServerMessage::Report(*report)) else { return };
        let store = &mut self.stores[ix.0];
        outbound::emit(store, store.next_sender_seq(), frame.bytes(), true, None);
    }
}

impl Protocol for SbeSessions {
    fn name(&self) -> &'static str {
        "sbe"
    }

    fn handle_connect(&mut self, conn: ConnId, peer: Option<IpAddr>, now_ns: u64) {
        self.conns[conn.0] = Some(SbeSession::new(now_ns));
        self.peers[conn.0] = peer;
    }

    fn handle_input(&mut self, conn: ConnId, bytes: &[u8], now_ns: u64, env: &mut Env<'_>, out: &mut Outbox) -> usize {
        let mut consumed = 0;
        loop {
            if self.pending[conn.0].is_some() {
                // Held until the verdict (see the module docs).
                break;
            }
            let (open, frame_len) = match next_frame(&bytes[consumed..]) {
                Ok(None) => break,
                Ok(Some((len, msg))) => (self.on_frame(conn, Ok(msg), now_ns, env, None, out), len),
                Err(e) => (self.on_frame(conn, Err(e.to_string()), now_ns, env, None, out), 0),
            };
            consumed += frame_len;
            self.apply_outputs(conn, now_ns, out);
            if !open || frame_len == 0 {
                break;
            }
        }
        consumed
    }

    fn handle_report(&mut self, index: usize, report: &Report, now_ns: u64, _env: &Env<'_>, out: &mut Outbox) {
        let live =
            self.session_conn[index].filter(|c| self.conns[c.0].as_ref().is_some_and(SbeSession::is_established));
        match live {
            Some(conn) => self.send(conn, &ServerMessage::Report(*report), now_ns, out),
            None => self.store_offline(SbeSessionIx(index), report),
        }
    }

    fn handle_timer(&mut self, now_ns: u64, out: &mut Outbox) {
        for c in 0..self.conns.len() {
            let Some(session) = self.conns[c].as_mut() else { continue };
            let outputs = &mut self.outputs;
            session.on_timer(now_ns, &mut |o| outputs.push(o));
            self.apply_outputs(ConnId(c), now_ns, out);
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
        let Some((_, frame)) = self.pending[conn.0].take_if(|(a, _)| *a == attempt) else { return };
        let verified = match verdict {
            Verdict::Accepted => true,
            Verdict::Refused => false,
            Verdict::Unavailable => return out.close(conn, CloseKind::Now, "password not verified"),
        };
        self.on_frame(conn, Ok(&frame), now_ns, env, Some(verified), out);
        self.apply_outputs(conn, now_ns, out);
    }

    fn handle_disconnect(&mut self, conn: ConnId, _now_ns: u64, _stopping: bool, _out: &mut Outbox) {
        self.pending[conn.0] = None;
        let Some(session) = self.conns[conn.0].take() else { return };
        self.throttled_gone += session.throttled();
        self.not_authorised_gone += session.not_authorised();
        if let Some(i) = session.config_index()
            && self.session_conn[i.0] == Some(conn)
        {
            self.session_conn[i.0] = None;
        }
        tracing::info!(conn = conn.0, session = session.session_id(), "SBE session disconnected");
    }

    fn handle_shutdown(&mut self, now_ns: u64, out: &mut Outbox) {
        for c in 0..self.conns.len() {
            let Some(session) = self.conns[c].as_mut() else { continue };
            let outputs = &mut self.outputs;
            session.on_shutdown(&mut |o| outputs.push(o));
            self.apply_outputs(ConnId(c), now_ns, out);
        }
    }

    fn awaits_goodbye(&self) -> bool {
        false
    }

    fn logged_on(&self) -> u64 {
        let live =
            |c: &Option<ConnId>| c.is_some_and(|c| self.conns[c.0].as_ref().is_some_and(SbeSession::is_established));
        self.session_conn.iter().filter(|c| live(c)).count() as u64
    }

    fn throttled_total(&self) -> u64 {
        self.throttled_gone + self.conns.iter().flatten().map(SbeSession::throttled).sum::<u64>()
    }

    fn logon_failures_total(&self) -> u64 {
        self.guard.failures_total()
    }

    fn find_session(&self, name: &str) -> Option<(u64, Vec<u32>)> {
        let c = self.configs.iter().find(|c| c.username == name)?;
        Some((session_key("sbe", &c.username), c.accounts.clone()))
    }

    fn set_kill_switch(&mut self, key: u64, engaged: bool) -> bool {
        let Some(i) = self.configs.iter().position(|c| session_key("sbe", &c.username) == key) else { return false };
        self.killed[i] = engaged;
        true
    }

    fn not_authorised_total(&self) -> u64 {
        self.not_authorised_gone + self.conns.iter().flatten().map(SbeSession::not_authorised).sum::<u64>()
    }

    fn flush_stores(&mut self) {
        for (i, st) in self.stores.iter_mut().enumerate() {
            if let Err(e) = st.flush() {
                tracing::error!(session = i, error = %e, "session store flush failed");
            }
        }
    }
}

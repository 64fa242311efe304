//! The FIXP-style SBE session, sans-IO: decoded messages and clock ticks in, [`Output`]s out.
//! The receiver owns the socket and `sbe/sessions.rs` frames the bytes and carries the outputs out; tests drive
//! this state machine directly.
//!
//! ```text
//!  AwaitNegotiate --Negotiate ok--> Negotiated --Establish ok--> Established --Terminate--> Closed
//!        |  bad credentials / duplicate: NegotiationReject, Closed
//!        |  anything else: Terminate(Unspecified), Closed
//! ```
//!
//! - Inbound application messages are implicitly sequenced from the `NextSeqNo` of Establish;
//!   a client `Sequence` moves the expectation forward (never back).
//! - Outbound application messages (reports, BusinessMessageReject) carry the session's
//!   persistent sequence (`sbe/sessions.rs` keeps them in the session's
//!   [`crate::store::SessionStore`], also while the client is away); EstablishmentAck
//!   announces the next one and the last inbound seq processed, `Sequence` heartbeats repeat
//!   it. `RetransmitRequest` becomes [`Output::Retransmit`]: `sbe/sessions.rs` answers with
//!   `Retransmission` and the stored messages, or `RetransmitReject` when the range is not
//!   (or no longer) stored or larger than [`MAX_RETRANSMIT_COUNT`].
//! - Keepalive: a `Sequence` goes out when nothing was sent for one interval; nothing received
//!   for two intervals ends the session with `Terminate(KeepaliveExpired)`.
//! - An application message for an account the session is not configured for is answered with
//!   `BusinessMessageReject(NotAuthorized)`; one that fails validation with the protocol's
//!   reject (ExecutionReport Rejected, OrderCancelReject, OrderMassCancelReport) carrying the
//!   [`ConvertError::code`].
//! - Malformed bytes end only this session: `Terminate(InvalidMessage)` with the reason.
//! - Throttle: application messages beyond the session's configured rate and burst (GCRA) get
//!   `BusinessMessageReject(Throttled)`, or end the session with `Terminate(Throttled)`, as the
//!   session's `throttle_policy` says. A throttled message still consumes its sequence number.

use engine::{CommandBody, InstrumentId, InstrumentSpec};
use zerocopy::FromZeros;
use zerocopy::little_endian::{U16, U64};

use crate::config::{SessionConfig, SessionLimits};
use crate::sbe::codec::{EncodeError, Inbound, encode};
use crate::sbe::convert::{self, Report, ReportContext};
use crate::sbe::messages::{
    BusinessMessageReject, BusinessRejectReason, Establish, EstablishRejectCode, EstablishmentAck, EstablishmentReject,
    FlowType, Negotiate, NegotiationReject, NegotiationRejectCode, NegotiationResponse, Retransmission,
    RetransmitReject, RetransmitRejectCode, RetransmitRequest, Sequence, Terminate, TerminationCode, char_field_lossy,
    char_field_str,
};
use crate::session::credentials::{Check, Credential};
use crate::session::rules::{Admission, Refusal, SessionCommon};

pub use crate::limits::{HANDSHAKE_TIMEOUT_NS, MAX_RETRANSMIT_COUNT};

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Connected, waiting for Negotiate.
    AwaitNegotiate,
    /// Negotiated, waiting for Establish.
    Negotiated,
    /// Application messages flow.
    Established,
    /// Terminated; the connection is to be closed.
    Closed,
}

/// A message the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// NegotiationResponse.
    NegotiationResponse(NegotiationResponse),
    /// NegotiationReject.
    NegotiationReject(NegotiationReject),
    /// EstablishmentAck.
    EstablishmentAck(EstablishmentAck),
    /// EstablishmentReject.
    EstablishmentReject(EstablishmentReject),
    /// Sequence (heartbeat).
    Sequence(Sequence),
    /// RetransmitReject.
    RetransmitReject(RetransmitReject),
    /// Retransmission (the stored messages follow it).
    Retransmission(Retransmission),
    /// Terminate.
    Terminate(Terminate),
    /// BusinessMessageReject (an application message).
    BusinessReject(BusinessMessageReject),
    /// A report (an application message).
    Report(Report),
}

impl ServerMessage {
    /// Writes the message as a complete frame into `buf`; returns the frame length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            ServerMessage::NegotiationResponse(m) => encode(m, buf),
            ServerMessage::NegotiationReject(m) => encode(m, buf),
            ServerMessage::EstablishmentAck(m) => encode(m, buf),
            ServerMessage::EstablishmentReject(m) => encode(m, buf),
            ServerMessage::Sequence(m) => encode(m, buf),
            ServerMessage::RetransmitReject(m) => encode(m, buf),
            ServerMessage::Retransmission(m) => encode(m, buf),
            ServerMessage::Terminate(m) => encode(m, buf),
            ServerMessage::BusinessReject(m) => encode(m, buf),
            ServerMessage::Report(r) => r.encode(buf),
        }
    }

    /// Whether the message is an application message (counted in the outbound sequence).
    pub fn is_application(&self) -> bool {
        matches!(self, ServerMessage::BusinessReject(_) | ServerMessage::Report(_))
    }
}

/// What the session asks its owner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a message.
    Send(ServerMessage),
    /// Sequence this command into the engine.
    Submit(CommandBody),
    /// Close the connection after sending what is queued.
    Close,
    /// Answer a RetransmitRequest from the session's store.
    Retransmit {
        /// The session.
        session_id: u64,
        /// The request's timestamp (echoed).
        request_timestamp: u64,
        /// First seq asked for.
        from_seq: u64,
        /// How many.
        count: u32,
    },
}

/// What the session needs to know about the rest of the gateway.
pub struct SessionEnv<'a, F: Fn(InstrumentId) -> Option<&'a InstrumentSpec>, U: Fn(u64) -> bool> {
    /// Configured sessions (credentials and accounts).
    pub sessions: &'a [SessionConfig],
    /// Keepalive bounds.
    pub limits: &'a SessionLimits,
    /// Instrument lookup for converting orders.
    pub instrument: F,
    /// Whether a session id is already established on another connection.
    pub in_use: U,
    /// Exec id counter for gateway rejects.
    pub next_exec_id: &'a mut u64,
    /// Where configured session `i` resumes: (next outbound seq, last inbound seq processed),
    /// from its persistent store.
    pub resume: &'a dyn Fn(SbeSessionIx) -> (u64, u64),
    /// Failed logons locked this Negotiate's session or address out: it is refused as a wrong
    /// password is, whatever its credentials.
    pub locked_out: bool,
    /// Each configured session's credential (same order as `sessions`).
    pub credentials: &'a [Credential],
    /// Whether each configured session's kill switch is engaged (same order as `sessions`).
    pub killed: &'a [bool],
    /// The auth thread's verdict on this Negotiate's password, when its session's is hashed
    /// (`None`: not verified; a hashed credential then refuses).
    pub password_verified: Option<bool>,
}

/// A configured SBE session: its index in `[[sessions]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SbeSessionIx(pub usize);

/// One connection's FIXP session.
#[derive(Debug)]
pub struct SbeSession {
    state: SessionState,
    session_id: u64,
    config_index: Option<SbeSessionIx>,
    keepalive_ns: u64,
    next_recv_seq: u64,
    next_send_seq: u64,
    connected_ns: u64,
    last_recv_ns: u64,
    last_send_ns: u64,
    /// The configured session's throttle and accounts, from Negotiate on.
    admission: Option<Admission>,
}

fn terminate(session_id: u64, code: TerminationCode, reason: &str) -> ServerMessage {
    ServerMessage::Terminate(Terminate {
        session_id: U64::new(session_id),
        code: code.to_u8(),
        reason: char_field_lossy(reason.as_bytes()),
    })
}

impl SbeSession {
    /// A fresh connection at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        SbeSession {
            state: SessionState::AwaitNegotiate,
            session_id: 0,
            config_index: None,
            keepalive_ns: 0,
            next_recv_seq: 1,
            next_send_seq: 1,
            connected_ns: now_ns,
            last_recv_ns: now_ns,
            last_send_ns: now_ns,
            admission: None,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The negotiated session id (0 before Negotiate).
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Index of the session's entry in the configuration, once negotiated.
    pub fn config_index(&self) -> Option<SbeSessionIx> {
        self.config_index
    }

    /// The next inbound application sequence number expected.
    pub fn next_recv_seq(&self) -> u64 {
        self.next_recv_seq
    }

    /// The next outbound application sequence number.
    pub fn next_send_seq(&self) -> u64 {
        self.next_send_seq
    }

    /// Application messages this connection's throttle refused.
    pub(crate) fn throttled(&self) -> u64 {
        self.admission.as_ref().map_or(0, Admission::throttled)
    }

    /// Application messages refused on this connection for naming an account it may not act on.
    pub(crate) fn not_authorised(&self) -> u64 {
        self.admission.as_ref().map_or(0, Admission::not_authorised)
    }

    /// Whether reports may be sent to this session.
    pub fn is_established(&self) -> bool {
        self.state == SessionState::Established
    }

    /// Records that the owner sent `msg` at `now_ns` (keeps sequence numbers and the keepalive
    /// clock right). Call for every message actually queued on the socket.
    pub fn on_sent(&mut self, msg: &ServerMessage, now_ns: u64) {
        if msg.is_application() {
            self.next_send_seq += 1;
        }
        self.last_send_ns = now_ns;
    }

    fn close(&mut self, code: TerminationCode, reason: &str, out: &mut impl FnMut(Output)) {
        out(Output::Send(terminate(self.session_id, code, reason)));
        out(Output::Close);
        self.state = SessionState::Closed;
    }

    /// Bytes that cannot be framed or decoded arrived: the session ends.
    pub fn on_malformed(&mut self, reason: &str, out: &mut impl FnMut(Output)) {
        if self.state != SessionState::Closed {
            self.close(TerminationCode::InvalidMessage, reason, out);
        }
    }

    /// The server is shutting down.
    pub fn on_shutdown(&mut self, out: &mut impl FnMut(Output)) {
        if self.state != SessionState::Closed {
            self.close(TerminationCode::ShuttingDown, "server shutting down", out);
        }
    }

    /// The owner could not deliver output fast enough.
    pub fn on_slow_consumer(&mut self, out: &mut impl FnMut(Output)) {
        if self.state != SessionState::Closed {
            self.close(TerminationCode::SlowConsumer, "outbound buffer full", out);
        }
    }

    /// Clock tick: heartbeats and timeouts.
    pub fn on_timer(&mut self, now_ns: u64, out: &mut impl FnMut(Output)) {
        match self.state {
            SessionState::AwaitNegotiate | SessionState::Negotiated => {
                if now_ns.saturating_sub(self.connected_ns) > HANDSHAKE_TIMEOUT_NS {
                    self.close(TerminationCode::Unspecified, "not established in time", out);
                }
            }
            SessionState::Established => {
                if now_ns.saturating_sub(self.last_recv_ns) > 2 * self.keepalive_ns {
                    self.close(TerminationCode::KeepaliveExpired, "nothing received for two keepalive intervals", out);
                } else if now_ns.saturating_sub(self.last_send_ns) >= self.keepalive_ns {
                    out(Output::Send(ServerMessage::Sequence(Sequence { next_seq_no: U64::new(self.next_send_seq) })));
                }
            }
            SessionState::Closed => {}
        }
    }

    /// One decoded inbound message at `now_ns`.
    pub fn on_message<'a, F, U>(
        &mut self,
        msg: &Inbound<'_>,
        now_ns: u64,
        env: &mut SessionEnv<'a, F, U>,
        out: &mut impl FnMut(Output),
    ) where
        F: Fn(InstrumentId) -> Option<&'a InstrumentSpec>,
        U: Fn(u64) -> bool,
    {
        if self.state == SessionState::Closed {
            return;
        }
        self.last_recv_ns = now_ns;
        match (self.state, msg) {
            (SessionState::AwaitNegotiate, Inbound::Negotiate(m)) => self.on_negotiate(m, env, out),
            (SessionState::Negotiated | SessionState::Established, Inbound::Negotiate(m)) => {
                out(Output::Send(ServerMessage::NegotiationReject(NegotiationReject {
                    session_id: m.session_id,
                    request_timestamp: m.timestamp,
                    code: NegotiationRejectCode::AlreadyNegotiated.to_u8(),
                })));
            }
            (SessionState::Negotiated, Inbound::Establish(m)) => self.on_establish(m, env, out),
            (SessionState::AwaitNegotiate, Inbound::Establish(m)) => {
                out(Output::Send(ServerMessage::EstablishmentReject(EstablishmentReject {
                    session_id: m.session_id,
                    request_timestamp: m.timestamp,
                    code: EstablishRejectCode::Unnegotiated.to_u8(),
                })));
                out(Output::Close);
                self.state = SessionState::Closed;
            }
            (SessionState::Established, Inbound::Establish(m)) => {
                out(Output::Send(ServerMessage::EstablishmentReject(EstablishmentReject {
                    session_id: m.session_id,
                    request_timestamp: m.timestamp,
                    code: EstablishRejectCode::AlreadyEstablished.to_u8(),
                })));
            }
            (_, Inbound::Terminate(_)) => {
                self.close(TerminationCode::Finished, "", out);
            }
            (SessionState::Established, Inbound::Sequence(m)) => {
                let next = m.next_seq_no.get();
                if next < self.next_recv_seq {
                    self.close(TerminationCode::Unspecified, "Sequence NextSeqNo went backwards", out);
                } else {
                    self.next_recv_seq = next;
                }
            }
            (SessionState::Established, Inbound::RetransmitRequest(m)) => self.on_retransmit_request(m, out),
            (SessionState::Established, app) => self.on_application(app, now_ns, env, out),
            (_, other) => {
                let reason = format!("{} before the session is established", other.name());
                self.close(TerminationCode::Unspecified, &reason, out);
            }
        }
    }

    /// Negotiate on a fresh connection: credentials, and the session not in use elsewhere.
    fn on_negotiate<'a, F, U>(&mut self, m: &Negotiate, env: &mut SessionEnv<'a, F, U>, out: &mut impl FnMut(Output))
    where
        F: Fn(InstrumentId) -> Option<&'a InstrumentSpec>,
        U: Fn(u64) -> bool,
    {
        let id = m.session_id.get();
        let user = char_field_str(&m.username).unwrap_or("");
        let pass = char_field_str(&m.password).unwrap_or("");
        let verified = env.password_verified;
        let found = env.sessions.iter().position(|s| s.session_id == id).filter(|&i| {
            env.credentials
                .get(i)
                .is_some_and(|c| c.check(user.as_bytes(), pass.as_bytes(), verified) == Check::Accepted)
        });
        let found = found.filter(|_| !env.locked_out);
        let code = match found {
            None => Some(NegotiationRejectCode::Credentials),
            Some(_) if (env.in_use)(id) => Some(NegotiationRejectCode::DuplicateSession),
            Some(_) => None,
        };
        if let Some(code) = code {
            out(Output::Send(ServerMessage::NegotiationReject(NegotiationReject {
                session_id: m.session_id,
                request_timestamp: m.timestamp,
                code: code.to_u8(),
            })));
            out(Output::Close);
            self.state = SessionState::Closed;
            return;
        }
        self.session_id = id;
        self.config_index = found.map(SbeSessionIx);
        self.admission = found.map(|i| Admission::new(SessionCommon::from(&env.sessions[i])));
        self.state = SessionState::Negotiated;
        out(Output::Send(ServerMessage::NegotiationResponse(NegotiationResponse {
            session_id: m.session_id,
            request_timestamp: m.timestamp,
            server_flow: FlowType::Idempotent.to_u8(),
        })));
    }

    /// A RetransmitRequest of an established session: handed to the protocol, which holds the
    /// stored messages, unless it names another session.
    fn on_retransmit_request(&self, m: &RetransmitRequest, out: &mut impl FnMut(Output)) {
        if m.session_id.get() != self.session_id {
            out(Output::Send(ServerMessage::RetransmitReject(RetransmitReject {
                session_id: m.session_id,
                request_timestamp: m.timestamp,
                code: RetransmitRejectCode::OutOfRange.to_u8(),
            })));
            return;
        }
        out(Output::Retransmit {
            session_id: self.session_id,
            request_timestamp: m.timestamp.get(),
            from_seq: m.from_seq_no.get(),
            count: m.count.get(),
        });
    }

    /// Establish after Negotiate: keepalive bounds; resumes the session's sequence numbers.
    fn on_establish<'a, F, U>(&mut self, m: &Establish, env: &mut SessionEnv<'a, F, U>, out: &mut impl FnMut(Output))
    where
        F: Fn(InstrumentId) -> Option<&'a InstrumentSpec>,
        U: Fn(u64) -> bool,
    {
        let keepalive_ms = m.keepalive_interval.get();
        let code = if m.session_id.get() != self.session_id {
            Some(EstablishRejectCode::Credentials)
        } else if !(env.limits.keepalive_min_ms..=env.limits.keepalive_max_ms).contains(&keepalive_ms) {
            Some(EstablishRejectCode::KeepaliveInterval)
        } else if (env.in_use)(self.session_id) {
            Some(EstablishRejectCode::Unspecified)
        } else {
            None
        };
        if let Some(code) = code {
            out(Output::Send(ServerMessage::EstablishmentReject(EstablishmentReject {
                session_id: m.session_id,
                request_timestamp: m.timestamp,
                code: code.to_u8(),
            })));
            return;
        }
        self.keepalive_ns = u64::from(keepalive_ms) * 1_000_000;
        let (next_send, last_processed) = self.config_index.map_or((1, 0), |i| (env.resume)(i));
        self.next_send_seq = next_send;
        self.next_recv_seq = m.next_seq_no.get().max(1);
        self.state = SessionState::Established;
        out(Output::Send(ServerMessage::EstablishmentAck(EstablishmentAck {
            session_id: m.session_id,
            request_timestamp: m.timestamp,
            keepalive_interval: m.keepalive_interval,
            next_seq_no: U64::new(self.next_send_seq),
            last_processed_seq_no: U64::new(last_processed),
        })));
    }

    fn on_application<'a, F, U>(
        &mut self,
        msg: &Inbound<'_>,
        now_ns: u64,
        env: &mut SessionEnv<'a, F, U>,
        out: &mut impl FnMut(Output),
    ) where
        F: Fn(InstrumentId) -> Option<&'a InstrumentSpec>,
        U: Fn(u64) -> bool,
    {
        let seq = self.next_recv_seq;
        self.next_recv_seq += 1;
        let (account, cl_ord_id) = match msg {
            Inbound::NewOrderSingle(m) => (m.account.get(), m.cl_ord_id),
            Inbound::OrderCancelRequest(m) => (m.account.get(), m.cl_ord_id),
            Inbound::OrderCancelReplaceRequest(m) => (m.account.get(), m.cl_ord_id),
            Inbound::OrderMassCancelRequest(m) => (m.account.get(), m.cl_ord_id),
            Inbound::OrderStatusRequest(m) => (m.account.get(), m.orig_cl_ord_id),
            _ => return,
        };
        let refusal = match self.admission.as_mut() {
            Some(a) => a.admit(account, now_ns).err(),
            None => Some(Refusal::NotAuthorized { account }),
        };
        if let Some(refusal) = refusal {
            let (code, text) = match refusal {
                Refusal::Throttled { disconnect: true, reason } => {
                    return self.close(TerminationCode::Throttled, &reason, out);
                }
                Refusal::Throttled { disconnect: false, reason } => (BusinessRejectReason::Throttled, reason),
                Refusal::NotAuthorized { account } => {
                    (BusinessRejectReason::NotAuthorized, format!("session may not act on account {account}"))
                }
            };
            let mut m = BusinessMessageReject::new_zeroed();
            m.ref_seq_num = U64::new(seq);
            m.ref_template_id = U16::new(msg.template_id());
            m.reason = code.to_u8();
            m.cl_ord_id = cl_ord_id;
            m.text = char_field_lossy(text.as_bytes());
            out(Output::Send(ServerMessage::BusinessReject(m)));
            return;
        }
        let killed = self.config_index.is_some_and(|i| env.killed.get(i.0).copied().unwrap_or(false));
        if killed && matches!(msg, Inbound::NewOrderSingle(_) | Inbound::OrderCancelReplaceRequest(_)) {
            return send_gateway_reject(msg, engine::RejectReason::KillSwitch as u16, now_ns, env.next_exec_id, out);
        }
        match convert::command_body(msg, &env.instrument) {
            Some(Ok(body)) => out(Output::Submit(body)),
            Some(Err(err)) => send_gateway_reject(msg, err.code(), now_ns, env.next_exec_id, out),
            None => {}
        }
    }
}

/// Answers `msg` with the report of a gateway reject (`code`), numbered from `next_exec_id`.
fn send_gateway_reject(
    msg: &Inbound<'_>,
    code: u16,
    now_ns: u64,
    next_exec_id: &mut u64,
    out: &mut impl FnMut(Output),
) {
    let mut ctx = ReportContext { transact_time_ns: now_ns, next_exec_id: *next_exec_id };
    let report = gateway_reject(msg, code, &mut ctx);
    *next_exec_id = ctx.next_exec_id.wrapping_add(1);
    if let Some(r) = report {
        out(Output::Send(ServerMessage::Report(r)));
    }
}

pub(crate) fn gateway_reject(msg: &Inbound<'_>, code: u16, ctx: &mut ReportContext) -> Option<Report> {
    Some(match msg {
        Inbound::NewOrderSingle(m) => Report::Execution(convert::new_order_gateway_reject(m, code, ctx)),
        Inbound::OrderCancelRequest(m) => Report::CancelReject(convert::cancel_gateway_reject(m, code, ctx)),
        Inbound::OrderCancelReplaceRequest(m) => Report::CancelReject(convert::replace_gateway_reject(m, code, ctx)),
        Inbound::OrderStatusRequest(m) => Report::CancelReject(convert::status_gateway_reject(m, code, ctx)),
        Inbound::OrderMassCancelRequest(m) => Report::MassCancel(convert::mass_cancel_gateway_reject(m, code, ctx)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use engine::{AccountId, Symbol, TradingStatus};
    use rust_decimal::Decimal;
    use zerocopy::little_endian::{I64, U32};

    use super::*;
    use crate::config::{Config, ThrottlePolicy};
    use crate::sbe::SbeMessage;
    use crate::sbe::codec::decode_inbound;
    use crate::sbe::convert::ConvertError;
    use crate::sbe::messages::{
        Establish, Negotiate, NewOrderSingle, OrdType, SelfTradePrevention, Side, TimeInForce, char_field,
    };

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            id: InstrumentId(1),
            symbol: Symbol::new("DEMO").unwrap(),
            tick_size: Decimal::new(1, 2),
            lot_size: Decimal::ONE,
            min_qty_lots: 1,
            max_qty_lots: 1_000_000,
            max_notional_nanos: u128::MAX,
            band_bps: 0,
            reference_ticks: None,
            status: TradingStatus::Open,
        }
    }

    struct Harness {
        cfg: Config,
        spec: InstrumentSpec,
        exec: u64,
        in_use: bool,
        s: SbeSession,
        creds: Vec<Credential>,
    }

    impl Harness {
        fn new() -> Self {
            let cfg = Config::default_config();
            let creds = crate::session::credentials::CredentialStore::new(&cfg).current().sbe.clone();
            Harness { cfg, spec: spec(), exec: 1, in_use: false, s: SbeSession::new(0), creds }
        }

        fn feed<M: crate::sbe::SbeMessage>(&mut self, m: &M, now_ns: u64) -> Vec<Output> {
            let mut buf = [0u8; 512];
            let n = encode(m, &mut buf).unwrap();
            let inbound = decode_inbound(&buf[6..n]).unwrap();
            let spec = self.spec;
            let in_use = self.in_use;
            let mut env = SessionEnv {
                sessions: &self.cfg.sessions,
                limits: &self.cfg.sessions_limits,
                instrument: |id: InstrumentId| if id == spec.id { Some(&spec) } else { None },
                in_use: |_| in_use,
                next_exec_id: &mut self.exec,
                resume: &|_| (1, 0),
                locked_out: false,
                killed: &[],
                credentials: &self.creds,
                password_verified: None,
            };
            let mut outs = Vec::new();
            self.s.on_message(&inbound, now_ns, &mut env, &mut |o| outs.push(o));
            outs
        }

        fn negotiate(&mut self, user: &str, pass: &str) -> Vec<Output> {
            let m = Negotiate {
                session_id: U64::new(1),
                timestamp: U64::new(5),
                username: char_field(user.as_bytes()).unwrap(),
                password: char_field(pass.as_bytes()).unwrap(),
            };
            self.feed(&m, 0)
        }

        fn establish(&mut self, keepalive_ms: u32) -> Vec<Output> {
            let m = Establish {
                session_id: U64::new(1),
                timestamp: U64::new(6),
                keepalive_interval: U32::new(keepalive_ms),
                next_seq_no: U64::new(1),
            };
            self.feed(&m, 0)
        }
    }

    fn order(account: u32, qty: u64) -> NewOrderSingle {
        NewOrderSingle {
            cl_ord_id: char_field(b"c1").unwrap(),
            account: U32::new(account),
            security_id: U32::new(1),
            side: Side::Buy.to_u8(),
            ord_type: OrdType::Limit.to_u8(),
            time_in_force: TimeInForce::GoodTillCancel.to_u8(),
            exec_inst: 0,
            self_trade_prevention: SelfTradePrevention::AccountDefault.to_u8(),
            price: I64::new(100_250_000_000),
            stop_px: I64::new(i64::MIN),
            order_qty: U64::new(qty * 10_000),
            display_qty: U64::new(u64::MAX),
            expire_time: U64::new(0),
        }
    }

    #[test]
    fn negotiate_establish_then_orders_are_submitted() {
        let mut h = Harness::new();
        let out = h.negotiate("demo", "demo");
        assert!(matches!(out[..], [Output::Send(ServerMessage::NegotiationResponse(_))]));
        let out = h.establish(1000);
        let [Output::Send(ServerMessage::EstablishmentAck(ack))] = out[..] else { panic!("{out:?}") };
        assert_eq!(ack.next_seq_no.get(), 1);
        assert!(h.s.is_established());
        let out = h.feed(&order(1, 10), 1);
        let [Output::Submit(CommandBody::NewOrder(o))] = out[..] else { panic!("{out:?}") };
        assert_eq!(o.account, AccountId(1));
        assert_eq!(o.price_ticks, 10025);
        assert_eq!(o.qty_lots, 10);
    }

    #[test]
    fn bad_credentials_are_rejected_and_closed() {
        let mut h = Harness::new();
        let out = h.negotiate("demo", "wrong");
        let [Output::Send(ServerMessage::NegotiationReject(r)), Output::Close] = out[..] else { panic!("{out:?}") };
        assert_eq!(r.code, NegotiationRejectCode::Credentials.to_u8());
        assert_eq!(h.s.state(), SessionState::Closed);
    }

    #[test]
    fn a_session_in_use_elsewhere_is_rejected() {
        let mut h = Harness::new();
        h.in_use = true;
        let out = h.negotiate("demo", "demo");
        let [Output::Send(ServerMessage::NegotiationReject(r)), Output::Close] = out[..] else { panic!("{out:?}") };
        assert_eq!(r.code, NegotiationRejectCode::DuplicateSession.to_u8());
    }

    #[test]
    fn keepalive_out_of_range_is_rejected() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        let out = h.establish(1);
        let [Output::Send(ServerMessage::EstablishmentReject(r))] = out[..] else { panic!("{out:?}") };
        assert_eq!(r.code, EstablishRejectCode::KeepaliveInterval.to_u8());
        assert!(!h.s.is_established());
    }

    #[test]
    fn application_messages_before_establish_terminate() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        let out = h.feed(&order(1, 10), 1);
        let [Output::Send(ServerMessage::Terminate(t)), Output::Close] = out[..] else { panic!("{out:?}") };
        assert_eq!(t.code, TerminationCode::Unspecified.to_u8());
        assert!(char_field_str(&t.reason).unwrap().contains("NewOrderSingle"));
    }

    #[test]
    fn other_accounts_get_a_business_reject() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        h.establish(1000);
        let out = h.feed(&order(2, 10), 1);
        let [Output::Send(ServerMessage::BusinessReject(r))] = out[..] else { panic!("{out:?}") };
        assert_eq!(r.reason, BusinessRejectReason::NotAuthorized.to_u8());
        assert_eq!(r.ref_seq_num.get(), 1);
        assert_eq!(r.ref_template_id.get(), NewOrderSingle::TEMPLATE_ID);
    }

    #[test]
    fn invalid_orders_get_a_gateway_reject() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        h.establish(1000);
        let mut o = order(1, 10);
        o.price = I64::new(100_255_000_000); // off the 0.01 grid
        let out = h.feed(&o, 1);
        let [Output::Send(ServerMessage::Report(Report::Execution(er)))] = out[..] else { panic!("{out:?}") };
        assert_eq!(er.reject_code.get(), ConvertError::PriceOffGrid.code());
    }

    #[test]
    fn keepalive_heartbeats_then_expiry() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        h.establish(1000);
        let mut outs = Vec::new();
        h.s.on_timer(1_000_000_000, &mut |o| outs.push(o));
        assert!(matches!(outs[..], [Output::Send(ServerMessage::Sequence(_))]));
        outs.clear();
        h.s.on_timer(2_000_000_001, &mut |o| outs.push(o));
        let [Output::Send(ServerMessage::Terminate(t)), Output::Close] = outs[..] else { panic!("{outs:?}") };
        assert_eq!(t.code, TerminationCode::KeepaliveExpired.to_u8());
    }

    #[test]
    fn malformed_input_terminates_with_the_reason() {
        let mut h = Harness::new();
        let mut outs = Vec::new();
        h.s.on_malformed("SOFH encoding type 0x0000", &mut |o| outs.push(o));
        let [Output::Send(ServerMessage::Terminate(t)), Output::Close] = outs[..] else { panic!("{outs:?}") };
        assert_eq!(t.code, TerminationCode::InvalidMessage.to_u8());
        assert_eq!(char_field_str(&t.reason), Some("SOFH encoding type 0x0000"));
    }

    #[test]
    fn terminate_is_answered_and_closes() {
        let mut h = Harness::new();
        h.negotiate("demo", "demo");
        h.establish(1000);
        let t = Terminate { session_id: U64::new(1), code: 0, reason: [0; 48] };
        let out = h.feed(&t, 1);
        assert!(matches!(out[..], [Output::Send(ServerMessage::Terminate(_)), Output::Close]));
    }

    #[test]
    fn throttle_rejects_or_disconnects_beyond_rate_and_burst() {
        for policy in [ThrottlePolicy::Reject, ThrottlePolicy::Disconnect] {
            let mut h = Harness::new();
            h.cfg.sessions[0].throttle_per_s = 10;
            h.cfg.sessions[0].throttle_burst = 3;
            h.cfg.sessions[0].throttle_policy = policy;
            h.negotiate("demo", "demo");
            h.establish(1000);
            let t = 1_000_000_000;
            for _ in 0..3 {
                assert!(matches!(h.feed(&order(1, 1), t)[..], [Output::Submit(_)]), "the burst passes");
            }
            let out = h.feed(&order(1, 1), t);
            match policy {
                ThrottlePolicy::Reject => {
                    let [Output::Send(ServerMessage::BusinessReject(r))] = out[..] else { panic!("{out:?}") };
                    assert_eq!(r.reason, BusinessRejectReason::Throttled.to_u8());
                    assert_eq!(r.ref_seq_num.get(), 4, "a throttled message still uses its sequence number");
                    assert!(h.s.is_established());
                    // One interval (100 ms) later one more fits.
                    assert!(matches!(h.feed(&order(1, 1), t + 100_000_000)[..], [Output::Submit(_)]));
                }
                ThrottlePolicy::Disconnect => {
                    let [Output::Send(ServerMessage::Terminate(term)), Output::Close] = out[..] else {
                        panic!("{out:?}")
                    };
                    assert_eq!(term.code, TerminationCode::Throttled.to_u8());
                    assert_eq!(h.s.state(), SessionState::Closed);
                }
            }
        }
    }
}

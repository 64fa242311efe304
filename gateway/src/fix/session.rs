//! The FIX 4.4 session layer, sans-IO: one [`FixSession`] per configured CompID pair lives for
//! the whole process (it owns the session's persistent [`SessionStore`]); a connection attaches
//! to it at Logon and detaches at disconnect. Parsed messages and clock ticks go in; bytes go
//! into the caller's send buffer, commands into `submit`, and an [`Action`] says whether the
//! connection stays.
//!
//! What it does, in the FIX 4.4 session rules' terms:
//! - **Logon**: first message of a connection (`fix/sessions.rs` refuses anything else and binds
//!   the connection by CompIDs). Username/Password checked when configured; HeartBtInt within
//!   the configured bounds; `ResetSeqNumFlag` (141=Y) or `reset_on_logon` restarts both
//!   sequences at 1; 8013=Y asks for cancel-on-disconnect. Answered with Logon (and 141=Y when
//!   a reset was asked); refused with Logout carrying the reason, then disconnect.
//! - **Sequence numbers**: too high → ResendRequest (BeginSeqNo = expected, EndSeqNo = 0) once
//!   per gap, the message is dropped (application messages come again with PossDupFlag; a
//!   TestRequest, which the counterparty would gap-fill, is answered at once; a Logout ends
//!   the session); too low without PossDupFlag → Logout
//!   "MsgSeqNum too low, expecting X but received Y" and disconnect; PossDup duplicates are
//!   ignored (after checking OrigSendingTime); SequenceReset-Reset applies whatever its seq.
//! - **Validation**: every message is checked against the data dictionary
//!   ([`Dictionary::validate`]); a failure is a Reject (3) with SessionRejectReason, RefTagID,
//!   RefMsgType, RefSeqNum and the standard text, and the sequence number is consumed. Wrong
//!   CompIDs → Reject (373=9) then Logout; SendingTime outside `max_latency_s` → Reject (373=10)
//!   then Logout; wrong BeginString → Logout and disconnect.
//! - **Logout from sable** (shutdown): sable waits up to `logout_timeout_s` for the
//!   confirming Logout; application messages arriving meanwhile are not taken and their seq is
//!   not consumed (the client sends them again after its next Logon).
//! - **Heartbeats**: a Heartbeat after `HeartBtInt` of silence; nothing received for 1.2 ×
//!   `HeartBtInt` → TestRequest; still nothing after 2.4 × → disconnect.
//! - **ResendRequest**: stored application messages are re-sent with PossDupFlag=Y and
//!   OrigSendingTime; runs of admin messages (or of messages no longer retained) become one
//!   SequenceReset-GapFill each.
//! - **Persistence**: every message sent and every inbound sequence number go to the store
//!   before the bytes reach the socket buffer, so after a restart the session resumes without a
//!   reset and a client can ask for what it missed. Reports for a session that is not logged on
//!   are stored (taking their sequence numbers) and reach the client through its ResendRequest.
//! - **Application**: D, F, G, H, q → through [`convert`] into engine commands (or the message
//!   type's reject); a session may act only on its configured accounts (BusinessMessageReject
//!   380=6); a valid FIX 4.4 message type sable does not take → BusinessMessageReject 380=3;
//!   throttle (GCRA) → BusinessMessageReject 380=0 (Other) with the limit in Text, or Logout, per
//!   the session's policy.

use engine::{CommandBody, InstrumentId, InstrumentSpec};

use crate::config::{FixSessionConfig, FixSettings};
use crate::fix::convert::{self, BodyWriter, InstrumentLookup};
use crate::fix::dictionary::{Dictionary, MsgTypeSupport, SessionReject, SessionRejectReason, ValidationOptions};
use crate::fix::frame::MAX_MESSAGE_LEN_BYTES;
use crate::fix::message::{FieldTable, Message, parse};
use crate::fix::tags::{msg_type, tag};
use crate::fix::writer::{TimestampCache, Writer};
use crate::sbe::convert::{Report, ReportContext};
use crate::session::outbound::{self, Replayed};
use crate::session::rules::{Admission, Refusal, SessionCommon};
use crate::store::SessionStore;

/// The BeginString of every message.
pub const BEGIN_STRING: &str = "FIX.4.4";

/// Header tags the session writes itself; a re-sent message's body is everything else.
const HEADER_TAGS: [u32; 12] = [8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 115, 128];

/// What the connection should do after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep going.
    Continue,
    /// Close the connection once the send buffer is flushed.
    Close,
}

/// Where a session's connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// No connection is logged on.
    Offline,
    /// Logged on: application messages flow.
    LoggedOn,
    /// sable sent Logout at `since_ns` and waits for the reply.
    LoggingOut {
        /// When the Logout went out.
        since_ns: u64,
    },
}

/// What the session needs from the rest of the gateway for one call.
pub struct FixEnv<'a, L: InstrumentLookup> {
    /// sable's dialect.
    pub dictionary: &'a Dictionary,
    /// Instrument lookup.
    pub instruments: &'a L,
    /// Exec ids of gateway rejects (a counter shared by every protocol).
    pub next_exec_id: &'a mut u64,
}

/// One configured FIX session.
pub struct FixSession {
    settings: FixSettings,
    /// sable's CompID (the client's TargetCompID).
    our_comp_id: String,
    /// The client's CompID.
    their_comp_id: String,
    username: String,
    password: String,
    /// Throttle and accounts (the rules every protocol shares).
    admission: Admission,
    store: SessionStore,
    state: LinkState,
    heartbeat_ns: u64,
    last_rx_ns: u64,
    last_tx_ns: u64,
    test_request_sent: bool,
    /// While recovering a gap: the highest inbound seq seen; no new ResendRequest until the
    /// expected seq passes it.
    resend_until: Option<u64>,
    cancel_on_disconnect: bool,
    test_req_counter: u64,
    cod_counter: u64,
    /// The parse table, taken out while a message borrows it (`None` only during a call).
    table: Option<Box<FieldTable>>,
    buf: Box<[u8; MAX_MESSAGE_LEN_BYTES]>,
    ts: TimestampCache,
}

struct WriterAdapter<'w, 'b>(&'w mut Writer<'b>, &'w mut TimestampCache);

impl BodyWriter for WriterAdapter<'_, '_> {
    fn str_field(&mut self, tag: u32, v: &[u8]) {
        self.0.bytes(tag, v);
    }
    fn u64_field(&mut self, tag: u32, v: u64) {
        self.0.u64(tag, v);
    }
    fn char_field(&mut self, tag: u32, v: u8) {
        self.0.char(tag, v);
    }
    fn decimal_field(&mut self, tag: u32, mantissa: i64, scale: u32) {
        self.0.decimal(tag, mantissa, scale);
    }
    fn timestamp_field(&mut self, tag: u32, unix_ns: u64) {
        self.0.timestamp_ms_cached(tag, unix_ns as i64, self.1);
    }
}

/// Where an inbound message's seq stands.
#[derive(Clone, Copy, Debug)]
struct Position {
    seq: u64,
    expected: u64,
}

/// Tags below this get an O(1) index for the conversion's lookups.
const FAST_TAGS: usize = 128;

/// Parsed fields as the conversion reads them: a direct index of the first occurrence of each
/// small tag (the conversion asks for a dozen), a scan for the others.
struct Fields<'m, 'a> {
    msg: &'m Message<'a>,
    first: [u8; FAST_TAGS],
}

impl<'m, 'a> Fields<'m, 'a> {
    fn new(msg: &'m Message<'a>) -> Self {
        let mut first = [0u8; FAST_TAGS];
        for (i, f) in msg.fields().iter().enumerate().take(usize::from(u8::MAX)) {
            if let Some(slot) = first.get_mut(f.tag as usize)
                && *slot == 0
            {
                *slot = (i + 1) as u8;
            }
        }
        Fields { msg, first }
    }
}

impl convert::FieldSource for Fields<'_, '_> {
    fn field(&self, tag: u32) -> Option<&[u8]> {
        match self.first.get(tag as usize) {
            Some(0) => None,
            Some(&i) => Some(self.msg.value(&self.msg.fields()[usize::from(i) - 1])),
            None => self.msg.get(tag),
        }
    }
}

impl FixSession {
    /// The session of `cfg` with its effective `settings`, persisting into `store`.
    pub fn new(cfg: &FixSessionConfig, settings: FixSettings, store: SessionStore) -> Self {
        FixSession {
            settings,
            our_comp_id: cfg.target_comp_id.clone(),
            their_comp_id: cfg.sender_comp_id.clone(),
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            admission: Admission::new(SessionCommon::from(cfg)),
            store,
            state: LinkState::Offline,
            heartbeat_ns: 30_000_000_000,
            last_rx_ns: 0,
            last_tx_ns: 0,
            test_request_sent: false,
            resend_until: None,
            cancel_on_disconnect: false,
            test_req_counter: 0,
            cod_counter: 0,
            table: Some(Box::default()),
            buf: Box::new([0; MAX_MESSAGE_LEN_BYTES]),
            ts: TimestampCache::default(),
        }
    }

    /// Where the session's connection is.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// Whether reports go out on the connection right away.
    pub fn is_logged_on(&self) -> bool {
        self.state != LinkState::Offline
    }

    /// The persistent store (sequence numbers, sent messages).
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// The client's CompID.
    pub fn their_comp_id(&self) -> &str {
        &self.their_comp_id
    }

    /// Whether the session may act on `account`.
    pub fn may_trade(&self, account: u32) -> bool {
        self.admission.may_act_on(account)
    }

    // --------------------------------------------------------------------------------------
    // Sending

    /// Builds one message with the standard header into `self.buf`, records it in the store
    /// and appends it to `out` (when a connection is attached). Returns false if it could not
    /// be built.
    fn send(
        &mut self,
        now_ns: u64,
        msg_type: &[u8],
        app: bool,
        out: Option<&mut Vec<u8>>,
        body: impl FnOnce(&mut Writer<'_>, &mut TimestampCache),
    ) -> bool {
        let seq = self.store.next_sender_seq();
        let n = {
            let mut w = Writer::new(&mut self.buf[..], BEGIN_STRING, msg_type);
            w.str(tag::SENDER_COMP_ID, &self.our_comp_id);
            w.str(tag::TARGET_COMP_ID, &self.their_comp_id);
            w.u64(tag::MSG_SEQ_NUM, seq);
            w.timestamp_ms_cached(tag::SENDING_TIME, now_ns as i64, &mut self.ts);
            body(&mut w, &mut self.ts);
            w.finish()
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(session = %self.their_comp_id, error = %e, "cannot build a FIX message");
                return false;
            }
        };
        if out.is_some() {
            self.last_tx_ns = now_ns;
        }
        outbound::emit(&mut self.store, seq, &self.buf[..n], app, out);
        true
    }

    fn send_logout(&mut self, now_ns: u64, text: &str, out: &mut Vec<u8>) {
        self.send(now_ns, msg_type::LOGOUT, false, Some(out), |w, _| {
            if !text.is_empty() {
                w.str(tag::TEXT, text);
            }
        });
    }

    fn send_reject(&mut self, now_ns: u64, msg: &Message<'_>, rej: &SessionReject, out: &mut Vec<u8>) {
        let ref_seq = msg.get(tag::MSG_SEQ_NUM).and_then(crate::fix::message::parse_u64);
        let msg_type = msg.get(tag::MSG_TYPE).unwrap_or(b"");
        self.send(now_ns, msg_type::REJECT, false, Some(out), |w, _| {
            w.u64(tag::REF_SEQ_NUM, ref_seq.unwrap_or(0));
            if let Some(t) = rej.ref_tag {
                w.u64(tag::REF_TAG_ID, u64::from(t));
            }
            if !msg_type.is_empty() {
                w.bytes(tag::REF_MSG_TYPE, msg_type);
            }
            w.u64(tag::SESSION_REJECT_REASON, u64::from(rej.reason.code()));
            w.str(tag::TEXT, rej.text);
        });
    }

    fn send_business_reject(&mut self, now_ns: u64, msg: &Message<'_>, reason: u32, text: &str, out: &mut Vec<u8>) {
        let ref_seq = msg.get(tag::MSG_SEQ_NUM).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let msg_type = msg.get(tag::MSG_TYPE).unwrap_or(b"");
        let ref_id = msg.get(convert::tag::CL_ORD_ID);
        self.send(now_ns, msg_type::BUSINESS_MESSAGE_REJECT, true, Some(out), |w, _| {
            w.u64(tag::REF_SEQ_NUM, ref_seq);
            w.bytes(tag::REF_MSG_TYPE, msg_type);
            if let Some(id) = ref_id {
                w.bytes(tag::BUSINESS_REJECT_REF_ID, id);
            }
            w.u64(tag::BUSINESS_REJECT_REASON, u64::from(reason));
            w.str(tag::TEXT, text);
        });
    }

    /// Sends (or, when no connection is logged on, stores for a later resend) one report.
    /// `symbol` names the report's instrument.
    pub fn send_report(&mut self, report: &Report, symbol: &[u8], now_ns: u64, out: Option<&mut Vec<u8>>) {
        let out = if self.is_logged_on() { out } else { None };
        self.send(now_ns, convert::report_msg_type(report), true, out, |w, ts| {
            convert::write_report(report, symbol, &mut WriterAdapter(w, ts));
        });
    }

    // --------------------------------------------------------------------------------------
    // Connection lifecycle

    /// The first message of a connection, a Logon with this session's CompIDs (the I/O thread
    /// checked both). Validates it, applies resets, answers.
    pub fn on_logon<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
    ) -> Action {
        if self.state != LinkState::Offline {
            // The I/O thread binds one connection per session; a second Logon on the same
            // connection is handled by `on_message`.
            return Action::Close;
        }
        let hb_s = match self.check_logon(msg, now_ns, env.dictionary, out) {
            Ok(hb_s) => hb_s,
            Err(action) => return action,
        };
        let reset_asked = msg.get(tag::RESET_SEQ_NUM_FLAG) == Some(b"Y");
        let seq = msg.seq_num().unwrap_or(0);
        if reset_asked || self.settings.reset_on_logon {
            if reset_asked && seq != 1 {
                self.send_logout(now_ns, "ResetSeqNumFlag=Y requires MsgSeqNum=1", out);
                return Action::Close;
            }
            self.reset(now_ns);
        }
        let expected = self.store.next_target_seq();
        if seq < expected {
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            self.send_logout(now_ns, &text, out);
            return Action::Close;
        }
        self.state = LinkState::LoggedOn;
        self.heartbeat_ns = hb_s * 1_000_000_000;
        self.last_rx_ns = now_ns;
        self.test_request_sent = false;
        self.resend_until = None;
        self.admission.restart();
        self.cancel_on_disconnect =
            self.settings.cancel_on_disconnect || msg.get(tag::CANCEL_ON_DISCONNECT) == Some(b"Y");
        let echo_reset = reset_asked || self.settings.reset_on_logon;
        self.send(now_ns, msg_type::LOGON, false, Some(out), |w, _| {
            w.u64(tag::ENCRYPT_METHOD, 0);
            w.u64(tag::HEART_BT_INT, hb_s);
            if echo_reset {
                w.char(tag::RESET_SEQ_NUM_FLAG, b'Y');
            }
        });
        tracing::info!(
            session = %self.their_comp_id,
            next_in = expected,
            next_out = self.store.next_sender_seq(),
            cancel_on_disconnect = self.cancel_on_disconnect,
            "FIX logon"
        );
        if seq > expected {
            self.request_resend(now_ns, expected, seq, out);
        } else {
            self.advance_target(seq + 1);
        }
        Action::Continue
    }

    /// Validates a Logon: dictionary, HeartBtInt bounds, credentials, SendingTime. Returns the
    /// heartbeat interval in seconds, or what to do with the connection after the refusal sent.
    fn check_logon(
        &mut self,
        msg: &Message<'_>,
        now_ns: u64,
        dictionary: &Dictionary,
        out: &mut Vec<u8>,
    ) -> Result<u64, Action> {
        if let Err(rej) = dictionary.validate(msg, &self.validation_options()) {
            self.send_logout(now_ns, rej.text, out);
            return Err(Action::Close);
        }
        let hb_s = msg.get(tag::HEART_BT_INT).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let (lo, hi) = (u64::from(self.settings.heartbeat_min_s), u64::from(self.settings.heartbeat_max_s));
        if !(lo..=hi).contains(&hb_s) {
            let text = format!("HeartBtInt {hb_s} outside the allowed {lo}..={hi} seconds");
            self.send_logout(now_ns, &text, out);
            return Err(Action::Close);
        }
        if !self.password.is_empty() || !self.username.is_empty() {
            let user_ok = msg.get(tag::USERNAME) == Some(self.username.as_bytes()) || self.username.is_empty();
            let pass_ok = msg.get(tag::PASSWORD) == Some(self.password.as_bytes()) || self.password.is_empty();
            if !user_ok || !pass_ok {
                self.send_logout(now_ns, "Invalid Username or Password", out);
                return Err(Action::Close);
            }
        }
        if let Some(action) = self.check_sending_time(msg, now_ns, out) {
            return Err(action);
        }
        Ok(hb_s)
    }

    /// A Logon this session refused (the connection closes, it was never bound): whatever the
    /// refusal did to the link state is undone, so the next connection's Logon is judged on its
    /// own. Refusing one Logon must never shut the session out.
    pub fn abandon_logon(&mut self) {
        self.state = LinkState::Offline;
    }

    /// The connection ended (for any reason). Returns the commands cancel-on-disconnect asks
    /// for, through `submit`.
    pub fn on_disconnect(&mut self, now_ns: u64, submit: &mut impl FnMut(CommandBody)) {
        if self.state == LinkState::Offline {
            return;
        }
        self.state = LinkState::Offline;
        if self.cancel_on_disconnect {
            self.admission.cancel_on_disconnect(&mut self.cod_counter, submit);
        }
        if self.settings.reset_on_disconnect {
            self.reset(now_ns);
        }
        self.flush();
    }

    /// Makes the store durable on disk (msync); called at disconnect and shutdown.
    pub fn flush(&mut self) {
        if let Err(e) = self.store.flush() {
            tracing::error!(session = %self.their_comp_id, error = %e, "session store flush failed");
        }
    }

    /// The server is shutting down: Logout.
    pub fn on_shutdown(&mut self, now_ns: u64, out: &mut Vec<u8>) {
        if self.state == LinkState::LoggedOn {
            self.send_logout(now_ns, "server shutting down", out);
            self.state = LinkState::LoggingOut { since_ns: now_ns };
        }
    }

    /// Clock tick: heartbeats, test requests, timeouts.
    pub fn on_timer(&mut self, now_ns: u64, out: &mut Vec<u8>) -> Action {
        match self.state {
            LinkState::Offline => Action::Continue,
            LinkState::LoggingOut { since_ns } => {
                if now_ns.saturating_sub(since_ns) >= u64::from(self.settings.logout_timeout_s) * 1_000_000_000 {
                    Action::Close
                } else {
                    Action::Continue
                }
            }
            LinkState::LoggedOn => {
                let silent = now_ns.saturating_sub(self.last_rx_ns);
                if silent >= self.heartbeat_ns * 12 / 5 {
                    tracing::warn!(session = %self.their_comp_id, "FIX heartbeats missed; disconnecting");
                    return Action::Close;
                }
                if silent >= self.heartbeat_ns * 6 / 5 && !self.test_request_sent {
                    self.test_req_counter += 1;
                    let id = self.test_req_counter;
                    self.send(now_ns, msg_type::TEST_REQUEST, false, Some(out), |w, _| {
                        w.u64(tag::TEST_REQ_ID, id);
                    });
                    self.test_request_sent = true;
                } else if now_ns.saturating_sub(self.last_tx_ns) >= self.heartbeat_ns {
                    self.send(now_ns, msg_type::HEARTBEAT, false, Some(out), |_, _| {});
                }
                Action::Continue
            }
        }
    }

    fn reset(&mut self, now_ns: u64) {
        let epoch = self.store.epoch().wrapping_add(1);
        if let Err(e) = self.store.reset(epoch, now_ns) {
            tracing::error!(session = %self.their_comp_id, error = %e, "session store reset failed");
        }
        self.resend_until = None;
    }

    fn advance_target(&mut self, next: u64) {
        if let Err(e) = self.store.set_next_target_seq(next) {
            tracing::error!(session = %self.their_comp_id, error = %e, "session store write failed");
        }
        if self.resend_until.is_some_and(|until| next > until) {
            self.resend_until = None;
        }
    }

    fn request_resend(&mut self, now_ns: u64, expected: u64, received: u64, out: &mut Vec<u8>) {
        // One request per gap: an outstanding ResendRequest (EndSeqNo 0 = everything) already
        // covers whatever arrives while it is being answered.
        if let Some(until) = self.resend_until {
            self.resend_until = Some(until.max(received));
            return;
        }
        self.resend_until = Some(received);
        self.send(now_ns, msg_type::RESEND_REQUEST, false, Some(out), |w, _| {
            w.u64(tag::BEGIN_SEQ_NO, expected);
            w.u64(tag::END_SEQ_NO, 0);
        });
    }

    fn validation_options(&self) -> ValidationOptions {
        ValidationOptions {
            validate_fields_out_of_order: self.settings.validate_fields_out_of_order,
            validate_fields_have_values: self.settings.validate_fields_have_values,
            validate_user_defined_fields: self.settings.validate_user_defined_fields,
            allow_unknown_msg_fields: self.settings.allow_unknown_msg_fields,
        }
    }

    /// SendingTime accuracy (CheckLatency / MaxLatency): Reject 373=10 then Logout.
    fn check_sending_time(&mut self, msg: &Message<'_>, now_ns: u64, out: &mut Vec<u8>) -> Option<Action> {
        if !self.settings.check_latency {
            return None;
        }
        let sent = msg.get(tag::SENDING_TIME).and_then(crate::fix::message::parse_utc_timestamp_ns)?;
        let max = i64::from(self.settings.max_latency_s) * 1_000_000_000;
        if (sent - now_ns as i64).abs() <= max {
            return None;
        }
        let rej = SessionReject {
            reason: SessionRejectReason::SendingTimeAccuracyProblem,
            ref_tag: Some(tag::SENDING_TIME),
            text: "SendingTime accuracy problem",
        };
        self.send_reject(now_ns, msg, &rej, out);
        self.send_logout(now_ns, "SendingTime accuracy problem", out);
        self.state = LinkState::LoggingOut { since_ns: now_ns };
        Some(Action::Close)
    }

    // --------------------------------------------------------------------------------------
    // Inbound

    /// One framed message (checksum and body length already verified) after Logon.
    pub fn on_message<L: InstrumentLookup>(
        &mut self,
        bytes: &[u8],
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        if self.state == LinkState::Offline {
            return Action::Close;
        }
        self.last_rx_ns = now_ns;
        self.test_request_sent = false;
        let mut table = self.table.take().unwrap_or_default();
        let action = match parse(bytes, &mut table) {
            // Unparseable but checksummed: nothing to reference in a Reject; treat as garbled.
            Err(e) => {
                tracing::warn!(session = %self.their_comp_id, error = %e, "unparseable FIX message ignored");
                Action::Continue
            }
            Ok(msg) => self.on_parsed(&msg, now_ns, env, out, submit),
        };
        self.table = Some(table);
        action
    }

    fn on_parsed<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        if msg.begin_string() != BEGIN_STRING.as_bytes() {
            self.send_logout(now_ns, "Incorrect BeginString", out);
            return Action::Close;
        }
        let Ok(seq) = msg.seq_num() else {
            let rej = SessionReject {
                reason: SessionRejectReason::RequiredTagMissing,
                ref_tag: Some(tag::MSG_SEQ_NUM),
                text: "Required tag missing",
            };
            self.send_reject(now_ns, msg, &rej, out);
            return Action::Continue;
        };
        let msg_type = msg.msg_type();
        let at = Position { seq, expected: self.store.next_target_seq() };
        let poss_dup = msg.get(tag::POSS_DUP_FLAG) == Some(b"Y");
        let is_reset = msg_type == msg_type::SEQUENCE_RESET && msg.get(tag::GAP_FILL_FLAG) != Some(b"Y");

        // Too low: a PossDup duplicate is ignored, anything else ends the session. A
        // SequenceReset-Reset applies whatever its seq.
        if at.seq < at.expected && !is_reset {
            return self.on_too_low(msg, at, poss_dup, now_ns, out);
        }
        // Dictionary validation: a Reject consumes the seq (when it is the expected one).
        if let Err(rej) = env.dictionary.validate(msg, &self.validation_options()) {
            let unsupported = rej.reason == SessionRejectReason::InvalidMsgType
                && env.dictionary.msg_type_support(msg_type) == MsgTypeSupport::Unsupported;
            return self.on_invalid(msg, &rej, unsupported, at, now_ns, out);
        }
        if let Some(action) = self.check_comp_ids(msg, at, now_ns, out) {
            return action;
        }
        if !poss_dup && let Some(action) = self.check_sending_time(msg, now_ns, out) {
            return action;
        }
        // Messages processed whatever their seq.
        if is_reset {
            return self.on_sequence_reset(msg, at.seq, at.expected, now_ns, out, true);
        }
        if msg_type == msg_type::RESEND_REQUEST {
            self.on_resend_request(msg, now_ns, out);
            if at.seq > at.expected {
                self.request_resend(now_ns, at.expected, at.seq, out);
            } else {
                self.advance_target(at.seq + 1);
            }
            return Action::Continue;
        }
        if at.seq > at.expected {
            return self.on_too_high(msg, at, now_ns, out);
        }
        self.on_in_sequence(msg, at.seq, now_ns, env, out, submit)
    }

    /// A message below the expected seq (not a SequenceReset-Reset).
    fn on_too_low(
        &mut self,
        msg: &Message<'_>,
        at: Position,
        poss_dup: bool,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Action {
        if !poss_dup {
            let text = format!("MsgSeqNum too low, expecting {} but received {}", at.expected, at.seq);
            self.send_logout(now_ns, &text, out);
            return Action::Close;
        }
        match (msg.get(tag::ORIG_SENDING_TIME), msg.get(tag::SENDING_TIME)) {
            (None, _) => {
                let rej = SessionReject {
                    reason: SessionRejectReason::RequiredTagMissing,
                    ref_tag: Some(tag::ORIG_SENDING_TIME),
                    text: "Required tag missing",
                };
                self.send_reject(now_ns, msg, &rej, out);
            }
            (Some(orig), Some(sent)) if orig > sent => {
                let rej = SessionReject {
                    reason: SessionRejectReason::SendingTimeAccuracyProblem,
                    ref_tag: Some(tag::ORIG_SENDING_TIME),
                    text: "SendingTime accuracy problem",
                };
                self.send_reject(now_ns, msg, &rej, out);
                self.send_logout(now_ns, "SendingTime accuracy problem", out);
                return Action::Close;
            }
            _ => {}
        }
        Action::Continue
    }

    /// A message the dictionary refused. `unsupported`: a real FIX 4.4 message type sable does
    /// not take, refused at business level.
    fn on_invalid(
        &mut self,
        msg: &Message<'_>,
        rej: &SessionReject,
        unsupported: bool,
        at: Position,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Action {
        if at.seq != at.expected {
            self.request_resend(now_ns, at.expected, at.seq, out);
            return Action::Continue;
        }
        if unsupported {
            self.send_business_reject(now_ns, msg, 3, "Unsupported Message Type", out);
            self.advance_target(at.seq + 1);
            return Action::Continue;
        }
        self.send_reject(now_ns, msg, rej, out);
        self.advance_target(at.seq + 1);
        if msg.msg_type() == msg_type::LOGON {
            self.send_logout(now_ns, rej.text, out);
            return Action::Close;
        }
        Action::Continue
    }

    /// Wrong CompIDs: Reject (373=9), then Logout.
    fn check_comp_ids(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Option<Action> {
        let sender_ok = msg.get(tag::SENDER_COMP_ID) == Some(self.their_comp_id.as_bytes());
        let target_ok = msg.get(tag::TARGET_COMP_ID) == Some(self.our_comp_id.as_bytes());
        if sender_ok && target_ok {
            return None;
        }
        let ref_tag = if sender_ok { tag::TARGET_COMP_ID } else { tag::SENDER_COMP_ID };
        let rej = SessionReject {
            reason: SessionRejectReason::CompIdProblem,
            ref_tag: Some(ref_tag),
            text: "CompID problem",
        };
        self.send_reject(now_ns, msg, &rej, out);
        self.advance_target(at.seq.max(at.expected) + 1);
        self.send_logout(now_ns, "CompID problem", out);
        Some(Action::Close)
    }

    /// A message above the expected seq: ask for the gap (a Logout still ends the session, a
    /// TestRequest is answered at once: the counterparty gap-fills admin messages when it
    /// resends, so this one would never come again).
    fn on_too_high(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        match msg.msg_type() {
            msg_type::LOGOUT => {
                self.send_logout(now_ns, "", out);
                return Action::Close;
            }
            msg_type::TEST_REQUEST => self.answer_test_request(msg, now_ns, out),
            _ => {}
        }
        self.request_resend(now_ns, at.expected, at.seq, out);
        Action::Continue
    }

    /// The expected message.
    fn on_in_sequence<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        match msg.msg_type() {
            msg_type::SEQUENCE_RESET => return self.on_sequence_reset(msg, seq, seq, now_ns, out, false),
            msg_type::HEARTBEAT => {}
            msg_type::TEST_REQUEST => self.answer_test_request(msg, now_ns, out),
            msg_type::REJECT => {
                tracing::warn!(session = %self.their_comp_id, seq, "the client rejected one of our messages");
            }
            msg_type::LOGOUT => {
                self.advance_target(seq + 1);
                if !matches!(self.state, LinkState::LoggingOut { .. }) {
                    self.send_logout(now_ns, "", out);
                }
                if self.settings.reset_on_logout {
                    self.reset(now_ns);
                }
                return Action::Close;
            }
            msg_type::LOGON => {
                let rej = SessionReject {
                    reason: SessionRejectReason::Other,
                    ref_tag: None,
                    text: "Logon received while logged on",
                };
                self.send_reject(now_ns, msg, &rej, out);
            }
            _ if matches!(self.state, LinkState::LoggingOut { .. }) => {
                // After sable's Logout (shutdown), application messages are not taken and their
                // seq is not consumed: the client sends them again after its next Logon
                // (sable's ResendRequest asks for them).
                return Action::Continue;
            }
            _ => {
                self.advance_target(seq + 1);
                return self.on_application(msg, now_ns, env, out, submit);
            }
        }
        self.advance_target(seq + 1);
        Action::Continue
    }

    fn answer_test_request(&mut self, msg: &Message<'_>, now_ns: u64, out: &mut Vec<u8>) {
        let id = msg.get(tag::TEST_REQ_ID).unwrap_or(b"");
        let mut id_buf = [0u8; 64];
        let n = id.len().min(id_buf.len());
        id_buf[..n].copy_from_slice(&id[..n]);
        self.send(now_ns, msg_type::HEARTBEAT, false, Some(out), |w, _| {
            if n > 0 {
                w.bytes(tag::TEST_REQ_ID, &id_buf[..n]);
            }
        });
    }

    fn on_sequence_reset(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        expected: u64,
        now_ns: u64,
        out: &mut Vec<u8>,
        reset: bool,
    ) -> Action {
        let new_seq = msg.get(tag::NEW_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        if new_seq < expected || (!reset && new_seq <= seq) {
            let rej = SessionReject {
                reason: SessionRejectReason::ValueIsIncorrect,
                ref_tag: Some(tag::NEW_SEQ_NO),
                text: "Value is incorrect (out of range) for this tag",
            };
            self.send_reject(now_ns, msg, &rej, out);
            if !reset {
                self.advance_target(seq + 1);
            }
            return Action::Continue;
        }
        self.advance_target(new_seq);
        Action::Continue
    }

    /// Re-sends what the client asks for: stored application messages with PossDupFlag=Y and
    /// OrigSendingTime, gap fills for the rest.
    fn on_resend_request(&mut self, msg: &Message<'_>, now_ns: u64, out: &mut Vec<u8>) {
        let begin = msg.get(tag::BEGIN_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let end = msg.get(tag::END_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let Some((begin, end)) = outbound::sent_range(&self.store, begin, end) else { return };
        tracing::info!(session = %self.their_comp_id, begin, end, "FIX resend");
        let mut table = FieldTable::default();
        let mut rebuilt = Box::new([0u8; MAX_MESSAGE_LEN_BYTES]);
        let (our, their) = (self.our_comp_id.clone(), self.their_comp_id.clone());
        let mut pending: Vec<u8> = Vec::new();
        let res = outbound::replay(&self.store, begin, end, |step| match step {
            Replayed::Message { seq, bytes } => match resend_copy(bytes, seq, now_ns, &mut table, &mut rebuilt[..]) {
                Some(n) => pending.extend_from_slice(&rebuilt[..n]),
                None => gap_fill(&mut pending, &our, &their, seq, seq + 1, now_ns, &mut rebuilt[..]),
            },
            Replayed::Gap { from, to } => gap_fill(&mut pending, &our, &their, from, to, now_ns, &mut rebuilt[..]),
        });
        if let Err(e) = res {
            tracing::error!(session = %self.their_comp_id, error = %e, "session store read failed during resend");
        }
        out.extend_from_slice(&pending);
        self.last_tx_ns = now_ns;
    }

    fn on_application<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        let fields = Fields::new(msg);
        let Some(request) = convert::request(msg.msg_type(), &fields, env.instruments) else {
            self.send_business_reject(now_ns, msg, 3, "Unsupported Message Type", out);
            return Action::Continue;
        };
        if let Err(Refusal::Throttled { disconnect, reason }) = self.admission.throttle(now_ns) {
            if disconnect {
                self.send_logout(now_ns, &reason, out);
                return Action::Close;
            }
            self.send_business_reject(now_ns, msg, 0, &reason, out);
            return Action::Continue;
        }
        let account = match &request {
            Ok(r) => r.account(),
            Err(e) => e.partial.account(),
        };
        if !self.may_trade(account) {
            let text = match msg.get(convert::tag::ACCOUNT) {
                Some(_) => "session may not act on this account",
                None => "Account (1) is required",
            };
            self.send_business_reject(now_ns, msg, 6, text, out);
            return Action::Continue;
        }
        let lookup = |id: InstrumentId| env.instruments.by_id(id);
        let (partial, code) = match request {
            Ok(r) => match r.command(lookup) {
                Ok(body) => {
                    submit(body);
                    return Action::Continue;
                }
                Err(e) => (r, e.code()),
            },
            Err(e) => (e.partial, e.error.code()),
        };
        let mut ctx = ReportContext { transact_time_ns: now_ns, next_exec_id: *env.next_exec_id };
        let report = crate::sbe::session::gateway_reject(&partial.inbound(), code, &mut ctx);
        *env.next_exec_id = ctx.next_exec_id.wrapping_add(1);
        if let Some(r) = report {
            let symbol = msg.get(convert::tag::SYMBOL).unwrap_or(b"");
            let symbol = if symbol.len() <= 32 { symbol } else { b"" };
            let mut sym = [0u8; 32];
            sym[..symbol.len()].copy_from_slice(symbol);
            self.send_report(&r, &sym[..symbol.len()], now_ns, Some(out));
        }
        Action::Continue
    }
}

/// Appends one SequenceReset-GapFill covering `from..to` (MsgSeqNum `from`, NewSeqNo `to`).
fn gap_fill(out: &mut Vec<u8>, our: &str, their: &str, from: u64, to: u64, now_ns: u64, buf: &mut [u8]) {
    let mut w = Writer::new(buf, BEGIN_STRING, msg_type::SEQUENCE_RESET);
    w.str(tag::SENDER_COMP_ID, our);
    w.str(tag::TARGET_COMP_ID, their);
    w.u64(tag::MSG_SEQ_NUM, from);
    w.char(tag::POSS_DUP_FLAG, b'Y');
    w.timestamp_ms(tag::SENDING_TIME, now_ns as i64);
    w.timestamp_ms(tag::ORIG_SENDING_TIME, now_ns as i64);
    w.char(tag::GAP_FILL_FLAG, b'Y');
    w.u64(tag::NEW_SEQ_NO, to);
    if let Ok(n) = w.finish() {
        out.extend_from_slice(&buf[..n]);
    }
}

/// A stored message re-written for a resend: PossDupFlag=Y, OrigSendingTime = its SendingTime,
/// SendingTime = now, body unchanged.
fn resend_copy(stored: &[u8], seq: u64, now_ns: u64, table: &mut FieldTable, buf: &mut [u8]) -> Option<usize> {
    let msg = parse(stored, table).ok()?;
    let mut w = Writer::new(buf, BEGIN_STRING, msg.msg_type());
    w.bytes(tag::SENDER_COMP_ID, msg.get(tag::SENDER_COMP_ID)?);
    w.bytes(tag::TARGET_COMP_ID, msg.get(tag::TARGET_COMP_ID)?);
    w.u64(tag::MSG_SEQ_NUM, seq);
    w.char(tag::POSS_DUP_FLAG, b'Y');
    w.timestamp_ms(tag::SENDING_TIME, now_ns as i64);
    w.bytes(tag::ORIG_SENDING_TIME, msg.get(tag::SENDING_TIME)?);
    for (t, v) in msg.iter() {
        if !HEADER_TAGS.contains(&t) && t != 10 {
            w.bytes(t, v);
        }
    }
    w.finish().ok()
}

/// Instruments by id and symbol from the I/O thread's table.
pub struct InstrumentTable<'a>(pub &'a [Option<InstrumentSpec>]);

impl InstrumentLookup for InstrumentTable<'_> {
    fn by_id(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.0.get(id.0 as usize).and_then(|s| s.as_ref())
    }
    fn by_symbol(&self, symbol: &[u8]) -> Option<&InstrumentSpec> {
        self.0.iter().flatten().find(|s| s.symbol.as_str().as_bytes() == symbol)
    }
}

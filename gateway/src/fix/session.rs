//! The FIX 4.4 session layer, sans-IO: one [`FixSession`] per configured CompID pair lives for
//! the whole process (it owns the session's persistent [`SessionStore`]); a connection attaches
//! to it at Logon and detaches at disconnect. Parsed messages and clock ticks go in; bytes go
//! into the caller's send buffer, commands into `submit`, and an [`Action`] says whether the
//! connection stays.
//!
//! What it does, in the FIX 4.4 session rules' terms, as QuickFIX's acceptor does it (held to
//! QuickFIX's own acceptance suite, `gateway/tests/quickfix-at/`):
//! - **Logon**: first message of a connection (`fix/sessions.rs` refuses anything else, and
//!   unknown CompIDs, without a reply). Another BeginString or a SendingTime off by more than
//!   `max_latency_s` → disconnect without a reply; the dictionary, HeartBtInt bounds,
//!   Username/Password and a too-low MsgSeqNum → Logout with the reason (neither stored nor
//!   counted), then disconnect. Nothing about the session changes before a Logon is accepted.
//!   `ResetSeqNumFlag` (141=Y, with MsgSeqNum 1) or `reset_on_logon` restarts both sequences at
//!   1; 8013=Y asks for cancel-on-disconnect. Answered with Logon, with 141=Y only when the
//!   Logon asked for it. A Logon with 141=Y and MsgSeqNum 1 on a logged-on connection resets
//!   both sides again; any other Logon there ends the connection.
//! - **Order of checks** (QuickFIX's): BeginString (another → Logout "Incorrect BeginString"),
//!   the data dictionary ([`Dictionary::validate`]: a Reject with RefSeqNum, RefTagID when a
//!   tag is at fault, RefMsgType, SessionRejectReason and QuickFIX's text), then per message
//!   type SendingTime (→ Reject 373=10, Logout), CompIDs (→ Reject 373=9, Logout) and the
//!   sequence number. After those Logouts sable waits `logout_timeout_s` for the
//!   counterparty's. A Reject counts the message's seq when it is the expected one (not for a
//!   Logon or a SequenceReset).
//! - **Sequence numbers**: too high → held back ([`GapQueue`]) and one ResendRequest
//!   (BeginSeqNo = expected, EndSeqNo = 0) per gap; held-back messages are processed in order
//!   once the gap is filled (a TestRequest that a gap fill covers is still answered). Too low
//!   without PossDupFlag → Logout "MsgSeqNum too low, expecting X but received Y" and
//!   disconnect; PossDup duplicates are ignored once OrigSendingTime checks out (missing →
//!   Reject 373=1; later than SendingTime → Reject 373=10 and Logout). A ResendRequest is
//!   honoured and a Logout answered whatever their seq; SequenceReset-Reset applies whatever its
//!   seq, and NewSeqNo below the expected seq is a Reject 373=5.
//! - **Logout from sable** (shutdown): sable waits up to `logout_timeout_s` for the
//!   confirming Logout; application messages arriving meanwhile are not taken and their seq is
//!   not consumed (the client sends them again after its next Logon).
//! - **Heartbeats**: a Heartbeat after `HeartBtInt` of silence; nothing received for 1.2 ×
//!   `HeartBtInt` → TestRequest 112=TEST (and no Heartbeat while it waits); still nothing after
//!   2.4 × → disconnect.
//! - **ResendRequest**: stored application messages are re-sent with PossDupFlag=Y and
//!   OrigSendingTime; runs of admin messages (or of messages no longer retained) become one
//!   SequenceReset-GapFill each.
//! - **Layout**: every message goes out as QuickFIX writes it: 8, 9, 35, the other header
//!   fields in ascending tag order, the body in ascending tag order (resends too).
//! - **Persistence**: every message sent and every inbound sequence number go to the store
//!   before the bytes reach the socket buffer, so after a restart the session resumes without a
//!   reset and a client can ask for what it missed. Reports for a session that is not logged on
//!   are stored (taking their sequence numbers) and reach the client through its ResendRequest.
//! - **Application**: D, F, G, H, q → through [`convert`] into engine commands (or the message
//!   type's reject); Account (1) may be left out by a session with exactly one account, and a
//!   missing conditionally required field (OrderQty on D, Account on a session with several)
//!   is BusinessMessageReject 380=5; a session may act only on its configured accounts (380=6);
//!   a valid FIX 4.4 message type sable does not take → 380=3; throttle (GCRA) → 380=0 (Other)
//!   with the limit in Text, or Logout, per the session's policy.

use engine::{CommandBody, InstrumentId, InstrumentSpec};

use crate::config::{FixSessionConfig, FixSettings};
use crate::fix::convert::{self, BodyWriter, InstrumentLookup};
use crate::fix::dictionary::{Dictionary, MsgTypeSupport, SessionReject, SessionRejectReason, ValidationOptions};
use crate::fix::message::{FieldTable, INVALID_TAG, Message, parse};
use crate::fix::queue::GapQueue;
use crate::fix::tags::{msg_type, tag};
use crate::fix::writer::{TimestampCache, WRITE_BUFFER_LEN_BYTES, Writer};
use crate::sbe::convert::{Report, ReportContext};
use crate::session::credentials::{Check, Credential};
use crate::session::outbound::{self, Replayed};
use crate::session::rules::{Admission, Refusal, SessionCommon};
use crate::store::SessionStore;

/// The BeginString of every message.
pub const BEGIN_STRING: &str = "FIX.4.4";

/// Header tags the session writes itself; a re-sent message's body is everything else.
const HEADER_TAGS: [u32; 16] = [8, 9, 35, 34, 43, 49, 52, 56, 97, 115, 116, 122, 128, 129, 144, 145];

/// Bytes of each session's send buffer: a whole message with the writer's headroom, twice, so
/// [`Writer::sort_fields_since`] has its scratch space.
const SEND_BUFFER_LEN_BYTES: usize = 2 * WRITE_BUFFER_LEN_BYTES;

/// The TestReqID of the TestRequest sable sends after a silent HeartBtInt (QuickFIX's, which
/// conformance tests expect).
const TEST_REQ_ID: &str = "TEST";

/// BusinessRejectReason (380) 5, and QuickFIX's text for it (followed by ` (<tag>)`).
const BUSINESS_REJECT_CONDITIONALLY_REQUIRED: u32 = 5;
const CONDITIONALLY_REQUIRED_TEXT: &str = "Conditionally Required Field Missing";

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

/// The Logout text of a Logon refused for its credentials, or while failed logons lock its
/// session or address out: the same words either way, so the reply reveals nothing.
const INVALID_CREDENTIALS: &str = "Invalid Username or Password";

/// What the session needs from the rest of the gateway for one call.
pub struct FixEnv<'a, L: InstrumentLookup> {
    /// sable's dialect.
    pub dictionary: &'a Dictionary,
    /// Instrument lookup.
    pub instruments: &'a L,
    /// Exec ids of gateway rejects (a counter shared by every protocol).
    pub next_exec_id: &'a mut u64,
    /// Failed Logons locked this session or the peer's address out: a Logon is refused as a
    /// wrong password is, whatever its credentials.
    pub logon_locked: bool,
    /// The auth thread's verdict on this Logon's password, when the session's is hashed
    /// (`None`: not verified; a hashed credential then refuses).
    pub password_verified: Option<bool>,
}

/// One configured FIX session.
pub struct FixSession {
    settings: FixSettings,
    /// The last Logon was refused for its credentials (see [`FixSession::credentials_refused`]).
    credentials_refused: bool,
    /// sable's CompID (the client's TargetCompID).
    our_comp_id: String,
    /// The client's CompID.
    their_comp_id: String,
    /// What a Logon must carry (replaced by a credential reload).
    credential: Credential,
    /// The account of a session configured for exactly one: an application message may then
    /// leave Account (1) out.
    default_account: Option<String>,
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
    /// Messages that arrived above the expected seq, processed once the gap is filled.
    queue: GapQueue,
    cancel_on_disconnect: bool,
    cod_counter: u64,
    /// The parse table, taken out while a message borrows it (`None` only during a call).
    table: Option<Box<FieldTable>>,
    buf: Box<[u8; SEND_BUFFER_LEN_BYTES]>,
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
    /// Account (1) when the message has none and the session has exactly one.
    default_account: Option<&'m [u8]>,
}

impl<'m, 'a> Fields<'m, 'a> {
    fn new(msg: &'m Message<'a>, default_account: Option<&'m [u8]>) -> Self {
        let mut first = [0u8; FAST_TAGS];
        for (i, f) in msg.fields().iter().enumerate().take(usize::from(u8::MAX)) {
            if let Some(slot) = first.get_mut(f.tag as usize)
                && *slot == 0
            {
                *slot = (i + 1) as u8;
            }
        }
        Fields { msg, first, default_account }
    }
}

impl convert::FieldSource for Fields<'_, '_> {
    fn field(&self, tag: u32) -> Option<&[u8]> {
        match self.first.get(tag as usize) {
            Some(0) if tag == tag::ACCOUNT => self.default_account,
            Some(0) => None,
            Some(&i) => Some(self.msg.value(&self.msg.fields()[usize::from(i) - 1])),
            None => self.msg.get(tag),
        }
    }
}

impl FixSession {
    /// Application messages this session's throttle refused since start.
    pub(crate) fn throttled(&self) -> u64 {
        self.admission.throttled()
    }

    /// Application messages refused since start for naming an account the session may not act on.
    pub(crate) fn not_authorised(&self) -> u64 {
        self.admission.not_authorised()
    }

    /// The accounts the session may act on.
    pub(crate) fn accounts(&self) -> &[u32] {
        self.admission.accounts()
    }

    /// Engages or releases the session's kill switch.
    pub(crate) fn set_killed(&mut self, killed: bool) {
        self.admission.set_killed(killed);
    }

    /// The session of `cfg` with its effective `settings`, persisting into `store`.
    pub fn new(cfg: &FixSessionConfig, settings: FixSettings, store: SessionStore) -> Self {
        FixSession {
            settings,
            our_comp_id: cfg.target_comp_id.clone(),
            their_comp_id: cfg.sender_comp_id.clone(),
            credential: Credential::or_never(&cfg.username, &cfg.password, &cfg.sender_comp_id),
            credentials_refused: false,
            default_account: match cfg.accounts[..] {
                [only] => Some(only.to_string()),
                _ => None,
            },
            admission: Admission::new(SessionCommon::from(cfg)),
            store,
            state: LinkState::Offline,
            heartbeat_ns: 30_000_000_000,
            last_rx_ns: 0,
            last_tx_ns: 0,
            test_request_sent: false,
            resend_until: None,
            queue: GapQueue::default(),
            cancel_on_disconnect: false,
            cod_counter: 0,
            table: Some(Box::default()),
            buf: Box::new([0; SEND_BUFFER_LEN_BYTES]),
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

    /// How many messages wait for a gap before them to be filled.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    // --------------------------------------------------------------------------------------
    // Sending

    /// Builds one message into `self.buf` as QuickFIX lays it out: 8, 9, 35, then the header
    /// in ascending tag order (34, 49, 52, 56, then the `route` fields, which must be above
    /// 56 and ascending), then the body in ascending tag order. Returns its length.
    fn build(
        &mut self,
        now_ns: u64,
        msg_type: &[u8],
        seq: u64,
        route: &[(u32, &[u8])],
        body: impl FnOnce(&mut Writer<'_>, &mut TimestampCache),
    ) -> Option<usize> {
        let mut w = Writer::new(&mut self.buf[..], BEGIN_STRING, msg_type);
        w.u64(tag::MSG_SEQ_NUM, seq);
        w.str(tag::SENDER_COMP_ID, &self.our_comp_id);
        w.timestamp_ms_cached(tag::SENDING_TIME, now_ns as i64, &mut self.ts);
        w.str(tag::TARGET_COMP_ID, &self.their_comp_id);
        for &(t, v) in route {
            w.bytes(t, v);
        }
        let mark = w.mark();
        body(&mut w, &mut self.ts);
        w.sort_fields_since(mark);
        match w.finish() {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!(session = %self.their_comp_id, error = %e, "cannot build a FIX message");
                None
            }
        }
    }

    /// Builds one message, records it in the store under the next sender seq and appends it
    /// to `out` (when a connection is attached). Returns false if it could not be built.
    fn send(
        &mut self,
        now_ns: u64,
        msg_type: &[u8],
        app: bool,
        out: Option<&mut Vec<u8>>,
        body: impl FnOnce(&mut Writer<'_>, &mut TimestampCache),
    ) -> bool {
        self.send_routed(now_ns, msg_type, app, &[], out, body)
    }

    /// [`FixSession::send`] with routing fields in the header.
    fn send_routed(
        &mut self,
        now_ns: u64,
        msg_type: &[u8],
        app: bool,
        route: &[(u32, &[u8])],
        out: Option<&mut Vec<u8>>,
        body: impl FnOnce(&mut Writer<'_>, &mut TimestampCache),
    ) -> bool {
        let seq = self.store.next_sender_seq();
        let Some(n) = self.build(now_ns, msg_type, seq, route, body) else { return false };
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

    /// Refuses a Logon with a Logout saying why, sent but neither stored nor counted: nothing
    /// of a connection that never logged on may change what the next Logon gets.
    fn refuse_logon(&mut self, now_ns: u64, text: &str, out: &mut Vec<u8>) -> Action {
        let seq = self.store.next_sender_seq();
        if let Some(n) = self.build(now_ns, msg_type::LOGOUT, seq, &[], |w, _| {
            w.str(tag::TEXT, text);
        }) {
            out.extend_from_slice(&self.buf[..n]);
        }
        Action::Close
    }

    /// Reject (3) of `msg`: RefSeqNum, RefMsgType, SessionRejectReason, RefTagID when the
    /// reason names a tag (as written, for a tag that is no valid number), Text; the message's
    /// routing fields come back reversed in the header. Counts the message's seq when it is the
    /// expected one (except for a Logon or a SequenceReset), as QuickFIX does.
    fn send_reject(&mut self, now_ns: u64, msg: &Message<'_>, rej: &SessionReject, out: &mut Vec<u8>) {
        let seq = msg.get(tag::MSG_SEQ_NUM).and_then(crate::fix::message::parse_u64);
        let msg_type = msg.get(tag::MSG_TYPE).unwrap_or(b"");
        let ref_tag: Option<&[u8]> = match rej.ref_tag {
            Some(INVALID_TAG) => msg.fields().iter().position(|f| f.tag == INVALID_TAG).map(|i| msg.tag_text(i)),
            _ => None,
        };
        let mut route = [(0u32, &b""[..]); ROUTE_PAIRS.len()];
        let n = reverse_route(msg, &mut route);
        self.send_routed(now_ns, msg_type::REJECT, false, &route[..n], Some(out), |w, _| {
            w.u64(tag::REF_SEQ_NUM, seq.unwrap_or(0));
            match (ref_tag, rej.ref_tag) {
                (Some(text), _) => {
                    w.bytes(tag::REF_TAG_ID, text);
                }
                (None, Some(t)) => {
                    w.u64(tag::REF_TAG_ID, u64::from(t));
                }
                (None, None) => {}
            }
            if !msg_type.is_empty() {
                w.bytes(tag::REF_MSG_TYPE, msg_type);
            }
            w.u64(tag::SESSION_REJECT_REASON, u64::from(rej.reason.code()));
            w.str(tag::TEXT, rej.text);
        });
        let counted = msg_type != msg_type::LOGON && msg_type != msg_type::SEQUENCE_RESET;
        if counted && seq.is_some_and(|s| s == self.store.next_target_seq()) {
            self.advance_target(self.store.next_target_seq() + 1);
        }
    }

    /// BusinessMessageReject (j) of `msg` with `reason` (380) and `text`; `ref_id` adds
    /// BusinessRejectRefID (379).
    fn send_business_reject(
        &mut self,
        now_ns: u64,
        msg: &Message<'_>,
        reason: u32,
        text: &str,
        ref_id: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) {
        let ref_seq = msg.get(tag::MSG_SEQ_NUM).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let msg_type = msg.get(tag::MSG_TYPE).unwrap_or(b"");
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
    /// checked both). Judges it and answers. Nothing about the session changes unless the Logon
    /// is accepted: a refused Logon is answered (or not) and the connection closes, and the next
    /// connection's Logon is judged as if it had never come.
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
        // As QuickFIX: a Logon in another FIX version or with a SendingTime off by more than
        // max_latency_s is dropped with the connection, without a reply.
        if msg.begin_string() != BEGIN_STRING.as_bytes() || !self.sending_time_ok(msg, now_ns) {
            return Action::Close;
        }
        self.credentials_refused = false;
        let hb_s = match self.check_logon(msg, env.dictionary, env.logon_locked, env.password_verified) {
            Ok(hb_s) => hb_s,
            Err(text) => {
                self.credentials_refused = text == INVALID_CREDENTIALS;
                return self.refuse_logon(now_ns, &text, out);
            }
        };
        let reset_asked = msg.get(tag::RESET_SEQ_NUM_FLAG) == Some(b"Y");
        let reset = reset_asked || self.settings.reset_on_logon;
        let seq = msg.seq_num().unwrap_or(0);
        if reset_asked && seq != 1 {
            return self.refuse_logon(now_ns, "ResetSeqNumFlag=Y requires MsgSeqNum=1", out);
        }
        let expected = if reset { 1 } else { self.store.next_target_seq() };
        if seq < expected {
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            return self.refuse_logon(now_ns, &text, out);
        }
        // Accepted: from here on the session changes.
        if reset {
            self.reset(now_ns);
        }
        self.state = LinkState::LoggedOn;
        self.heartbeat_ns = hb_s * 1_000_000_000;
        self.last_rx_ns = now_ns;
        self.test_request_sent = false;
        self.resend_until = None;
        self.queue.clear();
        self.admission.restart();
        self.cancel_on_disconnect =
            self.settings.cancel_on_disconnect || msg.get(tag::CANCEL_ON_DISCONNECT) == Some(b"Y");
        self.send_logon_reply(now_ns, hb_s, reset_asked, out);
        tracing::info!(
            session = %self.their_comp_id,
            next_in = expected,
            next_out = self.store.next_sender_seq(),
            cancel_on_disconnect = self.cancel_on_disconnect,
            "FIX logon"
        );
        self.after_logon(msg, seq, expected, now_ns, out);
        Action::Continue
    }

    /// The Logon answering the client's: ResetSeqNumFlag only when the client asked for a
    /// reset (as QuickFIX, whatever `reset_on_logon` says).
    fn send_logon_reply(&mut self, now_ns: u64, hb_s: u64, reset_asked: bool, out: &mut Vec<u8>) {
        self.send(now_ns, msg_type::LOGON, false, Some(out), |w, _| {
            w.u64(tag::ENCRYPT_METHOD, 0);
            w.u64(tag::HEART_BT_INT, hb_s);
            if reset_asked {
                w.char(tag::RESET_SEQ_NUM_FLAG, b'Y');
            }
        });
    }

    /// The accepted Logon's own seq: counted when expected; above the expected one, the Logon
    /// holds its place in the queue (skipped when its turn comes) and the gap is asked for.
    fn after_logon(&mut self, msg: &Message<'_>, seq: u64, expected: u64, now_ns: u64, out: &mut Vec<u8>) {
        if seq > expected {
            self.queue.push(seq, msg.bytes());
            self.request_resend(now_ns, expected, seq, out);
        } else {
            self.advance_target(seq + 1);
        }
    }

    /// Validates a Logon: dictionary, HeartBtInt bounds, credentials. Returns the heartbeat
    /// interval in seconds, or the text of the Logout that refuses it.
    fn check_logon(
        &self,
        msg: &Message<'_>,
        dictionary: &Dictionary,
        locked: bool,
        verified: Option<bool>,
    ) -> Result<u64, String> {
        dictionary.validate(msg, &self.validation_options()).map_err(|rej| rej.text.to_string())?;
        let hb_s = msg.get(tag::HEART_BT_INT).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let (lo, hi) = (u64::from(self.settings.heartbeat_min_s), u64::from(self.settings.heartbeat_max_s));
        if !(lo..=hi).contains(&hb_s) {
            return Err(format!("HeartBtInt {hb_s} outside the allowed {lo}..={hi} seconds"));
        }
        if locked {
            return Err(INVALID_CREDENTIALS.into());
        }
        let (user, pass) = (msg.get(tag::USERNAME).unwrap_or(b""), msg.get(tag::PASSWORD).unwrap_or(b""));
        // A hashed password not verified yet refuses: the protocol asks the auth thread first.
        let verified = self.credential.is_hashed().then(|| verified.unwrap_or(false));
        match self.credential.check(user, pass, verified) {
            Check::Accepted => Ok(hb_s),
            Check::Refused | Check::Verify(_) => Err(INVALID_CREDENTIALS.into()),
        }
    }

    /// What a Logon must carry.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Replaces what a Logon must carry (a credential reload); a live connection is not
    /// touched, the next Logon is judged by it.
    pub fn set_credential(&mut self, credential: Credential) {
        self.credential = credential;
    }

    /// Whether the last Logon was refused for its credentials (or a lockout, which answers
    /// the same): what the failed-logon guard counts.
    pub fn credentials_refused(&self) -> bool {
        self.credentials_refused
    }

    /// A Logon this session refused (the connection closes, it was never bound): the link is
    /// offline again. Refusing one Logon must never shut the session out.
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
        self.queue.clear();
        self.resend_until = None;
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
            self.logout_and_wait(now_ns, "server shutting down", out);
        }
    }

    /// Sends Logout and waits up to `logout_timeout_s` for the counterparty's (QuickFIX after a
    /// CompID or SendingTime problem, a wrong BeginString, and at shutdown).
    fn logout_and_wait(&mut self, now_ns: u64, text: &str, out: &mut Vec<u8>) {
        self.send_logout(now_ns, text, out);
        self.state = LinkState::LoggingOut { since_ns: now_ns };
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
                    // QuickFIX's TestReqID, which its counterparties' tests expect.
                    self.send(now_ns, msg_type::TEST_REQUEST, false, Some(out), |w, _| {
                        w.str(tag::TEST_REQ_ID, TEST_REQ_ID);
                    });
                    self.test_request_sent = true;
                } else if !self.test_request_sent && now_ns.saturating_sub(self.last_tx_ns) >= self.heartbeat_ns {
                    // While a TestRequest waits for its answer, no Heartbeat (as QuickFIX).
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
        self.queue.clear();
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

    /// SendingTime within `max_latency_s` of the clock (CheckLatency / MaxLatency).
    fn sending_time_ok(&self, msg: &Message<'_>, now_ns: u64) -> bool {
        if !self.settings.check_latency {
            return true;
        }
        let Some(sent) = msg.get(tag::SENDING_TIME).and_then(crate::fix::message::parse_utc_timestamp_ns) else {
            return true;
        };
        let max = i64::from(self.settings.max_latency_s) * 1_000_000_000;
        (sent - now_ns as i64).abs() <= max
    }

    // --------------------------------------------------------------------------------------
    // Inbound

    /// One framed message (checksum and body length already verified) after Logon; then the
    /// held-back messages its arrival lets through.
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
        if self.on_bytes(bytes, false, now_ns, env, out, submit) == Action::Close {
            return Action::Close;
        }
        self.drain_queue(now_ns, env, out, submit)
    }

    /// Processes held-back messages while the next expected one is among them.
    fn drain_queue<L: InstrumentLookup>(
        &mut self,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        // Each turn takes one message out of the queue, so this ends.
        while self.state == LinkState::LoggedOn {
            let mut skipped = Vec::new();
            let next = self.queue.take(self.store.next_target_seq(), |m| skipped.push(m));
            for bytes in &skipped {
                self.answer_skipped_test_request(bytes, now_ns, out);
            }
            let Some(bytes) = next else { break };
            if self.on_bytes(&bytes, true, now_ns, env, out, submit) == Action::Close {
                return Action::Close;
            }
        }
        Action::Continue
    }

    /// A held-back message a gap fill jumped over: the counterparty will not send it again
    /// (FIX gap-fills administrative messages), so a TestRequest among them is answered here,
    /// or its sender would wait for the Heartbeat in vain. (QuickFIX leaves it unanswered.)
    fn answer_skipped_test_request(&mut self, bytes: &[u8], now_ns: u64, out: &mut Vec<u8>) {
        let mut table = self.table.take().unwrap_or_default();
        if let Ok(msg) = parse(bytes, &mut table)
            && msg.msg_type() == msg_type::TEST_REQUEST
        {
            self.answer_test_request(&msg, now_ns, out);
        }
        self.table = Some(table);
    }

    fn on_bytes<L: InstrumentLookup>(
        &mut self,
        bytes: &[u8],
        queued: bool,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        let mut table = self.table.take().unwrap_or_default();
        let action = match parse(bytes, &mut table) {
            // Unparseable but checksummed: nothing to reference in a Reject; treat as garbled.
            Err(e) => {
                tracing::warn!(session = %self.their_comp_id, error = %e, "unparseable FIX message ignored");
                Action::Continue
            }
            Ok(msg) => self.on_parsed(&msg, queued, now_ns, env, out, submit),
        };
        self.table = Some(table);
        action
    }

    /// QuickFIX's order: BeginString, the dictionary, then per message type the SendingTime,
    /// the CompIDs and the sequence number (which types check which is in [`Checks`]).
    fn on_parsed<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        queued: bool,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        let Ok(seq) = msg.seq_num() else {
            let rej = SessionReject::new(SessionRejectReason::RequiredTagMissing, Some(tag::MSG_SEQ_NUM));
            self.send_reject(now_ns, msg, &rej, out);
            return Action::Continue;
        };
        let at = Position { seq, expected: self.store.next_target_seq() };
        if msg.begin_string() != BEGIN_STRING.as_bytes() {
            return self.on_wrong_begin_string(msg, at, now_ns, out);
        }
        let msg_type = msg.msg_type();
        if queued && (msg_type == msg_type::LOGON || msg_type == msg_type::RESEND_REQUEST) {
            // Already acted on when it arrived; its turn only counts its seq.
            self.advance_target(seq + 1);
            return Action::Continue;
        }
        if let Err(rej) = env.dictionary.validate(msg, &self.validation_options()) {
            let unsupported = rej.reason == SessionRejectReason::InvalidMsgType
                && env.dictionary.msg_type_support(msg_type) == MsgTypeSupport::Unsupported;
            return self.on_invalid(msg, &rej, unsupported, at, now_ns, out);
        }
        match msg_type {
            msg_type::LOGON => self.on_logon_in_session(msg, at, now_ns, out),
            msg_type::LOGOUT => self.on_logout(msg, at, now_ns, out),
            msg_type::RESEND_REQUEST => self.on_resend_request_msg(msg, at, now_ns, out),
            msg_type::SEQUENCE_RESET => self.on_sequence_reset(msg, at, now_ns, out),
            _ => match self.verify(msg, at, Checks::BOTH, now_ns, out) {
                Some(action) => action,
                None => self.on_in_sequence(msg, seq, now_ns, env, out, submit),
            },
        }
    }

    /// QuickFIX's `verify`: SendingTime, CompIDs, then (as `checks` asks) a seq above or below
    /// the expected one. `None` = go on with the message; otherwise what to do instead.
    fn verify(
        &mut self,
        msg: &Message<'_>,
        at: Position,
        checks: Checks,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Option<Action> {
        if !self.sending_time_ok(msg, now_ns) {
            let rej = SessionReject::new(SessionRejectReason::SendingTimeAccuracyProblem, None);
            self.send_reject(now_ns, msg, &rej, out);
            self.logout_and_wait(now_ns, "", out);
            return Some(Action::Continue);
        }
        let sender_ok = msg.get(tag::SENDER_COMP_ID) == Some(self.their_comp_id.as_bytes());
        let target_ok = msg.get(tag::TARGET_COMP_ID) == Some(self.our_comp_id.as_bytes());
        if !sender_ok || !target_ok {
            let rej = SessionReject::new(SessionRejectReason::CompIdProblem, None);
            self.send_reject(now_ns, msg, &rej, out);
            self.logout_and_wait(now_ns, "", out);
            return Some(Action::Continue);
        }
        if checks.too_high && at.seq > at.expected {
            self.hold_back(msg, at, now_ns, out);
            return Some(Action::Continue);
        }
        if checks.too_low && at.seq < at.expected {
            return Some(self.on_too_low(msg, at, now_ns, out));
        }
        None
    }

    /// A message above the expected seq: held back until the gap before it is filled, which
    /// one ResendRequest asks for.
    fn hold_back(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) {
        if !self.queue.push(at.seq, msg.bytes()) {
            tracing::warn!(session = %self.their_comp_id, seq = at.seq, "FIX gap queue full; message dropped");
        }
        self.request_resend(now_ns, at.expected, at.seq, out);
    }

    /// A message below the expected seq: without PossDupFlag the session ends ("MsgSeqNum too
    /// low"); a PossDup duplicate is ignored once its OrigSendingTime checks out.
    fn on_too_low(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        if msg.get(tag::POSS_DUP_FLAG) != Some(b"Y") {
            let text = format!("MsgSeqNum too low, expecting {} but received {}", at.expected, at.seq);
            self.send_logout(now_ns, &text, out);
            return Action::Close;
        }
        if msg.msg_type() == msg_type::SEQUENCE_RESET {
            return Action::Continue;
        }
        let time = |t: u32| msg.get(t).and_then(crate::fix::message::parse_utc_timestamp_ns);
        match (time(tag::ORIG_SENDING_TIME), time(tag::SENDING_TIME)) {
            (None, _) => {
                let rej = SessionReject::new(SessionRejectReason::RequiredTagMissing, Some(tag::ORIG_SENDING_TIME));
                self.send_reject(now_ns, msg, &rej, out);
            }
            (Some(orig), Some(sent)) if orig > sent => {
                let rej = SessionReject::new(SessionRejectReason::SendingTimeAccuracyProblem, None);
                self.send_reject(now_ns, msg, &rej, out);
                self.logout_and_wait(now_ns, "", out);
            }
            _ => {}
        }
        Action::Continue
    }

    /// A message the dictionary refused: Reject (or BusinessMessageReject 380=3 for a FIX 4.4
    /// type sable does not take), counting its seq when it is the expected one. Above the
    /// expected seq, the gap is asked for too; a refused Logon ends the session.
    fn on_invalid(
        &mut self,
        msg: &Message<'_>,
        rej: &SessionReject,
        unsupported: bool,
        at: Position,
        now_ns: u64,
        out: &mut Vec<u8>,
    ) -> Action {
        if unsupported {
            self.send_business_reject(now_ns, msg, 3, "Unsupported Message Type", None, out);
            if at.seq == at.expected {
                self.advance_target(at.seq + 1);
            }
        } else {
            self.send_reject(now_ns, msg, rej, out);
        }
        if at.seq > at.expected {
            self.request_resend(now_ns, at.expected, at.seq, out);
        }
        if msg.msg_type() == msg_type::LOGON {
            self.send_logout(now_ns, rej.text, out);
            return Action::Close;
        }
        Action::Continue
    }

    /// A message of another FIX version: a Logout is answered as one; anything else gets
    /// Logout "Incorrect BeginString", and sable waits for the counterparty's.
    fn on_wrong_begin_string(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        if msg.msg_type() == msg_type::LOGOUT {
            return self.on_logout(msg, at, now_ns, out);
        }
        if at.seq == at.expected {
            self.advance_target(at.seq + 1);
        }
        self.logout_and_wait(now_ns, "Incorrect BeginString", out);
        Action::Continue
    }

    /// Logout, whatever its seq: answered (unless it answers sable's), then the connection
    /// closes.
    fn on_logout(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        if let Some(action) = self.verify(msg, at, Checks::NONE, now_ns, out) {
            return action;
        }
        if !matches!(self.state, LinkState::LoggingOut { .. }) {
            self.send_logout(now_ns, "", out);
        }
        if at.seq == at.expected {
            self.advance_target(at.seq + 1);
        }
        if self.settings.reset_on_logout {
            self.reset(now_ns);
        }
        Action::Close
    }

    /// A Logon on a logged-on connection: with ResetSeqNumFlag=Y and MsgSeqNum 1 both sides
    /// start again at 1 and the reply carries 141=Y; anything else ends the connection (as
    /// QuickFIX does).
    fn on_logon_in_session(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        if msg.get(tag::RESET_SEQ_NUM_FLAG) != Some(b"Y") {
            return Action::Close;
        }
        if at.seq != 1 {
            self.send_logout(now_ns, "ResetSeqNumFlag=Y requires MsgSeqNum=1", out);
            return Action::Close;
        }
        if let Some(action) = self.verify(msg, at, Checks::NONE, now_ns, out) {
            return action;
        }
        let hb_s = msg.get(tag::HEART_BT_INT).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let (lo, hi) = (u64::from(self.settings.heartbeat_min_s), u64::from(self.settings.heartbeat_max_s));
        if (lo..=hi).contains(&hb_s) {
            self.heartbeat_ns = hb_s * 1_000_000_000;
        }
        self.reset(now_ns);
        self.send_logon_reply(now_ns, self.heartbeat_ns / 1_000_000_000, true, out);
        self.advance_target(2);
        Action::Continue
    }

    /// ResendRequest, honoured whatever its own seq; its seq counts only when it is the
    /// expected one (above it, sable asks for the gap).
    fn on_resend_request_msg(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        if let Some(action) = self.verify(msg, at, Checks::NONE, now_ns, out) {
            return action;
        }
        self.on_resend_request(msg, now_ns, out);
        if at.seq == at.expected {
            self.advance_target(at.seq + 1);
        } else if at.seq > at.expected {
            self.request_resend(now_ns, at.expected, at.seq, out);
        }
        Action::Continue
    }

    /// SequenceReset: GapFill mode is sequenced like any message; Reset mode applies whatever
    /// its seq. NewSeqNo above the expected seq moves it; below it is a Reject (373=5, no
    /// RefTagID, as QuickFIX); equal changes nothing.
    fn on_sequence_reset(&mut self, msg: &Message<'_>, at: Position, now_ns: u64, out: &mut Vec<u8>) -> Action {
        let gap_fill = msg.get(tag::GAP_FILL_FLAG) == Some(b"Y");
        let checks = if gap_fill { Checks::BOTH } else { Checks::NONE };
        if let Some(action) = self.verify(msg, at, checks, now_ns, out) {
            return action;
        }
        let new_seq = msg.get(tag::NEW_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        if new_seq > at.expected {
            self.advance_target(new_seq);
        } else if new_seq < at.expected {
            let rej = SessionReject::new(SessionRejectReason::ValueIsIncorrect, None);
            self.send_reject(now_ns, msg, &rej, out);
        }
        Action::Continue
    }

    /// The expected message, not one of those `on_parsed` dispatches itself.
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
            msg_type::HEARTBEAT => {}
            msg_type::TEST_REQUEST => self.answer_test_request(msg, now_ns, out),
            msg_type::REJECT => {
                tracing::warn!(session = %self.their_comp_id, seq, "the client rejected one of our messages");
            }
            _ if matches!(self.state, LinkState::LoggingOut { .. }) => {
                // After sable's Logout, application messages are not taken and their seq is
                // not consumed: the client sends them again after its next Logon (sable's
                // ResendRequest asks for them).
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

    /// Re-sends what the client asks for: stored application messages with PossDupFlag=Y and
    /// OrigSendingTime, gap fills for the rest.
    fn on_resend_request(&mut self, msg: &Message<'_>, now_ns: u64, out: &mut Vec<u8>) {
        let begin = msg.get(tag::BEGIN_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let end = msg.get(tag::END_SEQ_NO).and_then(crate::fix::message::parse_u64).unwrap_or(0);
        let Some((begin, end)) = outbound::sent_range(&self.store, begin, end) else { return };
        tracing::info!(session = %self.their_comp_id, begin, end, "FIX resend");
        let mut table = FieldTable::default();
        let mut rebuilt = vec![0u8; SEND_BUFFER_LEN_BYTES];
        let (our, their) = (self.our_comp_id.clone(), self.their_comp_id.clone());
        let mut pending: Vec<u8> = Vec::new();
        let res = outbound::replay(&self.store, begin, end, |step| match step {
            Replayed::Message { seq, bytes } => match resend_copy(bytes, seq, now_ns, &mut table, &mut rebuilt) {
                Some(n) => pending.extend_from_slice(&rebuilt[..n]),
                None => gap_fill(&mut pending, &our, &their, seq, seq + 1, now_ns, &mut rebuilt),
            },
            Replayed::Gap { from, to } => gap_fill(&mut pending, &our, &their, from, to, now_ns, &mut rebuilt),
        });
        if let Err(e) = res {
            tracing::error!(session = %self.their_comp_id, error = %e, "session store read failed during resend");
        }
        out.extend_from_slice(&pending);
        self.last_tx_ns = now_ns;
    }

    /// A field an application message needs that it lacks (FIX's conditionally required
    /// fields): OrderQty on a NewOrderSingle, Account on a session with several accounts.
    fn missing_conditional_field(&self, msg: &Message<'_>) -> Option<u32> {
        if msg.msg_type() == msg_type::NEW_ORDER_SINGLE && !msg.has(tag::ORDER_QTY) {
            return Some(tag::ORDER_QTY);
        }
        let takes_account = matches!(
            msg.msg_type(),
            msg_type::NEW_ORDER_SINGLE
                | msg_type::ORDER_CANCEL_REQUEST
                | msg_type::ORDER_CANCEL_REPLACE_REQUEST
                | msg_type::ORDER_STATUS_REQUEST
                | msg_type::ORDER_MASS_CANCEL_REQUEST
        );
        (takes_account && self.default_account.is_none() && !msg.has(tag::ACCOUNT)).then_some(tag::ACCOUNT)
    }

    fn on_application<L: InstrumentLookup>(
        &mut self,
        msg: &Message<'_>,
        now_ns: u64,
        env: &mut FixEnv<'_, L>,
        out: &mut Vec<u8>,
        submit: &mut impl FnMut(CommandBody),
    ) -> Action {
        let ref_id = msg.get(convert::tag::CL_ORD_ID);
        if let Some(t) = self.missing_conditional_field(msg) {
            let text = format!("{CONDITIONALLY_REQUIRED_TEXT} ({t})");
            self.send_business_reject(now_ns, msg, BUSINESS_REJECT_CONDITIONALLY_REQUIRED, &text, ref_id, out);
            return Action::Continue;
        }
        let fields = Fields::new(msg, self.default_account.as_deref().map(str::as_bytes));
        let Some(request) = convert::request(msg.msg_type(), &fields, env.instruments) else {
            self.send_business_reject(now_ns, msg, 3, "Unsupported Message Type", None, out);
            return Action::Continue;
        };
        if let Err(Refusal::Throttled { disconnect, reason }) = self.admission.throttle(now_ns) {
            if disconnect {
                self.send_logout(now_ns, &reason, out);
                return Action::Close;
            }
            self.send_business_reject(now_ns, msg, 0, &reason, ref_id, out);
            return Action::Continue;
        }
        let account = match &request {
            Ok(r) => r.account(),
            Err(e) => e.partial.account(),
        };
        if !self.admission.authorise(account) {
            self.send_business_reject(now_ns, msg, 6, "session may not act on this account", ref_id, out);
            return Action::Continue;
        }
        let lookup = |id: InstrumentId| env.instruments.by_id(id);
        let (partial, code) = match request {
            Ok(r) if self.admission.killed() && matches!(msg.msg_type(), b"D" | b"G") => {
                (r, engine::RejectReason::KillSwitch as u16)
            }
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

/// Which sequence checks [`FixSession::verify`] makes (QuickFIX's `checkTooHigh` /
/// `checkTooLow`).
#[derive(Clone, Copy, Debug)]
struct Checks {
    too_high: bool,
    too_low: bool,
}

impl Checks {
    const BOTH: Checks = Checks { too_high: true, too_low: true };
    const NONE: Checks = Checks { too_high: false, too_low: false };
}

/// Header routing fields and the field each comes back as in a Reject (QuickFIX's
/// `reverseRoute`: OnBehalfOf* ↔ DeliverTo*).
const ROUTE_PAIRS: [(u32, u32); 6] = [
    (tag::ON_BEHALF_OF_COMP_ID, tag::DELIVER_TO_COMP_ID),
    (tag::ON_BEHALF_OF_SUB_ID, tag::DELIVER_TO_SUB_ID),
    (tag::ON_BEHALF_OF_LOCATION_ID, tag::DELIVER_TO_LOCATION_ID),
    (tag::DELIVER_TO_COMP_ID, tag::ON_BEHALF_OF_COMP_ID),
    (tag::DELIVER_TO_SUB_ID, tag::ON_BEHALF_OF_SUB_ID),
    (tag::DELIVER_TO_LOCATION_ID, tag::ON_BEHALF_OF_LOCATION_ID),
];

/// Fills `route` with `msg`'s non-empty routing fields reversed, in ascending tag order;
/// returns how many.
fn reverse_route<'a>(msg: &Message<'a>, route: &mut [(u32, &'a [u8]); ROUTE_PAIRS.len()]) -> usize {
    let mut n = 0;
    for (from, to) in ROUTE_PAIRS {
        if let Some(v) = msg.get(from).filter(|v| !v.is_empty()) {
            route[n] = (to, v);
            n += 1;
        }
    }
    route[..n].sort_unstable_by_key(|&(t, _)| t);
    n
}

/// Appends one SequenceReset-GapFill covering `from..to` (MsgSeqNum `from`, NewSeqNo `to`).
fn gap_fill(out: &mut Vec<u8>, our: &str, their: &str, from: u64, to: u64, now_ns: u64, buf: &mut [u8]) {
    let mut w = Writer::new(buf, BEGIN_STRING, msg_type::SEQUENCE_RESET);
    w.u64(tag::MSG_SEQ_NUM, from);
    w.char(tag::POSS_DUP_FLAG, b'Y');
    w.str(tag::SENDER_COMP_ID, our);
    w.timestamp_ms(tag::SENDING_TIME, now_ns as i64);
    w.str(tag::TARGET_COMP_ID, their);
    w.timestamp_ms(tag::ORIG_SENDING_TIME, now_ns as i64);
    w.u64(tag::NEW_SEQ_NO, to);
    w.char(tag::GAP_FILL_FLAG, b'Y');
    if let Ok(n) = w.finish() {
        out.extend_from_slice(&buf[..n]);
    }
}

/// A stored message re-written for a resend: PossDupFlag=Y, OrigSendingTime = its SendingTime,
/// SendingTime = now, header in ascending tag order, body in ascending tag order (as stored).
fn resend_copy(stored: &[u8], seq: u64, now_ns: u64, table: &mut FieldTable, buf: &mut [u8]) -> Option<usize> {
    let msg = parse(stored, table).ok()?;
    let mut w = Writer::new(buf, BEGIN_STRING, msg.msg_type());
    w.u64(tag::MSG_SEQ_NUM, seq);
    w.char(tag::POSS_DUP_FLAG, b'Y');
    w.bytes(tag::SENDER_COMP_ID, msg.get(tag::SENDER_COMP_ID)?);
    w.timestamp_ms(tag::SENDING_TIME, now_ns as i64);
    w.bytes(tag::TARGET_COMP_ID, msg.get(tag::TARGET_COMP_ID)?);
    w.bytes(tag::ORIG_SENDING_TIME, msg.get(tag::SENDING_TIME)?);
    let mark = w.mark();
    for (t, v) in msg.iter() {
        if !HEADER_TAGS.contains(&t) && t != tag::CHECKSUM {
            w.bytes(t, v);
        }
    }
    // Messages stored before sable wrote bodies in tag order go out in it too.
    w.sort_fields_since(mark);
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

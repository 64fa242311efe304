//! The one contract every order-entry protocol's sessions follow, sans-IO (quinn-proto's shape):
//! input goes in through `handle_*` (bytes read from a connection, a report for a configured
//! session, a clock tick, a disconnect, shutdown), and output comes out through the [`Outbox`]
//! the receiver polls afterwards (bytes per connection, commands to sequence, connections to
//! close). Only the receiver touches sockets; the sessions never do, so every session rule is a
//! unit test.
//!
//! A protocol ([`Protocol`]) owns its configured sessions, each with its persistent store, and
//! binds connections to them at logon. The receiver knows protocols only through this trait:
//! adding a third protocol is a new implementation and a listener in the pipeline's wiring, with
//! no change to the event loop.
//!
//! What all protocols share is written once: [`rules`] (throttle, account authorisation,
//! cancel-on-disconnect) and [`outbound`] (store before send, offline storage, resend walk).

pub(crate) mod auth;
pub mod credentials;
pub(crate) mod logon_guard;
pub(crate) mod outbound;
pub(crate) mod rules;

use std::collections::VecDeque;

use engine::{CommandBody, InstrumentSpec};

use crate::sbe::convert::Report;

/// A connection slot of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnId(pub usize);

/// A protocol of the receiver, in listener order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProtocolId(pub usize);

/// A configured session, as reports are routed: its protocol and its index among that
/// protocol's configured sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SessionRef {
    /// The protocol.
    pub protocol: ProtocolId,
    /// The session's index in its protocol's configuration list.
    pub index: usize,
}

/// How a connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseKind {
    /// Once what is queued for it has been written.
    AfterFlush,
    /// At once, discarding what is queued (refused without a reply).
    Now,
}

/// What sessions ask the receiver to do. Send buffers are per connection and bounded by the
/// receiver (a client that lets its buffer fill is disconnected as a slow consumer).
#[derive(Default)]
pub(crate) struct Outbox {
    tx: Vec<Vec<u8>>,
    submits: VecDeque<CommandBody>,
    closes: VecDeque<(ConnId, CloseKind, String)>,
    /// Passwords to verify off the gateway thread (see [`auth`]).
    auth: VecDeque<auth::AuthRequest>,
}

impl Outbox {
    /// An outbox for `max_conns` connections.
    pub(crate) fn new(max_conns: usize) -> Self {
        Outbox {
            tx: (0..max_conns).map(|_| Vec::new()).collect(),
            submits: VecDeque::with_capacity(1024),
            closes: VecDeque::new(),
            auth: VecDeque::new(),
        }
    }

    /// The bytes waiting to be written to `conn`; sessions append, the receiver drains.
    pub(crate) fn tx(&mut self, conn: ConnId) -> &mut Vec<u8> {
        &mut self.tx[conn.0]
    }

    /// Asks for `body` to be sequenced.
    pub(crate) fn submit(&mut self, body: CommandBody) {
        self.submits.push_back(body);
    }

    /// Asks for `conn` to be closed.
    pub(crate) fn close(&mut self, conn: ConnId, kind: CloseKind, why: impl Into<String>) {
        self.closes.push_back((conn, kind, why.into()));
    }

    /// The next command to sequence.
    pub(crate) fn poll_submit(&mut self) -> Option<CommandBody> {
        self.submits.pop_front()
    }

    /// Commands waiting to be polled.
    pub(crate) fn submits_len(&self) -> usize {
        self.submits.len()
    }

    /// The commands waiting to be polled from the `from`-th on (metrics count what one read
    /// brought).
    pub(crate) fn submits_from(&self, from: usize) -> impl Iterator<Item = &CommandBody> {
        self.submits.iter().skip(from)
    }

    /// Whether commands or closes wait to be polled.
    pub(crate) fn has_submits_or_closes(&self) -> bool {
        !self.submits.is_empty() || !self.closes.is_empty()
    }

    /// Asks for a password to be verified on the auth thread; the verdict comes back through
    /// [`Protocol::handle_verdict`].
    pub(crate) fn request_auth(&mut self, req: auth::AuthRequest) {
        self.auth.push_back(req);
    }

    /// The next password to verify.
    pub(crate) fn poll_auth(&mut self) -> Option<auth::AuthRequest> {
        self.auth.pop_front()
    }

    /// The next connection to close.
    pub(crate) fn poll_close(&mut self) -> Option<(ConnId, CloseKind, String)> {
        self.closes.pop_front()
    }
}

/// What sessions may read from the rest of the gateway during a call.
pub(crate) struct Env<'a> {
    /// Instruments by id, for converting orders and naming them in reports.
    pub instruments: &'a [Option<InstrumentSpec>],
    /// Exec ids of gateway rejects (never sequenced): a counter shared by every protocol.
    pub next_exec_id: &'a mut u64,
}

/// One order-entry protocol's sessions, driven by the receiver.
pub(crate) trait Protocol {
    /// The protocol's name for logs (`"sbe"`, `"fix"`).
    fn name(&self) -> &'static str;

    /// A connection from `peer` was accepted on this protocol's listener.
    fn handle_connect(&mut self, conn: ConnId, peer: Option<std::net::IpAddr>, now_ns: u64);

    /// Bytes read from `conn`; returns how many were consumed (whole frames; the rest stays in
    /// the receiver's buffer until more arrives).
    fn handle_input(&mut self, conn: ConnId, bytes: &[u8], now_ns: u64, env: &mut Env<'_>, out: &mut Outbox) -> usize;

    /// The auth thread's verdict on the password of the logon pending on `conn` (see
    /// [`auth`]): the protocol completes or refuses the logon. Input that arrived on `conn`
    /// meanwhile stayed in the receiver's buffer; the receiver hands it over again afterwards.
    fn handle_verdict(
        &mut self,
        conn: ConnId,
        attempt: u64,
        verdict: auth::Verdict,
        now_ns: u64,
        env: &mut Env<'_>,
        out: &mut Outbox,
    );

    /// A report for configured session `index`: sent when a connection of it is live, stored
    /// under its next sequence number either way (a client that is away gets it by resend).
    fn handle_report(&mut self, index: usize, report: &Report, now_ns: u64, env: &Env<'_>, out: &mut Outbox);

    /// Clock tick: heartbeats and timeouts.
    fn handle_timer(&mut self, now_ns: u64, out: &mut Outbox);

    /// `conn` is gone (any reason). With `stopping`, the appliance is shutting down cleanly and
    /// cancel-on-disconnect does not apply (its reports could not be published any more).
    fn handle_disconnect(&mut self, conn: ConnId, now_ns: u64, stopping: bool, out: &mut Outbox);

    /// The appliance is shutting down: say goodbye on every connection.
    fn handle_shutdown(&mut self, now_ns: u64, out: &mut Outbox);

    /// Whether a connection still owes the reply to a goodbye sent at shutdown.
    fn awaits_goodbye(&self) -> bool;

    /// Makes every session store durable (disconnect, shutdown).
    fn flush_stores(&mut self);

    /// Configured sessions logged on now (metrics; called on the session timer, not per message).
    fn logged_on(&self) -> u64;

    /// Application messages the throttle refused since start (metrics; session timer).
    fn throttled_total(&self) -> u64;

    /// Application messages refused since start for naming an account the session may not act
    /// on (metrics; session timer).
    fn not_authorised_total(&self) -> u64;
    /// Logons refused since start for wrong credentials (metrics; session timer).
    fn logon_failures_total(&self) -> u64;

    /// The configured session called `name` (SBE: its username; FIX: the client's
    /// SenderCompID): its kill-switch key ([`session_key`]) and the accounts it may act on.
    fn find_session(&self, name: &str) -> Option<(u64, Vec<u32>)>;

    /// Engages or releases the kill switch of the session with `key`; false if no session of
    /// this protocol has that key.
    fn set_kill_switch(&mut self, key: u64, engaged: bool) -> bool;
}

/// A session's kill-switch key: FNV-1a (64 bits) of the protocol's name, a zero byte and the
/// session's name. Stable across restarts while the name is, which is what the engine keeps.
pub(crate) fn session_key(protocol: &str, name: &str) -> u64 {
    let bytes = protocol.bytes().chain(std::iter::once(0)).chain(name.bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

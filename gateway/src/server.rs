//! The gateway I/O thread: owns every socket (mio), runs the SBE and FIX sessions, is the sequencer
//! (stamps seq + timestamp once, publishes into the input ring) and is the publisher (releases
//! matcher output once durable, encodes reports, routes them by account).
//!
//! Running the publisher here means reports never cross another thread to reach a socket; the
//! thread never blocks: when the input ring is full it drains output while it retries, and a
//! connection whose bounded outbound buffer fills is disconnected (slow consumer).

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use disruptor::{Polling, Producer, SingleConsumerBarrier, SingleProducer};
use engine::{AccountId, Command, CommandBody, Event, InstrumentId, InstrumentSpec, OrderId, RequestKind};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use snapshot::SnapshotStore;

use crate::config::{DurabilityPolicy, Validated};
use crate::fix::dictionary::Dictionary;
use crate::fix::message::FieldTable;
use crate::fix::session::{Action, FixEnv, FixSession, InstrumentTable};
use crate::pipeline::{ADMIN_ORIGIN, OutItem, OutSlot, OutputPoller, PipelineError, Shared, ShutdownReport, Slot};
use crate::sbe::codec::decode_inbound;
use crate::sbe::convert::{OrderTerms, Report, ReportContext, ReportLookup, event_reports};
use crate::sbe::frame::{MAX_FRAME_LEN_BYTES, next_frame};
use crate::sbe::messages::{Retransmission, RetransmitReject, RetransmitRejectCode};
use crate::sbe::session::{MAX_RETRANSMIT_COUNT, Output, SbeSession, ServerMessage, SessionEnv, SessionState};
use crate::store::SessionStore;
use crate::wait::Wait;

/// Token of the listener.
const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the FIX listener.
const FIX_LISTENER: Token = Token(usize::MAX - 3);
/// Token of the waker (stop requests).
pub const WAKER: Token = Token(usize::MAX - 2);
/// Receive buffer per connection; a frame is at most [`MAX_FRAME_LEN_BYTES`].
const RECV_BUF_BYTES: usize = 64 * 1024;
/// Session timers run this often.
const TIMER_PERIOD: Duration = Duration::from_millis(50);
/// Longest stretch without a sequenced command: the engine's only clock is command timestamps,
/// so an idle appliance sequences a `Tick` this often and GTD orders expire on time without
/// traffic (one journal record per idle second).
const TICK_PERIOD_NS: u64 = 1_000_000_000;
/// Output slots taken from the ring at a time.
const PUBLISH_BATCH: u64 = 256;
/// Exec ids of gateway rejects have the top bit set; engine reports use `seq << 20 | n`.
const GATEWAY_EXEC_ID_BASE: u64 = 1 << 63;
/// How long a shutdown waits for in-flight commands to be published.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The input ring's producer end.
pub type InputProducer = SingleProducer<Slot, SingleConsumerBarrier>;

/// Everything the I/O thread takes over from [`crate::pipeline::start`].
pub struct IoParts {
    /// The configuration.
    pub cfg: Validated,
    /// The poller.
    pub poll: Poll,
    /// The order-entry listener.
    pub listener: TcpListener,
    /// The input ring's producer.
    pub input: InputProducer,
    /// The output ring's consumer.
    pub out_poller: OutputPoller,
    /// Shared atomics.
    pub shared: Arc<Shared>,
    /// Idle strategy of this thread while work is in flight.
    pub wait: Wait,
    /// The next sequence number to stamp.
    pub next_seq: u64,
    /// The last timestamp stamped (timestamps never go backwards).
    pub last_ts_ns: u64,
    /// Terms of live orders (trade reports need them).
    pub order_terms: HashMap<u64, OrderTerms>,
    /// Where the final snapshot goes.
    pub store: SnapshotStore,
    /// Configuration commands to sequence before any client's.
    pub admin: Vec<CommandBody>,
    /// The FIX listener, if FIX is on.
    pub fix_listener: Option<TcpListener>,
    /// One FIX session per `[[fix_sessions]]` entry, with its store opened.
    pub fix_sessions: Vec<FixSession>,
    /// The FIX data dictionary.
    pub dictionary: Dictionary,
    /// One persistent store per `[[sessions]]` entry (SBE), in file order.
    pub sbe_stores: Vec<SessionStore>,
}

/// What speaks on a connection.
enum Proto {
    /// SBE over SOFH, with its FIXP-style session.
    Sbe(SbeSession),
    /// FIX 4.4: bound to a configured session once its Logon arrived.
    Fix { bound: Option<usize>, connected_ns: u64 },
}

/// A session a report can be routed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionRef {
    Sbe(usize),
    Fix(usize),
}

struct Conn {
    stream: TcpStream,
    proto: Proto,
    recv: Vec<u8>,
    recv_len: usize,
    send: Vec<u8>,
    closing: bool,
}

impl Conn {
    fn sbe(&self) -> Option<&SbeSession> {
        match &self.proto {
            Proto::Sbe(s) => Some(s),
            Proto::Fix { .. } => None,
        }
    }
}

struct Lookup {
    instruments: Vec<Option<InstrumentSpec>>,
    terms: HashMap<u64, OrderTerms>,
}

impl ReportLookup for Lookup {
    fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.instruments.get(id.0 as usize).and_then(|s| s.as_ref())
    }
    fn order_terms(&self, id: OrderId) -> Option<OrderTerms> {
        self.terms.get(&id.0).copied()
    }
}

/// The I/O thread's state.
pub struct IoThread {
    cfg: Validated,
    poll: Poll,
    listener: Option<TcpListener>,
    input: Option<InputProducer>,
    out_poller: OutputPoller,
    shared: Arc<Shared>,
    wait: Wait,
    next_seq: u64,
    last_ts_ns: u64,
    /// Highest sequence number whose output was fully released.
    seq_published: u64,
    held: VecDeque<OutSlot>,
    lookup: Lookup,
    conns: Vec<Option<Conn>>,
    /// Connection index of each configured session while it is negotiated or established.
    session_conn: Vec<Option<usize>>,
    /// Sessions allowed on each account id.
    account_sessions: HashMap<u32, Vec<SessionRef>>,
    fix_listener: Option<TcpListener>,
    fix: Vec<FixSession>,
    /// Connection index of each FIX session while it is logged on.
    fix_conn: Vec<Option<usize>>,
    dictionary: Dictionary,
    sbe_stores: Vec<SessionStore>,
    fix_table: Box<FieldTable>,
    fix_submits: Vec<CommandBody>,
    /// Set once shutdown closes the sessions: cancel-on-disconnect does not apply to a clean
    /// shutdown (its reports could not be published any more; orders survive the restart).
    stopping: bool,
    next_gateway_exec_id: u64,
    exec_seq: u64,
    exec_n: u64,
    store: SnapshotStore,
    admin: Vec<CommandBody>,
    reports: Vec<(AccountId, Report)>,
    outputs: Vec<Output>,
}

/// The order-terms table sized for every order the engine can hold, so the publisher never
/// grows it in steady state.
fn reserved(mut terms: HashMap<u64, OrderTerms>, max_orders: usize) -> HashMap<u64, OrderTerms> {
    terms.reserve(max_orders.saturating_sub(terms.len()));
    terms
}

fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl IoThread {
    /// Takes over the parts and registers the listener.
    pub fn new(parts: IoParts) -> std::io::Result<Self> {
        let IoParts {
            cfg,
            poll,
            mut listener,
            input,
            out_poller,
            shared,
            wait,
            next_seq,
            last_ts_ns,
            order_terms,
            store,
            admin,
            mut fix_listener,
            fix_sessions,
            dictionary,
            sbe_stores,
        } = parts;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(l) = fix_listener.as_mut() {
            poll.registry().register(l, FIX_LISTENER, Interest::READABLE)?;
        }
        let mut account_sessions: HashMap<u32, Vec<SessionRef>> = HashMap::new();
        for (i, s) in cfg.raw.sessions.iter().enumerate() {
            for a in &s.accounts {
                account_sessions.entry(*a).or_default().push(SessionRef::Sbe(i));
            }
        }
        for (j, s) in cfg.raw.fix_sessions.iter().enumerate() {
            for a in &s.accounts {
                account_sessions.entry(*a).or_default().push(SessionRef::Fix(j));
            }
        }
        let n_fix = fix_sessions.len();
        let max_conns = cfg.raw.sessions_limits.max_connections;
        let max_orders = cfg.limits.max_orders as usize;
        let n_sessions = cfg.raw.sessions.len();
        let instruments = crate::pipeline::instrument_table(&cfg.instruments);
        Ok(IoThread {
            cfg,
            poll,
            listener: Some(listener),
            input: Some(input),
            out_poller,
            shared,
            wait,
            next_seq,
            last_ts_ns,
            seq_published: next_seq - 1,
            held: VecDeque::with_capacity(PUBLISH_BATCH as usize),
            lookup: Lookup { instruments, terms: reserved(order_terms, max_orders) },
            conns: (0..max_conns).map(|_| None).collect(),
            session_conn: vec![None; n_sessions],
            account_sessions,
            fix_listener,
            fix: fix_sessions,
            fix_conn: vec![None; n_fix],
            dictionary,
            sbe_stores,
            fix_table: Box::default(),
            fix_submits: Vec::with_capacity(16),
            stopping: false,
            next_gateway_exec_id: GATEWAY_EXEC_ID_BASE,
            exec_seq: 0,
            exec_n: 0,
            store,
            admin,
            reports: Vec::with_capacity(64),
            outputs: Vec::with_capacity(16),
        })
    }

    fn in_flight(&self) -> bool {
        self.seq_published + 1 < self.next_seq || !self.held.is_empty()
    }

    fn failure(&self) -> Option<String> {
        if self.shared.failed.load(Ordering::Acquire) {
            Some(self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default())
        } else {
            None
        }
    }

    /// The thread's main loop; returns after a stop request (clean) or a stage failure.
    pub fn run(mut self) -> Result<ShutdownReport, PipelineError> {
        let admin = std::mem::take(&mut self.admin);
        for body in admin {
            self.submit(ADMIN_ORIGIN, body);
        }
        let mut events = Events::with_capacity(256);
        let mut last_timer = Instant::now();
        let mut idle_rounds = 0u32;
        loop {
            if let Some(f) = self.failure() {
                tracing::error!(failure = %f, "pipeline stage failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(PipelineError::Stage(f));
            }
            if self.shared.stop.load(Ordering::Acquire) {
                return self.shutdown();
            }
            let busy = self.in_flight();
            let timeout = if busy { Some(Duration::ZERO) } else { Some(TIMER_PERIOD) };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "polling failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(PipelineError::Io { what: "polling", source: e });
            }
            let mut progressed = !events.is_empty();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(false),
                    FIX_LISTENER => self.accept(true),
                    WAKER => {}
                    Token(i) => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.read(i);
                        }
                    }
                }
            }
            progressed |= self.publish();
            self.flush_all();
            if last_timer.elapsed() >= TIMER_PERIOD {
                last_timer = Instant::now();
                self.timers();
            }
            if busy && !progressed {
                self.wait.idle(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            } else {
                idle_rounds = 0;
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Sequencer

    /// Stamps and publishes one command; while the ring is full, releases output so the
    /// matcher can move on.
    fn submit(&mut self, origin: u32, body: CommandBody) {
        let ts_ns = wall_ns().max(self.last_ts_ns);
        self.last_ts_ns = ts_ns;
        let slot = Slot { origin, command: Command { seq: self.next_seq, ts_ns, body } };
        let mut rounds = 0u32;
        loop {
            let Some(input) = self.input.as_mut() else { return };
            if input.try_publish(|s| *s = slot).is_ok() {
                break;
            }
            if self.shared.failed.load(Ordering::Acquire) {
                return;
            }
            if !self.publish() {
                self.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
            self.flush_all();
        }
        self.next_seq += 1;
    }

    // ------------------------------------------------------------------------------------
    // Publisher

    fn releasable(&self, seq: u64) -> bool {
        self.cfg.raw.pipeline.durability == DurabilityPolicy::Memory
            || self.shared.seq_durable.load(Ordering::Acquire) >= seq
    }

    /// Releases every output slot whose input is durable; true if anything moved.
    fn publish(&mut self) -> bool {
        let mut moved = false;
        loop {
            if self.held.is_empty() {
                match self.out_poller.take(PUBLISH_BATCH) {
                    Ok(mut guard) => {
                        for s in &mut guard {
                            self.held.push_back(*s);
                        }
                    }
                    Err(Polling::NoEvents | Polling::Shutdown) => return moved,
                }
            }
            while let Some(slot) = self.held.front().copied() {
                if !self.releasable(slot.seq) {
                    return moved;
                }
                self.held.pop_front();
                self.release(&slot);
                moved = true;
            }
        }
    }

    fn release(&mut self, slot: &OutSlot) {
        let event = match slot.item {
            OutItem::Done => {
                self.seq_published = slot.seq;
                return;
            }
            OutItem::Event(e) => e,
        };
        if matches!(event, Event::Book(_) | Event::Instrument { .. } | Event::Account(_)) {
            return;
        }
        if let Event::Rejected(r) = &event
            && r.request == RequestKind::Admin
        {
            // Configuration commands have no client to tell.
            tracing::warn!(seq = slot.seq, request = ?slot.request, reason = ?r.reason, "configuration command refused");
            return;
        }
        if let Event::Accepted(v) | Event::Triggered(v) | Event::Replaced { order: v, .. } = &event {
            self.lookup.terms.insert(v.id.0, OrderTerms::from(v));
        }
        if self.exec_seq != slot.seq {
            self.exec_seq = slot.seq;
            self.exec_n = 0;
        }
        let mut ctx = ReportContext { transact_time_ns: slot.ts_ns, next_exec_id: (slot.seq << 20) | self.exec_n };
        let mut reports = std::mem::take(&mut self.reports);
        reports.clear();
        let res = event_reports(&event, &slot.request, &self.lookup, &mut ctx, |a, r| reports.push((a, r)));
        self.exec_n = ctx.next_exec_id & ((1 << 20) - 1);
        if let Err(e) = res {
            tracing::error!(seq = slot.seq, error = %e, ?event, "cannot build a report");
        }
        for (account, report) in reports.drain(..) {
            self.route(account, report);
        }
        self.reports = reports;
        match &event {
            Event::Cancelled { order, .. } | Event::Expired { order, .. } => {
                self.lookup.terms.remove(&order.id.0);
            }
            Event::Trade(t) => {
                for f in [&t.taker, &t.maker] {
                    if f.leaves_lots == 0 {
                        self.lookup.terms.remove(&f.order_id.0);
                    }
                }
            }
            _ => {}
        }
    }

    fn route(&mut self, account: AccountId, report: Report) {
        let n = self.account_sessions.get(&account.0).map_or(0, Vec::len);
        for k in 0..n {
            match self.account_sessions[&account.0][k] {
                SessionRef::Sbe(s) => {
                    let live = self.session_conn[s].filter(|&ci| {
                        self.conns[ci].as_ref().is_some_and(|c| matches!(&c.proto, Proto::Sbe(x) if x.is_established()))
                    });
                    match live {
                        Some(ci) => self.queue(ci, ServerMessage::Report(report)),
                        None => self.store_offline(s, &report),
                    }
                }
                SessionRef::Fix(j) => self.route_fix(j, &report),
            }
        }
    }

    /// A report for SBE session `s` while no connection of it is established: kept in its
    /// store under the next sequence number, for a RetransmitRequest after it re-establishes.
    fn store_offline(&mut self, s: usize, report: &Report) {
        let mut buf = [0u8; MAX_FRAME_LEN_BYTES];
        let n = match report.encode(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(session = s, error = %e, "cannot encode a report");
                return;
            }
        };
        let store = &mut self.sbe_stores[s];
        if let Err(e) = store.record_sent(store.next_sender_seq(), Some(&buf[..n])) {
            tracing::error!(session = s, error = %e, "session store write failed");
        }
    }

    /// A report for FIX session `j`: sent when it is logged on, stored for its resend either
    /// way (a session that is offline gets it through ResendRequest when it logs on again).
    fn route_fix(&mut self, j: usize, report: &Report) {
        let security_id = match report {
            Report::Execution(m) => m.security_id.get(),
            Report::MassCancel(m) => m.security_id.get(),
            Report::CancelReject(_) => 0,
        };
        let symbol = self
            .lookup
            .instruments
            .get(security_id as usize)
            .and_then(|s| s.as_ref())
            .map(|s| s.symbol)
            .unwrap_or_default();
        let ci = self.fix_conn[j];
        let out = ci.and_then(|ci| self.conns[ci].as_mut()).map(|c| &mut c.send);
        self.fix[j].send_report(report, symbol.as_str().as_bytes(), wall_ns(), out);
        if let Some(ci) = ci {
            self.check_fix_backlog(ci);
        }
    }

    /// Disconnects a FIX client whose unsent output outgrew its bound. Nothing is lost: every
    /// message is in the session store and comes back through ResendRequest.
    fn check_fix_backlog(&mut self, ci: usize) {
        let cap = self.cfg.raw.sessions_limits.outbound_buffer_bytes;
        if self.conns[ci].as_ref().is_some_and(|c| c.send.len() > cap) {
            tracing::warn!(conn = ci, cap, "slow consumer: FIX outbound buffer full; disconnecting");
            self.drop_conn(ci, "slow consumer");
        }
    }

    // ------------------------------------------------------------------------------------
    // Connections

    fn accept(&mut self, fix: bool) {
        loop {
            let listener = if fix { self.fix_listener.as_ref() } else { self.listener.as_ref() };
            let Some(listener) = listener else { return };
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            let Some(i) = self.conns.iter().position(Option::is_none) else {
                tracing::warn!(%peer, "connection refused: sessions_limits.max_connections reached");
                continue;
            };
            if let Err(e) =
                self.poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
            {
                tracing::warn!(%peer, error = %e, "cannot register connection");
                continue;
            }
            let _ = stream.set_nodelay(true);
            tracing::info!(%peer, conn = i, fix, "connected");
            let proto = if fix {
                Proto::Fix { bound: None, connected_ns: wall_ns() }
            } else {
                Proto::Sbe(SbeSession::new(wall_ns()))
            };
            self.conns[i] = Some(Conn {
                stream,
                proto,
                recv: vec![0; RECV_BUF_BYTES],
                recv_len: 0,
                send: Vec::with_capacity(4096),
                closing: false,
            });
        }
    }

    fn read(&mut self, ci: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) else { return };
            if conn.closing {
                return;
            }
            let at = conn.recv_len;
            match conn.stream.read(&mut conn.recv[at..]) {
                Ok(0) => {
                    self.drop_conn(ci, "peer closed the connection");
                    return;
                }
                Ok(n) => {
                    conn.recv_len += n;
                    if matches!(conn.proto, Proto::Fix { .. }) {
                        self.fix_frames(ci);
                    } else {
                        self.frames(ci);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drop_conn(ci, &format!("read error: {e}"));
                    return;
                }
            }
        }
    }

    /// Handles every complete frame in the connection's receive buffer.
    fn frames(&mut self, ci: usize) {
        let mut consumed = 0;
        loop {
            let now = wall_ns();
            let mut outputs = std::mem::take(&mut self.outputs);
            outputs.clear();
            let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) else { return };
            if conn.closing {
                break;
            }
            let Proto::Sbe(session) = &mut conn.proto else { return };
            let buf = &conn.recv[consumed..conn.recv_len];
            let frame = match next_frame(buf) {
                Ok(None) => break,
                Ok(Some((len, msg))) => {
                    consumed += len;
                    Ok(msg)
                }
                Err(e) => Err(e.to_string()),
            };
            let sessions = &self.cfg.raw.sessions;
            let limits = &self.cfg.raw.sessions_limits;
            let instruments = &self.lookup.instruments;
            let session_conn = &self.session_conn;
            let sbe_stores = &self.sbe_stores;
            let mut env = SessionEnv {
                sessions,
                limits,
                instrument: |id: InstrumentId| instruments.get(id.0 as usize).and_then(|s| s.as_ref()),
                in_use: |sid: u64| {
                    sessions
                        .iter()
                        .position(|s| s.session_id == sid)
                        .and_then(|i| session_conn[i])
                        .is_some_and(|c| c != ci)
                },
                next_exec_id: &mut self.next_gateway_exec_id,
                resume: &|i: usize| {
                    let st = &sbe_stores[i];
                    (st.next_sender_seq(), st.next_target_seq() - 1)
                },
            };
            match frame.map(|msg| decode_inbound(msg).map_err(|e| e.to_string())) {
                Ok(Ok(inbound)) => session.on_message(&inbound, now, &mut env, &mut |o| outputs.push(o)),
                Ok(Err(reason)) | Err(reason) => {
                    tracing::warn!(conn = ci, %reason, "malformed input; terminating the session");
                    session.on_malformed(&reason, &mut |o| outputs.push(o));
                }
            }
            let stop = session.state() == SessionState::Closed;
            if session.is_established()
                && let Some(i) = session.config_index()
                && self.sbe_stores[i].next_target_seq() != session.next_recv_seq()
                && let Err(e) = self.sbe_stores[i].set_next_target_seq(session.next_recv_seq())
            {
                tracing::error!(session = i, error = %e, "session store write failed");
            }
            self.apply_outputs(ci, &mut outputs);
            self.outputs = outputs;
            if stop {
                break;
            }
        }
        if let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) {
            conn.recv.copy_within(consumed..conn.recv_len, 0);
            conn.recv_len -= consumed;
            // Every complete frame was consumed and a frame is at most MAX_FRAME_LEN_BYTES, so
            // the buffer always has room for the next read (a zero-length read means EOF).
            debug_assert!(conn.recv_len < MAX_FRAME_LEN_BYTES || conn.closing);
        }
    }

    fn apply_outputs(&mut self, ci: usize, outputs: &mut Vec<Output>) {
        for o in outputs.drain(..) {
            match o {
                Output::Send(msg) => {
                    self.track_session(ci, &msg);
                    self.queue(ci, msg);
                }
                Output::Submit(body) => {
                    let origin = self.conns[ci]
                        .as_ref()
                        .and_then(|c| c.sbe())
                        .and_then(|s| s.config_index())
                        .map_or(ADMIN_ORIGIN, |i| i as u32);
                    self.submit(origin, body);
                }
                Output::Close => {
                    if let Some(c) = self.conns[ci].as_mut() {
                        c.closing = true;
                    }
                }
                Output::Retransmit { session_id, request_timestamp, from_seq, count } => {
                    self.retransmit(ci, session_id, request_timestamp, from_seq, count);
                }
            }
        }
    }

    /// The input-ring origin of FIX session `j` (after the SBE sessions).
    fn fix_origin(&self, j: usize) -> u32 {
        (self.cfg.raw.sessions.len() + j) as u32
    }

    /// Handles every complete FIX message in the connection's receive buffer. Garbled
    /// messages (bad BodyLength or CheckSum) are skipped, as FIX says, without a reply.
    fn fix_frames(&mut self, ci: usize) {
        let mut consumed = 0;
        let mut close = None;
        loop {
            let now = wall_ns();
            let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) else { return };
            if conn.closing {
                break;
            }
            let Proto::Fix { bound, .. } = &mut conn.proto else { return };
            let buf = &conn.recv[consumed..conn.recv_len];
            let (len, bytes) = match crate::fix::frame::next_message(buf) {
                Ok(None) => break,
                Ok(Some(x)) => x,
                Err(garbled) => {
                    tracing::warn!(conn = ci, reason = %garbled, "garbled FIX message ignored");
                    consumed += garbled.skip.max(1);
                    continue;
                }
            };
            consumed += len;
            let instruments = InstrumentTable(&self.lookup.instruments);
            let mut env = FixEnv {
                dictionary: &self.dictionary,
                instruments: &instruments,
                next_exec_id: &mut self.next_gateway_exec_id,
            };
            let mut submits = std::mem::take(&mut self.fix_submits);
            let action = match *bound {
                Some(j) => self.fix[j].on_message(bytes, now, &mut env, &mut conn.send, &mut |b| submits.push(b)),
                None => {
                    // The first message must be a Logon naming a configured session that is
                    // not logged on elsewhere; anything else is disconnected without a reply.
                    let msg = match crate::fix::message::parse(bytes, &mut self.fix_table) {
                        Ok(m) => m,
                        Err(e) => {
                            close = Some(format!("first message unparseable: {e}"));
                            break;
                        }
                    };
                    if msg.msg_type() != b"A" {
                        close = Some("first message is not a Logon".into());
                        break;
                    }
                    let sender = msg.get(49).unwrap_or(b"");
                    let target = msg.get(56).unwrap_or(b"");
                    let Some(j) = self.cfg.fix_session(sender, target) else {
                        close = Some(format!(
                            "Logon from unknown session {}->{}",
                            String::from_utf8_lossy(sender),
                            String::from_utf8_lossy(target)
                        ));
                        break;
                    };
                    if self.fix_conn[j].is_some() {
                        close = Some(format!("session {} is already logged on", self.fix[j].their_comp_id()));
                        break;
                    }
                    *bound = Some(j);
                    let a = self.fix[j].on_logon(&msg, now, &mut env, &mut conn.send);
                    if a == Action::Continue {
                        self.fix_conn[j] = Some(ci);
                    }
                    a
                }
            };
            if action == Action::Close {
                conn.closing = true;
            }
            let bound_j = *bound;
            for body in submits.drain(..) {
                let origin = bound_j.map_or(ADMIN_ORIGIN, |j| self.fix_origin(j));
                self.submit(origin, body);
            }
            self.fix_submits = submits;
            if action == Action::Close {
                break;
            }
        }
        if let Some(why) = close {
            tracing::warn!(conn = ci, %why, "FIX connection refused");
            self.drop_conn(ci, &why);
            return;
        }
        if let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) {
            conn.recv.copy_within(consumed..conn.recv_len, 0);
            conn.recv_len -= consumed;
        }
        self.check_fix_backlog(ci);
    }

    /// FIX timers of connection `ci`: logon timeout before Logon, heartbeats after.
    fn fix_timer(&mut self, ci: usize, now: u64) {
        let Some(conn) = self.conns[ci].as_mut() else { return };
        let Proto::Fix { bound, connected_ns } = conn.proto else { return };
        let action = match bound {
            Some(j) => self.fix[j].on_timer(now, &mut conn.send),
            None => {
                let timeout_ns = u64::from(self.cfg.raw.fix.defaults.logon_timeout_s) * 1_000_000_000;
                if now.saturating_sub(connected_ns) > timeout_ns { Action::Close } else { Action::Continue }
            }
        };
        if action == Action::Close {
            self.drop_conn(ci, "FIX session timed out");
        }
    }

    /// Answers a RetransmitRequest: `Retransmission` and the stored frames, or
    /// `RetransmitReject` when the range was never sent, is no longer retained, or is too long.
    fn retransmit(&mut self, ci: usize, session_id: u64, request_timestamp: u64, from_seq: u64, count: u32) {
        let Some(idx) = self.conns[ci].as_ref().and_then(|c| c.sbe()).and_then(|s| s.config_index()) else { return };
        let store = &self.sbe_stores[idx];
        let end = from_seq.saturating_add(u64::from(count));
        let code = if count == 0 || count > MAX_RETRANSMIT_COUNT {
            Some(RetransmitRejectCode::RequestLimitExceeded)
        } else if from_seq < store.oldest_retained_seq().max(1) || end > store.next_sender_seq() {
            Some(RetransmitRejectCode::OutOfRange)
        } else {
            None
        };
        if let Some(code) = code {
            self.queue(
                ci,
                ServerMessage::RetransmitReject(RetransmitReject {
                    session_id: zerocopy::little_endian::U64::new(session_id),
                    request_timestamp: zerocopy::little_endian::U64::new(request_timestamp),
                    code: code.to_u8(),
                }),
            );
            return;
        }
        self.queue(
            ci,
            ServerMessage::Retransmission(Retransmission {
                session_id: zerocopy::little_endian::U64::new(session_id),
                request_timestamp: zerocopy::little_endian::U64::new(request_timestamp),
                next_seq_no: zerocopy::little_endian::U64::new(from_seq),
                count: zerocopy::little_endian::U32::new(count),
            }),
        );
        let Some(conn) = self.conns[ci].as_mut() else { return };
        let send = &mut conn.send;
        if let Err(e) = self.sbe_stores[idx].for_each_sent(from_seq, end - 1, |_, frame| send.extend_from_slice(frame))
        {
            tracing::error!(session = idx, error = %e, "session store read failed during retransmission");
        }
        self.check_fix_backlog(ci);
    }

    /// Keeps `session_conn` in step with negotiation.
    fn track_session(&mut self, ci: usize, msg: &ServerMessage) {
        if let ServerMessage::NegotiationResponse(_) = msg
            && let Some(idx) = self.conns[ci].as_ref().and_then(|c| c.sbe()).and_then(|s| s.config_index())
        {
            self.session_conn[idx] = Some(ci);
        }
    }

    /// Appends a message to the connection's bounded outbound buffer; disconnects a client
    /// that let it fill.
    fn queue(&mut self, ci: usize, msg: ServerMessage) {
        let cap = self.cfg.raw.sessions_limits.outbound_buffer_bytes;
        let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) else { return };
        let Proto::Sbe(session) = &mut conn.proto else { return };
        let mut buf = [0u8; MAX_FRAME_LEN_BYTES];
        let n = match msg.encode(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(conn = ci, error = %e, "cannot encode an outbound message");
                return;
            }
        };
        if conn.send.len() + n > cap {
            tracing::warn!(
                conn = ci,
                session = session.session_id(),
                cap,
                "slow consumer: outbound buffer full; disconnecting"
            );
            let mut outs = Vec::new();
            session.on_slow_consumer(&mut |o| outs.push(o));
            // Best effort: the Terminate goes out only if the socket takes it right now.
            for o in outs {
                if let Output::Send(m) = o
                    && let Ok(k) = m.encode(&mut buf)
                {
                    let _ = conn.stream.write(&buf[..k]);
                }
            }
            self.drop_conn(ci, "slow consumer");
            return;
        }
        if msg.is_application()
            && let Some(i) = session.config_index()
        {
            let store = &mut self.sbe_stores[i];
            debug_assert_eq!(store.next_sender_seq(), session.next_send_seq(), "store and session agree on seqs");
            if let Err(e) = store.record_sent(session.next_send_seq(), Some(&buf[..n])) {
                tracing::error!(session = i, error = %e, "session store write failed");
            }
        }
        conn.send.extend_from_slice(&buf[..n]);
        session.on_sent(&msg, wall_ns());
    }

    fn flush_all(&mut self) {
        for ci in 0..self.conns.len() {
            let Some(conn) = self.conns[ci].as_mut() else { continue };
            let mut written = 0;
            let mut broken = None;
            while written < conn.send.len() {
                match conn.stream.write(&conn.send[written..]) {
                    Ok(0) => {
                        broken = Some("socket closed while writing".to_string());
                        break;
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        broken = Some(format!("write error: {e}"));
                        break;
                    }
                }
            }
            conn.send.drain(..written);
            if let Some(why) = broken {
                self.drop_conn(ci, &why);
            } else if conn.closing && conn.send.is_empty() {
                self.drop_conn(ci, "session terminated");
            }
        }
    }

    fn drop_conn(&mut self, ci: usize, why: &str) {
        let Some(mut conn) = self.conns[ci].take() else { return };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        match conn.proto {
            Proto::Sbe(session) => {
                if let Some(idx) = session.config_index()
                    && self.session_conn[idx] == Some(ci)
                {
                    self.session_conn[idx] = None;
                }
                tracing::info!(conn = ci, session = session.session_id(), why, "disconnected");
            }
            Proto::Fix { bound, .. } => {
                tracing::info!(conn = ci, session = ?bound.map(|j| self.fix[j].their_comp_id()), why, "FIX disconnected");
                if let Some(j) = bound
                    && self.fix_conn[j] == Some(ci)
                {
                    self.fix_conn[j] = None;
                    let mut submits = std::mem::take(&mut self.fix_submits);
                    self.fix[j].on_disconnect(wall_ns(), &mut |b| submits.push(b));
                    if self.stopping {
                        submits.clear();
                    }
                    let origin = self.fix_origin(j);
                    for body in submits.drain(..) {
                        self.submit(origin, body);
                    }
                    self.fix_submits = submits;
                }
            }
        }
    }

    fn timers(&mut self) {
        let now = wall_ns();
        if now.saturating_sub(self.last_ts_ns) >= TICK_PERIOD_NS {
            self.submit(ADMIN_ORIGIN, CommandBody::Tick);
        }
        for ci in 0..self.conns.len() {
            let mut outputs = std::mem::take(&mut self.outputs);
            outputs.clear();
            if let Some(conn) = self.conns[ci].as_mut()
                && let Proto::Sbe(session) = &mut conn.proto
            {
                session.on_timer(now, &mut |o| outputs.push(o));
            }
            self.apply_outputs(ci, &mut outputs);
            self.outputs = outputs;
            self.fix_timer(ci, now);
        }
    }

    /// FIX says the side that sends Logout waits for the confirming Logout: keep reading the
    /// FIX connections (application messages are not taken any more) until each answered or
    /// `logout_timeout_s` passed.
    fn await_fix_logouts(&mut self) {
        let waiting = |conns: &[Option<Conn>]| {
            conns.iter().flatten().any(|c| matches!(c.proto, Proto::Fix { bound: Some(_), .. }) && !c.closing)
        };
        let deadline = Instant::now() + Duration::from_secs(u64::from(self.cfg.raw.fix.defaults.logout_timeout_s));
        let mut events = Events::with_capacity(64);
        while waiting(&self.conns) && Instant::now() < deadline {
            if let Err(e) = self.poll.poll(&mut events, Some(TIMER_PERIOD))
                && e.kind() != ErrorKind::Interrupted
            {
                return;
            }
            for ev in events.iter() {
                if let Token(i) = ev.token()
                    && i < self.conns.len()
                    && (ev.is_readable() || ev.is_read_closed())
                {
                    self.read(i);
                }
            }
            self.flush_all();
        }
    }

    fn close_all(&mut self) {
        self.stopping = true;
        for ci in 0..self.conns.len() {
            let mut outputs = Vec::new();
            if let Some(conn) = self.conns[ci].as_mut() {
                match &mut conn.proto {
                    Proto::Sbe(session) => session.on_shutdown(&mut |o| outputs.push(o)),
                    Proto::Fix { bound: Some(j), .. } => self.fix[*j].on_shutdown(wall_ns(), &mut conn.send),
                    Proto::Fix { bound: None, .. } => {}
                }
            }
            self.apply_outputs(ci, &mut outputs);
        }
        self.flush_all();
        self.await_fix_logouts();
        for ci in 0..self.conns.len() {
            self.drop_conn(ci, "server shutting down");
        }
        for f in &mut self.fix {
            f.flush();
        }
        for (i, st) in self.sbe_stores.iter_mut().enumerate() {
            if let Err(e) = st.flush() {
                tracing::error!(session = i, error = %e, "session store flush failed");
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Shutdown

    /// Drops the input producer, which lets the journaler, matcher and follower finish what
    /// is in the ring and join. The join runs on a helper thread while this one discards
    /// output (every session is closed by now), so a matcher waiting on a full output ring
    /// cannot hang the shutdown.
    fn stop_stages(&mut self) {
        let Some(input) = self.input.take() else { return };
        let joiner = std::thread::Builder::new().name("sable-stop".into()).spawn(move || drop(input));
        let Ok(joiner) = joiner else {
            tracing::error!("cannot spawn the stage joiner; stages are left to the process exit");
            return;
        };
        let mut rounds = 0u32;
        while !joiner.is_finished() {
            self.held.clear();
            let took = match self.out_poller.poll() {
                Ok(mut guard) => (&mut guard).count() > 0,
                Err(_) => false,
            };
            if took {
                rounds = 0;
            } else {
                self.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
        }
        if joiner.join().is_err() {
            tracing::error!("a pipeline stage panicked while stopping");
        }
    }

    /// Stop accepting, publish everything in flight, close sessions, stop the stages, take
    /// the final snapshot.
    fn shutdown(mut self) -> Result<ShutdownReport, PipelineError> {
        tracing::info!("shutting down: no new connections or input");
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if let Some(mut l) = self.fix_listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut rounds = 0u32;
        while self.in_flight() && Instant::now() < deadline && !self.shared.failed.load(Ordering::Acquire) {
            if self.publish() {
                rounds = 0;
            } else {
                self.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
            self.flush_all();
        }
        let drained = !self.in_flight();
        self.close_all();
        self.stop_stages();
        if let Some(f) = self.failure() {
            return Err(PipelineError::Stage(f));
        }
        if !drained {
            return Err(PipelineError::Stage("in-flight commands were not published within 30 s".into()));
        }
        let engine = self
            .shared
            .engine_back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PipelineError::Stage("the matcher did not hand its engine back".into()))?;
        let info = self.store.write(&engine, wall_ns())?;
        let report = ShutdownReport { last_seq: engine.seq(), state_hash: engine.state_hash(), snapshot_seq: info.seq };
        tracing::info!(
            seq = report.last_seq,
            state_hash = format_args!("{:016x}", report.state_hash),
            "final snapshot written; stopped"
        );
        Ok(report)
    }
}

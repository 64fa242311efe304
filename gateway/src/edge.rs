//! The gateway's edge: the client connections (sockets, receive buffers), the protocols' sessions
//! and the [`Outbox`] they fill. The receiver reads into it and hands input to the sessions; the
//! publisher hands it reports; whichever did so flushes what the sessions queued.
//!
//! Both reach it through one lock (`Mutex<Edge>`). On one gateway thread the lock is never
//! contended; with the publisher on a thread of its own (`pipeline.gateway_threads = 2`) the
//! receiver holds it while it reads and parses, the publisher while it encodes, stores and
//! writes, so a connection's bytes are written in the order its session produced them. Nothing
//! that waits (the input ring, polling) happens under the lock.
//!
//! A connection of a listener with TLS (`tls.rs`) carries a rustls `ServerConnection`: reads
//! take records from the socket and plaintext out of rustls, writes put plaintext into rustls
//! and records onto the socket, all without blocking. The session's output moves into rustls
//! only once rustls has written out what it held, so an unread client's backlog stays in the
//! outbox, where the slow-consumer bound sees it.

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use engine::{CommandBody, InstrumentSpec};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::admin::GAUGE_PERIOD_NS;
use crate::admin::recorder::request_type;
use crate::limits::RECV_BUF_BYTES;
use crate::rings::Shared;
use crate::sbe::convert::Report;
use crate::session::auth::{AuthClient, AuthVerdict, Verdict};
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol, ProtocolId, SessionRef};
use crate::stage::sequencer::{Clock, WallClock};
use crate::tls::TlsAcceptor;

/// Exec ids of gateway rejects have the top bit set (engine reports use `seq << 20 | n`); they
/// restart at each start.
const GATEWAY_EXEC_ID_BASE: u64 = 1 << 63;

struct Conn {
    stream: TcpStream,
    /// The TLS session of a connection to a TLS listener.
    tls: Option<Box<rustls::ServerConnection>>,
    protocol: ProtocolId,
    recv: Vec<u8>,
    recv_len: usize,
    closing: bool,
}

/// Connections, sessions and their outbox.
pub(crate) struct Edge {
    registry: Registry,
    protocols: Vec<Box<dyn Protocol + Send>>,
    conns: Vec<Option<Conn>>,
    outbox: Outbox,
    instruments: Vec<Option<InstrumentSpec>>,
    next_exec_id: u64,
    outbound_cap_bytes: usize,
    /// Set once shutdown closes the sessions: cancel-on-disconnect does not apply.
    stopping: bool,
    /// The `sable-auth` thread, which verifies hashed passwords (none: every verdict is
    /// "unavailable").
    auth: Option<AuthClient>,
    /// Each protocol's TLS configuration, when its listener has one.
    tls: Vec<Option<Arc<TlsAcceptor>>>,
    /// What the admin port reads (recorded while [`crate::admin::recorder::Metrics::recording`]).
    shared: Arc<Shared>,
    /// When the last read that brought bytes returned (wall clock, ns).
    last_read_ns: u64,
    /// When the session gauges were last taken.
    gauges_ns: u64,
}

/// Locks the edge. A thread that panicked while holding it has already failed the pipeline
/// (see `stage::publisher`), so the state is only read on the way to the stop.
pub(crate) fn lock(edge: &Mutex<Edge>) -> MutexGuard<'_, Edge> {
    edge.lock().unwrap_or_else(|p| p.into_inner())
}

impl Edge {
    /// An edge for `max_conns` connections; sockets register with `registry`.
    pub(crate) fn new(
        registry: Registry,
        protocols: Vec<Box<dyn Protocol + Send>>,
        instruments: Vec<Option<InstrumentSpec>>,
        max_conns: usize,
        outbound_cap_bytes: usize,
        shared: &Arc<Shared>,
    ) -> Self {
        Edge {
            registry,
            protocols,
            conns: (0..max_conns).map(|_| None).collect(),
            outbox: Outbox::new(max_conns),
            instruments,
            next_exec_id: GATEWAY_EXEC_ID_BASE,
            outbound_cap_bytes,
            stopping: false,
            shared: Arc::clone(shared),
            last_read_ns: 0,
            gauges_ns: 0,
            auth: None,
            tls: Vec::new(),
        }
    }

    /// Wraps the connections of protocol `p` in TLS configured by `acceptor`.
    pub(crate) fn set_tls(&mut self, p: ProtocolId, acceptor: Arc<TlsAcceptor>) {
        if self.tls.len() <= p.0 {
            self.tls.resize(p.0 + 1, None);
        }
        self.tls[p.0] = Some(acceptor);
    }

    /// Verifies hashed passwords on `auth`'s thread.
    pub(crate) fn set_auth(&mut self, auth: AuthClient) {
        self.auth = Some(auth);
    }

    /// Hands the passwords the sessions asked to verify to the auth thread; one it cannot take
    /// gets its "unavailable" verdict at once.
    fn forward_auth(&mut self) {
        while let Some(req) = self.outbox.poll_auth() {
            let refused = match &self.auth {
                Some(auth) => auth.submit(req).err(),
                None => Some(AuthVerdict { conn: req.conn, attempt: req.attempt, verdict: Verdict::Unavailable }),
            };
            if let Some(v) = refused {
                self.verdict(v);
            }
        }
    }

    /// Takes the auth thread's verdicts (the receiver calls this when its waker fires): each
    /// completes its logon, then the input held behind it is handed over.
    pub(crate) fn take_verdicts(&mut self) {
        while let Some(v) = self.auth.as_ref().and_then(AuthClient::poll) {
            self.verdict(v);
        }
    }

    fn verdict(&mut self, v: AuthVerdict) {
        let Some(c) = self.conns[v.conn.0].as_ref() else { return };
        let p = c.protocol;
        let mut env = Env { instruments: &self.instruments, next_exec_id: &mut self.next_exec_id };
        let now = WallClock.now_ns();
        self.protocols[p.0].handle_verdict(v.conn, v.attempt, v.verdict, now, &mut env, &mut self.outbox);
        self.apply_closes();
        // A refused logon's connection is closing: what it sent after the logon is never read.
        if self.conns[v.conn.0].as_ref().is_some_and(|c| !c.closing) {
            self.hand_over(v.conn);
            self.apply_closes();
        }
    }

    /// Whether sessions asked for commands or closes not yet carried out.
    pub(crate) fn outbox_has_work(&self) -> bool {
        self.outbox.has_submits_or_closes()
    }

    /// Moves what the sessions submitted into `into` (the caller sequences it without the lock).
    pub(crate) fn take_submits(&mut self, into: &mut Vec<CommandBody>) {
        while let Some(body) = self.outbox.poll_submit() {
            into.push(body);
        }
    }

    /// The configured session called `name` in any protocol: its kill-switch key and accounts.
    pub(crate) fn find_session(&self, name: &str) -> Option<(u64, Vec<u32>)> {
        self.protocols.iter().find_map(|p| p.find_session(name))
    }

    /// Engages or releases the kill switch of the session with `key`; false if none has it.
    pub(crate) fn set_kill_switch(&mut self, key: u64, engaged: bool) -> bool {
        self.protocols.iter_mut().any(|p| p.set_kill_switch(key, engaged))
    }

    /// Converts orders for `spec`'s instrument with `spec` from now on (a reload added it or
    /// changed its terms on the same grid).
    pub(crate) fn set_instrument(&mut self, spec: InstrumentSpec) {
        let i = spec.id.0 as usize;
        if self.instruments.len() <= i {
            self.instruments.resize(i + 1, None);
        }
        self.instruments[i] = Some(spec);
    }

    /// Queues a command to sequence (configuration commands at start, Ticks).
    pub(crate) fn submit(&mut self, body: CommandBody) {
        self.outbox.submit(body);
    }

    /// Hands a released report to the session it is routed to.
    pub(crate) fn deliver(&mut self, to: SessionRef, report: &Report, now_ns: u64) {
        let env = Env { instruments: &self.instruments, next_exec_id: &mut self.next_exec_id };
        self.protocols[to.protocol.0].handle_report(to.index, report, now_ns, &env, &mut self.outbox);
    }

    /// Takes over an accepted socket for protocol `p`; false if no connection slot is free.
    pub(crate) fn add_conn(&mut self, mut stream: TcpStream, p: ProtocolId) -> bool {
        let peer = stream.peer_addr().ok();
        let Some(i) = self.conns.iter().position(Option::is_none) else {
            tracing::warn!(?peer, "connection refused: sessions_limits.max_connections reached");
            return false;
        };
        if let Err(e) = self.registry.register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE) {
            tracing::warn!(?peer, error = %e, "cannot register connection");
            return false;
        }
        let _ = stream.set_nodelay(true);
        let tls = match self.tls.get(p.0).and_then(Option::as_ref).map(|a| a.accept()) {
            None => None,
            Some(Ok(session)) => Some(Box::new(session)),
            Some(Err(e)) => {
                tracing::warn!(?peer, error = %e, "cannot start TLS on the connection");
                let _ = self.registry.deregister(&mut stream);
                return false;
            }
        };
        let protocol = self.protocols[p.0].name();
        tracing::info!(?peer, conn = i, protocol, "connected");
        self.outbox.tx(ConnId(i)).clear();
        self.protocols[p.0].handle_connect(ConnId(i), peer.map(|a| a.ip()), WallClock.now_ns());
        let recv = vec![0; RECV_BUF_BYTES];
        self.conns[i] = Some(Conn { stream, tls, protocol: p, recv, recv_len: 0, closing: false });
        let g = &self.shared.metrics.gateway;
        g.connections[p.0].add(1);
        g.connections_accepted[p.0].add(1);
        true
    }

    /// Reads once from `conn` and hands whole frames to its protocol; true if more may follow
    /// (the caller sequences what the sessions submitted before reading again, so a client
    /// that floods is held back by TCP, not queued without bound).
    pub(crate) fn read_once(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns[conn.0].as_mut() else { return false };
        if c.closing {
            return false;
        }
        let at = c.recv_len;
        let read = match c.tls.as_mut() {
            Some(tls) => tls_read(tls, &mut c.stream, &mut c.recv[at..]),
            None => c.stream.read(&mut c.recv[at..]),
        };
        match read {
            Ok(0) => self.drop_conn(conn, "peer closed the connection"),
            Ok(n) => {
                c.recv_len += n;
                self.hand_over(conn);
                self.apply_closes();
                return true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return true,
            Err(e) => self.drop_conn(conn, &format!("read error: {e}")),
        }
        false
    }

    fn hand_over(&mut self, conn: ConnId) {
        let Some(c) = self.conns[conn.0].as_mut() else { return };
        let mut env = Env { instruments: &self.instruments, next_exec_id: &mut self.next_exec_id };
        let now = WallClock.now_ns();
        let protocol = &mut self.protocols[c.protocol.0];
        let before = self.outbox.submits_len();
        let consumed = protocol.handle_input(conn, &c.recv[..c.recv_len], now, &mut env, &mut self.outbox);
        self.last_read_ns = now;
        if let Some(g) = self.shared.metrics.recording().then_some(&self.shared.metrics.gateway) {
            let counters = &g.requests[c.protocol.0];
            for body in self.outbox.submits_from(before) {
                counters[request_type(body)].add(1);
            }
        }
        c.recv.copy_within(consumed..c.recv_len, 0);
        c.recv_len -= consumed;
        if c.recv_len == c.recv.len() {
            // A full buffer with no whole frame in it: protocols bound their frames below
            // RECV_BUF_BYTES, so this is a client that sent a whole buffer while its logon
            // waited for its verdict (or a protocol bug); close rather than spin.
            self.outbox.close(conn, CloseKind::Now, "receive buffer full without a whole frame");
        }
        self.forward_auth();
    }

    /// Carries out the closes the sessions asked for.
    pub(crate) fn apply_closes(&mut self) {
        while let Some((conn, kind, why)) = self.outbox.poll_close() {
            match kind {
                CloseKind::Now => {
                    tracing::warn!(conn = conn.0, %why, "connection refused");
                    self.drop_conn(conn, &why);
                }
                CloseKind::AfterFlush => {
                    if let Some(c) = self.conns[conn.0].as_mut() {
                        c.closing = true;
                    }
                }
            }
        }
    }

    /// Writes what each connection has queued; drops the broken, the finished and the slow.
    pub(crate) fn flush_all(&mut self) {
        for i in 0..self.conns.len() {
            let Some(c) = self.conns[i].as_mut() else { continue };
            let tx = self.outbox.tx(ConnId(i));
            let tls_owes = c.tls.as_ref().is_some_and(|t| t.wants_write());
            if tx.is_empty() && !c.closing && !tls_owes {
                continue;
            }
            let (written, broken) = match c.tls.as_mut() {
                Some(tls) => tls_write(tls, &mut c.stream, tx),
                None => write_some(&mut c.stream, tx),
            };
            tx.drain(..written);
            let why = if let Some(why) = broken {
                why
            } else if c.closing && tx.is_empty() && !c.tls.as_ref().is_some_and(|t| t.wants_write()) {
                "session terminated".to_string()
            } else if tx.len() > self.outbound_cap_bytes {
                let cap = self.outbound_cap_bytes;
                tracing::warn!(conn = i, cap, "slow consumer: outbound buffer full; disconnecting");
                "slow consumer".to_string()
            } else {
                continue;
            };
            self.drop_conn(ConnId(i), &why);
        }
    }

    /// Closes `conn` and tells its session.
    pub(crate) fn drop_conn(&mut self, conn: ConnId, why: &str) {
        let Some(mut c) = self.conns[conn.0].take() else { return };
        let g = &self.shared.metrics.gateway;
        g.connections[c.protocol.0].set(g.connections[c.protocol.0].get().saturating_sub(1));
        let _ = self.registry.deregister(&mut c.stream);
        self.outbox.tx(conn).clear();
        tracing::info!(conn = conn.0, why, "disconnected");
        let now = WallClock.now_ns();
        self.protocols[c.protocol.0].handle_disconnect(conn, now, self.stopping, &mut self.outbox);
    }

    /// Clock tick for every protocol's sessions.
    pub(crate) fn timers(&mut self, now_ns: u64) {
        for p in &mut self.protocols {
            p.handle_timer(now_ns, &mut self.outbox);
        }
        if now_ns.saturating_sub(self.gauges_ns) >= GAUGE_PERIOD_NS
            && let Some(g) = self.gateway_metrics()
        {
            let mut not_authorised = 0;
            for (i, p) in self.protocols.iter().enumerate() {
                g.logged_on[i].set(p.logged_on());
                g.throttled[i].set(p.throttled_total());
                g.logon_failures[i].set(p.logon_failures_total());
                not_authorised += p.not_authorised_total();
            }
            g.not_authorised.set(not_authorised);
            g.gateway_rejects.set(self.next_exec_id - GATEWAY_EXEC_ID_BASE);
            self.gauges_ns = now_ns;
        }
    }

    /// When the last read that brought bytes returned (the requests it brought were received
    /// then).
    pub(crate) fn last_read_ns(&self) -> u64 {
        self.last_read_ns
    }

    fn gateway_metrics(&self) -> Option<&crate::admin::recorder::GatewayMetrics> {
        self.shared.metrics.recording().then_some(&self.shared.metrics.gateway)
    }

    /// Shutdown starts: every session says goodbye; cancel-on-disconnect no longer applies.
    pub(crate) fn say_goodbye(&mut self, now_ns: u64) {
        self.stopping = true;
        for p in &mut self.protocols {
            p.handle_shutdown(now_ns, &mut self.outbox);
        }
    }

    /// Whether a connection still owes the reply to a goodbye.
    pub(crate) fn awaits_goodbye(&self) -> bool {
        self.protocols.iter().any(|p| p.awaits_goodbye())
    }

    /// Closes every connection and makes every session store durable.
    pub(crate) fn close_all(&mut self) {
        for c in 0..self.conns.len() {
            self.drop_conn(ConnId(c), "server shutting down");
        }
        for p in &mut self.protocols {
            p.flush_stores();
        }
    }
}

/// Writes as much of `buf` as the socket takes now: (bytes written, why the socket broke).
fn write_some(stream: &mut TcpStream, buf: &[u8]) -> (usize, Option<String>) {
    let mut written = 0;
    while written < buf.len() {
        match stream.write(&buf[written..]) {
            Ok(0) => return (written, Some("socket closed while writing".to_string())),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(format!("write error: {e}"))),
        }
    }
    (written, None)
}

/// Reads plaintext of a TLS connection into `buf`, with the meaning of `Read::read` on the
/// socket: `Ok(0)` once the peer closed, `WouldBlock` when nothing more can be read now. Takes
/// records from the socket only when rustls holds no plaintext.
fn tls_read(tls: &mut rustls::ServerConnection, stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if tls.read_tls(stream)? == 0 {
            return Ok(0);
        }
        if let Err(e) = tls.process_new_packets() {
            // The alert rustls queued tells the client why; best effort.
            let _ = tls.write_tls(stream);
            return Err(std::io::Error::new(ErrorKind::InvalidData, format!("TLS: {e}")));
        }
    }
}

/// Writes what rustls holds, then moves `buf` into rustls and writes again, as far as the
/// socket takes it now: (bytes of `buf` taken, why the socket broke).
fn tls_write(tls: &mut rustls::ServerConnection, stream: &mut TcpStream, buf: &[u8]) -> (usize, Option<String>) {
    let mut taken = 0;
    loop {
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(0) => return (taken, Some("socket closed while writing".to_string())),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (taken, None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return (taken, Some(format!("write error: {e}"))),
            }
        }
        if taken == buf.len() {
            return (taken, None);
        }
        match tls.writer().write(&buf[taken..]) {
            Ok(0) | Err(_) if !tls.wants_write() => return (taken, Some("TLS refused the output".to_string())),
            Ok(n) => taken += n,
            Err(_) => {}
        }
    }
}

//! Stage: the receiver, the gateway's event loop. It owns every client socket (mio), accepts
//! connections on each protocol's listener, reads bytes into per-connection buffers and hands
//! them to that protocol's sessions ([`Protocol`]), then carries out what the sessions ask for
//! through the [`Outbox`]: commands go to the sequencer, bytes to the sockets, closes to the
//! connections. It knows protocols only through the session contract.
//!
//! On this thread the receiver also drives the publisher between polls (one thread for the
//! whole gateway: see `ARCHITECTURE.md`, "one gateway thread"). The thread never blocks: while
//! work is in flight it polls with a zero timeout and idles with the configured wait strategy;
//! when the input ring is full it keeps publishing output while it retries, so the matcher (which
//! waits on a full output ring) always makes progress. A connection whose unsent output outgrows
//! `sessions_limits.outbound_buffer_bytes` is disconnected (slow consumer): nothing it was sent
//! is lost, every application message is in its session's store for a resend.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{CommandBody, InstrumentSpec};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::limits::{DRAIN_TIMEOUT, RECV_BUF_BYTES};
use crate::rings::{InputProducer, OutputPoller, Shared};
use crate::session::{CloseKind, ConnId, Env, Outbox, Protocol, ProtocolId};
use crate::stage::publisher::{OutputSource, Publisher};
use crate::stage::sequencer::{Clock, Sequencer, WallClock};
use crate::wait::Wait;

/// Token of the waker (stop requests).
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
/// Token of protocol p's listener: `LISTENER_BASE - p`.
const LISTENER_BASE: usize = usize::MAX - 2;
/// Session timers run this often.
const TIMER_PERIOD: Duration = Duration::from_millis(50);

/// Everything the receiver takes over from the pipeline's wiring.
pub(crate) struct ReceiverParts {
    /// The poller (its waker is registered as [`WAKER`]).
    pub poll: Poll,
    /// One listener per protocol, with that protocol's sessions.
    pub protocols: Vec<(TcpListener, Box<dyn Protocol + Send>)>,
    /// The sequencer, which owns the input ring's producer.
    pub sequencer: Sequencer<InputProducer, WallClock>,
    /// The publisher's state.
    pub publisher: Publisher,
    /// The output ring's consumer.
    pub out_poller: OutputPoller,
    /// Shared atomics.
    pub shared: Arc<Shared>,
    /// Idle strategy while work is in flight.
    pub wait: Wait,
    /// Instruments by id (order conversion, report symbols).
    pub instruments: Vec<Option<InstrumentSpec>>,
    /// Most connections at once.
    pub max_conns: usize,
    /// Unsent bytes a connection may hold before it is disconnected.
    pub outbound_cap_bytes: usize,
    /// How long shutdown waits for the reply to a goodbye (FIX Logout).
    pub logout_timeout: Duration,
    /// Configuration commands to sequence before any client's.
    pub admin: Vec<CommandBody>,
}

struct Conn {
    stream: TcpStream,
    protocol: ProtocolId,
    recv: Vec<u8>,
    recv_len: usize,
    closing: bool,
}

/// Everything but the sequencer, so the sequencer's "ring full" callback can publish.
struct Core {
    poll: Poll,
    listeners: Vec<Option<TcpListener>>,
    protocols: Vec<Box<dyn Protocol + Send>>,
    conns: Vec<Option<Conn>>,
    outbox: Outbox,
    publisher: Publisher,
    out_poller: OutputPoller,
    shared: Arc<Shared>,
    wait: Wait,
    instruments: Vec<Option<InstrumentSpec>>,
    /// Exec ids of gateway rejects: top bit set (engine reports use `seq << 20 | n`).
    next_exec_id: u64,
    outbound_cap_bytes: usize,
    logout_timeout: Duration,
    /// Set once shutdown closes the sessions: cancel-on-disconnect does not apply.
    stopping: bool,
}

/// The receiver's state.
pub(crate) struct Receiver {
    sequencer: Sequencer<InputProducer, WallClock>,
    core: Core,
    admin: Vec<CommandBody>,
}

/// Exec ids of gateway rejects have the top bit set; they restart at each start.
const GATEWAY_EXEC_ID_BASE: u64 = 1 << 63;

impl Receiver {
    /// Takes over the parts and registers the listeners.
    pub(crate) fn new(parts: ReceiverParts) -> std::io::Result<Self> {
        let mut listeners = Vec::with_capacity(parts.protocols.len());
        let mut protocols = Vec::with_capacity(parts.protocols.len());
        for (p, (mut listener, protocol)) in parts.protocols.into_iter().enumerate() {
            parts.poll.registry().register(&mut listener, Token(LISTENER_BASE - p), Interest::READABLE)?;
            listeners.push(Some(listener));
            protocols.push(protocol);
        }
        let core = Core {
            poll: parts.poll,
            listeners,
            protocols,
            conns: (0..parts.max_conns).map(|_| None).collect(),
            outbox: Outbox::new(parts.max_conns),
            publisher: parts.publisher,
            out_poller: parts.out_poller,
            shared: parts.shared,
            wait: parts.wait,
            instruments: parts.instruments,
            next_exec_id: GATEWAY_EXEC_ID_BASE,
            outbound_cap_bytes: parts.outbound_cap_bytes,
            logout_timeout: parts.logout_timeout,
            stopping: false,
        };
        Ok(Receiver { sequencer: parts.sequencer, core, admin: parts.admin })
    }

    fn in_flight(&self) -> bool {
        self.core.publisher.seq_published() + 1 < self.sequencer.next_seq() || self.core.publisher.holds_output()
    }

    /// The event loop; returns after a stop request (clean) or a stage failure.
    pub(crate) fn run(mut self) -> Result<(), crate::pipeline::PipelineError> {
        for body in std::mem::take(&mut self.admin) {
            self.core.outbox.submit(body);
        }
        let mut events = Events::with_capacity(256);
        let mut last_timer = Instant::now();
        let mut idle_rounds = 0u32;
        loop {
            if let Some(f) = self.core.shared.failure() {
                tracing::error!(failure = %f, "pipeline stage failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(crate::pipeline::PipelineError::Stage(f));
            }
            if self.core.shared.stop.load(std::sync::atomic::Ordering::Acquire) {
                return self.shutdown();
            }
            let busy = self.in_flight() || self.core.outbox_has_work();
            let timeout = if busy { Duration::ZERO } else { TIMER_PERIOD };
            if let Err(e) = self.core.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "polling failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(crate::pipeline::PipelineError::Io { what: "polling", source: e });
            }
            let mut progressed = !events.is_empty();
            for ev in events.iter() {
                self.on_event(ev.token(), ev.is_readable() || ev.is_read_closed());
            }
            progressed |= self.core.publish();
            self.drain_outbox();
            if last_timer.elapsed() >= TIMER_PERIOD {
                last_timer = Instant::now();
                self.timers();
            }
            if busy && !progressed {
                self.core.wait.idle(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            } else {
                idle_rounds = 0;
            }
        }
    }

    fn on_event(&mut self, token: Token, readable: bool) {
        match token {
            WAKER => {}
            Token(t) if t > LISTENER_BASE - self.core.listeners.len() && t <= LISTENER_BASE => {
                self.core.accept(ProtocolId(LISTENER_BASE - t));
            }
            Token(i) if readable && i < self.core.conns.len() => self.read(ConnId(i)),
            Token(_) => {}
        }
    }

    /// Reads `conn` until it has nothing more, sequencing what each read brought before the
    /// next (writing to the sockets waits for the loop's flush, once per round).
    fn read(&mut self, conn: ConnId) {
        while self.core.read_once(conn) {
            self.sequence_submits();
        }
        self.sequence_submits();
    }

    /// Sequences what the sessions submitted, publishing while the input ring is full.
    fn sequence_submits(&mut self) {
        let core = &mut self.core;
        while let Some(body) = core.outbox.poll_submit() {
            let mut rounds = 0u32;
            self.sequencer.submit(body, || core.pump_while_full(&mut rounds));
        }
    }

    /// Sequences what the sessions submitted (publishing while the ring is full), applies the
    /// closes they asked for and writes what is queued.
    fn drain_outbox(&mut self) {
        loop {
            self.sequence_submits();
            self.core.apply_closes();
            self.core.flush_all();
            // Dropped connections may have asked for commands (cancel-on-disconnect).
            if !self.core.outbox_has_work() {
                return;
            }
        }
    }

    fn timers(&mut self) {
        if self.sequencer.tick_due() {
            self.core.outbox.submit(CommandBody::Tick);
        }
        let now = WallClock.now_ns();
        let core = &mut self.core;
        for p in &mut core.protocols {
            p.handle_timer(now, &mut core.outbox);
        }
        self.drain_outbox();
    }

    /// Every session says goodbye, FIX waits for the confirming Logout (application messages
    /// are not taken any more), then every connection closes and the stores are flushed.
    fn close_all(&mut self) {
        self.core.stopping = true;
        let now = WallClock.now_ns();
        let core = &mut self.core;
        for p in &mut core.protocols {
            p.handle_shutdown(now, &mut core.outbox);
        }
        self.drain_outbox();
        self.await_goodbyes();
        for c in 0..self.core.conns.len() {
            self.core.drop_conn(ConnId(c), "server shutting down");
        }
        for p in &mut self.core.protocols {
            p.flush_stores();
        }
    }

    fn await_goodbyes(&mut self) {
        let deadline = Instant::now() + self.core.logout_timeout;
        let mut events = Events::with_capacity(64);
        while self.core.protocols.iter().any(|p| p.awaits_goodbye()) && Instant::now() < deadline {
            if let Err(e) = self.core.poll.poll(&mut events, Some(TIMER_PERIOD))
                && e.kind() != ErrorKind::Interrupted
            {
                return;
            }
            for ev in events.iter() {
                let Token(i) = ev.token();
                if i < self.core.conns.len() && (ev.is_readable() || ev.is_read_closed()) {
                    self.read(ConnId(i));
                }
            }
            self.drain_outbox();
        }
    }

    /// Drops the input producer, which lets the journaler, matcher and follower finish what
    /// is in the ring and join. The join runs on a helper thread while this one discards
    /// output (every session is closed by now), so a matcher waiting on a full output ring
    /// cannot hang the shutdown.
    fn stop_stages(&mut self) {
        let Some(input) = self.sequencer.close() else { return };
        let joiner = std::thread::Builder::new().name("sable-stop".into()).spawn(move || drop(input));
        let Ok(joiner) = joiner else {
            tracing::error!("cannot spawn the stage joiner; stages are left to the process exit");
            return;
        };
        let core = &mut self.core;
        let mut rounds = 0u32;
        let mut scratch = std::collections::VecDeque::new();
        while !joiner.is_finished() {
            core.publisher.discard_held();
            scratch.clear();
            if core.out_poller.take_into(&mut scratch, u64::MAX) {
                rounds = 0;
            } else {
                core.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
        }
        if joiner.join().is_err() {
            tracing::error!("a pipeline stage panicked while stopping");
        }
    }

    /// Stop accepting, publish everything in flight, close sessions, stop the stages.
    fn shutdown(mut self) -> Result<(), crate::pipeline::PipelineError> {
        tracing::info!("shutting down: no new connections or input");
        self.core.close_listeners();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut rounds = 0u32;
        while self.in_flight() && Instant::now() < deadline && self.core.shared.failure().is_none() {
            if self.core.publish() {
                rounds = 0;
            } else {
                self.core.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
            self.core.flush_all();
        }
        let drained = !self.in_flight();
        self.close_all();
        self.stop_stages();
        if let Some(f) = self.core.shared.failure() {
            return Err(crate::pipeline::PipelineError::Stage(f));
        }
        if !drained {
            return Err(crate::pipeline::PipelineError::Stage(format!(
                "in-flight commands were not published within {} s",
                DRAIN_TIMEOUT.as_secs()
            )));
        }
        Ok(())
    }
}

impl Core {
    fn outbox_has_work(&self) -> bool {
        self.outbox.has_submits_or_closes()
    }

    /// Releases durable output to the sessions; true if anything moved.
    fn publish(&mut self) -> bool {
        let seq_durable = self.shared.seq_durable.load(std::sync::atomic::Ordering::Acquire);
        let now = WallClock.now_ns();
        let env = Env { instruments: &self.instruments, next_exec_id: &mut self.next_exec_id };
        let (protocols, outbox) = (&mut self.protocols, &mut self.outbox);
        self.publisher.pump(&mut self.out_poller, seq_durable, &mut |to, report| {
            protocols[to.protocol.0].handle_report(to.index, report, now, &env, outbox);
        })
    }

    /// The sequencer's "ring full" callback: keep output moving so the matcher can go on.
    /// False once the pipeline failed (the command is then not sequenced).
    fn pump_while_full(&mut self, rounds: &mut u32) -> bool {
        if self.shared.failure().is_some() {
            return false;
        }
        if !self.publish() {
            self.wait.idle(*rounds);
            *rounds = rounds.saturating_add(1);
        }
        self.flush_all();
        true
    }

    fn close_listeners(&mut self) {
        for l in self.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
        }
    }

    fn accept(&mut self, p: ProtocolId) {
        loop {
            let Some(listener) = self.listeners[p.0].as_ref() else { return };
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
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().register(&mut stream, Token(i), interest) {
                tracing::warn!(%peer, error = %e, "cannot register connection");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let protocol = self.protocols[p.0].name();
            tracing::info!(%peer, conn = i, protocol, "connected");
            self.outbox.tx(ConnId(i)).clear();
            self.protocols[p.0].handle_connect(ConnId(i), WallClock.now_ns());
            let recv = vec![0; RECV_BUF_BYTES];
            self.conns[i] = Some(Conn { stream, protocol: p, recv, recv_len: 0, closing: false });
        }
    }

    /// Reads once from `conn` and hands whole frames to its protocol; true if more may follow
    /// (the caller sequences what the sessions submitted before reading again, so a client
    /// that floods is held back by TCP, not queued without bound).
    fn read_once(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns[conn.0].as_mut() else { return false };
        if c.closing {
            return false;
        }
        let at = c.recv_len;
        match c.stream.read(&mut c.recv[at..]) {
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
        let consumed = protocol.handle_input(conn, &c.recv[..c.recv_len], now, &mut env, &mut self.outbox);
        c.recv.copy_within(consumed..c.recv_len, 0);
        c.recv_len -= consumed;
        if c.recv_len == c.recv.len() {
            // A full buffer with no whole frame in it: protocols bound their frames below
            // RECV_BUF_BYTES, so this is a protocol bug; close rather than spin.
            self.outbox.close(conn, CloseKind::Now, "receive buffer full without a whole frame");
        }
    }

    fn apply_closes(&mut self) {
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
    fn flush_all(&mut self) {
        for i in 0..self.conns.len() {
            let Some(c) = self.conns[i].as_mut() else { continue };
            let tx = self.outbox.tx(ConnId(i));
            let (written, broken) = write_some(&mut c.stream, tx);
            tx.drain(..written);
            let why = if let Some(why) = broken {
                why
            } else if c.closing && tx.is_empty() {
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

    fn drop_conn(&mut self, conn: ConnId, why: &str) {
        let Some(mut c) = self.conns[conn.0].take() else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.outbox.tx(conn).clear();
        tracing::info!(conn = conn.0, why, "disconnected");
        let now = WallClock.now_ns();
        self.protocols[c.protocol.0].handle_disconnect(conn, now, self.stopping, &mut self.outbox);
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

//! Stage: the receiver, the gateway's event loop. It owns every client socket (mio), accepts
//! connections on each protocol's listener, reads bytes into per-connection buffers and hands
//! them to that protocol's sessions ([`Protocol`]), then carries out what the sessions ask for
//! through the [`Outbox`]: commands go to the sequencer, bytes to the sockets, closes to the
//! connections. It knows protocols only through the session contract.
//!
//! With `pipeline.gateway_threads = 1` (the default) the receiver also drives the publisher
//! between polls; with `2` the publisher runs on a thread of its own and the two share the
//! [`Edge`] (connections and sessions) through its lock (see `ARCHITECTURE.md`). The thread
//! never blocks: while work is in flight it polls with a zero timeout and idles with the
//! configured wait strategy; when the input ring is full it keeps output moving while it retries
//! (publishing itself, or leaving it to the publisher thread), so the matcher, which waits on a
//! full output ring, always makes progress. The edge's lock is never held while waiting. A
//! connection whose unsent output outgrows `sessions_limits.outbound_buffer_bytes` is
//! disconnected (slow consumer): nothing it was sent is lost, every application message is in
//! its session's store for a resend.

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::CommandBody;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::edge::{Edge, lock};
use crate::limits::{DRAIN_TIMEOUT, STANDBY_DRAIN_GRACE};
use crate::pipeline::PipelineError;
use crate::rings::{InputProducer, Shared};
use crate::session::{ConnId, Protocol, ProtocolId};
use crate::stage::publisher::{PublisherStage, PublisherThread};
use crate::stage::sequencer::{Clock, Sequencer, WallClock};
use crate::wait::Wait;

/// Token of the waker (stop requests, the publisher thread's calls).
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
/// Token of protocol p's listener: `LISTENER_BASE - p`.
const LISTENER_BASE: usize = usize::MAX - 2;
/// Session timers run this often.
const TIMER_PERIOD: Duration = Duration::from_millis(50);

/// Everything the receiver takes over from the pipeline's wiring.
pub(crate) struct ReceiverParts {
    /// The poller (its waker is registered as [`WAKER`]).
    pub poll: Poll,
    /// The poller's waker, for a publisher thread to call.
    pub waker: Arc<mio::Waker>,
    /// One listener per protocol, with that protocol's sessions.
    pub protocols: Vec<(TcpListener, Box<dyn Protocol + Send>)>,
    /// The sequencer, which owns the input ring's producer.
    pub sequencer: Sequencer<InputProducer, WallClock>,
    /// The publisher with the output ring's consumer.
    pub publisher: PublisherStage,
    /// Whether the publisher runs on a thread of its own (`pipeline.gateway_threads = 2`).
    pub publisher_thread: bool,
    /// Shared atomics.
    pub shared: Arc<Shared>,
    /// Idle strategy while work is in flight.
    pub wait: Wait,
    /// Instruments by id (order conversion, report symbols).
    pub instruments: Vec<Option<engine::InstrumentSpec>>,
    /// Most connections at once.
    pub max_conns: usize,
    /// Unsent bytes a connection may hold before it is disconnected.
    pub outbound_cap_bytes: usize,
    /// How long shutdown waits for the reply to a goodbye (FIX Logout).
    pub logout_timeout: Duration,
    /// Configuration commands to sequence before any client's.
    pub admin: Vec<CommandBody>,
    /// Each protocol's TLS configuration (listener order; none: plain TCP).
    pub tls: Vec<Option<Arc<crate::tls::TlsAcceptor>>>,
    /// The operator desk (admin-port market actions to sequence).
    pub desk: Arc<crate::admin::desk::Desk>,
    /// Sessions whose kill switch the restored engine holds engaged.
    pub killed_sessions: Vec<u64>,
}

/// A request was sequenced as `seq` at `ts_ns`: received → sequenced, and the stamp the
/// publisher measures order → ack from.
pub(crate) fn record_sequenced(
    m: &crate::admin::recorder::Metrics,
    seq: u64,
    ts_ns: u64,
    received_ns: Option<u64>,
    kind: usize,
) {
    m.gateway.seq_sequenced.set(seq);
    let Some(received_ns) = received_ns else { return };
    m.gateway.received_to_sequenced.record(ts_ns.saturating_sub(received_ns));
    m.stamps.put(seq, crate::admin::recorder::Stamp { received_ns, ts_ns, kind });
}

/// Who publishes: the receiver between polls, or a thread of its own.
enum Output {
    Inline(Box<PublisherStage>),
    Thread(PublisherThread),
}

impl Output {
    /// Keeps output moving while the receiver waits (input ring full, draining): publishes
    /// inline, or leaves it to the publisher thread. True if the receiver itself moved output.
    fn publish(&mut self, edge: &Mutex<Edge>) -> bool {
        match self {
            Output::Inline(stage) => stage.publish(edge),
            Output::Thread(_) => false,
        }
    }

    /// The stage back on this thread (the publisher thread stopped); None if it panicked.
    fn into_inline(self) -> Option<PublisherStage> {
        match self {
            Output::Inline(stage) => Some(*stage),
            Output::Thread(thread) => thread.join(),
        }
    }
}

/// The receiver's state.
pub(crate) struct Receiver {
    sequencer: Sequencer<InputProducer, WallClock>,
    poll: Poll,
    listeners: Vec<Option<TcpListener>>,
    edge: Arc<Mutex<Edge>>,
    output: Option<Output>,
    shared: Arc<Shared>,
    wait: Wait,
    logout_timeout: Duration,
    admin: Vec<CommandBody>,
    desk: Arc<crate::admin::desk::Desk>,
    /// Commands taken from the sessions, sequenced outside the edge's lock.
    submits: Vec<CommandBody>,
    /// Connection slots (tokens below this are connections).
    max_conns: usize,
}

impl Receiver {
    /// Takes over the parts, registers the listeners and, when so configured, starts the
    /// publisher thread.
    pub(crate) fn new(parts: ReceiverParts) -> std::io::Result<Self> {
        let mut listeners = Vec::with_capacity(parts.protocols.len());
        let mut protocols = Vec::with_capacity(parts.protocols.len());
        for (p, (mut listener, protocol)) in parts.protocols.into_iter().enumerate() {
            parts.poll.registry().register(&mut listener, Token(LISTENER_BASE - p), Interest::READABLE)?;
            listeners.push(Some(listener));
            protocols.push(protocol);
        }
        let registry = parts.poll.registry().try_clone()?;
        let mut edge =
            Edge::new(registry, protocols, parts.instruments, parts.max_conns, parts.outbound_cap_bytes, &parts.shared);
        edge.set_auth(crate::session::auth::AuthClient::spawn(Arc::clone(&parts.waker))?);
        for (p, acceptor) in parts.tls.into_iter().enumerate() {
            if let Some(a) = acceptor {
                edge.set_tls(ProtocolId(p), a);
            }
        }
        for key in parts.killed_sessions {
            if !edge.set_kill_switch(key, true) {
                tracing::warn!(key = format_args!("{key:016x}"), "kill switch of a session no longer configured");
            }
        }
        let edge = Arc::new(Mutex::new(edge));
        let output = if parts.publisher_thread {
            Output::Thread(parts.publisher.spawn(Arc::clone(&edge), parts.wait, parts.waker)?)
        } else {
            Output::Inline(Box::new(parts.publisher))
        };
        Ok(Receiver {
            sequencer: parts.sequencer,
            poll: parts.poll,
            listeners,
            edge,
            output: Some(output),
            shared: parts.shared,
            wait: parts.wait,
            logout_timeout: parts.logout_timeout,
            admin: parts.admin,
            desk: parts.desk,
            submits: Vec::with_capacity(1024),
            max_conns: parts.max_conns,
        })
    }

    fn in_flight(&self) -> bool {
        self.shared.seq_published.load(std::sync::atomic::Ordering::Acquire) + 1 < self.sequencer.next_seq()
    }

    fn publish(&mut self) -> bool {
        self.output.as_mut().is_some_and(|o| o.publish(&self.edge))
    }

    /// The event loop; returns after a stop request (clean) or a stage failure.
    pub(crate) fn run(mut self) -> Result<(), PipelineError> {
        self.submits.append(&mut self.admin);
        let mut events = Events::with_capacity(256);
        let mut last_timer = Instant::now();
        let mut idle_rounds = 0u32;
        loop {
            if let Some(f) = self.shared.failure() {
                tracing::error!(failure = %f, "pipeline stage failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(PipelineError::Stage(f));
            }
            if self.shared.stop.load(std::sync::atomic::Ordering::Acquire) {
                return self.shutdown();
            }
            let busy = self.in_flight() || lock(&self.edge).outbox_has_work();
            let timeout = if busy { Duration::ZERO } else { TIMER_PERIOD };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "polling failed; stopping");
                self.close_all();
                self.stop_stages();
                return Err(PipelineError::Io { what: "polling", source: e });
            }
            let mut progressed = !events.is_empty();
            for ev in events.iter() {
                self.on_event(ev.token(), ev.is_readable() || ev.is_read_closed());
            }
            progressed |= self.publish();
            self.drain_outbox();
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

    fn on_event(&mut self, token: Token, readable: bool) {
        match token {
            WAKER => {
                // Verdicts of the auth thread (or a stop request, a publisher thread's call).
                {
                    let mut edge = lock(&self.edge);
                    edge.take_verdicts();
                    edge.take_submits(&mut self.submits);
                }
                self.sequence_submits(None);
                self.take_desk();
            }
            Token(t) if t > LISTENER_BASE - self.listeners.len() && t <= LISTENER_BASE => {
                self.accept(ProtocolId(LISTENER_BASE - t));
            }
            Token(i) if readable && i < self.max_conns => self.read(ConnId(i)),
            Token(_) => {}
        }
    }

    fn accept(&mut self, p: ProtocolId) {
        loop {
            let Some(listener) = self.listeners[p.0].as_ref() else { return };
            match listener.accept() {
                Ok((stream, _peer)) => {
                    lock(&self.edge).add_conn(stream, p);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    /// Reads `conn` until it has nothing more, sequencing what each read brought before the
    /// next (writing to the sockets waits for the loop's flush, once per round).
    fn read(&mut self, conn: ConnId) {
        loop {
            let (more, received_ns) = {
                let mut edge = lock(&self.edge);
                let more = edge.read_once(conn);
                edge.take_submits(&mut self.submits);
                (more, edge.last_read_ns())
            };
            self.sequence_submits(Some(received_ns));
            if !more {
                return;
            }
        }
    }

    /// Sequences the commands taken from the sessions, keeping output moving while the input
    /// ring is full. The edge's lock is not held: a publisher thread needs it to make room.
    /// `received_ns`: when the read that brought them returned (None: the gateway's own
    /// commands, which are not measured).
    fn sequence_submits(&mut self, received_ns: Option<u64>) {
        let (sequencer, output, edge, shared, wait) =
            (&mut self.sequencer, &mut self.output, &self.edge, &self.shared, self.wait);
        let metrics = shared.metrics.recording().then_some(&shared.metrics);
        for body in self.submits.drain(..) {
            let mut rounds = 0u32;
            let kind = crate::admin::recorder::request_type(&body);
            let seq = sequencer.submit(body, || {
                if shared.failure().is_some() {
                    return false;
                }
                if !output.as_mut().is_some_and(|o| o.publish(edge)) {
                    wait.idle(rounds);
                    rounds = rounds.saturating_add(1);
                }
                true
            });
            if let (Some(m), Some(seq)) = (metrics, seq) {
                record_sequenced(m, seq, sequencer.last_ts_ns(), received_ns, kind);
            }
        }
    }

    /// Sequences what the sessions submitted, applies the closes they asked for and writes
    /// what is queued.
    fn drain_outbox(&mut self) {
        loop {
            self.sequence_submits(None);
            let mut edge = lock(&self.edge);
            edge.apply_closes();
            edge.flush_all();
            // Dropped connections may have asked for commands (cancel-on-disconnect).
            if !edge.outbox_has_work() {
                return;
            }
            edge.take_submits(&mut self.submits);
        }
    }

    fn timers(&mut self) {
        let mut edge = lock(&self.edge);
        // Verdicts whose wake-up was lost are taken here at the latest.
        edge.take_verdicts();
        if self.sequencer.tick_due() {
            edge.submit(CommandBody::Tick);
        }
        edge.timers(WallClock.now_ns());
        edge.take_submits(&mut self.submits);
        drop(edge);
        self.drain_outbox();
        // Requests whose wake-up was lost are taken here at the latest.
        self.take_desk();
    }

    /// Sequences the operator desk's requests (after whatever the sessions queued) and answers
    /// each with its commands' sequence numbers.
    fn take_desk(&mut self) {
        for req in self.desk.take() {
            if self.shared.stop.load(std::sync::atomic::Ordering::Acquire) {
                req.answer(Err("the appliance is stopping".into()));
                continue;
            }
            let commands = {
                let mut edge = lock(&self.edge);
                let commands = req.commands(|name, engaged| {
                    let (key, accounts) = edge.find_session(name)?;
                    edge.set_kill_switch(key, engaged);
                    Some((key, accounts))
                });
                // Orders sequenced after a reload's instrument change convert with the new terms.
                for c in commands.iter().flatten() {
                    if let CommandBody::ConfigureInstrument(spec) = c {
                        edge.set_instrument(*spec);
                    }
                }
                commands
            };
            match commands {
                Ok(commands) => {
                    // The operator commands' sequence numbers: the ones with audit records.
                    let first = self.sequencer.next_seq();
                    let audited = commands.iter().enumerate().filter(|(_, c)| matches!(c, CommandBody::Operator(_)));
                    let seqs: Vec<u64> = audited.map(|(i, _)| first + i as u64).collect();
                    self.submits.extend(commands);
                    self.sequence_submits(None);
                    let end = self.sequencer.next_seq();
                    req.answer(Ok(seqs.into_iter().filter(|&s| s < end).collect()));
                }
                Err(e) => req.answer(Err(e)),
            }
        }
    }

    /// Every session says goodbye, FIX waits for the confirming Logout (application messages
    /// are not taken any more), then every connection closes and the stores are flushed.
    fn close_all(&mut self) {
        {
            let mut edge = lock(&self.edge);
            edge.say_goodbye(WallClock.now_ns());
            edge.take_submits(&mut self.submits);
        }
        self.drain_outbox();
        self.await_goodbyes();
        lock(&self.edge).close_all();
    }

    fn await_goodbyes(&mut self) {
        let deadline = Instant::now() + self.logout_timeout;
        let mut events = Events::with_capacity(64);
        while lock(&self.edge).awaits_goodbye() && Instant::now() < deadline {
            if let Err(e) = self.poll.poll(&mut events, Some(TIMER_PERIOD))
                && e.kind() != ErrorKind::Interrupted
            {
                return;
            }
            for ev in events.iter() {
                let Token(i) = ev.token();
                if (ev.is_readable() || ev.is_read_closed()) && i < self.max_conns {
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
        let stage = self.output.take().and_then(Output::into_inline);
        let Some(input) = self.sequencer.close() else { return };
        let Some(mut stage) = stage else {
            tracing::error!("the publisher thread panicked; stages are left to the process exit");
            return;
        };
        let joiner = std::thread::Builder::new().name("sable-stop".into()).spawn(move || drop(input));
        let Ok(joiner) = joiner else {
            tracing::error!("cannot spawn the stage joiner; stages are left to the process exit");
            return;
        };
        let mut rounds = 0u32;
        while !joiner.is_finished() {
            if stage.discard() {
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

    /// Stop accepting, publish everything in flight, close sessions, stop the stages.
    fn shutdown(mut self) -> Result<(), PipelineError> {
        tracing::info!("shutting down: no new connections or input");
        self.close_listeners();
        let started = Instant::now();
        let deadline = started + DRAIN_TIMEOUT;
        let mut rounds = 0u32;
        let waiting_in_vain = |r: &Self| r.no_standby_to_wait_for() && started.elapsed() > STANDBY_DRAIN_GRACE;
        while self.in_flight()
            && Instant::now() < deadline
            && self.shared.failure().is_none()
            && !waiting_in_vain(&self)
        {
            if self.publish() {
                rounds = 0;
            } else {
                self.wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
            lock(&self.edge).flush_all();
        }
        let drained = !self.in_flight();
        self.close_all();
        self.stop_stages();
        if let Some(f) = self.shared.failure() {
            return Err(PipelineError::Stage(f));
        }
        if !drained && self.no_standby_to_wait_for() {
            return Err(PipelineError::Stage(
                "in-flight commands wait for a standby and none is attached: they are journaled, not acknowledged"
                    .into(),
            ));
        }
        if !drained {
            return Err(PipelineError::Stage(format!(
                "in-flight commands were not published within {} s",
                DRAIN_TIMEOUT.as_secs()
            )));
        }
        Ok(())
    }

    /// Output waits for a standby (a `replicated` policy) and none is attached.
    fn no_standby_to_wait_for(&self) -> bool {
        use std::sync::atomic::Ordering::Acquire;
        self.shared.needs_standby.load(Acquire) && !self.shared.standby_attached.load(Acquire)
    }

    fn close_listeners(&mut self) {
        for l in self.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
        }
    }
}

//! The pipeline without its receiver, for benchmarks that must load the matcher harder than
//! sockets can: the caller is the receiver. It submits commands straight to the real
//! sequencer while the matcher waits at a gate, opens the gate, and watches the stages drain
//! — the same journaler, matcher, follower, publisher (on its own thread, delivering to every
//! configured session, which stores what it cannot send) and feed that [`crate::pipeline::start`]
//! wires, built by the same function.
//!
//! ```no_run
//! # fn run(cfg: gateway::config::Validated, body: engine::CommandBody) -> Result<(), gateway::pipeline::PipelineError> {
//! let mut h = gateway::harness::Harness::start(cfg)?;
//! let last = h.submit(body).expect("the ring takes it");
//! h.release();
//! while h.applied() < last {}
//! h.stop()?;
//! # Ok(()) }
//! ```

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};

use engine::CommandBody;

use crate::config::Validated;
use crate::edge::Edge;
use crate::pipeline::{Core, PipelineError, build_core};
use crate::rings::{InputProducer, Shared};
use crate::stage::feed::FeedThread;
use crate::stage::publisher::PublisherThread;
use crate::stage::receiver::{WAKER, record_sequenced};
use crate::stage::sequencer::{Sequencer, WallClock};

/// A running pipeline driven by its caller.
pub struct Harness {
    sequencer: Sequencer<InputProducer, WallClock>,
    publisher: Option<PublisherThread>,
    feed: Option<FeedThread>,
    shared: Arc<Shared>,
    gate: Arc<Barrier>,
    released: bool,
    admin: Option<crate::admin::AdminServer>,
    /// Owns the registry the (never used) sockets and the publisher's waker belong to.
    _poll: mio::Poll,
}

impl Harness {
    /// Builds the stages from `cfg` (the listen addresses are bound but never polled) and
    /// submits the configuration's own commands (instruments, accounts). The matcher waits
    /// for [`Harness::release`]; the input ring must hold what is submitted before it.
    pub fn start(cfg: Validated) -> Result<Self, PipelineError> {
        let gate = Arc::new(Barrier::new(2));
        let core = build_core(&cfg, Some(Arc::clone(&gate)), None)?;
        let Core { shared, wait, sequencer, publisher, feed_thread, admin: configuration, instruments, .. } = core;
        let publisher = match spawn_publisher(&cfg, publisher, &shared, wait, instruments) {
            Ok(p) => p,
            Err(e) => {
                gate.wait(); // let the matcher run so the stages can stop
                return Err(e);
            }
        };
        let mut h = Harness {
            sequencer,
            publisher: Some(publisher.0),
            feed: feed_thread,
            shared,
            gate,
            released: false,
            admin: None,
            _poll: publisher.1,
        };
        // From here on a failure drops `h`, which opens the gate and stops the stages.
        h.admin = crate::pipeline::admin_port(&cfg, &h.shared, None)?;
        for body in configuration {
            h.submit(body)
                .ok_or_else(|| PipelineError::Stage("the input ring is too small for the configuration".into()))?;
        }
        Ok(h)
    }

    /// Sequences `body` (stamped with the wall clock, as the receiver does; with metrics on,
    /// measured as a request received now). `None` when the input ring is full before the
    /// matcher is released, or the pipeline failed.
    pub fn submit(&mut self, body: CommandBody) -> Option<u64> {
        let released = self.released;
        let shared = &self.shared;
        let kind = crate::admin::recorder::request_type(&body);
        let received_ns = crate::stage::sequencer::Clock::now_ns(&WallClock);
        let seq = self.sequencer.submit(body, || {
            std::thread::yield_now();
            released && shared.failure().is_none()
        })?;
        if shared.metrics.recording() {
            record_sequenced(&shared.metrics, seq, self.sequencer.last_ts_ns(), Some(received_ns), kind);
        }
        Some(seq)
    }

    /// Lets the matcher start (once; later calls do nothing).
    pub fn release(&mut self) {
        if !std::mem::replace(&mut self.released, true) {
            self.gate.wait();
        }
    }

    /// The last sequence number the matcher applied.
    pub fn applied(&self) -> u64 {
        self.shared.seq_applied.0.load(Ordering::Acquire)
    }

    /// The last sequence number the journal holds at the configured durability.
    pub fn durable(&self) -> u64 {
        self.shared.seq_durable.load(Ordering::Acquire)
    }

    /// The last sequence number whose output the publisher released to the sessions.
    pub fn published(&self) -> u64 {
        self.shared.seq_published.load(Ordering::Acquire)
    }

    /// The admin port's address (health and metrics only), when `[admin]` has tokens.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(crate::admin::AdminServer::local_addr)
    }

    /// A stage's failure, if one failed.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Stops every stage: the publisher thread, then the input ring's stages (which finish
    /// what the ring holds while the output is discarded), then the feed.
    pub fn stop(mut self) -> Result<(), PipelineError> {
        self.shut()
    }

    /// [`Harness::stop`]'s work; a second call finds nothing left to stop.
    fn shut(&mut self) -> Result<(), PipelineError> {
        self.release();
        let stage = self.publisher.take().and_then(PublisherThread::join);
        let input = self.sequencer.close();
        if let (Some(mut stage), Some(input)) = (stage, input) {
            let joiner = std::thread::spawn(move || drop(input));
            while !joiner.is_finished() {
                if !stage.discard() {
                    std::thread::yield_now();
                }
            }
            let _ = joiner.join();
        }
        if let Some(f) = self.feed.take() {
            f.join();
        }
        match self.shared.failure() {
            Some(f) => Err(PipelineError::Stage(f)),
            None => Ok(()),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Stops what `stop` did not (a failure is reported by `stop` only).
        let _ = self.shut();
    }
}

/// The publisher on its own thread, delivering to every configured session through an edge
/// that never gets a connection.
fn spawn_publisher(
    cfg: &Validated,
    publisher: crate::stage::publisher::PublisherStage,
    shared: &Arc<Shared>,
    wait: crate::wait::Wait,
    instruments: Vec<Option<engine::InstrumentSpec>>,
) -> Result<(PublisherThread, mio::Poll), PipelineError> {
    let io = |what| move |source| PipelineError::Io { what, source };
    let poll = mio::Poll::new().map_err(io("creating the poller"))?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).map_err(io("creating the waker"))?);
    let credentials = Arc::new(crate::session::credentials::CredentialStore::new(&cfg.raw));
    let stores = crate::pipeline::session_stores(cfg)?;
    let (listeners, _, _) = crate::pipeline::listeners(cfg, stores, &credentials)?;
    let protocols = listeners.into_iter().map(|(_, p)| p).collect();
    let registry = poll.registry().try_clone().map_err(io("cloning the registry"))?;
    let limits = &cfg.raw.sessions_limits;
    let edge =
        Edge::new(registry, protocols, instruments, limits.max_connections, limits.outbound_buffer_bytes, shared);
    let thread = publisher.spawn(Arc::new(Mutex::new(edge)), wait, waker).map_err(io("spawning the publisher"))?;
    Ok((thread, poll))
}

//! The appliance's pipeline, wired in one function ([`start`]) so the data flow reads top to
//! bottom. Each stage is a file of its own under `stage/`; stages share only the ring types of
//! [`crate::rings`] and never import each other.
//!
//! ```text
//! clients ─► receiver (mio, sessions) ─► sequencer: seq + timestamp ─► input ring ─┬─► journaler: append,
//!   ▲                                                                              │     commit per batch → seq_durable
//!   │                                                                              ├─► matcher (pinned): Engine::apply,
//!   │                                                                              │     events ─► output ring
//!   │                                                                              └─(after both)─► follower: snapshots
//!   └── sessions: encode, store, send ◄── publisher: output ring, released once seq ≤ seq_durable,
//!                                          exec ids, routed by account
//! ```
//!
//! Receiver, sequencer and publisher share one gateway thread (`sable-gateway`), or with
//! `pipeline.gateway_threads = 2` the publisher has its own (`sable-publisher`); the journaler,
//! the matcher and the follower have a thread each.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::Duration;

use disruptor::{ProcessorSettings, build_single_producer};
use engine::{Engine, InstrumentId, OrderView, Side};
use journal::{Durability, Journal, JournalConfig};
use snapshot::{Follower, Retention, SnapshotStore};

use crate::config::{DurabilityPolicy, Validated};
use crate::fix::sessions::FixSessions;
use crate::limits::MAX_PARALLEL_STORE_OPENS;
use crate::replication::fence::NodeState;
use crate::rings::{InputProducer, OutSlot, Shared, Slot};
use crate::sbe::convert::OrderTerms;
use crate::sbe::sessions::SbeSessions;
use crate::session::{Protocol, ProtocolId, SessionRef};
use crate::stage::journaler::Journaler;
use crate::stage::matcher::Matcher;
use crate::stage::publisher::{IdMap, Publisher, PublisherStage};
use crate::stage::receiver::{Receiver, ReceiverParts, WAKER};
use crate::stage::replicator::{Gate, Replicator, ReplicatorThread};
use crate::stage::sequencer::{Sequencer, WallClock};
use crate::store::SessionStore;
use crate::wait::Wait;

pub use crate::reconcile::{instrument_table, reconcile};

/// How long the snapshot follower sleeps when it has caught up (it is never on the ack path).
const FOLLOWER_SLEEP: Duration = Duration::from_millis(1);

/// The SBE protocol's place among the receiver's protocols (and in report routes).
const SBE: ProtocolId = ProtocolId(0);
/// The FIX protocol's place.
const FIX: ProtocolId = ProtocolId(1);

/// Why the appliance could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Opening the journal failed.
    #[error("journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// Snapshots failed.
    #[error("snapshots: {0}")]
    Snapshot(#[from] snapshot::SnapshotError),
    /// Restore failed.
    #[error("restore: {0}")]
    Restore(#[from] snapshot::RestoreError),
    /// Socket set-up failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The configuration cannot be applied to the restored state.
    #[error("configuration: {0}")]
    Config(String),
    /// A pipeline stage failed (journal write, out-of-sequence command); the appliance stopped.
    #[error("pipeline stage failed: {0}")]
    Stage(String),
    /// The audit log fails its chain check or disagrees with the journal.
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// What a clean shutdown left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Last sequence number applied.
    pub last_seq: u64,
    /// The engine's state hash at shutdown.
    pub state_hash: u64,
    /// Sequence number of the final snapshot.
    pub snapshot_seq: u64,
}

/// Switches metrics recording on a running appliance's pipeline threads
/// ([`Appliance::metrics_switch`]); it may outlive the appliance.
#[derive(Clone)]
pub struct MetricsSwitch(Arc<Shared>);

impl MetricsSwitch {
    /// Recording on or off from the stages' next batch on.
    pub fn set(&self, on: bool) {
        self.0.metrics.set_recording(on);
    }
}

/// A running appliance.
pub struct Appliance {
    data_dir: PathBuf,
    local_addr: SocketAddr,
    fix_addr: Option<SocketAddr>,
    replication_addr: Option<SocketAddr>,
    feed_addrs: Option<(std::net::SocketAddrV4, Option<SocketAddr>)>,
    feed_snapshot_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    waker: Arc<mio::Waker>,
    io: Option<JoinHandle<Result<ShutdownReport, PipelineError>>>,
    restored_hash: u64,
    restored_seq: u64,
    credentials: Arc<crate::session::credentials::CredentialStore>,
    tls: Vec<Arc<crate::tls::TlsAcceptor>>,
    admin: Option<crate::admin::AdminServer>,
    desk: Arc<crate::admin::desk::Desk>,
}

impl Appliance {
    /// The bound order-entry address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound FIX address, if FIX is on.
    pub fn fix_addr(&self) -> Option<SocketAddr> {
        self.fix_addr
    }

    /// Highest sequence number in the journal's page cache (what a standby can have).
    pub fn written_seq(&self) -> u64 {
        self.shared.seq_written.load(Ordering::Acquire)
    }

    /// What the stages share (the fencer stops with the appliance).
    pub(crate) fn stop_flag(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// A handle that switches metrics recording on the pipeline threads on or off while they
    /// run (`[admin] metrics` sets it at start): the benchmarks alternate the two in one run.
    pub fn metrics_switch(&self) -> MetricsSwitch {
        MetricsSwitch(Arc::clone(&self.shared))
    }

    /// Replication lag so far (the journaler writing a record → the standby reporting it
    /// written, nanoseconds), once a standby has reported anything.
    pub fn replication_lag(&self) -> Option<hdrhistogram::Histogram<u64>> {
        self.shared.replication_lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// This node's leadership epoch.
    pub fn epoch(&self) -> u32 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// The bound admin port address, if the admin port runs (tokens configured).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr())
    }

    /// Role and fencing epoch, as the admin port reports them (fencing sets the epoch here).
    pub fn role(&self) -> &crate::admin::role::RoleState {
        &self.shared.role
    }

    /// The bound replication address, if replication is on.
    pub fn replication_addr(&self) -> Option<SocketAddr> {
        self.replication_addr
    }

    /// The market-data feed's multicast group and bound re-request address, if the feed is on.
    pub fn feed_addrs(&self) -> Option<(std::net::SocketAddrV4, Option<SocketAddr>)> {
        self.feed_addrs
    }

    /// The bound address of the feed's SoupBinTCP snapshot/replay port, if on.
    pub fn feed_snapshot_addr(&self) -> Option<SocketAddr> {
        self.feed_snapshot_addr
    }

    /// State hash and sequence number right after restore (before configuration commands).
    pub fn restored(&self) -> (u64, u64) {
        (self.restored_seq, self.restored_hash)
    }

    /// A handle that reads the pipeline's progress counters from any thread (the service
    /// watchdog's input).
    pub fn progress(&self) -> crate::service::ProgressProbe {
        crate::service::ProgressProbe::new(Arc::clone(&self.shared))
    }

    /// The session credentials the appliance runs with: `reload_file` swaps in the ones of a
    /// configuration file (SIGHUP, the admin port); live sessions keep running.
    pub fn credentials(&self) -> Arc<crate::session::credentials::CredentialStore> {
        Arc::clone(&self.credentials)
    }

    /// Re-reads the configuration file at `path` and swaps in its session credentials
    /// (SIGHUP; the admin port's reload): validated as a whole first, nothing changes if it is
    /// invalid; live sessions keep running, a changed password applies at its next logon. The
    /// TLS listeners re-read their certificate, key and client CA files (at the paths they
    /// started with): new connections get the new certificate.
    pub fn reload(
        &self,
        path: &Path,
    ) -> Result<crate::session::credentials::ReloadReport, crate::session::credentials::CredentialError> {
        crate::tls::reload_all(&self.tls);
        self.credentials.reload_file(path)
    }

    /// The operator desk: market actions from the admin port, reloads, the audit log.
    pub fn desk(&self) -> &Arc<crate::admin::desk::Desk> {
        &self.desk
    }

    /// Asks the appliance to stop (idempotent; signal-safe parts only: an atomic and a wake).
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        // A failed wake only delays the stop until the gateway thread's next timer tick.
        let _ = self.waker.wake();
    }

    /// Whether the appliance stopped on its own (a stage failed).
    pub fn is_finished(&self) -> bool {
        self.io.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Whether the admin port asked for a step-down (`POST /admin/step-down`) since the last
    /// call (the request is taken).
    pub fn take_step_down_request(&self) -> bool {
        self.shared.step_down_requested.swap(false, Ordering::AcqRel)
    }

    /// Whether a step-down could hand over now: a standby is attached.
    pub fn can_step_down(&self) -> Result<(), PipelineError> {
        if self.shared.standby_attached.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(PipelineError::Config("step-down: no standby is attached to take over".into()))
        }
    }

    /// A planned switchover (`step-down`): stops taking input, drains, waits until the standby
    /// holds every record, tells it to take over (it leads at the next epoch) and records in
    /// node-state that this node is superseded. Check [`Appliance::can_step_down`] first: if
    /// the standby cannot be told, this node has stopped all the same and says so.
    pub fn step_down(self) -> Result<ShutdownReport, PipelineError> {
        self.can_step_down()?;
        let (shared, epoch, data_dir) = (Arc::clone(&self.shared), self.epoch(), self.data_dir.clone());
        shared.handover.store(true, Ordering::Release);
        let report = self.shutdown()?;
        if !shared.handed_over.load(Ordering::Acquire) {
            return Err(PipelineError::Stage(
                "step-down: the standby was not told to take over; this node stopped".into(),
            ));
        }
        NodeState::update(&data_dir, |s| s.superseded_by = Some(epoch + 1))
            .map_err(|source| PipelineError::Io { what: "writing node-state", source })?;
        Ok(report)
    }

    /// Stops accepting, drains, takes the final snapshot and returns what it left.
    pub fn shutdown(mut self) -> Result<ShutdownReport, PipelineError> {
        self.request_stop();
        let handle = self.io.take().expect("the gateway thread handle is taken only here");
        handle.join().map_err(|_| PipelineError::Stage("the gateway thread panicked".into()))?
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(h) = self.io.take() {
            self.request_stop();
            let _ = h.join();
        }
    }
}

/// Where the per-session stores (sequence numbers, sent messages) live under the data directory.
pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sessions")
}

/// Where the journal lives under the data directory.
pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

/// Where the snapshots live under the data directory.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// Starts the appliance: restore, rings, stages, listeners, gateway thread.
///
/// Steps 1–7 (storage, restore, rings, journaler ∥ matcher, sequencer, publisher) are
/// [`build_core`]; the receiver, the replicator and the admin port are wired here, top to
/// bottom in numbered steps, so it reads as the pipeline's diagram does.
pub fn start(cfg: Validated) -> Result<Appliance, PipelineError> {
    start_from(cfg, None)
}

/// What a promoted standby hands its pipeline: its open journal (no re-scan of the active
/// segment) and the engine that applied it (no restore from disk).
pub(crate) struct Handover {
    pub(crate) engine: Engine,
    pub(crate) journal: Journal<journal::MmapStorage>,
}

/// [`start`], continuing from a [`Handover`] when given one.
pub(crate) fn start_from(cfg: Validated, handover: Option<Handover>) -> Result<Appliance, PipelineError> {
    // The session stores open beside steps 1–7 (each open reads its active segment; nothing
    // before step 8 needs them).
    let stores = spawn_store_opening(&cfg)?;
    let core = build_core(&cfg, None, handover)?;
    let Core { shared, wait, data_dir, store, sequencer, publisher, feed_thread, .. } = core;
    let p = &cfg.raw.pipeline;

    // 8. Receiver: listeners and sessions (each with its persistent store), on the gateway
    //    thread with the sequencer; the publisher runs there too, or on a thread of its own
    //    with `gateway_threads = 2`.
    let poll = mio::Poll::new().map_err(|source| PipelineError::Io { what: "creating the poller", source })?;
    let waker = Arc::new(
        mio::Waker::new(poll.registry(), WAKER)
            .map_err(|source| PipelineError::Io { what: "creating the waker", source })?,
    );
    let credentials = Arc::new(crate::session::credentials::CredentialStore::new(&cfg.raw));
    let stores =
        stores.join().unwrap_or_else(|_| Err(PipelineError::Stage("opening the session stores panicked".into())))?;
    let (protocols, local_addr, fix_addr) = listeners(&cfg, stores, &credentials)?;
    let tls = tls_acceptors(&cfg, fix_addr.is_some())?;
    let desk = Arc::new(crate::admin::desk::Desk::new(
        Arc::clone(&waker),
        core.audit,
        Arc::clone(&credentials),
        tls.iter().flatten().cloned().collect(),
        cfg.accounts.clone(),
        cfg.instruments.clone(),
    ));
    let receiver = Receiver::new(ReceiverParts {
        poll,
        waker: Arc::clone(&waker),
        protocols,
        sequencer,
        publisher,
        publisher_thread: p.gateway_threads == 2,
        shared: Arc::clone(&shared),
        wait,
        instruments: core.instruments,
        max_conns: cfg.raw.sessions_limits.max_connections,
        outbound_cap_bytes: cfg.raw.sessions_limits.outbound_buffer_bytes,
        logout_timeout: Duration::from_secs(u64::from(cfg.raw.fix.defaults.logout_timeout_s)),
        admin: core.admin,
        tls: tls.clone(),
        desk: Arc::clone(&desk),
        killed_sessions: core.killed_sessions,
    })
    .map_err(|source| PipelineError::Io { what: "registering the listeners", source })?;

    // 9. Replicator (with `[replication] listen`): streams the journal to a standby and, with a
    //    `replicated` policy, moves the durability gate.
    let (replicator, replication_addr) = replicator(&cfg, &data_dir, &shared, wait)?;
    let gateway_shared = Arc::clone(&shared);
    let handle = std::thread::Builder::new()
        .name("sable-gateway".into())
        .spawn(move || {
            let run = receiver.run();
            if let Some(r) = replicator {
                r.stop();
            }
            if let Some(f) = feed_thread {
                f.join();
            }
            run?;
            final_snapshot(&gateway_shared, &store)
        })
        .map_err(|source| PipelineError::Io { what: "spawning the gateway thread", source })?;

    // 10. Admin port (with tokens configured): health, metrics, dashboard, admin actions.
    let admin = admin_port(&cfg, &shared, Some(&desk))?;

    Ok(Appliance {
        data_dir,
        local_addr,
        fix_addr,
        replication_addr,
        feed_addrs: core.feed_addrs,
        feed_snapshot_addr: core.feed_snapshot_addr,
        shared,
        waker,
        io: Some(handle),
        restored_hash: core.restored_hash,
        restored_seq: core.restored_seq,
        credentials,
        tls: tls.into_iter().flatten().collect(),
        admin,
        desk,
    })
}

/// The stages behind the receiver, built and running (steps 1–7 of [`start`]): the journaler,
/// matcher and follower on their threads; the sequencer and the publisher for whoever drives
/// them (the receiver, or [`crate::harness`]).
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) wait: Wait,
    pub(crate) data_dir: PathBuf,
    pub(crate) store: SnapshotStore,
    pub(crate) sequencer: Sequencer<InputProducer, WallClock>,
    pub(crate) publisher: PublisherStage,
    pub(crate) feed_thread: Option<crate::stage::feed::FeedThread>,
    pub(crate) feed_addrs: Option<(std::net::SocketAddrV4, Option<SocketAddr>)>,
    pub(crate) feed_snapshot_addr: Option<SocketAddr>,
    /// Configuration commands to sequence before anything else.
    pub(crate) admin: Vec<engine::CommandBody>,
    pub(crate) audit: crate::audit::SharedAudit,
    pub(crate) killed_sessions: Vec<u64>,
    pub(crate) instruments: Vec<Option<engine::InstrumentSpec>>,
    pub(crate) restored_seq: u64,
    pub(crate) restored_hash: u64,
}

/// Steps 1–7 of [`start`]. With `matcher_gate`, the matcher thread waits on it before it
/// takes its first command (a benchmark fills the input ring first; nothing on the hot path).
/// `handed`: a promoted standby's journal and engine, taken instead of opening and restoring.
///
/// Longer than a screen on purpose: the data flow is wired here in numbered steps (each a few
/// lines; the details live in the helpers and the stage files).
pub(crate) fn build_core(
    cfg: &Validated,
    matcher_gate: Option<Arc<Barrier>>,
    handed: Option<Handover>,
) -> Result<Core, PipelineError> {
    let p = &cfg.raw.pipeline;
    let wait = Wait::from_config(p);
    let data_dir = cfg.raw.server.data_dir.clone();
    let shared = Arc::new(Shared::default());

    // 1. Storage: the journal (tail repair happens here) and the snapshot store.
    std::fs::create_dir_all(&data_dir).map_err(|source| PipelineError::Io { what: "creating the data dir", source })?;
    let journal_config = JournalConfig {
        segment_len_bytes: cfg.raw.journal.segment_len_bytes,
        // At `written` the journaler gives no write-back hints: each would clean pages the
        // writer maps writable, a TLB shootdown per page on the journaler's thread; full
        // segments are written back by the rollover thread once no writable mapping is left.
        writeback_hint_len_bytes: if p.durability.syncs() {
            JournalConfig::default().writeback_hint_len_bytes
        } else {
            0
        },
        ..JournalConfig::default()
    };
    let (mut journal, handed) = match handed {
        Some(Handover { mut journal, engine })
            if journal.config().segment_len_bytes == journal_config.segment_len_bytes =>
        {
            journal.set_writeback_hint_len_bytes(journal_config.writeback_hint_len_bytes)?;
            (journal, Some(engine))
        }
        _ => (Journal::open_dir(journal_dir(&data_dir), journal_config)?, None),
    };
    let store = SnapshotStore::open(snapshot_dir(&data_dir))?;
    let epoch = lead(&data_dir, &mut journal, p.durability)?;
    shared.epoch.store(epoch, Ordering::Release);
    shared.role.set_epoch(u64::from(epoch));

    // 2. Restore: newest usable snapshot + journal replay, or a promoted standby's engine
    //    when it applied exactly what the journal holds. Everything restored is durable.
    //    Beside it, the market-data feed (with `[feed] enabled`) is rebuilt by replaying the
    //    journal from 1 into an engine of its own, so it continues with the numbers and bytes
    //    an uninterrupted primary would send.
    let mut tail = crate::audit::TailCollector::default();
    let Restored { engine, replayed_from, feed, output: (out_poller, out_producer) } =
        restore_beside_feed(cfg, (&store, &journal), handed, &mut tail, wait)?;
    let (restored_seq, restored_hash, last_ts_ns) = (engine.seq(), engine.state_hash(), engine.now_ns());
    for position in [&shared.seq_durable, &shared.seq_written, &shared.seq_local, &shared.seq_replica] {
        position.store(restored_seq, Ordering::Release);
    }
    shared.needs_standby.store(p.durability.needs_standby(), Ordering::Release);
    shared.metrics.enabled.store(cfg.raw.admin.metrics, Ordering::Release);

    // 3. Configuration commands to sequence first: whatever brings the restored engine's
    //    instruments and accounts to what the file says.
    let admin = crate::reconcile::reconcile(&engine, cfg)?;
    let audit = open_audit(&data_dir, &journal, cfg, &engine, replayed_from, &tail.entries)?;
    let killed_sessions = engine.killed_sessions().to_vec();
    let order_terms = live_order_terms(&engine);
    // The follower's copy of the engine: saved here, loaded on the follower's thread.
    let follower_image = (cfg.raw.snapshot.every_commands > 0).then(|| engine.save());

    // 3b. Market-data feed: its own thread, fed by the publisher with released output only.
    let feed = crate::stage::feed::start(cfg, feed, &engine, &shared)?;
    let feed_addrs = feed.as_ref().map(|f| (f.group, f.rerequest));
    let feed_snapshot_addr = feed.as_ref().and_then(|f| f.snapshot);

    // 4. Output ring: matcher → publisher (allocated during step 2).

    // 5. Input ring: sequencer → {journaler ∥ matcher} → follower.
    let level = if p.durability.syncs() { Durability::Fsync } else { Durability::Written };
    let journaler = Journaler::new(journal, level, Arc::clone(&shared), p.input_ring_slots);
    let matcher = Matcher::new(engine, out_producer, wait, Arc::clone(&shared));
    let follower = match follower_image {
        Some(image) => {
            let retention = Retention { keep_last: cfg.raw.snapshot.keep_last, max_age_ns: None };
            let store = SnapshotStore::open(snapshot_dir(&data_dir))?;
            Some(FollowerSeed { image, store, every: cfg.raw.snapshot.every_commands, retention })
        }
        None => None,
    };
    let verify_every = if cfg.replication_listen.is_some() { cfg.raw.replication.verify_every_commands } else { 0 };
    let follower = (follower, verify_every, Arc::clone(&shared));
    let input = input_ring(cfg, wait, journaler, (matcher, matcher_gate), follower);

    // 6. Sequencer: stamps seq + timestamp once, after the restored journal's end.
    let sequencer = Sequencer::new(input, WallClock, restored_seq, last_ts_ns);

    // 7. Publisher: durability gate, exec ids, routes by account.
    let instruments = crate::reconcile::instrument_table(&cfg.instruments);
    let mut publisher = Publisher::new(
        p.durability == DurabilityPolicy::Memory,
        instruments.clone(),
        order_terms,
        cfg.limits.max_orders as usize,
        report_routes(cfg),
        restored_seq,
    );
    publisher.set_audit(audit.clone());
    let feed_thread = feed.map(|f| {
        publisher.set_feed(f.tap);
        f.thread
    });
    let publisher = PublisherStage::new(publisher, out_poller, Arc::clone(&shared));

    Ok(Core {
        shared,
        wait,
        data_dir,
        store,
        sequencer,
        publisher,
        feed_thread,
        feed_addrs,
        feed_snapshot_addr,
        admin,
        audit,
        killed_sessions,
        instruments,
        restored_seq,
        restored_hash,
    })
}

/// What step 2 leaves.
struct Restored {
    engine: Engine,
    /// The snapshot the restore started from (the engine's seq for a handed engine).
    replayed_from: u64,
    feed: Option<crate::stage::feed::Prepared>,
    /// The output ring's two ends.
    output: (crate::rings::OutputPoller, crate::rings::OutputProducer),
}

/// Step 2 of [`build_core`]: the restore (or the handed engine) on this thread while the
/// feed's journal replay runs on another (both only read the journal), then the output ring's
/// allocation (its page faults take tens of milliseconds at the default size) while the replay
/// finishes. Start-up is what a promotion waits for.
fn restore_beside_feed(
    cfg: &Validated,
    (store, journal): (&SnapshotStore, &Journal<journal::MmapStorage>),
    handed: Option<Engine>,
    tail: &mut crate::audit::TailCollector,
    wait: Wait,
) -> Result<Restored, PipelineError> {
    std::thread::scope(|scope| {
        let feed = std::thread::Builder::new()
            .name("sable-feed-rebuild".into())
            .spawn_scoped(scope, || crate::stage::feed::prepare(cfg, journal));
        let restored = match handed.filter(|e| e.seq() + 1 == journal.next_seq() && e.limits() == cfg.limits) {
            Some(engine) => {
                tracing::info!(seq = engine.seq(), "restored: the standby's engine, as it applied the journal");
                let seq = engine.seq();
                Ok((engine, seq))
            }
            None => restore(store, journal, cfg, tail),
        };
        let (poller, builder) =
            build_single_producer(cfg.raw.pipeline.output_ring_slots, OutSlot::default, wait).new_event_poller();
        let output = (poller, builder.build());
        let feed = match feed {
            Ok(handle) => {
                handle.join().unwrap_or_else(|_| Err(PipelineError::Stage("the feed rebuild panicked".into())))
            }
            // No thread to spare: rebuild here, after the restore.
            Err(_) => crate::stage::feed::prepare(cfg, journal),
        };
        let (engine, replayed_from) = restored?;
        Ok(Restored { engine, replayed_from, feed: feed?, output })
    })
}

/// Starts the admin port when tokens are configured (without a desk: no market actions).
pub(crate) fn admin_port(
    cfg: &Validated,
    shared: &Arc<Shared>,
    desk: Option<&Arc<crate::admin::desk::Desk>>,
) -> Result<Option<crate::admin::AdminServer>, PipelineError> {
    let section = &cfg.raw.admin;
    let tokens = section.resolve_tokens().map_err(|e| PipelineError::Config(e.to_string()))?;
    if tokens.is_empty() {
        tracing::info!("admin port off: no [admin] tokens configured");
        return Ok(None);
    }
    let addr = section.listen_addr().map_err(|e| PipelineError::Config(e.to_string()))?;
    let durability = format!("{:?}", cfg.raw.pipeline.durability).to_lowercase();
    let slots = cfg.raw.pipeline.input_ring_slots as u64;
    let mut ctx = crate::admin::AdminContext::new(
        Arc::clone(shared),
        tokens,
        slots,
        durability,
        cfg.replication_listen.is_some(),
    );
    ctx.follower = cfg.raw.snapshot.every_commands > 0;
    ctx.desk = desk.cloned();
    let server = crate::admin::AdminServer::start(addr, ctx)
        .map_err(|source| PipelineError::Io { what: "starting the admin port", source })?;
    Ok(Some(server))
}

/// Opens the audit log and reconciles it with the journal ([`crate::audit::open_at_start`]).
fn open_audit(
    data_dir: &Path,
    journal: &Journal<journal::MmapStorage>,
    cfg: &Validated,
    engine: &Engine,
    replayed_from: u64,
    tail: &[crate::audit::AuditEntry],
) -> Result<crate::audit::SharedAudit, PipelineError> {
    let at = crate::audit::Restored { journal, limits: cfg.limits, engine, replayed_from, tail };
    Ok(crate::audit::SharedAudit::new(crate::audit::open_at_start(data_dir, &at)?))
}

fn restore(
    store: &SnapshotStore,
    journal: &Journal<journal::MmapStorage>,
    cfg: &Validated,
    tail: &mut crate::audit::TailCollector,
) -> Result<(Engine, u64), PipelineError> {
    let (engine, report) =
        snapshot::restore_observed(Some(store), journal, cfg.limits, &mut |cmd, events| tail.observe(cmd, events))?;
    tracing::info!(
        snapshot = ?report.snapshot.as_ref().map(|s| s.seq),
        replayed = report.replayed,
        seq = engine.seq(),
        state_hash = format_args!("{:016x}", engine.state_hash()),
        "restored"
    );
    for (seq, why) in &report.skipped {
        tracing::warn!(seq, why, "snapshot skipped");
    }
    Ok((engine, report.snapshot.map_or(0, |s| s.seq)))
}

/// The input ring with its consumers: journaler ∥ matcher (pinned when configured), then the
/// follower, which only takes snapshots and sleeps between batches instead of competing with
/// the matcher for a core on every command.
fn input_ring(
    cfg: &Validated,
    wait: Wait,
    journaler: Journaler,
    (matcher, gate): (Matcher, Option<Arc<Barrier>>),
    (follower, verify_every, shared): (Option<FollowerSeed>, u64, Arc<Shared>),
) -> InputProducer {
    let p = &cfg.raw.pipeline;
    let builder = build_single_producer(p.input_ring_slots, Slot::default, wait)
        .thread_name("sable-journal")
        .handle_events_and_state_with(
            |j: &mut Journaler, slot: &Slot, _seq, end_of_batch| j.on_slot(slot, end_of_batch),
            move || journaler,
        );
    let builder = match p.matcher_core {
        Some(core) => builder.pin_at_core(core),
        None => builder,
    };
    builder
        .thread_name("sable-matcher")
        .handle_events_and_state_with(
            |m: &mut Matcher, slot: &Slot, _seq, end_of_batch| m.on_slot(slot, end_of_batch),
            move || {
                if let Some(gate) = gate {
                    gate.wait();
                }
                matcher
            },
        )
        .and_then()
        .thread_name("sable-follower")
        .handle_events_and_state_with_wait_strategy(
            |f: &mut FollowerStage, slot: &Slot, _seq, _end| f.follow(slot),
            move || FollowerStage { follower: follower.and_then(|f| f.load(&shared)), verify_every, shared },
            Wait::Sleep(FOLLOWER_SLEEP),
        )
        .build()
}

/// What the follower starts from: the restored engine's image, loaded on the follower's own
/// thread (a full-capacity engine takes tens of milliseconds to build; start-up and promotion
/// do not wait for it).
struct FollowerSeed {
    image: Vec<u8>,
    store: SnapshotStore,
    every: u64,
    retention: Retention,
}

impl FollowerSeed {
    /// The follower, or none (logged and counted as a snapshot failure) if the image does not
    /// load: the appliance runs on without periodic snapshots, as after a follower's failure.
    fn load(self, shared: &Shared) -> Option<Follower> {
        match Engine::load(&self.image) {
            Ok(engine) => Some(Follower::new(engine, self.store, self.every, self.retention)),
            Err(e) => {
                shared.metrics.snapshots.failures.add(1);
                tracing::error!(error = %e, "copying the engine for the follower failed; no periodic snapshots or state hashes");
                None
            }
        }
    }
}

/// The snapshot follower's place in the input ring; with replication it also hashes its
/// engine every `verify_every` commands for the standby to compare (off the matcher's thread).
struct FollowerStage {
    follower: Option<Follower>,
    verify_every: u64,
    shared: Arc<Shared>,
}

impl FollowerStage {
    fn follow(&mut self, slot: &Slot) {
        let Some(follower) = self.follower.as_mut() else { return };
        let snapshots = &self.shared.metrics.snapshots;
        match follower.apply(&slot.command) {
            Ok(Some(info)) => {
                snapshots.written.add(1);
                snapshots.last_seq.set(info.seq);
                tracing::info!(seq = info.seq, "periodic snapshot written");
            }
            Ok(None) => {}
            Err(e) => {
                snapshots.failures.add(1);
                tracing::error!(error = %e, "follower stopped; no more periodic snapshots or state hashes");
                self.follower = None;
                return;
            }
        }
        if self.shared.snapshot_requested.swap(false, Ordering::AcqRel) {
            crate::admin::actions::take_requested_snapshot(follower, snapshots);
        }
        let seq = slot.command.seq;
        if self.verify_every > 0 && seq.is_multiple_of(self.verify_every) {
            let hash = follower.engine().state_hash();
            let mut hashes = self.shared.state_hashes.lock().unwrap_or_else(|p| p.into_inner());
            if hashes.len() == crate::replication::HASHES_KEPT {
                hashes.pop_front();
            }
            hashes.push_back((seq, hash));
        }
    }
}

/// Takes the lead at this node's epoch (`replication/fence.rs`): refused when a newer primary
/// superseded this node; the journal writes its records at the epoch; under a policy that
/// acknowledges without a standby, node-state records from where that starts.
fn lead(
    data_dir: &Path,
    journal: &mut Journal<journal::MmapStorage>,
    policy: DurabilityPolicy,
) -> Result<u32, PipelineError> {
    let io = |source| PipelineError::Io { what: "reading or writing node-state", source };
    let state = NodeState::load(data_dir).map_err(io)?;
    if let Some(newer) = state.superseded_by {
        return Err(PipelineError::Config(format!(
            "this node was superseded by a primary at epoch {newer} (its own: {}); it must rejoin as a standby (`sable standby`) and be promoted to lead again",
            state.epoch
        )));
    }
    let epoch = state.epoch.max(journal.epoch());
    journal.set_epoch(epoch)?;
    let local_acks_from = if policy.needs_standby() {
        state.local_acks_from
    } else {
        Some(state.local_acks_from.unwrap_or(journal.next_seq()))
    };
    let next = NodeState { epoch, local_acks_from, superseded_by: None };
    if next != state {
        next.store(data_dir).map_err(io)?;
    }
    tracing::info!(epoch, "leading");
    Ok(epoch)
}

/// Binds the replication port and starts the replicator, when configured.
fn replicator(
    cfg: &Validated,
    data_dir: &Path,
    shared: &Arc<Shared>,
    wait: Wait,
) -> Result<(Option<ReplicatorThread>, Option<SocketAddr>), PipelineError> {
    let Some(addr) = cfg.replication_listen else { return Ok((None, None)) };
    let io = |what| move |source| PipelineError::Io { what, source };
    let listener = std::net::TcpListener::bind(addr).map_err(io("binding the replication address"))?;
    let bound = listener.local_addr().map_err(io("binding the replication address"))?;
    let r = &cfg.raw.replication;
    let policy = cfg.raw.pipeline.durability;
    let gate = policy.needs_standby().then(|| Gate {
        synced: policy.syncs(),
        timeout: Duration::from_millis(r.standby_timeout_ms),
        loss: r.on_standby_loss,
    });
    let replicator = Replicator::new(
        listener,
        (journal_dir(data_dir), sessions_dir(data_dir)),
        Arc::clone(shared),
        r.verify_every_commands,
        gate,
    )
    .map_err(io("setting up the replication port"))?;
    let thread = ReplicatorThread::spawn(replicator, wait).map_err(io("spawning the replicator"))?;
    tracing::info!(addr = %bound, durability = ?policy, "replication listening");
    Ok((Some(thread), Some(bound)))
}

/// The sessions configured for each account, as the publisher routes reports.
fn report_routes(cfg: &Validated) -> IdMap<u32, Vec<SessionRef>> {
    let mut routes: IdMap<u32, Vec<SessionRef>> = IdMap::default();
    let sbe = cfg.raw.sessions.iter().enumerate().map(|(index, s)| (SessionRef { protocol: SBE, index }, &s.accounts));
    // With FIX off (`fix.listen = ""`) there is no FIX protocol to route to.
    let fix_sessions = if cfg.fix_listen.is_some() { &cfg.raw.fix_sessions[..] } else { &[] };
    let fix = fix_sessions.iter().enumerate().map(|(index, s)| (SessionRef { protocol: FIX, index }, &s.accounts));
    for (session, accounts) in sbe.chain(fix) {
        for a in accounts {
            routes.entry(*a).or_default().push(session);
        }
    }
    routes
}

type Listeners = (Vec<(mio::net::TcpListener, Box<dyn Protocol + Send>)>, SocketAddr, Option<SocketAddr>);

/// Opens every session store the configuration names ([`open_stores`]) on a thread of its own.
fn spawn_store_opening(cfg: &Validated) -> Result<JoinHandle<Result<Vec<SessionStore>, PipelineError>>, PipelineError> {
    let cfg = cfg.clone();
    std::thread::Builder::new()
        .name("sable-store-open".into())
        .spawn(move || session_stores(&cfg))
        .map_err(|source| PipelineError::Io { what: "spawning the store opener", source })
}

/// The sessions' stores, in [`store_names`] order (the sessions dir made if missing).
pub(crate) fn session_stores(cfg: &Validated) -> Result<Vec<SessionStore>, PipelineError> {
    let dir = sessions_dir(&cfg.raw.server.data_dir);
    std::fs::create_dir_all(&dir).map_err(|source| PipelineError::Io { what: "creating the sessions dir", source })?;
    open_stores(&dir, cfg)
}

/// Binds each protocol's listener and gives it its sessions with their `stores`
/// ([`session_stores`]): SBE first, then FIX when configured.
pub(crate) fn listeners(
    cfg: &Validated,
    stores: Vec<SessionStore>,
    credentials: &Arc<crate::session::credentials::CredentialStore>,
) -> Result<Listeners, PipelineError> {
    let limits = &cfg.raw.sessions_limits;
    let max_conns = limits.max_connections;
    let mut stores = stores.into_iter();
    let sbe_stores: Vec<_> = stores.by_ref().take(cfg.raw.sessions.len()).collect();
    let sbe = SbeSessions::new(cfg.raw.sessions.clone(), limits.clone(), sbe_stores, max_conns)
        .with_credentials(Arc::clone(credentials));
    let (listener, local_addr) = bind(cfg.listen, "binding the listen address")?;
    tracing::info!(%local_addr, durability = ?cfg.raw.pipeline.durability, "listening");
    let mut protocols: Vec<(mio::net::TcpListener, Box<dyn Protocol + Send>)> = vec![(listener, Box::new(sbe))];
    let Some(addr) = cfg.fix_listen else { return Ok((protocols, local_addr, None)) };
    let mut fix_sessions = Vec::with_capacity(cfg.raw.fix_sessions.len());
    for ((fc, settings), store) in cfg.raw.fix_sessions.iter().zip(&cfg.fix_settings).zip(stores) {
        fix_sessions.push(crate::fix::session::FixSession::new(fc, *settings, store));
    }
    let comp_ids = cfg.raw.fix_sessions.iter().map(|f| (f.sender_comp_id.clone(), f.target_comp_id.clone())).collect();
    let dictionary = crate::fix::dictionary::Dictionary::sable();
    let logon_timeout_s = cfg.raw.fix.defaults.logon_timeout_s;
    let guard = cfg.raw.sessions_limits.logon_guard();
    let fix = FixSessions::new(fix_sessions, comp_ids, dictionary, max_conns, logon_timeout_s, guard)
        .with_credentials(Arc::clone(credentials));
    let (fix_listener, fix_addr) = bind(addr, "binding the FIX listen address")?;
    tracing::info!(addr = %fix_addr, "FIX listening");
    protocols.push((fix_listener, Box::new(fix)));
    Ok((protocols, local_addr, Some(fix_addr)))
}

/// The TLS configuration of each listener, in listener order (SBE, then FIX when on).
fn tls_acceptors(cfg: &Validated, fix_on: bool) -> Result<Vec<Option<Arc<crate::tls::TlsAcceptor>>>, PipelineError> {
    let load = |name: &'static str, tls: &Option<crate::tls::TlsConfig>| {
        tls.as_ref()
            .map(|t| crate::tls::TlsAcceptor::load(name, t).map(Arc::new))
            .transpose()
            .map_err(|e| PipelineError::Config(format!("{name}.tls: {e}")))
    };
    let mut acceptors = vec![load("server", &cfg.raw.server.tls)?];
    if fix_on {
        acceptors.push(load("fix", &cfg.raw.fix.tls)?);
    }
    Ok(acceptors)
}

/// The store name of SBE session `session_id`.
fn sbe_store_name(session_id: u64) -> String {
    format!("sbe-{session_id}")
}

/// The session stores the configuration names: SBE sessions, then FIX sessions.
pub(crate) fn store_names(cfg: &Validated) -> Vec<String> {
    let sbe = cfg.raw.sessions.iter().map(|s| sbe_store_name(s.session_id));
    sbe.chain(cfg.raw.fix_sessions.iter().map(|f| f.store_name())).collect()
}

/// Every session store the configuration names (FIX ones only with FIX on), in
/// [`store_names`] order, opened on up to
/// [`MAX_PARALLEL_STORE_OPENS`] threads: opening one checks its whole active segment (a
/// promotion waits for all of them).
fn open_stores(dir: &Path, cfg: &Validated) -> Result<Vec<SessionStore>, PipelineError> {
    let mut names = store_names(cfg);
    if cfg.fix_listen.is_none() {
        names.truncate(cfg.raw.sessions.len());
    }
    let chunk = names.len().div_ceil(MAX_PARALLEL_STORE_OPENS).max(1);
    let opened: Vec<Result<Vec<SessionStore>, PipelineError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(chunk)
            .map(|names| scope.spawn(move || names.iter().map(|n| open_store(dir, n, cfg)).collect()))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(PipelineError::Stage("opening a session store panicked".into()))))
            .collect()
    });
    let mut stores = Vec::with_capacity(names.len());
    for chunk in opened {
        stores.extend(chunk?);
    }
    Ok(stores)
}

fn open_store(dir: &Path, name: &str, cfg: &Validated) -> Result<SessionStore, PipelineError> {
    let store = SessionStore::open(dir, name, cfg.raw.sessions_limits.store_limits())
        .map_err(|e| PipelineError::Stage(format!("session store {name}: {e}")))?;
    tracing::info!(
        session = name,
        next_in = store.next_target_seq(),
        next_out = store.next_sender_seq(),
        "session store opened"
    );
    Ok(store)
}

fn bind(addr: SocketAddr, what: &'static str) -> Result<(mio::net::TcpListener, SocketAddr), PipelineError> {
    let listener = mio::net::TcpListener::bind(addr).map_err(|source| PipelineError::Io { what, source })?;
    let local = listener.local_addr().map_err(|source| PipelineError::Io { what, source })?;
    Ok((listener, local))
}

/// After the stages joined: the final snapshot from the matcher's engine.
fn final_snapshot(shared: &Shared, store: &SnapshotStore) -> Result<ShutdownReport, PipelineError> {
    let engine = shared
        .engine_back
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| PipelineError::Stage("the matcher did not hand its engine back".into()))?;
    let now = crate::stage::sequencer::Clock::now_ns(&WallClock);
    let info = store.write(&engine, now)?;
    let report = ShutdownReport { last_seq: engine.seq(), state_hash: engine.state_hash(), snapshot_seq: info.seq };
    tracing::info!(
        seq = report.last_seq,
        state_hash = format_args!("{:016x}", report.state_hash),
        "final snapshot written; stopped"
    );
    Ok(report)
}

/// Terms of every live order of a restored engine, so trades against them can be reported.
fn live_order_terms(engine: &Engine) -> IdMap<u64, OrderTerms> {
    let mut terms = IdMap::default();
    let ids: Vec<InstrumentId> = engine.instrument_ids().collect();
    for id in ids {
        for side in [Side::Buy, Side::Sell] {
            for stops in [false, true] {
                for v in engine.orders_in_priority(id, side, stops) {
                    let v: OrderView = v;
                    terms.insert(v.id.0, OrderTerms::from(&v));
                }
            }
        }
    }
    terms
}

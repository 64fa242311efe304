//! The appliance's pipeline, wired in one function ([`start`]) so the data flow reads top to
//! bottom:
//!
//! ```text
//! gateway I/O thread (mio) ─ sequence + timestamp ─► input ring ─┬─► journaler: append, commit per batch,
//!   ▲    (also the publisher)                                     │     publish seq_durable
//!   │                                                             ├─► matcher (pinned): Engine::apply,
//!   │                                                             │     events ─► output ring
//!   │                                                             └─(after both)─► follower: snapshots
//!   └──── publisher: output ring, released once seq ≤ seq_durable (per policy), SBE-encoded,
//!         routed by account to the sessions' bounded outbound buffers
//! ```
//!
//! The matcher never does I/O, reads no clock, takes no lock and formats no log line: a broken
//! input contract (out-of-sequence command) is flagged in an atomic for the I/O thread to report.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use disruptor::{
    EventPoller, ProcessorSettings, Producer, SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
    build_single_producer,
};
use engine::{Command, CommandBody, Engine, Event, EventSink, InstrumentId, InstrumentSpec, OrderView, Side};
use journal::{Durability, Journal, JournalConfig, MmapStorage};
use snapshot::{Follower, Retention, SnapshotStore};

use crate::config::{DurabilityPolicy, Validated};
use crate::sbe::convert::OrderTerms;
use crate::server::IoThread;
use crate::wait::Wait;

/// Session index of commands the appliance issues itself (configuration, not a client).
pub const ADMIN_ORIGIN: u32 = u32::MAX;

/// How long the snapshot follower sleeps when it has caught up (it is never on the ack path).
const FOLLOWER_SLEEP: std::time::Duration = std::time::Duration::from_millis(1);

/// One input ring slot: a sequenced command and who sent it.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// Index of the originating session in the configuration, or [`ADMIN_ORIGIN`].
    pub origin: u32,
    /// The command; `command.seq` and `command.ts_ns` were stamped once by the sequencer.
    pub command: Command,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { origin: ADMIN_ORIGIN, command: Command { seq: 0, ts_ns: 0, body: CommandBody::Tick } }
    }
}

/// What an output slot carries.
#[derive(Clone, Copy, Debug)]
pub enum OutItem {
    /// One engine event of the command.
    Event(Event),
    /// The command is fully applied (last slot of every command).
    Done,
}

/// One output ring slot: an engine event tagged with the input it came from.
#[derive(Clone, Copy, Debug)]
pub struct OutSlot {
    /// Input sequence number.
    pub seq: u64,
    /// Input timestamp.
    pub ts_ns: u64,
    /// Originating session index.
    pub origin: u32,
    /// The command's body (rejects need the request's terms).
    pub request: CommandBody,
    /// The event, or the end-of-command marker.
    pub item: OutItem,
}

impl Default for OutSlot {
    fn default() -> Self {
        OutSlot { seq: 0, ts_ns: 0, origin: ADMIN_ORIGIN, request: CommandBody::Tick, item: OutItem::Done }
    }
}

/// The output ring's consumer end, polled by the I/O thread.
pub type OutputPoller = EventPoller<OutSlot, SingleProducerBarrier>;

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
}

/// Shared state between the stages and the I/O thread (atomics only on the hot path).
#[derive(Default)]
pub struct Shared {
    /// Highest sequence number durable at the configured policy's level (journaler writes).
    pub seq_durable: AtomicU64,
    /// Set by the owner to stop the appliance.
    pub stop: AtomicBool,
    /// Set by a stage that failed; the I/O thread reads `failure` and stops.
    pub failed: AtomicBool,
    /// What failed (written once, off the hot path).
    pub failure: Mutex<Option<String>>,
    /// The matcher's engine, handed back when the matcher thread ends.
    pub engine_back: Mutex<Option<Engine>>,
}

impl Shared {
    fn fail(&self, what: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(what);
        }
        self.failed.store(true, Ordering::Release);
    }
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

/// A running appliance.
pub struct Appliance {
    local_addr: SocketAddr,
    fix_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    waker: Arc<mio::Waker>,
    io: Option<JoinHandle<Result<ShutdownReport, PipelineError>>>,
    restored_hash: u64,
    restored_seq: u64,
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

    /// State hash and sequence number right after restore (before configuration commands).
    pub fn restored(&self) -> (u64, u64) {
        (self.restored_seq, self.restored_hash)
    }

    /// Asks the appliance to stop (idempotent; signal-safe parts only: an atomic and a wake).
    pub fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        // A failed wake only delays the stop until the I/O thread's next timer tick.
        let _ = self.waker.wake();
    }

    /// Whether the appliance stopped on its own (a stage failed).
    pub fn is_finished(&self) -> bool {
        self.io.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops accepting, drains, takes the final snapshot and returns what it left.
    pub fn shutdown(mut self) -> Result<ShutdownReport, PipelineError> {
        self.request_stop();
        let handle = self.io.take().expect("the I/O thread handle is taken only here");
        handle.join().map_err(|_| PipelineError::Stage("the I/O thread panicked".into()))?
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
pub fn sessions_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("sessions")
}

/// Where the journal lives under the data directory.
pub fn journal_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("journal")
}

/// Where the snapshots live under the data directory.
pub fn snapshot_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The journaler's state, living on its own thread.
struct Journaler {
    journal: Journal<MmapStorage>,
    level: Durability,
    shared: Arc<Shared>,
    buf: [u8; Command::MAX_ENCODED_LEN],
    dead: bool,
}

impl Journaler {
    fn on_slot(&mut self, slot: &Slot, end_of_batch: bool) {
        if self.dead {
            return;
        }
        let cmd = &slot.command;
        let res = match cmd.encode(&mut self.buf) {
            Ok(bytes) => {
                self.journal.append(cmd.seq, cmd.ts_ns, Command::RECORD_KIND, bytes).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let res = res.and_then(|()| {
            if end_of_batch {
                self.journal.commit(self.level).map_err(|e| e.to_string())?;
                let durable = match self.level {
                    Durability::Written => self.journal.written_seq(),
                    Durability::Fsync => self.journal.synced_seq(),
                };
                self.shared.seq_durable.store(durable, Ordering::Release);
            }
            Ok(())
        });
        if let Err(e) = res {
            self.dead = true;
            self.shared.fail(format!("journal write of seq {}: {e}", cmd.seq));
        }
    }
}

/// The matcher's state, living on its own (pinned) thread.
struct Matcher {
    engine: Option<Engine>,
    /// Commands of the current batch seen but not applied yet (at most [`engine::LOOKAHEAD`]): a command
    /// is applied once the matcher has seen the ones after it, or at the end of the batch, so
    /// the engine can start loading their memory while it works ([`Engine::prefetch`]). Every
    /// command of a batch is already in the ring, so holding one back adds no waiting.
    held: VecDeque<Slot>,
    out: SingleProducer<OutSlot, SingleConsumerBarrier>,
    wait: Wait,
    shared: Arc<Shared>,
    dead: bool,
}

/// Streams a command's events into the output ring as the engine produces them.
struct OutSink<'a> {
    out: &'a mut SingleProducer<OutSlot, SingleConsumerBarrier>,
    wait: Wait,
    template: OutSlot,
}

impl OutSink<'_> {
    fn put(&mut self, item: OutItem) {
        let slot = OutSlot { item, ..self.template };
        let mut rounds = 0u32;
        // The publisher (I/O thread) never waits on the matcher, so this ends.
        while self.out.try_publish(|s| *s = slot).is_err() {
            self.wait.idle(rounds);
            rounds = rounds.saturating_add(1);
        }
    }
}

impl EventSink for OutSink<'_> {
    #[inline]
    fn push(&mut self, event: Event) {
        self.put(OutItem::Event(event));
    }
}

impl Matcher {
    fn on_slot(&mut self, slot: &Slot, end_of_batch: bool) {
        if self.held.is_empty() && (end_of_batch || !self.engine.as_ref().is_some_and(Engine::looks_ahead)) {
            // A batch of one (an idle market), or an engine too small to gain from hints:
            // nothing to overlap with, no detour.
            return self.apply(slot);
        }
        self.held.push_back(*slot);
        while self.held.len() > engine::LOOKAHEAD || (end_of_batch && !self.held.is_empty()) {
            let current = self.held.pop_front().expect("not empty");
            if let Some(engine) = &self.engine {
                for (i, next) in self.held.iter().enumerate() {
                    engine.prefetch(&next.command, i + 1);
                }
            }
            self.apply(&current);
        }
    }

    fn apply(&mut self, slot: &Slot) {
        let Some(engine) = self.engine.as_mut() else { return };
        if self.dead {
            return;
        }
        let cmd = &slot.command;
        let template =
            OutSlot { seq: cmd.seq, ts_ns: cmd.ts_ns, origin: slot.origin, request: cmd.body, item: OutItem::Done };
        let mut sink = OutSink { out: &mut self.out, wait: self.wait, template };
        if let Err(e) = engine.apply(cmd, &mut sink) {
            self.dead = true;
            // Formatting happens here only once, on a fatal pipeline bug.
            self.shared.fail(format!("matcher: {e}"));
        }
        sink.put(OutItem::Done);
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        // Every batch ends with `end_of_batch`, which applies what was held, and the processor
        // stops only between batches. Were a command still held, it would be journaled and not
        // yet answered: a restart replays it, so nothing acknowledged is lost (applying it here
        // could block on an output ring nobody drains any more).
        debug_assert!(self.held.is_empty(), "matcher stopped with {} commands held", self.held.len());
        if let Some(engine) = self.engine.take() {
            *self.shared.engine_back.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
        }
    }
}

fn clone_engine(engine: &Engine) -> Result<Engine, PipelineError> {
    Engine::load(&engine.save()).map_err(|e| PipelineError::Stage(format!("copying the engine for the follower: {e}")))
}

/// Terms of every live order of a restored engine, so trades against them can be reported.
fn live_order_terms(engine: &Engine) -> HashMap<u64, OrderTerms> {
    let mut terms = HashMap::new();
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

/// Starts the appliance: restore, rings, stages, listener, I/O thread.
pub fn start(cfg: Validated) -> Result<Appliance, PipelineError> {
    let p = &cfg.raw.pipeline;
    let wait = Wait::from_config(p);
    let data_dir = cfg.raw.server.data_dir.clone();
    let shared = Arc::new(Shared::default());

    // 1. Storage: the journal (tail repair happens here) and the snapshot store.
    std::fs::create_dir_all(&data_dir).map_err(|source| PipelineError::Io { what: "creating the data dir", source })?;
    let journal_config =
        JournalConfig { segment_len_bytes: cfg.raw.journal.segment_len_bytes, ..JournalConfig::default() };
    let journal = Journal::open_dir(journal_dir(&data_dir), journal_config)?;
    let store = SnapshotStore::open(snapshot_dir(&data_dir))?;

    // 2. Restore: newest usable snapshot + journal replay. Everything restored is durable.
    let (engine, report) = snapshot::restore(Some(&store), &journal, cfg.limits)?;
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
    let restored_seq = engine.seq();
    let restored_hash = engine.state_hash();
    shared.seq_durable.store(restored_seq, Ordering::Release);

    // 3. Configuration commands to sequence first: whatever brings the restored engine's
    //    instruments and accounts to what the file says.
    let admin = reconcile(&engine, &cfg)?;
    let order_terms = live_order_terms(&engine);
    let follower_engine = if cfg.raw.snapshot.every_commands > 0 { Some(clone_engine(&engine)?) } else { None };
    let last_ts_ns = engine.now_ns();

    // 4. Output ring: matcher → publisher. The I/O thread polls it; the matcher publishes.
    let (out_poller, out_builder) =
        build_single_producer(p.output_ring_slots, OutSlot::default, wait).new_event_poller();
    let out_producer = out_builder.build();

    // 5. Input ring: sequencer → {journaler ∥ matcher} → follower.
    let level = match p.durability {
        DurabilityPolicy::Fsync => Durability::Fsync,
        DurabilityPolicy::Memory | DurabilityPolicy::Written => Durability::Written,
    };
    let journaler_shared = Arc::clone(&shared);
    let matcher_shared = Arc::clone(&shared);
    let retention = Retention { keep_last: cfg.raw.snapshot.keep_last, max_age_ns: None };
    let every = cfg.raw.snapshot.every_commands;
    let follower_store = SnapshotStore::open(snapshot_dir(&data_dir))?;
    let builder = build_single_producer(p.input_ring_slots, Slot::default, wait)
        .thread_name("sable-journal")
        .handle_events_and_state_with(
            |j: &mut Journaler, slot: &Slot, _seq, end_of_batch| j.on_slot(slot, end_of_batch),
            move || Journaler {
                journal,
                level,
                shared: journaler_shared,
                buf: [0; Command::MAX_ENCODED_LEN],
                dead: false,
            },
        );
    let builder = match p.matcher_core {
        Some(core) => builder.pin_at_core(core),
        None => builder,
    };
    let input = builder
        .thread_name("sable-matcher")
        .handle_events_and_state_with(
            |m: &mut Matcher, slot: &Slot, _seq, end_of_batch| m.on_slot(slot, end_of_batch),
            move || Matcher {
                engine: Some(engine),
                held: VecDeque::with_capacity(engine::LOOKAHEAD + 1),
                out: out_producer,
                wait,
                shared: matcher_shared,
                dead: false,
            },
        )
        .and_then()
        .thread_name("sable-follower")
        // The follower only takes snapshots: nothing waits on it but a full ring, so it sleeps
        // between batches instead of competing with the matcher for a core on every command.
        .handle_events_and_state_with_wait_strategy(
            |f: &mut Option<Follower>, slot: &Slot, _seq, _end| {
                let Some(follower) = f.as_mut() else { return };
                match follower.apply(&slot.command) {
                    Ok(Some(info)) => tracing::info!(seq = info.seq, "periodic snapshot written"),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "follower stopped; no more periodic snapshots");
                        *f = None;
                    }
                }
            },
            move || follower_engine.map(|e| Follower::new(e, follower_store, every, retention)),
            Wait::Sleep(FOLLOWER_SLEEP),
        )
        .build();

    // 6. Listener and the gateway I/O thread (sessions + sequencer + publisher).
    let poll = mio::Poll::new().map_err(|source| PipelineError::Io { what: "creating the poller", source })?;
    let waker = Arc::new(
        mio::Waker::new(poll.registry(), crate::server::WAKER)
            .map_err(|source| PipelineError::Io { what: "creating the waker", source })?,
    );
    let listener = mio::net::TcpListener::bind(cfg.listen)
        .map_err(|source| PipelineError::Io { what: "binding the listen address", source })?;
    let local_addr =
        listener.local_addr().map_err(|source| PipelineError::Io { what: "reading the listen address", source })?;
    tracing::info!(%local_addr, durability = ?p.durability, wait = ?wait, "listening");

    // 7. Sessions: a persistent store per configured session (sequence numbers and sent
    //    messages, so clients resume after a restart), the FIX data dictionary, one FIX
    //    session per configured CompID pair, and the FIX listener.
    let dictionary = crate::fix::dictionary::Dictionary::sable();
    let sessions_dir = sessions_dir(&data_dir);
    std::fs::create_dir_all(&sessions_dir)
        .map_err(|source| PipelineError::Io { what: "creating the sessions dir", source })?;
    let mut fix_sessions = Vec::with_capacity(cfg.raw.fix_sessions.len());
    for (fc, settings) in cfg.raw.fix_sessions.iter().zip(&cfg.fix_settings) {
        let store =
            crate::store::SessionStore::open(&sessions_dir, &fc.store_name(), cfg.raw.sessions_limits.store_limits())
                .map_err(|e| PipelineError::Stage(format!("session store {}: {e}", fc.store_name())))?;
        tracing::info!(
            session = %fc.store_name(),
            next_in = store.next_target_seq(),
            next_out = store.next_sender_seq(),
            "FIX session store opened"
        );
        fix_sessions.push(crate::fix::session::FixSession::new(fc, *settings, store));
    }
    let mut sbe_stores = Vec::with_capacity(cfg.raw.sessions.len());
    for sc in &cfg.raw.sessions {
        let name = format!("sbe-{}", sc.session_id);
        let store = crate::store::SessionStore::open(&sessions_dir, &name, cfg.raw.sessions_limits.store_limits())
            .map_err(|e| PipelineError::Stage(format!("session store {name}: {e}")))?;
        sbe_stores.push(store);
    }
    let fix_listener = match cfg.fix_listen {
        Some(addr) => Some(
            mio::net::TcpListener::bind(addr)
                .map_err(|source| PipelineError::Io { what: "binding the FIX listen address", source })?,
        ),
        None => None,
    };
    let fix_addr = match &fix_listener {
        Some(l) => Some(
            l.local_addr().map_err(|source| PipelineError::Io { what: "reading the FIX listen address", source })?,
        ),
        None => None,
    };
    if let Some(addr) = fix_addr {
        tracing::info!(%addr, "FIX listening");
    }

    let io = IoThread::new(crate::server::IoParts {
        cfg,
        poll,
        listener,
        input,
        out_poller,
        shared: Arc::clone(&shared),
        wait,
        next_seq: restored_seq + 1,
        last_ts_ns,
        order_terms,
        store,
        admin,
        fix_listener,
        fix_sessions,
        dictionary,
        sbe_stores,
    })
    .map_err(|source| PipelineError::Io { what: "registering the listener", source })?;
    let handle = std::thread::Builder::new()
        .name("sable-gateway".into())
        .spawn(move || io.run())
        .map_err(|source| PipelineError::Io { what: "spawning the I/O thread", source })?;

    Ok(Appliance { local_addr, fix_addr, shared, waker, io: Some(handle), restored_hash, restored_seq })
}

/// The configuration commands that bring a restored engine to the file's instruments and
/// accounts, sequenced and journaled before any client's command (so a replay sees them too):
///
/// - an instrument the engine lacks is added; one whose spec differs is updated, keeping its
///   trading status (a halt or close is market state set by command, not configuration);
/// - an account the engine lacks, or whose stp group, default mode or risk limits differ, is
///   upserted (its open orders and exposure stay);
/// - instruments and accounts the engine has but the file does not name are left as they are,
///   with a warning (they may hold orders).
///
/// A tick or lot size change on an instrument that still has orders would leave the gateway
/// converting prices on one grid and the engine matching on another, so start-up stops instead.
pub fn reconcile(engine: &Engine, cfg: &Validated) -> Result<Vec<CommandBody>, PipelineError> {
    let mut admin = Vec::new();
    for s in &cfg.instruments {
        let Some(current) = engine.instrument(s.id) else {
            admin.push(CommandBody::AddInstrument(*s));
            continue;
        };
        let wanted = InstrumentSpec { status: current.status, ..*s };
        if wanted == *current {
            continue;
        }
        if (wanted.tick_size, wanted.lot_size) != (current.tick_size, current.lot_size) && has_orders(engine, s.id) {
            return Err(PipelineError::Config(format!(
                "instrument {} ({}): tick size {} and lot size {} in the configuration, {} and {} in the data \
                 directory, which still holds orders for it; cancel them first or keep the old grid",
                s.id.0,
                s.symbol.as_str(),
                wanted.tick_size,
                wanted.lot_size,
                current.tick_size,
                current.lot_size
            )));
        }
        tracing::info!(instrument = s.id.0, symbol = s.symbol.as_str(), from = ?current, to = ?wanted, "configuration changes an instrument");
        admin.push(CommandBody::UpdateInstrument(wanted));
    }
    for a in &cfg.accounts {
        match engine.account_spec(a.account) {
            Some(current) if current == a => {}
            current => {
                if let Some(from) = current {
                    tracing::info!(account = a.account.0, ?from, to = ?a, "configuration changes an account");
                }
                admin.push(CommandBody::UpsertAccount(*a));
            }
        }
    }
    for id in engine.instrument_ids() {
        if !cfg.instruments.iter().any(|s| s.id == id) {
            tracing::warn!(
                instrument = id.0,
                "instrument in the data directory but not in the configuration; left as it is"
            );
        }
    }
    Ok(admin)
}

/// Whether any order (resting or a waiting stop) of the instrument is live.
fn has_orders(engine: &Engine, id: InstrumentId) -> bool {
    [Side::Buy, Side::Sell]
        .into_iter()
        .any(|side| [false, true].into_iter().any(|stops| !engine.orders_in_priority(id, side, stops).is_empty()))
}

/// The instruments of a validated configuration indexed by id, for the I/O thread's lookups.
pub fn instrument_table(instruments: &[InstrumentSpec]) -> Vec<Option<InstrumentSpec>> {
    let len = instruments.iter().map(|s| s.id.0 as usize + 1).max().unwrap_or(0);
    let mut table = vec![None; len];
    for s in instruments {
        table[s.id.0 as usize] = Some(*s);
    }
    table
}

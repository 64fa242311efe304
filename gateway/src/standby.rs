//! The hot standby (`sable standby`): follows a primary's journal over the replication port.
//!
//! It restores its own state (newest snapshot + its own journal), asks the primary for the
//! records after its last one, and for each record that arrives: checks that it continues this
//! standby's own history (sequence number and the journal's hash chain), appends it to its own
//! journal, applies it to its own engine (a snapshot follower, so snapshots are taken here too),
//! and after each batch commits and reports its positions (received, written, synced; synced
//! after a sync when the primary's policy is `replicated+fsync`). Every `verify_every` commands
//! it compares its engine's state hash with the primary's.
//!
//! A record that does not continue its history, or a state hash that differs, means this
//! standby has diverged: it says so in the log and in [`StandbyStatus`], stops following, and
//! must not be promoted; it is re-seeded from the primary. A lost link is retried.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::Command;
use journal::{Durability, Journal, JournalConfig, MmapStorage, decode_record};
use snapshot::{Follower, Retention, SnapshotStore};

use crate::config::Validated;
use crate::pipeline::{Handover, PipelineError, journal_dir, sessions_dir, snapshot_dir, store_names};
use crate::replication::fence::NodeState;
use crate::replication::wire::{self, Frame, Received};
use crate::replication::{HashCheck, LINK_TIMEOUT, MAX_FRAME_LEN_BYTES};
use crate::store::StoreLimits;

/// Sleeps `pause`, or less once `stop` is raised (a promotion waits for this thread).
fn pause(stop: &AtomicBool, pause: Duration) {
    let until = Instant::now() + pause;
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        std::thread::sleep(STOP_CHECK);
    }
}

/// How often a pausing standby looks for a stop request.
const STOP_CHECK: Duration = Duration::from_millis(2);
/// How long one attempt to reach the primary may take (short: the service watchdog expects the
/// standby's thread to come round every second or so).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between attempts to reach the primary: short, because a promoted primary's first
/// acknowledgement under `on_standby_loss = "halt"` waits for a standby to attach (a refused
/// connection on a live network costs microseconds).
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Least time between two "replication link down" warnings while the link stays down.
const LINK_DOWN_LOG_EVERY: Duration = Duration::from_secs(1);
/// How long a read waits before the standby checks for a stop request.
const READ_POLL: Duration = Duration::from_millis(50);

/// What the standby has done so far (shared with its owner).
#[derive(Debug, Default)]
pub struct StandbyStatus {
    beats: AtomicU64,
    next_seq: AtomicU64,
    verified_seq: AtomicU64,
    attached: AtomicBool,
    followed: AtomicBool,
    handed_over: AtomicBool,
    /// The last primary followed halts without a standby (its `WELCOME` said so).
    primary_halts: AtomicBool,
    /// The link to it dropped and every reconnect since was refused.
    primary_gone: AtomicBool,
    diverged: Mutex<Option<String>>,
}

impl StandbyStatus {
    /// Counts the standby thread's rounds (at least one per read timeout or reconnect pause):
    /// a service watchdog pings while it moves.
    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::Acquire)
    }

    fn beat(&self) {
        self.beats.fetch_add(1, Ordering::Release);
    }

    /// The next sequence number this standby needs (everything before it is in its journal).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }

    /// Highest sequence number whose state hash matched the primary's.
    pub fn verified_seq(&self) -> u64 {
        self.verified_seq.load(Ordering::Acquire)
    }

    /// Whether a primary is streaming to it now.
    pub fn attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// Whether it has followed a primary since it started (received its `WELCOME`).
    pub fn followed(&self) -> bool {
        self.followed.load(Ordering::Acquire)
    }

    /// Whether the primary stepped down and handed over to this standby, which holds all its
    /// records: its owner promotes it.
    pub fn handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    /// Whether the primary it followed is gone and acknowledged nothing this standby does not
    /// hold: the link dropped, every reconnect since was refused (nothing listens on its
    /// replication port: its process died; a partition makes connects time out instead), and it
    /// halts without a standby. An election may then depose it instead of waiting for its lease.
    pub fn primary_gone_holding_nothing_more(&self) -> bool {
        self.primary_gone.load(Ordering::Acquire) && self.primary_halts.load(Ordering::Acquire)
    }

    /// Why this standby diverged from its primary, if it did (it then refuses promotion).
    pub fn diverged(&self) -> Option<String> {
        self.diverged.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a standby left when it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandbyReport {
    /// Last sequence number applied.
    pub last_seq: u64,
    /// Its engine's state hash.
    pub state_hash: u64,
}

/// A running standby.
pub struct Standby {
    status: Arc<StandbyStatus>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<(StandbyReport, Handover), PipelineError>>>,
}

impl Standby {
    /// What it has done so far.
    pub fn status(&self) -> &StandbyStatus {
        &self.status
    }

    /// The same, shareable with another thread (a service watchdog).
    pub fn status_handle(&self) -> Arc<StandbyStatus> {
        Arc::clone(&self.status)
    }

    /// Asks it to stop (idempotent).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether its thread has ended (stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Promotes this standby by hand: stops following, syncs what it received and starts a
    /// primary on its data directory with `cfg` (its listeners, its durability). Refused when it
    /// diverged. The promoted node leads at the next epoch; until it stops it tells the old
    /// primary's replication port about that epoch every second, which fences an old primary
    /// that is (or comes back) up before it could acknowledge on local durability.
    pub fn promote(self, cfg: Validated) -> Result<crate::pipeline::Appliance, PipelineError> {
        self.promote_at(cfg, None)
    }

    /// [`Standby::promote`] at `epoch` (one won in an election), or at the next epoch.
    pub fn promote_at(self, cfg: Validated, epoch: Option<u32>) -> Result<crate::pipeline::Appliance, PipelineError> {
        if let Some(why) = self.status.diverged() {
            return Err(PipelineError::Config(format!("refusing promotion: this standby diverged: {why}")));
        }
        let (report, handover) = self.stop_following()?;
        let data_dir = cfg.raw.server.data_dir.clone();
        let state = NodeState::update(&data_dir, |s| {
            s.epoch = epoch.unwrap_or(s.epoch + 1).max(s.epoch + 1);
            (s.superseded_by, s.local_acks_from) = (None, None);
        })
        .map_err(|source| PipelineError::Io { what: "writing node-state", source })?;
        tracing::warn!(seq = report.last_seq, epoch = state.epoch, "standby promoted: starting as primary");
        let old_primary = primary_addr(&cfg).ok();
        // The open journal and the engine that applied every record it holds: no re-scan and
        // no restore from disk.
        let appliance = crate::pipeline::start_from(cfg, Some(handover))?;
        if let Some(addr) = old_primary {
            crate::replication::fence::notify_superseded(addr, state.epoch, appliance.stop_flag());
        }
        Ok(appliance)
    }

    /// Stops following, commits its journal and returns what it left.
    pub fn shutdown(self) -> Result<StandbyReport, PipelineError> {
        self.stop_following().map(|(report, _)| report)
    }

    /// [`Standby::shutdown`], keeping the journal and the engine.
    fn stop_following(mut self) -> Result<(StandbyReport, Handover), PipelineError> {
        self.request_stop();
        let handle = self.handle.take().expect("the standby thread handle is taken only here");
        handle.join().map_err(|_| PipelineError::Stage("the standby thread panicked".into()))?
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.request_stop();
            let _ = h.join();
        }
    }
}

/// Restores the standby's own state and starts following `[replication] primary`.
pub fn start(cfg: Validated) -> Result<Standby, PipelineError> {
    let primary = primary_addr(&cfg)?;
    let data_dir = cfg.raw.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| PipelineError::Io { what: "creating the data dir", source })?;
    let status = Arc::new(StandbyStatus::default());
    let node = Node::open(&cfg, Arc::clone(&status))?;
    tracing::info!(seq = node.follower.engine().seq(), epoch = node.state.epoch, %primary, "standby restored");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::Builder::new()
        .name("sable-standby".into())
        .spawn(move || follow_primary(node, &cfg, primary, &flag))
        .map_err(|source| PipelineError::Io { what: "spawning the standby thread", source })?;
    Ok(Standby { status, stop, handle: Some(handle) })
}

fn primary_addr(cfg: &Validated) -> Result<SocketAddr, PipelineError> {
    cfg.raw
        .replication
        .primary
        .parse()
        .map_err(|e| PipelineError::Config(format!("replication.primary: not an IP:port address: {e}")))
}

/// Follows until stopped; a primary's `TRUNCATE` (this node is a returning old primary with
/// records nobody else received) cuts them and starts over from the restored state.
fn follow_primary(
    mut node: Node,
    cfg: &Validated,
    primary: SocketAddr,
    stop: &AtomicBool,
) -> Result<(StandbyReport, Handover), PipelineError> {
    loop {
        match node.run(primary, stop)? {
            Ran::Stopped(report) => {
                return Ok((report, Handover { engine: node.follower.into_engine(), journal: node.journal }));
            }
            Ran::Cut(keep_through) => node = node.cut(keep_through, cfg)?,
        }
    }
}

/// Why following a primary ended.
enum End {
    /// Asked to stop.
    Stopped,
    /// The primary says this node's records after the seq are not in its history, and none of
    /// them can have been acknowledged: cut them.
    Cut(u64),
    /// The link failed; try again.
    Lost(String),
    /// This standby's history or state differs from the primary's.
    Diverged(String),
}

/// How [`Node::run`] ended.
enum Ran {
    Stopped(StandbyReport),
    Cut(u64),
}

struct Node {
    data_dir: PathBuf,
    state: NodeState,
    journal: Journal<MmapStorage>,
    follower: Follower,
    sessions: SessionCopies,
    check: HashCheck,
    verify_every: u64,
    sync: bool,
    status: Arc<StandbyStatus>,
    /// The audit log, kept as the primary keeps it (so a promotion finds it complete).
    audit: crate::audit::AuditLog,
    /// An operator command's events (for its audit record).
    events: Vec<engine::Event>,
}

impl Node {
    /// Restores the node from its data directory: newest snapshot + its journal, and its copies
    /// of the session stores.
    fn open(cfg: &Validated, status: Arc<StandbyStatus>) -> Result<Node, PipelineError> {
        let data_dir = cfg.raw.server.data_dir.clone();
        // The session-store copies open beside the journal and the restore (each open reads
        // its active segment; they share nothing).
        let limits = cfg.raw.sessions_limits.store_limits();
        let (copies_dir, names) = (sessions_dir(&data_dir), store_names(cfg));
        std::thread::scope(|scope| {
            let copies = std::thread::Builder::new()
                .name("sable-store-open".into())
                .spawn_scoped(scope, || SessionCopies::open(copies_dir, &names, limits))
                .map_err(|source| PipelineError::Io { what: "spawning the store opener", source })?;
            let node = Self::restore(cfg, &data_dir, status);
            let sessions = copies
                .join()
                .unwrap_or_else(|_| Err(PipelineError::Stage("opening the session-store copies panicked".into())))?;
            node.map(|node| node(sessions))
        })
    }

    /// Node-state, journal, engine (snapshot + journal) and audit log; the node once its
    /// session-store copies are open.
    fn restore(
        cfg: &Validated,
        data_dir: &Path,
        status: Arc<StandbyStatus>,
    ) -> Result<impl FnOnce(SessionCopies) -> Node, PipelineError> {
        let data_dir = data_dir.to_path_buf();
        let state =
            NodeState::load(&data_dir).map_err(|source| PipelineError::Io { what: "reading node-state", source })?;
        let config = JournalConfig { segment_len_bytes: cfg.raw.journal.segment_len_bytes, ..JournalConfig::default() };
        let journal = Journal::open_dir(journal_dir(&data_dir), config)?;
        let store = SnapshotStore::open(snapshot_dir(&data_dir))?;
        let mut tail = crate::audit::TailCollector::default();
        let (engine, report) =
            snapshot::restore_observed(Some(&store), &journal, cfg.limits, &mut |c, e| tail.observe(c, e))?;
        tracing::debug!(seq = engine.seq(), replayed = report.replayed, "standby state restored");
        let replayed_from = report.snapshot.map_or(0, |s| s.seq);
        let at = crate::audit::Restored {
            journal: &journal,
            limits: cfg.limits,
            engine: &engine,
            replayed_from,
            tail: &tail.entries,
        };
        let audit = crate::audit::open_at_start(&data_dir, &at)?;
        let every = match cfg.raw.snapshot.every_commands {
            0 => u64::MAX,
            n => n,
        };
        let retention = Retention { keep_last: cfg.raw.snapshot.keep_last, max_age_ns: None };
        let follower = Follower::new(engine, store, every, retention);
        status.next_seq.store(journal.next_seq(), Ordering::Release);
        Ok(move |sessions| Node {
            data_dir,
            state,
            journal,
            follower,
            sessions,
            check: HashCheck::default(),
            verify_every: 0,
            sync: false,
            status,
            audit,
            events: Vec::new(),
        })
    }

    /// Cuts this node's records after `keep_through` (none of them acknowledged: checked by
    /// the caller against node-state), the snapshots past it, and its session stores (copied
    /// afresh from the primary), then restores again.
    fn cut(self, keep_through: u64, cfg: &Validated) -> Result<Node, PipelineError> {
        let Node { data_dir, journal, follower, sessions, status, .. } = self;
        drop((follower, sessions));
        let cut = journal.cut_after(keep_through)?;
        let store = SnapshotStore::open(snapshot_dir(&data_dir))?;
        for snap in store.list()?.into_iter().filter(|s| s.seq > keep_through) {
            std::fs::remove_file(&snap.path)
                .map_err(|source| PipelineError::Io { what: "removing a snapshot past the cut", source })?;
        }
        let sessions = sessions_dir(&data_dir);
        if sessions.exists() {
            std::fs::remove_dir_all(&sessions)
                .map_err(|source| PipelineError::Io { what: "removing the old session stores", source })?;
        }
        tracing::warn!(
            keep_through,
            cut,
            "rejoining: cut this node's records that its successor never received (none was acknowledged)"
        );
        Node::open(cfg, status)
    }

    fn run(&mut self, primary: SocketAddr, stop: &AtomicBool) -> Result<Ran, PipelineError> {
        let mut last_warned: Option<Instant> = None;
        // The link was up and every reconnect since has been refused.
        let mut refused_since_up = false;
        while !stop.load(Ordering::Acquire) {
            self.status.beat();
            let (end, refused) = match TcpStream::connect_timeout(&primary, CONNECT_TIMEOUT) {
                Ok(stream) => (self.follow(stream, stop), false),
                Err(e) => {
                    (End::Lost(format!("connecting to {primary}: {e}")), e.kind() == ErrorKind::ConnectionRefused)
                }
            };
            let was_up = self.status.attached.swap(false, Ordering::AcqRel);
            if was_up {
                last_warned = None; // a link that was up: its loss is news
            }
            refused_since_up = was_up || (refused_since_up && refused);
            self.status.primary_gone.store(refused_since_up && refused, Ordering::Release);
            match end {
                End::Stopped => break,
                End::Cut(keep_through) => return Ok(Ran::Cut(keep_through)),
                End::Lost(why) => {
                    if last_warned.is_none_or(|t| t.elapsed() >= LINK_DOWN_LOG_EVERY) {
                        tracing::warn!(%primary, %why, "replication link down; retrying");
                        last_warned = Some(Instant::now());
                    }
                    pause(stop, RECONNECT_PAUSE);
                }
                End::Diverged(why) => {
                    tracing::error!(%why, "this standby diverged from its primary: it stops following and must not be promoted; re-seed it");
                    *self.status.diverged.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    while !stop.load(Ordering::Acquire) {
                        self.status.beat();
                        pause(stop, RECONNECT_PAUSE);
                    }
                }
            }
        }
        self.journal.commit(Durability::Fsync)?;
        let engine = self.follower.engine();
        Ok(Ran::Stopped(StandbyReport { last_seq: engine.seq(), state_hash: engine.state_hash() }))
    }

    /// Follows one connection until it ends.
    fn follow(&mut self, mut stream: TcpStream, stop: &AtomicBool) -> End {
        let mut out = Vec::with_capacity(64);
        wire::encode(self.state.epoch, &wire::hello(self.journal.next_seq(), self.journal.epoch()), &mut out);
        if let Err(e) = stream.write_all(&out).and_then(|()| stream.set_read_timeout(Some(READ_POLL))) {
            return End::Lost(format!("sending HELLO: {e}"));
        }
        let _ = stream.set_nodelay(true);
        let mut buf = vec![0u8; 2 * MAX_FRAME_LEN_BYTES];
        let (mut len, mut last_heard) = (0usize, Instant::now());
        loop {
            if stop.load(Ordering::Acquire) {
                return End::Stopped;
            }
            self.status.beat();
            match stream.read(&mut buf[len..]) {
                Ok(0) => return End::Lost("the primary closed the connection".into()),
                Ok(n) => {
                    len += n;
                    last_heard = Instant::now();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    if last_heard.elapsed() > LINK_TIMEOUT {
                        return End::Lost(format!("no word from the primary for {} s", LINK_TIMEOUT.as_secs()));
                    }
                    continue;
                }
                Err(e) => return End::Lost(format!("read: {e}")),
            }
            let used = match self.on_frames(&buf[..len], &mut stream) {
                Ok(used) => used,
                Err(end) => return end,
            };
            buf.copy_within(used..len, 0);
            len -= used;
        }
    }

    /// Handles every whole frame in `bytes`; how many bytes they took.
    fn on_frames(&mut self, bytes: &[u8], stream: &mut TcpStream) -> Result<usize, End> {
        let mut at = 0;
        while let Some(Received { epoch, frame, len }) =
            wire::decode(&bytes[at..]).map_err(|e| End::Lost(format!("bad frame: {e}")))?
        {
            at += len;
            if epoch < self.state.epoch {
                return Err(End::Lost(format!(
                    "the primary is at epoch {epoch}, older than this node's {}: it was superseded; not following it",
                    self.state.epoch
                )));
            }
            match frame {
                Frame::Truncate { keep_through } => return Err(self.truncate(keep_through)),
                Frame::Handover { last_seq } => self.take_over(last_seq)?,
                Frame::Welcome { verify_every, sync, halts, .. } => {
                    self.adopt(epoch)?;
                    (self.verify_every, self.sync) = (verify_every, sync);
                    self.status.primary_halts.store(halts, Ordering::Release);
                    self.status.attached.store(true, Ordering::Release);
                    self.status.followed.store(true, Ordering::Release);
                    tracing::info!(next_seq = self.journal.next_seq(), verify_every, sync, "following the primary");
                    self.sessions.hello(self.state.epoch, stream)?;
                }
                Frame::SessionRecords { name, records } => self.sessions.append(name, records)?,
                Frame::SessionReseed { name, first_seq } => self.sessions.reseed(name, first_seq)?,
                Frame::SessionRetain { name, first_seq } => self.sessions.retain(name, first_seq)?,
                Frame::Records(records) => {
                    self.apply_records(records)?;
                    self.report(stream)?;
                }
                Frame::StateHash { seq, state_hash } => {
                    let result = self.check.theirs(seq, state_hash);
                    self.check_hash(result)?;
                }
                Frame::Heartbeat { .. } => self.report(stream)?,
                Frame::Refuse(why) => return Err(End::Lost(format!("the primary refused: {why}"))),
                other => return Err(End::Lost(format!("unexpected frame from the primary: {other:?}"))),
            }
        }
        Ok(at)
    }

    /// Following a primary at `epoch`: this node's history is a prefix of the primary's, so
    /// none of its records can be cut any more (`local_acks_from` cleared); the node takes the
    /// primary's epoch, never follows an older one again, and, the epoch having risen, may lead
    /// again only by promotion (`superseded_by`): never as a second primary at that epoch.
    fn adopt(&mut self, epoch: u32) -> Result<(), End> {
        if epoch == self.state.epoch && self.state.local_acks_from.is_none() {
            return Ok(());
        }
        let updated = NodeState::update(&self.data_dir, |s| {
            if epoch > s.epoch {
                (s.epoch, s.superseded_by) = (epoch, Some(epoch));
            }
            s.local_acks_from = None;
        });
        self.state = updated.map_err(|e| End::Lost(format!("writing node-state: {e}")))?;
        Ok(())
    }

    /// The primary's `HANDOVER`: it stepped down after `last_seq`, which this standby must hold.
    fn take_over(&mut self, last_seq: u64) -> Result<(), End> {
        if self.journal.next_seq() <= last_seq {
            return Err(End::Lost(format!(
                "handed over after seq {last_seq}, but this standby holds only up to {}",
                self.journal.next_seq() - 1
            )));
        }
        self.journal.commit(Durability::Fsync).map_err(|e| End::Lost(format!("journal commit: {e}")))?;
        tracing::warn!(last_seq, "the primary stepped down and handed over: this standby takes over");
        self.status.handed_over.store(true, Ordering::Release);
        Ok(())
    }

    /// The primary's `TRUNCATE`: cut, unless a record to cut may have been acknowledged (this
    /// node acknowledged on local durability from `local_acks_from` on): then it is divergence
    /// an operator must resolve, and nothing is cut.
    fn truncate(&self, keep_through: u64) -> End {
        let last = self.journal.next_seq() - 1;
        if self.state.cut_would_lose_acks(keep_through, last) {
            return End::Diverged(format!(
                "the primary's history ends this node's at seq {keep_through}, but records {}..={last} here may have been acknowledged (on local durability from seq {}): refusing to cut them",
                keep_through + 1,
                self.state.local_acks_from.unwrap_or_default()
            ));
        }
        End::Cut(keep_through)
    }

    /// Appends and applies each record, checking it continues this standby's history.
    fn apply_records(&mut self, records: &[u8]) -> Result<(), End> {
        let mut at = 0;
        while at < records.len() {
            let r = decode_record(records, at).map_err(|e| End::Lost(format!("damaged record in transit: {e}")))?;
            let expected = self.journal.next_seq();
            if r.seq != expected {
                return Err(End::Diverged(format!("the primary sent seq {} where seq {expected} belongs", r.seq)));
            }
            if r.epoch < self.journal.epoch() {
                return Err(End::Diverged(format!(
                    "seq {} carries epoch {}, older than this journal's {}",
                    r.seq,
                    r.epoch,
                    self.journal.epoch()
                )));
            }
            self.journal.set_epoch(r.epoch).map_err(|e| End::Lost(format!("journal: {e}")))?;
            if r.parent_checksum != self.journal.last_checksum() {
                return Err(End::Diverged(format!(
                    "seq {} does not continue this standby's journal (parent {:08x}, last record here {:08x}): the two histories differ before it",
                    r.seq,
                    r.parent_checksum,
                    self.journal.last_checksum()
                )));
            }
            self.journal
                .append(r.seq, r.timestamp_ns, r.kind, r.body)
                .map_err(|e| End::Lost(format!("journal: {e}")))?;
            let cmd = Command::decode(r.body).map_err(|e| End::Diverged(format!("seq {}: {e}", r.seq)))?;
            self.apply(&cmd).map_err(|e| End::Diverged(format!("seq {}: {e}", r.seq)))?;
            if self.verify_every > 0 && r.seq.is_multiple_of(self.verify_every) {
                let ours = self.follower.engine().state_hash();
                let result = self.check.ours(r.seq, ours);
                self.check_hash(result)?;
            }
            at += r.len_bytes();
        }
        self.status.next_seq.store(self.journal.next_seq(), Ordering::Release);
        Ok(())
    }

    /// Applies `cmd`; an operator command's audit record is appended as the primary's is.
    fn apply(&mut self, cmd: &Command) -> Result<(), snapshot::FollowerError> {
        let engine::CommandBody::Operator(c) = &cmd.body else {
            return self.follower.apply(cmd).map(drop);
        };
        self.events.clear();
        self.follower.apply_into(cmd, &mut self.events)?;
        if let Some(engine::Event::Operator(outcome)) = self.events.last() {
            let entry = crate::audit::AuditEntry::new(cmd.seq, cmd.ts_ns, c, outcome);
            if let Err(e) = self.audit.append(entry) {
                tracing::error!(seq = cmd.seq, error = %e, "cannot write the audit record; it is rebuilt at the next start");
            }
        }
        Ok(())
    }

    fn check_hash(&self, result: Result<(), crate::replication::Divergence>) -> Result<(), End> {
        result.map_err(|d| End::Diverged(d.to_string()))?;
        self.status.verified_seq.store(self.check.verified_seq(), Ordering::Release);
        Ok(())
    }

    /// Commits what arrived (with a sync if the primary's policy needs one) and reports it.
    fn report(&mut self, stream: &mut TcpStream) -> Result<(), End> {
        let level = if self.sync { Durability::Fsync } else { Durability::Written };
        self.journal.commit(level).map_err(|e| End::Lost(format!("journal commit: {e}")))?;
        self.sessions.commit()?;
        let received = self.journal.next_seq() - 1;
        let position =
            Frame::Position { received, written: self.journal.written_seq(), synced: self.journal.synced_seq() };
        let mut out = Vec::with_capacity(32);
        wire::encode(self.state.epoch, &position, &mut out);
        stream.write_all(&out).map_err(|e| End::Lost(format!("sending POSITION: {e}")))
    }
}

/// The standby's copies of the primary's session stores (`<data_dir>/sessions/<name>/`), journals
/// laid out as the originals are, so a promoted standby opens them as its own stores: clients
/// resume with their sequence numbers and get what they missed by resend.
struct SessionCopies {
    dir: PathBuf,
    limits: StoreLimits,
    copies: HashMap<String, Journal<MmapStorage>>,
    /// Where the primary's store now starts, per copy, until the copy has dropped what precedes
    /// it (a segment still being sealed in the background is dropped at a later commit).
    retain: HashMap<String, u64>,
}

impl SessionCopies {
    /// Opens (creating) a copy for every session store the configuration names.
    fn open(dir: PathBuf, names: &[String], limits: StoreLimits) -> Result<Self, PipelineError> {
        let mut copies = HashMap::with_capacity(names.len());
        for name in names {
            copies.insert(name.clone(), open_copy(&dir, name, limits, 1)?);
        }
        Ok(SessionCopies { dir, limits, copies, retain: HashMap::new() })
    }

    /// Asks the primary for every copy's next records.
    fn hello(&self, epoch: u32, stream: &mut TcpStream) -> Result<(), End> {
        let mut out = Vec::with_capacity(64 * self.copies.len());
        for (name, copy) in &self.copies {
            let last_checksum = (copy.next_seq() > copy.first_seq()).then(|| copy.last_checksum());
            wire::encode(epoch, &Frame::SessionHello { name, next_seq: copy.next_seq(), last_checksum }, &mut out);
        }
        stream.write_all(&out).map_err(|e| End::Lost(format!("sending SESSION_HELLO: {e}")))
    }

    /// Appends a store's records to its copy, each continuing the copy's chain.
    fn append(&mut self, name: &str, records: &[u8]) -> Result<(), End> {
        let Some(copy) = self.copies.get_mut(name) else {
            return Err(End::Diverged(format!("the primary sent records of session store {name}, unknown here")));
        };
        let mut at = 0;
        while at < records.len() {
            let r = decode_record(records, at).map_err(|e| End::Lost(format!("damaged record in transit: {e}")))?;
            if r.seq != copy.next_seq() || r.parent_checksum != copy.last_checksum() {
                let next = copy.next_seq();
                return Err(End::Diverged(format!(
                    "session store {name}: record {} does not continue this standby's copy (next {next})",
                    r.seq
                )));
            }
            let appended = copy.append(r.seq, r.timestamp_ns, r.kind, r.body);
            appended.map_err(|e| End::Lost(format!("session store {name}: {e}")))?;
            at += r.len_bytes();
        }
        Ok(())
    }

    /// Drops a copy the primary can no longer continue and starts it again at `first_seq`.
    fn reseed(&mut self, name: &str, first_seq: u64) -> Result<(), End> {
        if self.copies.remove(name).is_none() {
            return Ok(());
        }
        tracing::warn!(
            session = name,
            first_seq,
            "the primary's store no longer holds what this copy needs: copying it afresh"
        );
        let lost = |e: std::io::Error| End::Lost(format!("session store {name}: {e}"));
        std::fs::remove_dir_all(self.dir.join(name)).map_err(lost)?;
        let copy = open_copy(&self.dir, name, self.limits, first_seq).map_err(|e| End::Lost(e.to_string()))?;
        self.copies.insert(name.to_owned(), copy);
        Ok(())
    }

    /// The primary's store dropped its segments before `first_seq`: the copy drops its own at
    /// the next commit (see [`SessionCopies::commit`]).
    fn retain(&mut self, name: &str, first_seq: u64) -> Result<(), End> {
        if self.copies.contains_key(name) {
            self.retain.insert(name.to_owned(), first_seq);
        }
        self.commit()
    }

    /// Commits every copy to the page cache, and drops the segments the primary's retention
    /// dropped, after a sync (the copy's newest full-state record must survive a power loss once
    /// the older ones are gone). A segment whose background seal has not finished stays until a
    /// later commit: the standby commits at least every heartbeat.
    fn commit(&mut self) -> Result<(), End> {
        for (name, copy) in &mut self.copies {
            let lost = |e: journal::JournalError| End::Lost(format!("session store {name}: {e}"));
            copy.commit(Durability::Written).map_err(lost)?;
            let Some(&first_seq) = self.retain.get(name) else { continue };
            // A segment is wholly older than `first_seq` when the next one starts at or before it.
            if copy.segments().nth(1).is_none_or(|next| next.base_seq > first_seq) {
                self.retain.remove(name);
                continue;
            }
            copy.commit(Durability::Fsync).map_err(lost)?;
            copy.remove_segments_before(first_seq).map_err(lost)?;
        }
        Ok(())
    }
}

fn open_copy(
    dir: &Path,
    name: &str,
    limits: StoreLimits,
    first_seq: u64,
) -> Result<Journal<MmapStorage>, PipelineError> {
    let config = JournalConfig { first_seq, ..crate::store::journal_config(limits, true) };
    Ok(Journal::open_dir(dir.join(name), config)?)
}

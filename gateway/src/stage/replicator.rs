//! Stage: the replicator, on the primary. It serves one standby at a time on the replication
//! port: after the standby's `HELLO` it streams journal records from the standby's next
//! sequence number on, read with [`journal::Tail`] up to what the journaler has written (so the
//! input ring never waits for it), the snapshot follower's state hashes, and heartbeats; it
//! reads back the standby's positions. With a `replicated` policy it also moves the durability
//! gate: output waits until the standby holds its input, and when the standby is gone or stops
//! making progress for `standby_timeout_ms`, `on_standby_loss` decides (degrade to local
//! durability with an error in the log, or halt acknowledgements) until a standby catches up.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use journal::{MmapStorage, RecordHeader, Storage, Tail};
use zerocopy::IntoBytes;

use crate::config::StandbyLoss;
use crate::replication::fence::NodeState;
use crate::replication::wire::{self, Frame, Received};
use crate::replication::{HEARTBEAT_PERIOD, LINK_TIMEOUT, PROTOCOL_VERSION, RECORDS_BATCH_BYTES};
use crate::rings::{Shared, mono_ns};
use crate::wait::Wait;

/// How long a new connection may take to send its `HELLO`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// Replication lag samples awaiting the standby's `POSITION`, at most (the oldest go first).
const MAX_LAG_SAMPLES_IN_FLIGHT: usize = 4096;
/// Largest lag the histogram tells apart (larger ones count as this), nanoseconds: 60 s.
const LAG_HISTOGRAM_MAX_NS: u64 = 60_000_000_000;
/// How long a stopping primary waits for its standby to receive what is written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the replication port is checked for a new connection. An `accept` on a
/// non-blocking socket with nothing queued still allocates and frees a socket in the kernel
/// (a few microseconds), too much for every round of a thread that streams every record.
const ACCEPT_EVERY: Duration = Duration::from_millis(1);

/// What a `replicated` policy asks of the standby.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gate {
    /// The standby's synced position counts (`replicated+fsync`), else its written one.
    pub synced: bool,
    /// How long without progress before `loss` applies.
    pub timeout: Duration,
    /// What happens then.
    pub loss: StandbyLoss,
}

/// The replicator's state, on its own thread (`sable-replicator`).
pub(crate) struct Replicator {
    listener: TcpListener,
    journal_dir: PathBuf,
    /// Where the session stores live (`<data_dir>/sessions`), each a journal of its own.
    sessions_dir: PathBuf,
    shared: Arc<Shared>,
    /// This primary's epoch: its frames carry it; a peer with a higher one supersedes it.
    epoch: u32,
    verify_every: u64,
    gate: Option<Gate>,
    link: Option<Link>,
    /// When the standby last held everything written, or moved forward.
    last_progress: Instant,
    /// When the port was last checked for a connection.
    accept_checked: Instant,
    held: u64,
    degraded: bool,
    /// The loss was logged (once per loss).
    loss_logged: bool,
}

struct Link {
    epoch: u32,
    stream: TcpStream,
    peer: SocketAddr,
    tail: Tail<MmapStorage>,
    out: Vec<u8>,
    out_at: usize,
    inbuf: Vec<u8>,
    last_sent: Instant,
    last_heard: Instant,
    /// Highest seq sent, and highest state hash sent.
    sent_seq: u64,
    hash_sent_seq: u64,
    /// The standby's last `POSITION`: received, written, synced.
    position: (u64, u64, u64),
    /// The session stores the standby asked for (`SESSION_HELLO`).
    sessions: Vec<SessionTail>,
    /// Lag samples in flight: (seq, when the journaler had written it, [`mono_ns`]), oldest
    /// first, each closed by the first `POSITION` that reports it written.
    lag_samples: VecDeque<(u64, u64)>,
}

/// One session store streamed to the standby.
struct SessionTail {
    name: String,
    tail: Tail<MmapStorage>,
    /// The oldest segment the standby was told the store keeps, and when the store was last
    /// looked at for retention.
    retained_from: u64,
    retention_checked: Instant,
}

/// How often the replicator looks for segments a session store's retention removed.
const RETENTION_CHECK: Duration = Duration::from_secs(1);

impl Replicator {
    /// A replicator on `listener` (already bound) streaming the journal in `journal_dir`.
    pub(crate) fn new(
        listener: TcpListener,
        (journal_dir, sessions_dir): (PathBuf, PathBuf),
        shared: Arc<Shared>,
        verify_every: u64,
        gate: Option<Gate>,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let held = shared.seq_replica.load(Ordering::Acquire);
        let epoch = shared.epoch.load(Ordering::Acquire);
        Ok(Replicator {
            listener,
            journal_dir,
            sessions_dir,
            shared,
            epoch,
            verify_every,
            gate,
            link: None,
            last_progress: Instant::now(),
            accept_checked: Instant::now(),
            held,
            degraded: false,
            loss_logged: false,
        })
    }

    /// Runs until `stop`, then gives an attached standby up to [`DRAIN_TIMEOUT`] to receive
    /// what is written (a clean shutdown leaves it with every record).
    pub(crate) fn run(mut self, wait: Wait, stop: &AtomicBool) {
        let mut rounds = 0u32;
        let mut stopping: Option<Instant> = None;
        loop {
            if stopping.is_none() && stop.load(Ordering::Acquire) {
                stopping = Some(Instant::now());
            }
            // Stopping: done once the standby holds the journal and a round found nothing
            // more to send (the session stores' last records included).
            if let Some(since) = stopping
                && ((self.standby_has_everything() && rounds > 0) || since.elapsed() > DRAIN_TIMEOUT)
            {
                if self.shared.handover.load(Ordering::Acquire) {
                    self.hand_over();
                }
                return;
            }
            if self.accept_checked.elapsed() >= ACCEPT_EVERY {
                self.accept_checked = Instant::now();
                self.accept();
            }
            self.shared.standby_attached.store(self.link.is_some(), Ordering::Release);
            let moved = match self.link.as_mut().map(|l| l.pump(&self.shared, &self.sessions_dir)) {
                Some(Ok(moved)) => moved,
                Some(Err(why)) => {
                    let peer = self.link.take().map(|l| l.peer);
                    tracing::warn!(?peer, %why, "standby disconnected");
                    if let Some(newer) = superseding_epoch(&why) {
                        self.superseded(newer);
                    }
                    false
                }
                None => false,
            };
            self.move_gate();
            self.report();
            if moved {
                rounds = 0;
            } else {
                wait.idle(rounds);
                rounds = rounds.saturating_add(1);
            }
        }
    }

    /// A planned switchover: the standby holds everything written, so it is told to take over.
    fn hand_over(&mut self) {
        let written = self.shared.seq_written.load(Ordering::Acquire);
        let Some(link) = self.link.as_mut().filter(|l| l.position.0 >= written) else {
            tracing::error!(written, "step-down: the standby does not hold everything written; not handed over");
            return;
        };
        let mut out = Vec::with_capacity(32);
        wire::encode(self.epoch, &Frame::Handover { last_seq: written }, &mut out);
        let sent = link
            .stream
            .set_nonblocking(false)
            .and_then(|()| link.stream.set_write_timeout(Some(HELLO_TIMEOUT)))
            .and_then(|()| link.stream.write_all(&link.out[link.out_at..]))
            .and_then(|()| link.stream.write_all(&out));
        match sent {
            Ok(()) => {
                tracing::warn!(last_seq = written, peer = %link.peer, "stepped down: the standby takes over");
                self.shared.handed_over.store(true, Ordering::Release);
            }
            Err(e) => tracing::error!(error = %e, "step-down: telling the standby failed; not handed over"),
        }
    }

    /// The replication gauges for the admin port (this thread is their only writer).
    fn report(&self) {
        let m = &self.shared.metrics.replication;
        m.enabled.set(1);
        m.standby_attached.set(u64::from(self.link.is_some()));
        if let Some(l) = &self.link {
            m.standby_received_seq.set(l.position.0);
            m.standby_written_seq.set(l.position.1);
            m.standby_synced_seq.set(l.position.2);
        }
        m.degraded.set(u64::from(self.degraded));
    }

    fn standby_has_everything(&self) -> bool {
        let written = self.shared.seq_written.load(Ordering::Acquire);
        self.link.as_ref().is_none_or(|l| l.position.0 >= written)
    }

    fn accept(&mut self) {
        let (stream, peer) = match self.listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!(error = %e, "replication accept failed");
                return;
            }
        };
        if self.link.is_some() {
            // A second peer may be the primary that superseded this one: hear its HELLO first.
            match self.greet(stream, peer) {
                Ok(second) => self.refuse(second.stream, "a standby is already attached"),
                Err(why) => {
                    if let Some(newer) = superseding_epoch(&why) {
                        self.superseded(newer);
                    }
                }
            }
            return;
        }
        match self.greet(stream, peer) {
            Ok(link) => {
                tracing::info!(%peer, from_seq = link.tail.next_seq(), "standby attached");
                self.link = Some(link);
            }
            Err(why) => {
                tracing::warn!(%peer, %why, "standby refused");
                if let Some(newer) = superseding_epoch(&why) {
                    self.superseded(newer);
                }
            }
        }
    }

    /// A node at a higher epoch exists: this primary is fenced. It records that (so it never
    /// runs as primary again on this data), then fails the pipeline: nothing more is journaled
    /// or acknowledged.
    fn superseded(&mut self, newer: u32) {
        let data_dir = self.journal_dir.parent().unwrap_or(Path::new("."));
        if let Err(e) = NodeState::update(data_dir, |s| s.superseded_by = Some(newer)) {
            tracing::error!(error = %e, "could not record the newer epoch in node-state");
        }
        self.gate = self.gate.map(|g| Gate { loss: StandbyLoss::Halt, ..g });
        self.degraded = false;
        self.shared.fail(format!(
            "superseded: a primary at epoch {newer} exists (this one is at epoch {}); fenced",
            self.epoch
        ));
    }

    /// Reads the `HELLO`, opens the journal's tail at the standby's next seq, says `WELCOME`.
    fn greet(&self, mut stream: TcpStream, peer: SocketAddr) -> Result<Link, String> {
        stream.set_read_timeout(Some(HELLO_TIMEOUT)).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let mut len = 0;
        let (next_seq, last_epoch) = loop {
            let n = stream.read(&mut buf[len..]).map_err(|e| format!("reading HELLO: {e}"))?;
            if n == 0 {
                return Err("closed before HELLO".into());
            }
            len += n;
            match wire::decode(&buf[..len]) {
                Ok(Some(Received { epoch, .. })) if epoch > self.epoch => {
                    let why = format!("{SUPERSEDED} {epoch}");
                    self.refuse(stream, &why);
                    return Err(why);
                }
                Ok(Some(Received { frame: Frame::Hello { version, next_seq, last_epoch }, .. }))
                    if version == PROTOCOL_VERSION =>
                {
                    break (next_seq, last_epoch);
                }
                Ok(Some(Received { frame: Frame::Hello { version, .. }, .. })) => {
                    let why = format!("protocol version {version}, this primary speaks {PROTOCOL_VERSION}");
                    self.refuse(stream, &why);
                    return Err(why);
                }
                Ok(Some(Received { frame, .. })) => return Err(format!("expected HELLO, got {frame:?}")),
                Ok(None) if len < buf.len() => {}
                Ok(None) => return Err("HELLO too long".into()),
                Err(e) => return Err(e.to_string()),
            }
        };
        if let Some(keep_through) = self.divergent_suffix(next_seq, last_epoch)? {
            let mut out = Vec::new();
            wire::encode(self.epoch, &Frame::Truncate { keep_through }, &mut out);
            let _ = stream.set_write_timeout(Some(HELLO_TIMEOUT));
            let _ = stream.write_all(&out);
            return Err(format!(
                "the standby's records after seq {keep_through} (epoch {last_epoch}) are not in this primary's history: told it to cut them"
            ));
        }
        let storage = MmapStorage::open_read_only(&self.journal_dir).map_err(|e| e.to_string())?;
        let tail = match Tail::open(storage, next_seq) {
            Ok(tail) => tail,
            Err(e) => {
                let why = format!("cannot serve from seq {next_seq}: {e}");
                self.refuse(stream, &why);
                return Err(why);
            }
        };
        let written_seq = self.shared.seq_written.load(Ordering::Acquire);
        let mut out = Vec::with_capacity(RECORDS_BATCH_BYTES * 2);
        let sync = self.gate.is_some_and(|g| g.synced);
        let halts = self.gate.is_some_and(|g| g.loss == StandbyLoss::Halt);
        let welcome = Frame::Welcome { verify_every: self.verify_every, written_seq, sync, halts };
        wire::encode(self.epoch, &welcome, &mut out);
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        Ok(Link {
            epoch: self.epoch,
            stream,
            peer,
            tail,
            out,
            out_at: 0,
            inbuf: Vec::with_capacity(4096),
            last_sent: now,
            last_heard: now,
            sent_seq: next_seq.saturating_sub(1),
            hash_sent_seq: next_seq.saturating_sub(1),
            position: (next_seq.saturating_sub(1), next_seq.saturating_sub(1), next_seq.saturating_sub(1)),
            sessions: Vec::new(),
            lag_samples: VecDeque::with_capacity(MAX_LAG_SAMPLES_IN_FLIGHT),
        })
    }

    /// With a `replicated` policy: the standby's position moves the gate; after the timeout
    /// without progress, `on_standby_loss` applies until the standby has caught up again.
    fn move_gate(&mut self) {
        let Some(gate) = self.gate else { return };
        let written = self.shared.seq_written.load(Ordering::Acquire);
        let held = self.link.as_ref().map_or(self.held, |l| if gate.synced { l.position.2 } else { l.position.1 });
        let caught_up = self.link.is_some() && held >= written;
        if held > self.held || caught_up {
            self.last_progress = Instant::now();
        }
        self.held = self.held.max(held);
        if self.degraded && caught_up {
            tracing::info!(seq = held, "standby caught up: acknowledging at replicated durability again");
            self.degraded = false;
        }
        let lost = self.last_progress.elapsed() > gate.timeout;
        if lost && !self.loss_logged {
            self.loss_logged = true;
            match gate.loss {
                StandbyLoss::Degrade => tracing::error!(
                    held = self.held,
                    written,
                    "no standby progress for standby_timeout_ms: acknowledging at local durability until a standby catches up (on_standby_loss = degrade)"
                ),
                StandbyLoss::Halt => tracing::error!(
                    held = self.held,
                    written,
                    "no standby progress for standby_timeout_ms: acknowledgements wait for a standby (on_standby_loss = halt)"
                ),
            }
            self.degraded = gate.loss == StandbyLoss::Degrade && self.mark_local_acks();
        }
        if !lost {
            self.loss_logged = false;
        }
        self.shared.set_replica_durable(if self.degraded { u64::MAX } else { self.held });
    }
}

impl Replicator {
    /// Where a standby's history leaves this primary's: with its last record at `next_seq - 1`
    /// of epoch `last_epoch`, the records after the end of that epoch here are not ours (a
    /// returning old primary's suffix nobody else received). Only an older epoch can diverge;
    /// finding its end reads the journal from its start (rare: once per rejoin).
    fn divergent_suffix(&self, next_seq: u64, last_epoch: u32) -> Result<Option<u64>, String> {
        let last = next_seq.saturating_sub(1);
        if last == 0 || last_epoch >= self.epoch {
            return Ok(None);
        }
        let storage = MmapStorage::open_read_only(&self.journal_dir).map_err(|e| e.to_string())?;
        let first = storage.list_segments().map_err(|e| e.to_string())?.first().copied().unwrap_or(1);
        let mut tail = Tail::open(storage, first).map_err(|e| e.to_string())?;
        let mut end = first.saturating_sub(1);
        while let Some(r) = tail.next_available().map_err(|e| e.to_string())? {
            if r.epoch > last_epoch || r.seq > last {
                break;
            }
            end = r.seq;
        }
        Ok((end < last).then_some(end))
    }

    /// Before acknowledging on local durability alone, records from where that starts in
    /// node-state: a returning old primary never cuts what may have been acknowledged. False
    /// (and acknowledgements keep waiting) if the record cannot be written.
    fn mark_local_acks(&self) -> bool {
        let data_dir = self.journal_dir.parent().unwrap_or(Path::new("."));
        let from = self.held + 1;
        let marked =
            NodeState::update(data_dir, |s| s.local_acks_from = Some(s.local_acks_from.map_or(from, |f| f.min(from))));
        if let Err(e) = &marked {
            tracing::error!(error = %e, "cannot record local acknowledgements in node-state: acknowledgements keep waiting for a standby");
        }
        marked.is_ok()
    }

    /// Says why, at this primary's epoch, and closes.
    fn refuse(&self, stream: TcpStream, why: &str) {
        refuse(self.epoch, stream, why);
    }
}

/// What a refusal because of a higher epoch starts with.
const SUPERSEDED: &str = "superseded by epoch";

/// The higher epoch a link error reported, if that is why it ended.
fn superseding_epoch(why: &str) -> Option<u32> {
    why.strip_prefix(SUPERSEDED)?.trim().parse().ok()
}

impl Link {
    /// Reads positions, queues what is new and writes; true if anything moved.
    fn pump(&mut self, shared: &Shared, sessions_dir: &Path) -> Result<bool, String> {
        let mut moved = self.read_frames(shared, sessions_dir)?;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
            // Time first, position second: the time is of this position's batch or an earlier
            // one, so a sample never understates the lag.
            let written_at = shared.written_at_ns.load(Ordering::Acquire);
            let written = shared.seq_written.load(Ordering::Acquire);
            let sent_before = self.sent_seq;
            self.queue_records(written)?;
            if self.sent_seq > sent_before && self.sent_seq == written {
                if self.lag_samples.len() == MAX_LAG_SAMPLES_IN_FLIGHT {
                    self.lag_samples.pop_front();
                }
                self.lag_samples.push_back((written, written_at));
            }
            self.queue_hashes(shared);
            self.queue_session_records()?;
            if self.out.is_empty() && self.last_sent.elapsed() >= HEARTBEAT_PERIOD {
                let written_seq = shared.seq_written.load(Ordering::Acquire);
                wire::encode(self.epoch, &Frame::Heartbeat { written_seq }, &mut self.out);
            }
        }
        moved |= self.write_out()?;
        if self.last_heard.elapsed() > LINK_TIMEOUT {
            return Err(format!("no word from the standby for {} s", LINK_TIMEOUT.as_secs()));
        }
        Ok(moved)
    }

    fn read_frames(&mut self, shared: &Shared, sessions_dir: &Path) -> Result<bool, String> {
        let mut buf = [0u8; 4096];
        let mut moved = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("the standby closed the connection".into()),
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let mut at = 0;
        while let Some(Received { epoch, frame, len }) = wire::decode(&self.inbuf[at..]).map_err(|e| e.to_string())? {
            if epoch > self.epoch {
                return Err(format!("{SUPERSEDED} {epoch}"));
            }
            match frame {
                Frame::Position { received, written, synced } => {
                    self.position = (received, written, synced);
                    self.close_lag_samples(shared, written);
                }
                Frame::SessionHello { name, next_seq, last_checksum } => {
                    let name = name.to_owned();
                    self.open_session(sessions_dir, name, (next_seq, last_checksum));
                }
                other => return Err(format!("unexpected frame from the standby: {other:?}")),
            }
            at += len;
            moved = true;
            self.last_heard = Instant::now();
        }
        self.inbuf.drain(..at);
        Ok(moved)
    }

    /// Records the lag of every sample the standby now holds written.
    fn close_lag_samples(&mut self, shared: &Shared, written: u64) {
        let now = mono_ns();
        let mut lag = shared.replication_lag.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(_, at)) = self.lag_samples.front().filter(|(seq, _)| *seq <= written) {
            let hist = lag.get_or_insert_with(|| {
                hdrhistogram::Histogram::new_with_bounds(1, LAG_HISTOGRAM_MAX_NS, 3).expect("valid histogram bounds")
            });
            hist.saturating_record(now.saturating_sub(at));
            self.lag_samples.pop_front();
        }
    }

    /// One `RECORDS` frame of what is written and not sent yet, exactly as the journal holds it.
    fn queue_records(&mut self, written_seq: u64) -> Result<(), String> {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; wire::FRAME_HEADER_LEN_BYTES]);
        while self.out.len() - start < RECORDS_BATCH_BYTES {
            let Some(r) = self.tail.next(written_seq).map_err(|e| format!("reading the journal: {e}"))? else { break };
            push_record(&mut self.out, &r);
            self.sent_seq = r.seq;
        }
        if self.out.len() == start + wire::FRAME_HEADER_LEN_BYTES {
            self.out.truncate(start);
            return Ok(());
        }
        let records = self.out.split_off(start + wire::FRAME_HEADER_LEN_BYTES);
        self.out.truncate(start);
        wire::encode(self.epoch, &Frame::Records(&records), &mut self.out);
        Ok(())
    }

    /// Starts streaming session store `name` to the standby from `next_seq` (or, when the
    /// primary's store no longer holds it, or the copy's last record is not the store's record
    /// there, from its oldest record, after a `SESSION_RESEED`).
    fn open_session(&mut self, sessions_dir: &Path, name: String, (next_seq, last_checksum): (u64, Option<u32>)) {
        if crate::store::validate_name(&name).is_err() || !sessions_dir.join(&name).is_dir() {
            tracing::warn!(session = name, "the standby asked for a session store this primary does not have");
            return;
        }
        self.sessions.retain(|s| s.name != name);
        let dir = sessions_dir.join(&name);
        let open = |seq| MmapStorage::open_read_only(&dir).map(|storage| Tail::open(storage, seq));
        let continues = |seq: u64| -> Option<Tail<MmapStorage>> {
            let Some(checksum) = last_checksum else { return open(seq).ok()?.ok() };
            // The copy's last record must be this store's record there: read it, then go on.
            let mut tail = open(seq.checked_sub(1)?).ok()?.ok()?;
            let last = tail.next_available().ok()??;
            (last.seq + 1 == seq && last.checksum == checksum).then_some(tail)
        };
        let tail = match continues(next_seq) {
            Some(tail) => Ok(Ok(tail)),
            None => {
                let first = MmapStorage::open_read_only(&dir).and_then(|s| s.list_segments());
                let first_seq = first.ok().and_then(|bases| bases.first().copied()).unwrap_or(1);
                tracing::info!(
                    session = name,
                    next_seq,
                    first_seq,
                    "the standby's copy cannot continue from here: re-seeding it"
                );
                wire::encode(self.epoch, &Frame::SessionReseed { name: &name, first_seq }, &mut self.out);
                open(first_seq)
            }
        };
        let tail = tail.map_err(|e| e.to_string()).and_then(|t| t.map_err(|e| e.to_string()));
        match tail {
            Ok(tail) => {
                let retained_from = tail.next_seq();
                let retention_checked = Instant::now();
                self.sessions.push(SessionTail { name, tail, retained_from, retention_checked });
            }
            Err(why) => tracing::warn!(session = name, %why, "cannot stream a session store to the standby"),
        }
    }

    /// A `SESSION_RECORDS` frame per session store with new records.
    fn queue_session_records(&mut self) -> Result<(), String> {
        let mut records = Vec::new();
        for s in &mut self.sessions {
            records.clear();
            while records.len() < RECORDS_BATCH_BYTES {
                let next = s.tail.next_available().map_err(|e| format!("session store {}: {e}", s.name))?;
                let Some(r) = next else { break };
                push_record(&mut records, &r);
            }
            if !records.is_empty() {
                wire::encode(self.epoch, &Frame::SessionRecords { name: &s.name, records: &records }, &mut self.out);
            }
            if s.retention_checked.elapsed() >= RETENTION_CHECK {
                s.retention_checked = Instant::now();
                let first = s.tail.storage().list_segments().ok().and_then(|bases| bases.first().copied());
                if let Some(first_seq) = first.filter(|&f| f > s.retained_from) {
                    s.retained_from = first_seq;
                    wire::encode(self.epoch, &Frame::SessionRetain { name: &s.name, first_seq }, &mut self.out);
                }
            }
        }
        Ok(())
    }

    fn queue_hashes(&mut self, shared: &Shared) {
        let hashes = shared.state_hashes.lock().unwrap_or_else(|p| p.into_inner());
        for &(seq, state_hash) in hashes.iter() {
            if seq > self.hash_sent_seq && seq <= self.sent_seq {
                wire::encode(self.epoch, &Frame::StateHash { seq, state_hash }, &mut self.out);
                self.hash_sent_seq = seq;
            }
        }
    }

    fn write_out(&mut self) -> Result<bool, String> {
        let start = self.out_at;
        while self.out_at < self.out.len() {
            match self.stream.write(&self.out[self.out_at..]) {
                Ok(0) => return Err("the standby's socket closed".into()),
                Ok(n) => self.out_at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if self.out_at > start {
            self.last_sent = Instant::now();
        }
        Ok(self.out_at > start)
    }
}

/// Appends a record exactly as the journal holds it: header, body, zero padding.
fn push_record(out: &mut Vec<u8>, r: &journal::Record<'_>) {
    let header = RecordHeader::new(r.seq, r.timestamp_ns, r.kind, r.epoch, r.body, r.parent_checksum);
    debug_assert_eq!(header.header_checksum.get(), r.checksum, "a record re-encodes to its own bytes");
    let at = out.len();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(r.body);
    out.resize(at + r.len_bytes(), 0);
}

/// Says why and closes.
fn refuse(epoch: u32, mut stream: TcpStream, why: &str) {
    let mut out = Vec::new();
    wire::encode(epoch, &Frame::Refuse(why), &mut out);
    let _ = stream.set_write_timeout(Some(HELLO_TIMEOUT));
    let _ = stream.write_all(&out);
}

/// A replicator running on its own thread.
pub(crate) struct ReplicatorThread {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl ReplicatorThread {
    /// Starts `replicator` on `sable-replicator`.
    pub(crate) fn spawn(replicator: Replicator, wait: Wait) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle =
            std::thread::Builder::new().name("sable-replicator".into()).spawn(move || replicator.run(wait, &flag))?;
        Ok(ReplicatorThread { stop, handle })
    }

    /// Stops and joins it.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if self.handle.join().is_err() {
            tracing::error!("the replicator thread panicked");
        }
    }
}

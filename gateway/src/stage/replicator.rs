//! Stage: the replicator, on the primary. It serves one standby at a time on the replication
//! port: after the standby's `HELLO` it streams journal records from the standby's next
//! sequence number on, read with [`journal::Tail`] up to what the journaler has written (so the
//! input ring never waits for it), the snapshot follower's state hashes, and heartbeats; it
//! reads back the standby's positions. With a `replicated` policy it also moves the durability
//! gate: output waits until the standby holds its input, and when the standby is gone or stops
//! making progress for `standby_timeout_ms`, `on_standby_loss` decides (degrade to local
//! durability with an error in the log, or halt acknowledgements) until a standby catches up.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use journal::{MmapStorage, RecordHeader, Storage, Tail};
use zerocopy::IntoBytes;

use crate::config::StandbyLoss;
use crate::replication::wire::{self, Frame};
use crate::replication::{HEARTBEAT_PERIOD, LINK_TIMEOUT, PROTOCOL_VERSION, RECORDS_BATCH_BYTES};
use crate::rings::Shared;
use crate::wait::Wait;

/// How long a new connection may take to send its `HELLO`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stopping primary waits for its standby to receive what is written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

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
    verify_every: u64,
    gate: Option<Gate>,
    link: Option<Link>,
    /// When the standby last held everything written, or moved forward.
    last_progress: Instant,
    held: u64,
    degraded: bool,
    /// The loss was logged (once per loss).
    loss_logged: bool,
}

struct Link {
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
        Ok(Replicator {
            listener,
            journal_dir,
            sessions_dir,
            shared,
            verify_every,
            gate,
            link: None,
            last_progress: Instant::now(),
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
                return;
            }
            self.accept();
            let moved = match self.link.as_mut().map(|l| l.pump(&self.shared, &self.sessions_dir)) {
                Some(Ok(moved)) => moved,
                Some(Err(why)) => {
                    let peer = self.link.take().map(|l| l.peer);
                    tracing::warn!(?peer, %why, "standby disconnected");
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
            refuse(stream, "a standby is already attached");
            return;
        }
        match self.greet(stream, peer) {
            Ok(link) => {
                tracing::info!(%peer, from_seq = link.tail.next_seq(), "standby attached");
                self.link = Some(link);
            }
            Err(why) => tracing::warn!(%peer, %why, "standby refused"),
        }
    }

    /// Reads the `HELLO`, opens the journal's tail at the standby's next seq, says `WELCOME`.
    fn greet(&self, mut stream: TcpStream, peer: SocketAddr) -> Result<Link, String> {
        stream.set_read_timeout(Some(HELLO_TIMEOUT)).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let mut len = 0;
        let next_seq = loop {
            let n = stream.read(&mut buf[len..]).map_err(|e| format!("reading HELLO: {e}"))?;
            if n == 0 {
                return Err("closed before HELLO".into());
            }
            len += n;
            match wire::decode(&buf[..len]) {
                Ok(Some((Frame::Hello { version, next_seq }, _))) if version == PROTOCOL_VERSION => break next_seq,
                Ok(Some((Frame::Hello { version, .. }, _))) => {
                    let why = format!("protocol version {version}, this primary speaks {PROTOCOL_VERSION}");
                    refuse(stream, &why);
                    return Err(why);
                }
                Ok(Some((other, _))) => return Err(format!("expected HELLO, got {other:?}")),
                Ok(None) if len < buf.len() => {}
                Ok(None) => return Err("HELLO too long".into()),
                Err(e) => return Err(e.to_string()),
            }
        };
        let storage = MmapStorage::open_read_only(&self.journal_dir).map_err(|e| e.to_string())?;
        let tail = match Tail::open(storage, next_seq) {
            Ok(tail) => tail,
            Err(e) => {
                let why = format!("cannot serve from seq {next_seq}: {e}");
                refuse(stream, &why);
                return Err(why);
            }
        };
        let written_seq = self.shared.seq_written.load(Ordering::Acquire);
        let mut out = Vec::with_capacity(RECORDS_BATCH_BYTES * 2);
        let sync = self.gate.is_some_and(|g| g.synced);
        wire::encode(&Frame::Welcome { verify_every: self.verify_every, written_seq, sync }, &mut out);
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let now = Instant::now();
        Ok(Link {
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
            self.degraded = gate.loss == StandbyLoss::Degrade;
        }
        if !lost {
            self.loss_logged = false;
        }
        self.shared.set_replica_durable(if self.degraded { u64::MAX } else { self.held });
    }
}

impl Link {
    /// Reads positions, queues what is new and writes; true if anything moved.
    fn pump(&mut self, shared: &Shared, sessions_dir: &Path) -> Result<bool, String> {
        let mut moved = self.read_frames(sessions_dir)?;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
            self.queue_records(shared.seq_written.load(Ordering::Acquire))?;
            self.queue_hashes(shared);
            self.queue_session_records()?;
            if self.out.is_empty() && self.last_sent.elapsed() >= HEARTBEAT_PERIOD {
                let written_seq = shared.seq_written.load(Ordering::Acquire);
                wire::encode(&Frame::Heartbeat { written_seq }, &mut self.out);
            }
        }
        moved |= self.write_out()?;
        if self.last_heard.elapsed() > LINK_TIMEOUT {
            return Err(format!("no word from the standby for {} s", LINK_TIMEOUT.as_secs()));
        }
        Ok(moved)
    }

    fn read_frames(&mut self, sessions_dir: &Path) -> Result<bool, String> {
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
        while let Some((frame, len)) = wire::decode(&self.inbuf[at..]).map_err(|e| e.to_string())? {
            match frame {
                Frame::Position { received, written, synced } => self.position = (received, written, synced),
                Frame::SessionHello { name, next_seq } => {
                    let name = name.to_owned();
                    self.open_session(sessions_dir, name, next_seq);
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
        wire::encode(&Frame::Records(&records), &mut self.out);
        Ok(())
    }

    /// Starts streaming session store `name` to the standby from `next_seq` (or, when the
    /// primary's store no longer holds it, from its oldest record, after a `SESSION_RESEED`).
    fn open_session(&mut self, sessions_dir: &Path, name: String, next_seq: u64) {
        if crate::store::validate_name(&name).is_err() || !sessions_dir.join(&name).is_dir() {
            tracing::warn!(session = name, "the standby asked for a session store this primary does not have");
            return;
        }
        self.sessions.retain(|s| s.name != name);
        let dir = sessions_dir.join(&name);
        let open = |seq| MmapStorage::open_read_only(&dir).map(|storage| Tail::open(storage, seq));
        let tail = match open(next_seq) {
            Ok(Err(journal::JournalError::SeqNotInJournal { first_seq, .. })) if first_seq > next_seq => {
                wire::encode(&Frame::SessionReseed { name: &name, first_seq }, &mut self.out);
                open(first_seq)
            }
            opened => opened,
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
                wire::encode(&Frame::SessionRecords { name: &s.name, records: &records }, &mut self.out);
            }
            if s.retention_checked.elapsed() >= RETENTION_CHECK {
                s.retention_checked = Instant::now();
                let first = s.tail.storage().list_segments().ok().and_then(|bases| bases.first().copied());
                if let Some(first_seq) = first.filter(|&f| f > s.retained_from) {
                    s.retained_from = first_seq;
                    wire::encode(&Frame::SessionRetain { name: &s.name, first_seq }, &mut self.out);
                }
            }
        }
        Ok(())
    }

    fn queue_hashes(&mut self, shared: &Shared) {
        let hashes = shared.state_hashes.lock().unwrap_or_else(|p| p.into_inner());
        for &(seq, state_hash) in hashes.iter() {
            if seq > self.hash_sent_seq && seq <= self.sent_seq {
                wire::encode(&Frame::StateHash { seq, state_hash }, &mut self.out);
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
    let header = RecordHeader::new(r.seq, r.timestamp_ns, r.kind, r.body, r.parent_checksum);
    debug_assert_eq!(header.header_checksum.get(), r.checksum, "a record re-encodes to its own bytes");
    let at = out.len();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(r.body);
    out.resize(at + r.len_bytes(), 0);
}

/// Says why and closes.
fn refuse(mut stream: TcpStream, why: &str) {
    let mut out = Vec::new();
    wire::encode(&Frame::Refuse(why), &mut out);
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

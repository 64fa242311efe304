//! The journal: recovery at open, the group-commit writer, replay and segment retention.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use zerocopy::IntoBytes;

use crate::error::{CorruptReason, IoOp, JournalError};
use crate::inspect::inspect;
use crate::layout::{
    CHAIN_ORIGIN_CHECKSUM, MAX_RECORD_BODY_LEN_BYTES, MAX_RECORD_LEN_BYTES, RECORD_ALIGN_BYTES,
    RECORD_HEADER_LEN_BYTES, RecordHeader, SEGMENT_HEADER_LEN_BYTES, SegmentHeader, decode_record, record_len_bytes,
};
use crate::mmap_storage::MmapStorage;
use crate::reader::Replay;
use crate::rollover::{BACKGROUND_THREAD_SUFFIX, Rollover, SPARES_AHEAD, SealJob, Spare};
use crate::segment::{SegmentInfo, SegmentSlot, SegmentStatus};
use crate::spares::recover_spares;
use crate::storage::{SegmentStorage, Storage};

/// Default preallocated segment size.
pub const DEFAULT_SEGMENT_LEN_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment: a header and one record of the largest size, so a fresh segment always
/// takes the record that caused the rollover.
pub const MIN_SEGMENT_LEN_BYTES: u64 = (SEGMENT_HEADER_LEN_BYTES + MAX_RECORD_LEN_BYTES) as u64;
/// Largest segment. Bounds the address space one mapping takes and the recovery scan of the
/// last segment's preallocated tail.
pub const MAX_SEGMENT_LEN_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// Default for [`JournalConfig::writeback_hint_len_bytes`].
pub const DEFAULT_WRITEBACK_HINT_LEN_BYTES: u64 = 1024 * 1024;
/// Hinted ranges end on a page boundary: the partly filled page at the write cursor will be
/// dirtied again by the next append, and writing it back now would only write it twice.
const WRITEBACK_PAGE_LEN_BYTES: usize = 4096;

/// Zeros written over a torn tail, a chunk at a time.
static ZEROS: [u8; 4096] = [0; 4096];

/// How the journal is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// Preallocated length of each new segment file. Between [`MIN_SEGMENT_LEN_BYTES`] and
    /// [`MAX_SEGMENT_LEN_BYTES`], a multiple of [`RECORD_ALIGN_BYTES`]. Existing segments keep
    /// the length they were created with.
    pub segment_len_bytes: u64,
    /// Sequence number of the first record of a new, empty journal. At least 1, because
    /// positions use `first_seq - 1` for "nothing yet". Ignored when segments exist.
    pub first_seq: u64,
    /// Once this many bytes are appended and not yet synced, the writer asks the storage to
    /// start writing them back ([`SegmentStorage::start_writeback`], `sync_file_range` on
    /// files). Without it, a journal committed only at [`Durability::Written`] lets a whole
    /// segment's worth of dirty pages pile up, and the sync that seals the segment at rollover
    /// stalls the writer for all of them at once. 0 turns the hint off; otherwise at least one
    /// page (4096).
    pub writeback_hint_len_bytes: u64,
    /// Roll over to new segments on a background thread (see [`Journal::append`]): the next
    /// segment is prepared ahead and the full one is synced behind the writer. Off, `append`
    /// does the same steps itself when it rolls over (deterministic, for tests and tools).
    pub background_rollover: bool,
    /// The CPU the background thread runs on. `None`: wherever the thread that opens the journal
    /// may run (it inherits that thread's CPU affinity). Keep it off the writer's CPU: sharing
    /// it, the thread's seal runs in the writer's time, which is the pause it exists to remove.
    pub background_cpu: Option<usize>,
    /// The background thread's name: what profilers and per-thread CPU accounting show. It must
    /// end with [`BACKGROUND_THREAD_SUFFIX`]. Default `sable-journal-seal`; the gateway's session
    /// stores use `sable-store-seal`, so their work is told apart from the input journal's.
    pub background_thread_name: &'static str,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            segment_len_bytes: DEFAULT_SEGMENT_LEN_BYTES,
            first_seq: 1,
            writeback_hint_len_bytes: DEFAULT_WRITEBACK_HINT_LEN_BYTES,
            background_rollover: true,
            background_cpu: None,
            background_thread_name: "sable-journal-seal",
        }
    }
}

impl JournalConfig {
    fn validate(&self) -> Result<(), JournalError> {
        let reason = if self.segment_len_bytes < MIN_SEGMENT_LEN_BYTES {
            "segment_len_bytes is below MIN_SEGMENT_LEN_BYTES"
        } else if self.segment_len_bytes > MAX_SEGMENT_LEN_BYTES {
            "segment_len_bytes is above MAX_SEGMENT_LEN_BYTES"
        } else if self.segment_len_bytes % RECORD_ALIGN_BYTES as u64 != 0 {
            "segment_len_bytes is not a multiple of RECORD_ALIGN_BYTES"
        } else if usize::try_from(self.segment_len_bytes).is_err() {
            "segment_len_bytes does not fit in this platform's address space"
        } else if self.first_seq == 0 {
            "first_seq must be at least 1"
        } else if self.writeback_hint_len_bytes != 0 && self.writeback_hint_len_bytes < WRITEBACK_PAGE_LEN_BYTES as u64
        {
            "writeback_hint_len_bytes must be 0 (off) or at least one page"
        } else if !self.background_thread_name.ends_with(BACKGROUND_THREAD_SUFFIX) {
            "background_thread_name must end with BACKGROUND_THREAD_SUFFIX"
        } else {
            return Ok(());
        };
        Err(JournalError::InvalidConfig { reason })
    }
}

/// How durable [`Journal::commit`] makes the appended records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// In the shared mapping, i.e. the page cache: survives a crash of this process, not of
    /// the machine. Costs no system call.
    Written,
    /// On stable storage: msync(`MS_SYNC`) of the dirty range only, an fdatasync of that range.
    Fsync,
}

/// What opening the journal had to repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// A torn tail was cut: segment, offset and reason, as inspection found it.
    pub torn_tail: Option<(u64, SegmentStatus)>,
    /// The last segment's header was torn (crash during creation) and the segment, holding no
    /// records, was replaced. Its base sequence number.
    pub replaced_segment: Option<u64>,
    /// The directory held no segment and the first one was created.
    pub created_first_segment: bool,
    /// Spares that continued the log (a crash came before the background thread installed
    /// them) and were installed as segments.
    pub installed_spares: u64,
    /// Spares that did not continue the log (prepared and unused, or behind a torn tail) and
    /// were removed.
    pub removed_spares: u64,
    /// Spares kept for reuse: the configured length and a blank header (never moved on to). With
    /// [`JournalConfig::background_rollover`] only, at most as many as it prepares ahead; the
    /// background thread reads each whole and reuses it only if every byte is zero (else
    /// removes it and makes a new one).
    pub kept_spares: u64,
}

/// An append-only log of sequenced records in preallocated, memory-mapped segment files.
///
/// One writer owns it. [`Journal::append`] copies a record into the mapping; [`Journal::commit`]
/// makes everything appended so far durable at a [`Durability`] level, so many appends share
/// one sync (group commit). The positions [`Journal::appended_seq`] ≥ [`Journal::written_seq`] ≥
/// [`Journal::synced_seq`] tell a pipeline which acknowledgements it may release.
///
/// A storage failure on the write path (a write, a sync, a rollover, including the rollover
/// work of the background thread) fails the writer for good: every later `append`, `commit`,
/// `archive_before` and `remove_segments_before` returns the same error. A failure on the
/// background thread is reported by the next of those calls. After a failed fsync the kernel may have dropped the dirty pages, so retrying could
/// report durable what is not; reopen the journal and let recovery decide what survived.
/// Reads and positions keep working.
#[derive(Debug)]
pub struct Journal<S: Storage> {
    storage: S,
    config: JournalConfig,
    /// Open segments in sequence order; the last is the active one. Never empty.
    segments: Vec<SegmentSlot<S::Segment>>,
    /// Offset in the active segment where the next record goes.
    write_offset: usize,
    /// Offset in the active segment up to which everything is synced.
    synced_offset: usize,
    /// Offset in the active segment up to which everything is synced or hinted for writeback.
    hinted_offset: usize,
    /// [`JournalConfig::writeback_hint_len_bytes`], `usize::MAX` when off.
    writeback_hint_len_bytes: usize,
    /// Length of the active segment, cached off the hot path's pointer chase.
    active_len_bytes: usize,
    next_seq: u64,
    last_checksum: u32,
    /// Epoch written into every new record; never below the last record's.
    epoch: u32,
    written_seq: u64,
    synced_seq: u64,
    failed: Option<JournalError>,
    recovery: RecoveryReport,
    /// Who prepares, seals and installs segments (see `rollover.rs`).
    rollover: Rollover<S::Segment>,
    /// A read-only handle of the active segment made ahead with its spare, swapped in for the
    /// writable one when the segment is full.
    active_read_only: Option<S::Segment>,
}

impl Journal<MmapStorage> {
    /// Opens (creating if needed) the journal in directory `dir` on real files, locking the
    /// directory against a second writer.
    pub fn open_dir(dir: impl AsRef<Path>, config: JournalConfig) -> Result<Self, JournalError> {
        let storage = MmapStorage::open(dir).map_err(|err| JournalError::io(IoOp::OpenStorage, None, err))?;
        Journal::open(storage, config)
    }
}

impl<S: Storage> Journal<S> {
    /// Opens the journal on `storage`, recovering as it goes.
    ///
    /// Scans every segment in order, checking each record's checksums, its sequence number and
    /// its chain to the one before. A torn tail (damaged bytes at the end of the last segment
    /// with no good record after them) is zeroed and appending continues after the last good
    /// record; a torn last-segment header with no records behind it is replaced. Anything else
    /// — damage followed by a good record, a misplaced or duplicated record, a gap between
    /// segments — is [`JournalError::Corrupt`] and nothing is changed. Spares are installed when
    /// they continue the log; blank ones may be kept for reuse, the rest removed (see the crate
    /// docs). Finally the last segment's used range is synced, so all recovered records count
    /// as durable, and with [`JournalConfig::background_rollover`] the background thread starts
    /// preparing a spare.
    pub fn open(mut storage: S, config: JournalConfig) -> Result<Self, JournalError> {
        config.validate()?;
        let inspection = inspect(&storage)?;
        inspection.verdict()?;
        let mut scanned = inspection.segments;
        let keep_blank = if config.background_rollover { SPARES_AHEAD } else { 0 };
        let spares = recover_spares(&mut storage, &mut scanned, (keep_blank, config.segment_len_bytes))?;
        let mut recovery = RecoveryReport {
            installed_spares: spares.installed,
            removed_spares: spares.removed,
            kept_spares: spares.blank.len() as u64,
            ..Default::default()
        };
        let last_status = scanned.last().map_or(SegmentStatus::Clean, |last| last.status);
        let mut segments: Vec<_> = scanned.into_iter().map(|scanned| scanned.slot).collect();
        repair_last(&mut storage, &mut segments, last_status, &config, &mut recovery)?;

        let active = segments.last_mut().expect("at least one segment");
        let write_offset = active.info.used_len_bytes as usize;
        // A crash of the previous process may have left recovered records only in the page
        // cache; make them durable so that synced_seq is honest from the start.
        active
            .segment
            .sync_range(0, write_offset)
            .map_err(|err| JournalError::io(IoOp::Sync, Some(active.info.base_seq), err))?;
        let next_seq = active.info.next_seq();
        let last_checksum = active.last_checksum;
        let epoch = segments.iter().rev().find(|s| s.info.record_count > 0).map_or(0, |s| s.last_epoch);
        let active = segments.last_mut().expect("at least one segment");
        let active_len_bytes = active.segment.bytes().len();
        let next_spare_id = spares.max_spare_id.map_or(1, |id| id + 1);
        let rollover = Rollover::start(
            &storage,
            config.background_rollover.then_some((config.background_cpu, config.background_thread_name)),
            next_spare_id,
            active.info.base_seq,
            (config.segment_len_bytes, &spares.blank),
        )?;
        Ok(Journal {
            storage,
            config,
            segments,
            write_offset,
            synced_offset: write_offset,
            hinted_offset: write_offset,
            writeback_hint_len_bytes: match config.writeback_hint_len_bytes {
                0 => usize::MAX,
                len_bytes => usize::try_from(len_bytes).unwrap_or(usize::MAX),
            },
            active_len_bytes,
            next_seq,
            last_checksum,
            epoch,
            written_seq: next_seq - 1,
            synced_seq: next_seq - 1,
            failed: None,
            recovery,
            rollover,
            active_read_only: None,
        })
    }

    /// What opening had to repair.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The configuration the journal was opened with.
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// Changes [`JournalConfig::writeback_hint_len_bytes`] from the next append on (a
    /// journal handed from one role to another: a standby's to the primary it becomes).
    pub fn set_writeback_hint_len_bytes(&mut self, len_bytes: u64) -> Result<(), JournalError> {
        let config = JournalConfig { writeback_hint_len_bytes: len_bytes, ..self.config };
        config.validate()?;
        self.config = config;
        self.hinted_offset = self.write_offset;
        self.writeback_hint_len_bytes = match len_bytes {
            0 => usize::MAX,
            len_bytes => usize::try_from(len_bytes).unwrap_or(usize::MAX),
        };
        Ok(())
    }

    /// The storage underneath, for tools and tests.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The error that failed the writer, if one did.
    pub fn failure(&self) -> Option<&JournalError> {
        self.failed.as_ref()
    }

    /// Appends one record. `seq` must be exactly [`Journal::next_seq`]; `body` at most
    /// [`MAX_RECORD_BODY_LEN_BYTES`]. The record is in the shared mapping when this returns but
    /// counts as neither written nor synced until [`Journal::commit`].
    ///
    /// Allocates nothing. When the record does not fit in the active segment, rolls over: with
    /// [`JournalConfig::background_rollover`], takes the spare segment the background thread
    /// prepared (waiting only if it is not ready yet), writes its header and queues the sync of
    /// the full segment and the spare's install for that thread; without, does all of that on
    /// this call (a file creation, a preallocation, three syncs and a rename).
    pub fn append(&mut self, seq: u64, timestamp_ns: u64, kind: u16, body: &[u8]) -> Result<(), JournalError> {
        self.check_failed()?;
        if body.len() > MAX_RECORD_BODY_LEN_BYTES {
            return Err(JournalError::BodyTooLong { len_bytes: body.len(), max_len_bytes: MAX_RECORD_BODY_LEN_BYTES });
        }
        if seq != self.next_seq {
            return Err(JournalError::OutOfSequence { expected_seq: self.next_seq, got_seq: seq });
        }
        let record_len = record_len_bytes(body.len());
        if self.write_offset + record_len > self.active_len_bytes {
            self.roll_over(seq)?;
        }
        let header = RecordHeader::new(seq, timestamp_ns, kind, self.epoch, body, self.last_checksum);
        let offset = self.write_offset;
        let active = self.segments.last_mut().expect("at least one segment");
        // Body first, header last: whoever reads the shared mapping (recovery after a process
        // crash, a tailing reader) finds either no header or a header with its body behind it.
        // The padding is already zero: the tail past the last record always is.
        let written = active
            .segment
            .write_at(offset + RECORD_HEADER_LEN_BYTES, body)
            .and_then(|()| active.segment.write_at(offset, header.as_bytes()));
        if let Err(err) = written {
            let base_seq = active.info.base_seq;
            return Err(self.fail(JournalError::io(IoOp::Write, Some(base_seq), err)));
        }
        active.info.record_count += 1;
        active.info.used_len_bytes += record_len as u64;
        active.last_checksum = header.header_checksum.get();
        active.last_epoch = self.epoch;
        self.write_offset += record_len;
        self.last_checksum = header.header_checksum.get();
        self.next_seq = seq + 1;
        if self.write_offset - self.hinted_offset >= self.writeback_hint_len_bytes {
            self.hint_writeback()?;
        }
        Ok(())
    }

    /// Makes every record appended so far durable at `durability`. With [`Durability::Fsync`]
    /// only the range appended since the last sync is synced; if nothing is pending, no system
    /// call is made.
    ///
    /// After a rollover, [`Durability::Fsync`] also waits until the background thread has synced
    /// the previous segment whole and made the new one's name durable: before that, records of
    /// the new segment would not survive power loss.
    pub fn commit(&mut self, durability: Durability) -> Result<(), JournalError> {
        self.check_failed()?;
        match durability {
            // The bytes are in the shared mapping already: the page cache holds them.
            Durability::Written => self.written_seq = self.appended_seq(),
            Durability::Fsync => self.sync_active()?,
        }
        Ok(())
    }

    /// The epoch new records carry: the last record's on open, raised by [`Journal::set_epoch`].
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Raises the epoch of the records appended from now on. A lower epoch than the current one
    /// is refused: a node never takes records of a superseded primary after a newer one's.
    pub fn set_epoch(&mut self, epoch: u32) -> Result<(), JournalError> {
        if epoch < self.epoch {
            return Err(JournalError::StaleEpoch { current: self.epoch, offered: epoch });
        }
        self.epoch = epoch;
        Ok(())
    }

    /// Highest sequence number appended (`first_seq - 1` before any).
    pub fn appended_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Highest sequence number durable at [`Durability::Written`] or better: every record up to
    /// it survives a process crash.
    pub fn written_seq(&self) -> u64 {
        self.written_seq
    }

    /// Highest sequence number durable at [`Durability::Fsync`]: every record up to it survives
    /// power loss. Besides what [`Journal::commit`] synced, this covers every record before the
    /// newest installed segment: installing a segment (rollover's seal, on the background
    /// thread or inline) syncs every segment before it whole, so a journal committed only at
    /// [`Durability::Written`] still sees its older segments become durable.
    pub fn synced_seq(&self) -> u64 {
        let sealed = self.rollover.installed_base_seq().saturating_sub(1);
        self.synced_seq.max(sealed.min(self.written_seq))
    }

    /// Checksum of the last record appended (the next record's parent): a replica compares it
    /// with the parent a record from its primary carries, so two histories never splice.
    pub fn last_checksum(&self) -> u32 {
        self.last_checksum
    }

    /// The only sequence number [`Journal::append`] accepts now.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sequence number of the oldest record still held (or of the next record, if none is).
    pub fn first_seq(&self) -> u64 {
        self.segments[0].info.base_seq
    }

    /// Every segment still held, oldest first; the last is the one being appended to.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = SegmentInfo> + '_ {
        self.segments.iter().map(|slot| slot.info)
    }

    /// Replays records from `seq` up to [`Journal::appended_seq`] (as of this call), checking
    /// every checksum and the chain as it goes. `seq` may be [`Journal::next_seq`], giving an
    /// empty replay.
    ///
    /// Finding `seq` walks its segment from the start (there is no index), so the cost is at
    /// most one segment's worth of record headers.
    pub fn read_from(&self, seq: u64) -> Result<Replay<'_, S::Segment>, JournalError> {
        if seq < self.first_seq() || seq > self.next_seq {
            return Err(JournalError::SeqNotInJournal { seq, first_seq: self.first_seq(), next_seq: self.next_seq });
        }
        let index = self.segments.partition_point(|slot| slot.info.base_seq <= seq) - 1;
        let mut replay = Replay::new(&self.segments, index, self.appended_seq());
        replay.skip_to(seq)?;
        Ok(replay)
    }

    /// [`Journal::read_from`] without the walk: starts at byte `offset` of the segment holding
    /// `seq`, where the caller saw `seq` appended (the active segment's
    /// [`SegmentInfo::used_len_bytes`] before the append, or [`SEGMENT_HEADER_LEN_BYTES`] if the
    /// append rolled over). The record there must carry `seq` and check out on its own; its link
    /// to the record before it is taken from its header (the chain up to it was checked at open
    /// or append). Every later record is checked as in [`Journal::read_from`]. A wrong `offset`
    /// is [`JournalError::Corrupt`], never a wrong record.
    pub fn read_from_offset(&self, seq: u64, offset: u64) -> Result<Replay<'_, S::Segment>, JournalError> {
        if seq < self.first_seq() || seq >= self.next_seq {
            return Err(JournalError::SeqNotInJournal { seq, first_seq: self.first_seq(), next_seq: self.next_seq });
        }
        let index = self.segments.partition_point(|slot| slot.info.base_seq <= seq) - 1;
        let slot = &self.segments[index];
        let corrupt = |offset: usize, reason| JournalError::Corrupt {
            segment: slot.info.base_seq,
            offset: offset as u64,
            seq,
            reason,
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if offset < SEGMENT_HEADER_LEN_BYTES || offset >= slot.info.used_len_bytes as usize {
            return Err(corrupt(offset, CorruptReason::PastSegmentEnd));
        }
        let record = decode_record(slot.segment.bytes(), offset).map_err(|reason| corrupt(offset, reason))?;
        if record.seq != seq {
            return Err(corrupt(offset, CorruptReason::WrongSeq { expected_seq: seq, found_seq: record.seq }));
        }
        let replay = Replay::new(&self.segments, index, self.appended_seq());
        Ok(replay.starting_at(offset, seq, record.parent_checksum))
    }

    /// Moves every segment whose records all precede `seq` into `dest_dir`, oldest first, and
    /// returns what it moved. The active segment is never moved, nor one whose background seal
    /// has not finished (a later call moves it). For snapshot retention: once
    /// a snapshot at `seq` is durable, older input is only needed for audit.
    pub fn archive_before(&mut self, seq: u64, dest_dir: &Path) -> Result<Vec<SegmentInfo>, JournalError> {
        self.retire_before(seq, IoOp::ArchiveSegment, |storage, base_seq| storage.archive_segment(base_seq, dest_dir))
    }

    /// Deletes every segment whose records all precede `seq`, oldest first, and returns what it
    /// deleted. The active segment is never deleted, nor one whose background seal has not
    /// finished.
    pub fn remove_segments_before(&mut self, seq: u64) -> Result<Vec<SegmentInfo>, JournalError> {
        self.retire_before(seq, IoOp::RemoveSegment, |storage, base_seq| storage.remove_segment(base_seq))
    }

    /// Cuts every record after `keep_through` and closes the journal; reopen it to go on.
    /// For a returning primary that rejoins as a standby: the records it journaled that its
    /// successor never received are removed, with their later segments, and the cut is synced.
    /// Which records may go (never an acknowledged one) is the caller's decision. Returns how
    /// many records were cut. `keep_through` below the first record is refused.
    pub fn cut_after(mut self, keep_through: u64) -> Result<u64, JournalError> {
        self.check_failed()?;
        self.wait_for_background()?;
        let appended = self.appended_seq();
        if keep_through >= appended {
            return Ok(0);
        }
        if keep_through + 1 < self.first_seq() {
            return Err(JournalError::SeqNotInJournal {
                seq: keep_through,
                first_seq: self.first_seq(),
                next_seq: self.next_seq,
            });
        }
        let cut_from = keep_through + 1;
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.info.base_seq > cut_from) {
            let slot = self.segments.pop().expect("more than one segment");
            let base_seq = slot.info.base_seq;
            drop(slot);
            self.storage
                .remove_segment(base_seq)
                .map_err(|err| JournalError::io(IoOp::RemoveSegment, Some(base_seq), err))?;
        }
        let slot = self.segments.last_mut().expect("at least one segment");
        let base_seq = slot.info.base_seq;
        // A sealed segment is held read-only: open it for writing again.
        slot.segment = self
            .storage
            .open_segment(base_seq)
            .map_err(|err| JournalError::io(IoOp::OpenSegment, Some(base_seq), err))?;
        let mut offset = SEGMENT_HEADER_LEN_BYTES;
        for seq in base_seq..cut_from {
            let record = decode_record(slot.segment.bytes(), offset).map_err(|reason| JournalError::Corrupt {
                segment: base_seq,
                offset: offset as u64,
                seq,
                reason,
            })?;
            offset += record.len_bytes();
        }
        let used = slot.info.used_len_bytes as usize;
        let io = |op| move |err| JournalError::io(op, Some(base_seq), err);
        zero_range(&mut slot.segment, offset, used - offset).map_err(io(IoOp::Write))?;
        slot.segment.sync_range(offset, used - offset).map_err(io(IoOp::Sync))?;
        self.storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))?;
        Ok(appended - keep_through)
    }

    fn retire_before(
        &mut self,
        seq: u64,
        op: IoOp,
        mut retire: impl FnMut(&mut S, u64) -> std::io::Result<()>,
    ) -> Result<Vec<SegmentInfo>, JournalError> {
        self.check_failed()?;
        let mut retired = Vec::new();
        // A segment is wholly older than `seq` when the next one starts at or before it. Only
        // installed segments go: one whose background seal has not finished stays for now.
        let installed_base_seq = self.rollover.installed_base_seq();
        while self.segments.len() > 1
            && self.segments[1].info.base_seq <= seq
            && self.segments[1].info.base_seq <= installed_base_seq
        {
            let info = self.segments[0].info;
            // Unix lets a mapped file be renamed or unlinked; the mapping goes when the slot does.
            retire(&mut self.storage, info.base_seq).map_err(|err| JournalError::io(op, Some(info.base_seq), err))?;
            self.segments.remove(0);
            retired.push(info);
        }
        if !retired.is_empty() {
            self.storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))?;
        }
        Ok(retired)
    }

    /// Syncs what was appended to the active segment since its last sync.
    fn sync_active(&mut self) -> Result<(), JournalError> {
        let pending_len_bytes = self.write_offset - self.synced_offset;
        if pending_len_bytes > 0 {
            let active = self.segments.last_mut().expect("at least one segment");
            if let Err(err) = active.segment.sync_range(self.synced_offset, pending_len_bytes) {
                let base_seq = active.info.base_seq;
                return Err(self.fail(JournalError::io(IoOp::Sync, Some(base_seq), err)));
            }
            if self.synced_offset == 0 {
                self.rollover.header_synced(active.info.base_seq);
            }
            self.synced_offset = self.write_offset;
        }
        // The active segment's records are durable only once its name is and every segment
        // before it is synced whole; the background thread may still be at it.
        let active_base_seq = self.segments.last().expect("at least one segment").info.base_seq;
        if self.rollover.installed_base_seq() < active_base_seq {
            if let Err(err) = self.rollover.wait_installed(active_base_seq) {
                return Err(self.fail(err));
            }
        }
        self.hinted_offset = self.write_offset;
        self.synced_seq = self.appended_seq();
        self.written_seq = self.appended_seq();
        Ok(())
    }

    /// Moves on to a new segment whose first record will be `base_seq`: takes a spare, writes its
    /// header, and has the full segment sealed and the spare installed (see `rollover.rs`).
    #[cold]
    fn roll_over(&mut self, base_seq: u64) -> Result<(), JournalError> {
        let len_bytes = self.config.segment_len_bytes;
        let Spare { id: spare_id, mut segment, read_only } =
            match self.rollover.take_spare(&mut self.storage, len_bytes) {
                Ok(spare) => spare,
                Err(err) => return Err(self.fail(err)),
            };
        let created_at_ns = wall_clock_ns();
        let header = SegmentHeader::new(base_seq, self.last_checksum, created_at_ns, len_bytes);
        if let Err(err) = segment.write_at(0, header.as_bytes()) {
            return Err(self.fail(JournalError::io(IoOp::Write, Some(base_seq), err)));
        }
        let full_base_seq = self.segments.last().expect("at least one segment").info.base_seq;
        let info = SegmentInfo {
            base_seq,
            record_count: 0,
            used_len_bytes: SEGMENT_HEADER_LEN_BYTES as u64,
            segment_len_bytes: len_bytes,
            created_at_ns: Some(created_at_ns),
        };
        let prev_checksum = self.last_checksum;
        self.active_len_bytes = segment.bytes().len();
        self.segments.push(SegmentSlot { info, prev_checksum, last_checksum: prev_checksum, last_epoch: 0, segment });
        // The writer's first sync here starts at the header (the same page as the first
        // records, so it costs nothing more), and spares the background thread that sync.
        self.write_offset = SEGMENT_HEADER_LEN_BYTES;
        self.synced_offset = 0;
        self.hinted_offset = SEGMENT_HEADER_LEN_BYTES;
        // The writer reads the full segment through a read-only handle from now on (made ahead
        // with its spare where the storage can, so no mapping happens here) and hands its
        // writable mapping to the rollover, which lets it go before the seal (see
        // `Rollover::retire`).
        let full = self.segments.len() - 2;
        let twin = std::mem::replace(&mut self.active_read_only, read_only);
        let reopened = match twin.map_or_else(|| self.segments[full].segment.reopen_read_only(), Ok) {
            Ok(segment) => segment,
            Err(err) => return Err(self.fail(JournalError::io(IoOp::OpenSegment, Some(full_base_seq), err))),
        };
        let writable = std::mem::replace(&mut self.segments[full].segment, reopened);
        self.rollover.retire(writable);
        let job = SealJob { full_base_seq, spare_id, base_seq };
        if let Err(err) = self.rollover.seal(&mut self.storage, job, len_bytes) {
            return Err(self.fail(err));
        }
        Ok(())
    }

    /// Waits until the background thread has finished the rollover work queued so far (seals,
    /// installs and the next spare), and returns its failure if it had one (which the next
    /// writer call reports too, failing the writer). Does nothing without a background thread.
    /// For tests, tools and orderly shutdown; the write path never needs it.
    pub fn wait_for_background(&self) -> Result<(), JournalError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.rollover.settle()
    }

    /// The error that failed the writer, including one the background thread had since the last
    /// call.
    #[inline]
    fn check_failed(&mut self) -> Result<(), JournalError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if let Some(err) = self.rollover.failure() {
            return Err(self.fail(err));
        }
        Ok(())
    }

    /// Asks the storage to start writing back the whole pages appended since the last sync or
    /// hint. A failure here fails the writer like a failed sync: the storage is in trouble.
    #[cold]
    fn hint_writeback(&mut self) -> Result<(), JournalError> {
        let from = self.hinted_offset.max(self.synced_offset);
        let to = self.write_offset / WRITEBACK_PAGE_LEN_BYTES * WRITEBACK_PAGE_LEN_BYTES;
        if to > from {
            let active = self.segments.last_mut().expect("at least one segment");
            if let Err(err) = active.segment.start_writeback(from, to - from) {
                let base_seq = active.info.base_seq;
                return Err(self.fail(JournalError::io(IoOp::StartWriteback, Some(base_seq), err)));
            }
        }
        self.hinted_offset = to.max(from);
        Ok(())
    }

    /// Fails the writer for good with `err` and returns it.
    #[cold]
    fn fail(&mut self, err: JournalError) -> JournalError {
        self.failed = Some(err.clone());
        err
    }
}

/// Repairs what recovery may: a torn tail of the last segment is zeroed, a torn last-segment
/// header is replaced, and an empty directory gets its first segment.
fn repair_last<S: Storage>(
    storage: &mut S,
    segments: &mut Vec<SegmentSlot<S::Segment>>,
    last_status: SegmentStatus,
    config: &JournalConfig,
    recovery: &mut RecoveryReport,
) -> Result<(), JournalError> {
    match last_status {
        SegmentStatus::Clean | SegmentStatus::Corrupt { .. } => {}
        SegmentStatus::TornTail { offset, cut_len_bytes, .. } => {
            let slot = segments.last_mut().expect("a torn tail belongs to a segment");
            let base_seq = slot.info.base_seq;
            zero_range(&mut slot.segment, offset as usize, cut_len_bytes as usize)
                .map_err(|err| JournalError::io(IoOp::Write, Some(base_seq), err))?;
            slot.segment
                .sync_range(offset as usize, cut_len_bytes as usize)
                .map_err(|err| JournalError::io(IoOp::Sync, Some(base_seq), err))?;
            recovery.torn_tail = Some((base_seq, last_status));
        }
        SegmentStatus::TornHeader { .. } => {
            let torn = segments.pop().expect("a torn header belongs to a segment");
            let base_seq = torn.info.base_seq;
            // Unmap before unlinking; the segment holds no records, so nothing is lost.
            drop(torn);
            storage
                .remove_segment(base_seq)
                .map_err(|err| JournalError::io(IoOp::RemoveSegment, Some(base_seq), err))?;
            let prev_checksum = segments.last().map_or(CHAIN_ORIGIN_CHECKSUM, |prev| prev.last_checksum);
            segments.push(create_segment(storage, base_seq, prev_checksum, config.segment_len_bytes)?);
            recovery.replaced_segment = Some(base_seq);
        }
    }
    if segments.is_empty() {
        segments.push(create_segment(storage, config.first_seq, CHAIN_ORIGIN_CHECKSUM, config.segment_len_bytes)?);
        recovery.created_first_segment = true;
    }
    Ok(())
}

/// Creates a segment file and writes and syncs its header.
fn create_segment<S: Storage>(
    storage: &mut S,
    base_seq: u64,
    prev_checksum: u32,
    segment_len_bytes: u64,
) -> Result<SegmentSlot<S::Segment>, JournalError> {
    let mut segment = storage
        .create_segment(base_seq, segment_len_bytes)
        .map_err(|err| JournalError::io(IoOp::CreateSegment, Some(base_seq), err))?;
    let created_at_ns = wall_clock_ns();
    let header = SegmentHeader::new(base_seq, prev_checksum, created_at_ns, segment_len_bytes);
    segment.write_at(0, header.as_bytes()).map_err(|err| JournalError::io(IoOp::Write, Some(base_seq), err))?;
    segment.sync_range(0, SEGMENT_HEADER_LEN_BYTES).map_err(|err| JournalError::io(IoOp::Sync, Some(base_seq), err))?;
    let info = SegmentInfo {
        base_seq,
        record_count: 0,
        used_len_bytes: SEGMENT_HEADER_LEN_BYTES as u64,
        segment_len_bytes,
        created_at_ns: Some(created_at_ns),
    };
    Ok(SegmentSlot { info, prev_checksum, last_checksum: prev_checksum, last_epoch: 0, segment })
}

fn zero_range<G: SegmentStorage>(segment: &mut G, offset: usize, len_bytes: usize) -> std::io::Result<()> {
    let mut done = 0;
    while done < len_bytes {
        let chunk = (len_bytes - done).min(ZEROS.len());
        segment.write_at(offset + done, &ZEROS[..chunk])?;
        done += chunk;
    }
    Ok(())
}

/// Segment creation time. The journal may read the clock (the engine may not); the value is
/// informational and never checked.
fn wall_clock_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

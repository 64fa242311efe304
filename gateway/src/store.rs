//! The persistent per-session message store: sequence numbers and sent application messages.
//!
//! Both order-entry sessions keep one [`SessionStore`] per counterparty session: FIX 4.4 (sequence
//! numbers survive restarts; a ResendRequest is answered from stored application messages, and
//! seqs without stored bytes are gap-filled) and the FIXP-style SBE session (a RetransmitRequest
//! is answered from stored messages; next sequence numbers are kept per SessionId/SessionVerId,
//! the SessionVerId being the store's [`epoch`](SessionStore::epoch)).
//!
//! A store is a [`journal::Journal`] of its own: the journal owns the segment files, the
//! checksums and hash chain, the tail repair and the refusal of corruption; the store only
//! decides what its records mean. It is generic over [`journal::Storage`], so the tests run it on
//! [`journal::FaultyStorage`] (lost unsynced writes, torn tails, bit flips, failing syncs).
//!
//! # Invariants
//!
//! - Writes run on the gateway I/O thread, so they are a journal append committed at
//!   [`Durability::Written`]: a copy into the shared mapping, no system call (the journal asks
//!   the kernel to start write-back once per MiB appended, and a rollover syncs; see
//!   [`journal::Journal::append`]). Once a write call returns `Ok`, its effect survives a crash
//!   of the process (it is in the page cache); it survives a crash of the machine only after
//!   [`SessionStore::flush`] ([`Durability::Fsync`]). Dropping a store does not flush: a drop is
//!   a `kill -9`.
//! - After any crash, [`SessionStore::next_sender_seq`] is above every seq recorded by a
//!   [`SessionStore::record_sent`] that returned `Ok` (process crash) or that preceded a
//!   successful [`SessionStore::flush`] (power loss): an outbound seq is never handed out twice.
//!   Outside [`SessionStore::reset`] the sender seq never goes backwards.
//! - Recovery refuses to guess: whatever the journal refuses ([`journal::JournalError::Corrupt`])
//!   and any record the store cannot explain ([`StoreError::BadRecord`]) stop the open; nothing
//!   is truncated except a torn tail, by the journal.
//! - Every segment holds a full-state record (a checkpoint or a reset), and retention only drops
//!   the segments before one whose full-state record is synced, so the retained log always
//!   rebuilds the whole state.
//! - A limit on everything ([`StoreLimits`]): segment size, bytes retained, message size.
//! - A storage failure fails the store for good, like the journal: every later write returns the
//!   error, while the in-memory seqs keep following the calls so that this process never
//!   reuses a seq either. Reopen to recover what is durable.
//!
//! # Where the cost goes
//!
//! `record_sent` of an application message copies the seq and the message into a scratch
//! buffer and appends it (a CRC32C over header and body, a copy into the mapping); an admin
//! message, `set_next_target_seq` and `set_next_sender_seq` append a 16-byte sequence record, so
//! inbound traffic takes log space too (56 bytes a message). A rollover is the journal's (seal
//! sync, new preallocated segment) plus a checkpoint and, past the retention bound, the deletion
//! of the oldest segments and a directory sync. A resend starts at the first message's recorded
//! offset. `gateway/tests/store.rs` (`record_sent_cost`, ignored) prints what these cost.
//!
//! # On-disk layout
//!
//! The store of session `name` is the journal directory `<sessions_dir>/<name>/` (segment files
//! `NNNNNNNNNNNNNNNNNNNN.seg`, layout in the `journal` crate docs; the journal locks the
//! directory against a second writer). Journal sequence numbers are the store's own record
//! counter from 1, never reset; the record header's `timestamp_ns` is unused (0). The record
//! kinds and bodies (all integers little-endian):
//!
//! | kind | name                            | body                                                     |
//! |-----:|---------------------------------|----------------------------------------------------------|
//! | 1    | [`RECORD_KIND_SENT`]            | outbound seq `u64`, then the message as sent: an application message; advances the next sender seq to seq + 1 |
//! | 2    | [`RECORD_KIND_SEQS`]            | next sender seq `u64`, next target seq `u64`: an admin message sent, a message received, a SequenceReset |
//! | 3    | [`RECORD_KIND_CHECKPOINT`]      | epoch `u64`, epoch start ns `u64`, next sender seq `u64`, next target seq `u64`: the whole state, written after each rollover |
//! | 4    | [`RECORD_KIND_RESET`]           | epoch `u64`, epoch start ns `u64`: a new epoch, both seqs 1; every message before it is discarded |
//!
//! A new store starts with a reset to epoch 0 at the wall clock. Recovery replays the retained
//! records in order: the state is known from the first checkpoint or reset on (every record
//! after one is checked against it: a sent seq must be the next sender seq, the sender seq never
//! goes back, a checkpoint must equal the replayed state), and the application messages since
//! the last reset form the index outbound seq → (journal seq, byte offset) that resends start
//! reading at ([`journal::Journal::read_from_offset`]).
//!
//! A data directory written by the previous store format (`<name>.<index>.store` files directly
//! in the sessions directory) is refused with [`StoreError::OldFormat`], naming the file; there is
//! no migration (see the error for what to do).

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use journal::{
    Durability, Journal, JournalConfig, JournalError, MmapStorage, SEGMENT_HEADER_LEN_BYTES, SegmentInfo, Storage,
    record_len_bytes,
};

/// An application message as sent: outbound seq and bytes.
pub const RECORD_KIND_SENT: u16 = 1;
/// The two sequence numbers after an admin message, an inbound message or a SequenceReset.
pub const RECORD_KIND_SEQS: u16 = 2;
/// The whole state (epoch, epoch start, both seqs), written into every new segment.
pub const RECORD_KIND_CHECKPOINT: u16 = 3;
/// A new epoch: both seqs back to 1, every earlier message discarded.
pub const RECORD_KIND_RESET: u16 = 4;

/// Bytes of the outbound seq in front of the message in a [`RECORD_KIND_SENT`] body.
pub const SENT_SEQ_LEN_BYTES: usize = 8;
/// Body length of a [`RECORD_KIND_SEQS`] record.
pub const SEQS_BODY_LEN_BYTES: usize = 16;
/// Body length of a [`RECORD_KIND_CHECKPOINT`] record.
pub const CHECKPOINT_BODY_LEN_BYTES: usize = 32;
/// Body length of a [`RECORD_KIND_RESET`] record.
pub const RESET_BODY_LEN_BYTES: usize = 16;

/// Longest session name accepted by [`SessionStore::open`].
pub const MAX_NAME_LEN_BYTES: usize = 128;
/// Upper bound for [`StoreLimits::max_message_bytes`]: a message and its seq fill the largest
/// journal record body.
pub const MAX_MESSAGE_LEN_BYTES: usize = journal::MAX_RECORD_BODY_LEN_BYTES - SENT_SEQ_LEN_BYTES;
/// Segment lengths are a multiple of this (the page size), so mappings cover whole pages.
pub const SEGMENT_LEN_ALIGN_BYTES: u64 = 4096;
/// Lower bound for [`StoreLimits::segment_bytes`]: the journal's minimum, page-aligned.
pub const MIN_SEGMENT_LEN_BYTES: u64 = journal::MIN_SEGMENT_LEN_BYTES.next_multiple_of(SEGMENT_LEN_ALIGN_BYTES);
/// Upper bound for [`StoreLimits::segment_bytes`]: the journal's maximum.
pub const MAX_SEGMENT_LEN_BYTES: u64 = journal::MAX_SEGMENT_LEN_BYTES;
/// Segments retention always keeps: the active one, whose checkpoint may not be synced yet,
/// and the sealed one before it, whose checkpoint is.
pub const MIN_RETAINED_SEGMENTS: u64 = 2;
/// Average retained record size the message index is preallocated for (a FIX execution report
/// is 250-300 bytes, an SBE one 160): 256 MiB retained reserve 1 Mi entries (24 MiB of address
/// space, touched only as used).
pub const INDEX_RESERVE_MESSAGE_BYTES: u64 = 256;
/// Extension of the previous format's segment files, refused at open.
pub const OLD_FORMAT_FILE_EXTENSION: &str = "store";

const _: () = assert!(MAX_MESSAGE_LEN_BYTES + SENT_SEQ_LEN_BYTES <= journal::MAX_RECORD_BODY_LEN_BYTES);
const _: () = assert!(MIN_SEGMENT_LEN_BYTES.is_multiple_of(SEGMENT_LEN_ALIGN_BYTES));

/// Segments by which the retained bytes may exceed [`StoreLimits::max_retained_bytes`] while
/// the journal seals in the background: the segment just filled, whose seal is in flight, and
/// the one before it, whose checkpoint becomes synced only with that seal.
pub const RETENTION_SLACK_SEGMENTS: u64 = 2;

/// Bounds of one store. Checked by [`SessionStore::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Preallocated length of each new segment file: a multiple of 4096 between
    /// [`MIN_SEGMENT_LEN_BYTES`] and [`MAX_SEGMENT_LEN_BYTES`]. Existing segments keep the length
    /// they were created with.
    pub segment_bytes: u64,
    /// Segment bytes kept on disk. When the total goes above this, the oldest segments are
    /// dropped. At least [`MIN_RETAINED_SEGMENTS`] × `segment_bytes`. A segment can be dropped
    /// only behind a synced checkpoint, and the journal syncs full segments on its background
    /// thread after the rollover, so the total runs over this by up to
    /// [`RETENTION_SLACK_SEGMENTS`] segments while that thread seals (more only if the disk
    /// falls behind the rollovers).
    pub max_retained_bytes: u64,
    /// Largest application message [`SessionStore::record_sent`] accepts, at most
    /// [`MAX_MESSAGE_LEN_BYTES`].
    pub max_message_bytes: usize,
}

impl Default for StoreLimits {
    /// 16 MiB segments (~70k messages of 200 bytes), 256 MiB retained, the largest messages.
    fn default() -> Self {
        StoreLimits { segment_bytes: 16 << 20, max_retained_bytes: 256 << 20, max_message_bytes: MAX_MESSAGE_LEN_BYTES }
    }
}

impl StoreLimits {
    /// Checks the limits against each other and the format's bounds.
    pub fn validate(&self) -> Result<(), StoreError> {
        let reason = if self.max_message_bytes > MAX_MESSAGE_LEN_BYTES {
            "max_message_bytes is over MAX_MESSAGE_LEN_BYTES"
        } else if !(MIN_SEGMENT_LEN_BYTES..=MAX_SEGMENT_LEN_BYTES).contains(&self.segment_bytes) {
            "segment_bytes is outside MIN_SEGMENT_LEN_BYTES..=MAX_SEGMENT_LEN_BYTES"
        } else if !self.segment_bytes.is_multiple_of(SEGMENT_LEN_ALIGN_BYTES) {
            "segment_bytes is not a multiple of SEGMENT_LEN_ALIGN_BYTES"
        } else if self.max_retained_bytes / MIN_RETAINED_SEGMENTS < self.segment_bytes {
            "max_retained_bytes is below MIN_RETAINED_SEGMENTS segments of segment_bytes"
        } else {
            return Ok(());
        };
        Err(StoreError::InvalidLimits { reason })
    }
}

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The session name cannot name a directory.
    #[error("invalid session store name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The [`StoreLimits`] are unusable.
    #[error("invalid store limits: {reason}")]
    InvalidLimits {
        /// What is wrong with them.
        reason: &'static str,
    },
    /// [`SessionStore::record_sent`] was given a seq other than the next sender seq.
    #[error("sent seq {got} is not the next sender seq {expected}")]
    SeqMismatch {
        /// The only seq accepted now.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// [`SessionStore::set_next_sender_seq`] would move the sender seq backwards; only
    /// [`SessionStore::reset`] may.
    #[error("next sender seq {requested} is below the current {next_sender_seq}")]
    SenderSeqBackwards {
        /// The current next sender seq.
        next_sender_seq: u64,
        /// The one requested.
        requested: u64,
    },
    /// Seq 0 or `u64::MAX` (seqs start at 1 and must have a successor).
    #[error("seq {seq} is out of range")]
    InvalidSeq {
        /// The seq given.
        seq: u64,
    },
    /// A message over [`StoreLimits::max_message_bytes`].
    #[error("message is {len_bytes} bytes, over the {max_len_bytes}-byte limit")]
    MessageTooLong {
        /// Length of the message.
        len_bytes: usize,
        /// The limit.
        max_len_bytes: usize,
    },
    /// The sessions directory holds this session's files in the previous store format.
    #[error(
        "session store file {} is in the previous session-store format, which this build does not read; \
         move the session's {name}.*.{OLD_FORMAT_FILE_EXTENSION} files out of its directory to start the session \
         afresh at seq 1 (the counterparty must then reset its sequence numbers too: a FIX Logon with \
         ResetSeqNumFlag=Y, a new SBE SessionVerId), or run the previous sable version until the session can be reset",
        file.display()
    )]
    OldFormat {
        /// The first such file found.
        file: PathBuf,
        /// The session name.
        name: String,
    },
    /// The journal underneath failed or refused to open (corruption names the segment file and
    /// byte offset). A failure on a write path fails the store for good.
    #[error("session store {store}: {source}")]
    Journal {
        /// The store's directory, or its name when it does not live in one.
        store: String,
        /// What the journal said.
        #[source]
        source: JournalError,
    },
    /// A record that checks out in the journal but that the store cannot explain: the store does
    /// not open, because guessing could reuse a seq.
    #[error("session store {store}: record {journal_seq} (kind {kind}): {reason}; the store does not open")]
    BadRecord {
        /// The store's directory, or its name.
        store: String,
        /// Journal sequence number of the record.
        journal_seq: u64,
        /// Its kind.
        kind: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The retained log holds records (or starts after journal seq 1) but no checkpoint or reset
    /// to rebuild the state from: records were removed behind the store's back.
    #[error(
        "session store {store}: the log from journal seq {first_seq} on holds no checkpoint or reset; the store does not open"
    )]
    MissingState {
        /// The store's directory, or its name.
        store: String,
        /// First journal seq retained.
        first_seq: u64,
    },
    /// A file operation outside the journal failed.
    #[error("session store {op} failed on {}: {source}", path.display())]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Checks that `name` can name a directory: `[A-Za-z0-9._-]`, not starting with a dot, no `..`,
/// at most [`MAX_NAME_LEN_BYTES`].
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let invalid = |reason| Err(StoreError::InvalidName { name: name.to_owned(), reason });
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > MAX_NAME_LEN_BYTES {
        return invalid("longer than MAX_NAME_LEN_BYTES");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed (no path separators)");
    }
    if name.starts_with('.') || name.contains("..") {
        return invalid("must not start with '.' or contain '..'");
    }
    Ok(())
}

/// True for a previous-format segment file of store `name`: `<name>.<20 digits>.store`.
fn is_old_format_file(name: &str, file_name: &str) -> bool {
    let digits = file_name
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(OLD_FORMAT_FILE_EXTENSION))
        .and_then(|rest| rest.strip_suffix('.'));
    digits.is_some_and(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The whole state of a session's sequence numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqState {
    epoch: u64,
    created_at_ns: u64,
    next_sender_seq: u64,
    next_target_seq: u64,
}

impl SeqState {
    fn new_epoch(epoch: u64, created_at_ns: u64) -> Self {
        SeqState { epoch, created_at_ns, next_sender_seq: 1, next_target_seq: 1 }
    }
}

/// The `index`-th little-endian `u64` of `body`, which the caller checked is long enough.
fn u64_at(body: &[u8], index: usize) -> u64 {
    let bytes = &body[index * 8..index * 8 + 8];
    u64::from_le_bytes(bytes.try_into().expect("an 8-byte slice"))
}

fn encode_seqs(state: &SeqState) -> [u8; SEQS_BODY_LEN_BYTES] {
    let mut body = [0u8; SEQS_BODY_LEN_BYTES];
    body[..8].copy_from_slice(&state.next_sender_seq.to_le_bytes());
    body[8..].copy_from_slice(&state.next_target_seq.to_le_bytes());
    body
}

fn encode_checkpoint(state: &SeqState) -> [u8; CHECKPOINT_BODY_LEN_BYTES] {
    let mut body = [0u8; CHECKPOINT_BODY_LEN_BYTES];
    body[..8].copy_from_slice(&state.epoch.to_le_bytes());
    body[8..16].copy_from_slice(&state.created_at_ns.to_le_bytes());
    body[16..].copy_from_slice(&encode_seqs(state));
    body
}

fn encode_reset(state: &SeqState) -> [u8; RESET_BODY_LEN_BYTES] {
    let mut body = [0u8; RESET_BODY_LEN_BYTES];
    body.copy_from_slice(&encode_checkpoint(state)[..RESET_BODY_LEN_BYTES]);
    body
}

/// A record body as the store reads it back, its length and seqs checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreRecord<'a> {
    Sent { seq: u64, message: &'a [u8] },
    Seqs { next_sender_seq: u64, next_target_seq: u64 },
    Checkpoint(SeqState),
    Reset { epoch: u64, created_at_ns: u64 },
}

/// A seq as stored: 0 and `u64::MAX` never are.
fn valid_seq(seq: u64) -> bool {
    seq != 0 && seq != u64::MAX
}

fn decode_record(kind: u16, body: &[u8]) -> Result<StoreRecord<'_>, &'static str> {
    let expect_len = |len_bytes: usize| {
        if body.len() == len_bytes { Ok(()) } else { Err("body length does not fit its kind") }
    };
    let record = match kind {
        RECORD_KIND_SENT => {
            if body.len() < SENT_SEQ_LEN_BYTES {
                return Err("body length does not fit its kind");
            }
            StoreRecord::Sent { seq: u64_at(body, 0), message: &body[SENT_SEQ_LEN_BYTES..] }
        }
        RECORD_KIND_SEQS => {
            expect_len(SEQS_BODY_LEN_BYTES)?;
            StoreRecord::Seqs { next_sender_seq: u64_at(body, 0), next_target_seq: u64_at(body, 1) }
        }
        RECORD_KIND_CHECKPOINT => {
            expect_len(CHECKPOINT_BODY_LEN_BYTES)?;
            StoreRecord::Checkpoint(SeqState {
                epoch: u64_at(body, 0),
                created_at_ns: u64_at(body, 1),
                next_sender_seq: u64_at(body, 2),
                next_target_seq: u64_at(body, 3),
            })
        }
        RECORD_KIND_RESET => {
            expect_len(RESET_BODY_LEN_BYTES)?;
            StoreRecord::Reset { epoch: u64_at(body, 0), created_at_ns: u64_at(body, 1) }
        }
        _ => return Err("unknown record kind"),
    };
    let seqs_valid = match record {
        StoreRecord::Sent { seq, .. } => valid_seq(seq) && valid_seq(seq + 1),
        StoreRecord::Seqs { next_sender_seq, next_target_seq } => {
            valid_seq(next_sender_seq) && valid_seq(next_target_seq)
        }
        StoreRecord::Checkpoint(state) => valid_seq(state.next_sender_seq) && valid_seq(state.next_target_seq),
        StoreRecord::Reset { .. } => true,
    };
    if seqs_valid { Ok(record) } else { Err("sequence number out of range") }
}

/// Where one application message sits: its outbound seq, its journal seq and its byte offset in
/// the segment holding it, so a resend starts reading there instead of walking the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentAt {
    seq: u64,
    journal_seq: u64,
    offset: u64,
}

/// What the store knows about one of the journal's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegmentMark {
    base_seq: u64,
    len_bytes: u64,
    /// Every application message in this segment or later has an outbound seq at least this
    /// (within the epoch). Exact for segments started by this process, a safe over-estimate for
    /// recovered segments whose start preceded the first full-state record of the log.
    first_sender_seq: Option<u64>,
    /// Journal seq of the segment's first full-state record (checkpoint or reset).
    state_seq: Option<u64>,
}

impl SegmentMark {
    fn new(info: &SegmentInfo, first_sender_seq: Option<u64>) -> Self {
        SegmentMark { base_seq: info.base_seq, len_bytes: info.segment_len_bytes, first_sender_seq, state_seq: None }
    }
}

/// Replay of the retained log at open: the state, the message index and the segment marks.
#[derive(Debug)]
struct Recovery {
    /// Known from the first full-state record on.
    state: Option<SeqState>,
    /// While the state is unknown: the least next sender seq the records so far imply.
    sender_floor: u64,
    /// While the state is unknown: the first outbound seq sent in the current segment.
    first_sent_in_segment: Option<u64>,
    index: VecDeque<SentAt>,
    marks: VecDeque<SegmentMark>,
    /// Which mark the replay is in.
    segment: usize,
    /// Byte offset of the record being applied in its segment.
    offset: u64,
    last_reset_seq: Option<u64>,
}

impl Recovery {
    fn new(infos: &[SegmentInfo], index_capacity: usize) -> Self {
        Recovery {
            state: None,
            sender_floor: 1,
            first_sent_in_segment: None,
            index: VecDeque::with_capacity(index_capacity),
            marks: infos.iter().map(|info| SegmentMark::new(info, None)).collect(),
            segment: 0,
            offset: SEGMENT_HEADER_LEN_BYTES as u64,
            last_reset_seq: None,
        }
    }

    /// Moves to the segment holding journal seq `journal_seq`, noting where each one starts.
    fn enter(&mut self, journal_seq: u64) {
        while self.marks.get(self.segment + 1).is_some_and(|next| next.base_seq <= journal_seq) {
            self.segment += 1;
            self.offset = SEGMENT_HEADER_LEN_BYTES as u64;
            self.first_sent_in_segment = None;
            let start = self.state.map(|state| state.next_sender_seq);
            self.marks[self.segment].first_sender_seq = start;
        }
    }

    /// Applies one record; the reason when it cannot be explained.
    fn apply(&mut self, journal_seq: u64, record: StoreRecord<'_>) -> Result<(), &'static str> {
        self.enter(journal_seq);
        match record {
            StoreRecord::Sent { seq, .. } => {
                match &mut self.state {
                    Some(state) if seq != state.next_sender_seq => return Err("sent seq is not the next sender seq"),
                    Some(state) => state.next_sender_seq = seq + 1,
                    None if seq < self.sender_floor => return Err("sent seq goes backwards"),
                    None => {
                        self.sender_floor = seq + 1;
                        self.first_sent_in_segment.get_or_insert(seq);
                    }
                }
                self.index.push_back(SentAt { seq, journal_seq, offset: self.offset });
            }
            StoreRecord::Seqs { next_sender_seq, next_target_seq } => match &mut self.state {
                Some(state) if next_sender_seq < state.next_sender_seq => return Err("sender seq goes backwards"),
                Some(state) => (state.next_sender_seq, state.next_target_seq) = (next_sender_seq, next_target_seq),
                None if next_sender_seq < self.sender_floor => return Err("sender seq goes backwards"),
                None => self.sender_floor = next_sender_seq,
            },
            StoreRecord::Checkpoint(checkpoint) => self.apply_checkpoint(journal_seq, checkpoint)?,
            StoreRecord::Reset { epoch, created_at_ns } => {
                self.state = Some(SeqState::new_epoch(epoch, created_at_ns));
                self.index.clear();
                self.last_reset_seq = Some(journal_seq);
                self.marks[self.segment].state_seq.get_or_insert(journal_seq);
            }
        }
        Ok(())
    }

    fn apply_checkpoint(&mut self, journal_seq: u64, checkpoint: SeqState) -> Result<(), &'static str> {
        match self.state {
            Some(state) if state != checkpoint => return Err("checkpoint disagrees with the records before it"),
            Some(_) => {}
            None if checkpoint.next_sender_seq < self.sender_floor => {
                return Err("checkpoint sender seq is below a seq recorded before it");
            }
            None => {
                // Messages of this segment before the checkpoint start at its first sent seq;
                // without one, the checkpoint's seq is a safe bound.
                let first = self.first_sent_in_segment.unwrap_or(checkpoint.next_sender_seq);
                self.marks[self.segment].first_sender_seq = Some(first.min(checkpoint.next_sender_seq));
                self.state = Some(checkpoint);
            }
        }
        self.marks[self.segment].state_seq.get_or_insert(journal_seq);
        Ok(())
    }
}

/// The journal configuration of a store with `limits` (a standby's copy of a store uses it too,
/// so the copy's segments hold the same records as the original's, a checkpoint at the start of
/// each).
pub fn journal_config(limits: StoreLimits, background_rollover: bool) -> JournalConfig {
    JournalConfig {
        segment_len_bytes: limits.segment_bytes,
        background_rollover,
        // No write-back hints from the gateway thread: each one cleans pages with a TLB
        // shootdown across CPUs (measured: 15 % of the gateway thread's samples at 500k
        // orders/s); full segments are synced by the journal's background thread instead.
        writeback_hint_len_bytes: 0,
        background_thread_name: "sable-store-seal",
        ..JournalConfig::default()
    }
}

/// Appends one record and commits it to the page cache.
#[inline]
fn append_written<S: Storage>(journal: &mut Journal<S>, kind: u16, body: &[u8]) -> Result<u64, JournalError> {
    let journal_seq = journal.next_seq();
    journal.append(journal_seq, 0, kind, body)?;
    journal.commit(Durability::Written)?;
    Ok(journal_seq)
}

fn wall_clock_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Refuses a sessions directory holding store `name` in the previous format.
fn refuse_old_format(dir: &Path, name: &str) -> Result<(), StoreError> {
    let io_error = |source| StoreError::Io { op: "list the sessions directory", path: dir.to_path_buf(), source };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        if entry.file_name().to_str().is_some_and(|file_name| is_old_format_file(name, file_name)) {
            return Err(StoreError::OldFormat { file: entry.path(), name: name.to_owned() });
        }
    }
    Ok(())
}

/// The persistent store of one session: sequence numbers and sent application messages, as a
/// journal of store records.
///
/// See the module docs for the records and the durability contract.
pub struct SessionStore<S: Storage = MmapStorage> {
    journal: Journal<S>,
    name: String,
    /// Names the store in errors: its directory, or its name.
    label: String,
    limits: StoreLimits,
    state: SeqState,
    /// The journal's segments, oldest first, as the store knows them.
    segments: VecDeque<SegmentMark>,
    retained_len_bytes: u64,
    /// Every retained application message of the epoch, ascending.
    index: VecDeque<SentAt>,
    /// Journal seq of the newest reset record, if one was made or recovered.
    last_reset_seq: Option<u64>,
    oldest_retained_seq: u64,
    /// A [`RECORD_KIND_SENT`] body is built here: seq, then message.
    scratch: Vec<u8>,
    rollover_count: u64,
}

impl<S: Storage> std::fmt::Debug for SessionStore<S> {
    /// The store's identity and state; the journal's mappings are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("store", &self.label)
            .field("state", &self.state)
            .field("segments", &self.segments)
            .field("messages", &self.index.len())
            .field("oldest_retained_seq", &self.oldest_retained_seq)
            .finish_non_exhaustive()
    }
}

impl SessionStore<MmapStorage> {
    /// Opens the store of session `name` in `<dir>/<name>/` (created if missing), recovering it,
    /// or creates it empty: epoch 0, both seqs 1, created now. Refuses a `dir` holding this
    /// session's files in the previous format ([`StoreError::OldFormat`]).
    pub fn open(dir: &Path, name: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        validate_name(name)?;
        limits.validate()?;
        refuse_old_format(dir, name)?;
        let store_dir = dir.join(name);
        let storage = MmapStorage::open(&store_dir).map_err(|source| StoreError::Io {
            op: "open and lock the store directory",
            path: store_dir.clone(),
            source,
        })?;
        // Rollover in the background: the gateway thread never waits for a segment's sync.
        SessionStore::open_labelled(storage, name, limits, store_dir.display().to_string(), true)
    }

    /// The store's own directory, `<dir>/<name>/`.
    pub fn dir(&self) -> &Path {
        self.journal.storage().dir()
    }
}

impl<S: Storage> SessionStore<S> {
    /// Opens the store of session `name` on `storage` (a journal directory of its own),
    /// recovering it, or creates it empty. For tests on [`journal::FaultyStorage`]: the
    /// journal rolls over inline (the same steps as its background thread, in a deterministic
    /// order, which the journal's own fault-injection tests cover in both modes), so a test's
    /// crash points and retention are reproducible from its seed.
    pub fn open_on(storage: S, name: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        validate_name(name)?;
        limits.validate()?;
        SessionStore::open_labelled(storage, name, limits, name.to_owned(), false)
    }

    fn open_labelled(
        storage: S,
        name: &str,
        limits: StoreLimits,
        label: String,
        background_rollover: bool,
    ) -> Result<Self, StoreError> {
        let config = journal_config(limits, background_rollover);
        let journal =
            Journal::open(storage, config).map_err(|source| StoreError::Journal { store: label.clone(), source })?;
        let index_capacity = usize::try_from(limits.max_retained_bytes / INDEX_RESERVE_MESSAGE_BYTES).unwrap_or(0);
        let infos: Vec<SegmentInfo> = journal.segments().collect();
        let mut store = SessionStore {
            journal,
            name: name.to_owned(),
            label,
            limits,
            state: SeqState::new_epoch(0, 0),
            segments: VecDeque::new(),
            retained_len_bytes: infos.iter().map(|info| info.segment_len_bytes).sum(),
            index: VecDeque::new(),
            last_reset_seq: None,
            oldest_retained_seq: 1,
            scratch: vec![0; SENT_SEQ_LEN_BYTES + limits.max_message_bytes],
            rollover_count: 0,
        };
        let recovery = store.replay(Recovery::new(&infos, index_capacity))?;
        store.segments = recovery.marks;
        store.index = recovery.index;
        store.last_reset_seq = recovery.last_reset_seq;
        match recovery.state {
            Some(state) => store.state = state,
            None => store.start_new()?,
        }
        let next_sender_seq = store.state.next_sender_seq;
        for mark in store.segments.iter_mut().filter(|mark| mark.first_sender_seq.is_none()) {
            // Only a segment with no record yet (the last) is still unmarked.
            mark.first_sender_seq = Some(next_sender_seq);
        }
        store.oldest_retained_seq = store.compute_oldest_retained_seq();
        store.ensure_checkpoint()?;
        store.enforce_retention()?;
        Ok(store)
    }

    /// Replays every retained record into `recovery`.
    fn replay(&self, mut recovery: Recovery) -> Result<Recovery, StoreError> {
        let replay = self.journal.read_from(self.journal.first_seq()).map_err(|err| self.journal_error(err))?;
        for record in replay {
            let record = record.map_err(|err| self.journal_error(err))?;
            decode_record(record.kind, record.body)
                .and_then(|decoded| recovery.apply(record.seq, decoded))
                .map_err(|reason| self.bad_record(record.seq, record.kind, reason))?;
            recovery.offset += record.len_bytes() as u64;
        }
        Ok(recovery)
    }

    /// A log without state: a new store (a reset to epoch 0, synced), unless records exist or
    /// were removed, which only damage explains.
    fn start_new(&mut self) -> Result<(), StoreError> {
        let first_seq = self.journal.first_seq();
        if self.journal.appended_seq() >= first_seq || first_seq != 1 {
            return Err(StoreError::MissingState { store: self.label.clone(), first_seq });
        }
        for mark in &mut self.segments {
            mark.first_sender_seq = Some(1);
        }
        self.start_epoch(0, wall_clock_ns())?;
        self.journal.commit(Durability::Fsync).map_err(|err| self.journal_error(err))
    }

    /// The session name the store was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits the store runs with.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// The journal underneath, for tools and tests (positions, segments, what recovery cut).
    pub fn journal(&self) -> &Journal<S> {
        &self.journal
    }

    /// The caller-defined epoch tag set by the last [`SessionStore::reset`] (0 for a new store).
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// When the epoch began, ns since the Unix epoch: the `now_ns` of the last
    /// [`SessionStore::reset`], or the wall clock when the store was created.
    pub fn created_at_ns(&self) -> u64 {
        self.state.created_at_ns
    }

    /// The next outbound seq to assign (starts at 1).
    pub fn next_sender_seq(&self) -> u64 {
        self.state.next_sender_seq
    }

    /// The next inbound seq expected (starts at 1).
    pub fn next_target_seq(&self) -> u64 {
        self.state.next_target_seq
    }

    /// Every application message of the epoch recorded with a seq at or above this one is still
    /// retained; older ones may have been dropped by retention (the caller gap-fills or rejects
    /// requests for them). 1 until the first drop.
    pub fn oldest_retained_seq(&self) -> u64 {
        self.oldest_retained_seq
    }

    /// Segments started since open.
    pub fn rollover_count(&self) -> u64 {
        self.rollover_count
    }

    /// Segment bytes retained on disk.
    pub fn retained_len_bytes(&self) -> u64 {
        self.retained_len_bytes
    }
}

impl<S: Storage> SessionStore<S> {
    /// Records that the message with sender seq `seq` is being sent: its bytes when it is an
    /// application message (`Some`), only the sequence advance for an admin message (`None`).
    /// `seq` must be [`SessionStore::next_sender_seq`]. When this returns `Ok`, the advance (and
    /// the message) survives a process crash. Allocates nothing; no system call unless the
    /// journal rolls over to a new segment or hints write-back.
    pub fn record_sent(&mut self, seq: u64, app_message: Option<&[u8]>) -> Result<(), StoreError> {
        let first_sender_seq = self.state.next_sender_seq;
        if seq != first_sender_seq {
            return Err(StoreError::SeqMismatch { expected: first_sender_seq, got: seq });
        }
        let next = seq.checked_add(1).filter(|next| valid_seq(*next)).ok_or(StoreError::InvalidSeq { seq })?;
        let appended = match app_message {
            None => {
                self.state.next_sender_seq = next;
                append_written(&mut self.journal, RECORD_KIND_SEQS, &encode_seqs(&self.state))
            }
            Some(message) => {
                let len_bytes = message.len();
                if len_bytes > self.limits.max_message_bytes {
                    let max_len_bytes = self.limits.max_message_bytes;
                    return Err(StoreError::MessageTooLong { len_bytes, max_len_bytes });
                }
                self.scratch[..SENT_SEQ_LEN_BYTES].copy_from_slice(&seq.to_le_bytes());
                self.scratch[SENT_SEQ_LEN_BYTES..SENT_SEQ_LEN_BYTES + len_bytes].copy_from_slice(message);
                let body = &self.scratch[..SENT_SEQ_LEN_BYTES + len_bytes];
                // The seq is consumed even if the write fails: this process never reuses it.
                self.state.next_sender_seq = next;
                let appended = append_written(&mut self.journal, RECORD_KIND_SENT, body);
                if let Ok(journal_seq) = appended {
                    // The record just appended ends the active segment's used bytes.
                    let active = self.journal.segments().last().expect("a journal always has a segment");
                    let offset = active.used_len_bytes - record_len_bytes(body.len()) as u64;
                    self.index.push_back(SentAt { seq, journal_seq, offset });
                }
                appended
            }
        };
        self.finish_append(appended, first_sender_seq)
    }

    /// Sets the next inbound seq expected (after each inbound message, or a SequenceReset).
    pub fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        if !valid_seq(seq) {
            return Err(StoreError::InvalidSeq { seq });
        }
        if seq == self.state.next_target_seq {
            return Ok(());
        }
        self.state.next_target_seq = seq;
        let appended = append_written(&mut self.journal, RECORD_KIND_SEQS, &encode_seqs(&self.state));
        self.finish_append(appended, self.state.next_sender_seq)
    }

    /// Moves the next outbound seq forward (a SequenceReset sent by us): the seqs skipped carry
    /// no stored message. Moving backwards is refused; only [`SessionStore::reset`] may.
    pub fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        let first_sender_seq = self.state.next_sender_seq;
        if !valid_seq(seq) {
            return Err(StoreError::InvalidSeq { seq });
        }
        if seq < first_sender_seq {
            return Err(StoreError::SenderSeqBackwards { next_sender_seq: first_sender_seq, requested: seq });
        }
        if seq == first_sender_seq {
            return Ok(());
        }
        self.state.next_sender_seq = seq;
        let appended = append_written(&mut self.journal, RECORD_KIND_SEQS, &encode_seqs(&self.state));
        self.finish_append(appended, first_sender_seq)
    }

    /// Starts a new epoch: both seqs back to 1, every stored message discarded, `epoch` and
    /// `now_ns` recorded. The reset record is synced, then every segment before the one holding
    /// it is deleted, so a crash leaves either the old epoch or the new one. Not for the hot
    /// path: it syncs.
    pub fn reset(&mut self, epoch: u64, now_ns: u64) -> Result<(), StoreError> {
        let reset_seq = self.start_epoch(epoch, now_ns)?;
        self.journal.commit(Durability::Fsync).map_err(|err| self.journal_error(err))?;
        let holding = self.segments.iter().rposition(|mark| mark.base_seq <= reset_seq).expect("a segment holds it");
        self.drop_segments_before(holding)
    }

    /// Appends a reset record and makes its epoch the state; returns its journal seq.
    fn start_epoch(&mut self, epoch: u64, created_at_ns: u64) -> Result<u64, StoreError> {
        let first_sender_seq = self.state.next_sender_seq;
        self.state = SeqState::new_epoch(epoch, created_at_ns);
        self.index.clear();
        self.oldest_retained_seq = 1;
        let appended = append_written(&mut self.journal, RECORD_KIND_RESET, &encode_reset(&self.state));
        let reset_seq = appended.as_ref().ok().copied();
        self.last_reset_seq = reset_seq.or(self.last_reset_seq);
        self.finish_append_with_state(appended, first_sender_seq, reset_seq)?;
        Ok(reset_seq.expect("finish_append_with_state returned Ok, so the append did"))
    }

    /// Visits the stored application messages with seq in `begin..=end_inclusive`, in order.
    /// Seqs without a stored message (admin messages, gaps, dropped by retention) are skipped;
    /// the caller gap-fills them. The journal checks every record's checksums and chain again on
    /// the way out; damage since open is [`StoreError::Journal`].
    ///
    /// Reading starts at the first message's offset ([`Journal::read_from_offset`]) and walks
    /// the records from there, so a request costs the records up to `end_inclusive`.
    pub fn for_each_sent(
        &self,
        begin: u64,
        end_inclusive: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), StoreError> {
        let start = self.index.partition_point(|sent| sent.seq < begin);
        let end = self.index.partition_point(|sent| sent.seq <= end_inclusive);
        if start >= end {
            return Ok(());
        }
        let (first, last) = (self.index[start], self.index[end - 1]);
        let replay =
            self.journal.read_from_offset(first.journal_seq, first.offset).map_err(|err| self.journal_error(err))?;
        let mut expected = self.index.range(start..end);
        // Records after the last wanted message (inbound traffic, admin messages) are not read.
        for record in replay.take_while(|record| record.as_ref().map_or(true, |r| r.seq <= last.journal_seq)) {
            let record = record.map_err(|err| self.journal_error(err))?;
            if record.kind != RECORD_KIND_SENT {
                continue;
            }
            let decoded = decode_record(record.kind, record.body);
            let Ok(StoreRecord::Sent { seq, message }) = decoded else {
                return Err(self.bad_record(record.seq, record.kind, "unreadable application message"));
            };
            // The index and the log must agree record for record: a mismatch is a bug or damage.
            if expected.next().is_none_or(|sent| (sent.seq, sent.journal_seq) != (seq, record.seq)) {
                return Err(self.bad_record(record.seq, record.kind, "application message not in the index"));
            }
            f(seq, message);
        }
        if expected.next().is_some() {
            return Err(self.bad_record(last.journal_seq, RECORD_KIND_SENT, "indexed message missing from the log"));
        }
        Ok(())
    }

    /// Makes everything recorded so far durable against power loss (a sync of what the active
    /// segment holds unsynced; sealed segments were synced at rollover), then applies retention.
    /// For disconnects, shutdown and other quiet moments: it blocks on the disk.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.journal.commit(Durability::Fsync).map_err(|err| self.journal_error(err))?;
        self.enforce_retention()
    }

    /// After an append: maps a failure, and on a rollover checkpoints the new segment and
    /// applies retention.
    #[inline]
    fn finish_append(&mut self, appended: Result<u64, JournalError>, first_sender_seq: u64) -> Result<(), StoreError> {
        self.finish_append_with_state(appended, first_sender_seq, None)
    }

    /// [`SessionStore::finish_append`] for a record that is a full-state record itself
    /// (`state_seq`).
    #[inline]
    fn finish_append_with_state(
        &mut self,
        appended: Result<u64, JournalError>,
        first_sender_seq: u64,
        state_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        if let Err(err) = appended {
            return Err(self.journal_error(err));
        }
        let rolled_over = self.journal.segments().len() != self.segments.len();
        if rolled_over {
            self.track_new_segments(first_sender_seq);
        }
        if let Some(state_seq) = state_seq {
            let active = self.segments.back_mut().expect("a journal always has a segment");
            active.state_seq.get_or_insert(state_seq);
        }
        if rolled_over {
            self.ensure_checkpoint()?;
            self.enforce_retention()?;
        }
        Ok(())
    }

    /// Marks the segments the journal started since the store last looked; the first of them
    /// began with a record appended when the next sender seq was `first_sender_seq`.
    #[cold]
    fn track_new_segments(&mut self, first_sender_seq: u64) {
        let known = self.segments.len();
        for info in self.journal.segments().skip(known) {
            self.segments.push_back(SegmentMark::new(&info, Some(first_sender_seq)));
            self.retained_len_bytes += info.segment_len_bytes;
            self.rollover_count += 1;
        }
    }

    /// Appends a checkpoint if the active segment holds no full-state record yet, so that
    /// retention may one day drop every segment before it.
    #[cold]
    fn ensure_checkpoint(&mut self) -> Result<(), StoreError> {
        while self.segments.back().is_some_and(|mark| mark.state_seq.is_none()) {
            let appended = append_written(&mut self.journal, RECORD_KIND_CHECKPOINT, &encode_checkpoint(&self.state));
            let checkpoint_seq = appended.map_err(|err| self.journal_error(err))?;
            // A checkpoint that did not fit rolled over and starts the next segment instead.
            self.track_new_segments(self.state.next_sender_seq);
            let active = self.segments.back_mut().expect("a journal always has a segment");
            active.state_seq.get_or_insert(checkpoint_seq);
        }
        Ok(())
    }

    /// Drops the oldest segments while more than [`StoreLimits::max_retained_bytes`] are
    /// retained, cutting only where the log that remains starts with a synced full-state record.
    #[cold]
    fn enforce_retention(&mut self) -> Result<(), StoreError> {
        let max_retained_bytes = self.limits.max_retained_bytes;
        if self.retained_len_bytes <= max_retained_bytes {
            return Ok(());
        }
        let synced_seq = self.journal.synced_seq();
        let mut remaining_len_bytes = self.retained_len_bytes;
        let mut cut = None;
        for (position, mark) in self.segments.iter().enumerate().skip(1) {
            remaining_len_bytes -= self.segments[position - 1].len_bytes;
            if mark.state_seq.is_some_and(|state_seq| state_seq <= synced_seq) {
                cut = Some(position);
                if remaining_len_bytes <= max_retained_bytes {
                    break;
                }
            }
        }
        match cut {
            Some(position) => self.drop_segments_before(position),
            None => Ok(()),
        }
    }

    /// Deletes the segments before `self.segments[position]`, whose full-state record the
    /// caller made sure is synced, and forgets their messages.
    fn drop_segments_before(&mut self, position: usize) -> Result<(), StoreError> {
        if position == 0 {
            return Ok(());
        }
        let base_seq = self.segments[position].base_seq;
        self.journal.remove_segments_before(base_seq).map_err(|err| self.journal_error(err))?;
        for mark in self.segments.drain(..position) {
            self.retained_len_bytes -= mark.len_bytes;
        }
        let dropped_messages = self.index.partition_point(|sent| sent.journal_seq < base_seq);
        self.index.drain(..dropped_messages);
        self.oldest_retained_seq = self.oldest_retained_seq.max(self.compute_oldest_retained_seq());
        Ok(())
    }

    /// The oldest seq every later message of the epoch is retained from.
    fn compute_oldest_retained_seq(&self) -> u64 {
        let first_seq = self.journal.first_seq();
        if self.last_reset_seq.is_some_and(|reset_seq| reset_seq >= first_seq) {
            return 1;
        }
        let first_marked = self.segments.iter().find_map(|mark| mark.first_sender_seq);
        first_marked.unwrap_or(self.state.next_sender_seq)
    }

    #[cold]
    fn journal_error(&self, source: JournalError) -> StoreError {
        StoreError::Journal { store: self.label.clone(), source }
    }

    #[cold]
    fn bad_record(&self, journal_seq: u64, kind: u16, reason: &'static str) -> StoreError {
        StoreError::BadRecord { store: self.label.clone(), journal_seq, kind, reason }
    }
}

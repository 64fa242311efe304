//! The persistent per-session message store: sequence numbers and sent application messages.
//!
//! Both order-entry sessions keep one [`SessionStore`] per counterparty session: FIX 4.4 (sequence
//! numbers survive restarts; a ResendRequest is answered from stored application messages, and
//! seqs without stored bytes are gap-filled) and the FIXP-style SBE session (a RetransmitRequest
//! is answered from stored messages; next sequence numbers are kept per SessionId/SessionVerId,
//! the SessionVerId being the store's [`epoch`](SessionStore::epoch)).
//!
//! # Invariants
//!
//! - Writes run on the gateway I/O thread, so they are a copy into a preallocated shared mapping,
//!   never a syscall. Once a write call returns, its effect survives a crash of the process (it
//!   is in the page cache); it survives a crash of the machine only after
//!   [`SessionStore::flush`] (msync). Dropping a store does not flush: a drop is a `kill -9`.
//! - After any crash, [`SessionStore::next_sender_seq`] is at least one more than every seq
//!   passed to a [`SessionStore::record_sent`] that returned, so an outbound seq is never
//!   reused. Outside [`SessionStore::reset`] the sender seq never goes backwards.
//! - Recovery refuses to guess, like the journal's: damaged bytes at the tail of the last segment
//!   with nothing good after them are a torn write and are cut; any other damage is
//!   [`StoreError::Corrupt`] naming the file and byte offset, and the store does not open.
//!   Committed history is never truncated.
//! - A limit on everything ([`StoreLimits`]): segment size, bytes retained, message size. The
//!   store is never "full": it rolls to a new segment and drops the oldest one past the
//!   retention limit; [`SessionStore::oldest_retained_seq`] says what is still answerable.
//! - Nothing read from disk can panic the process: every field is checked before it is used.
//! - One `SessionStore` per session name and directory at a time (the `sable` process is the only
//!   writer of its data directory, which the journal locks; the session layer opens each session
//!   once).
//!
//! # Where the cost goes
//!
//! `record_sent` of an application message copies a 24-byte header and the payload into the
//! mapping and computes a CRC32C over them; an admin message (`None`), a
//! [`SessionStore::set_next_target_seq`] or a [`SessionStore::set_next_sender_seq`] rewrites one
//! 32-byte state slot in place (two slots, alternating, so a torn slot write leaves the other one
//! good). The next segment is created, zero-filled, fsynced and mapped by a short-lived helper
//! thread as soon as the previous one is taken into use, and segments dropped by retention are
//! unmapped and deleted there too, so a rollover on the I/O thread is a header copy plus a thread
//! spawn. Measured numbers are in `gateway/tests/store.rs` (`record_sent_cost`).
//!
//! # On-disk layout
//!
//! A store is a set of segment files in one directory, named `<name>.<index>.store` where `index`
//! is a `u64` zero-padded to 20 digits (names sort by index). Indices increase by one per segment
//! over the store's whole life, across resets. Each file is preallocated to its
//! `segment_len_bytes` (zero-filled); bytes past the last record are zero. All integers are
//! little-endian. Checksums are CRC32C (Castagnoli).
//!
//! ## Segment header (128 bytes at offset 0)
//!
//! | offset | size | field               | meaning                                                    |
//! |-------:|-----:|---------------------|------------------------------------------------------------|
//! | 0      | 8    | `magic`             | [`STORE_MAGIC`] `b"SABLESES"`                              |
//! | 8      | 2    | `format_version`    | [`FORMAT_VERSION`] (1)                                     |
//! | 10     | 6    | `reserved0`         | zero                                                       |
//! | 16     | 8    | `segment_index`     | equals the index in the file name                          |
//! | 24     | 8    | `epoch_start_index` | index of the first segment of this epoch; files with a lower index belong to an epoch discarded by a reset |
//! | 32     | 8    | `epoch`             | caller-defined epoch tag (SBE SessionVerId, FIX reset counter) |
//! | 40     | 8    | `created_at_ns`     | when the epoch began, ns since the Unix epoch              |
//! | 48     | 8    | `segment_len_bytes` | preallocated file length                                   |
//! | 56     | 8    | `base_sender_seq`   | next sender seq when the segment was started; every record in it has a seq at least this |
//! | 64     | 60   | `reserved1`         | zero                                                       |
//! | 124    | 4    | `header_checksum`   | CRC32C of bytes 0..124                                     |
//!
//! ## State slots (2 × 32 bytes at offsets 128 and 160; 192..256 zero)
//!
//! | offset | size | field             | meaning                                                      |
//! |-------:|-----:|-------------------|--------------------------------------------------------------|
//! | 0      | 8    | `generation`      | ≥ 1; generation `g` lives in slot `g % 2`                     |
//! | 8      | 8    | `next_sender_seq` | as of this generation (application records after it may raise it) |
//! | 16     | 8    | `next_target_seq` | next inbound seq expected                                    |
//! | 24     | 4    | `reserved`        | zero                                                         |
//! | 28     | 4    | `checksum`        | CRC32C of bytes 0..28                                        |
//!
//! Each update writes generation + 1 into the other slot; the valid slot with the higher
//! generation wins. Only the last segment's slots are current; a new segment starts with
//! generation 1 holding the state at rollover.
//!
//! ## Record (24-byte header, payload, zero padding to a multiple of 8), from offset 256
//!
//! | offset | size | field         | meaning                                                          |
//! |-------:|-----:|---------------|------------------------------------------------------------------|
//! | 0      | 4    | `checksum`    | CRC32C of header bytes 4..24 followed by the payload             |
//! | 4      | 4    | `payload_len` | payload length without padding                                   |
//! | 8      | 8    | `seq`         | sender seq of the message; strictly increasing through the epoch |
//! | 16     | 2    | `kind`        | [`RECORD_KIND_APP_MESSAGE`] (1); nothing else is defined         |
//! | 18     | 6    | `reserved`    | zero                                                             |
//! | 24     | n    | payload       | the message as sent                                              |
//! | 24 + n | 0–7  | padding       | zero; checked on read                                            |
//!
//! Only application messages are records. Admin messages and sequence changes live in the state
//! slots, so heartbeats and inbound traffic never consume log space. On recovery,
//! `next_sender_seq = max(slot, last record's seq + 1, base_sender_seq)` (the sender seq is
//! monotonic within an epoch, so the maximum is exact) and `next_target_seq` comes from the slot.
//! An all-zero record header never checks out (seq 0 is invalid); it marks the end of the log.
//!
//! # Recovery at open
//!
//! | found                                                            | last segment            | earlier segment |
//! |------------------------------------------------------------------|-------------------------|-----------------|
//! | zeros after the last good record                                 | end of log              | end of segment  |
//! | damaged bytes, nothing good after them                           | torn tail: zeroed       | corrupt         |
//! | damaged bytes, then a good record with a higher seq              | corrupt                 | corrupt         |
//! | a good record whose seq is not above the previous one            | corrupt                 | corrupt         |
//! | file shorter than its header says                                | torn: extended with zeros | corrupt       |
//! | unusable header (zeros, torn) and no good record in the file     | unused spare or torn creation: deleted | corrupt |
//! | file with an index below the last segment's `epoch_start_index`  | leftover of a reset: deleted | same       |
//! | a missing index between two segments of the epoch               | corrupt                 | corrupt         |
//! | neither state slot checks out                                    | corrupt                 | (not read)      |

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::{Mmap, MmapMut, MmapOptions};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First eight bytes of every segment file.
pub const STORE_MAGIC: [u8; 8] = *b"SABLESES";
/// Format version written into new segments; the only one this build reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN_BYTES: usize = 128;
/// Offset of the first of the two state slots.
pub const STATE_SLOTS_OFFSET: usize = 128;
/// Size of one state slot.
pub const STATE_SLOT_LEN_BYTES: usize = 32;
/// Offset of the first record in a segment.
pub const RECORDS_OFFSET: usize = 256;
/// Size of a record header.
pub const RECORD_HEADER_LEN_BYTES: usize = 24;
/// Every record starts at a multiple of this, so a forward scan for surviving records only looks
/// at aligned offsets.
pub const RECORD_ALIGN_BYTES: usize = 8;
/// The only record kind: an application message as sent.
pub const RECORD_KIND_APP_MESSAGE: u16 = 1;
/// Extension of segment files.
pub const SEGMENT_FILE_EXTENSION: &str = "store";
/// Digits of the segment index in a file name: enough for any `u64`.
pub const SEGMENT_INDEX_DIGITS: usize = 20;

/// Average message size a segment's in-memory index is preallocated for (a FIX execution
/// report is 250-300 bytes, an SBE one 160): 16 MiB segments reserve 65,536 entries (1 MiB).
pub const INDEX_RESERVE_MESSAGE_BYTES: u64 = 256;
/// Longest session name accepted by [`SessionStore::open`].
pub const MAX_NAME_LEN_BYTES: usize = 128;
/// Upper bound for [`StoreLimits::max_message_bytes`].
pub const MAX_MESSAGE_LEN_BYTES: usize = 1 << 20;
/// Lower bound for [`StoreLimits::segment_bytes`] (small segments are for tests).
pub const MIN_SEGMENT_LEN_BYTES: u64 = 8 * 1024;
/// Upper bound for [`StoreLimits::segment_bytes`]: record offsets are kept as `u32`.
pub const MAX_SEGMENT_LEN_BYTES: u64 = 1 << 30;
/// Segment lengths are a multiple of this (the page size), so mappings cover whole pages.
pub const SEGMENT_LEN_ALIGN_BYTES: u64 = 4096;

const _: () = assert!(size_of::<SegmentHeader>() == SEGMENT_HEADER_LEN_BYTES);
const _: () = assert!(size_of::<StateSlot>() == STATE_SLOT_LEN_BYTES);
const _: () = assert!(size_of::<RecordHeader>() == RECORD_HEADER_LEN_BYTES);
const _: () = assert!(STATE_SLOTS_OFFSET + 2 * STATE_SLOT_LEN_BYTES <= RECORDS_OFFSET);
const _: () = assert!(RECORDS_OFFSET.is_multiple_of(RECORD_ALIGN_BYTES));

/// Bounds of one store. Checked by [`SessionStore::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Preallocated length of each new segment file: a multiple of 4096 between
    /// [`MIN_SEGMENT_LEN_BYTES`] and [`MAX_SEGMENT_LEN_BYTES`], big enough for one message of
    /// `max_message_bytes`. Existing segments keep the length they were created with.
    pub segment_bytes: u64,
    /// Segment bytes kept on disk (not counting the one preallocated spare). When a rollover
    /// takes the total above this, the oldest segments are dropped; the newest one always stays.
    /// At least `segment_bytes`.
    pub max_retained_bytes: u64,
    /// Largest application message [`SessionStore::record_sent`] accepts, at most
    /// [`MAX_MESSAGE_LEN_BYTES`].
    pub max_message_bytes: usize,
}

impl Default for StoreLimits {
    /// 16 MiB segments (~70k messages of 200 bytes), 256 MiB retained, 64 KiB messages.
    fn default() -> Self {
        StoreLimits { segment_bytes: 16 << 20, max_retained_bytes: 256 << 20, max_message_bytes: 64 << 10 }
    }
}

impl StoreLimits {
    /// Checks the limits against each other and the format's bounds.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |reason| Err(StoreError::InvalidLimits { reason });
        if self.max_message_bytes > MAX_MESSAGE_LEN_BYTES {
            return invalid("max_message_bytes is over MAX_MESSAGE_LEN_BYTES");
        }
        if !(MIN_SEGMENT_LEN_BYTES..=MAX_SEGMENT_LEN_BYTES).contains(&self.segment_bytes) {
            return invalid("segment_bytes is outside MIN_SEGMENT_LEN_BYTES..=MAX_SEGMENT_LEN_BYTES");
        }
        if !self.segment_bytes.is_multiple_of(SEGMENT_LEN_ALIGN_BYTES) {
            return invalid("segment_bytes is not a multiple of 4096");
        }
        if (RECORDS_OFFSET + record_len_bytes(self.max_message_bytes)) as u64 > self.segment_bytes {
            return invalid("a message of max_message_bytes does not fit into an empty segment");
        }
        if self.max_retained_bytes < self.segment_bytes {
            return invalid("max_retained_bytes is below segment_bytes");
        }
        Ok(())
    }
}

/// Everything that can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The session name cannot name files.
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
    /// The store is damaged other than by a torn tail: recovery refuses to guess.
    #[error("session store corrupt in {} at byte {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damage inside it.
        offset: u64,
        /// What is wrong there.
        reason: CorruptReason,
    },
    /// A file operation failed.
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

/// What is wrong with bytes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// The file is shorter than a segment header plus state slots.
    #[error("file is {file_len_bytes} bytes, too short for a segment header")]
    FileTooShort {
        /// Length of the file.
        file_len_bytes: u64,
    },
    /// The segment header's checksum does not match (a zeroed header reads as this too).
    #[error("segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum {
        /// Stored checksum.
        stored: u32,
        /// Computed checksum.
        computed: u32,
    },
    /// The header does not start with [`STORE_MAGIC`].
    #[error("bad magic")]
    BadMagic,
    /// The header names a format version this build cannot read.
    #[error("unsupported format version {found}")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// Reserved bytes in a header or slot are not zero.
    #[error("reserved bytes are not zero")]
    ReservedNotZero,
    /// The header's fields are out of range (zero base seq, bad segment length, epoch start after
    /// the segment).
    #[error("segment header field out of range: {field}")]
    HeaderFieldOutOfRange {
        /// The field.
        field: &'static str,
    },
    /// File name and header disagree on the segment index.
    #[error("file is named for segment {name_index} but its header says {header_index}")]
    Misnamed {
        /// Index from the file name.
        name_index: u64,
        /// Index from the header.
        header_index: u64,
    },
    /// File length and header disagree.
    #[error("file is {file_len_bytes} bytes but its header says {header_len_bytes}")]
    LenMismatch {
        /// Length of the file.
        file_len_bytes: u64,
        /// Length in the header.
        header_len_bytes: u64,
    },
    /// A segment is missing between two of the same epoch.
    #[error("segment {found_index} follows segment {previous_index}")]
    SegmentGap {
        /// Index of the previous segment.
        previous_index: u64,
        /// Index found.
        found_index: u64,
    },
    /// A segment of the current epoch carries another epoch's identity.
    #[error(
        "segment belongs to epoch {found} (started at segment {found_start}), not {expected} (segment {expected_start})"
    )]
    EpochMismatch {
        /// Epoch of the last segment.
        expected: u64,
        /// Its epoch start index.
        expected_start: u64,
        /// Epoch found.
        found: u64,
        /// Epoch start index found.
        found_start: u64,
    },
    /// A segment's base sender seq is not above the previous segment's last record.
    #[error("segment base sender seq {base_sender_seq} is not above the previous record's seq {previous_seq}")]
    BaseSeqBackwards {
        /// Base sender seq from the header.
        base_sender_seq: u64,
        /// Seq of the last record before the segment.
        previous_seq: u64,
    },
    /// Neither state slot of the last segment checks out.
    #[error("no valid state slot")]
    NoValidStateSlot,
    /// A record header's offset runs past the end of the segment.
    #[error("record of {payload_len} payload bytes runs past the end of the segment")]
    RecordOutOfBounds {
        /// Payload length from the header.
        payload_len: u64,
    },
    /// All-zero record header: the end of the written log, damage if anything follows.
    #[error("zero record header")]
    ZeroHeader,
    /// The record's checksum does not match.
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    RecordChecksum {
        /// Stored checksum.
        stored: u32,
        /// Computed checksum.
        computed: u32,
    },
    /// A record kind this build does not know.
    #[error("unknown record kind {kind}")]
    UnknownKind {
        /// The kind found.
        kind: u16,
    },
    /// A record's padding is not zero.
    #[error("record padding is not zero")]
    PaddingNotZero,
    /// A good record whose seq is not above the previous one (or below the segment's base).
    #[error("record seq {found} where at least {expected_min} was expected")]
    SeqOutOfOrder {
        /// The least acceptable seq.
        expected_min: u64,
        /// The seq found.
        found: u64,
    },
    /// Non-zero bytes after the last record of a sealed segment.
    #[error("garbage after the last record of a sealed segment")]
    TrailingGarbage,
}

impl CorruptReason {
    /// A record that checks out on its own but sits where it does not belong was written whole:
    /// never a torn write.
    fn is_misplacement(&self) -> bool {
        matches!(self, CorruptReason::SeqOutOfOrder { .. })
    }
}

/// What [`SessionStore::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments of the current epoch retained.
    pub segments: u64,
    /// Application messages found in them.
    pub messages: u64,
    /// Where a torn tail was cut (file, offset), if one was.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Bytes zeroed by the cut.
    pub torn_tail_cut_len_bytes: u64,
    /// Files deleted: unused spares, torn creations, leftovers of a reset, segments past
    /// retention.
    pub removed_files: u64,
}

/// Where one retained segment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Index (file name).
    pub index: u64,
    /// Next sender seq when the segment was started.
    pub base_sender_seq: u64,
    /// Application messages in it.
    pub message_count: u64,
    /// Bytes in use: header, slots and records.
    pub used_len_bytes: u64,
    /// Preallocated length.
    pub len_bytes: u64,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
struct SegmentHeader {
    magic: [u8; 8],
    format_version: U16,
    reserved0: [u8; 6],
    segment_index: U64,
    epoch_start_index: U64,
    epoch: U64,
    created_at_ns: U64,
    segment_len_bytes: U64,
    base_sender_seq: U64,
    reserved1: [u8; 60],
    header_checksum: U32,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
struct StateSlot {
    generation: U64,
    next_sender_seq: U64,
    next_target_seq: U64,
    reserved: [u8; 4],
    checksum: U32,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
struct RecordHeader {
    checksum: U32,
    payload_len: U32,
    seq: U64,
    kind: U16,
    reserved: [u8; 6],
}

/// Identity of an epoch, as every segment of it carries in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EpochId {
    epoch: u64,
    start_index: u64,
    created_at_ns: u64,
}

impl SegmentHeader {
    fn new(index: u64, id: EpochId, len_bytes: u64, base_sender_seq: u64) -> Self {
        let mut header = SegmentHeader {
            magic: STORE_MAGIC,
            format_version: U16::new(FORMAT_VERSION),
            reserved0: [0; 6],
            segment_index: U64::new(index),
            epoch_start_index: U64::new(id.start_index),
            epoch: U64::new(id.epoch),
            created_at_ns: U64::new(id.created_at_ns),
            segment_len_bytes: U64::new(len_bytes),
            base_sender_seq: U64::new(base_sender_seq),
            reserved1: [0; 60],
            header_checksum: U32::new(0),
        };
        header.header_checksum = U32::new(crc32c::crc32c(&header.as_bytes()[..SEGMENT_HEADER_LEN_BYTES - 4]));
        header
    }

    /// Reads and checks a header on its own (checksum, magic, version, reserved bytes, ranges).
    fn read(bytes: &[u8]) -> Result<SegmentHeader, CorruptReason> {
        let Some(bytes) = bytes.get(..SEGMENT_HEADER_LEN_BYTES) else {
            return Err(CorruptReason::FileTooShort { file_len_bytes: bytes.len() as u64 });
        };
        let header = SegmentHeader::read_from_bytes(bytes).map_err(|_| CorruptReason::BadMagic)?;
        // Checksum first: a torn header must read as torn, not as "bad magic".
        let computed = crc32c::crc32c(&bytes[..SEGMENT_HEADER_LEN_BYTES - 4]);
        if header.header_checksum.get() != computed {
            return Err(CorruptReason::HeaderChecksum { stored: header.header_checksum.get(), computed });
        }
        if header.magic != STORE_MAGIC {
            return Err(CorruptReason::BadMagic);
        }
        if header.format_version.get() != FORMAT_VERSION {
            return Err(CorruptReason::UnsupportedVersion { found: header.format_version.get() });
        }
        if header.reserved0 != [0; 6] || header.reserved1 != [0; 60] {
            return Err(CorruptReason::ReservedNotZero);
        }
        let out_of_range = |field| Err(CorruptReason::HeaderFieldOutOfRange { field });
        let len = header.segment_len_bytes.get();
        if !(MIN_SEGMENT_LEN_BYTES..=MAX_SEGMENT_LEN_BYTES).contains(&len)
            || !len.is_multiple_of(SEGMENT_LEN_ALIGN_BYTES)
        {
            return out_of_range("segment_len_bytes");
        }
        if header.base_sender_seq.get() == 0 || header.base_sender_seq.get() == u64::MAX {
            return out_of_range("base_sender_seq");
        }
        if header.epoch_start_index.get() > header.segment_index.get() {
            return out_of_range("epoch_start_index");
        }
        Ok(header)
    }

    fn epoch_id(&self) -> EpochId {
        EpochId {
            epoch: self.epoch.get(),
            start_index: self.epoch_start_index.get(),
            created_at_ns: self.created_at_ns.get(),
        }
    }
}

/// (generation, next_sender_seq, next_target_seq) of one state slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotState {
    generation: u64,
    next_sender_seq: u64,
    next_target_seq: u64,
}

fn encode_slot(state: SlotState) -> StateSlot {
    let mut slot = StateSlot {
        generation: U64::new(state.generation),
        next_sender_seq: U64::new(state.next_sender_seq),
        next_target_seq: U64::new(state.next_target_seq),
        reserved: [0; 4],
        checksum: U32::new(0),
    };
    slot.checksum = U32::new(crc32c::crc32c(&slot.as_bytes()[..STATE_SLOT_LEN_BYTES - 4]));
    slot
}

fn slot_offset(generation: u64) -> usize {
    STATE_SLOTS_OFFSET + (generation % 2) as usize * STATE_SLOT_LEN_BYTES
}

/// The newest valid slot of a segment whose first [`RECORDS_OFFSET`] bytes are `bytes`.
fn read_slots(bytes: &[u8]) -> Option<SlotState> {
    let mut best: Option<SlotState> = None;
    for position in 0..2u64 {
        let offset = STATE_SLOTS_OFFSET + position as usize * STATE_SLOT_LEN_BYTES;
        let Some(raw) = bytes.get(offset..offset + STATE_SLOT_LEN_BYTES) else { continue };
        let Ok(slot) = StateSlot::read_from_bytes(raw) else { continue };
        let state = SlotState {
            generation: slot.generation.get(),
            next_sender_seq: slot.next_sender_seq.get(),
            next_target_seq: slot.next_target_seq.get(),
        };
        let good = slot.checksum.get() == crc32c::crc32c(&raw[..STATE_SLOT_LEN_BYTES - 4])
            && slot.reserved == [0; 4]
            && state.generation != 0
            && state.generation % 2 == position
            && state.next_sender_seq != 0
            && state.next_target_seq != 0;
        if good && best.is_none_or(|b| state.generation > b.generation) {
            best = Some(state);
        }
    }
    best
}

/// On-disk length of a record with a payload of `payload_len` bytes: header, payload, padding.
pub const fn record_len_bytes(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN_BYTES + payload_len).next_multiple_of(RECORD_ALIGN_BYTES)
}

/// The on-disk file name of segment `index` of store `name`.
pub fn segment_file_name(name: &str, index: u64) -> String {
    format!("{name}.{index:0width$}.{SEGMENT_FILE_EXTENSION}", width = SEGMENT_INDEX_DIGITS)
}

/// The segment index in `file_name` if it is a segment of store `name`.
fn parse_segment_file_name(name: &str, file_name: &str) -> Option<u64> {
    let digits = file_name.strip_prefix(name)?.strip_prefix('.')?.strip_suffix(SEGMENT_FILE_EXTENSION)?;
    let digits = digits.strip_suffix('.')?;
    if digits.len() != SEGMENT_INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks that `name` can name files in a directory: `[A-Za-z0-9._-]`, not starting with a dot,
/// no `..`, at most [`MAX_NAME_LEN_BYTES`].
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

/// A record decoded in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DecodedRecord {
    seq: u64,
    payload_offset: usize,
    payload_len: usize,
    len_bytes: usize,
}

/// Decodes and checks the record at `offset` of `segment`.
fn decode_record(segment: &[u8], offset: usize) -> Result<DecodedRecord, CorruptReason> {
    let header_end = offset.saturating_add(RECORD_HEADER_LEN_BYTES);
    let Some(raw) = segment.get(offset..header_end) else {
        return Err(CorruptReason::RecordOutOfBounds { payload_len: 0 });
    };
    if raw.iter().all(|b| *b == 0) {
        return Err(CorruptReason::ZeroHeader);
    }
    let header = RecordHeader::read_from_bytes(raw).map_err(|_| CorruptReason::ZeroHeader)?;
    let payload_len = header.payload_len.get() as usize;
    let len_bytes = record_len_bytes(payload_len);
    let record_end = offset.saturating_add(len_bytes);
    if record_end > segment.len() {
        return Err(CorruptReason::RecordOutOfBounds { payload_len: payload_len as u64 });
    }
    let payload = &segment[header_end..header_end + payload_len];
    let computed = crc32c::crc32c_append(crc32c::crc32c(&raw[4..]), payload);
    if computed != header.checksum.get() {
        return Err(CorruptReason::RecordChecksum { stored: header.checksum.get(), computed });
    }
    if header.kind.get() != RECORD_KIND_APP_MESSAGE {
        return Err(CorruptReason::UnknownKind { kind: header.kind.get() });
    }
    if header.reserved != [0; 6] {
        return Err(CorruptReason::ReservedNotZero);
    }
    if segment[header_end + payload_len..record_end].iter().any(|b| *b != 0) {
        return Err(CorruptReason::PaddingNotZero);
    }
    let seq = header.seq.get();
    if seq == 0 {
        return Err(CorruptReason::SeqOutOfOrder { expected_min: 1, found: 0 });
    }
    Ok(DecodedRecord { seq, payload_offset: header_end, payload_len, len_bytes })
}

/// Writes a record for `payload` at the start of `dst`, which is zero and long enough. Padding
/// is left as the zeros that are there.
fn encode_record(dst: &mut [u8], seq: u64, payload: &[u8]) {
    let mut header = RecordHeader {
        checksum: U32::new(0),
        payload_len: U32::new(payload.len() as u32),
        seq: U64::new(seq),
        kind: U16::new(RECORD_KIND_APP_MESSAGE),
        reserved: [0; 6],
    };
    let checksum = crc32c::crc32c_append(crc32c::crc32c(&header.as_bytes()[4..]), payload);
    header.checksum = U32::new(checksum);
    dst[..RECORD_HEADER_LEN_BYTES].copy_from_slice(header.as_bytes());
    dst[RECORD_HEADER_LEN_BYTES..RECORD_HEADER_LEN_BYTES + payload.len()].copy_from_slice(payload);
}

fn is_all_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    words.all(|w| u64::from_ne_bytes(w.try_into().expect("chunk of 8")) == 0)
        && words.remainder().iter().all(|b| *b == 0)
}

/// Length of `bytes` up to and including its last non-zero byte.
fn end_of_non_zero(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1)
}

/// First aligned offset at or after `from` holding a record that checks out on its own with a
/// seq of at least `min_seq`: evidence that damage before it is not a torn tail.
fn find_record_after(segment: &[u8], from: usize, min_seq: u64) -> Option<usize> {
    let mut candidate = from.next_multiple_of(RECORD_ALIGN_BYTES);
    while candidate + RECORD_HEADER_LEN_BYTES <= segment.len() {
        // A header that checks out is never all zeros: jump over zero words quickly.
        if is_all_zero(&segment[candidate..candidate + RECORD_HEADER_LEN_BYTES]) {
            let next_word = (candidate + RECORD_HEADER_LEN_BYTES..segment.len())
                .step_by(RECORD_ALIGN_BYTES)
                .find(|at| segment[*at..(*at + RECORD_ALIGN_BYTES).min(segment.len())].iter().any(|b| *b != 0))?;
            // The earliest header window that reaches that word.
            candidate = (next_word + RECORD_ALIGN_BYTES)
                .saturating_sub(RECORD_HEADER_LEN_BYTES)
                .max(candidate + RECORD_ALIGN_BYTES);
            continue;
        }
        if decode_record(segment, candidate).is_ok_and(|record| record.seq >= min_seq) {
            return Some(candidate);
        }
        candidate += RECORD_ALIGN_BYTES;
    }
    None
}

/// How the record scan of one segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanEnd {
    /// Zeros after the last good record.
    Clean,
    /// The last segment ends in damaged bytes with nothing good after them.
    TornTail { cut_len_bytes: usize },
    /// Damage that is not a torn tail.
    Corrupt { reason: CorruptReason },
}

/// Result of [`scan_records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// Offset after the last good record.
    end_offset: usize,
    /// Seq of the last good record.
    last_seq: Option<u64>,
    end: ScanEnd,
}

/// Reads the records of a segment from [`RECORDS_OFFSET`], pushing (seq, offset) of each into
/// `index`; `min_seq` is the least seq the first record may carry.
fn scan_records(segment: &[u8], min_seq: u64, is_last: bool, index: &mut Vec<(u64, u32)>) -> Scan {
    let mut offset = RECORDS_OFFSET;
    let mut expected_min = min_seq;
    let mut last_seq = None;
    let reason = loop {
        if offset == segment.len() {
            return Scan { end_offset: offset, last_seq, end: ScanEnd::Clean };
        }
        match decode_record(segment, offset) {
            Ok(record) if record.seq >= expected_min => {
                index.push((record.seq, offset as u32));
                last_seq = Some(record.seq);
                expected_min = record.seq.saturating_add(1);
                offset += record.len_bytes;
            }
            Ok(record) => break CorruptReason::SeqOutOfOrder { expected_min, found: record.seq },
            Err(reason) => break reason,
        }
    };
    let end = if reason.is_misplacement() {
        ScanEnd::Corrupt { reason }
    } else if is_all_zero(&segment[offset..]) {
        ScanEnd::Clean
    } else if find_record_after(segment, offset + RECORD_ALIGN_BYTES, expected_min).is_some() {
        ScanEnd::Corrupt { reason }
    } else if is_last {
        ScanEnd::TornTail { cut_len_bytes: end_of_non_zero(&segment[offset..]) }
    } else {
        // A sealed segment was complete before the next one was taken into use.
        ScanEnd::Corrupt {
            reason: if reason == CorruptReason::ZeroHeader { CorruptReason::TrailingGarbage } else { reason },
        }
    };
    Scan { end_offset: offset, last_seq, end }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

fn now_unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("directory fsync", dir))
}

fn to_usize(len: u64, path: &Path) -> Result<usize, StoreError> {
    usize::try_from(len).map_err(|_| StoreError::Io {
        op: "map",
        path: path.to_path_buf(),
        source: io::Error::other("length overflows usize"),
    })
}

/// Maps `len_bytes` of `file` shared and writable, faulting the pages in up front.
fn map_mut(file: &File, len_bytes: u64, path: &Path) -> Result<MmapMut, StoreError> {
    let len = to_usize(len_bytes, path)?;
    // SAFETY: the mapping stays sound while nobody truncates or rewrites the file behind our
    // back. The store never shrinks a mapped file, one store instance owns a session's files, and
    // the module docs tell operators not to touch them.
    unsafe { MmapOptions::new().len(len).populate().map_mut(file) }.map_err(io_error("map", path))
}

/// Creates (or recreates) a zero-filled segment file of `len_bytes`, durable, and maps it.
/// Zeros are written rather than the file extended, so the blocks are allocated now and a full
/// disk is an error here, not a SIGBUS in the middle of a copy into the mapping.
fn create_segment_file(path: &Path, len_bytes: u64) -> Result<MmapMut, StoreError> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error("create segment", path))?;
    let mut left = len_bytes;
    while left > 0 {
        let chunk = left.min(ZEROS.len() as u64) as usize;
        file.write_all(&ZEROS[..chunk]).map_err(io_error("zero-fill segment", path))?;
        left -= chunk as u64;
    }
    file.sync_all().map_err(io_error("fsync segment", path))?;
    let mut map = map_mut(&file, len_bytes, path)?;
    // Fault every page in for writing here (on the helper thread, for spares), so the first copy
    // into each page on the I/O thread does not take a write-protect fault into the file
    // system (~2 µs on ext4, and it can block behind journal commits). The pages stay writable
    // until write-back cleans them (dirty_expire, 30 s by default).
    for page in (0..map.len()).step_by(SEGMENT_LEN_ALIGN_BYTES as usize) {
        map[page] = 0;
    }
    Ok(map)
}

/// A zero-filled, mapped segment file not yet taken into use.
#[derive(Debug)]
struct Spare {
    index: u64,
    path: PathBuf,
    map: MmapMut,
}

/// One retained segment.
#[derive(Debug)]
struct Segment {
    index: u64,
    path: PathBuf,
    map: MmapMut,
    base_sender_seq: u64,
    /// Offset after the last record; everything from here is zero.
    write_offset: usize,
    /// (seq, offset) of every application message, ascending.
    messages: Vec<(u64, u32)>,
    /// Written since the last [`SessionStore::flush`].
    dirty: bool,
}

/// Work for the helper thread: drop (unmap, delete) segments, then prepare the next spare.
fn background_job(
    dropped: Vec<Segment>,
    dir: PathBuf,
    spare_path: PathBuf,
    spare_index: u64,
    len_bytes: u64,
) -> Result<Spare, StoreError> {
    for segment in dropped {
        let Segment { path, map, .. } = segment;
        // Unmapping a large mapping tears down its page tables: done here, not on the I/O thread.
        drop(map);
        // A file that fails to go away is picked up again at the next open (as the oldest
        // segment, or a leftover of a reset) and deleted there, so the failure is harmless.
        let _ = fs::remove_file(&path);
    }
    let map = create_segment_file(&spare_path, len_bytes)?;
    // Makes both the deletions and the new file's entry durable.
    sync_dir(&dir)?;
    Ok(Spare { index: spare_index, path: spare_path, map })
}

/// The persistent store of one session: sequence numbers and sent application messages.
///
/// See the module docs for the format and the durability contract.
#[derive(Debug)]
pub struct SessionStore {
    dir: PathBuf,
    name: String,
    limits: StoreLimits,
    epoch_id: EpochId,
    next_sender_seq: u64,
    next_target_seq: u64,
    /// Generation of the newest state slot in the last segment.
    slot_generation: u64,
    /// Oldest first; the last one is written to. Never empty.
    segments: VecDeque<Segment>,
    retained_len_bytes: u64,
    /// The next segment, ready.
    spare: Option<Spare>,
    /// The helper thread preparing the next segment.
    preparing: Option<JoinHandle<Result<Spare, StoreError>>>,
    /// Index vectors of dropped segments, reused so steady state does not allocate.
    recycled_index: Vec<Vec<(u64, u32)>>,
    report: RecoveryReport,
    rollover_count: u64,
}

impl SessionStore {
    /// Opens the store of session `name` in `dir` (created if missing), recovering it, or
    /// creates it empty: epoch 0, both seqs 1, created now.
    pub fn open(dir: &Path, name: &str, limits: StoreLimits) -> Result<SessionStore, StoreError> {
        validate_name(name)?;
        limits.validate()?;
        fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        let mut report = RecoveryReport::default();

        let mut indices = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error("list directory", dir))? {
            let entry = entry.map_err(io_error("list directory", dir))?;
            if let Some(index) = entry.file_name().to_str().and_then(|f| parse_segment_file_name(name, f)) {
                indices.push(index);
            }
        }
        indices.sort_unstable();
        let highest_index_seen = indices.last().copied();
        let path_of = |index: u64| dir.join(segment_file_name(name, index));

        // 1. Trailing files without a usable header: the unused spare, or a torn creation.
        //    Deleted, unless records hide behind the header.
        let mut headers = Vec::with_capacity(indices.len());
        for &index in &indices {
            headers.push(FileProbe::read(index, &path_of(index))?);
        }
        while let Some(FileProbe { index, file, len, header: Err(reason), .. }) = headers.last() {
            let path = path_of(*index);
            if *len as usize > RECORDS_OFFSET {
                // SAFETY: as in `map_mut`; read-only and dropped before the file is deleted.
                let map = unsafe { Mmap::map(file) }.map_err(io_error("map", &path))?;
                if let Some(offset) = find_record_after(&map, RECORDS_OFFSET, 1) {
                    return Err(StoreError::Corrupt { file: path, offset: offset as u64, reason: *reason });
                }
            }
            fs::remove_file(&path).map_err(io_error("remove torn segment", &path))?;
            report.removed_files += 1;
            headers.pop();
        }

        // 2. Files from before the last segment's epoch are leftovers of a reset.
        let epoch_id = headers.last().and_then(|probe| probe.header.as_ref().ok()).map(|h| h.epoch_id());
        if let Some(id) = epoch_id {
            let leftovers = headers.iter().take_while(|probe| probe.index < id.start_index).count();
            for FileProbe { index, .. } in headers.drain(..leftovers) {
                let path = path_of(index);
                fs::remove_file(&path).map_err(io_error("remove reset leftover", &path))?;
                report.removed_files += 1;
            }
        }

        // 3. The current epoch: contiguous segments, each verified.
        let mut segments = VecDeque::with_capacity(headers.len() + 1);
        let mut previous: Option<(u64, u64)> = None; // (index, last seq or base - 1)
        let mut slot_state = None;
        let count = headers.len();
        for (position, FileProbe { index, file, mut len, header, prefix }) in headers.into_iter().enumerate() {
            let path = path_of(index);
            let is_last = position + 1 == count;
            let corrupt = |offset: u64, reason| StoreError::Corrupt { file: path.clone(), offset, reason };
            let header = header.map_err(|reason| corrupt(0, reason))?;
            let id = epoch_id.expect("a valid last header exists when any segment remains");
            if header.segment_index.get() != index {
                return Err(corrupt(
                    0,
                    CorruptReason::Misnamed { name_index: index, header_index: header.segment_index.get() },
                ));
            }
            if header.epoch_id() != id {
                return Err(corrupt(
                    0,
                    CorruptReason::EpochMismatch {
                        expected: id.epoch,
                        expected_start: id.start_index,
                        found: header.epoch.get(),
                        found_start: header.epoch_start_index.get(),
                    },
                ));
            }
            let header_len = header.segment_len_bytes.get();
            let mut truncated = false;
            if len != header_len {
                if is_last && len < header_len {
                    // The tail of the file is missing: the same as a torn tail of zeros.
                    file.set_len(header_len).map_err(io_error("extend truncated segment", &path))?;
                    truncated = true;
                    len = header_len;
                } else {
                    return Err(corrupt(
                        0,
                        CorruptReason::LenMismatch { file_len_bytes: len, header_len_bytes: header_len },
                    ));
                }
            }
            let base_sender_seq = header.base_sender_seq.get();
            if let Some((previous_index, previous_seq)) = previous {
                if index != previous_index + 1 {
                    return Err(corrupt(0, CorruptReason::SegmentGap { previous_index, found_index: index }));
                }
                if base_sender_seq <= previous_seq {
                    return Err(corrupt(0, CorruptReason::BaseSeqBackwards { base_sender_seq, previous_seq }));
                }
            }
            if is_last {
                slot_state = Some(
                    read_slots(&prefix)
                        .ok_or_else(|| corrupt(STATE_SLOTS_OFFSET as u64, CorruptReason::NoValidStateSlot))?,
                );
            }
            let mut map = map_mut(&file, len, &path)?;
            let mut messages = Vec::new();
            let scan = scan_records(&map, base_sender_seq, is_last, &mut messages);
            let mut dirty = false;
            match scan.end {
                ScanEnd::Clean if truncated => report.torn_tail = Some((path.clone(), scan.end_offset as u64)),
                ScanEnd::Clean => {}
                ScanEnd::TornTail { cut_len_bytes } => {
                    map[scan.end_offset..scan.end_offset + cut_len_bytes].fill(0);
                    report.torn_tail = Some((path.clone(), scan.end_offset as u64));
                    report.torn_tail_cut_len_bytes += cut_len_bytes as u64;
                    dirty = true;
                }
                ScanEnd::Corrupt { reason } => return Err(corrupt(scan.end_offset as u64, reason)),
            }
            report.messages += messages.len() as u64;
            previous = Some((index, scan.last_seq.unwrap_or(base_sender_seq - 1)));
            segments.push_back(Segment {
                index,
                path,
                map,
                base_sender_seq,
                write_offset: scan.end_offset,
                messages,
                dirty,
            });
        }

        let limits_len = limits.segment_bytes;
        let mut store = match (epoch_id, slot_state, previous) {
            (Some(epoch_id), Some(slot), Some((_, last_seq))) => {
                let base = segments.back().map_or(1, |s| s.base_sender_seq);
                SessionStore {
                    dir: dir.to_path_buf(),
                    name: name.to_owned(),
                    limits,
                    epoch_id,
                    next_sender_seq: slot.next_sender_seq.max(last_seq.saturating_add(1)).max(base),
                    next_target_seq: slot.next_target_seq,
                    slot_generation: slot.generation,
                    retained_len_bytes: segments.iter().map(|s| s.map.len() as u64).sum(),
                    segments,
                    spare: None,
                    preparing: None,
                    recycled_index: Vec::new(),
                    report,
                    rollover_count: 0,
                }
            }
            _ => {
                // A new store: the first segment is made here, synchronously.
                let index = highest_index_seen.map_or(1, |i| i.saturating_add(1));
                let path = path_of(index);
                let map = create_segment_file(&path, limits_len)?;
                sync_dir(dir)?;
                let epoch_id = EpochId { epoch: 0, start_index: index, created_at_ns: now_unix_ns() };
                let mut store = SessionStore {
                    dir: dir.to_path_buf(),
                    name: name.to_owned(),
                    limits,
                    epoch_id,
                    next_sender_seq: 1,
                    next_target_seq: 1,
                    slot_generation: 0,
                    segments: VecDeque::with_capacity(1),
                    retained_len_bytes: 0,
                    spare: None,
                    preparing: None,
                    recycled_index: Vec::new(),
                    report,
                    rollover_count: 0,
                };
                store.take_into_use(Spare { index, path, map }, 1);
                store.flush()?;
                store
            }
        };
        store.report.segments = store.segments.len() as u64;

        // 4. Retention, in case the limits shrank or a deletion was lost.
        while store.retained_len_bytes > store.limits.max_retained_bytes && store.segments.len() > 1 {
            let segment = store.segments.pop_front().expect("more than one segment");
            store.retained_len_bytes -= segment.map.len() as u64;
            let Segment { path, map, .. } = segment;
            drop(map);
            fs::remove_file(&path).map_err(io_error("remove segment past retention", &path))?;
            store.report.removed_files += 1;
        }
        if store.segments.iter().any(|s| s.dirty) {
            store.flush()?;
        }
        store.start_preparing(Vec::new());
        Ok(store)
    }

    /// The session name the store was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory holding the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The limits the store runs with.
    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// The caller-defined epoch tag set by the last [`SessionStore::reset`] (0 for a new store).
    pub fn epoch(&self) -> u64 {
        self.epoch_id.epoch
    }

    /// When the epoch began, ns since the Unix epoch: the `now_ns` of the last
    /// [`SessionStore::reset`], or the wall clock when the store was created.
    pub fn created_at_ns(&self) -> u64 {
        self.epoch_id.created_at_ns
    }

    /// The next outbound seq to assign (starts at 1).
    pub fn next_sender_seq(&self) -> u64 {
        self.next_sender_seq
    }

    /// The next inbound seq expected (starts at 1).
    pub fn next_target_seq(&self) -> u64 {
        self.next_target_seq
    }

    /// The lowest seq whose message may still be stored: messages below it were dropped by
    /// retention (the caller gap-fills or rejects requests for them). 1 until the first drop.
    pub fn oldest_retained_seq(&self) -> u64 {
        self.segments.front().map_or(1, |s| s.base_sender_seq)
    }

    /// What [`SessionStore::open`] found and did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Segments rolled over since open.
    pub fn rollover_count(&self) -> u64 {
        self.rollover_count
    }

    /// Segment bytes retained on disk (not counting the spare).
    pub fn retained_len_bytes(&self) -> u64 {
        self.retained_len_bytes
    }

    /// The retained segments, oldest first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = SegmentInfo> + '_ {
        self.segments.iter().map(|s| SegmentInfo {
            index: s.index,
            base_sender_seq: s.base_sender_seq,
            message_count: s.messages.len() as u64,
            used_len_bytes: s.write_offset as u64,
            len_bytes: s.map.len() as u64,
        })
    }

    /// Path of segment `index` of this store.
    pub fn segment_path(&self, index: u64) -> PathBuf {
        self.dir.join(segment_file_name(&self.name, index))
    }

    /// Records that the message with sender seq `seq` is being sent: its bytes when it is an
    /// application message (`Some`), only the sequence advance for an admin message (`None`).
    /// `seq` must be [`SessionStore::next_sender_seq`]. When this returns, the advance (and the
    /// message) survives a process crash.
    pub fn record_sent(&mut self, seq: u64, app_message: Option<&[u8]>) -> Result<(), StoreError> {
        if seq != self.next_sender_seq {
            return Err(StoreError::SeqMismatch { expected: self.next_sender_seq, got: seq });
        }
        let next = seq.checked_add(1).filter(|n| *n != u64::MAX).ok_or(StoreError::InvalidSeq { seq })?;
        let Some(message) = app_message else {
            self.next_sender_seq = next;
            self.write_slot();
            return Ok(());
        };
        if message.len() > self.limits.max_message_bytes {
            return Err(StoreError::MessageTooLong {
                len_bytes: message.len(),
                max_len_bytes: self.limits.max_message_bytes,
            });
        }
        let len_bytes = record_len_bytes(message.len());
        let active = self.segments.back().expect("a store always has a segment");
        if active.write_offset + len_bytes > active.map.len() {
            self.roll_over()?;
        }
        let active = self.segments.back_mut().expect("a store always has a segment");
        let offset = active.write_offset;
        encode_record(&mut active.map[offset..offset + len_bytes], seq, message);
        active.messages.push((seq, offset as u32));
        active.write_offset += len_bytes;
        active.dirty = true;
        self.next_sender_seq = next;
        Ok(())
    }

    /// Sets the next inbound seq expected (after each inbound message, or a SequenceReset).
    pub fn set_next_target_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        if seq == 0 || seq == u64::MAX {
            return Err(StoreError::InvalidSeq { seq });
        }
        self.next_target_seq = seq;
        self.write_slot();
        Ok(())
    }

    /// Moves the next outbound seq forward (a SequenceReset sent by us): the seqs skipped carry
    /// no stored message. Moving backwards is refused; only [`SessionStore::reset`] may.
    pub fn set_next_sender_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        if seq == 0 || seq == u64::MAX {
            return Err(StoreError::InvalidSeq { seq });
        }
        if seq < self.next_sender_seq {
            return Err(StoreError::SenderSeqBackwards { next_sender_seq: self.next_sender_seq, requested: seq });
        }
        self.next_sender_seq = seq;
        self.write_slot();
        Ok(())
    }

    /// Starts a new epoch: both seqs back to 1, every stored message discarded, `epoch` and
    /// `now_ns` recorded. The new segment is made durable (msync, directory fsync) before the old
    /// files are deleted, so a crash leaves either the old epoch or the new one. Not for the hot
    /// path: it syncs.
    pub fn reset(&mut self, epoch: u64, now_ns: u64) -> Result<(), StoreError> {
        let spare = self.take_spare()?;
        let old: Vec<Segment> = self.segments.drain(..).collect();
        self.retained_len_bytes = 0;
        self.epoch_id = EpochId { epoch, start_index: spare.index, created_at_ns: now_ns };
        self.next_sender_seq = 1;
        self.next_target_seq = 1;
        self.take_into_use(spare, 1);
        let active = self.segments.back_mut().expect("just pushed");
        let path = active.path.clone();
        active.map.flush_range(0, RECORDS_OFFSET).map_err(io_error("msync", &path))?;
        active.dirty = false;
        sync_dir(&self.dir)?;
        // The index vectors are kept for reuse; the maps go to the helper thread to be unmapped
        // and their files deleted.
        let mut old = old;
        for segment in &mut old {
            let messages = std::mem::take(&mut segment.messages);
            self.recycle(messages);
        }
        self.start_preparing(old);
        Ok(())
    }

    /// Visits the stored application messages with seq in `begin..=end_inclusive`, in order.
    /// Seqs without a stored message (admin messages, gaps, dropped by retention) are skipped;
    /// the caller gap-fills them. Each record's checksum is verified again before it is handed
    /// out; a mismatch (memory or file scribbled on) is [`StoreError::Corrupt`].
    pub fn for_each_sent(
        &self,
        begin: u64,
        end_inclusive: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<(), StoreError> {
        if begin > end_inclusive {
            return Ok(());
        }
        for segment in &self.segments {
            let Some(&(last_seq, _)) = segment.messages.last() else { continue };
            if last_seq < begin {
                continue;
            }
            if segment.messages[0].0 > end_inclusive {
                break;
            }
            let start = segment.messages.partition_point(|(seq, _)| *seq < begin);
            for &(seq, offset) in &segment.messages[start..] {
                if seq > end_inclusive {
                    return Ok(());
                }
                let record = decode_record(&segment.map, offset as usize)
                    .and_then(|r| {
                        if r.seq == seq {
                            Ok(r)
                        } else {
                            Err(CorruptReason::SeqOutOfOrder { expected_min: seq, found: r.seq })
                        }
                    })
                    .map_err(|reason| StoreError::Corrupt {
                        file: segment.path.clone(),
                        offset: offset as u64,
                        reason,
                    })?;
                f(seq, &segment.map[record.payload_offset..record.payload_offset + record.payload_len]);
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable against power loss (msync of the used range of
    /// every segment written since the last flush), and waits for the helper thread. For
    /// shutdown and other quiet moments: it blocks on the disk.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(handle) = self.preparing.take() {
            self.spare = join_preparing(handle, &self.dir).ok();
        }
        for segment in &mut self.segments {
            if segment.dirty {
                segment.map.flush_range(0, segment.write_offset).map_err(io_error("msync", &segment.path))?;
                segment.dirty = false;
            }
        }
        Ok(())
    }

    fn write_slot(&mut self) {
        let generation = self.slot_generation + 1;
        let slot = encode_slot(SlotState {
            generation,
            next_sender_seq: self.next_sender_seq,
            next_target_seq: self.next_target_seq,
        });
        let active = self.segments.back_mut().expect("a store always has a segment");
        let offset = slot_offset(generation);
        active.map[offset..offset + STATE_SLOT_LEN_BYTES].copy_from_slice(slot.as_bytes());
        active.dirty = true;
        self.slot_generation = generation;
    }

    /// Writes the header and first state slot into `spare` and makes it the segment written to.
    /// The slot goes first: a header that checks out promises a slot that does.
    fn take_into_use(&mut self, mut spare: Spare, base_sender_seq: u64) {
        let len_bytes = spare.map.len() as u64;
        let header = SegmentHeader::new(spare.index, self.epoch_id, len_bytes, base_sender_seq);
        let slot = encode_slot(SlotState {
            generation: 1,
            next_sender_seq: self.next_sender_seq,
            next_target_seq: self.next_target_seq,
        });
        spare.map[slot_offset(1)..slot_offset(1) + STATE_SLOT_LEN_BYTES].copy_from_slice(slot.as_bytes());
        spare.map[..SEGMENT_HEADER_LEN_BYTES].copy_from_slice(header.as_bytes());
        self.slot_generation = 1;
        self.retained_len_bytes += len_bytes;
        // The index of a segment is sized up front for messages of INDEX_RESERVE_MESSAGE_BYTES
        // on average, so the steady state does not reallocate it (a segment of smaller
        // messages grows it by doubling, amortised); recycled indexes keep their capacity.
        let mut messages = self.recycled_index.pop().unwrap_or_default();
        messages.reserve((len_bytes / INDEX_RESERVE_MESSAGE_BYTES) as usize);
        self.segments.push_back(Segment {
            index: spare.index,
            path: spare.path,
            map: spare.map,
            base_sender_seq,
            write_offset: RECORDS_OFFSET,
            messages,
            dirty: true,
        });
    }

    fn recycle(&mut self, mut messages: Vec<(u64, u32)>) {
        if self.recycled_index.len() < 2 {
            messages.clear();
            self.recycled_index.push(messages);
        }
    }

    /// The next segment: the spare, or what the helper thread made, or one made here if it
    /// failed.
    fn take_spare(&mut self) -> Result<Spare, StoreError> {
        let expected_index = self.segments.back().map_or(1, |s| s.index + 1);
        if self.spare.is_none()
            && let Some(handle) = self.preparing.take()
        {
            self.spare = join_preparing(handle, &self.dir).ok();
        }
        match self.spare.take() {
            Some(spare) if spare.index == expected_index && spare.map.len() as u64 == self.limits.segment_bytes => {
                Ok(spare)
            }
            _ => {
                let path = self.segment_path(expected_index);
                let map = create_segment_file(&path, self.limits.segment_bytes)?;
                sync_dir(&self.dir)?;
                Ok(Spare { index: expected_index, path, map })
            }
        }
    }

    fn roll_over(&mut self) -> Result<(), StoreError> {
        let spare = self.take_spare()?;
        self.take_into_use(spare, self.next_sender_seq);
        let mut dropped = Vec::new();
        while self.retained_len_bytes > self.limits.max_retained_bytes && self.segments.len() > 1 {
            let mut segment = self.segments.pop_front().expect("more than one segment");
            self.retained_len_bytes -= segment.map.len() as u64;
            let messages = std::mem::take(&mut segment.messages);
            self.recycle(messages);
            dropped.push(segment);
        }
        self.rollover_count += 1;
        self.start_preparing(dropped);
        Ok(())
    }

    /// Hands the helper thread the segments to drop and the next spare to make. If the thread
    /// cannot be spawned, the work is done here.
    fn start_preparing(&mut self, dropped: Vec<Segment>) {
        let index = self.segments.back().map_or(1, |s| s.index + 1);
        let dir = self.dir.clone();
        let path = self.segment_path(index);
        let len_bytes = self.limits.segment_bytes;
        let spawned = std::thread::Builder::new()
            .name("sable-store-prep".into())
            // The job needs almost no stack; a small one makes the spawn on the I/O thread cheaper.
            .stack_size(64 * 1024)
            .spawn(move || background_job(dropped, dir, path, index, len_bytes));
        // A failed spawn drops the closure and with it the dropped segments' maps; their files
        // are then deleted by retention at the next open, and the spare is made at rollover.
        self.preparing = spawned.ok();
    }
}

fn join_preparing(handle: JoinHandle<Result<Spare, StoreError>>, dir: &Path) -> Result<Spare, StoreError> {
    handle.join().unwrap_or_else(|_| {
        Err(StoreError::Io {
            op: "prepare segment",
            path: dir.to_path_buf(),
            source: io::Error::other("helper thread panicked"),
        })
    })
}

impl Drop for SessionStore {
    /// Waits for the helper thread (so no file is being written behind a later open). Does not
    /// msync: dropping is a process crash as far as durability goes.
    fn drop(&mut self) {
        if let Some(handle) = self.preparing.take() {
            let _ = handle.join();
        }
    }
}

/// One file of the store as found at open: its header checked on its own.
struct FileProbe {
    index: u64,
    file: File,
    len: u64,
    header: Result<SegmentHeader, CorruptReason>,
    /// The first [`RECORDS_OFFSET`] bytes (zeros past the end of a short file).
    prefix: [u8; RECORDS_OFFSET],
}

impl FileProbe {
    /// Opens `path` read-write and reads its header and state slots.
    fn read(index: u64, path: &Path) -> Result<FileProbe, StoreError> {
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io_error("open segment", path))?;
        let len = file.metadata().map_err(io_error("stat segment", path))?.len();
        let mut prefix = [0u8; RECORDS_OFFSET];
        let want = len.min(RECORDS_OFFSET as u64) as usize;
        file.read_exact(&mut prefix[..want]).map_err(io_error("read segment header", path))?;
        let header = SegmentHeader::read(&prefix[..want]);
        Ok(FileProbe { index, file, len, header, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_with(records: &[(u64, &[u8])], len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        let mut offset = RECORDS_OFFSET;
        for (seq, payload) in records {
            let record_len = record_len_bytes(payload.len());
            encode_record(&mut bytes[offset..offset + record_len], *seq, payload);
            offset += record_len;
        }
        bytes
    }

    #[test]
    fn record_round_trip_and_checks() {
        let bytes = segment_with(&[(7, b"hello"), (9, b"")], 1024);
        let first = decode_record(&bytes, RECORDS_OFFSET).unwrap();
        assert_eq!(first.seq, 7);
        assert_eq!(&bytes[first.payload_offset..first.payload_offset + first.payload_len], b"hello");
        assert_eq!(first.len_bytes, 32);
        let second = decode_record(&bytes, RECORDS_OFFSET + 32).unwrap();
        assert_eq!((second.seq, second.payload_len), (9, 0));
        assert_eq!(decode_record(&bytes, RECORDS_OFFSET + 56), Err(CorruptReason::ZeroHeader));
        // Padding is covered.
        let mut padded = bytes.clone();
        padded[RECORDS_OFFSET + 24 + 5] = 1;
        assert_eq!(decode_record(&padded, RECORDS_OFFSET), Err(CorruptReason::PaddingNotZero));
        // A length running off the end is not a panic.
        let mut long = bytes.clone();
        long[RECORDS_OFFSET + 4..RECORDS_OFFSET + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_record(&long, RECORDS_OFFSET), Err(CorruptReason::RecordOutOfBounds { .. })));
        assert!(decode_record(&bytes, usize::MAX - 3).is_err());
    }

    #[test]
    fn zero_header_never_checks_out() {
        let header = [0u8; RECORD_HEADER_LEN_BYTES];
        assert_ne!(crc32c::crc32c(&header[4..]), 0);
        let slots = [0u8; RECORDS_OFFSET];
        assert_eq!(read_slots(&slots), None);
        assert!(SegmentHeader::read(&slots).is_err());
    }

    #[test]
    fn slots_pick_the_newest_valid_generation() {
        let mut bytes = [0u8; RECORDS_OFFSET];
        for generation in 1..=5u64 {
            let slot = encode_slot(SlotState { generation, next_sender_seq: generation * 10, next_target_seq: 3 });
            let at = slot_offset(generation);
            bytes[at..at + STATE_SLOT_LEN_BYTES].copy_from_slice(slot.as_bytes());
        }
        assert_eq!(read_slots(&bytes).map(|s| s.next_sender_seq), Some(50));
        // Tear generation 5: generation 4 wins.
        bytes[slot_offset(5) + 9] ^= 0xff;
        assert_eq!(read_slots(&bytes).map(|s| s.next_sender_seq), Some(40));
    }

    #[test]
    fn scan_classifies_tails() {
        let len = 4096;
        let mut index = Vec::new();
        let clean = segment_with(&[(1, b"a"), (2, b"bb")], len);
        let scan = scan_records(&clean, 1, true, &mut index);
        assert_eq!((scan.end, scan.last_seq, index.len()), (ScanEnd::Clean, Some(2), 2));

        let mut torn = clean.clone();
        torn[RECORDS_OFFSET + 64] = 0x55;
        index.clear();
        let scan = scan_records(&torn, 1, true, &mut index);
        assert!(matches!(scan.end, ScanEnd::TornTail { cut_len_bytes: 1 }));
        index.clear();
        assert!(matches!(scan_records(&torn, 1, false, &mut index).end, ScanEnd::Corrupt { .. }));

        let mut middle = segment_with(&[(1, b"a"), (2, b"bb"), (3, b"ccc")], len);
        middle[RECORDS_OFFSET + 24] ^= 1;
        index.clear();
        let scan = scan_records(&middle, 1, true, &mut index);
        assert_eq!(scan.end_offset, RECORDS_OFFSET);
        assert!(matches!(scan.end, ScanEnd::Corrupt { reason: CorruptReason::RecordChecksum { .. } }));

        let out_of_order = segment_with(&[(5, b"a"), (5, b"b")], len);
        index.clear();
        assert!(matches!(
            scan_records(&out_of_order, 1, true, &mut index).end,
            ScanEnd::Corrupt { reason: CorruptReason::SeqOutOfOrder { expected_min: 6, found: 5 } }
        ));
        index.clear();
        assert!(matches!(
            scan_records(&segment_with(&[(3, b"a")], len), 4, true, &mut index).end,
            ScanEnd::Corrupt { reason: CorruptReason::SeqOutOfOrder { .. } }
        ));
    }

    #[test]
    fn find_record_after_skips_zeros() {
        let mut bytes = vec![0u8; 8192];
        let at = 5000;
        encode_record(&mut bytes[at..at + 32], 77, b"x");
        assert_eq!(find_record_after(&bytes, RECORDS_OFFSET, 1), Some(at));
        assert_eq!(find_record_after(&bytes, RECORDS_OFFSET, 78), None);
        assert_eq!(find_record_after(&bytes, at + 8, 1), None);
    }

    #[test]
    fn names() {
        for good in ["fix-SABLE-CLIENT1", "sbe-1", "a.b_c"] {
            validate_name(good).unwrap();
            let file = segment_file_name(good, 42);
            assert_eq!(parse_segment_file_name(good, &file), Some(42));
        }
        for bad in ["", "a/b", "..", "../x", ".hidden", "a\\b", "a b", "x..y", &"n".repeat(MAX_NAME_LEN_BYTES + 1)] {
            assert!(matches!(validate_name(bad), Err(StoreError::InvalidName { .. })), "{bad:?}");
        }
        // Another store's files never parse as ours.
        let other = segment_file_name("a.00000000000000000001", 5);
        assert_eq!(parse_segment_file_name("a", &other), None);
        assert_eq!(parse_segment_file_name("a", "a.00000000000000000001.store.tmp"), None);
    }

    #[test]
    fn limits_are_checked() {
        StoreLimits::default().validate().unwrap();
        let bad = [
            StoreLimits { segment_bytes: 4096, ..StoreLimits::default() },
            StoreLimits { segment_bytes: 10_000, ..StoreLimits::default() },
            StoreLimits { max_retained_bytes: 1, ..StoreLimits::default() },
            StoreLimits { segment_bytes: 8192, max_retained_bytes: 8192, max_message_bytes: 8192 },
            StoreLimits { max_message_bytes: MAX_MESSAGE_LEN_BYTES + 1, ..StoreLimits::default() },
        ];
        for limits in bad {
            assert!(matches!(limits.validate(), Err(StoreError::InvalidLimits { .. })), "{limits:?}");
        }
    }
}

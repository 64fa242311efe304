//! The journal's typed errors.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Everything that can go wrong in the journal.
///
/// `Clone` so that a writer that hit a storage failure can hand the same error back from every
/// later call (see [`crate::Journal`]); I/O errors are therefore held in an [`Arc`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The [`crate::JournalConfig`] is unusable.
    #[error("invalid journal config: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record body over [`crate::MAX_RECORD_BODY_LEN_BYTES`] was offered to `append`.
    #[error("record body is {len_bytes} bytes, over the {max_len_bytes}-byte limit")]
    BodyTooLong {
        /// Length of the offered body.
        len_bytes: usize,
        /// The limit.
        max_len_bytes: usize,
    },
    /// `append` was called with a sequence number that is not the next one.
    #[error("append out of sequence: expected seq {expected_seq}, got {got_seq}")]
    OutOfSequence {
        /// The only sequence number `append` accepts now.
        expected_seq: u64,
        /// The one it was given.
        got_seq: u64,
    },
    /// Records of an epoch lower than the journal's were offered: they come from a superseded
    /// primary.
    #[error("epoch {offered} is older than this journal's epoch {current}: a superseded primary's records are refused")]
    StaleEpoch {
        /// The journal's epoch.
        current: u32,
        /// The epoch offered.
        offered: u32,
    },
    /// A read asked for a sequence number the journal does not hold (archived, or not yet
    /// appended).
    #[error("seq {seq} is not in the journal, which holds seqs {first_seq} up to (not including) {next_seq}")]
    SeqNotInJournal {
        /// The requested sequence number.
        seq: u64,
        /// First sequence number still held.
        first_seq: u64,
        /// The next sequence number to be appended.
        next_seq: u64,
    },
    /// The log is damaged somewhere other than a repairable torn tail: recovery refuses to guess.
    /// Recover from the standby.
    #[error("journal corrupt in segment {segment:020}.seg at byte {offset} (expected seq {seq}): {reason}")]
    Corrupt {
        /// Base sequence number of the segment, which names its file.
        segment: u64,
        /// Byte offset of the damage inside the segment file.
        offset: u64,
        /// Sequence number expected at that position.
        seq: u64,
        /// What is wrong there.
        reason: CorruptReason,
    },
    /// The storage failed. Raised from a write path (`append`, `commit`, rollover) it also fails
    /// the writer for good: every later writer call returns this same error, because after a
    /// failed sync the kernel may have dropped the dirty pages and nothing can be retried safely.
    #[error("journal storage failed during {op}{}: {source}", segment_suffix(*.segment))]
    Io {
        /// What the journal was doing.
        op: IoOp,
        /// The segment involved, by base sequence number, when there is one.
        segment: Option<u64>,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
}

fn segment_suffix(segment: Option<u64>) -> String {
    match segment {
        Some(base_seq) => format!(" on segment {base_seq:020}.seg"),
        None => String::new(),
    }
}

impl JournalError {
    pub(crate) fn io(op: IoOp, segment: Option<u64>, source: io::Error) -> Self {
        JournalError::Io { op, segment, source: Arc::new(source) }
    }
}

/// The storage operation an [`JournalError::Io`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Opening (and locking) the journal directory.
    OpenStorage,
    /// Listing the segment files.
    ListSegments,
    /// Creating and preallocating a segment file.
    CreateSegment,
    /// Opening and mapping an existing segment file.
    OpenSegment,
    /// Copying bytes into a segment.
    Write,
    /// Making a range of a segment durable (msync / fdatasync).
    Sync,
    /// Asking the storage to start write-back of a range (`sync_file_range`).
    StartWriteback,
    /// Making the directory entries durable (fsync of the directory).
    SyncDir,
    /// Deleting a segment file.
    RemoveSegment,
    /// Moving a segment file to an archive directory.
    ArchiveSegment,
    /// Creating, preallocating and faulting in a spare segment file.
    CreateSpare,
    /// Opening an existing spare segment file.
    OpenSpare,
    /// Giving a spare its segment name (a rename).
    InstallSpare,
    /// Deleting a spare segment file that recovery found unused.
    RemoveSpare,
    /// Starting the journal's background thread.
    StartBackground,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::OpenStorage => "open journal directory",
            IoOp::ListSegments => "list segments",
            IoOp::CreateSegment => "create segment",
            IoOp::OpenSegment => "open segment",
            IoOp::Write => "write",
            IoOp::Sync => "sync",
            IoOp::StartWriteback => "start write-back",
            IoOp::SyncDir => "sync directory",
            IoOp::RemoveSegment => "remove segment",
            IoOp::ArchiveSegment => "archive segment",
            IoOp::CreateSpare => "create spare segment",
            IoOp::OpenSpare => "open spare segment",
            IoOp::InstallSpare => "install spare segment",
            IoOp::RemoveSpare => "remove spare segment",
            IoOp::StartBackground => "run the background thread",
        })
    }
}

/// Why bytes in a segment are not what the journal expects there.
///
/// Record-level reasons split in two: *damage* (the bytes do not check out — a torn write or a
/// flipped bit) and *misplacement* ([`CorruptReason::WrongSeq`], [`CorruptReason::ChainBroken`]: a
/// record that checks out on its own sits where it does not belong). Damage at the very tail of
/// the log is a torn write and is cut at open; misplacement is always corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// The record header is all zeros where a record must be.
    #[error("record header is all zeros where a record must be")]
    ZeroHeader,
    /// Too few bytes are left in the segment for a record header, and they are not zero.
    #[error("only {remaining_len_bytes} non-zero bytes left, too few for a record header")]
    Truncated {
        /// Bytes left before the end of the segment.
        remaining_len_bytes: u64,
    },
    /// The record header's own checksum does not match.
    #[error("record header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header.
        computed: u32,
    },
    /// The record header's reserved bytes are not zero.
    #[error("record header reserved bytes are not zero")]
    ReservedNotZero,
    /// The record claims a body longer than [`crate::MAX_RECORD_BODY_LEN_BYTES`].
    #[error("record body length {len_bytes} is over the limit")]
    BodyTooLong {
        /// The claimed body length.
        len_bytes: u32,
    },
    /// The record runs past the end of the segment.
    #[error("record runs past the end of the segment")]
    PastSegmentEnd,
    /// The record body's checksum does not match.
    #[error("record body checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BodyChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the body.
        computed: u32,
    },
    /// The zero padding after the body is not zero.
    #[error("record padding bytes are not zero")]
    PaddingNotZero,
    /// A record that checks out carries the wrong sequence number: misplaced or duplicated.
    #[error("record carries seq {found_seq} where seq {expected_seq} belongs")]
    WrongSeq {
        /// The sequence number that belongs here.
        expected_seq: u64,
        /// The one the record carries.
        found_seq: u64,
    },
    /// A record that checks out does not chain to the record before it: reordered or spliced.
    #[error("hash chain broken: parent checksum {found:#010x}, previous record's checksum {expected:#010x}")]
    ChainBroken {
        /// Checksum of the previous record.
        expected: u32,
        /// Parent checksum the record carries.
        found: u32,
    },
    /// Non-zero bytes follow the last record of a sealed segment.
    #[error("non-zero bytes after the last record of a sealed segment")]
    TrailingGarbage,
    /// The segment header does not start with the journal's magic bytes.
    #[error("segment header has bad magic bytes")]
    BadMagic,
    /// The segment header names a format version this build cannot read.
    #[error("segment header has unsupported format version {found}")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The segment header's checksum does not match.
    #[error("segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    SegmentHeaderChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header.
        computed: u32,
    },
    /// The segment file is shorter than a segment header.
    #[error("segment file is {file_len_bytes} bytes, too short for a segment header")]
    SegmentTooShort {
        /// Length of the file.
        file_len_bytes: u64,
    },
    /// The file name and the header disagree on the segment's base sequence number.
    #[error("segment file is named for seq {name_base_seq} but its header says {header_base_seq}")]
    SegmentMisnamed {
        /// Base sequence number from the file name.
        name_base_seq: u64,
        /// Base sequence number from the header.
        header_base_seq: u64,
    },
    /// The file length and the header disagree (the file was truncated or extended behind the
    /// journal's back).
    #[error("segment file is {file_len_bytes} bytes but its header says {header_len_bytes}")]
    SegmentLenMismatch {
        /// Length of the file.
        file_len_bytes: u64,
        /// Length recorded in the header.
        header_len_bytes: u64,
    },
    /// The segment does not start right after the previous one ends: records are missing or
    /// segments overlap.
    #[error("segment starts at seq {found_base_seq} but the previous segment ends before seq {expected_base_seq}")]
    SegmentGap {
        /// The base sequence number that would continue the previous segment.
        expected_base_seq: u64,
        /// The base sequence number found.
        found_base_seq: u64,
    },
    /// The segment header's chain anchor is not the checksum of the previous segment's last
    /// record.
    #[error("segment chain anchor {found:#010x} is not the previous segment's last checksum {expected:#010x}")]
    SegmentChainBroken {
        /// Checksum of the previous segment's last record.
        expected: u32,
        /// Anchor found in the header.
        found: u32,
    },
    /// A segment other than the last one holds no records.
    #[error("segment holds no records but is not the last one")]
    EmptySealedSegment,
}

impl CorruptReason {
    /// True for a record that checks out on its own but sits where it does not belong; such a
    /// record is never a torn write.
    pub fn is_misplacement(&self) -> bool {
        matches!(self, CorruptReason::WrongSeq { .. } | CorruptReason::ChainBroken { .. })
    }
}

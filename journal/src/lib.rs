//! sable's journal: the sequenced input log.
//!
//! Every input the sequencer stamps is appended here before its output may be released. Records
//! are opaque bytes with a `kind: u16`; the journal guarantees order, integrity and durability,
//! not meaning. Outputs are never journaled: replay re-derives them.
//!
//! # Invariants
//!
//! - Sequence numbers are strictly consecutive across the whole log; [`Journal::append`] refuses
//!   anything else.
//! - Every record carries the checksum of the record before it (a hash chain). Segment headers
//!   carry the checksum of the previous segment's last record, so a segment verifies on its own
//!   after older ones were archived.
//! - Bytes past the last record of a segment are zero. Segment files are preallocated and never
//!   truncated while mapped.
//! - A segment gets its name only after every segment before it was synced whole, so only the
//!   last *named* segment can have a torn tail. The next segment is written to before it has its
//!   name (see *Rollover* below); until then it is a spare, and recovery decides about it.
//! - Recovery refuses to guess. Damaged bytes at the tail with nothing good after them are a torn
//!   write and are cut; damage followed by a good record, a misplaced record, or a gap between
//!   segments is [`JournalError::Corrupt`] and the journal does not open. Committed history is
//!   never truncated.
//! - A storage failure on the write path fails the writer for good ([`Journal`] explains why).
//!
//! # Where to start reading
//!
//! [`journal`](Journal) (open/recovery, append, commit, retention), then `layout.rs` (the bytes),
//! `segment.rs` (the scan that classifies damage), `reader.rs` (replay), `rollover.rs` (moving to
//! the next segment off the writer's thread), `spares.rs` (what recovery does with spares),
//! `storage.rs` and its two implementations.
//!
//! # On-disk layout
//!
//! A journal is a directory of segment files named `NNNNNNNNNNNNNNNNNNNN.seg`: the sequence number
//! of the segment's first record, zero-padded to 20 digits so names sort in sequence order. Each
//! file is preallocated to [`JournalConfig::segment_len_bytes`]; unused space is zero. All
//! integers are little-endian. Checksums are CRC32C (Castagnoli).
//!
//! ## Segment header (64 bytes, at offset 0)
//!
//! | offset | size | field                | meaning                                                      |
//! |-------:|-----:|----------------------|--------------------------------------------------------------|
//! | 0      | 8    | `magic`              | `b"SABLEJNL"`                                                |
//! | 8      | 2    | `format_version`     | [`FORMAT_VERSION`] (1)                                       |
//! | 10     | 2    | `reserved0`          | zero                                                         |
//! | 12     | 4    | `prev_checksum`      | checksum of the previous segment's last record; 0 for the first segment of a log |
//! | 16     | 8    | `base_seq`           | sequence number of the first record; equals the file name    |
//! | 24     | 8    | `created_at_ns`      | wall clock at creation, ns since the Unix epoch (informational) |
//! | 32     | 8    | `segment_len_bytes`  | preallocated file length                                     |
//! | 40     | 20   | `reserved1`          | zero                                                         |
//! | 60     | 4    | `header_checksum`    | CRC32C of bytes 0..60                                        |
//!
//! Records follow from offset 64, back to back, each starting at a multiple of 8.
//!
//! ## Spare files
//!
//! `NNNNNNNNNNNNNNNNNNNN.spare`, numbered by a spare id (not a sequence number): a segment file
//! prepared ahead (preallocated, every page faulted in, directory entry durable), all zeros until
//! the writer moves on to it and writes a segment header. It is renamed to its segment name once
//! the segment before it is durable. Tools that list segments ignore spares.
//!
//! ## Record (40-byte header, body, zero padding to a multiple of 8)
//!
//! | offset | size | field              | meaning                                                        |
//! |-------:|-----:|--------------------|----------------------------------------------------------------|
//! | 0      | 4    | `header_checksum`  | CRC32C of header bytes 4..40; the record's checksum            |
//! | 4      | 4    | `body_len_bytes`   | body length without padding, at most [`MAX_RECORD_BODY_LEN_BYTES`] |
//! | 8      | 8    | `seq`              | sequence number                                                |
//! | 16     | 8    | `timestamp_ns`     | sequencer timestamp                                            |
//! | 24     | 4    | `body_checksum`    | CRC32C of the body                                             |
//! | 28     | 4    | `parent_checksum`  | `header_checksum` of the previous record in the log; 0 for the first |
//! | 32     | 2    | `kind`             | record kind, opaque to the journal                             |
//! | 34     | 4    | `epoch`            | leadership epoch of the sequencing primary, never decreasing   |
//! | 38     | 2    | `reserved`         | zero                                                           |
//! | 40     | n    | body               | `body_len_bytes` bytes                                         |
//! | 40 + n | 0–7  | padding            | zero; checked on read so every used bit is covered             |
//!
//! The header checksum covers the body checksum and the parent checksum, so it commits to the
//! body and, through the parent, to the whole history before it. An all-zero header never checks
//! out (the CRC32C of zeros is not zero); it marks the end of the written log.
//!
//! # Recovery at open
//!
//! | found at the first position without a good record          | last segment          | earlier segment |
//! |-------------------------------------------------------------|-----------------------|-----------------|
//! | zeros to the end of the file                                | end of log            | end of segment (the next must continue the sequence and chain) |
//! | damaged bytes, nothing good after them                      | torn tail: zeroed, appending resumes there | corrupt |
//! | damaged bytes, then a good record with seq ≥ the expected one | corrupt             | corrupt         |
//! | a good record with the wrong seq or parent checksum         | corrupt               | corrupt         |
//! | unusable segment header, no good record in the file         | torn creation: replaced | corrupt       |
//!
//! Then, before the repairs above, the spares (see *Rollover*):
//!
//! | spare found at open                                                      | what recovery does |
//! |--------------------------------------------------------------------------|--------------------|
//! | prepared and never used (zero header)                                    | with [`JournalConfig::background_rollover`], up to two of the configured length are kept: the background thread reads each whole and reuses it if every byte is zero, else removes it and makes a new one ([`Storage::reuse_spare`]); otherwise removed |
//! | header continues the log: its base seq follows the last named segment's last record, its chain anchor is that record's checksum, and that segment ends cleanly | installed: the segment before it synced whole, its header synced, renamed, directory synced; then scanned as the last segment (a torn tail in it is cut as usual). Repeats for a spare continuing that one. |
//! | any other header (its predecessor's tail was lost, or it belongs to nothing) | removed          |
//!
//! A spare is installed only when the named log ends exactly where its header says it must,
//! so installing never skips or invents a record; a spare behind a torn or lost tail holds only
//! records that were never acknowledged (see below) and goes.
//!
//! # Rollover
//!
//! When a record does not fit, [`Journal::append`] takes a spare prepared ahead by the
//! journal's background thread, writes its header and appends there at once. The background
//! thread then, in order: syncs the full segment whole, syncs the new header, renames the
//! spare to its segment name, syncs the directory. One job at a time, in rollover order, so
//! the invariant above holds. With [`JournalConfig::background_rollover`] off, `append` does
//! the same steps itself, in the same order. What each durability level promises meanwhile:
//!
//! - [`Durability::Fsync`]: [`Journal::synced_seq`] covers records of a new segment only once
//!   the steps above are done: a commit after a rollover waits for them (the writer never
//!   waits for them in `append`). So power loss at any point loses no synced record: the full
//!   segment's unsynced tail and the spare go together, and what was synced stays.
//! - [`Durability::Written`]: a process crash loses nothing. The page cache keeps the full
//!   segment and the spare; recovery installs the spare, because it continues the log exactly.
//!   Power loss promises nothing: the full segment's unsynced tail may be lost, and the spare
//!   behind it is removed.
//! - A failed background sync, rename or spare creation fails the writer for good, like a failed
//!   sync on the writer's own thread; the next `append` or `commit` reports it.
//!
//! A known limit: with [`Durability::Written`] only, a power loss can write pages back out of
//! order and leave a good unsynced record behind a lost one. Recovery then reports corruption
//! instead of cutting the tail (it cannot tell that apart from damage to synced history), and the
//! node must be recovered from its standby. Synced records are never affected.

mod error;
mod faulty_storage;
mod inspect;
mod journal;
mod layout;
mod mmap_storage;
mod reader;
mod rollover;
pub use rollover::BACKGROUND_THREAD_SUFFIX;
mod segment;
mod spares;
mod storage;
mod tail;

pub use error::{CorruptReason, IoOp, JournalError};
pub use faulty_storage::{CrashMode, FAULTY_PAGE_LEN_BYTES, FAULTY_SECTOR_LEN_BYTES, FaultySegment, FaultyStorage};
pub use inspect::{Dump, DumpEntry, Inspection, SegmentSummary, inspect};
pub use journal::{
    DEFAULT_SEGMENT_LEN_BYTES, Durability, Journal, JournalConfig, MAX_SEGMENT_LEN_BYTES, MIN_SEGMENT_LEN_BYTES,
    RecoveryReport,
};
pub use layout::{
    CHAIN_ORIGIN_CHECKSUM, FORMAT_VERSION, MAX_RECORD_BODY_LEN_BYTES, MAX_RECORD_LEN_BYTES, RECORD_ALIGN_BYTES,
    RECORD_HEADER_LEN_BYTES, Record, RecordHeader, SEGMENT_FILE_EXTENSION, SEGMENT_FILE_NAME_DIGITS,
    SEGMENT_HEADER_LEN_BYTES, SEGMENT_MAGIC, SPARE_FILE_EXTENSION, SegmentHeader, decode_record,
    decode_record_in_place, parse_segment_file_name, parse_spare_file_name, record_len_bytes, segment_file_name,
    spare_file_name,
};
pub use mmap_storage::{MmapSegment, MmapStorage};
pub use reader::Replay;
pub use segment::{SegmentInfo, SegmentStatus};
pub use storage::{SegmentStorage, Storage};
pub use tail::{IDLE_PROBE_EVERY, Tail};

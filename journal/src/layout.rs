//! The on-disk format: segment header, record header, checksums and segment file names.
//!
//! Pure functions over byte slices, so the format can be tested and fuzzed without files. The
//! byte tables are in the crate docs.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::CorruptReason;

/// First eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SABLEJNL";
/// Format version written into new segments; the only one this build reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of [`SegmentHeader`]; the first record starts here.
pub const SEGMENT_HEADER_LEN_BYTES: usize = 64;
/// Size of [`RecordHeader`].
pub const RECORD_HEADER_LEN_BYTES: usize = 40;
/// Every record starts at a multiple of this, so headers never straddle a cache line badly and
/// a forward scan for surviving records only has to look at aligned offsets.
pub const RECORD_ALIGN_BYTES: usize = 8;
/// Largest record body `append` accepts. Inputs are order-entry commands (tens of bytes); the
/// limit bounds the scan that classifies a damaged tail and the minimum segment size.
pub const MAX_RECORD_BODY_LEN_BYTES: usize = 64 * 1024;
/// Largest record on disk: header, maximum body, padding.
pub const MAX_RECORD_LEN_BYTES: usize = record_len_bytes(MAX_RECORD_BODY_LEN_BYTES);
/// Parent checksum of the very first record of a log.
pub const CHAIN_ORIGIN_CHECKSUM: u32 = 0;
/// Digits in a segment file name: enough for any `u64`, zero-padded so names sort by sequence.
pub const SEGMENT_FILE_NAME_DIGITS: usize = 20;
/// Extension of segment files.
pub const SEGMENT_FILE_EXTENSION: &str = "seg";
/// Extension of spare files: prepared segment files not yet installed under a segment name.
pub const SPARE_FILE_EXTENSION: &str = "spare";

/// Fixed header at offset 0 of every segment file. All integers little-endian.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct SegmentHeader {
    /// [`SEGMENT_MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub format_version: U16,
    /// Zero.
    pub reserved0: U16,
    /// Checksum of the last record of the previous segment ([`CHAIN_ORIGIN_CHECKSUM`] for the
    /// first segment of a log): the chain anchor, so a segment verifies on its own after older
    /// segments were archived.
    pub prev_checksum: U32,
    /// Sequence number of the segment's first record; also the file name.
    pub base_seq: U64,
    /// Wall-clock creation time, nanoseconds since the Unix epoch. Informational only.
    pub created_at_ns: U64,
    /// Preallocated length of the file.
    pub segment_len_bytes: U64,
    /// Zero.
    pub reserved1: [u8; 20],
    /// CRC32C of bytes 0..60 of this header.
    pub header_checksum: U32,
}

/// Fixed header in front of every record body. All integers little-endian.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct RecordHeader {
    /// CRC32C of bytes 4..40 of this header. It covers the body checksum and the parent
    /// checksum, so it is the record's checksum: the next record's parent.
    pub header_checksum: U32,
    /// Body length, without padding.
    pub body_len_bytes: U32,
    /// Sequence number.
    pub seq: U64,
    /// Sequencer timestamp, nanoseconds.
    pub timestamp_ns: U64,
    /// CRC32C of the body.
    pub body_checksum: U32,
    /// Checksum (`header_checksum`) of the previous record in the log.
    pub parent_checksum: U32,
    /// Record kind, opaque to the journal.
    pub kind: U16,
    /// The leadership epoch of the primary that sequenced the record (0 before any failover).
    /// Never decreases along the log; covered by the header checksum.
    pub epoch: U32,
    /// Zero.
    pub reserved: [u8; 2],
}

const _: () = assert!(size_of::<SegmentHeader>() == SEGMENT_HEADER_LEN_BYTES);
const _: () = assert!(size_of::<RecordHeader>() == RECORD_HEADER_LEN_BYTES);
const _: () = assert!(SEGMENT_HEADER_LEN_BYTES % RECORD_ALIGN_BYTES == 0);
const _: () = assert!(RECORD_HEADER_LEN_BYTES % RECORD_ALIGN_BYTES == 0);

/// Bytes covered by [`SegmentHeader::header_checksum`]: everything before it.
const SEGMENT_HEADER_CHECKED_LEN_BYTES: usize = SEGMENT_HEADER_LEN_BYTES - 4;
/// Bytes of [`RecordHeader`] covered by its checksum: everything after it.
const RECORD_HEADER_CHECKED_FROM: usize = 4;

/// On-disk length of a record with a body of `body_len_bytes`: header, body, zero padding to
/// [`RECORD_ALIGN_BYTES`].
pub const fn record_len_bytes(body_len_bytes: usize) -> usize {
    (RECORD_HEADER_LEN_BYTES + body_len_bytes + RECORD_ALIGN_BYTES - 1) & !(RECORD_ALIGN_BYTES - 1)
}

impl SegmentHeader {
    /// A header for a new segment, checksum filled in.
    pub fn new(base_seq: u64, prev_checksum: u32, created_at_ns: u64, segment_len_bytes: u64) -> Self {
        let mut header = SegmentHeader {
            magic: SEGMENT_MAGIC,
            format_version: U16::new(FORMAT_VERSION),
            reserved0: U16::new(0),
            prev_checksum: U32::new(prev_checksum),
            base_seq: U64::new(base_seq),
            created_at_ns: U64::new(created_at_ns),
            segment_len_bytes: U64::new(segment_len_bytes),
            reserved1: [0; 20],
            header_checksum: U32::new(0),
        };
        header.header_checksum = U32::new(header.computed_checksum());
        header
    }

    /// CRC32C over the checked part of the header.
    pub fn computed_checksum(&self) -> u32 {
        crc32c::crc32c(&self.as_bytes()[..SEGMENT_HEADER_CHECKED_LEN_BYTES])
    }

    /// Reads and checks the header at the start of `segment_bytes` (magic, version, checksum,
    /// reserved bytes). Whether it fits its file name and neighbours is the caller's business.
    pub fn read(segment_bytes: &[u8]) -> Result<SegmentHeader, CorruptReason> {
        let Some(bytes) = segment_bytes.get(..SEGMENT_HEADER_LEN_BYTES) else {
            return Err(CorruptReason::SegmentTooShort { file_len_bytes: segment_bytes.len() as u64 });
        };
        let header = SegmentHeader::read_from_bytes(bytes).expect("slice length equals header size");
        // Checksum first: a torn header must read as torn, not as "bad magic".
        let computed = header.computed_checksum();
        if header.header_checksum.get() != computed {
            return Err(CorruptReason::SegmentHeaderChecksum { stored: header.header_checksum.get(), computed });
        }
        if header.magic != SEGMENT_MAGIC {
            return Err(CorruptReason::BadMagic);
        }
        if header.format_version.get() != FORMAT_VERSION {
            return Err(CorruptReason::UnsupportedVersion { found: header.format_version.get() });
        }
        if header.reserved0.get() != 0 || header.reserved1 != [0; 20] {
            return Err(CorruptReason::ReservedNotZero);
        }
        Ok(header)
    }
}

impl RecordHeader {
    /// A header for `body`, both checksums filled in.
    pub fn new(seq: u64, timestamp_ns: u64, kind: u16, epoch: u32, body: &[u8], parent_checksum: u32) -> Self {
        let body_len_bytes = u32::try_from(body.len()).expect("body length checked against MAX_RECORD_BODY_LEN_BYTES");
        let mut header = RecordHeader {
            header_checksum: U32::new(0),
            body_len_bytes: U32::new(body_len_bytes),
            seq: U64::new(seq),
            timestamp_ns: U64::new(timestamp_ns),
            body_checksum: U32::new(crc32c::crc32c(body)),
            parent_checksum: U32::new(parent_checksum),
            kind: U16::new(kind),
            epoch: U32::new(epoch),
            reserved: [0; 2],
        };
        header.header_checksum = U32::new(header.computed_checksum());
        header
    }

    /// CRC32C over the checked part of the header.
    pub fn computed_checksum(&self) -> u32 {
        crc32c::crc32c(&self.as_bytes()[RECORD_HEADER_CHECKED_FROM..])
    }
}

/// One record as it sits in a segment, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Sequencer timestamp, nanoseconds.
    pub timestamp_ns: u64,
    /// Record kind, opaque to the journal.
    pub kind: u16,
    /// Leadership epoch of the primary that sequenced it.
    pub epoch: u32,
    /// This record's checksum (the header checksum); the next record's parent.
    pub checksum: u32,
    /// The previous record's checksum.
    pub parent_checksum: u32,
    /// The body, without padding.
    pub body: &'a [u8],
}

impl Record<'_> {
    /// On-disk length of this record, padding included.
    pub fn len_bytes(&self) -> usize {
        record_len_bytes(self.body.len())
    }
}

/// Checks the record at `offset` in `segment_bytes` on its own: header checksum, limits, body
/// checksum, zero padding. Does not check its place in the sequence or the chain.
pub fn decode_record(segment_bytes: &[u8], offset: usize) -> Result<Record<'_>, CorruptReason> {
    let remaining = segment_bytes.get(offset..).unwrap_or_default();
    let Some(header_bytes) = remaining.get(..RECORD_HEADER_LEN_BYTES) else {
        return Err(if is_all_zero(remaining) {
            CorruptReason::ZeroHeader
        } else {
            CorruptReason::Truncated { remaining_len_bytes: remaining.len() as u64 }
        });
    };
    let header = RecordHeader::ref_from_bytes(header_bytes).expect("slice length equals header size");
    let computed = header.computed_checksum();
    if header.header_checksum.get() != computed {
        // An all-zero header never checks out (the CRC of zeros is not zero), so this is where
        // the end of the written log shows up.
        return Err(if is_all_zero(header_bytes) {
            CorruptReason::ZeroHeader
        } else {
            CorruptReason::HeaderChecksum { stored: header.header_checksum.get(), computed }
        });
    }
    if header.reserved != [0; 2] {
        return Err(CorruptReason::ReservedNotZero);
    }
    let body_len_bytes = header.body_len_bytes.get();
    if body_len_bytes as usize > MAX_RECORD_BODY_LEN_BYTES {
        return Err(CorruptReason::BodyTooLong { len_bytes: body_len_bytes });
    }
    let record_len = record_len_bytes(body_len_bytes as usize);
    let Some(record_bytes) = remaining.get(..record_len) else {
        return Err(CorruptReason::PastSegmentEnd);
    };
    let body_end = RECORD_HEADER_LEN_BYTES + body_len_bytes as usize;
    let body = &record_bytes[RECORD_HEADER_LEN_BYTES..body_end];
    let computed = crc32c::crc32c(body);
    if header.body_checksum.get() != computed {
        return Err(CorruptReason::BodyChecksum { stored: header.body_checksum.get(), computed });
    }
    // Padding is outside both checksums; checking it keeps every bit of the used log covered.
    if !is_all_zero(&record_bytes[body_end..]) {
        return Err(CorruptReason::PaddingNotZero);
    }
    Ok(Record {
        seq: header.seq.get(),
        timestamp_ns: header.timestamp_ns.get(),
        kind: header.kind.get(),
        epoch: header.epoch.get(),
        checksum: header.header_checksum.get(),
        parent_checksum: header.parent_checksum.get(),
        body,
    })
}

/// [`decode_record`], then checks that the record is the one that belongs here.
pub fn decode_record_in_place(
    segment_bytes: &[u8],
    offset: usize,
    expected_seq: u64,
    expected_parent: u32,
) -> Result<Record<'_>, CorruptReason> {
    let record = decode_record(segment_bytes, offset)?;
    if record.seq != expected_seq {
        return Err(CorruptReason::WrongSeq { expected_seq, found_seq: record.seq });
    }
    if record.parent_checksum != expected_parent {
        return Err(CorruptReason::ChainBroken { expected: expected_parent, found: record.parent_checksum });
    }
    Ok(record)
}

/// True when every byte is zero. Word-at-a-time because recovery runs it over whole
/// preallocated segment tails.
pub(crate) fn is_all_zero(bytes: &[u8]) -> bool {
    let words = bytes.chunks_exact(8);
    let rest = words.remainder();
    rest.iter().all(|byte| *byte == 0) && words.into_iter().all(|word| word_of(word) == 0)
}

fn word_of(chunk: &[u8]) -> u64 {
    u64::from_ne_bytes(chunk.try_into().expect("chunks_exact(8) yields 8-byte chunks"))
}

/// Offset one past the last non-zero byte of `bytes`, or `None` if all are zero.
pub(crate) fn end_of_non_zero(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let whole_len = bytes.len() - words.remainder().len();
    if let Some(last) = words.remainder().iter().rposition(|byte| *byte != 0) {
        return Some(whole_len + last + 1);
    }
    let word_index = words.rposition(|word| word_of(word) != 0)?;
    let word = &bytes[word_index * 8..word_index * 8 + 8];
    let last = word.iter().rposition(|byte| *byte != 0).expect("word is non-zero");
    Some(word_index * 8 + last + 1)
}

/// First aligned offset at or after `from` that holds a record which checks out on its own and
/// carries a sequence number of at least `min_seq`: evidence that damage at `from` is not a torn
/// tail. Skips zero words quickly, so scanning a mostly empty preallocated segment is cheap.
pub(crate) fn find_record_after(segment_bytes: &[u8], from: usize, min_seq: u64) -> Option<usize> {
    let from = from.next_multiple_of(RECORD_ALIGN_BYTES);
    let mut candidate = from;
    while candidate + RECORD_HEADER_LEN_BYTES <= segment_bytes.len() {
        // A header that checks out is never all zeros, so only offsets whose header window
        // contains a non-zero word are worth decoding. Jump to the first such window.
        let window = &segment_bytes[candidate..candidate + RECORD_HEADER_LEN_BYTES];
        if is_all_zero(window) {
            let next_non_zero = first_non_zero_word(segment_bytes, candidate + RECORD_HEADER_LEN_BYTES)?;
            // The earliest header window that reaches that word.
            candidate = (next_non_zero + RECORD_ALIGN_BYTES)
                .saturating_sub(RECORD_HEADER_LEN_BYTES)
                .max(candidate + RECORD_ALIGN_BYTES);
            continue;
        }
        match decode_record(segment_bytes, candidate) {
            Ok(record) if record.seq >= min_seq => return Some(candidate),
            _ => {}
        }
        candidate += RECORD_ALIGN_BYTES;
    }
    None
}

/// Offset of the first aligned 8-byte word at or after `from` (aligned) that is not zero.
fn first_non_zero_word(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    let words = tail.chunks_exact(8);
    let whole_len = tail.len() - words.remainder().len();
    let rest_non_zero = words.remainder().iter().any(|byte| *byte != 0);
    if let Some(index) = words.into_iter().position(|word| word_of(word) != 0) {
        return Some(from + index * 8);
    }
    if rest_non_zero { Some(from + whole_len) } else { None }
}

/// File name of the segment whose first record is `base_seq`: `NNNNNNNNNNNNNNNNNNNN.seg`.
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:0width$}.{SEGMENT_FILE_EXTENSION}", width = SEGMENT_FILE_NAME_DIGITS)
}

/// The base sequence number a segment file name stands for, or `None` for any other name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_numbered_name(name, SEGMENT_FILE_EXTENSION)
}

/// File name of spare `spare_id`: `NNNNNNNNNNNNNNNNNNNN.spare`, the id zero-padded like a
/// segment's base sequence number.
pub fn spare_file_name(spare_id: u64) -> String {
    format!("{spare_id:0width$}.{SPARE_FILE_EXTENSION}", width = SEGMENT_FILE_NAME_DIGITS)
}

/// The spare id a spare file name stands for, or `None` for any other name.
pub fn parse_spare_file_name(name: &str) -> Option<u64> {
    parse_numbered_name(name, SPARE_FILE_EXTENSION)
}

fn parse_numbered_name(name: &str, extension: &str) -> Option<u64> {
    let digits = name.strip_suffix(extension)?.strip_suffix('.')?;
    if digits.len() != SEGMENT_FILE_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_headers_never_check_out() {
        let zeros = [0u8; RECORD_HEADER_LEN_BYTES];
        let header = RecordHeader::ref_from_bytes(&zeros[..]).unwrap();
        assert_ne!(header.computed_checksum(), 0);
        let zeros = [0u8; SEGMENT_HEADER_LEN_BYTES];
        let header = SegmentHeader::ref_from_bytes(&zeros[..]).unwrap();
        assert_ne!(header.computed_checksum(), 0);
    }

    #[test]
    fn record_round_trips_and_pads_to_alignment() {
        for body_len in 0..20 {
            let body: Vec<u8> = (0..body_len as u8).map(|b| b.wrapping_mul(7) | 1).collect();
            let header = RecordHeader::new(9, 123, 4, 0, &body, 0xdead_beef);
            let mut bytes = vec![0u8; 16 + record_len_bytes(body.len())];
            bytes[16..16 + RECORD_HEADER_LEN_BYTES].copy_from_slice(header.as_bytes());
            bytes[16 + RECORD_HEADER_LEN_BYTES..16 + RECORD_HEADER_LEN_BYTES + body.len()].copy_from_slice(&body);
            let record = decode_record_in_place(&bytes, 16, 9, 0xdead_beef).unwrap();
            assert_eq!(record.body, &body[..]);
            assert_eq!((record.seq, record.timestamp_ns, record.kind), (9, 123, 4));
            assert_eq!(record.len_bytes() % RECORD_ALIGN_BYTES, 0);
            assert_eq!(
                decode_record_in_place(&bytes, 16, 10, 0xdead_beef),
                Err(CorruptReason::WrongSeq { expected_seq: 10, found_seq: 9 })
            );
            assert!(matches!(decode_record_in_place(&bytes, 16, 9, 1), Err(CorruptReason::ChainBroken { .. })));
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader::new(42, 7, 1_700_000_000_000_000_000, 1 << 20);
        let mut bytes = header.as_bytes().to_vec();
        assert_eq!(SegmentHeader::read(&bytes), Ok(header));
        bytes[3] ^= 1;
        assert!(matches!(SegmentHeader::read(&bytes), Err(CorruptReason::SegmentHeaderChecksum { .. })));
        assert!(matches!(
            SegmentHeader::read(&bytes[..10]),
            Err(CorruptReason::SegmentTooShort { file_len_bytes: 10 })
        ));
    }

    #[test]
    fn segment_file_names_round_trip() {
        assert_eq!(segment_file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("00000000000000000001.seg.tmp"), None);
        assert_eq!(parse_segment_file_name("1.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_spare_file_name(&spare_file_name(7)), Some(7));
        assert_eq!(parse_segment_file_name(&spare_file_name(7)), None);
        assert_eq!(parse_spare_file_name(&segment_file_name(7)), None);
    }

    #[test]
    fn zero_scans_find_the_right_bytes() {
        let mut bytes = vec![0u8; 100];
        assert!(is_all_zero(&bytes));
        assert_eq!(end_of_non_zero(&bytes), None);
        bytes[37] = 1;
        assert_eq!(end_of_non_zero(&bytes), Some(38));
        bytes[98] = 1;
        assert_eq!(end_of_non_zero(&bytes), Some(99));
        assert_eq!(first_non_zero_word(&bytes, 0), Some(32));
    }

    #[test]
    fn find_record_after_skips_zeros_and_honours_min_seq() {
        let body = [5u8; 13];
        let header = RecordHeader::new(77, 1, 2, 0, &body, 3);
        let mut bytes = vec![0u8; 4096];
        let at = 2048 + 64;
        bytes[at..at + RECORD_HEADER_LEN_BYTES].copy_from_slice(header.as_bytes());
        bytes[at + RECORD_HEADER_LEN_BYTES..at + RECORD_HEADER_LEN_BYTES + body.len()].copy_from_slice(&body);
        assert_eq!(find_record_after(&bytes, 0, 0), Some(at));
        assert_eq!(find_record_after(&bytes, 0, 77), Some(at));
        assert_eq!(find_record_after(&bytes, 0, 78), None);
        assert_eq!(find_record_after(&bytes, at + 8, 0), None);
    }
}

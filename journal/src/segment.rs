//! One segment file: what the journal knows about it, and the scan that finds out.

use crate::error::CorruptReason;
use crate::layout::{
    RECORD_ALIGN_BYTES, SEGMENT_HEADER_LEN_BYTES, SegmentHeader, decode_record_in_place, end_of_non_zero,
    find_record_after,
};
use crate::storage::SegmentStorage;

/// Where a segment stands: its sequence range and how full it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Sequence number of the first record (also the file name).
    pub base_seq: u64,
    /// Records in the segment.
    pub record_count: u64,
    /// Bytes in use: segment header plus records, up to the end of the last good record.
    pub used_len_bytes: u64,
    /// Length of the (preallocated) file.
    pub segment_len_bytes: u64,
    /// Creation time from the header, nanoseconds since the Unix epoch, if the header is good.
    pub created_at_ns: Option<u64>,
}

impl SegmentInfo {
    /// Sequence number of the first record, if there is one.
    pub fn first_seq(&self) -> Option<u64> {
        (self.record_count > 0).then_some(self.base_seq)
    }

    /// Sequence number of the last record, if there is one.
    pub fn last_seq(&self) -> Option<u64> {
        (self.record_count > 0).then(|| self.base_seq + self.record_count - 1)
    }

    /// Sequence number the next record in this segment would carry.
    pub fn next_seq(&self) -> u64 {
        self.base_seq + self.record_count
    }
}

/// The verdict of a scan on one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentStatus {
    /// Every record checks out and the rest of the file is zeros.
    Clean,
    /// The last segment ends in damaged bytes with no good record after them: a torn write.
    /// Opening the journal zeroes them and appends after the last good record.
    TornTail {
        /// Offset of the first damaged byte (where the next record goes).
        offset: u64,
        /// What is wrong there.
        reason: CorruptReason,
        /// Bytes that opening will zero.
        cut_len_bytes: u64,
    },
    /// The last segment's header is unusable and the segment holds no good record: a crash while
    /// the segment was being created. Opening the journal replaces it with a fresh segment.
    TornHeader {
        /// What is wrong with the header.
        reason: CorruptReason,
    },
    /// Damage that is not a torn tail. Opening refuses.
    Corrupt {
        /// Offset of the damage.
        offset: u64,
        /// Sequence number expected there.
        seq: u64,
        /// What is wrong there.
        reason: CorruptReason,
    },
}

/// An open segment and what the journal knows about it.
#[derive(Debug)]
pub(crate) struct SegmentSlot<G> {
    pub(crate) info: SegmentInfo,
    /// The chain anchor from the header: the checksum the first record must chain from.
    pub(crate) prev_checksum: u32,
    /// Checksum of the last record, or `prev_checksum` when empty.
    pub(crate) last_checksum: u32,
    /// Epoch of the last record (0 when empty).
    pub(crate) last_epoch: u32,
    pub(crate) segment: G,
}

/// A segment after [`scan_segment`].
#[derive(Debug)]
pub(crate) struct ScannedSegment<G> {
    pub(crate) slot: SegmentSlot<G>,
    pub(crate) status: SegmentStatus,
}

/// Reads a segment on its own: header, then records chained from the header's anchor, then the
/// bytes after the last good record. `is_last` says whether damage could be a torn tail.
/// Continuity with neighbouring segments is the caller's business.
pub(crate) fn scan_segment<G: SegmentStorage>(name_base_seq: u64, segment: G, is_last: bool) -> ScannedSegment<G> {
    let bytes = segment.bytes();
    let file_len_bytes = bytes.len() as u64;
    let mut info = SegmentInfo {
        base_seq: name_base_seq,
        record_count: 0,
        used_len_bytes: 0,
        segment_len_bytes: file_len_bytes,
        created_at_ns: None,
    };
    let header = match SegmentHeader::read(bytes) {
        Ok(header) => header,
        Err(reason) => {
            let scan_from = SEGMENT_HEADER_LEN_BYTES.min(bytes.len());
            let status = if is_last && find_record_after(bytes, scan_from, name_base_seq).is_none() {
                SegmentStatus::TornHeader { reason }
            } else {
                SegmentStatus::Corrupt { offset: 0, seq: name_base_seq, reason }
            };
            let slot = SegmentSlot { info, prev_checksum: 0, last_checksum: 0, last_epoch: 0, segment };
            return ScannedSegment { slot, status };
        }
    };
    info.created_at_ns = Some(header.created_at_ns.get());
    info.used_len_bytes = SEGMENT_HEADER_LEN_BYTES as u64;
    let prev_checksum = header.prev_checksum.get();
    let corrupt_header = |reason| SegmentStatus::Corrupt { offset: 0, seq: name_base_seq, reason };
    let header_base_seq = header.base_seq.get();
    let header_len_bytes = header.segment_len_bytes.get();
    let header_problem = if header_base_seq != name_base_seq {
        Some(corrupt_header(CorruptReason::SegmentMisnamed { name_base_seq, header_base_seq }))
    } else if header_len_bytes != file_len_bytes {
        Some(corrupt_header(CorruptReason::SegmentLenMismatch { file_len_bytes, header_len_bytes }))
    } else {
        None
    };
    if let Some(status) = header_problem {
        let slot = SegmentSlot { info, prev_checksum, last_checksum: prev_checksum, last_epoch: 0, segment };
        return ScannedSegment { slot, status };
    }

    let mut offset = SEGMENT_HEADER_LEN_BYTES;
    let mut seq = name_base_seq;
    let mut parent = prev_checksum;
    let mut last_epoch = 0;
    let stop_reason = loop {
        match decode_record_in_place(bytes, offset, seq, parent) {
            Ok(record) => {
                parent = record.checksum;
                last_epoch = record.epoch;
                seq += 1;
                offset += record.len_bytes();
            }
            Err(reason) => break reason,
        }
    };
    info.record_count = seq - name_base_seq;
    info.used_len_bytes = offset as u64;
    let status = classify_stop(bytes, offset, seq, stop_reason, is_last);
    ScannedSegment { slot: SegmentSlot { info, prev_checksum, last_checksum: parent, last_epoch, segment }, status }
}

/// Decides what the first position without a good record means.
fn classify_stop(bytes: &[u8], offset: usize, seq: u64, reason: CorruptReason, is_last: bool) -> SegmentStatus {
    let corrupt = |reason| SegmentStatus::Corrupt { offset: offset as u64, seq, reason };
    // A record that checks out but sits in the wrong place was written whole: never torn.
    if reason.is_misplacement() {
        return corrupt(reason);
    }
    let Some(non_zero_len_bytes) = end_of_non_zero(&bytes[offset..]) else {
        return SegmentStatus::Clean;
    };
    // A good record further on means the damage is in the middle of the log, not at its tail.
    if find_record_after(bytes, offset + RECORD_ALIGN_BYTES, seq).is_some() {
        return corrupt(reason);
    }
    if is_last {
        return SegmentStatus::TornTail { offset: offset as u64, reason, cut_len_bytes: non_zero_len_bytes as u64 };
    }
    // A segment was synced whole before the next one got its name, so nothing in a segment
    // with a successor can be torn.
    corrupt(if reason == CorruptReason::ZeroHeader { CorruptReason::TrailingGarbage } else { reason })
}

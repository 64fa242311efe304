//! Read-only inspection of a journal directory: per-segment summaries, a verdict, and a dump of
//! every good record. Opening a journal runs the same scan and then repairs the tail; CLI tools
//! use this to look without touching anything.

use crate::error::{CorruptReason, IoOp, JournalError};
use crate::layout::{Record, SEGMENT_HEADER_LEN_BYTES, decode_record};
use crate::segment::{ScannedSegment, SegmentInfo, SegmentStatus, scan_segment};
use crate::storage::{SegmentStorage, Storage};

/// One segment as inspection found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Sequence range and fill.
    pub info: SegmentInfo,
    /// Verdict, after the checks against neighbouring segments.
    pub status: SegmentStatus,
}

/// The result of [`inspect`]: every segment scanned, in order, with its open handle.
#[derive(Debug)]
pub struct Inspection<G> {
    pub(crate) segments: Vec<ScannedSegment<G>>,
}

/// Scans every segment of `storage` without changing anything. Fails only if the storage cannot
/// be listed or a segment cannot be opened; damage is reported in the [`Inspection`].
///
/// On a directory a live writer is appending to (through [`crate::MmapStorage::open_read_only`])
/// the record being copied at that instant may show up as a torn tail.
pub fn inspect<S: Storage>(storage: &S) -> Result<Inspection<S::Segment>, JournalError> {
    let bases = storage.list_segments().map_err(|err| JournalError::io(IoOp::ListSegments, None, err))?;
    let mut segments = Vec::with_capacity(bases.len());
    for (index, base_seq) in bases.iter().copied().enumerate() {
        let segment =
            storage.open_segment(base_seq).map_err(|err| JournalError::io(IoOp::OpenSegment, Some(base_seq), err))?;
        segments.push(scan_segment(base_seq, segment, index + 1 == bases.len()));
    }
    check_continuity(&mut segments);
    Ok(Inspection { segments })
}

/// Checks each segment against the one before it: no gap or overlap in sequence numbers, an
/// unbroken chain, and no empty segment but the last. Marks the first offender corrupt.
fn check_continuity<G>(segments: &mut [ScannedSegment<G>]) {
    let count = segments.len();
    for index in 0..count {
        if !matches!(
            segments[index].status,
            SegmentStatus::Clean | SegmentStatus::TornTail { .. } | SegmentStatus::TornHeader { .. }
        ) {
            return;
        }
        let this = &segments[index];
        let is_last = index + 1 == count;
        let mut problem = None;
        if !is_last && this.slot.info.record_count == 0 {
            problem =
                Some((SEGMENT_HEADER_LEN_BYTES as u64, this.slot.info.base_seq, CorruptReason::EmptySealedSegment));
        }
        if let Some(prev) = index.checked_sub(1).map(|prev| &segments[prev]) {
            let expected_base_seq = prev.slot.info.next_seq();
            let found_base_seq = this.slot.info.base_seq;
            if found_base_seq != expected_base_seq {
                problem = Some((0, expected_base_seq, CorruptReason::SegmentGap { expected_base_seq, found_base_seq }));
            } else if !matches!(this.status, SegmentStatus::TornHeader { .. })
                && this.slot.prev_checksum != prev.slot.last_checksum
            {
                let reason = CorruptReason::SegmentChainBroken {
                    expected: prev.slot.last_checksum,
                    found: this.slot.prev_checksum,
                };
                problem = Some((0, expected_base_seq, reason));
            }
        }
        if let Some((offset, seq, reason)) = problem {
            segments[index].status = SegmentStatus::Corrupt { offset, seq, reason };
            return;
        }
    }
}

impl<G: SegmentStorage> Inspection<G> {
    /// Summary of each segment, in sequence order.
    pub fn summaries(&self) -> impl Iterator<Item = SegmentSummary> + '_ {
        self.segments.iter().map(|scanned| SegmentSummary { info: scanned.slot.info, status: scanned.status })
    }

    /// `Ok` if the journal can be opened (perhaps after cutting a torn tail), otherwise the
    /// first corruption in sequence order.
    pub fn verdict(&self) -> Result<(), JournalError> {
        for scanned in &self.segments {
            if let SegmentStatus::Corrupt { offset, seq, reason } = scanned.status {
                return Err(JournalError::Corrupt { segment: scanned.slot.info.base_seq, offset, seq, reason });
            }
        }
        Ok(())
    }

    /// Every good record of every segment with a good header, in order, with where it sits.
    /// Stops at each segment's first bad position and carries on with the next segment.
    pub fn dump(&self) -> Dump<'_, G> {
        Dump { segments: &self.segments, index: 0, offset: SEGMENT_HEADER_LEN_BYTES, left_in_segment: None }
    }
}

/// One record from [`Inspection::dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpEntry<'a> {
    /// Base sequence number of the segment holding it.
    pub segment: u64,
    /// Byte offset of its header in the segment file.
    pub offset: u64,
    /// The record.
    pub record: Record<'a>,
}

/// Iterator from [`Inspection::dump`].
#[derive(Debug)]
pub struct Dump<'a, G> {
    segments: &'a [ScannedSegment<G>],
    index: usize,
    offset: usize,
    /// Records still to yield from the current segment; `None` before it is entered.
    left_in_segment: Option<u64>,
}

impl<'a, G: SegmentStorage> Iterator for Dump<'a, G> {
    type Item = DumpEntry<'a>;

    fn next(&mut self) -> Option<DumpEntry<'a>> {
        loop {
            let scanned = self.segments.get(self.index)?;
            let left = *self.left_in_segment.get_or_insert(scanned.slot.info.record_count);
            if left == 0 {
                self.index += 1;
                self.offset = SEGMENT_HEADER_LEN_BYTES;
                self.left_in_segment = None;
                continue;
            }
            let segment_bytes = scanned.slot.segment.bytes();
            let record = decode_record(segment_bytes, self.offset).expect("scan counted this record as good");
            let entry = DumpEntry { segment: scanned.slot.info.base_seq, offset: self.offset as u64, record };
            self.offset += record.len_bytes();
            self.left_in_segment = Some(left - 1);
            return Some(entry);
        }
    }
}

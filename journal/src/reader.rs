//! Replay: iterate records in sequence order, checking each one again as it is read back.

use crate::error::{CorruptReason, JournalError};
use crate::layout::{Record, SEGMENT_HEADER_LEN_BYTES, decode_record_in_place};
use crate::segment::SegmentSlot;
use crate::storage::SegmentStorage;

/// Iterator over records from [`crate::Journal::read_from`], borrowing the bodies from the
/// mapping.
///
/// Every record's header checksum, body checksum, sequence number and parent checksum are
/// checked again on the way out (the checks at open do not cover damage since). The first
/// failure is yielded as [`JournalError::Corrupt`] and ends the iteration.
#[derive(Debug)]
pub struct Replay<'j, G> {
    segments: &'j [SegmentSlot<G>],
    index: usize,
    offset: usize,
    next_seq: u64,
    parent: u32,
    /// Last sequence number to yield.
    end_seq: u64,
    done: bool,
}

impl<'j, G: SegmentStorage> Replay<'j, G> {
    /// A replay from the first record of `segments[index]` up to `end_seq`.
    pub(crate) fn new(segments: &'j [SegmentSlot<G>], index: usize, end_seq: u64) -> Self {
        let slot = &segments[index];
        Replay {
            segments,
            index,
            offset: SEGMENT_HEADER_LEN_BYTES,
            next_seq: slot.info.base_seq,
            parent: slot.prev_checksum,
            end_seq,
            done: false,
        }
    }

    /// Moves the start to the record `seq` at `offset` of the current segment, whose parent
    /// checksum is `parent`.
    pub(crate) fn starting_at(mut self, offset: usize, seq: u64, parent: u32) -> Self {
        (self.offset, self.next_seq, self.parent) = (offset, seq, parent);
        self
    }

    /// Reads (and checks) records until the next one is `seq`.
    pub(crate) fn skip_to(&mut self, seq: u64) -> Result<(), JournalError> {
        while self.next_seq < seq {
            match self.next() {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err),
                None => break,
            }
        }
        Ok(())
    }

    /// Sequence number of the record the next call yields.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn corrupt(&mut self, segment: u64, offset: usize, reason: CorruptReason) -> JournalError {
        self.done = true;
        JournalError::Corrupt { segment, offset: offset as u64, seq: self.next_seq, reason }
    }
}

impl<'j, G: SegmentStorage> Iterator for Replay<'j, G> {
    type Item = Result<Record<'j>, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next_seq > self.end_seq {
            return None;
        }
        let segments = self.segments;
        let mut slot = &segments[self.index];
        while self.next_seq >= slot.info.next_seq() {
            self.index += 1;
            slot = segments.get(self.index).expect("records up to end_seq are held in some segment");
            self.offset = SEGMENT_HEADER_LEN_BYTES;
            let base_seq = slot.info.base_seq;
            if base_seq != self.next_seq {
                let reason = CorruptReason::SegmentGap { expected_base_seq: self.next_seq, found_base_seq: base_seq };
                return Some(Err(self.corrupt(base_seq, 0, reason)));
            }
            if slot.prev_checksum != self.parent {
                let reason = CorruptReason::SegmentChainBroken { expected: self.parent, found: slot.prev_checksum };
                return Some(Err(self.corrupt(base_seq, 0, reason)));
            }
        }
        match decode_record_in_place(slot.segment.bytes(), self.offset, self.next_seq, self.parent) {
            Ok(record) => {
                self.offset += record.len_bytes();
                self.next_seq += 1;
                self.parent = record.checksum;
                Some(Ok(record))
            }
            Err(reason) => Some(Err(self.corrupt(slot.info.base_seq, self.offset, reason))),
        }
    }
}

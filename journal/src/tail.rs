//! Following a journal that a writer is appending to: the replication stream's source on the
//! primary. A [`Tail`] reads the segment files through its own (read-only) storage handle, never
//! through the writer's [`crate::Journal`], so catching a standby up from old segments and
//! streaming live records are one path, and the reader never holds the writer up.
//!
//! The caller says how far to read (`up_to_seq`, a position the writer has published, such as
//! its written seq): every record up to it is whole in the page cache, so a record the tail
//! cannot find where it expects one is in the next segment. That segment may still be a spare
//! (the rollover thread renames it only when it seals the previous one), so the tail also looks
//! among the spares for the one whose header continues the log. Every record is checked as
//! replay checks it: header and body checksums, sequence number and parent checksum.
//!
//! A tail without a bound ([`Tail::next_available`]) cannot tell "not written yet" from "written
//! in the next segment", so it looks for the next segment each time it finds nothing, which
//! would cost a directory listing and a mapping (and unmapping: a TLB shoot-down on every CPU)
//! per call of an idle follower. It keeps the spares it mapped, and while a record of the
//! largest size still fits behind its position (the writer moves on only when a record does
//! not fit) it looks only every [`IDLE_PROBE_EVERY`] calls.

use crate::error::{CorruptReason, IoOp, JournalError};
use crate::layout::{
    MAX_RECORD_LEN_BYTES, RECORD_HEADER_LEN_BYTES, Record, SEGMENT_HEADER_LEN_BYTES, SegmentHeader,
    decode_record_in_place,
};
use crate::storage::{SegmentStorage, Storage};

/// Calls of [`Tail::next_available`] that find nothing, per look for a next segment, while a
/// record of the largest size still fits in the current one (so the writer cannot have moved
/// on; looking at all is only for a segment some other writer ended early).
pub const IDLE_PROBE_EVERY: u32 = 1024;

/// A reader following the log from a sequence number on.
#[derive(Debug)]
pub struct Tail<S: Storage> {
    storage: S,
    segment: S::Segment,
    /// The segment's base sequence number (errors name it).
    segment_base: u64,
    offset: usize,
    next_seq: u64,
    parent: u32,
    /// Records below this are read (to check the chain) but not yielded.
    from_seq: u64,
    /// Spares mapped while looking for the next segment, by id (kept so that looking again
    /// maps nothing; dropped once the directory no longer lists them).
    spares: Vec<(u64, S::Segment)>,
    /// Calls of [`Tail::next_available`] that found nothing since the last look for a next
    /// segment.
    idle_calls: u32,
}

impl<S: Storage> Tail<S> {
    /// A tail whose first record is `from_seq`. Fails with [`JournalError::SeqNotInJournal`] if
    /// the oldest segment starts after `from_seq` (retention removed it) or there is none.
    pub fn open(storage: S, from_seq: u64) -> Result<Self, JournalError> {
        let bases = storage.list_segments().map_err(|err| JournalError::io(IoOp::ListSegments, None, err))?;
        let Some(&base_seq) = bases.iter().rev().find(|&&b| b <= from_seq) else {
            let first_seq = bases.first().copied().unwrap_or(0);
            return Err(JournalError::SeqNotInJournal { seq: from_seq, first_seq, next_seq: 0 });
        };
        let segment =
            storage.open_segment(base_seq).map_err(|err| JournalError::io(IoOp::OpenSegment, Some(base_seq), err))?;
        let header = SegmentHeader::read(segment.bytes()).map_err(|reason| JournalError::Corrupt {
            segment: base_seq,
            offset: 0,
            seq: base_seq,
            reason,
        })?;
        let parent = header.prev_checksum.get();
        let offset = SEGMENT_HEADER_LEN_BYTES;
        Ok(Tail {
            storage,
            segment,
            segment_base: base_seq,
            offset,
            next_seq: base_seq,
            parent,
            from_seq,
            spares: Vec::new(),
            idle_calls: 0,
        })
    }

    /// The storage it reads (to list what the writer still retains).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Sequence number of the next record to yield.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.from_seq)
    }

    /// Checksum of the record before [`Tail::next_seq`] (the next record's parent), once the tail
    /// has read up to its start.
    pub fn parent_checksum(&self) -> Option<u32> {
        (self.next_seq >= self.from_seq).then_some(self.parent)
    }

    /// The next record, if its sequence number is at most `up_to_seq`; `None` when the tail has
    /// caught up (or the next segment is being renamed at this instant: call again).
    pub fn next(&mut self, up_to_seq: u64) -> Result<Option<Record<'_>>, JournalError> {
        if !self.position(up_to_seq)? {
            return Ok(None);
        }
        let record = decode_record_in_place(self.segment.bytes(), self.offset, self.next_seq, self.parent)
            .map_err(|reason| self.corrupt(reason))?;
        self.offset += record.len_bytes();
        self.next_seq += 1;
        self.parent = record.checksum;
        Ok(Some(record))
    }

    /// The next record, for a log whose writer publishes no position (the gateway's session
    /// stores): a record that is not there or does not check out yet is taken for one being
    /// written now, and `None` is returned; call again later. A tail that stays on a record
    /// that never checks out is stuck on damage: [`Tail::next`] with a bound names it.
    pub fn next_available(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        if self.nothing_here_yet() {
            return Ok(None);
        }
        if !self.position(u64::MAX)? {
            return Ok(None);
        }
        let Ok(record) = decode_record_in_place(self.segment.bytes(), self.offset, self.next_seq, self.parent) else {
            return Ok(None);
        };
        self.offset += record.len_bytes();
        self.next_seq += 1;
        self.parent = record.checksum;
        Ok(Some(record))
    }

    /// For [`Tail::next_available`]: true if no record header is at the tail's position and the
    /// writer cannot have moved to the next segment (a record of the largest size still fits
    /// here), except on every [`IDLE_PROBE_EVERY`]th such call, which looks anyway.
    fn nothing_here_yet(&mut self) -> bool {
        let bytes = self.segment.bytes();
        let header = bytes.get(self.offset..self.offset + RECORD_HEADER_LEN_BYTES);
        if !header.is_none_or(|h| h.iter().all(|b| *b == 0)) {
            self.idle_calls = 0;
            return false;
        }
        let room = bytes.len().saturating_sub(self.offset);
        self.idle_calls = self.idle_calls.wrapping_add(1);
        room >= MAX_RECORD_LEN_BYTES && self.idle_calls % IDLE_PROBE_EVERY != 0
    }

    /// Gets to the record to yield next (skipping, checked, what comes before `from_seq`, and
    /// moving to the next segment where this one ends); false if it is past `up_to_seq` or not
    /// found yet.
    fn position(&mut self, up_to_seq: u64) -> Result<bool, JournalError> {
        loop {
            if self.next_seq > up_to_seq {
                return Ok(false);
            }
            let header = self.segment.bytes().get(self.offset..self.offset + RECORD_HEADER_LEN_BYTES);
            if header.is_none_or(|h| h.iter().all(|b| *b == 0)) {
                // The record is written (it is at most `up_to_seq`) but not here: the writer
                // rolled over to the next segment.
                if !self.move_to_next_segment()? {
                    return Ok(false);
                }
                continue;
            }
            if self.next_seq >= self.from_seq {
                return Ok(true);
            }
            let (len, checksum) = decode_record_in_place(self.segment.bytes(), self.offset, self.next_seq, self.parent)
                .map(|r| (r.len_bytes(), r.checksum))
                .map_err(|reason| self.corrupt(reason))?;
            self.offset += len;
            self.next_seq += 1;
            self.parent = checksum;
        }
    }

    /// Moves to the segment starting at `next_seq`: the named one, or the spare whose header
    /// continues the log. False if neither is there yet.
    fn move_to_next_segment(&mut self) -> Result<bool, JournalError> {
        let base_seq = self.next_seq;
        if let Ok(segment) = self.storage.open_segment(base_seq) {
            return self.enter(segment).map(|()| true);
        }
        let ids = self.storage.list_spares().map_err(|err| JournalError::io(IoOp::OpenSpare, None, err))?;
        self.spares.retain(|(id, _)| ids.contains(id));
        for id in ids {
            if !self.spares.iter().any(|(mapped, _)| *mapped == id)
                && let Ok(spare) = self.storage.open_spare(id)
                && spare.bytes().len() >= SEGMENT_HEADER_LEN_BYTES
            {
                self.spares.push((id, spare));
            }
        }
        let parent = self.parent;
        let continuing = self.spares.iter().position(|(_, spare)| {
            SegmentHeader::read(spare.bytes())
                .is_ok_and(|h| h.base_seq.get() == base_seq && h.prev_checksum.get() == parent)
        });
        match continuing {
            Some(i) => {
                let (_, spare) = self.spares.swap_remove(i);
                self.enter(spare).map(|()| true)
            }
            None => Ok(false),
        }
    }

    fn enter(&mut self, segment: S::Segment) -> Result<(), JournalError> {
        let base_seq = self.next_seq;
        let wrong = |reason| JournalError::Corrupt { segment: base_seq, offset: 0, seq: base_seq, reason };
        let header = SegmentHeader::read(segment.bytes()).map_err(wrong)?;
        if header.base_seq.get() != base_seq {
            return Err(wrong(CorruptReason::WrongSeq { expected_seq: base_seq, found_seq: header.base_seq.get() }));
        }
        if header.prev_checksum.get() != self.parent {
            let reason = CorruptReason::ChainBroken { expected: self.parent, found: header.prev_checksum.get() };
            return Err(wrong(reason));
        }
        self.segment = segment;
        self.segment_base = base_seq;
        self.offset = SEGMENT_HEADER_LEN_BYTES;
        Ok(())
    }
}

impl<S: Storage> Tail<S> {
    fn corrupt(&self, reason: CorruptReason) -> JournalError {
        JournalError::Corrupt { segment: self.segment_base, offset: self.offset as u64, seq: self.next_seq, reason }
    }
}

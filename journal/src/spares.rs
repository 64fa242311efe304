//! Recovery of spare segment files: finishing the installs a crash interrupted, and removing
//! spares nothing depends on.
//!
//! A spare the writer moved on to holds records before it has its segment name (the rename
//! waits until the segment before it is synced whole). After a crash of the process alone those
//! records may have been acknowledged at `written`, so recovery must keep them; after power loss
//! they were acknowledged at nothing, because `synced_seq` waits for the rename to be durable.
//! The rule that keeps both: a spare is installed when it continues the log exactly (its header
//! names the next sequence number and chains from the last record) and the log's last segment
//! ends cleanly; any other spare is removed, except a few of the configured length whose header
//! is blank: those are kept for the background thread, which reuses one only after reading it
//! whole and finding nothing but zeros (a spare some writer moved on to has a header, unless
//! power loss dropped the header's page, and then a later page may still hold records).

use crate::error::{IoOp, JournalError};
use crate::layout::{SEGMENT_HEADER_LEN_BYTES, SegmentHeader};
use crate::segment::{ScannedSegment, SegmentStatus, scan_segment};
use crate::storage::{SegmentStorage, Storage};

/// What [`recover_spares`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SpareRecovery {
    /// Spares installed as segments.
    pub(crate) installed: u64,
    /// Spares removed.
    pub(crate) removed: u64,
    /// Highest spare id seen, so new ones never reuse a name.
    pub(crate) max_spare_id: Option<u64>,
    /// Spares kept for reuse (blank header, the configured length), ascending.
    pub(crate) blank: Vec<u64>,
}

/// A spare file, opened, with its header if that checks out.
struct Spare<G> {
    spare_id: u64,
    header: Option<SegmentHeader>,
    segment: G,
}

/// Installs every spare that continues `segments` (scanned, in order, the last one scanned as
/// last), appending it scanned, keeps up to `keep` spares of `len_bytes` with a blank header, and
/// removes every other spare. Changes nothing and returns [`JournalError::Corrupt`] if a spare
/// that would be installed is corrupt.
pub(crate) fn recover_spares<S: Storage>(
    storage: &mut S,
    segments: &mut Vec<ScannedSegment<S::Segment>>,
    (keep, len_bytes): (usize, u64),
) -> Result<SpareRecovery, JournalError> {
    let ids = storage.list_spares().map_err(|err| JournalError::io(IoOp::ListSegments, None, err))?;
    let mut recovery = SpareRecovery { max_spare_id: ids.last().copied(), ..SpareRecovery::default() };
    let mut spares = Vec::with_capacity(ids.len());
    for spare_id in ids {
        let segment = storage.open_spare(spare_id).map_err(|err| JournalError::io(IoOp::OpenSpare, None, err))?;
        spares.push(Spare { spare_id, header: SegmentHeader::read(segment.bytes()).ok(), segment });
    }

    // Plan first, so that a corrupt spare leaves everything as it was.
    let mut chain: Vec<(u64, ScannedSegment<S::Segment>)> = Vec::new();
    while let Some(index) = next_in_chain(chain.last().map(|(_, scanned)| scanned).or(segments.last()), &spares) {
        let spare = spares.swap_remove(index);
        let base_seq = spare.header.expect("a spare in the chain has a good header").base_seq.get();
        let scanned = scan_segment(base_seq, spare.segment, true);
        if let SegmentStatus::Corrupt { offset, seq, reason } = scanned.status {
            return Err(JournalError::Corrupt { segment: base_seq, offset, seq, reason });
        }
        chain.push((spare.spare_id, scanned));
    }

    for (spare_id, scanned) in chain {
        install(storage, segments.last_mut().expect("a chain continues a segment"), spare_id, &scanned)?;
        segments.push(scanned);
        recovery.installed += 1;
    }
    spares.sort_unstable_by_key(|spare| spare.spare_id);
    for spare in spares {
        let bytes = spare.segment.bytes();
        let blank = bytes.len() as u64 == len_bytes && bytes[..SEGMENT_HEADER_LEN_BYTES].iter().all(|b| *b == 0);
        // Unmap before unlinking.
        drop(spare.segment);
        if blank && recovery.blank.len() < keep {
            recovery.blank.push(spare.spare_id);
            continue;
        }
        storage.remove_spare(spare.spare_id).map_err(|err| JournalError::io(IoOp::RemoveSpare, None, err))?;
        recovery.removed += 1;
    }
    if recovery.removed > 0 {
        storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))?;
    }
    Ok(recovery)
}

/// The spare that continues `last`: `last` ends cleanly with at least one record, and the
/// spare's header names `last`'s next sequence number, chains from its last record and gives
/// the spare's own length.
fn next_in_chain<G: SegmentStorage>(last: Option<&ScannedSegment<G>>, spares: &[Spare<G>]) -> Option<usize> {
    let last = last?;
    if last.status != SegmentStatus::Clean || last.slot.info.record_count == 0 {
        return None;
    }
    spares.iter().position(|spare| {
        spare.header.is_some_and(|header| {
            header.base_seq.get() == last.slot.info.next_seq()
                && header.prev_checksum.get() == last.slot.last_checksum
                && header.segment_len_bytes.get() == spare.segment.bytes().len() as u64
        })
    })
}

/// Finishes an interrupted install in the order the writer would have: the segment before the
/// spare synced whole, the spare's header synced, the rename, the directory synced.
fn install<S: Storage>(
    storage: &mut S,
    previous: &mut ScannedSegment<S::Segment>,
    spare_id: u64,
    spare: &ScannedSegment<S::Segment>,
) -> Result<(), JournalError> {
    let previous_base_seq = Some(previous.slot.info.base_seq);
    let previous_len_bytes = previous.slot.segment.bytes().len();
    previous
        .slot
        .segment
        .sync_range(0, previous_len_bytes)
        .map_err(|err| JournalError::io(IoOp::Sync, previous_base_seq, err))?;
    let base_seq = spare.slot.info.base_seq;
    let mut handle =
        storage.open_spare(spare_id).map_err(|err| JournalError::io(IoOp::OpenSpare, Some(base_seq), err))?;
    handle.sync_range(0, SEGMENT_HEADER_LEN_BYTES).map_err(|err| JournalError::io(IoOp::Sync, Some(base_seq), err))?;
    drop(handle);
    storage
        .install_spare(spare_id, base_seq)
        .map_err(|err| JournalError::io(IoOp::InstallSpare, Some(base_seq), err))?;
    storage.sync_dir().map_err(|err| JournalError::io(IoOp::SyncDir, None, err))
}
